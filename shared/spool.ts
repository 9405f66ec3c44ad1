/**
 * A durable FIFO on disk with one writer and one reader: the agent forwarder's spool and the
 * collector's per-sink queues. Records are removed only when the reader acknowledges them
 * (at-least-once); after a crash reading resumes at the first unacknowledged record.
 *
 * Layout: `<dir>/<20-digit id>.seg` segment files, rolled at segmentBytes, plus `cursor` (the
 * acknowledged position, replaced atomically by rename). Each record is framed as
 *
 *   magic "PLS" + version 1 (4 bytes) · payload length u32 LE · CRC32(length bytes, payload) u32 LE · payload
 *
 * Opening scans every segment. A stretch that is not a valid frame (a torn tail after kill -9,
 * a flipped bit, garbage) is skipped up to the next valid frame — the magic lets the scan find
 * it — counted in plumb_spool_corrupt_total and logged; a damaged tail is truncated. Segments are
 * immutable once rolled; writing after an open always starts a new segment.
 *
 * Appends and reads may interleave: appends run one at a time, reads one at a time, and new
 * data becomes visible to the reader only when its append has completed (written, and synced
 * under the 'batch' policy), so a failed append can be undone without the reader noticing.
 */
import { open, mkdir, readdir, readFile, rename, stat, access, unlink, constants as fsConstants, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { PlumbError, type ErrorCode } from './errors.ts';
import { LogOnce, type Logger } from './log.ts';
import type { Telemetry } from './telemetry.ts';

/** The spool directory cannot be created, read or written (the message names it and the fix). */
export const PLUMB_ERR_SPOOL_DIR = 'PLUMB_ERR_SPOOL_DIR' satisfies ErrorCode;
/** Reading or writing a segment failed after the spool was opened. */
export const PLUMB_ERR_SPOOL_IO = 'PLUMB_ERR_SPOOL_IO' satisfies ErrorCode;

/** Bytes each record takes on disk beyond its payload. */
export const SPOOL_FRAME_BYTES = 12;

export type SpoolFsync = 'batch' | 'interval' | 'never';

export interface SpoolOptions {
  dir: string;
  /** Label value of the spool's metrics, e.g. "forward" or "sink_elasticsearch". */
  name: string;
  /** Segment files may not take more than this on disk; an append that does not fit is refused. */
  maxBytes: number;
  /** A segment is rolled before it would grow past this (a single larger record gets its own). */
  segmentBytes: number;
  /** Larger records are refused at append. */
  maxRecordBytes: number;
  /** 'batch': one fsync per append call (survives power loss once resolved); 'interval': every fsyncIntervalMs; 'never'. */
  fsync: SpoolFsync;
  fsyncIntervalMs?: number;
  /**
   * Bytes of just-appended records kept in memory for read(), which hands them out from there
   * instead of reading and checksumming them from disk again (default 0: off). They are the
   * buffers given to append(), which must not be changed afterwards; records not kept, read
   * again after rewind(), or read after a restart come from disk as before.
   */
  keepForReaderBytes?: number;
}

/** Where a record lies; hand it back to ack(). Opaque to callers. */
export interface SpoolPosition {
  readonly segment: number;
  /** End offset of the record in its segment. */
  readonly offset: number;
  /** Number of records in the segment up to and including this one. */
  readonly ordinal: number;
}

export interface SpoolRecord {
  readonly data: Buffer;
  readonly position: SpoolPosition;
}

export interface SpoolReadLimits {
  maxRecords: number;
  /** Payload bytes; the first record is returned even when it alone is larger. */
  maxBytes: number;
}

export interface SpoolContext {
  telemetry: Telemetry;
  log: Logger;
}

type CorruptReason = 'torn' | 'checksum' | 'length';
const CORRUPT_REASONS: readonly CorruptReason[] = ['torn', 'checksum', 'length'];

interface Gap {
  from: number;
  to: number;
}

interface Problem {
  offset: number;
  reason: CorruptReason;
  bytes: number;
}

interface Segment {
  readonly id: number;
  readonly path: string;
  /** Bytes in the file that belong to published appends (the file size, outside a running append). */
  end: number;
  /** Valid records in the file. */
  count: number;
  /** Damaged stretches to jump over, sorted; each starts where a valid record ends. */
  gaps: Gap[];
}

/** A place between records: `index` records of segment `seg` lie before `offset`. */
interface Cursor {
  seg: number;
  offset: number;
  index: number;
}

/** A record kept for the reader: where its frame starts, and its payload. */
interface Kept {
  seg: number;
  offset: number;
  data: Buffer;
}

/** At most this many kept records, whatever their size (acks look through them). */
const MAX_KEPT = 64;

interface Part {
  seg: Segment | null;
  start: number;
  bytes: number;
  count: number;
  bufs: Buffer[];
}

const HEADER = SPOOL_FRAME_BYTES;
const MAGIC = Buffer.from([0x50, 0x4c, 0x53, 0x01]);
const CURSOR_MAGIC = Buffer.from([0x50, 0x4c, 0x43, 0x01]);
const CURSOR_FILE = 'cursor';
const CURSOR_TMP = 'cursor.tmp';
const CURSOR_BYTES = 24;
const SEGMENT_NAME = /^(\d{20})\.seg$/;
const READ_WINDOW_BYTES = 256 * 1024;
const SCAN_WINDOW_BYTES = 1024 * 1024;
/** Record lengths are u32 on disk; a Buffer this large is also the most a read can hold safely. */
const MAX_RECORD_LIMIT = 0x7fff_ffff;

/** Directories opened by a Spool in this process: two writers in one directory would interleave frames. */
const openDirs = new Set<string>();

/** Writes the frame header of `payload` (magic, length, CRC) into `h` (SPOOL_FRAME_BYTES long). */
function writeFrameHeader(h: Buffer, payload: Buffer): Buffer {
  MAGIC.copy(h, 0);
  h.writeUInt32LE(payload.length, 4);
  h.writeUInt32LE(crc32(payload, crc32(h.subarray(4, 8))), 8);
  return h;
}

/** The spool's frame header for `payload`, for other files that share its framing (shared/journal.ts). */
export function frameHeader(payload: Buffer): Buffer {
  return writeFrameHeader(Buffer.allocUnsafe(HEADER), payload);
}

export interface ScannedFrames {
  payloads: Buffer[];
  /** Damaged stretches skipped, with why (see plumb_spool_corrupt_total for the reasons). */
  problems: { offset: number; reason: 'torn' | 'checksum' | 'length'; bytes: number }[];
  /** Where the last valid frame ends. */
  validEnd: number;
}

function frameAt(buf: Buffer, pos: number): number | CorruptReason {
  if (pos + HEADER > buf.length) return 'torn';
  if (buf[pos] !== MAGIC[0] || buf[pos + 1] !== MAGIC[1] || buf[pos + 2] !== MAGIC[2] || buf[pos + 3] !== MAGIC[3]) return 'checksum';
  const len = buf.readUInt32LE(pos + 4);
  if (pos + HEADER + len > buf.length) return 'torn';
  const crc = crc32(buf.subarray(pos + HEADER, pos + HEADER + len), crc32(buf.subarray(pos + 4, pos + 8)));
  return crc === buf.readUInt32LE(pos + 8) ? len : 'checksum';
}

/** The frames of a file read into memory, jumping over damaged stretches like a spool open does. */
export function scanFrames(buf: Buffer): ScannedFrames {
  const out: ScannedFrames = { payloads: [], problems: [], validEnd: 0 };
  let pos = 0;
  while (pos < buf.length) {
    const r = frameAt(buf, pos);
    if (typeof r === 'number') {
      out.payloads.push(buf.subarray(pos + HEADER, pos + HEADER + r));
      pos += HEADER + r;
      out.validEnd = pos;
      continue;
    }
    let next = buf.length;
    for (let i = buf.indexOf(MAGIC, pos + 1); i >= 0; i = buf.indexOf(MAGIC, i + 1)) {
      if (typeof frameAt(buf, i) === 'number') {
        next = i;
        break;
      }
    }
    out.problems.push({ offset: pos, reason: r === 'torn' && next < buf.length ? 'length' : r, bytes: next - pos });
    pos = next;
  }
  return out;
}

function segmentName(id: number): string {
  return `${String(id).padStart(20, '0')}.seg`;
}

/** An I/O error's code (ENOSPC, EACCES…), or its message when it has none. */
export function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? (err instanceof Error ? err.message : String(err));
}

