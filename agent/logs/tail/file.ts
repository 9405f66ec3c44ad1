/**
 * One followed file: its descriptor, how far it was read, and the line → framing → joining →
 * multi-line pipeline its bytes go through. The descriptor is what keeps a renamed or deleted
 * file readable to its end. Everything here runs on the tailer's single loop; nothing is shared
 * between files except the read buffer passed in.
 */
import type { Source } from './compressed.ts';
import type { LogFormat, LogInput } from './config.ts';
import { AckTrack, type CheckpointEntry } from './checkpoint.ts';
import { decodeCri, decodeDocker, decodeJsonObject, kubernetesFromPath, PartialJoiner, type KubernetesMeta, type Piece } from './formats.ts';
import { computeFileId, fingerprintOf, idPrefixLength, readPrefix, type Inode } from './identity.ts';
import { codecFor, type Codec } from './encoding.ts';
import { LineSplitter } from './lines.ts';
import { MultilineAssembler } from './multiline.ts';
import { JSON_INVALID_TAGS, MALFORMED_TAGS, NO_TAGS, type TailRecord } from './record.ts';

export interface FileSettings {
  input: number;
  inputConfig: LogInput;
  multilineStart: RegExp | undefined;
  multilineCondition: RegExp | undefined;
  unterminatedTimeoutMs: number;
  maxLineBytes: number;
  fingerprintBytes: number;
  partialTimeoutMs: number;
  idSeed: string;
}

/** Where the records of a file go; `add` is called synchronously while a chunk is split. */
export interface RecordSink {
  add(file: TailedFile, record: TailRecord): void;
}

/** Counts from one read, for the metrics (counted per chunk, not per line). */
export interface ReadCounts {
  bytes: number;
  lines: number;
  truncated: number;
  malformed: number;
}

/** A physical line's framing limit: docker escapes can grow a 16 KiB piece several times. */
const FRAMED_LINE_BYTES = 256 * 1024;
const EMPTY = Buffer.alloc(0);

export class TailedFile {
  readonly key: string;
  readonly inode: Inode;
  readonly settings: FileSettings;
  readonly format: LogFormat;
  handle: Source | undefined;
  path: string;
  readonly k8s: KubernetesMeta | undefined;
  entry: CheckpointEntry;
  track: AckTrack;
  /** Next byte to read. */
  readOffset: number;
  /** Offset after the last complete line split off (≤ readOffset while a line is unterminated). */
  private consumed: number;
  /** No longer at a path the globs match (renamed away or deleted): read to the end, then close. */
  rotated = false;
  /**
   * A copy or compressed rotation read in place of a file it was made from (see tailer.ts): it
   * will not grow, so it is read to its end and closed like a rotated file.
   */
  finite = false;
  /** Read through a decompressing stream: never checked for truncation. */
  compressed = false;
  /** When this file got its descriptor (who yields one first when files wait for one). */
  openedAt = 0;
  /** When a read last found no new bytes (0 while reading). */
  eofSince = 0;
  /** Reads wait until then after reaching the end. */
  nextReadAt = 0;
  /** Reads in a row that found nothing; the wait between them grows with it. */
  idleReads = 0;
  /** Size at the last content check. */
  checkedSize = -1;
  /** When a read last returned bytes. */
  lastBytesAt = 0;

  /**
   * The file's first bytes as read from offset 0, while fewer than the fingerprint covers: a
   * short fingerprint grows from bytes a read returned, never from a later look, which could
   * already see the next content of a file truncated in the meantime.
   */
  private head: Buffer | undefined;
  private readonly splitter: LineSplitter;
  private readonly joiner: PartialJoiner | undefined;
  private readonly multiline: MultilineAssembler | undefined;
  private sink: RecordSink | undefined;
  /** The encoding is settled (utf-16 waits for the byte order mark). */
  private codecKnown = false;
  private now = 0;
  private counts: ReadCounts = { bytes: 0, lines: 0, truncated: 0, malformed: 0 };

  constructor(key: string, inode: Inode, handle: Source, filePath: string, entry: CheckpointEntry, readOffset: number, settings: FileSettings, track?: AckTrack) {
    this.key = key;
    this.inode = inode;
    this.handle = handle;
    this.path = filePath;
    this.entry = entry;
    // A file closed with batches in flight, or a copy continuing a truncated file, keeps the
    // track those batches commit through.
    this.track = track ?? new AckTrack(entry);
    this.readOffset = readOffset;
    this.consumed = readOffset;
    this.settings = settings;
    this.head = readOffset === 0 ? EMPTY : undefined;
    this.format = settings.inputConfig.format;
    this.k8s = kubernetesFromPath(filePath);
    const framed = this.format === 'cri' || this.format === 'docker';
    this.splitter = new LineSplitter(framed ? Math.max(settings.maxLineBytes, FRAMED_LINE_BYTES) : settings.maxLineBytes);
    this.joiner = framed ? new PartialJoiner(settings.maxLineBytes) : undefined;
    const ml = settings.inputConfig.multiline;
    this.multiline =
      ml !== undefined
        ? new MultilineAssembler({ mode: ml.mode, start: settings.multilineStart, condition: settings.multilineCondition, maxBytes: ml.maxBytes, maxLines: ml.maxLines, timeoutMs: ml.timeout })
        : undefined;
  }

