/**
 * Metric sinks: every `interval` (at each multiple of it, wall clock) the samples /metrics shows
 * are read from the store (MetricStore.visit, the walk render() uses) and appended to each sink's
 * disk queue, stamped with that instant — the interval's end. The OTLP sink takes instead what
 * each series received since the last export (MetricStore.drainDeltas; see otlp.ts). A series that was exported last
 * time and is gone now (expired, or its family dropped) gets Prometheus' staleness marker once.
 * Each sink drains its own queue through the shared sink runner (../../sinks/runner.ts): retries
 * with backoff and Retry-After, dead letters for what a store refuses for good, counters.
 *
 * Bounded: a queue that cannot take an export refuses it, and its samples are counted in
 * plumb_sink_queue_refused_total{sink} and logged (once a minute). On disk, under
 * <collector.dataDir>/metric-sinks/<sink>/: `queue/` and `dead-letter.ndjson`.
 */
import { join, resolve } from 'node:path';
import type { Counter } from 'prom-client';
import { errorMessage } from '../../../shared/errors.ts';
import { LogOnce, type Logger } from '../../../shared/log.ts';
import type { Telemetry } from '../../../shared/telemetry.ts';
import type { SelfTracing } from '../../../shared/tracing.ts';
import { DeadLetterFile } from '../../sinks/dead-letter.ts';
import { SinkMetrics } from '../../sinks/metrics.ts';
import type { SinkQueue } from '../../sinks/queue.ts';
import { SinkRunner, type SinkStatus } from '../../sinks/runner.ts';
import type { Sink } from '../../sinks/sink.ts';
import { SpoolQueue } from '../../sinks/spool-queue.ts';
import type { MetricStore, SampleVisitor } from '../store.ts';
import type { MetricSinksConfig } from './config.ts';
import { GraphiteSink } from './graphite.ts';
import { RemoteWriteSink } from './remote-write.ts';
import { STALE_JSON, decodeSamples, seriesPrefix, valueJson, type MetricSample, type SampleType } from './sample.ts';
import { OtlpMetricSink, decodePoints, pointLine, type QueuedPointItem } from './otlp.ts';

/** Queued NDJSON is appended in records of about this size. */
const CHUNK_BYTES = 1024 * 1024;

export interface MetricSinksContext {
  telemetry: Telemetry;
  log: Logger;
  /** collector.dataDir: queues and dead-letter files live under it. */
  dataDir: string;
  tracing?: SelfTracing;
}

export interface MetricSinksOptions {
  /** Replaces the sinks built from config (tests). */
  sinks?: Sink<MetricSample>[];
}

interface Target {
  runner: SinkRunner<MetricSample> | SinkRunner<QueuedPointItem>;
  queue: SinkQueue;
  /** samples: what /metrics shows (remote_write, Graphite); points: each series' delta (OTLP). */
  takes: 'samples' | 'points';
}

export class MetricSinks {
  private readonly config: MetricSinksConfig;
  private readonly store: MetricStore;
  private readonly targets: Target[];
  private readonly log: Logger;
  private readonly logOnce: LogOnce;
  private readonly exported: Counter<'sink'>;
  private readonly exports: Counter<'outcome'>;
  /** Live series of the last export: key (name NUL labels) → the start of its queued line. */
  private series = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  /** The instant of the last export, Unix ms (0: none yet). */
  lastExportAt = 0;

  private constructor(config: MetricSinksConfig, store: MetricStore, targets: Target[], ctx: MetricSinksContext, log: Logger) {
    this.config = config;
    this.store = store;
    this.targets = targets;
    this.log = log;
    this.logOnce = new LogOnce(log);
    this.exported = ctx.telemetry.counter('plumb_metric_export_samples_total', 'Samples (staleness markers included) put in a metric sink\'s queue by the periodic export.', ['sink']);
    this.exports = ctx.telemetry.counter('plumb_metric_exports_total', 'Periodic exports of the metric store to the metric sinks, by outcome (done; skipped: the previous one was still queueing).', ['outcome']);
  }

  /** Builds the sinks from config and opens their queues; contacts no store. */
  static async create(config: MetricSinksConfig, store: MetricStore, ctx: MetricSinksContext, options: MetricSinksOptions = {}): Promise<MetricSinks> {
    const log = ctx.log.child({ component: 'metric-sinks' });
    const sinks: (Sink<MetricSample> | OtlpMetricSink)[] = options.sinks ?? buildSinks(config, ctx);
    if (options.sinks === undefined && config.otlp !== undefined) sinks.push(new OtlpMetricSink(config.otlp));
    const metrics = new SinkMetrics(ctx.telemetry);
    const targets: Target[] = [];
    try {
      for (const sink of sinks) {
        const base = join(resolve(ctx.dataDir), 'metric-sinks', sink.name);
        const queue = await SpoolQueue.open({ dir: join(base, 'queue'), sink: sink.name, maxBytes: config.queue.maxBytes, fsync: config.queue.fsync, telemetry: ctx.telemetry, log });
        const deadLetter = new DeadLetterFile({ file: join(base, 'dead-letter.ndjson'), maxBytes: config.deadLetter.maxBytes, sink: sink.name, metrics, log });
        const common = { queue, deadLetter, metrics, log, tracing: ctx.tracing };
        if (sink instanceof OtlpMetricSink) targets.push({ queue, takes: 'points', runner: new SinkRunner({ sink, decode: decodePoints, ...common }) });
        else targets.push({ queue, takes: 'samples', runner: new SinkRunner({ sink, decode: decodeSamples, ...common }) });
      }
    } catch (err) {
      await Promise.all(targets.map((t) => t.queue.close().catch(() => undefined)));
      throw err;
    }
    if (targets.length > 0) log.info({ sinks: targets.map((t) => t.runner.name), intervalMs: config.interval }, 'metric sinks ready');
    // from here on (the journal is replayed): what each series receives is kept for the next export
    if (targets.some((t) => t.takes === 'points')) store.trackDeltas = true;
    return new MetricSinks(config, store, targets, ctx, log);
  }

