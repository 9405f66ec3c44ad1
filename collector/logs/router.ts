/**
 * The log router: the collector's `POST /v1/logs` ingest hands it validated batches; it stores
 * each batch in every sink's own disk queue and only then lets the ingest acknowledge the agent.
 * Each sink drains its own queue (runner.ts), so a slow or dead sink holds back nothing but its
 * own queue. When any queue is full, or above its high-water mark (collector.logs.queue.highWater,
 * 90% of maxBytes by default, so batches under way still fit), accept() refuses the whole batch
 * with a 429 QueueBusyError (Retry-After from collector.logs.queue.retryAfter) and the agent keeps
 * the data.
 *
 * On disk, under <collector.dataDir>/log-sinks/<sink>/: `queue/` (the disk queue) and
 * `dead-letter.ndjson` (events the sink refused for good, with reasons).
 */
import { join, resolve } from 'node:path';
import { RetryableError, errorMessage } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import type { SelfTracing } from '../../shared/tracing.ts';
import { Value } from '@sinclair/typebox/value';
import { FileSinkSchema, type CollectorLogsConfig } from './config.ts';
import { DeadLetterFile } from '../sinks/dead-letter.ts';
import { FileSink } from './file-sink.ts';
import { SinkMetrics } from '../sinks/metrics.ts';
import { QueueFullError, type SinkQueue } from '../sinks/queue.ts';
import { SpoolQueue } from '../sinks/spool-queue.ts';
import { SinkRunner, type SinkStatus } from '../sinks/runner.ts';
import { decodeEvents, type DecodedEvents, type LogEvent } from './event.ts';
import type { LogSink } from './sink.ts';

export type { SinkStatus } from '../sinks/runner.ts';

export interface AcceptedLogBatch {
  /** Batch id from the agent (x-plumb-batch-id), for logs and tracing only. */
  id: string;
  /**
   * Validated NDJSON: one JSON object per '\n'-terminated line. accept() takes it over: with one
   * sink its memory is given back once the sink has the batch, so the caller must not read it after.
   */
  ndjson: Buffer;
  /** Events (lines) in the batch. */
  count: number;
  /** The fields the ingest read of each event, kept beside the queued batch for the sinks' decoder. */
  decoded?: DecodedEvents;
}

export interface LogRouterContext {
  telemetry: Telemetry;
  log: Logger;
  /** collector.dataDir: queues, dead-letter files and the default file sink live under it. */
  dataDir: string;
  tracing?: SelfTracing;
}

/** Opens the disk queue of one sink. */
export type QueueOpener = (dir: string, options: { maxBytes: number; highWater: number; sink: string; log: Logger; telemetry: Telemetry }) => Promise<SinkQueue>;

/** Why accept() refused a batch with 429. */
export type QueueRefusal = 'queue_full' | 'queue_high_water';

/** accept()'s 429: a queue is full or above its high-water mark; `reason` says which. */
export class QueueBusyError extends RetryableError {
  readonly reason: QueueRefusal;
  constructor(message: string, reason: QueueRefusal, retryAfterMs: number) {
    super('PLUMB_ERR_SINK_RETRYABLE', message, { status: 429, retryAfterMs });
    this.name = 'QueueBusyError';
    this.reason = reason;
  }
}

export interface LogRouterOptions {
  /** Replaces the disk queue (tests). */
  openQueue?: QueueOpener;
  /** Replaces the sinks built from config (tests). */
  sinks?: LogSink[];
}

/** Where the file sink writes when its `dir` is not set, and the only sink when none is configured. */
export function defaultLogsDir(dataDir: string): string {
  return join(dataDir, 'logs');
}

export class LogRouter {
  private readonly runners: SinkRunner<LogEvent>[];
  private readonly retryAfterMs: number;
  private readonly log: Logger;
  private readonly stopTimeoutMs: number;
  private closed = false;

  private constructor(runners: SinkRunner<LogEvent>[], config: CollectorLogsConfig, log: Logger) {
    this.runners = runners;
    this.retryAfterMs = config.queue.retryAfter;
    this.stopTimeoutMs = config.stopTimeout;
    this.log = log;
  }

  /**
   * Builds the sinks from config (the file sink under <dataDir>/logs when none is configured)
   * and opens their queues. Does not contact any destination: each sink checks its own at
   * start() and keeps buffering while it is unreachable.
   */
  static async create(config: CollectorLogsConfig, ctx: LogRouterContext, options: LogRouterOptions = {}): Promise<LogRouter> {
    const log = ctx.log.child({ component: 'log-router' });
    const metrics = new SinkMetrics(ctx.telemetry);
    const sinks = options.sinks ?? (await buildSinks(config, ctx));
    // a log sink has written a batch when it returns: its runner is the last holder of what it read
    const openQueue = options.openQueue ?? ((dir, o) => SpoolQueue.open({ dir, fsync: config.queue.fsync, releaseOnAck: true, ...o }));
    const runners: SinkRunner<LogEvent>[] = [];
    try {
      for (const sink of sinks) {
        const base = join(resolve(ctx.dataDir), 'log-sinks', sink.name);
        const queue = await openQueue(join(base, 'queue'), { maxBytes: config.queue.maxBytes, highWater: config.queue.highWater, sink: sink.name, log, telemetry: ctx.telemetry });
        const deadLetter = new DeadLetterFile({ file: join(base, 'dead-letter.ndjson'), maxBytes: config.deadLetter.maxBytes, sink: sink.name, metrics, log });
        runners.push(new SinkRunner({ sink, decode: decodeEvents, queue, deadLetter, metrics, log, tracing: ctx.tracing }));
      }
    } catch (err) {
      await Promise.all(runners.map((r) => r.queue.close().catch(() => undefined)));
      throw err;
    }
    log.info({ sinks: runners.map((r) => r.name) }, 'log sinks ready');
    return new LogRouter(runners, config, log);
  }