  /**
   * The first byte not yet handed out in a record: the start of the earliest line or event
   * still being assembled, else the end of the last line split off. What a batch may commit
   * for this file; correct at any point, also halfway through a chunk.
   */
  safeOffset(): number {
    let safe = this.consumed;
    const j = this.joiner?.pendingStart() ?? -1;
    if (j >= 0 && j < safe) safe = j;
    const m = this.multiline?.pendingStart() ?? -1;
    if (m >= 0 && m < safe) safe = m;
    return safe;
  }

  /** Nothing held between reads (no unterminated line, no event being joined). */
  idle(): boolean {
    return this.safeOffset() === this.readOffset;
  }

  /**
   * Reads the next chunk into `buf` and hands the records it completes to `sink`. Returns the
   * counts; `bytes` 0 means the file had nothing new.
   */
  async read(buf: Buffer, prefixBuf: Buffer, now: number, sink: RecordSink): Promise<ReadCounts> {
    const n = await this.fill(buf);
    if (n === 0) return { bytes: 0, lines: 0, truncated: 0, malformed: 0 };
    return this.take(buf, n, prefixBuf, now, sink);
  }

  /** Reads the next chunk into `buf` without taking it (the caller may first check the file). */
  async fill(buf: Buffer): Promise<number> {
    const { bytesRead } = await (this.handle as Source).read(buf, 0, buf.length, this.readOffset);
    return bytesRead;
  }

  /** Takes `buf[0, n)`, the bytes at the read position that `fill` returned. */
  async take(buf: Buffer, n: number, prefixBuf: Buffer, now: number, sink: RecordSink): Promise<ReadCounts> {
    if (this.entry.fileId === undefined) await this.ensureFileId(prefixBuf, false);
    if (!this.codecKnown) await this.settleCodec(buf, n);
    this.lastBytesAt = now;
    const start = this.readOffset;
    this.readOffset += n;
    if (this.head !== undefined) this.growHead(buf, n, start);
    this.begin(now, sink);
    const split = this.splitter.push(buf, n, start, this.onLine);
    const counts = this.counts;
    counts.bytes = n;
    counts.lines = split.lines;
    counts.truncated = split.truncated;
    return this.end();
  }

  /**
   * Emits joined lines and events that waited longer than their timeouts, and (with
   * unterminatedTimeout) a last line without a newline once the file did not grow for that long:
   * it ends at the read position, which is what is committed, so the rest of the line when it
   * comes is read as a line of its own (its newline alone is a blank line, not forwarded). A line
   * that ends halfway through a character waits for the rest of it.
   */
  flushExpired(now: number, sink: RecordSink): number {
    const unterminated = this.settings.unterminatedTimeoutMs;
    const flushTail = unterminated > 0 && this.lastBytesAt > 0 && now - this.lastBytesAt >= unterminated && this.splitter.pendingComplete;
    if (this.joiner === undefined && this.multiline === undefined && !flushTail) return 0;
    this.begin(now, sink);
    if (flushTail) {
      this.splitter.flush(this.readOffset, this.onLine);
      this.consumed = this.readOffset;
    }
    this.joiner?.flushExpired(now, this.settings.partialTimeoutMs, this.onPiece);
    this.multiline?.flushExpired(now, this.onEvent);
    return this.end().malformed;
  }

  /**
   * Emits everything held, including an unterminated last line (which ends at the read
   * position): the file will not grow any more.
   */
  async flushAll(prefixBuf: Buffer, now: number, sink: RecordSink): Promise<void> {
    if (this.idle()) return;
    if (this.entry.fileId === undefined) await this.ensureFileId(prefixBuf, true);
    this.begin(now, sink);
    this.splitter.flush(this.readOffset, this.onLine);
    this.consumed = this.readOffset;
    this.joiner?.flushAll(this.onPiece);
    this.multiline?.flushAll(this.onEvent);
    this.end();
  }

  /** Starts over at `offset` with a new entry (a truncation); what was held is dropped. */
  restart(entry: CheckpointEntry, offset: number): void {
    this.entry = entry;
    this.track = new AckTrack(entry);
    this.readOffset = offset;
    this.consumed = offset;
    this.head = offset === 0 ? EMPTY : undefined;
    this.splitter.reset();
    // New content may have another byte order mark.
    if (this.settings.inputConfig.encoding === 'utf-16') this.codecKnown = false;
    this.joiner?.clear();
    this.multiline?.clear();
    this.eofSince = 0;
    this.nextReadAt = 0;
    this.idleReads = 0;
  }

