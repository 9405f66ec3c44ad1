/**
 * The file sink: events as NDJSON in hourly folders, `<dir>/yyyy/MM/dd/HH/part-00000.ndjson`,
 * by the UTC hour of each event's @timestamp. A file past maxFileBytes is closed and the next
 * part started. It is the collector's sink when no other is configured (plumb on a laptop needs
 * nothing installed) and a plain local archive otherwise.
 *
 * Each write appends the batch's lines per hour and syncs the files before the runner lets the
 * events leave the queue. Every event is written once: before appending, the sink records which
 * event ids it is about to write to which files, at which sizes (write-intents.ts, under
 * `<dir>/.plumb-writes/`). An event whose id it wrote recently (the last 250 000 ids at least,
 * remembered across restarts) is skipped and reported as a duplicate, so neither the queue's
 * replay after a crash between the sync and its acknowledgement, nor an agent's resend that
 * reached the queue twice, writes a line again. A write cut short by a crash is undone at the
 * next open (each file cut back to its size before it) and written again from the queue.
 * Events without an event.id cannot be recognised and are always written (the ingest refuses
 * them, so they come only from elsewhere). A file that ends in a torn line nonetheless (one
 * written before these records existed) is left as it is and the next part started.
 */
import { mkdir, open as openFile, readdir, type FileHandle } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { RetryableError, errorMessage } from '../../shared/errors.ts';
import type { FileSinkConfig } from './config.ts';
import type { LogEvent } from './event.ts';
import type { LogSink, WriteResult } from './sink.ts';
import { WriteIntents, type IntentGroup, type IntentRecovery } from './write-intents.ts';

const NEWLINE = Buffer.from('\n');
const PART = /^part-(\d{5,})\.ndjson$/;

interface HourFile {
  hour: string;
  dir: string;
  part: number;
  fd: FileHandle;
  size: number;
  /** Relative to the sink's directory. */
  path: string;
}

/** One hour's share of a write: the lines, and where they go. */
interface Append {
  file: HourFile;
  events: readonly LogEvent[];
  /** The lines with their newlines, in as few views of the queued batches as they allow (lineRuns). */
  parts: Buffer[];
  bytes: number;
  ids: string[];
}

export interface FileSinkOptions {
  /** Ids per write-record file; the sink remembers the ids of the last two files (tests lower it). */
  windowIds?: number;
}

export class FileSink implements LogSink {
  readonly name = 'file' as const;
  readonly batch: { maxBytes: number; maxWaitMs: number };
  readonly backoff = { initialMs: 200, maxMs: 10_000 };
  readonly dir: string;
  private readonly config: FileSinkConfig;
  /** Open hour files, least recently used first. */
  private readonly files = new Map<string, HourFile>();
  private readonly intents: WriteIntents;
  /** Files left after a failed append could not be cut back: never appended to again. */
  private readonly abandoned = new Set<string>();
  private opened: Promise<IntentRecovery> | undefined;

  constructor(config: FileSinkConfig, dir: string, options: FileSinkOptions = {}) {
    this.config = config;
    this.dir = dir;
    this.batch = { maxBytes: config.flushBytes, maxWaitMs: config.flushInterval };
    this.intents = new WriteIntents(dir, { fsync: config.fsync, windowIds: options.windowIds });
  }

  /** Reads the write records: settles a write a crash cut short and restores the remembered ids. */
  async open(): Promise<void> {
    await this.recovered();
  }

  /** What the last open found (records read, ids remembered, files cut back, damaged bytes). */
  async recovered(): Promise<IntentRecovery> {
    this.opened ??= (async () => {
      await mkdir(this.dir, { recursive: true });
      return this.intents.open();
    })();
    try {
      return await this.opened;
    } catch (err) {
      this.opened = undefined;
      throw new RetryableError('PLUMB_ERR_SINK_RETRYABLE', `file sink: cannot read its write records under ${this.dir}: ${errorMessage(err)}`, { cause: err });
    }
  }

