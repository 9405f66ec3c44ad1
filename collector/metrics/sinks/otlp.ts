/**
 * The OTLP metric sink (collector.metrics.sinks.otlp): every export interval, what each series
 * received since the last export, as OTLP/HTTP protobuf (gzip) through the shared sink runner:
 * disk queue, retry with backoff honouring Retry-After, dead letters for what a partial_success
 * refused, counters under the sink name `otlp`. The mapping (deltas, one point per series) is
 * shared/otlp/metrics-out.ts; the queued form is one QueuedPoint a line.
 */
import type { OtlpExportConfig } from '../../../shared/otlp/config.ts';
import { pointsToOtlp, type QueuedPoint } from '../../../shared/otlp/metrics-out.ts';
import { encodeSketch } from '../../../shared/sketch.ts';
import { OtlpSinkBase } from '../../sinks/otlp.ts';
import type { Sink, SinkItem } from '../../sinks/sink.ts';
import { parseLabelText } from './sample.ts';
import type { SeriesDelta } from '../store.ts';

export interface QueuedPointItem extends SinkItem {
  readonly point: QueuedPoint;
}

export const OTLP_METRIC_SINK = 'otlp';

export class OtlpMetricSink extends OtlpSinkBase<QueuedPointItem> implements Sink<QueuedPointItem> {
  readonly name = OTLP_METRIC_SINK;

  constructor(config: OtlpExportConfig) {
    super(config, 'metrics');
  }

  protected request(items: readonly QueuedPointItem[]): object {
    return pointsToOtlp(items.map((i) => i.point));
  }
}

/** The queued line of a series' delta at `at` over an interval of `intervalMs`. */
export function pointLine(d: SeriesDelta, at: number, intervalMs: number): string {
  const head = { n: d.name, l: parseLabelText(d.labels), t: at, i: intervalMs };
  let point: QueuedPoint;
  switch (d.kind) {
    case 'counter':
      point = { ...head, k: 'c', v: d.value };
      break;
    case 'gauge':
      point = { ...head, k: 'g', v: d.value };
      break;
    case 'histogram':
      point = { ...head, k: 'h', b: d.bounds, c: d.counts, sum: d.sum, count: d.count };
      break;
    case 'summary':
      point = { ...head, k: 'q', q: d.quantiles, sum: d.sum, count: d.count };
      break;
    case 'sketch': {
      const sk = d.sketch;
      point = { ...head, k: 'e', sk: encodeSketch(sk), sum: d.sum, count: d.count, min: sk.min, max: sk.max };
      if (d.samples !== null && d.samples.values.length > 0) {
        point.x = d.samples.values;
        if (d.samples.weights.some((w) => w !== 1)) point.w = d.samples.weights;
      }
      break;
    }
  }
  return JSON.stringify(point);
}

/** Splits queued NDJSON into points; a line that is not one is skipped. */
export function decodePoints(ndjson: Buffer, out: QueuedPointItem[]): void {
  let start = 0;
  while (start < ndjson.length) {
    let nl = ndjson.indexOf(0x0a, start);
    if (nl < 0) nl = ndjson.length;
    if (nl > start) {
      const line = ndjson.subarray(start, nl);
      try {
        const point = JSON.parse(line.toString('utf8')) as QueuedPoint;
        if (point !== null && typeof point === 'object' && typeof point.n === 'string') out.push({ line, point });
      } catch {
        // not a point: skipped
      }
    }
    start = nl + 1;
  }
}
