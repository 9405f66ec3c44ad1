/**
 * `plumb replay --from s3://bucket/prefix [--since T] [--until T] --to elasticsearch --config F`:
 * streams archived objects (written by the S3 sink) back into Elasticsearch.
 *
 * Idempotent: events are written with `create` and the same `_id` (event.id) as the live sink,
 * so an event already in the cluster is a 409, counted as already present, never a copy.
 * Resumable: the key of every object written completely is appended to a state file under
 * <collector.dataDir>/log-sinks/replay/ (one per from/since/until/target), and a second run with
 * the same arguments skips those (`restart` ignores and replaces the file). Events Elasticsearch
 * refuses for good (mapping conflicts) are written, with the reason, to a dead-letter file beside
 * it and counted as failed. An object that cannot be written after the retries (the cluster is
 * down) is left for the next run.
 *
 * Objects are chosen by the hour in their key (yyyy/MM/dd/HH/…), then events by their own
 * @timestamp: since ≤ @timestamp < until. Times are ISO 8601 ("2026-11-24T10:00:00Z",
 * "2026-11-24") or a duration back from now ("24h", "30m").
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Value } from '@sinclair/typebox/value';
import { PlumbError, RetryableError, errorMessage } from '../../shared/errors.ts';
import { silentLogger, type Logger } from '../../shared/log.ts';
import { backoffDelay, retryDelay } from '../../shared/retry.ts';
import { Telemetry } from '../../shared/telemetry.ts';
import { TRACING_OFF } from '../../shared/tracing.ts';
import { parseDuration } from '../../shared/units.ts';
import { S3SinkSchema, type CollectorLogsConfig } from './config.ts';
import { DeadLetterFile } from '../sinks/dead-letter.ts';
import { ElasticsearchSink } from './elasticsearch.ts';
import { splitEvents, type LogEvent } from './event.ts';
import { SinkMetrics } from '../sinks/metrics.ts';
import { s3Client } from './s3.ts';
import { keyHour } from './s3-keys.ts';

const gunzipAsync = promisify(gunzip);
const HOUR = 3_600_000;

export interface ReplayOptions {
  /** "s3://bucket/prefix" (the prefix may be empty). */
  from: string;
  /** Only "elasticsearch" for now: collector.logs.sinks.elasticsearch of the config. */
  to: 'elasticsearch';
  /** Events at or after this time: ISO 8601, a Date, or a duration back from now ("24h"). */
  since?: string | Date;
  /** Events before this time, same forms. */
  until?: string | Date;
  /** collector.logs of the configuration: the Elasticsearch sink, and S3 connection settings (region, endpoint, credentials) from sinks.s3 when present. */
  logs: CollectorLogsConfig;
  /** collector.dataDir: the state and dead-letter files live under <dataDir>/log-sinks/replay/. */
  dataDir: string;
  /** Forget the progress of an earlier run with the same arguments and replay everything. */
  restart?: boolean;
  /** Attempts per bulk request before the object is left for the next run (default 8). */
  maxAttempts?: number;
}

export interface ReplayIo {
  /** Progress and the summary (the CLI passes process.stderr). */
  out: NodeJS.WritableStream;
  /** A progress bar redrawn in place; otherwise a plain line every few seconds. */
  isTTY: boolean;
  /** Stops after the object being written (Ctrl-C); the next run resumes. */
  signal?: AbortSignal;
  log?: Logger;
}

export interface ReplaySummary {
  /** Objects in the range, and those skipped because an earlier run completed them. */
  objects: number;
  skipped: number;
  /** Objects written completely in this run, and those left for the next run. */
  completed: number;
  failedObjects: number;
  /** Events read from the objects written in this run (inside since/until). */
  events: number;
  delivered: number;
  /** Already in Elasticsearch (409): replayed before, or written by the live sink. */
  alreadyPresent: number;
  /** Refused by Elasticsearch for good; in `deadLetterFile`. */
  failed: number;
  interrupted: boolean;
  stateFile: string;
  deadLetterFile: string;
  /** 0: everything in range is in Elasticsearch; 1: something failed or the run was interrupted. */
  exitCode: number;
}

interface Range {
  since: number | undefined;
  until: number | undefined;
}