  async write(events: readonly LogEvent[]): Promise<WriteResult> {
    await this.recovered();
    const result: WriteResult = { delivered: 0, duplicate: 0, rejected: [], retry: [] };
    const byHour = new Map<string, LogEvent[]>();
    const inBatch = new Set<string>();
    for (const e of events) {
      if (e.id !== '') {
        if (inBatch.has(e.id) || this.intents.has(e.id)) {
          result.duplicate++;
          continue;
        }
        inBatch.add(e.id);
      }
      const hour = e.timestamp.slice(0, 13);
      let list = byHour.get(hour);
      if (list === undefined) byHour.set(hour, (list = []));
      list.push(e);
    }
    const failure = { first: undefined as unknown };
    const hours = [...byHour];
    // hours in groups small enough that every file of one write stays open until it is done
    for (let i = 0; i < hours.length; i += this.config.maxOpenFiles) {
      await this.writeHours(hours.slice(i, i + this.config.maxOpenFiles), result, failure);
    }
    if (result.delivered === 0 && result.duplicate === 0 && failure.first !== undefined) {
      throw new RetryableError('PLUMB_ERR_SINK_RETRYABLE', `file sink: cannot write under ${this.dir}: ${errorMessage(failure.first)}`, { cause: failure.first });
    }
    if (result.retry.length > 0) {
      result.retryReason = 'other';
      result.retryMessage = errorMessage(failure.first);
    }
    return result;
  }

  async close(): Promise<void> {
    const files = [...this.files.values()];
    this.files.clear();
    this.opened = undefined;
    await Promise.all(files.map((f) => f.fd.close().catch(() => undefined)));
    await this.intents.close();
  }

  /** Files currently open, for tests and status. */
  get openFiles(): number {
    return this.files.size;
  }

  /** Records what is about to be written to these hours' files, then appends it. */
  private async writeHours(hours: readonly [string, LogEvent[]][], result: WriteResult, failure: { first: unknown }): Promise<void> {
    const fail = (events: readonly LogEvent[], err: unknown): void => {
      failure.first ??= err;
      for (const e of events) result.retry.push(e);
    };
    const appends: Append[] = [];
    for (const [hour, events] of hours) {
      try {
        appends.push(await this.prepare(hour, events));
      } catch (err) {
        fail(events, err);
      }
    }
    if (appends.length === 0) return;
    const groups: IntentGroup[] = appends.map((a) => ({ path: a.file.path, before: a.file.size, after: a.file.size + a.bytes, ids: a.ids }));
    let seq: number;
    try {
      seq = await this.intents.append(groups);
    } catch (err) {
      for (const a of appends) fail(a.events, err);
      return;
    }
    for (let i = 0; i < appends.length; i++) {
      const a = appends[i];
      try {
        await this.append(a.file, a.parts, a.bytes);
      } catch (err) {
        this.intents.failed(seq, i);
        fail(a.events, err);
        continue;
      }
      this.intents.written(a.ids);
      result.delivered += a.events.length;
    }
  }

  /** The hour's lines and the file they go to (the next part when they would overfill it). */
  private async prepare(hour: string, events: readonly LogEvent[]): Promise<Append> {
    const ids: string[] = [];
    for (const e of events) if (e.id !== '') ids.push(e.id);
    const { parts, bytes } = lineRuns(events);
    let file = await this.hourFile(hour);
    if (file.size > 0 && file.size + bytes > this.config.maxFileBytes) file = await this.nextPart(file);
    return { file, events, parts, bytes, ids };
  }

  private async append(f: HourFile, parts: readonly Buffer[], bytes: number): Promise<void> {
    const before = f.size;
    let written = 0;
    try {
      let rest = parts;
      while (written < bytes) {
        const { bytesWritten } = await f.fd.writev(rest as Buffer[]);
        written += bytesWritten;
        if (written < bytes) rest = unwritten(rest, bytesWritten);
      }
      if (this.config.fsync) await f.fd.datasync();
      f.size += written;
    } catch (err) {
      // Undo a partial write so the retry does not follow a torn line; a file that cannot be cut
      // back is left for good (the next open cuts it back from the write record).
      if (written > 0) {
        try {
          await f.fd.truncate(before);
        } catch {
          this.abandoned.add(f.path);
          this.forget(f);
          await f.fd.close().catch(() => undefined);
        }
      }
      throw err;
    }
  }

