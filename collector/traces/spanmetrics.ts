/**
 * RED metrics from spans, named and labelled the way Grafana Tempo's metrics-generator and the
 * OpenTelemetry spanmetrics connector name them, so their dashboards work unchanged:
 *
 *   traces_spanmetrics_calls_total{service,span_name,span_kind,status_code}
 *   traces_spanmetrics_latency_bucket{…,le} / _sum / _count   (seconds)
 *
 * Durations go into one DDSketch per series (shared/sketch.ts); buckets are read from the
 * sketch at scrape time, so the bucket layout is a rendering choice and memory per series is
 * bounded. A bucket count is exact except for durations within the sketch's relative accuracy
 * (1%) of a bucket bound, which may land on either side of it. See README.md in this folder.
 */
import { Type, type StaticDecode } from '@sinclair/typebox';
import type { Counter } from 'prom-client';
import { Section, Duration } from '../../shared/config.ts';
import type { Logger } from '../../shared/log.ts';
import { LogOnce } from '../../shared/log.ts';
import { countAtOrBelow, newSketch, type Sketch } from '../../shared/sketch.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import type { ZipkinKind, ZipkinSpan } from '../../shared/zipkin.ts';

/** Tempo's default latency buckets: 2ms doubling up to ~16s. */
export const DEFAULT_LATENCY_BUCKETS_SECONDS = [0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384];

export const SpanMetricsSchema = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'Derive call counts and latency histograms from spans.' }),
    maxSeries: Type.Integer({ minimum: 1, default: 10_000, description: 'Most label combinations kept; spans of further combinations are counted in plumb_spanmetrics_series_dropped_total.' }),
    buckets: Type.Array(Type.Number({ exclusiveMinimum: 0 }), {
      minItems: 1,
      default: DEFAULT_LATENCY_BUCKETS_SECONDS,
      description: 'Latency histogram bucket bounds, in seconds, ascending.',
    }),
    staleAfter: Duration('15m', { description: 'A series not seen for this long is removed, freeing its slot.' }),
    maxLabelLength: Type.Integer({ minimum: 16, default: 256, description: 'Longer service or span names are cut to this many characters.' }),
  },
  { description: 'Span metrics (traces_spanmetrics_*).' },
);

export type SpanMetricsConfig = StaticDecode<typeof SpanMetricsSchema>;

export type StatusCodeLabel = 'STATUS_CODE_UNSET' | 'STATUS_CODE_OK' | 'STATUS_CODE_ERROR';
export type SpanKindLabel = 'SPAN_KIND_INTERNAL' | 'SPAN_KIND_SERVER' | 'SPAN_KIND_CLIENT' | 'SPAN_KIND_PRODUCER' | 'SPAN_KIND_CONSUMER';

const KIND_LABELS: Record<ZipkinKind, SpanKindLabel> = {
  SERVER: 'SPAN_KIND_SERVER',
  CLIENT: 'SPAN_KIND_CLIENT',
  PRODUCER: 'SPAN_KIND_PRODUCER',
  CONSUMER: 'SPAN_KIND_CONSUMER',
};

/** Zipkin has no INTERNAL kind: a span without one is local work, as OpenTelemetry's Zipkin exporter writes INTERNAL spans. */
export function spanKindLabel(kind: ZipkinKind | undefined): SpanKindLabel {
  return kind === undefined ? 'SPAN_KIND_INTERNAL' : KIND_LABELS[kind];
}

/**
 * The span's status, first rule that applies:
 * 1. tag `otel.status_code` OK or ERROR (what OpenTelemetry's Zipkin exporter writes) decides;
 * 2. a tag `error` (Zipkin's convention, any value) means ERROR;
 * 3. tag `http.response.status_code` or `http.status_code`: 5xx is ERROR; 4xx is ERROR on CLIENT
 *    spans only (OpenTelemetry's HTTP conventions: a 404 is the server working as intended);
 * 4. otherwise UNSET (HTTP success does not set OK, as in OpenTelemetry instrumentation).
 */
export function spanStatusCode(span: ZipkinSpan): StatusCodeLabel {
  const tags = span.tags;
  if (tags === undefined) return 'STATUS_CODE_UNSET';
  const otel = tags['otel.status_code'];
  if (otel !== undefined) {
    const u = otel.toUpperCase();
    if (u === 'ERROR' || u === 'STATUS_CODE_ERROR') return 'STATUS_CODE_ERROR';
    if (u === 'OK' || u === 'STATUS_CODE_OK') return 'STATUS_CODE_OK';
  }
  if (tags.error !== undefined) return 'STATUS_CODE_ERROR';
  const http = tags['http.response.status_code'] ?? tags['http.status_code'];
  if (http !== undefined) {
    const code = Number(http);
    if (code >= 500 && code <= 599) return 'STATUS_CODE_ERROR';
    if (code >= 400 && code <= 499 && span.kind === 'CLIENT') return 'STATUS_CODE_ERROR';
  }
  return 'STATUS_CODE_UNSET';
}

export const UNKNOWN_SERVICE = 'unknown_service';

interface Series {
  /** Rendered label pairs without braces, escaped once. */
  labels: string;
  calls: number;
  /** Durations in microseconds. */
  sketch: Sketch;
  latencyCount: number;
  sumMicros: number;
  lastSeen: number;
}

export interface SpanMetricsContext {
  telemetry: Telemetry;
  log: Logger;
  /** Clock, for tests of series expiry. */
  now?: () => number;
}