export async function runReplay(options: ReplayOptions, io: ReplayIo): Promise<ReplaySummary> {
  const log = io.log ?? silentLogger();
  if (options.to !== 'elasticsearch') throw usage(`--to ${String(options.to)}: only "elasticsearch" is supported`);
  const es = options.logs.sinks.elasticsearch;
  if (es === undefined) throw usage('--to elasticsearch: collector.logs.sinks.elasticsearch is not configured in the configuration file');
  const { bucket, prefix } = parseS3Url(options.from);
  const now = Date.now();
  const range: Range = { since: parseTime(options.since, 'since', now), until: parseTime(options.until, 'until', now) };
  if (range.since !== undefined && range.until !== undefined && range.since >= range.until) throw usage('--since must be before --until');

  const dir = join(resolve(options.dataDir), 'log-sinks', 'replay');
  await mkdir(dir, { recursive: true });
  const id = createHash('sha256').update(JSON.stringify([options.from, range.since ?? null, range.until ?? null, es.dataStream ?? es.index])).digest('hex').slice(0, 16);
  const stateFile = join(dir, `${id}.done`);
  const deadLetterFile = join(dir, `${id}.dead-letter.ndjson`);
  if (options.restart) await rm(stateFile, { force: true });
  const done = await readState(stateFile);

  const s3Settings = options.logs.sinks.s3 ?? Value.Decode(S3SinkSchema, Value.Default(S3SinkSchema, { bucket }));
  const { client } = s3Client(s3Settings);
  const sink = new ElasticsearchSink(es, { log });
  const metrics = new SinkMetrics(new Telemetry());
  const deadLetter = new DeadLetterFile({ file: deadLetterFile, maxBytes: options.logs.deadLetter.maxBytes, sink: 'elasticsearch', metrics, log });
  const summary: ReplaySummary = { objects: 0, skipped: 0, completed: 0, failedObjects: 0, events: 0, delivered: 0, alreadyPresent: 0, failed: 0, interrupted: false, stateFile, deadLetterFile, exitCode: 1 };
  const progress = new Progress(io);
  const signal = io.signal ?? new AbortController().signal;
  let state: FileHandle | undefined;
  try {
    await sink.open(signal);
    const keys = await listKeys(client, bucket, prefix, range, signal);
    summary.objects = keys.length;
    const todo = keys.filter((k) => !done.has(k));
    summary.skipped = keys.length - todo.length;
    progress.start(summary);
    state = await open(stateFile, 'a');
    for (const key of todo) {
      if (signal.aborted) break;
      const ok = await replayObject(key, { client, bucket, sink, deadLetter, range, summary, signal, log, maxAttempts: options.maxAttempts ?? 8 });
      if (ok) {
        summary.completed++;
        await state.write(`${key}\n`);
        await state.datasync();
      } else if (!signal.aborted) {
        summary.failedObjects++;
      }
      progress.update(summary);
    }
  } finally {
    summary.interrupted = signal.aborted;
    await state?.close();
    await deadLetter.close();
    await sink.close();
    client.destroy();
  }
  summary.exitCode = summary.failed === 0 && summary.failedObjects === 0 && !summary.interrupted ? 0 : 1;
  progress.finish(summary);
  return summary;
}

interface ObjectContext {
  client: S3Client;
  bucket: string;
  sink: ElasticsearchSink;
  deadLetter: DeadLetterFile;
  range: Range;
  summary: ReplaySummary;
  signal: AbortSignal;
  log: Logger;
  maxAttempts: number;
}

/** Writes one object's events; true when every event is settled (delivered, present or dead-lettered). */
async function replayObject(key: string, c: ObjectContext): Promise<boolean> {
  let events: LogEvent[];
  try {
    const body = await withRetry(() => download(c.client, c.bucket, key, c.signal), c);
    events = splitEvents(body).filter((e) => inRange(e, c.range));
  } catch (err) {
    if (!c.signal.aborted) c.log.error({ key, err: errorMessage(err) }, 'replay: cannot read an archived object; it is left for the next run');
    return false;
  }
  const span = TRACING_OFF.tracer.startSpan('replay');
  let pending: readonly LogEvent[] = events;
  let counted = 0;
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (c.signal.aborted) return false;
    try {
      const r = await c.sink.write(pending, c.signal, span);
      c.summary.delivered += r.delivered;
      c.summary.alreadyPresent += r.duplicate;
      if (r.rejected.length > 0) {
        await c.deadLetter.write(r.rejected);
        c.summary.failed += r.rejected.length;
      }
      counted += r.delivered + r.duplicate + r.rejected.length;
      pending = r.retry;
      if (pending.length === 0) break;
      if (attempt + 1 >= c.maxAttempts) throw new RetryableError('PLUMB_ERR_SINK_RETRYABLE', r.retryMessage ?? `${pending.length} events not taken`);
      await sleep(Math.max(backoffDelay(attempt, c.sink.backoff), r.retryAfterMs ?? 0), undefined, { signal: c.signal });
    } catch (err) {
      if (c.signal.aborted) return false;
      if (attempt + 1 >= c.maxAttempts) {
        c.log.error({ key, err: errorMessage(err) }, 'replay: Elasticsearch did not take an object\'s events; it is left for the next run');
        c.summary.events += counted;
        return false;
      }
      try {
        await sleep(retryDelay(err, attempt, c.sink.backoff), undefined, { signal: c.signal });
      } catch {
        return false;
      }
    }
  }
  c.summary.events += events.length;
  return true;
}

