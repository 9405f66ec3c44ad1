/**
 * Where the agent's OTLP doors put what they decoded, into the same paths as its other doors:
 * spans into the span batcher (as Zipkin spans from apps do), metrics as a batch of their own
 * sharded to the collectors like a statsd interval, log events into the logs lane.
 *
 * All or nothing per request: a full span queue, a full metrics lane or a full logs lane answers
 * "busy" (the client gets 429 / UNAVAILABLE and sends the same request again). A metric batch
 * split between collectors whose lanes disagree — one took its part, another was full — cannot be
 * taken back: the refused part is handed to the forwarder to drop and count
 * (plumb_forward_dropped_total{kind="metrics",reason="queue_full"}) and the request is answered OK,
 * so the part already queued is not counted twice.
 *
 * What 200 means: spans and metrics are in the forwarder's spool (with agent.forward.spool on:
 * on disk, kept across a crash); log events are in the logs lane's memory queue, which does not
 * survive a crash of the agent (the OTLP client has already been answered by then).
 */
import type { Forwarder } from '../forward/forwarder.ts';
import { shardInterval } from '../forward/shard.ts';
import type { SpanBatcher } from '../traces/batcher.ts';
import { LOGS_PATH, METRICS_PATH, type MetricBatch, type WireMetric } from '../../shared/wire.ts';
import type { ZipkinSpan } from '../../shared/zipkin.ts';
import type { LogsDecoded } from '../../shared/otlp/logs.ts';
import type { OtlpSink, SinkVerdict } from '../../shared/otlp/intake.ts';

export class AgentOtlpSink implements OtlpSink {
  private readonly forwarder: Forwarder;
  private readonly batcher: SpanBatcher;
  /** The agent's instance name; batch ids are `${instance}:otlp:${seq}:${collector}`. */
  private readonly instance: string;
  private seq = 0;
  /** False while the memory guard refuses OTLP requests (they are answered busy). */
  private readonly admit: () => boolean;

  constructor(forwarder: Forwarder, batcher: SpanBatcher, instance: string, admit: () => boolean = () => true) {
    this.forwarder = forwarder;
    this.batcher = batcher;
    this.instance = instance;
    this.admit = admit;
  }

  async traces(spans: ZipkinSpan[]): Promise<SinkVerdict> {
    if (!this.admit()) return 'busy';
    return this.batcher.onSpans(spans) ? 'ok' : 'busy';
  }

  async metrics(metrics: WireMetric[]): Promise<SinkVerdict> {
    if (!this.admit()) return 'busy';
    const seq = ++this.seq;
    const now = Date.now();
    const targets = this.forwarder.shardTargets();
    const parts = shardInterval({ metrics, events: [], serviceChecks: [] }, targets);
    const refused: { batch: MetricBatch; collector: string }[] = [];
    let queued = 0;
    for (let i = 0; i < targets.length; i++) {
      if (parts[i].metrics.length === 0) continue;
      const collector = targets[i];
      const id = `${this.instance}:otlp:${seq}:${this.forwarder.collectorIndex(collector)}`;
      const batch: MetricBatch = { id, agent: this.instance, seq, start: now, end: now, metrics: parts[i].metrics, events: [], serviceChecks: [] };
      const outcome = await this.forwarder.send('metrics', METRICS_PATH, id, batch, undefined, { collector, whenFull: 'refuse' });
      if (outcome === 'queued') queued++;
      else refused.push({ batch, collector });
    }
    if (refused.length === 0) return 'ok';
    if (queued === 0) return 'busy';
    for (const r of refused) await this.forwarder.send('metrics', METRICS_PATH, r.batch.id, r.batch, undefined, { collector: r.collector, whenFull: 'drop' });
    return 'ok';
  }

  async logs(events: LogsDecoded): Promise<SinkVerdict> {
    if (!this.admit()) return 'busy';
    const id = `${this.instance}:otlp-logs:${++this.seq}`;
    const outcome = await this.forwarder.send('logs', LOGS_PATH, id, events.ndjson, undefined, { whenFull: 'refuse', contentType: 'application/x-ndjson' });
    return outcome === 'queued' ? 'ok' : 'busy';
  }
}
