/**
 * The file sink: events as NDJSON in hourly folders, `<dir>/yyyy/MM/dd/HH/part-00000.ndjson`,
 * by the UTC hour of each event's @timestamp. A file past maxFileBytes is closed and the next
 * part started. It is the collector's sink when no other is configured (plumb on a laptop needs
 * nothing installed) and a plain local archive otherwise.
 *
 * Each write appends the batch's lines per hour and syncs the files before the runner lets the
 * events leave the queue. After a crash between the sync and the queue's acknowledgement the
 * batch is written again, so a line may appear twice (at-least-once, unlike the Elasticsearch
 * and S3 sinks, whose ids and keys absorb replays). A file that ends in a torn line (a crash in
 * mid-write) is left as it is and the next part started.
 */
import { mkdir, open as openFile, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { RetryableError, errorMessage } from '../../shared/errors.ts';
import type { FileSinkConfig } from './config.ts';
import type { LogEvent } from './event.ts';
import type { LogSink, WriteResult } from './sink.ts';

const NEWLINE = Buffer.from('\n');
const PART = /^part-(\d{5,})\.ndjson$/;

interface HourFile {
  hour: string;
  dir: string;
  part: number;
  fd: FileHandle;
  size: number;
}

export class FileSink implements LogSink {
  readonly name = 'file' as const;
  readonly batch: { maxBytes: number; maxWaitMs: number };
  readonly backoff = { initialMs: 200, maxMs: 10_000 };
  readonly dir: string;
  private readonly config: FileSinkConfig;
  /** Open hour files, least recently used first. */
  private readonly files = new Map<string, HourFile>();

  constructor(config: FileSinkConfig, dir: string) {
    this.config = config;
    this.dir = dir;
    this.batch = { maxBytes: config.flushBytes, maxWaitMs: config.flushInterval };
  }

  async open(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
  }

  async write(events: readonly LogEvent[]): Promise<WriteResult> {
    const byHour = new Map<string, LogEvent[]>();
    for (const e of events) {
      const hour = e.timestamp.slice(0, 13);
      let list = byHour.get(hour);
      if (list === undefined) byHour.set(hour, (list = []));
      list.push(e);
    }
    const result: WriteResult = { delivered: 0, duplicate: 0, rejected: [], retry: [] };
    let firstError: unknown;
    for (const [hour, list] of byHour) {
      try {
        await this.append(hour, list);
        result.delivered += list.length;
      } catch (err) {
        firstError ??= err;
        for (const e of list) result.retry.push(e);
      }
    }
    if (result.delivered === 0 && firstError !== undefined) {
      throw new RetryableError('PLUMB_ERR_SINK_RETRYABLE', `file sink: cannot write under ${this.dir}: ${errorMessage(firstError)}`, { cause: firstError });
    }
    if (result.retry.length > 0) result.retryReason = 'other';
    return result;
  }

  async close(): Promise<void> {
    const files = [...this.files.values()];
    this.files.clear();
    await Promise.all(files.map((f) => f.fd.close().catch(() => undefined)));
  }

  /** Files currently open, for tests and status. */
  get openFiles(): number {
    return this.files.size;
  }

  private async append(hour: string, events: readonly LogEvent[]): Promise<void> {
    const parts: Buffer[] = [];
    let bytes = 0;
    for (const e of events) {
      parts.push(e.line, NEWLINE);
      bytes += e.line.length + 1;
    }
    let f = await this.hourFile(hour);
    if (f.size > 0 && f.size + bytes > this.config.maxFileBytes) f = await this.nextPart(f);
    const buf = Buffer.concat(parts, bytes);
    let written = 0;
    try {
      while (written < buf.length) {
        const { bytesWritten } = await f.fd.write(buf, written, buf.length - written);
        written += bytesWritten;
      }
      if (this.config.fsync) await f.fd.datasync();
    } catch (err) {
      // A partial write leaves a torn line: continue in a fresh part after the retry.
      this.forget(f);
      await f.fd.close().catch(() => undefined);
      throw err;
    } finally {
      f.size += written;
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
    if (part >= 0) {
      const fd = await openFile(join(dir, partName(part)), 'a+');
      const size = (await fd.stat()).size;
      if (size < this.config.maxFileBytes && (size === 0 || (await endsWithNewline(fd, size)))) f = { hour, dir, part, fd, size };
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
    return { hour, dir, part, fd, size: (await fd.stat()).size };
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
