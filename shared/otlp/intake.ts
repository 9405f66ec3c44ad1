/**
 * What both OTLP doors (HTTP on 4318, gRPC on 4317) and both roles share: decode a request of
 * one signal, map it to plumb's wire types, hand it to the role's sink, and say what to answer.
 *
 * Outcomes, as the OTLP specification wants them:
 * - `ok`: everything taken, or some items refused as invalid (partial success: their count and
 *   the first reason); the client must not retry.
 * - `invalid`: the body cannot be decoded (HTTP 400, gRPC INVALID_ARGUMENT); not retryable.
 * - `busy`: a queue behind the door is full (HTTP 429, gRPC RESOURCE_EXHAUSTED with retry info),
 *   `unavailable`: it cannot make the data durable now (HTTP 503, gRPC UNAVAILABLE); both with
 *   Retry-After, and nothing of the request was kept, so the client's retry loses nothing and
 *   doubles nothing (cumulative-to-delta state is rolled back as well).
 */
import type { Counter } from 'prom-client';
import type { Telemetry } from '../telemetry.ts';
import type { WireMetric } from '../wire.ts';
import type { ZipkinSpan } from '../zipkin.ts';
import { decodeJson, decodeProtobuf, UndecodableError, type Signal } from './codec.ts';
import { otlpToSpans, type ExportTraceServiceRequest, type SpansDecoded } from './traces.ts';
import { decodeTraceRequest } from './traces-wire.ts';
import { OtlpMetricsDecoder, type ExportMetricsServiceRequest, type OtlpMetricsOptions } from './metrics.ts';
import { otlpToEvents, type ExportLogsServiceRequest, type LogsDecoded } from './logs.ts';

export type SinkVerdict = 'ok' | 'busy' | 'unavailable';

/** Where a role puts what its OTLP doors decoded; all or nothing per call. */
export interface OtlpSink {
  traces(spans: ZipkinSpan[]): Promise<SinkVerdict>;
  metrics(metrics: WireMetric[]): Promise<SinkVerdict>;
  logs(events: LogsDecoded): Promise<SinkVerdict>;
}

export type IntakeResult =
  | { outcome: 'ok'; accepted: number; rejected: number; message: string }
  | { outcome: 'invalid'; message: string }
  | { outcome: 'busy'; message: string }
  | { outcome: 'unavailable'; message: string };

export interface OtlpIntakeOptions {
  metrics: OtlpMetricsOptions;
  /** Host name for log records whose resource names none. */
  hostName: string;
  /** Label of the role in counters: agent or collector. */
  role: string;
}

/** Counted once per request and per item, by signal, transport and outcome. */
interface IntakeMetrics {
  requests: Counter<'signal' | 'transport' | 'outcome'>;
  items: Counter<'signal' | 'outcome'>;
}

export class OtlpIntake {
  private readonly sink: OtlpSink;
  private readonly options: OtlpIntakeOptions;
  readonly metricsDecoder: OtlpMetricsDecoder;
  private readonly m: IntakeMetrics;
  private expireTimer: NodeJS.Timeout | null = null;

  constructor(sink: OtlpSink, options: OtlpIntakeOptions, telemetry: Telemetry) {
    this.sink = sink;
    this.options = options;
    this.metricsDecoder = new OtlpMetricsDecoder(options.metrics);
    this.m = {
      requests: telemetry.counter('plumb_otlp_requests_total', 'OTLP export requests by signal, transport (http, grpc) and outcome (ok, partial, invalid, busy, unavailable, too_large, unsupported, unauthorized)', ['signal', 'transport', 'outcome']),
      items: telemetry.counter('plumb_otlp_items_total', 'OTLP spans, data points and log records by signal and outcome (accepted, rejected, baseline, refused)', ['signal', 'outcome']),
    };
    telemetry.gaugeFrom('plumb_otlp_metric_streams', 'cumulative OTLP metric streams remembered for delta conversion', () => this.metricsDecoder.streamCount);
    telemetry.countFrom(telemetry.counter('plumb_otlp_metric_streams_evicted_total', 'cumulative OTLP streams forgotten because otlp.metrics.maxStreams was reached'), () => this.metricsDecoder.evicted);
  }

  start(): void {
    this.expireTimer ??= setInterval(() => this.metricsDecoder.expire(), 60_000);
    this.expireTimer.unref();
  }

  stop(): void {
    if (this.expireTimer) clearInterval(this.expireTimer);
    this.expireTimer = null;
  }

  /** Counts a request answered before it reached handle() (body too large, wrong media type, no credentials). */
  countRefusal(signal: Signal, transport: string, outcome: string): void {
    this.m.requests.inc({ signal, transport, outcome });
  }

  async handle(signal: Signal, body: Uint8Array, json: boolean, transport: string): Promise<IntakeResult> {
    const result = await this.run(signal, body, json);
    const outcome = result.outcome === 'ok' && result.rejected > 0 ? 'partial' : result.outcome;
    this.m.requests.inc({ signal, transport, outcome });
    return result;
  }

  private async run(signal: Signal, body: Uint8Array, json: boolean): Promise<IntakeResult> {
    let req: unknown;
    let spans: SpansDecoded | null = null;
    try {
      // protobuf spans go from bytes to plumb spans in one pass (traces-wire.ts); the rest through message objects
      if (signal === 'traces' && !json) spans = decodeTraceRequest(body);
      else req = json ? decodeJson(signal, Buffer.from(body.buffer, body.byteOffset, body.byteLength)) : decodeProtobuf(signal, body);
    } catch (err) {
      if (err instanceof UndecodableError) return { outcome: 'invalid', message: err.message };
      throw err;
    }
    try {
      if (signal === 'traces') {
        const d = spans ?? otlpToSpans(req as ExportTraceServiceRequest);
        return await this.deliver(signal, d.spans.length, d.rejected, d.error, () => (d.spans.length === 0 ? Promise.resolve('ok') : this.sink.traces(d.spans)));
      }
      if (signal === 'metrics') {
        const d = this.metricsDecoder.decode(req as ExportMetricsServiceRequest);
        if (d.baselines > 0) this.m.items.inc({ signal, outcome: 'baseline' }, d.baselines);
        const result = await this.deliver(signal, d.metrics.length, d.rejected, d.error, () => (d.metrics.length === 0 ? Promise.resolve('ok') : this.sink.metrics(d.metrics)));
        if (result.outcome !== 'ok') d.undo();
        return result;
      }
      const d = otlpToEvents(req as ExportLogsServiceRequest, this.options.hostName);
      return await this.deliver(signal, d.count, d.rejected, d.error, () => (d.count === 0 ? Promise.resolve('ok') : this.sink.logs(d)));
    } catch (err) {
      if (err instanceof UndecodableError) return { outcome: 'invalid', message: err.message };
      throw err;
    }
  }

  private async deliver(signal: Signal, accepted: number, rejected: number, error: string, put: () => Promise<SinkVerdict>): Promise<IntakeResult> {
    const verdict = await put();
    if (verdict !== 'ok') {
      this.m.items.inc({ signal, outcome: 'refused' }, accepted + rejected);
      if (verdict === 'busy') return { outcome: 'busy', message: `the ${this.options.role}'s ${signal} queue is full; retry later` };
      return { outcome: 'unavailable', message: `the ${this.options.role} cannot take ${signal} now; retry later` };
    }
    if (accepted > 0) this.m.items.inc({ signal, outcome: 'accepted' }, accepted);
    if (rejected > 0) this.m.items.inc({ signal, outcome: 'rejected' }, rejected);
    return { outcome: 'ok', accepted, rejected, message: rejected > 0 ? error : '' };
  }
}
