/**
 * A sink's dead-letter file: events it refused for good, one JSON object a line, each with the
 * reason so an operator can fix the mapping (or the data) and send them again:
 *
 *   {"@timestamp":"…","sink":"elasticsearch","status":400,"reason":"mapper_parsing_exception: …","target":"plumb-logs-2026.11.24","event":{…the original event…}}
 *
 * Bounded: past maxBytes the file becomes `<name>.1` (an older `.1` is removed, and the events
 * it held are counted in plumb_sink_dead_letter_discarded_total and logged).
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../../shared/log.ts';
import type { SinkMetrics } from './metrics.ts';
import type { RejectedItem } from './sink.ts';

export class DeadLetterFile {
  readonly file: string;
  private readonly maxBytes: number;
  private readonly sink: string;
  private readonly metrics: SinkMetrics;
  private readonly log: Logger;
  private fd: FileHandle | undefined;
  private size = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(options: { file: string; maxBytes: number; sink: string; metrics: SinkMetrics; log: Logger }) {
    this.file = options.file;
    this.maxBytes = options.maxBytes;
    this.sink = options.sink;
    this.metrics = options.metrics;
    this.log = options.log;
  }

  /** Appends the events (synced to disk) and counts them. */
  write(rejected: readonly RejectedItem[]): Promise<void> {
    if (rejected.length === 0) return Promise.resolve();
    const next = this.chain.then(() => this.append(rejected));
    this.chain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.chain;
    const fd = this.fd;
    this.fd = undefined;
    await fd?.close();
  }

  private async append(rejected: readonly RejectedItem[]): Promise<void> {
    const now = new Date().toISOString();
    const parts: Buffer[] = [];
    let bytes = 0;
    for (const r of rejected) {
      const head = `{"@timestamp":"${now}","sink":${JSON.stringify(this.sink)}${r.status !== undefined ? `,"status":${r.status}` : ''},"reason":${JSON.stringify(r.reason)}${r.target !== undefined ? `,"target":${JSON.stringify(r.target)}` : ''},`;
      // an event that is not a JSON object is kept as text, so the file stays valid NDJSON
      const body = isJsonObject(r.event.line) ? Buffer.concat([Buffer.from('"event":'), r.event.line, Buffer.from('}\n')]) : Buffer.from(`"event_text":${JSON.stringify(r.event.line.toString('utf8'))}}\n`);
      const h = Buffer.from(head);
      parts.push(h, body);
      bytes += h.length + body.length;
    }
    await this.handle();
    if (this.size > 0 && this.size + bytes > this.maxBytes) await this.rotate();
    const fd = await this.handle();
    await fd.write(Buffer.concat(parts, bytes));
    await fd.datasync();
    this.size += bytes;
    this.metrics.deadLetter.inc({ sink: this.sink }, rejected.length);
  }

  private async handle(): Promise<FileHandle> {
    if (this.fd) return this.fd;
    await mkdir(dirname(this.file), { recursive: true });
    this.fd = await open(this.file, 'a');
    this.size = (await this.fd.stat()).size;
    return this.fd;
  }

  private async rotate(): Promise<void> {
    const older = `${this.file}.1`;
    const discarded = await countLines(older);
    if (discarded > 0) {
      this.metrics.deadLetterDiscarded.inc({ sink: this.sink }, discarded);
      this.log.warn({ file: older, events: discarded }, 'dead-letter file rotated: the oldest dead-letter events are removed (raise collector.logs.deadLetter.maxBytes to keep more)');
    }
    await rm(older, { force: true });
    await this.fd?.close();
    this.fd = undefined;
    await rename(this.file, older);
  }
}

function isJsonObject(line: Buffer): boolean {
  try {
    const v: unknown = JSON.parse(line.toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  } catch {
    return false;
  }
}

async function countLines(file: string): Promise<number> {
  try {
    await stat(file);
  } catch {
    return 0;
  }
  let n = 0;
  for await (const chunk of createReadStream(file)) {
    const b = chunk as Buffer;
    for (let p = b.indexOf(0x0a); p >= 0; p = b.indexOf(0x0a, p + 1)) n++;
  }
  return n;
}
