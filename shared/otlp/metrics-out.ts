/**
 * plumb's metric series → OTLP metrics (the collector's OTLP metric sink). What a collector
 * holds is exported as deltas of the export interval (aggregation temporality DELTA): plumb
 * itself aggregates statsd intervals as deltas, another plumb adds them up the way it merges
 * agents, and a receiver that starts late (or restarts) misses nothing it could not know about.
 * One series becomes one data point:
 *
 * | plumb (collector store)                  | OTLP                                             |
 * |------------------------------------------|--------------------------------------------------|
 * | counter `x_total`                        | Sum `x`, monotonic, delta: the increase           |
 * | gauge, set (distinct members), check     | Gauge: the value /metrics shows                   |
 * | histogram (OTLP explicit buckets, or a sketch mapped to buckets) | Histogram, delta: bucket counts |
 * | timer / histogram / distribution sketch  | ExponentialHistogram, delta (see below)           |
 * | OTLP summary                             | Summary, as the source sent it                    |
 *
 * A DDSketch becomes an exponential histogram at a scale fine enough that each sketch bin lands
 * in a bucket whose midpoint maps back to that very bin, so a plumb receiver rebuilds the same
 * sketch (same relative accuracy assumed); count, sum, min and max are exact. While the interval
 * had at most SKETCH_EXACT_SAMPLES samples they travel as exemplars (all of them, so a receiver
 * can rank them exactly), weighted by the attribute `plumb.weight` when not 1. OTLP counts are
 * integers: counts made fractional by statsd sample rates are rounded.
 */
import { decodeSketch, type Sketch } from '../sketch.ts';
import type { KeyValue } from './codec.ts';

/** The weight of a sample carried as an exemplar, when not 1. */
export const WEIGHT_ATTRIBUTE = 'plumb.weight';

/** One series' point as it waits in the OTLP metric sink's queue (one JSON object a line). */
export type QueuedPoint = {
  /** family name as /metrics shows it */
  n: string;
  /** label names and values, sorted by name */
  l: string[];
  /** the export instant, Unix ms */
  t: number;
  /** the interval the point covers, ms (delta points start at t − i) */
  i: number;
} & (
  | { k: 'c' | 'g'; v: number }
  | { k: 'h'; b: number[]; c: number[]; sum: number; count: number }
  | { k: 'e'; sk: string; sum: number; count: number; min: number; max: number; x?: number[]; w?: number[] }
  | { k: 'q'; q: [number, number][]; sum: number; count: number }
);

const DELTA = 1;
const SCOPE = { name: 'plumb' };

function nanos(ms: number): string {
  return (BigInt(Math.round(ms)) * 1_000_000n).toString();
}

function attributes(pairs: readonly string[]): KeyValue[] {
  const out: KeyValue[] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) out.push({ key: pairs[i], value: { stringValue: pairs[i + 1] } });
  return out;
}

/** A sketch's bins as exponential histogram buckets (see the header). */
export function sketchToExponential(sketch: Sketch): { scale: number; zeroCount: number; positive: { offset: number; bucketCounts: number[] }; negative: { offset: number; bucketCounts: number[] } } {
  const mapping = sketch.mapping as unknown as { key(v: number): number; value(k: number): number; gamma: number };
  const bins = (store: Sketch['store']): [number, number][] => {
    const out: [number, number][] = [];
    for (let i = 0; i < store.bins.length; i++) if (store.bins[i] > 0) out.push([i + store.offset, store.bins[i]]);
    return out;
  };
  const pos = bins(sketch.store);
  const neg = bins(sketch.negativeStore);
  // a bucket width (in log2) a fraction of the sketch's, then finer until every bin maps back
  let scale = Math.min(20, Math.max(0, Math.ceil(Math.log2(4 / Math.log2(mapping.gamma)))));
  const index = (v: number, s: number): number => Math.ceil(Math.log2(v) * 2 ** s) - 1;
  const mid = (i: number, s: number): number => 2 ** ((i + 0.5) * 2 ** -s);
  const fits = (s: number): boolean => [...pos, ...neg].every(([k]) => mapping.key(mid(index(mapping.value(k), s), s)) === k);
  while (scale < 20 && !fits(scale)) scale++;
  const buckets = (list: [number, number][]): { offset: number; bucketCounts: number[] } => {
    if (list.length === 0) return { offset: 0, bucketCounts: [] };
    const at = list.map(([k, c]) => [index(mapping.value(k), scale), c] as const);
    const offset = Math.min(...at.map(([i]) => i));
    const counts = new Array<number>(Math.max(...at.map(([i]) => i)) - offset + 1).fill(0);
    for (const [i, c] of at) counts[i - offset] += Math.round(c);
    return { offset, bucketCounts: counts };
  };
  return { scale, zeroCount: Math.round(sketch.zeroCount), positive: buckets(pos), negative: buckets(neg) };
}