  /** Whether the fingerprint grows from reads (the file was read from its first byte). */
  get growsFingerprint(): boolean {
    return this.head !== undefined;
  }

  private growHead(buf: Buffer, bytesRead: number, start: number): void {
    const head = this.head as Buffer;
    const max = this.settings.fingerprintBytes;
    if (start !== head.length || head.length >= max) {
      this.head = undefined;
      return;
    }
    const grown = Buffer.concat([head, buf.subarray(0, Math.min(bytesRead, max - head.length))]);
    // Also replaces a fingerprint taken by a separate look that the bytes read do not bear out.
    if (grown.length >= this.entry.fp.len) this.entry.fp = fingerprintOf(grown, grown.length, max);
    this.head = grown.length >= max ? undefined : grown;
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.close().catch(() => undefined);
  }

  /** "utf-16" is little- or big-endian by the file's first two bytes. */
  private async settleCodec(buf: Buffer, n: number): Promise<void> {
    let head: Buffer | undefined;
    if (this.readOffset === 0) head = buf.subarray(0, Math.min(n, 2));
    else {
      const two = Buffer.alloc(2);
      const { bytesRead } = await (this.handle as Source).read(two, 0, 2, 0);
      head = two.subarray(0, bytesRead);
    }
    const codec = codecFor(this.settings.inputConfig.encoding, head);
    // One byte so far: little-endian until the second tells.
    this.splitter.codec = codec ?? (codecFor('utf-16le', undefined) as Codec);
    this.codecKnown = codec !== undefined;
  }

  /** Names the file for event ids from its first line (or first bytes): see identity.ts. */
  private async ensureFileId(prefixBuf: Buffer, force: boolean): Promise<void> {
    const available = await readPrefix(this.handle as Source, prefixBuf);
    const len = idPrefixLength(prefixBuf, available, this.settings.fingerprintBytes, force);
    // Without a newline in the leading bytes no line can be complete yet; the id is settled on
    // the read that completes one.
    if (len === undefined) return;
    this.entry.fileId = computeFileId(this.settings.idSeed, this.inode, prefixBuf, len, this.entry.generation);
  }

  private begin(now: number, sink: RecordSink): void {
    this.now = now;
    this.sink = sink;
    this.counts = { bytes: 0, lines: 0, truncated: 0, malformed: 0 };
  }

  private end(): ReadCounts {
    this.sink = undefined;
    return this.counts;
  }

  private readonly onLine = (text: string, offset: number, end: number, truncated: boolean): void => {
    this.consumed = end;
    // A byte order mark is not part of the first line.
    if (offset === 0 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    if (this.joiner === undefined) {
      this.onPiece({ text, offset, end, truncated, stream: undefined, time: undefined, malformed: false });
      return;
    }
    const framed = this.format === 'cri' ? decodeCri(text) : decodeDocker(text);
    if (framed === undefined) {
      this.counts.malformed++;
      this.onPiece({ text, offset, end, truncated, stream: undefined, time: undefined, malformed: true });
      return;
    }
    const whole = this.joiner.push(framed, offset, end, truncated, this.now);
    if (whole !== undefined) this.onPiece(whole);
  };

  private readonly onPiece = (piece: Piece): void => {
    if (this.multiline !== undefined) this.multiline.push(piece, this.now, this.onEvent);
    else this.onEvent(piece);
  };

  private readonly onEvent = (event: Piece): void => {
    // Blank lines carry nothing; they are read past, not forwarded.
    if (event.text.length === 0 && !event.malformed) return;
    let json: Record<string, unknown> | undefined;
    let tags = event.malformed ? MALFORMED_TAGS : NO_TAGS;
    if (this.format === 'json') {
      json = decodeJsonObject(event.text);
      if (json === undefined) {
        tags = JSON_INVALID_TAGS;
        this.counts.malformed++;
      }
    }
    // The id is settled before any line can complete; this only covers a file that shrank
    // between reading a chunk and reading its first bytes.
    this.entry.fileId ??= computeFileId(this.settings.idSeed, this.inode, EMPTY, 0, this.entry.generation);
    const record: TailRecord = {
      fileId: this.entry.fileId,
      path: this.path,
      input: this.settings.input,
      offset: event.offset,
      endOffset: event.end,
      text: event.text,
      truncated: event.truncated,
      stream: event.stream,
      time: event.time,
      k8s: this.k8s,
      json,
      tags,
      fields: this.settings.inputConfig.fields,
    };
    this.sink?.add(this, record);
  };
}