  get size(): number {
    return this.targets.length;
  }

  status(): SinkStatus[] {
    return this.targets.map((t) => t.runner.status());
  }

  /** Starts the runners and the export clock. */
  start(): void {
    if (this.targets.length === 0) return;
    for (const t of this.targets) t.runner.start();
    this.schedule();
  }

  /** Stops the clock, lets an export under way finish, drains the queues until `deadline` (Unix ms). */
  async stop(deadline = Date.now() + this.config.stopTimeout): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    await Promise.all(this.targets.map((t) => t.runner.stop(deadline)));
    await Promise.all(this.targets.map((t) => t.queue.close().catch(() => undefined)));
  }

  /**
   * Queues the samples /metrics shows at `at` (Unix ms), stamped `at`, in every sink's queue,
   * plus staleness markers for the series of the last export that are gone.
   */
  async exportAt(at: number): Promise<void> {
    const prev = this.series;
    const live = new Map<string, string>();
    const chunks: { data: Buffer; samples: number }[] = [];
    let parts: string[] = [];
    let bytes = 0;
    const tail = `,${at}]\n`;
    const push = (line: string): void => {
      parts.push(line);
      bytes += line.length;
      if (bytes >= CHUNK_BYTES) {
        chunks.push({ data: Buffer.from(parts.join('')), samples: parts.length });
        parts = [];
        bytes = 0;
      }
    };
    let type: SampleType = 'gauge';
    const visitor: SampleVisitor = {
      family(_name, familyType) {
        type = familyType;
      },
      sample(name, labels, value) {
        const key = `${name}\0${labels}`;
        let prefix = prev.get(key);
        if (prefix === undefined) prefix = seriesPrefix(name, labels, type);
        else prev.delete(key);
        live.set(key, prefix);
        push(`${prefix},${valueJson(value)}${tail}`);
      },
    };
    const samples = this.targets.some((t) => t.takes === 'samples');
    if (samples) {
      this.store.visit(visitor, at);
      for (const prefix of prev.values()) push(`${prefix},${STALE_JSON}${tail}`);
      if (parts.length > 0) chunks.push({ data: Buffer.from(parts.join('')), samples: parts.length });
      this.series = live;
    }
    const points: { data: Buffer; samples: number }[] = [];
    if (this.targets.some((t) => t.takes === 'points')) {
      const interval = this.lastExportAt > 0 ? at - this.lastExportAt : this.config.interval;
      let lines: string[] = [];
      let size = 0;
      this.store.drainDeltas((d) => {
        const line = pointLine(d, at, interval);
        lines.push(line);
        size += line.length + 1;
        if (size >= CHUNK_BYTES) {
          points.push({ data: Buffer.from(lines.join('\n') + '\n'), samples: lines.length });
          lines = [];
          size = 0;
        }
      }, at);
      if (lines.length > 0) points.push({ data: Buffer.from(lines.join('\n') + '\n'), samples: lines.length });
    }
    this.lastExportAt = at;
    for (const t of this.targets) await this.enqueue(t, t.takes === 'samples' ? chunks : points);
  }

  private async enqueue(t: Target, chunks: { data: Buffer; samples: number }[]): Promise<void> {
    const sink = t.runner.name;
    for (const c of chunks) {
      let queued = false;
      if (t.queue.hasRoom(c.data.length)) {
        try {
          await t.queue.append(c.data, c.samples);
          queued = true;
        } catch (err) {
          this.logOnce.warn(`append:${sink}`, { sink, err: errorMessage(err) }, 'metric sink queue could not store an export; its samples are dropped and counted');
        }
      } else {
        this.logOnce.warn(`full:${sink}`, { sink, samples: c.samples, queueBytes: t.queue.bytes, maxBytes: t.queue.maxBytes }, 'metric sink queue is full (the store is down or slower than the export); samples dropped and counted in plumb_sink_queue_refused_total');
      }
      if (queued) this.exported.inc({ sink }, c.samples);
      else t.runner.refused(c.samples);
    }
    t.runner.updateDepth();
  }

  private schedule(): void {
    const every = this.config.interval;
    const next = (Math.floor(Date.now() / every) + 1) * every;
    this.timer = setTimeout(() => this.tick(next), Math.max(0, next - Date.now()));
    this.timer.unref();
  }

  private tick(at: number): void {
    this.schedule();
    if (this.running !== null) {
      this.exports.inc({ outcome: 'skipped' });
      return;
    }
    this.running = this.exportAt(at)
      .then(() => this.exports.inc({ outcome: 'done' }))
      .catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'metric export failed'))
      .finally(() => {
        this.running = null;
      });
  }
}

function buildSinks(config: MetricSinksConfig, ctx: MetricSinksContext): Sink<MetricSample>[] {
  const sinks: Sink<MetricSample>[] = [];
  for (const rw of config.remoteWrite ?? []) sinks.push(new RemoteWriteSink(rw, { telemetry: ctx.telemetry }));
  for (const g of config.graphite ?? []) sinks.push(new GraphiteSink(g, { telemetry: ctx.telemetry }));
  return sinks;
}