async function withRetry<T>(fn: () => Promise<T>, c: ObjectContext): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (c.signal.aborted || attempt + 1 >= c.maxAttempts) throw err;
      await sleep(backoffDelay(attempt, c.sink.backoff), undefined, { signal: c.signal });
    }
  }
}

async function download(client: S3Client, bucket: string, key: string, signal: AbortSignal): Promise<Buffer> {
  const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: signal });
  const bytes = Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  // gzip by its magic number: the object may also have been stored decompressed by a proxy or a copy
  return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipAsync(bytes) : bytes;
}

function inRange(e: LogEvent, r: Range): boolean {
  if (r.since === undefined && r.until === undefined) return true;
  const t = Date.parse(e.timestamp);
  return (r.since === undefined || t >= r.since) && (r.until === undefined || t < r.until);
}

/** Archive keys under the prefix whose hour overlaps [since, until), in key order. */
async function listKeys(client: S3Client, bucket: string, prefix: string, range: Range, signal: AbortSignal): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }), { abortSignal: signal });
    for (const o of page.Contents ?? []) {
      const key = o.Key;
      if (key === undefined) continue;
      const hour = keyHour(key);
      if (hour === undefined) continue;
      if (range.since !== undefined && hour + HOUR <= range.since) continue;
      if (range.until !== undefined && hour >= range.until) continue;
      keys.push(key);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys;
}

async function readState(file: string): Promise<Set<string>> {
  try {
    return new Set((await readFile(file, 'utf8')).split('\n').filter(Boolean));
  } catch {
    return new Set();
  }
}

export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!m) throw usage(`--from ${JSON.stringify(url)}: expected s3://bucket/prefix`);
  return { bucket: m[1], prefix: m[2] ?? '' };
}

function parseTime(value: string | Date | undefined, flag: string, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (value instanceof Date) return value.getTime();
  const ago = parseDuration(value);
  if (ago !== undefined) return now - ago;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw usage(`--${flag} ${JSON.stringify(value)}: expected a time like "2026-11-24T10:00:00Z" or a duration back from now like "24h"`);
  return t;
}

function usage(message: string): PlumbError {
  return new PlumbError('PLUMB_ERR_CONFIG_INVALID', `plumb replay: ${message}`);
}

/** A progress bar on a terminal; plain lines every few seconds otherwise. */
class Progress {
  private readonly io: ReplayIo;
  private lastDraw = 0;
  private started = Date.now();
  private total = 0;
  private skipped = 0;

  constructor(io: ReplayIo) {
    this.io = io;
  }

  start(s: ReplaySummary): void {
    this.started = Date.now();
    this.total = s.objects;
    this.skipped = s.skipped;
    const resumed = s.skipped > 0 ? ` (${s.skipped} already done by an earlier run)` : '';
    this.io.out.write(`replay: ${s.objects} object(s) to replay${resumed}\n`);
  }

  update(s: ReplaySummary): void {
    const now = Date.now();
    const last = s.completed + s.failedObjects + this.skipped === this.total;
    if (!last && now - this.lastDraw < (this.io.isTTY ? 100 : 5000)) return;
    this.lastDraw = now;
    const done = s.completed + s.failedObjects + this.skipped;
    const rate = Math.round(s.events / Math.max(0.001, (now - this.started) / 1000));
    if (this.io.isTTY) {
      const width = 30;
      const filled = this.total === 0 ? width : Math.round((done / this.total) * width);
      const pct = this.total === 0 ? 100 : Math.floor((done / this.total) * 100);
      this.io.out.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct}% ${done}/${this.total} objects · ${s.events} events · ${rate} events/s\u001b[K`);
    } else {
      this.io.out.write(`replay: ${done}/${this.total} objects, ${s.events} events (${rate}/s)\n`);
    }
  }

  finish(s: ReplaySummary): void {
    if (this.io.isTTY && this.lastDraw > 0) this.io.out.write('\n');
    const lines = [
      `replay ${s.interrupted ? 'interrupted' : 'finished'}: ${s.completed} of ${s.objects} object(s) written${s.skipped > 0 ? `, ${s.skipped} skipped (done before)` : ''}${s.failedObjects > 0 ? `, ${s.failedObjects} left for the next run` : ''}`,
      `  events: ${s.events} read, ${s.delivered} written, ${s.alreadyPresent} already present, ${s.failed} failed`,
    ];
    if (s.failed > 0) lines.push(`  failed events and their reasons: ${s.deadLetterFile}`);
    if (s.interrupted || s.failedObjects > 0) lines.push('  run the same command again to resume');
    this.io.out.write(`${lines.join('\n')}\n`);
  }
}