/** The sketch of a queued point, for tests and checks. */
export function queuedSketch(p: { sk: string; count: number; sum: number; min: number; max: number }): Sketch {
  return decodeSketch(p.sk, p);
}

/** Queued points → one ExportMetricsServiceRequest (plain objects for codec.encodeRequest). */
export function pointsToOtlp(points: readonly QueuedPoint[]): Record<string, unknown> {
  const metrics = new Map<string, Record<string, unknown>>();
  const metricOf = (name: string, kind: string, make: () => Record<string, unknown>): Record<string, unknown>[] => {
    const key = `${kind}\u0000${name}`;
    let m = metrics.get(key);
    if (m === undefined) metrics.set(key, (m = { name, ...make() }));
    const data = Object.values(m).find((v) => v !== null && typeof v === 'object') as { dataPoints: Record<string, unknown>[] };
    return data.dataPoints;
  };
  for (const p of points) {
    const attrs = attributes(p.l);
    const time = nanos(p.t);
    const start = nanos(p.t - p.i);
    switch (p.k) {
      case 'c':
        metricOf(p.n.endsWith('_total') ? p.n.slice(0, -'_total'.length) : p.n, 'c', () => ({ sum: { aggregationTemporality: DELTA, isMonotonic: true, dataPoints: [] } })).push({ attributes: attrs, startTimeUnixNano: start, timeUnixNano: time, asDouble: p.v });
        break;
      case 'g':
        metricOf(p.n, 'g', () => ({ gauge: { dataPoints: [] } })).push({ attributes: attrs, timeUnixNano: time, asDouble: p.v });
        break;
      case 'h':
        metricOf(p.n, 'h', () => ({ histogram: { aggregationTemporality: DELTA, dataPoints: [] } })).push({
          attributes: attrs,
          startTimeUnixNano: start,
          timeUnixNano: time,
          count: Math.round(p.count),
          sum: p.sum,
          bucketCounts: p.c.map((c) => Math.round(c)),
          explicitBounds: p.b,
        });
        break;
      case 'e': {
        const sketch = queuedSketch(p);
        const point: Record<string, unknown> = { attributes: attrs, startTimeUnixNano: start, timeUnixNano: time, count: Math.round(p.count), sum: p.sum, min: p.min, max: p.max, ...sketchToExponential(sketch) };
        if (p.x !== undefined) {
          point.exemplars = p.x.map((value, j) => {
            const w = p.w?.[j] ?? 1;
            return w === 1 ? { timeUnixNano: time, asDouble: value } : { timeUnixNano: time, asDouble: value, filteredAttributes: [{ key: WEIGHT_ATTRIBUTE, value: { doubleValue: w } }] };
          });
        }
        metricOf(p.n, 'e', () => ({ exponentialHistogram: { aggregationTemporality: DELTA, dataPoints: [] } })).push(point);
        break;
      }
      case 'q':
        metricOf(p.n, 'q', () => ({ summary: { dataPoints: [] } })).push({
          attributes: attrs,
          timeUnixNano: time,
          count: Math.round(p.count),
          sum: p.sum,
          quantileValues: p.q.map(([quantile, value]) => ({ quantile, value })),
        });
        break;
    }
  }
  return { resourceMetrics: [{ resource: {}, scopeMetrics: [{ scope: SCOPE, metrics: [...metrics.values()] }] }] };
}

