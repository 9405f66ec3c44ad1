/**
 * The one place plumb touches DDSketch. Timers, histograms and distributions are aggregated into
 * sketches with a relative-error guarantee (1% by default) and bounded size (bins collapse at the
 * low end first, so the high percentiles people page on stay exact to the guarantee). Sketches
 * travel between agent and collector in a compact form of our own (below); count, sum, min and
 * max travel beside them.
 */
import { LogCollapsingLowestDenseDDSketch } from '@datadog/sketches-js';

export type Sketch = InstanceType<typeof LogCollapsingLowestDenseDDSketch>;

export const DEFAULT_RELATIVE_ACCURACY = 0.01;
/**
 * Samples per series kept exactly beside a sketch (by the agent per interval, by the collector
 * per quantile window). Up to this many, quantiles are nearest-rank over the samples themselves;
 * past it the sketch answers, within its relative accuracy.
 */
export const SKETCH_EXACT_SAMPLES = 64;
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

/**
 * Wire form: a sparse, varint-packed list of the non-empty bins, base64. DDSketch's protobuf form
 * writes every bin between the lowest and highest as a double (~2–4 KB for a typical latency
 * series, and slow to build); this is usually a few hundred bytes. Layout:
 *   u8 version (1) · f64 relative accuracy · f64 zero count ·
 *   positive store, negative store: varint bins · [zigzag first key · (varint key gap ·
 *   count)*] where count is a varint when every count in the store is a whole number (u8 mode 0)
 *   or an f64 otherwise (u8 mode 1).
 */
export function encodeSketch(sketch: Sketch): string {
  const w = new ByteWriter(64);
  w.u8(1);
  w.f64(relativeAccuracyOf(sketch));
  w.f64(sketch.zeroCount);
  writeStore(w, sketch.store);
  writeStore(w, sketch.negativeStore);
  return w.done().toString('base64');
}

/** Decodes the wire form and restores the statistics carried beside it. Throws on malformed bytes. */
export function decodeSketch(base64: string, stats: SketchStats): Sketch {
  const r = new ByteReader(Buffer.from(base64, 'base64'));
  if (r.u8() !== 1) throw new Error('unknown sketch encoding');
  const accuracy = r.f64();
  if (!(accuracy > 0 && accuracy < 1)) throw new Error('sketch relative accuracy out of range');
  const s = newSketch(accuracy);
  const zero = r.f64();
  if (!(zero >= 0)) throw new Error('negative zero count in sketch');
  s.zeroCount = zero;
  readStore(r, s.store);
  readStore(r, s.negativeStore);
  if (!r.atEnd()) throw new Error('trailing bytes after sketch');
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

/** The relative accuracy a sketch was made with (kept exactly, so both ends build equal mappings). */
export function relativeAccuracyOf(sketch: Sketch): number {
  return (sketch.mapping as unknown as { relativeAccuracy: number }).relativeAccuracy;
}

type Store = Sketch['store'];

function writeStore(w: ByteWriter, store: Store): void {
  const bins = store.bins;
  let n = 0;
  let whole = true;
  for (let i = 0; i < bins.length; i++) {
    const c = bins[i];
    if (c > 0) {
      n++;
      if (!Number.isSafeInteger(c)) whole = false;
    }
  }
  w.varint(n);
  if (n === 0) return;
  w.u8(whole ? 0 : 1);
  let prev = 0;
  let first = true;
  for (let i = 0; i < bins.length; i++) {
    const c = bins[i];
    if (!(c > 0)) continue;
    const key = i + store.offset;
    if (first) {
      w.varint(key < 0 ? -2 * key - 1 : 2 * key);
      first = false;
    } else {
      w.varint(key - prev);
    }
    prev = key;
    if (whole) w.varint(c);
    else w.f64(c);
  }
}

function readStore(r: ByteReader, store: Store): void {
  const n = r.varint();
  if (n === 0) return;
  if (n > 1_000_000) throw new Error('sketch has too many bins');
  const mode = r.u8();
  if (mode > 1) throw new Error('unknown sketch count mode');
  let key = 0;
  for (let i = 0; i < n; i++) {
    if (i === 0) {
      const z = r.varint();
      key = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
    } else {
      const gap = r.varint();
      if (gap === 0) throw new Error('sketch bins out of order');
      key += gap;
    }
    const count = mode === 0 ? r.varint() : r.f64();
    if (!(count > 0) || !Number.isFinite(count)) throw new Error('sketch bin count must be positive');
    store.add(key, count);
  }
}

class ByteWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.room(1);
    this.buf[this.pos++] = v;
  }

  f64(v: number): void {
    this.room(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** Unsigned integers up to 2^53, 7 bits a byte. */
  varint(v: number): void {
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

class ByteReader {
  private readonly buf: Buffer;
  private pos = 0;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new Error('sketch bytes end early');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
      scale *= 0x80;
    }
    throw new Error('sketch varint too long');
  }

  atEnd(): boolean {
    return this.pos === this.buf.length;
  }
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

/**
 * Nearest rank over weighted samples: the smallest sample whose cumulative weight reaches q of
 * the total, so the answer is always a value that was observed (p90 of 0, 0, 250 is 250).
 */
export function exactQuantile(values: number[], weights: number[] | null, q: number): number {
  const n = values.length;
  if (n === 0) return NaN;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  let total = 0;
  for (let i = 0; i < n; i++) total += weights === null ? 1 : weights[i];
  const rank = q * total;
  let cumulative = 0;
  for (const i of order) {
    cumulative += weights === null ? 1 : weights[i];
    // tolerance for the sum of fractional weights (1/sampleRate)
    if (cumulative >= rank - 1e-9 * total) return values[i];
  }
  return values[order[n - 1]];
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
