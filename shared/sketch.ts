/**
 * The one place plumb touches DDSketch. Timers, histograms and distributions are aggregated into
 * sketches with a relative-error guarantee (1% by default) and bounded size (bins collapse at the
 * low end first, so the high percentiles people page on stay exact to the guarantee). Sketches
 * travel between agent and collector as protobuf bytes; count, sum, min and max travel beside
 * them because the protobuf form does not carry them.
 */
import { DDSketch, LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js';

export type Sketch = InstanceType<typeof LogCollapsingLowestDenseDDSketch>;

export const DEFAULT_RELATIVE_ACCURACY = 0.01;
/** 2048 bins at 1% covers values over ~17 orders of magnitude before anything collapses. */
const BIN_LIMIT = 2048;

export function newSketch(relativeAccuracy = DEFAULT_RELATIVE_ACCURACY): Sketch {
  return new LogCollapsingLowestDenseDDSketch({ relativeAccuracy, binLimit: BIN_LIMIT });
}

/** Summary statistics carried next to the sketch bytes on the wire. */
export interface SketchStats {
  count: number;
  sum: number;
  min: number;
  max: number;
}

export function encodeSketch(sketch: Sketch): string {
  return Buffer.from(sketch.toProto()).toString('base64');
}

/** Decodes wire bytes and restores the statistics protobuf drops. Throws on bytes that are not a sketch. */
export function decodeSketch(base64: string, stats: SketchStats): Sketch {
  const s = DDSketch.fromProto(Buffer.from(base64, 'base64')) as unknown as Sketch;
  const binCount = s.store.count + s.negativeStore.count + s.zeroCount;
  if (!Number.isFinite(binCount) || Math.abs(binCount - stats.count) > 1e-6 * Math.max(1, stats.count)) {
    throw new Error(`sketch holds ${binCount} values but the batch says ${stats.count}`);
  }
  s.count = stats.count;
  s.sum = stats.sum;
  s.min = stats.min;
  s.max = stats.max;
  return s;
}

/**
 * Merges `from` into `into`. The library's merge forgets the negative-value store when the target
 * is not empty, which would lose negative samples (gauges-as-distributions, temperature deltas);
 * we merge it ourselves.
 */
export function mergeSketch(into: Sketch, from: Sketch): void {
  if (from.count === 0) return;
  if (!into.mergeable(from)) throw new Error('cannot merge sketches with different relative accuracy');
  const wasEmpty = into.count === 0;
  into.merge(from);
  if (!wasEmpty && from.negativeStore.count > 0) into.negativeStore.merge(from.negativeStore);
}

/** The q-quantile, clamped to the exact min and max we track beside the sketch. */
export function quantile(sketch: Sketch, q: number): number {
  if (sketch.count === 0) return NaN;
  const v = sketch.getValueAtQuantile(q);
  return Math.min(sketch.max, Math.max(sketch.min, v));
}

/** How many values are ≤ `bound`, estimated from the bins (exact to the bin containing `bound`). */
export function countAtOrBelow(sketch: Sketch, bound: number): number {
  const mapping = sketch.mapping;
  let total = 0;
  const neg = sketch.negativeStore;
  if (bound < 0) {
    // negative values are stored by the key of their magnitude
    const k = mapping.key(-bound);
    for (let i = 0; i < neg.bins.length; i++) if (i + neg.offset >= k) total += neg.bins[i] ?? 0;
    return total;
  }
  total += neg.count + sketch.zeroCount;
  if (bound <= mapping.minPossible) return total;
  const k = mapping.key(bound);
  const store = sketch.store;
  for (let i = 0; i < store.bins.length; i++) {
    if (i + store.offset > k) break;
    total += store.bins[i] ?? 0;
  }
  return total;
}