function spoolError(code: ErrorCode, message: string, cause?: unknown): PlumbError {
  return new PlumbError(code, message, cause === undefined ? undefined : { cause });
}

function dirError(name: string, dir: string, what: string, cause?: unknown): PlumbError {
  const reason = cause === undefined ? '' : ` (${errCode(cause)})`;
  return spoolError(
    PLUMB_ERR_SPOOL_DIR,
    `spool "${name}": ${what}${reason}; create ${dir} as a directory readable and writable by the user plumb runs as, or configure another spool directory`,
    cause,
  );
}

function keptKey(seg: number, offset: number): string {
  return `${seg}:${offset}`;
}

function compare(a: { seg: number; offset: number }, b: { seg: number; offset: number }): number {
  return a.seg !== b.seg ? a.seg - b.seg : a.offset - b.offset;
}

/** A reusable view of one region of a file. */
class Window {
  buf: Buffer;
  start = 0;
  len = 0;
  private owner: FileHandle | null = null;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Makes bytes [pos, pos + n) of the file available (n at most the window size); false when `limit` (or the file) ends first. */
  async load(fh: FileHandle, pos: number, n: number, limit: number): Promise<boolean> {
    if (this.owner === fh && pos >= this.start && pos + n <= this.start + this.len) return true;
    if (pos + n > limit) return false;
    const want = Math.min(this.buf.length, limit - pos);
    this.owner = null;
    let got = 0;
    while (got < want) {
      const { bytesRead } = await fh.read(this.buf, got, want - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    this.owner = fh;
    this.start = pos;
    this.len = got;
    return got >= n;
  }

  /** A copy of bytes [pos, pos + n); large ones are read straight into their own buffer. */
  async copy(fh: FileHandle, pos: number, n: number, limit: number): Promise<Buffer> {
    if (n <= this.buf.length) {
      if (!(await this.load(fh, pos, n, limit))) throw new Error(`unexpected end of file at ${pos + n}`);
      return Buffer.from(this.buf.subarray(pos - this.start, pos - this.start + n));
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const { bytesRead } = await fh.read(out, got, n - got, pos + got);
      if (bytesRead === 0) throw new Error(`unexpected end of file at ${pos + got}`);
      got += bytesRead;
    }
    return out;
  }

  forget(): void {
    this.owner = null;
    this.len = 0;
  }
}

/**
 * The payload length of a valid frame at `pos`, or why there is none: 'torn' when it runs past
 * `end`. Lengths are judged against the segment, not today's maxRecordBytes, so records spooled
 * under a larger limit stay readable; large payloads are checksummed a window at a time.
 */
async function checkFrame(win: Window, fh: FileHandle, pos: number, end: number): Promise<number | CorruptReason> {
  if (!(await win.load(fh, pos, HEADER, end))) return 'torn';
  const at = pos - win.start;
  const b = win.buf;
  if (b[at] !== MAGIC[0] || b[at + 1] !== MAGIC[1] || b[at + 2] !== MAGIC[2] || b[at + 3] !== MAGIC[3]) return 'checksum';
  const len = b.readUInt32LE(at + 4);
  const stored = b.readUInt32LE(at + 8);
  if (pos + HEADER + len > end) return 'torn';
  let crc = crc32(b.subarray(at + 4, at + 8));
  const stop = pos + HEADER + len;
  for (let p = pos + HEADER; p < stop; ) {
    const n = Math.min(win.buf.length, stop - p);
    if (!(await win.load(fh, p, n, end))) return 'torn';
    const a = p - win.start;
    crc = crc32(win.buf.subarray(a, a + n), crc);
    p += n;
  }
  return crc === stored ? len : 'checksum';
}

/** Offset of the first valid frame at or after `pos`, or `end`. */
async function resync(win: Window, fh: FileHandle, pos: number, end: number): Promise<number> {
  let p = pos;
  while (p + HEADER <= end) {
    if (!(await win.load(fh, p, HEADER, end))) return end;
    const i = win.buf.subarray(0, win.len).indexOf(MAGIC, p - win.start);
    if (i < 0) {
      p = Math.max(p + 1, win.start + win.len - (MAGIC.length - 1));
      continue;
    }
    const q = win.start + i;
    if (typeof (await checkFrame(win, fh, q, end)) === 'number') return q;
    p = q + 1;
  }
  return end;
}

interface ScanResult {
  count: number;
  gaps: Gap[];
  problems: Problem[];
  /** Records ending at or before the `upTo` offset given, and where the last of them ends. */
  countUpTo: number;
  endUpTo: number;
}

/** Walks the frames in [from, end), jumping over damaged stretches. */
async function scanRange(win: Window, fh: FileHandle, from: number, end: number, upTo = -1): Promise<ScanResult> {
  const result: ScanResult = { count: 0, gaps: [], problems: [], countUpTo: 0, endUpTo: from };
  let pos = from;
  while (pos < end) {
    const r = await checkFrame(win, fh, pos, end);
    if (typeof r === 'number') {
      result.count++;
      pos += HEADER + r;
      if (pos <= upTo) {
        result.countUpTo = result.count;
        result.endUpTo = pos;
      }
      continue;
    }
    const next = await resync(win, fh, pos + 1, end);
    // A frame running past the end is a torn write if nothing valid follows, else a damaged length.
    const reason: CorruptReason = r === 'torn' && next < end ? 'length' : r;
    result.gaps.push({ from: pos, to: next });
    result.problems.push({ offset: pos, reason, bytes: next - pos });
    pos = next;
  }
  return result;
}

/** Writes `bufs` (`total` bytes together) at `position`, finishing a short vectored write. */
export async function writeFully(fh: FileHandle, bufs: Buffer[], position: number, total = bufs.reduce((n, b) => n + b.length, 0)): Promise<void> {
  let written = (await fh.writev(bufs, position)).bytesWritten;
  if (written === total) return;
  const rest = Buffer.concat(bufs);
  while (written < total) {
    const { bytesWritten } = await fh.write(rest, written, total - written, position + written);
    if (bytesWritten === 0) throw new Error('short write');
    written += bytesWritten;
  }
}

/** fsyncs a directory, so a file created, renamed or removed in it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

function validate(o: SpoolOptions): void {
  const bad: string[] = [];
  const positive = (key: keyof SpoolOptions, v: unknown): boolean => {
    if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return true;
    bad.push(`${key} must be a positive integer (got ${String(v)})`);
    return false;
  };
  if (typeof o.name !== 'string' || o.name === '') bad.push('name must be a non-empty string');
  if (typeof o.dir !== 'string' || o.dir === '') bad.push('dir must be a directory path');
  const sizes = [positive('maxBytes', o.maxBytes), positive('segmentBytes', o.segmentBytes), positive('maxRecordBytes', o.maxRecordBytes)].every(Boolean);
  if (sizes) {
    if (o.segmentBytes > o.maxBytes) bad.push(`segmentBytes (${o.segmentBytes}) must not exceed maxBytes (${o.maxBytes})`);
    if (o.maxRecordBytes > MAX_RECORD_LIMIT) bad.push(`maxRecordBytes must be at most ${MAX_RECORD_LIMIT}`);
    if (o.maxRecordBytes + HEADER > o.maxBytes) bad.push(`maxRecordBytes (${o.maxRecordBytes}) plus ${HEADER} bytes of framing must fit in maxBytes (${o.maxBytes})`);
  }
  if (o.fsync !== 'batch' && o.fsync !== 'interval' && o.fsync !== 'never') bad.push(`fsync must be batch, interval or never (got ${String(o.fsync)})`);
  if (o.fsync === 'interval' && o.fsyncIntervalMs !== undefined) positive('fsyncIntervalMs', o.fsyncIntervalMs);
  if (bad.length > 0) throw new PlumbError('PLUMB_ERR_CONFIG_INVALID', `spool "${String(o.name)}": ${bad.join('; ')}`);
}

interface SetGauge {
  set(value: number): void;
}
interface IncCounter {
  inc(value?: number): void;
}

export class Spool {
  readonly name: string;
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly maxRecordBytes: number;
  private readonly fsync: SpoolFsync;
  private readonly log: Logger;
  private readonly logOnce: LogOnce;

  /** Oldest first; the last one is the tail while `tailFh` is set. */
  private segments: Segment[] = [];
  private tail: Segment | null = null;
  private tailFh: FileHandle | null = null;
  private nextId = 1;
  private diskBytes = 0;
  private tailDirty = false;
  private syncQueued = false;

  private ackCursor: Cursor = { seg: 1, offset: 0, index: 0 };
  private readCursor: Cursor = { seg: 1, offset: 0, index: 0 };
  /** The furthest position read() has handed out; acks beyond it are refused. */
  private handedOut: Cursor = { seg: 1, offset: 0, index: 0 };
  private rewinds = 0;
  private readFh: FileHandle | null = null;
  private readSeg: Segment | null = null;
  private readonly readWindow = new Window(READ_WINDOW_BYTES);
  private readonly keepBytes: number;
  /** Records kept for the reader, by keptKey of their frame's start (SpoolOptions.keepForReaderBytes). */
  private readonly kept = new Map<string, Kept>();
  private keptBytes = 0;

  private writeChain: Promise<unknown> = Promise.resolve();
  private readChain: Promise<unknown> = Promise.resolve();
  private cursorWrite: Promise<void> | null = null;
  private readonly acking = new Set<Promise<void>>();
  private cursorDirty = false;
  private readonly waiters = new Set<() => void>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  private readonly bytesGauge: SetGauge;
  private readonly recordsGauge: SetGauge;
  private readonly segmentsGauge: SetGauge;
  private readonly refusedFull: IncCounter;
  private readonly refusedTooLarge: IncCounter;
  private readonly corrupt: Record<CorruptReason, IncCounter>;

  private constructor(options: SpoolOptions, dir: string, ctx: SpoolContext) {
    this.name = options.name;
    this.dir = dir;
    this.maxBytes = options.maxBytes;
    this.segmentBytes = options.segmentBytes;
    this.maxRecordBytes = options.maxRecordBytes;
    this.fsync = options.fsync;
    this.keepBytes = options.keepForReaderBytes ?? 0;
    this.log = ctx.log.child({ component: 'spool', spool: options.name });
    this.logOnce = new LogOnce(this.log);
    const t = ctx.telemetry;
    const spool = { spool: options.name };
    this.bytesGauge = t.gauge('plumb_spool_bytes', 'Bytes of segment files on disk, counted against the spool maxBytes.', ['spool']).labels(spool);
    this.recordsGauge = t.gauge('plumb_spool_records', 'Records on disk not yet acknowledged by the reader.', ['spool']).labels(spool);
    this.segmentsGauge = t.gauge('plumb_spool_segments', 'Segment files of the spool.', ['spool']).labels(spool);
    const refused = t.counter('plumb_spool_refused_total', 'Records refused at append, by reason (full: maxBytes reached or disk full; too_large: above maxRecordBytes).', ['spool', 'reason']);
    this.refusedFull = refused.labels({ ...spool, reason: 'full' });
    this.refusedTooLarge = refused.labels({ ...spool, reason: 'too_large' });
    const corrupt = t.counter('plumb_spool_corrupt_total', 'Damaged stretches of segment files skipped, by reason (torn: incomplete last record; checksum: bad checksum or not a record; length: a record length reaching past the end of its segment, with valid records after it).', ['spool', 'reason']);
    this.corrupt = { torn: corrupt.labels({ ...spool, reason: 'torn' }), checksum: corrupt.labels({ ...spool, reason: 'checksum' }), length: corrupt.labels({ ...spool, reason: 'length' }) };
    for (const c of [this.refusedFull, this.refusedTooLarge, ...CORRUPT_REASONS.map((r) => this.corrupt[r])]) c.inc(0);
    if (this.fsync === 'interval') {
      this.timer = setInterval(() => {
        if (this.syncQueued) return;
        this.syncQueued = true;
        void this.serialWrite(() => this.syncTail());
      }, options.fsyncIntervalMs ?? 1000);
      this.timer.unref();
    }
  }

  /** Opens (creating if needed) the spool in options.dir, scanning and repairing its segments. */
  static async open(options: SpoolOptions, ctx: SpoolContext): Promise<Spool> {
    validate(options);
    const dir = resolve(options.dir);
    if (openDirs.has(dir)) throw dirError(options.name, dir, `${dir} is already open by another spool in this process`);
    await prepareDir(options.name, dir);
    openDirs.add(dir);
    const spool = new Spool(options, dir, ctx);
    try {
      await spool.load();
    } catch (err) {
      await spool.close().catch(() => undefined);
      throw err;
    }
    return spool;
  }

  /** Bytes of segment files on disk (what maxBytes limits). */
  get bytes(): number {
    return this.diskBytes;
  }

  /** Whether `data`, given to append(), is kept in memory for the reader (keepForReaderBytes). */
  keeps(data: Buffer): boolean {
    if (this.kept.size === 0) return false;
    for (const k of this.kept.values()) if (k.data === data) return true;
    return false;
  }

  /** Records on disk not yet acknowledged. */
  get records(): number {
    return this.countFrom(this.norm(this.ackCursor));
  }

  /**
   * Appends the records in order, all or none. False when they do not fit in maxBytes (or the
   * disk is full) or one is larger than maxRecordBytes; the refusal is counted. Under the 'batch'
   * policy the records are on stable storage when this resolves with true. `positions`, when
   * given, receives each record's position (as read() will report it) once they are written.
   */
  append(records: readonly Buffer[], positions?: SpoolPosition[]): Promise<boolean> {
    if (this.closed) return Promise.reject(new Error(`spool "${this.name}" is closed`));
    return this.serialWrite(() => this.appendNow(records, positions));
  }

  /**
   * The next records not yet handed out, oldest first, up to the limits (at least one when any
   * is unread). Empty when there is nothing to read; see waitForData().
   */
  read(limits: SpoolReadLimits): Promise<SpoolRecord[]> {
    if (this.closed) return Promise.reject(new Error(`spool "${this.name}" is closed`));
    const run = this.readChain.then(() => this.readNow(limits));
    this.readChain = run.catch(() => undefined);
    return run;
  }

  /**
   * Marks everything up to and including the record at `position` as done. The acknowledged
   * place is persisted before this resolves; segments holding only acknowledged records are deleted.
   */
  ack(position: SpoolPosition): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`spool "${this.name}" is closed`));
    const run = this.ackNow(position);
    this.acking.add(run);
    void run.finally(() => this.acking.delete(run)).catch(() => undefined);
    return run;
  }

  private async ackNow(position: SpoolPosition): Promise<void> {
    const p = { seg: position.segment, offset: position.offset };
    if (compare(p, this.norm(this.ackCursor)) <= 0) return;
    if (compare(p, this.handedOut) > 0) throw new RangeError(`spool "${this.name}": acknowledged a position that was never read (segment ${position.segment}, offset ${position.offset})`);
    let next: Cursor = { seg: position.segment, offset: position.offset, index: position.ordinal };
    const doomed: Segment[] = [];
    while (this.segments.length > 0) {
      const s = this.segments[0];
      if (s === this.tail || s.id > next.seg || (s.id === next.seg && next.index < s.count)) break;
      doomed.push(this.segments.shift() as Segment);
      this.diskBytes -= s.end;
      if (s.id === next.seg) next = { seg: s.id + 1, offset: 0, index: 0 };
    }
    this.ackCursor = next;
    if (compare(this.readCursor, next) < 0) this.readCursor = next;
    // kept records now behind the acknowledged place will not be read
    if (this.kept.size > 0) for (const [key, k] of this.kept) if (compare(k, next) < 0) this.forgetKept(key, k);
    this.publishGauges();
    await this.persistCursor();
    for (const s of doomed) await unlink(s.path).catch((err: unknown) => this.warnIo('delete', s.path, err));
    // Everything delivered: the tail goes too, so a drained queue holds no delivered data on disk
    // (in the write order, so no append is writing into it).
    if (this.records === 0 && this.tail !== null) {
      await this.serialWrite(async () => {
        if (this.records === 0 && !this.closed) await this.retireTail();
      });
    }
  }

  /** Puts the read cursor back at the first unacknowledged record: the next read() starts there. */
  rewind(): void {
    this.rewinds++;
    this.readCursor = this.ackCursor;
    if (this.unread() > 0) this.wake();
  }

  /** Resolves when there is something to read, the signal aborts or the spool closes. */
  waitForData(signal?: AbortSignal): Promise<void> {
    if (this.closed || signal?.aborted || this.unread() > 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        signal?.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Finishes appends, reads and acknowledgements already called, syncs and closes the files. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    clearInterval(this.timer);
    this.kept.clear();
    this.keptBytes = 0;
    this.wake();
    this.closing = (async () => {
      try {
        await this.writeChain;
        await this.readChain;
        await Promise.allSettled([...this.acking]);
        if (this.tailFh) {
          if (this.fsync !== 'never') await this.tailFh.datasync().catch((err: unknown) => this.warnIo('sync', this.tail?.path ?? this.dir, err));
          await this.tailFh.close().catch(() => undefined);
          this.tailFh = null;
          this.tail = null;
        }
        await this.closeReadHandle();
      } finally {
        openDirs.delete(this.dir);
      }
    })();
    return this.closing;
  }

  // ---- opening ----

  private async load(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      throw dirError(this.name, this.dir, `${this.dir} cannot be listed`, err);
    }
    const ids: number[] = [];
    for (const n of names) {
      const m = SEGMENT_NAME.exec(n);
      if (m) {
        const id = Number(m[1]);
        if (Number.isSafeInteger(id) && id > 0) ids.push(id);
        else this.log.warn({ file: join(this.dir, n) }, 'spool: ignoring a segment file with an out-of-range number');
      } else if (n === CURSOR_TMP) {
        await unlink(join(this.dir, n)).catch(() => undefined);
      }
    }
    ids.sort((a, b) => a - b);
    const saved = await this.readCursorFile();
    const win = new Window(SCAN_WINDOW_BYTES);
    let ack: Cursor | null = null;
    for (const id of ids) {
      const path = join(this.dir, segmentName(id));
      if (saved && id < saved.seg) {
        // Fully acknowledged before the last stop; its deletion did not happen.
        await unlink(path).catch((err: unknown) => this.warnIo('delete', path, err));
        continue;
      }
      const seg = await this.scanSegment(win, id, path, saved && saved.seg === id ? saved.offset : -1);
      if (!seg) continue;
      this.segments.push(seg.segment);
      this.diskBytes += seg.segment.end;
      if (seg.ack) ack = seg.ack;
    }
    const maxId = Math.max(0, ...ids, saved?.seg ?? 0);
    this.nextId = maxId + 1;
    this.ackCursor = ack ?? (saved ? { seg: saved.seg + 1, offset: 0, index: 0 } : { seg: this.segments[0]?.id ?? this.nextId, offset: 0, index: 0 });
    this.readCursor = this.ackCursor;
    this.handedOut = this.ackCursor;
    this.publishGauges();
  }

  private async scanSegment(win: Window, id: number, path: string, ackOffset: number): Promise<{ segment: Segment; ack: Cursor | null } | null> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r+');
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT') return null;
      if (code === 'EISDIR') {
        this.log.warn({ file: path }, 'spool: ignoring a directory named like a segment file');
        return null;
      }
      throw dirError(this.name, this.dir, `segment ${path} cannot be opened for reading and writing`, err);
    }
    try {
      const size = (await fh.stat()).size;
      const scan = await scanRange(win, fh, 0, size, ackOffset);
      win.forget();
      this.reportCorrupt(path, scan.problems);
      let end = size;
      const last = scan.gaps.at(-1);
      if (last && last.to === size) {
        try {
          await fh.truncate(last.from);
          end = last.from;
          scan.gaps.pop();
        } catch (err) {
          this.warnIo('truncate', path, err);
        }
      }
      // Nothing valid left, or everything acknowledged before the last stop: the segment can go.
      if (scan.count === 0 || (ackOffset >= 0 && scan.countUpTo >= scan.count)) {
        await fh.close();
        await unlink(path).catch((err: unknown) => this.warnIo('delete', path, err));
        return null;
      }
      const segment: Segment = { id, path, end, count: scan.count, gaps: scan.gaps };
      return { segment, ack: ackOffset >= 0 ? { seg: id, offset: scan.endUpTo, index: scan.countUpTo } : null };
    } catch (err) {
      throw err instanceof PlumbError ? err : dirError(this.name, this.dir, `segment ${path} cannot be read`, err);
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  private async readCursorFile(): Promise<{ seg: number; offset: number } | null> {
    const path = join(this.dir, CURSOR_FILE);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      if (errCode(err) === 'ENOENT') return null;
      throw dirError(this.name, this.dir, `${path} cannot be read`, err);
    }
    if (buf.length === CURSOR_BYTES && buf.subarray(0, 4).equals(CURSOR_MAGIC) && crc32(buf.subarray(0, 20)) === buf.readUInt32LE(20)) {
      const seg = Number(buf.readBigUInt64LE(4));
      const offset = Number(buf.readBigUInt64LE(12));
      if (Number.isSafeInteger(seg) && Number.isSafeInteger(offset)) return { seg, offset };
    }
    this.log.warn({ file: path }, 'spool: the cursor file is damaged; reading restarts at the oldest segment, so records may be delivered again');
    return null;
  }

  // ---- writing ----

  private serialWrite<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.writeChain.then(fn);
    this.writeChain = run.catch(() => undefined);
    return run;
  }

  private async appendNow(records: readonly Buffer[], positions: SpoolPosition[] | undefined): Promise<boolean> {
    let total = 0;
    for (const r of records) {
      if (r.length > this.maxRecordBytes) {
        this.refusedTooLarge.inc(records.length);
        this.logOnce.warn('too_large', { spool: this.name, recordBytes: r.length, maxRecordBytes: this.maxRecordBytes }, 'spool: refused an append with a record above maxRecordBytes');
        return false;
      }
      total += HEADER + r.length;
    }
    if (records.length === 0) return true;
    // A tail holding only acknowledged records is dropped rather than counted against the limit.
    if (this.tail && this.tail.end + total > this.segmentBytes && this.records === 0) await this.retireTail();
    if (this.diskBytes + total > this.maxBytes) {
      this.refusedFull.inc(records.length);
      return false;
    }

    const headers = Buffer.allocUnsafe(HEADER * records.length);
    const parts: Part[] = [];
    let part: Part = { seg: this.tail, start: this.tail?.end ?? 0, bytes: 0, count: 0, bufs: [] };
    parts.push(part);
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      const h = writeFrameHeader(headers.subarray(i * HEADER, (i + 1) * HEADER), r);
      const size = part.start + part.bytes;
      if (size > 0 && size + HEADER + r.length > this.segmentBytes) {
        part = { seg: null, start: 0, bytes: 0, count: 0, bufs: [] };
        parts.push(part);
      }
      part.bufs.push(h, r);
      part.bytes += HEADER + r.length;
      part.count++;
    }

    const created: { seg: Segment; fh: FileHandle }[] = [];
    const handles: FileHandle[] = [];
    let path = this.tail?.path ?? this.dir;
    try {
      for (const p of parts) {
        if (p.count === 0) continue;
        let fh = this.tailFh;
        if (!p.seg || !fh) {
          const c = await this.createSegment();
          created.push(c);
          p.seg = c.seg;
          fh = c.fh;
        }
        path = p.seg.path;
        handles.push(fh);
        await writeFully(fh, p.bufs, p.start, p.bytes);
      }
      // Under 'interval', segments sealed here are synced now; the timer only looks after the tail.
      let toSync: FileHandle[] = [];
      if (this.fsync === 'batch') toSync = handles;
      else if (this.fsync === 'interval' && created.length > 0) toSync = [...(this.tailFh ? [this.tailFh] : []), ...created.slice(0, -1).map((c) => c.fh)];
      for (const fh of toSync) await fh.datasync();
      if (this.fsync === 'batch' && created.length > 0) await syncDir(this.dir);
    } catch (err) {
      await this.rollback(parts, created);
      if (errCode(err) === 'ENOSPC') {
        this.refusedFull.inc(records.length);
        this.logOnce.warn('enospc', { spool: this.name, file: path }, 'spool: the disk is full; appends are refused');
        return false;
      }
      throw spoolError(PLUMB_ERR_SPOOL_IO, `spool "${this.name}": writing ${path} failed (${errCode(err)}); check the disk and the permissions of ${this.dir}`, err);
    }

    // Publish: from here on the reader sees the records.
    let next = 0;
    for (const p of parts) {
      if (!p.seg) continue;
      if (positions !== undefined) {
        let offset = p.start;
        for (let k = 0; k < p.count; k++) {
          offset += HEADER + records[next + k].length;
          positions.push({ segment: p.seg.id, offset, ordinal: p.seg.count + k + 1 });
        }
      }
      if (this.keepBytes > 0) {
        let start = p.start;
        for (let k = 0; k < p.count; k++) {
          const data = records[next + k];
          if (this.keptBytes + data.length <= this.keepBytes && this.kept.size < MAX_KEPT) {
            this.kept.set(keptKey(p.seg.id, start), { seg: p.seg.id, offset: start, data });
            this.keptBytes += data.length;
          }
          start += HEADER + data.length;
        }
      }
      next += p.count;
      p.seg.end = p.start + p.bytes;
      p.seg.count += p.count;
    }
    this.diskBytes += total;
    if (created.length > 0) {
      const sealed = this.tailFh ? [this.tailFh] : [];
      for (const c of created) this.segments.push(c.seg);
      for (const c of created.slice(0, -1)) sealed.push(c.fh);
      const last = created[created.length - 1];
      this.tail = last.seg;
      this.tailFh = last.fh;
      for (const fh of sealed) await fh.close().catch(() => undefined);
    }
    this.tailDirty = true;
    this.publishGauges();
    this.wake();
    return true;
  }

  private async createSegment(): Promise<{ seg: Segment; fh: FileHandle }> {
    for (;;) {
      const id = this.nextId++;
      const path = join(this.dir, segmentName(id));
      try {
        const fh = await open(path, 'wx');
        return { seg: { id, path, end: 0, count: 0, gaps: [] }, fh };
      } catch (err) {
        if (errCode(err) !== 'EEXIST') throw err;
      }
    }
  }

  /** Undoes a failed append: new segments go, the tail is cut back to its published end. */
  private async rollback(parts: Part[], created: { seg: Segment; fh: FileHandle }[]): Promise<void> {
    for (const c of created) {
      await c.fh.close().catch(() => undefined);
      await unlink(c.seg.path).catch(() => undefined);
    }
    const tail = this.tail;
    if (tail && this.tailFh && parts[0].seg === tail && parts[0].count > 0) {
      try {
        await this.tailFh.truncate(tail.end);
      } catch (err) {
        // Leave the stray bytes for the next open to find; write no more into this file.
        this.warnIo('truncate', tail.path, err);
        await this.tailFh.close().catch(() => undefined);
        this.tailFh = null;
        this.tail = null;
      }
    }
  }

  /** Drops a tail whose records are all acknowledged. */
  private async retireTail(): Promise<void> {
    const tail = this.tail;
    if (!tail) return;
    await this.tailFh?.close().catch(() => undefined);
    this.tail = null;
    this.tailFh = null;
    this.segments = this.segments.filter((s) => s !== tail);
    this.diskBytes -= tail.end;
    this.publishGauges();
    await unlink(tail.path).catch((err: unknown) => this.warnIo('delete', tail.path, err));
  }

  private async syncTail(): Promise<void> {
    this.syncQueued = false;
    if (!this.tailDirty || !this.tailFh) return;
    this.tailDirty = false;
    await this.tailFh.datasync().catch((err: unknown) => this.warnIo('sync', this.tail?.path ?? this.dir, err));
  }

  // ---- reading ----

  private async readNow(limits: SpoolReadLimits): Promise<SpoolRecord[]> {
    const generation = this.rewinds;
    const out: SpoolRecord[] = [];
    let bytes = 0;
    let c = this.norm(this.readCursor);
    try {
      while (out.length < limits.maxRecords) {
        const i = this.segmentIndex(c.seg);
        if (i < 0) break;
        const seg = this.segments[i];
        if (c.offset >= seg.end) {
          if (seg === this.tail || i === this.segments.length - 1) break;
          c = { seg: this.segments[i + 1].id, offset: 0, index: 0 };
          continue;
        }
        const gap = seg.gaps.length > 0 ? seg.gaps.find((g) => g.from === c.offset) : undefined;
        if (gap) {
          c = { seg: c.seg, offset: gap.to, index: c.index };
          continue;
        }
        const kept = this.kept.size > 0 ? this.kept.get(keptKey(seg.id, c.offset)) : undefined;
        if (kept !== undefined && c.offset + HEADER + kept.data.length <= seg.end) {
          // the bytes this process wrote there and synced: no need to read them back
          const n = kept.data.length;
          if (out.length > 0 && bytes + n > limits.maxBytes) break;
          this.forgetKept(keptKey(seg.id, c.offset), kept);
          c = { seg: seg.id, offset: c.offset + HEADER + n, index: c.index + 1 };
          out.push({ data: kept.data, position: { segment: seg.id, offset: c.offset, ordinal: c.index } });
          bytes += n;
          continue;
        }
        const fh = await this.readHandle(seg);
        const r = await checkFrame(this.readWindow, fh, c.offset, seg.end);
        if (typeof r !== 'number') {
          await this.recover(seg, fh, c);
          continue;
        }
        if (out.length > 0 && bytes + r > limits.maxBytes) break;
        const data = await this.readWindow.copy(fh, c.offset + HEADER, r, seg.end);
        c = { seg: seg.id, offset: c.offset + HEADER + r, index: c.index + 1 };
        out.push({ data, position: { segment: seg.id, offset: c.offset, ordinal: c.index } });
        bytes += r;
      }
    } catch (err) {
      if (out.length === 0) throw err instanceof PlumbError ? err : spoolError(PLUMB_ERR_SPOOL_IO, `spool "${this.name}": reading ${this.readSeg?.path ?? this.dir} failed (${errCode(err)}); check the disk`, err);
      // Hand out what was read; the failure repeats on the next read if it persists.
    }
    if (out.length > 0 && compare(c, this.handedOut) > 0) this.handedOut = c;
    // A rewind while reading wins; an ack while reading may have moved past what was read.
    if (generation === this.rewinds) this.readCursor = compare(c, this.ackCursor) < 0 ? this.ackCursor : c;
    return out;
  }

  private forgetKept(key: string, k: Kept): void {
    this.kept.delete(key);
    this.keptBytes -= k.data.length;
  }

  /** A record that was valid when written no longer is: skip the damage and recount the segment. */
  private async recover(seg: Segment, fh: FileHandle, c: Cursor): Promise<void> {
    const end = seg.end;
    const expected = seg.count - c.index;
    const scan = await scanRange(this.readWindow, fh, c.offset, end);
    if (scan.gaps[0]?.from !== c.offset) {
      throw spoolError(PLUMB_ERR_SPOOL_IO, `spool "${this.name}": ${seg.path} reads differently each time at offset ${c.offset}; check the disk`);
    }
    this.reportCorrupt(seg.path, scan.problems);
    seg.count -= Math.max(0, expected - scan.count);
    seg.gaps = [...seg.gaps, ...scan.gaps].sort((a, b) => a.from - b.from);
    this.publishGauges();
  }

  private async readHandle(seg: Segment): Promise<FileHandle> {
    if (this.readSeg === seg && this.readFh) return this.readFh;
    await this.closeReadHandle();
    this.readFh = await open(seg.path, 'r');
    this.readSeg = seg;
    return this.readFh;
  }

  private async closeReadHandle(): Promise<void> {
    const fh = this.readFh;
    this.readFh = null;
    this.readSeg = null;
    this.readWindow.forget();
    await fh?.close().catch(() => undefined);
  }

  // ---- cursors ----

  /** The cursor moved onto an existing segment when its own is gone (deleted once fully acknowledged). */
  private norm(c: Cursor): Cursor {
    for (const s of this.segments) {
      if (s.id === c.seg) return c;
      if (s.id > c.seg) return { seg: s.id, offset: 0, index: 0 };
    }
    return c;
  }

  private segmentIndex(id: number): number {
    for (let i = 0; i < this.segments.length; i++) if (this.segments[i].id === id) return i;
    return -1;
  }

  /** Records at or after the cursor. */
  private countFrom(c: Cursor): number {
    let n = 0;
    for (const s of this.segments) {
      if (s.id > c.seg) n += s.count;
      else if (s.id === c.seg) n += s.count - c.index;
    }
    return n;
  }

  private unread(): number {
    return this.countFrom(this.norm(this.readCursor));
  }

  /** Writes the acknowledged cursor; concurrent calls share one write. */
  private async persistCursor(): Promise<void> {
    this.cursorDirty = true;
    while (this.cursorWrite) await this.cursorWrite;
    if (!this.cursorDirty) return;
    this.cursorDirty = false;
    const c = this.norm(this.ackCursor);
    this.cursorWrite = this.writeCursorFile(c).finally(() => {
      this.cursorWrite = null;
    });
    await this.cursorWrite;
  }

  private async writeCursorFile(c: Cursor): Promise<void> {
    const buf = Buffer.alloc(CURSOR_BYTES);
    CURSOR_MAGIC.copy(buf, 0);
    buf.writeBigUInt64LE(BigInt(c.seg), 4);
    buf.writeBigUInt64LE(BigInt(c.offset), 12);
    buf.writeUInt32LE(crc32(buf.subarray(0, 20)), 20);
    const tmp = join(this.dir, CURSOR_TMP);
    try {
      const fh = await open(tmp, 'w');
      try {
        await fh.write(buf, 0, buf.length, 0);
        if (this.fsync === 'batch') await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(this.dir, CURSOR_FILE));
    } catch (err) {
      // A stale cursor only means records are delivered again after a restart.
      this.warnIo('cursor', tmp, err);
    }
  }

  // ---- telemetry ----

  private publishGauges(): void {
    this.bytesGauge.set(this.diskBytes);
    this.recordsGauge.set(this.records);
    this.segmentsGauge.set(this.segments.length);
  }

  private reportCorrupt(file: string, problems: Problem[]): void {
    for (const p of problems) {
      this.corrupt[p.reason].inc();
      this.logOnce.warn(
        `corrupt_${p.reason}`,
        { spool: this.name, file, offset: p.offset, skippedBytes: p.bytes, reason: p.reason },
        'spool: skipped a damaged stretch of a segment file (counted in plumb_spool_corrupt_total)',
      );
    }
  }

  private warnIo(op: string, file: string, err: unknown): void {
    this.logOnce.warn(`io_${op}`, { spool: this.name, file, op, code: errCode(err) }, `spool: ${op} failed`);
  }

  private wake(): void {
    if (this.waiters.size === 0) return;
    const all = [...this.waiters];
    this.waiters.clear();
    for (const w of all) w();
  }
}

async function prepareDir(name: string, dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw dirError(name, dir, `${dir} could not be created`, err);
  }
  try {
    if (!(await stat(dir)).isDirectory()) throw dirError(name, dir, `${dir} is not a directory`);
    await access(dir, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
  } catch (err) {
    throw err instanceof PlumbError ? err : dirError(name, dir, `${dir} is not readable and writable by this process`, err);
  }
}
