/**
 * Where the collector's OTLP doors put what they decoded: the same stages an agent's batches
 * reach through /v1/metrics, /v1/traces and /v1/logs.
 *
 * - metrics: one batch per request, id `otlp:<collector instance>:<seq>`, journaled and applied
 *   (or, in a fleet, placed with each series' owner) before the answer; a journal or placement
 *   failure answers 503 and rolls the cumulative state back;
 * - spans: the Elasticsearch span index first (durable), then the Zipkin sink, then span metrics,
 *   all or none as for agents' batches; a full queue answers 429;
 * - log events: events whose id was accepted recently are skipped (a client's retry of the same
 *   request, see shared/otlp/logs.ts), the rest go to the log router and are acknowledged once
 *   durable in every sink's queue; their ids are then journaled as for agents' events.
 */
import { randomBytes } from 'node:crypto';
import { RetryableError } from '../../shared/errors.ts';
import type { WireMetric, MetricBatch } from '../../shared/wire.ts';
import type { ZipkinSpan } from '../../shared/zipkin.ts';
import type { LogsDecoded } from '../../shared/otlp/logs.ts';
import type { OtlpSink, SinkVerdict } from '../../shared/otlp/intake.ts';
import type { BatchRouter, MetricIntake } from './metrics.ts';
import type { DurableSpanSink, SpanSink } from './traces.ts';
import type { LogBatchSink, LogObserver } from './logs.ts';
import type { ReplayIds } from './dedupe.ts';

export interface CollectorOtlpDeps {
  metrics: MetricIntake;
  router: BatchRouter | null;
  index: DurableSpanSink | null;
  zipkin: SpanSink | null;
  spanMetrics: { observe(spans: readonly ZipkinSpan[]): void } | null;
  logs: LogBatchSink;
  seenLogIds: ReplayIds;
  observer: LogObserver | null;
}

export class CollectorOtlpSink implements OtlpSink {
  private readonly d: CollectorOtlpDeps;
  private readonly instance = `otlp:${randomBytes(4).toString('hex')}@${Date.now()}`;
  private seq = 0;

  constructor(deps: CollectorOtlpDeps) {
    this.d = deps;
  }

  async metrics(metrics: WireMetric[]): Promise<SinkVerdict> {
    const seq = ++this.seq;
    const now = Date.now();
    const batch: MetricBatch = { id: `${this.instance}:${seq}`, agent: this.instance, seq, start: now, end: now, metrics, events: [], serviceChecks: [] };
    try {
      if (this.d.router) await this.d.router.accept(batch);
      else await this.d.metrics.accept(batch);
      return 'ok';
    } catch {
      return 'unavailable';
    }
  }

  async traces(spans: ZipkinSpan[]): Promise<SinkVerdict> {
    const { index, zipkin, spanMetrics } = this.d;
    if (index !== null && !(await index.write(spans))) return 'busy';
    if (zipkin !== null && !(await zipkin.write(spans))) return 'busy';
    spanMetrics?.observe(spans);
    return 'ok';
  }

  async logs(events: LogsDecoded): Promise<SinkVerdict> {
    const { seenLogIds, logs, observer } = this.d;
    const lines = events.ndjson.toString('utf8').split('\n');
    const fresh: number[] = [];
    for (let i = 0; i < events.ids.length; i++) if (!seenLogIds.has(events.ids[i])) fresh.push(i);
    if (fresh.length === 0) return 'ok';
    const ndjson = Buffer.from(`${fresh.map((i) => lines[i]).join('\n')}\n`);
    try {
      await logs.accept({ id: `${this.instance}:logs:${++this.seq}`, ndjson, count: fresh.length });
    } catch (err) {
      return err instanceof RetryableError ? 'busy' : 'unavailable';
    }
    const recorded = seenLogIds.record(fresh.map((i) => events.ids[i]));
    if (observer !== null && observer.observesLogs) {
      const now = Date.now();
      for (const i of fresh) observer.observeLog(JSON.parse(lines[i]) as Record<string, unknown>, now);
    }
    await recorded;
    return 'ok';
  }
}