/** Removing stale series while full is a scan; do it at most this often. */
const FULL_SWEEP_INTERVAL_MS = 10_000;

export class SpanMetrics {
  private readonly config: SpanMetricsConfig;
  private readonly series = new Map<string, Series>();
  private readonly bucketsMicros: number[];
  private readonly bucketLabels: string[];
  private readonly now: () => number;
  private readonly dropped: Counter;
  private readonly logOnce: LogOnce;
  private lastSweep = 0;

  constructor(config: SpanMetricsConfig, ctx: SpanMetricsContext) {
    this.config = config;
    const buckets = [...new Set(config.buckets)].sort((a, b) => a - b);
    this.bucketsMicros = buckets.map((s) => s * 1e6);
    this.bucketLabels = buckets.map((s) => formatNumber(s));
    this.now = ctx.now ?? Date.now;
    this.dropped = ctx.telemetry.counter('plumb_spanmetrics_series_dropped_total', 'Spans left out of span metrics because their label combination would pass spanmetrics.maxSeries.');
    ctx.telemetry.gaugeFrom('plumb_spanmetrics_series', 'Label combinations held by span metrics.', () => this.series.size);
    this.logOnce = new LogOnce(ctx.log.child({ component: 'spanmetrics' }));
  }

  /** Adds the spans to their series. Never throws on span content. */
  observe(spans: readonly ZipkinSpan[]): void {
    const now = this.now();
    let dropped = 0;
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i];
      const service = this.cut(span.localEndpoint?.serviceName ?? UNKNOWN_SERVICE);
      const name = this.cut(span.name ?? '');
      const kind = spanKindLabel(span.kind);
      const status = spanStatusCode(span);
      const key = `${service}\u0000${name}\u0000${kind}\u0000${status}`;
      let s = this.series.get(key);
      if (s === undefined) {
        if (this.series.size >= this.config.maxSeries && !this.sweepWhenFull(now)) {
          dropped++;
          continue;
        }
        s = {
          labels: `service="${escapeLabel(service)}",span_name="${escapeLabel(name)}",span_kind="${kind}",status_code="${status}"`,
          calls: 0,
          sketch: newSketch(),
          latencyCount: 0,
          sumMicros: 0,
          lastSeen: now,
        };
        this.series.set(key, s);
      }
      s.calls++;
      s.lastSeen = now;
      // a span without a duration (0 or absent in Zipkin) is counted as a call but has no latency
      const d = span.duration;
      if (d !== undefined && d > 0) {
        s.sketch.accept(d);
        s.latencyCount++;
        s.sumMicros += d;
      }
    }
    if (dropped > 0) {
      this.dropped.inc(dropped);
      this.logOnce.warn('series_limit', { maxSeries: this.config.maxSeries, dropped }, 'span metrics reached spanmetrics.maxSeries; spans of new label combinations are not counted (raise the limit or reduce span name cardinality)');
    }
  }

  /** Prometheus text exposition (format 0.0.4) of every series, HELP and TYPE included. */
  renderSpanMetrics(): string {
    this.sweep(this.now());
    const calls: string[] = [
      '# HELP traces_spanmetrics_calls_total Spans seen, by service, span name, span kind and status code.',
      '# TYPE traces_spanmetrics_calls_total counter',
    ];
    const latency: string[] = [
      '# HELP traces_spanmetrics_latency Span durations in seconds, by service, span name, span kind and status code.',
      '# TYPE traces_spanmetrics_latency histogram',
    ];
    for (const s of this.series.values()) {
      calls.push(`traces_spanmetrics_calls_total{${s.labels}} ${s.calls}`);
      for (let b = 0; b < this.bucketsMicros.length; b++) {
        const n = s.latencyCount === 0 ? 0 : Math.min(s.latencyCount, Math.round(countAtOrBelow(s.sketch, this.bucketsMicros[b])));
        latency.push(`traces_spanmetrics_latency_bucket{${s.labels},le="${this.bucketLabels[b]}"} ${n}`);
      }
      latency.push(`traces_spanmetrics_latency_bucket{${s.labels},le="+Inf"} ${s.latencyCount}`);
      latency.push(`traces_spanmetrics_latency_sum{${s.labels}} ${formatNumber(s.sumMicros / 1e6)}`);
      latency.push(`traces_spanmetrics_latency_count{${s.labels}} ${s.latencyCount}`);
    }
    return `${calls.join('\n')}\n${latency.join('\n')}\n`;
  }

  /** Label combinations currently held. */
  get seriesCount(): number {
    return this.series.size;
  }

  private sweepWhenFull(now: number): boolean {
    if (now - this.lastSweep < FULL_SWEEP_INTERVAL_MS) return false;
    this.sweep(now);
    return this.series.size < this.config.maxSeries;
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    const cutoff = now - this.config.staleAfter;
    for (const [key, s] of this.series) if (s.lastSeen < cutoff) this.series.delete(key);
  }

  private cut(value: string): string {
    if (value.length <= this.config.maxLabelLength) return value;
    let end = this.config.maxLabelLength;
    const c = value.charCodeAt(end - 1);
    if (c >= 0xd800 && c <= 0xdbff) end--; // don't split a surrogate pair
    return value.slice(0, end);
  }
}

function escapeLabel(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function formatNumber(n: number): string {
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  if (Number.isNaN(n)) return 'NaN';
  return String(n);
}