  private async hourFile(hour: string): Promise<HourFile> {
    const cached = this.files.get(hour);
    if (cached) {
      this.files.delete(hour);
      this.files.set(hour, cached);
      return cached;
    }
    // "2026-11-24T10" → 2026/11/24/10
    const dir = join(this.dir, hour.slice(0, 4), hour.slice(5, 7), hour.slice(8, 10), hour.slice(11, 13));
    await mkdir(dir, { recursive: true });
    let part = -1;
    for (const name of await readdir(dir)) {
      const m = PART.exec(name);
      if (m) part = Math.max(part, Number(m[1]));
    }
    let f: HourFile | undefined;
    if (part >= 0 && !this.abandoned.has(this.relative(dir, part))) {
      const fd = await openFile(join(dir, partName(part)), 'a+');
      const size = (await fd.stat()).size;
      if (size < this.config.maxFileBytes && (size === 0 || (await endsWithNewline(fd, size)))) f = { hour, dir, part, fd, size, path: this.relative(dir, part) };
      else await fd.close();
    }
    f ??= await this.create(hour, dir, part + 1);
    this.remember(f);
    return f;
  }

  private async nextPart(f: HourFile): Promise<HourFile> {
    this.forget(f);
    await f.fd.close();
    const next = await this.create(f.hour, f.dir, f.part + 1);
    this.remember(next);
    return next;
  }

  private async create(hour: string, dir: string, part: number): Promise<HourFile> {
    const fd = await openFile(join(dir, partName(part)), 'a');
    return { hour, dir, part, fd, size: (await fd.stat()).size, path: this.relative(dir, part) };
  }

  private relative(dir: string, part: number): string {
    return relative(this.dir, join(dir, partName(part)));
  }

  private remember(f: HourFile): void {
    this.files.set(f.hour, f);
    while (this.files.size > this.config.maxOpenFiles) {
      const [oldest, file] = this.files.entries().next().value as [string, HourFile];
      this.files.delete(oldest);
      void file.fd.close().catch(() => undefined);
    }
  }

  private forget(f: HourFile): void {
    if (this.files.get(f.hour) === f) this.files.delete(f.hour);
  }
}

function partName(n: number): string {
  return `part-${String(n).padStart(5, '0')}.ndjson`;
}

async function endsWithNewline(fd: FileHandle, size: number): Promise<boolean> {
  const b = Buffer.alloc(1);
  await fd.read(b, 0, 1, size - 1);
  return b[0] === 0x0a;
}

/**
 * An hour's lines, each followed by '\n', as buffers to write: lines that follow one another in
 * one queued batch with their '\n' between them (the usual case: a batch's events share an hour)
 * are one view of that batch, so a write copies nothing; a line not followed by '\n' in its batch
 * ('\r\n' in a queue from elsewhere) goes as itself and NEWLINE.
 */
export function lineRuns(events: readonly LogEvent[]): { parts: Buffer[]; bytes: number } {
  const parts: Buffer[] = [];
  let bytes = 0;
  let source: ArrayBufferLike | null = null;
  let view: Uint8Array | null = null;
  let run: ArrayBufferLike | null = null;
  let runStart = 0;
  let runEnd = 0;
  for (const e of events) {
    const line = e.line;
    bytes += line.length + 1;
    const end = line.byteOffset + line.length;
    if (line.buffer !== source) {
      source = line.buffer;
      view = new Uint8Array(source);
    }
    if (end < (view as Uint8Array).length && (view as Uint8Array)[end] === 0x0a) {
      if (run === source && runEnd === line.byteOffset) {
        runEnd = end + 1;
        continue;
      }
      if (run !== null) parts.push(Buffer.from(run, runStart, runEnd - runStart));
      run = source;
      runStart = line.byteOffset;
      runEnd = end + 1;
      continue;
    }
    if (run !== null) parts.push(Buffer.from(run, runStart, runEnd - runStart));
    run = null;
    parts.push(line, NEWLINE);
  }
  if (run !== null) parts.push(Buffer.from(run, runStart, runEnd - runStart));
  return { parts, bytes };
}

/** What of `parts` is left after the first `n` bytes of them were written. */
export function unwritten(parts: readonly Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < parts.length && n >= parts[i].length) n -= parts[i++].length;
  const rest = parts.slice(i);
  if (n > 0) rest[0] = rest[0].subarray(n);
  return rest;
}