  /**
   * Stores the batch in every sink's queue; resolves once it is durable in all of them. Throws a
   * RetryableError with status 429 and retryAfterMs when any queue is full (nothing was stored),
   * or with status 503 when a queue could not store it or the router is stopped.
   */
  async accept(batch: AcceptedLogBatch): Promise<void> {
    if (this.closed) throw new RetryableError('PLUMB_ERR_SINK_RETRYABLE', 'the log router is stopped', { status: 503, retryAfterMs: this.retryAfterMs });
    const bytes = batch.ndjson.length;
    const full = this.runners.filter((r) => !r.queue.hasRoom(bytes));
    if (full.length > 0) {
      for (const r of full) r.refused(batch.count);
      const high = full.filter((r) => r.queue.aboveHighWater?.() === true);
      if (high.length === full.length) {
        throw new QueueBusyError(`log sink queue above its high-water mark (${high.map((r) => r.name).join(', ')}; collector.logs.queue.highWater); try again later`, 'queue_high_water', this.retryAfterMs);
      }
      throw new QueueBusyError(`log sink queue full (${full.map((r) => r.name).join(', ')}); try again later`, 'queue_full', this.retryAfterMs);
    }
    try {
      // One queue is the batch's last holder (the ingest is done with it): it may give the memory
      // back once the sink has the batch. Several queues share the one buffer, so none may.
      const release = this.runners.length === 1;
      await Promise.all(this.runners.map((r) => r.queue.append(batch.ndjson, batch.count, batch.decoded, release)));
    } catch (err) {
      if (err instanceof QueueFullError) {
        // filled up meanwhile (or the disk did). Queues that took the batch get it again with the
        // agent's retry: Elasticsearch (same _id) and the file sink (recently written ids) keep
        // one copy; an S3 object may hold those lines twice.
        for (const r of this.runners) if (!r.queue.hasRoom(bytes)) r.refused(batch.count);
        throw new QueueBusyError(`log sink queue full: ${err.message}; try again later`, 'queue_full', this.retryAfterMs);
      }
      this.log.error({ batch: batch.id, err: errorMessage(err) }, 'a log sink queue could not store a batch; the agent will send it again');
      throw new RetryableError('PLUMB_ERR_SINK_RETRYABLE', `a log sink queue could not store the batch: ${errorMessage(err)}`, { status: 503, retryAfterMs: this.retryAfterMs, cause: err });
    } finally {
      for (const r of this.runners) r.updateDepth();
    }
  }

  /** Starts draining every queue into its sink. Start before the ingest route opens. */
  start(): void {
    for (const r of this.runners) r.start();
  }

  /**
   * Drains the sinks until the deadline, then closes the queues; what is left stays on disk for
   * the next start. `deadlineMs` is a Unix time in milliseconds (like ZipkinExporter.stop); a
   * value below 10^12 is taken as a duration from now. Without one, collector.logs.stopTimeout.
   */
  async stop(deadlineMs?: number): Promise<void> {
    const deadline = deadlineMs === undefined ? Date.now() + this.stopTimeoutMs : deadlineMs < 1e12 ? Date.now() + deadlineMs : deadlineMs;
    await Promise.all(this.runners.map((r) => r.stop(deadline)));
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.runners.map((r) => r.queue.close().catch((err: unknown) => this.log.warn({ sink: r.name, err: errorMessage(err) }, 'log sink queue did not close cleanly'))));
  }

  status(): SinkStatus[] {
    return this.runners.map((r) => r.status());
  }

  /** Names of the sinks, in order. */
  get sinks(): string[] {
    return this.runners.map((r) => r.name);
  }
}

async function buildSinks(config: CollectorLogsConfig, ctx: LogRouterContext): Promise<LogSink[]> {
  const s = config.sinks;
  const sinks: LogSink[] = [];
  const none = s.file === undefined && s.elasticsearch === undefined && s.s3 === undefined && s.otlp === undefined;
  if (s.file !== undefined || none) {
    const file = s.file ?? Value.Decode(FileSinkSchema, Value.Default(FileSinkSchema, {}));
    sinks.push(new FileSink(file, resolve(file.dir ?? defaultLogsDir(ctx.dataDir))));
  }
  // loaded only when configured: a collector without them never loads their client libraries
  if (s.elasticsearch !== undefined) {
    const { ElasticsearchSink } = await import('./elasticsearch.ts');
    sinks.push(new ElasticsearchSink(s.elasticsearch, { log: ctx.log }));
  }
  if (s.s3 !== undefined) {
    const { S3Sink } = await import('./s3.ts');
    sinks.push(new S3Sink(s.s3, { log: ctx.log }));
  }
  if (s.otlp !== undefined) {
    const { OtlpLogSink } = await import('./otlp.ts');
    sinks.push(new OtlpLogSink(s.otlp));
  }
  return sinks;
}
