/**
 * The file sink's write-ahead record, in `<dir>/.plumb-writes/`. Before the sink appends to its
 * hour files it appends (and syncs) one record here: which events it is about to write and, for
 * each file, the path and its size before and after the append (the bytes are known up front).
 * The records are what lets a restarted sink tell a replay of its disk queue from new events:
 *
 * - A record followed by another one was carried out: the sink appends the next record only
 *   after the previous write returned. Groups (one file each) whose append failed in the running
 *   process are named in a later record (`x`), so their events do not count as written.
 * - The last record may have been cut short by the crash. Each of its files at least as long as
 *   its "after" size was written; a shorter one is cut back to its "before" size (the partial
 *   lines go; the runner's queue still holds those events and writes them again).
 *
 * The ids of the events written by the records of the last two record files are the window of
 * ids the sink remembers: a new record file is begun once the current one names `windowIds`
 * ids (or holds 16 MiB) and the one before the previous is deleted, so the sink always knows at
 * least the last `windowIds` ids it wrote (fewer only with ids so long that 16 MiB holds fewer)
 * and reads at most two files at open. Records use the disk queue's
 * framing (shared/spool.ts: magic, length, CRC); a torn or damaged record is skipped, and a
 * torn tail is cut off before appending again.
 */
import { mkdir, open, readdir, readFile, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { frameHeader, scanFrames } from '../../shared/spool.ts';
import { LOG_EVENT_FILE_CHARS, logEventOffset } from '../../shared/wire.ts';
import { SeenEvents } from '../ingest/dedupe.ts';

/** One file of one write: where, and which events. */
export interface IntentGroup {
  /** The data file, relative to the sink's directory. */
  path: string;
  before: number;
  after: number;
  /** Ids of the events in this append (events without one are not remembered). */
  ids: readonly string[];
}

/** What open found. */
export interface IntentRecovery {
  /** Records read from the last two record files. */
  records: number;
  /** Ids written by those records: the remembered window. */
  ids: number;
  /** Data files cut back to their size before a write that did not finish. */
  undone: number;
  /** Bytes of torn or damaged records skipped. */
  damagedBytes: number;
}

/** A group as stored: ids of agent events as file id → offsets (deltas), others as they are. */
export interface StoredGroup {
  p: string;
  b: number;
  a: number;
  k?: Record<string, number[]>;
  o?: string[];
}

/** A record: its number, its groups, and groups of earlier records that were not written. */
interface StoredRecord {
  s: number;
  g: StoredGroup[];
  x?: [number, number][];
}

export const INTENTS_DIR = '.plumb-writes';
const NAME = /^(\d{10})\.intents$/;
/** Default window: far more than one queue read (1mb of lines) plus one agent batch (1000 lines). */
export const DEFAULT_WINDOW_IDS = 250_000;
/** A record file is also ended at this size (records of events without ids, or very long ids). */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

export class WriteIntents {
  private readonly root: string;
  private readonly dir: string;
  private readonly fsync: boolean;
  private readonly windowIds: number;
  private fd: FileHandle | undefined;
  private isOpen = false;
  private gen = 0;
  /** Bytes of valid records in the current file. */
  private size = 0;
  /** Ids named by the records of the current file. */
  private idsInFile = 0;
  private recordsInFile = 0;
  private seq = 0;
  /** The current file failed mid-append and could not be cut back: begin a new one. */
  private broken = false;
  /** Groups of earlier records that were not written, to be named in the next record. */
  private notWritten: [number, number][] = [];
  private previous: SeenEvents;
  private current: SeenEvents;

  constructor(root: string, options: { fsync: boolean; windowIds?: number }) {
    this.root = root;
    this.dir = join(root, INTENTS_DIR);
    this.fsync = options.fsync;
    this.windowIds = Math.max(1, options.windowIds ?? DEFAULT_WINDOW_IDS);
    this.previous = this.window();
    this.current = this.window();
  }

  /** Reads the last two record files, settles the last record's write, and opens for appending. */
  async open(): Promise<IntentRecovery> {
    await this.close();
    this.previous = this.window();
    this.current = this.window();
    this.notWritten = [];
    this.broken = false;
    this.size = 0;
    this.idsInFile = 0;
    this.recordsInFile = 0;
    await mkdir(this.dir, { recursive: true });
    const gens = (await readdir(this.dir))
      .map((n) => NAME.exec(n))
      .filter((m) => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    for (const old of gens.slice(0, -2)) await unlink(join(this.dir, fileName(old))).catch(() => undefined);
    const recovery: IntentRecovery = { records: 0, ids: 0, undone: 0, damagedBytes: 0 };
    const files = gens.slice(-2);
    const records: { rec: StoredRecord; inCurrentFile: boolean }[] = [];
    for (let i = 0; i < files.length; i++) {
      const buf = await readFile(join(this.dir, fileName(files[i])));
      const scan = scanFrames(buf);
      for (const p of scan.problems) recovery.damagedBytes += p.bytes;
      const inLast = i === files.length - 1;
      for (const payload of scan.payloads) {
        const rec = parseRecord(payload);
        if (rec === undefined) recovery.damagedBytes += payload.length;
        else records.push({ rec, inCurrentFile: inLast });
      }
      if (inLast) {
        this.gen = files[i];
        this.size = scan.validEnd;
        if (scan.validEnd < buf.length) {
          // a torn tail (a crash mid-append): cut it off so the next record follows a valid one
          const fd = await open(join(this.dir, fileName(files[i])), 'r+');
          try {
            await fd.truncate(scan.validEnd);
            if (this.fsync) await fd.datasync();
          } finally {
            await fd.close();
          }
        }
      }
    }
    recovery.records = records.length;
    await this.settle(records, recovery);
    if (files.length === 0) this.gen = 1;
    this.fd = await open(join(this.dir, fileName(this.gen)), 'a');
    this.isOpen = true;
    return recovery;
  }

  /** Whether an event with this id was written recently. */
  has(id: string): boolean {
    return this.current.has(id) || this.previous.has(id);
  }

  /** Appends the record of a write about to happen; resolves with its number once it is durable. */
  async append(groups: readonly IntentGroup[]): Promise<number> {
    if (!this.isOpen) throw new Error(`the write records in ${this.dir} are not open`);
    const full = this.recordsInFile > 0 && (this.idsInFile >= this.windowIds || this.size >= MAX_FILE_BYTES);
    // broken: an append failed and could not be cut back; no fd: beginning a new file failed
    if (full || this.broken || this.fd === undefined) await this.rotate();
    const fd = this.fd!;
    const seq = ++this.seq;
    const rec: StoredRecord = { s: seq, g: groups.map(encodeGroup) };
    if (this.notWritten.length > 0) rec.x = this.notWritten;
    const payload = Buffer.from(JSON.stringify(rec));
    const frame = Buffer.concat([frameHeader(payload), payload]);
    let written = 0;
    try {
      while (written < frame.length) written += (await fd.write(frame, written, frame.length - written)).bytesWritten;
      if (this.fsync) await fd.datasync();
    } catch (err) {
      // whatever part of the record reached the file goes, so the next one follows a valid record
      await fd.truncate(this.size).catch(() => (this.broken = true));
      throw err;
    }
    this.size += frame.length;
    this.notWritten = [];
    this.recordsInFile++;
    for (const g of groups) this.idsInFile += g.ids.length;
    return seq;
  }

  /** The append of a group is durable: its ids join the window. */
  written(ids: readonly string[]): void {
    for (const id of ids) this.current.add(id);
  }

  /** The append of group `group` of record `seq` failed (and was undone, or its file left). */
  failed(seq: number, group: number): void {
    this.notWritten.push([seq, group]);
  }

  async close(): Promise<void> {
    this.isOpen = false;
    await this.closeFile();
  }

  /** Ids remembered now (both record files). */
  get rememberedIds(): number {
    return this.current.size + this.previous.size;
  }

  private window(): SeenEvents {
    // bounded by rotation; the capacity only guards against one enormous record
    return new SeenEvents(this.windowIds * 4);
  }

  private async closeFile(): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    await fd?.close().catch(() => undefined);
  }

  /** Begins the next record file and forgets the ids of the one before the previous. */
  private async rotate(): Promise<void> {
    await this.closeFile();
    const dropped = this.gen - 1;
    this.fd = await open(join(this.dir, fileName(this.gen + 1)), 'a');
    this.gen++;
    this.size = 0;
    this.idsInFile = 0;
    this.recordsInFile = 0;
    this.broken = false;
    this.previous = this.current;
    this.current = this.window();
    if (dropped > 0) await unlink(join(this.dir, fileName(dropped))).catch(() => undefined);
  }

  /** Decides which recorded writes happened, rebuilds the window and undoes a partial write. */
  private async settle(records: readonly { rec: StoredRecord; inCurrentFile: boolean }[], recovery: IntentRecovery): Promise<void> {
    const failed = new Set<string>();
    for (const { rec } of records) for (const [s, g] of rec.x ?? []) failed.add(`${s}:${g}`);
    /** Index of the last record that appends to each path. */
    const lastUse = new Map<string, number>();
    records.forEach(({ rec }, i) => rec.g.forEach((g) => lastUse.set(g.p, i)));
    for (let i = 0; i < records.length; i++) {
      const { rec, inCurrentFile } = records[i];
      if (inCurrentFile) {
        this.recordsInFile++;
        for (const g of rec.g) this.idsInFile += idCount(g);
      }
      this.seq = Math.max(this.seq, rec.s);
      const isLast = i === records.length - 1;
      for (let j = 0; j < rec.g.length; j++) {
        const g = rec.g[j];
        let done: boolean;
        if (isLast) {
          done = (await fileSize(join(this.root, g.p))) >= g.a;
          if (!done) {
            if (await cutBack(join(this.root, g.p), g.b, this.fsync)) recovery.undone++;
            this.notWritten.push([rec.s, j]);
          }
        } else {
          done = !failed.has(`${rec.s}:${j}`);
          // a failed append whose file the sink then left (it could not cut it back): undo it now
          if (!done && lastUse.get(g.p) === i && (await cutBack(join(this.root, g.p), g.b, this.fsync))) recovery.undone++;
        }
        if (!done) continue;
        const into = inCurrentFile ? this.current : this.previous;
        forEachId(g, (id) => {
          into.add(id);
          recovery.ids++;
        });
      }
    }
  }
}

function fileName(gen: number): string {
  return `${String(gen).padStart(10, '0')}.intents`;
}

/** A group as the record stores it (exported for the format tests). */
export function encodeGroup(g: IntentGroup): StoredGroup {
  const out: StoredGroup = { p: g.path, b: g.before, a: g.after };
  const last = new Map<string, number>();
  // the file key of the id before, its list and offset: a group's ids are mostly of one file
  let key = '';
  let list: number[] = [];
  let prev = 0;
  for (const id of g.ids) {
    const same = key !== '' && id.startsWith(key);
    const offset = logEventOffset(id, same);
    if (offset < 0) {
      (out.o ??= []).push(id);
      continue;
    }
    // agent ids: 32 hex of file identity + 12 hex of offset; offsets stored as deltas
    if (!same) {
      if (key !== '') last.set(key, prev);
      key = id.slice(0, LOG_EVENT_FILE_CHARS);
      list = (out.k ??= {})[key] ??= [];
      prev = last.get(key) ?? 0;
    }
    list.push(offset - prev);
    prev = offset;
  }
  return out;
}

export function forEachId(g: StoredGroup, fn: (id: string) => void): void {
  for (const [key, deltas] of Object.entries(g.k ?? {})) {
    let offset = 0;
    for (const d of deltas) {
      offset += d;
      fn(key + offset.toString(16).padStart(12, '0'));
    }
  }
  for (const id of g.o ?? []) fn(id);
}

function idCount(g: StoredGroup): number {
  let n = g.o?.length ?? 0;
  for (const deltas of Object.values(g.k ?? {})) n += deltas.length;
  return n;
}

/** A record as read back; undefined when the payload is not one (counted as damage). */
function parseRecord(payload: Buffer): StoredRecord | undefined {
  let rec: unknown;
  try {
    rec = JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
  const r = rec as StoredRecord;
  if (rec === null || typeof rec !== 'object' || typeof r.s !== 'number' || !Array.isArray(r.g)) return undefined;
  for (const g of r.g) {
    if (g === null || typeof g !== 'object' || typeof g.p !== 'string' || typeof g.b !== 'number' || typeof g.a !== 'number') return undefined;
    if (g.p.startsWith('/') || g.p.split('/').includes('..')) return undefined;
    if (g.k !== undefined && (typeof g.k !== 'object' || Object.values(g.k).some((d) => !Array.isArray(d) || d.some((n) => typeof n !== 'number')))) return undefined;
    if (g.o !== undefined && (!Array.isArray(g.o) || g.o.some((id) => typeof id !== 'string'))) return undefined;
  }
  if (r.x !== undefined && (!Array.isArray(r.x) || r.x.some((e) => !Array.isArray(e) || e.length !== 2))) return undefined;
  return r;
}

/** The file's size; -1 when it is not there. */
async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return -1;
    throw err;
  }
}

/** Truncates the file to `size` when it is longer; true when it did. */
async function cutBack(path: string, size: number, fsync: boolean): Promise<boolean> {
  let fd: FileHandle;
  try {
    fd = await open(path, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  try {
    if ((await fd.stat()).size <= size) return false;
    await fd.truncate(size);
    if (fsync) await fd.datasync();
    return true;
  } finally {
    await fd.close();
  }
}
