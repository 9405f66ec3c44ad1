/**
 * OTLP metrics → plumb wire metrics (shared/wire.ts), so that OTLP data from many agents merges
 * in the collector the way statsd data does: everything leaves here as a delta of the interval or
 * as a gauge.
 *
 * | OTLP                                   | wire                                   | Prometheus |
 * |----------------------------------------|----------------------------------------|------------|
 * | Sum, monotonic, delta                  | `c` (the delta)                        | counter `_total` |
 * | Sum, monotonic, cumulative             | `c` (difference to the previous point) | counter `_total` |
 * | Sum, not monotonic, cumulative         | `g` (the value)                        | gauge |
 * | Sum, not monotonic, delta              | `g` (running total of the deltas)      | gauge |
 * | Gauge                                  | `g`                                    | gauge |
 * | Histogram (explicit buckets)           | `hist` (bucket counts of the interval) | histogram `_bucket` |
 * | ExponentialHistogram                   | `d` (a DDSketch)                       | summary (quantiles) |
 * | Summary                                | `sum` (as sent)                        | summary |
 *
 * Cumulative streams (one per resource, scope, metric and attribute set) become deltas here. A
 * reset is seen when the point's start time changes or its value (count) goes down: the whole
 * new value is then the delta. The first point of a stream counts in full when the stream started
 * after this decoder did (an application started or restarted since), and is only taken as the
 * baseline otherwise (this process restarted while the application kept counting: what it counted
 * before cannot be told apart from what was already delivered). Streams are forgotten after
 * `streamTtl` without a point, and beyond `maxStreams` the oldest go first (counted).
 *
 * Exponential histograms: each bucket's count is added to a DDSketch at the bucket's geometric
 * midpoint, so a quantile read from the sketch is within (1 + α)·2^(2^−(scale+1)) − 1 of the true
 * value (α the sketch's relative accuracy): 1.0% + 0.0000661% at scale 20, 5.5% at scale 3 with
 * α = 1%. Count, sum, min and max are carried exactly. When a delta point's exemplars are all
 * its samples (their count is the point's; the OTLP metric sink sends them so), they are kept as
 * the interval's samples for exact quantiles, as statsd samples are.
 *
 * Resource attributes named in `resourceLabels` become labels of every series of that resource;
 * the others go to a `target_info` gauge (value 1) carrying those labels too, as Prometheus'
 * OTLP guidance has it.
 */
import { newSketch, encodeSketch, SKETCH_EXACT_SAMPLES } from '../sketch.ts';
import type { WireDistribution, WireMetric } from '../wire.ts';
import { WEIGHT_ATTRIBUTE } from './metrics-out.ts';
import { anyValueToString, has, int64ToNumber, int64ToString, type Int64, type KeyValue, type Resource, type Scope } from './codec.ts';
import { prometheusLabel, prometheusName } from './prom-names.ts';

export interface OtlpMetricsOptions {
  resourceLabels: readonly string[];
  relativeAccuracy: number;
  maxStreams: number;
  streamTtlMs: number;
}

interface NumberPoint {
  attributes?: KeyValue[] | null;
  startTimeUnixNano?: Int64 | null;
  timeUnixNano?: Int64 | null;
  asDouble?: number | null;
  asInt?: Int64 | null;
  flags?: number | null;
}

interface HistogramPoint {
  attributes?: KeyValue[] | null;
  startTimeUnixNano?: Int64 | null;
  timeUnixNano?: Int64 | null;
  count?: Int64 | null;
  sum?: number | null;
  bucketCounts?: Int64[] | null;
  explicitBounds?: number[] | null;
  min?: number | null;
  max?: number | null;
  flags?: number | null;
}

interface Buckets {
  offset?: number | null;
  bucketCounts?: Int64[] | null;
}

interface ExpPoint {
  attributes?: KeyValue[] | null;
  startTimeUnixNano?: Int64 | null;
  timeUnixNano?: Int64 | null;
  count?: Int64 | null;
  sum?: number | null;
  scale?: number | null;
  zeroCount?: Int64 | null;
  positive?: Buckets | null;
  negative?: Buckets | null;
  min?: number | null;
  max?: number | null;
  flags?: number | null;
  zeroThreshold?: number | null;
  exemplars?: { asDouble?: number | null; asInt?: Int64 | null; filteredAttributes?: KeyValue[] | null }[] | null;
}

interface SummaryPoint {
  attributes?: KeyValue[] | null;
  startTimeUnixNano?: Int64 | null;
  timeUnixNano?: Int64 | null;
  count?: Int64 | null;
  sum?: number | null;
  quantileValues?: { quantile?: number | null; value?: number | null }[] | null;
  flags?: number | null;
}

export interface OtlpMetric {
  name?: string | null;
  description?: string | null;
  unit?: string | null;
  gauge?: { dataPoints?: NumberPoint[] | null } | null;
  sum?: { dataPoints?: NumberPoint[] | null; aggregationTemporality?: number | null; isMonotonic?: boolean | null } | null;
  histogram?: { dataPoints?: HistogramPoint[] | null; aggregationTemporality?: number | null } | null;
  exponentialHistogram?: { dataPoints?: ExpPoint[] | null; aggregationTemporality?: number | null } | null;
  summary?: { dataPoints?: SummaryPoint[] | null } | null;
}

export interface ExportMetricsServiceRequest {
  resourceMetrics?: { resource?: Resource | null; scopeMetrics?: { scope?: Scope | null; metrics?: OtlpMetric[] | null }[] | null }[] | null;
}

export interface MetricsDecoded {
  metrics: WireMetric[];
  /** Data points refused; the first reason is in `error`. */
  rejected: number;
  error: string;
  /** Data points taken only as the baseline of a cumulative stream. */
  baselines: number;
  /** Puts the cumulative streams back as they were before this request (its data was not taken). */
  undo: () => void;
}

const DELTA = 1;
const CUMULATIVE = 2;
const NO_RECORDED_VALUE = 1;

/** What a cumulative stream last reported. */
interface StreamState {
  start: string;
  seen: number;
  value: number;
  counts: number[] | null;
  bounds: number[] | null;
  count: number;
  sum: number;
  exp: ExpState | null;
}

interface ExpState {
  scale: number;
  zero: number;
  pos: Map<number, number>;
  neg: Map<number, number>;
}

export class OtlpMetricsDecoder {
  private readonly options: OtlpMetricsOptions;
  private readonly resourceLabels: Set<string>;
  /** Nanoseconds since the epoch when this decoder started; streams that start later count in full. */
  private readonly bornNanos: bigint;
  private readonly streams = new Map<string, StreamState>();
  /** Streams forgotten because maxStreams was reached. */
  evicted = 0;
  /** What the request being decoded changed: each stream's state before (undefined: it was new). */
  private changed: Map<string, StreamState | undefined> = new Map();

  constructor(options: OtlpMetricsOptions, now = Date.now()) {
    this.options = options;
    this.resourceLabels = new Set(options.resourceLabels);
    this.bornNanos = BigInt(now) * 1_000_000n;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  /** Forgets streams without a point for streamTtl. */
  expire(now = Date.now()): void {
    const limit = now - this.options.streamTtlMs;
    for (const [k, s] of this.streams) if (s.seen < limit) this.streams.delete(k);
  }

  decode(req: ExportMetricsServiceRequest, now = Date.now()): MetricsDecoded {
    const changed = (this.changed = new Map());
    const undo = (): void => {
      for (const [k, before] of changed) {
        if (before === undefined) this.streams.delete(k);
        else this.streams.set(k, before);
      }
    };
    const out: MetricsDecoded = { metrics: [], rejected: 0, error: '', baselines: 0, undo };
    for (const rm of req.resourceMetrics ?? []) {
      const labels: string[] = [];
      const info: string[] = [];
      const resourceKeyParts: string[] = [];
      for (const kv of rm.resource?.attributes ?? []) {
        const v = anyValueToString(kv.value);
        resourceKeyParts.push(`${kv.key}=${v}`);
        if (this.resourceLabels.has(kv.key)) {
          if (v !== '') labels.push(`${prometheusLabel(kv.key)}:${v}`);
        } else if (v !== '') {
          info.push(`${prometheusLabel(kv.key)}:${v}`);
        }
      }
      const resourceKey = resourceKeyParts.sort().join('\u0001');
      let points = 0;
      for (const sm of rm.scopeMetrics ?? []) {
        const scopeKey = `${sm.scope?.name ?? ''}\u0001${sm.scope?.version ?? ''}`;
        for (const m of sm.metrics ?? []) points += this.metric(m, labels, `${resourceKey}\u0002${scopeKey}`, now, out);
      }
      if (points > 0 && info.length > 0) out.metrics.push({ type: 'g', name: 'target_info', tags: [...labels, ...info], value: 1 });
    }
    if (this.streams.size > this.options.maxStreams) this.evict();
    return out;
  }

  private evict(): void {
    const excess = this.streams.size - this.options.maxStreams;
    const oldest = [...this.streams].sort((a, b) => a[1].seen - b[1].seen).slice(0, excess);
    for (const [k] of oldest) this.streams.delete(k);
    this.evicted += oldest.length;
  }

  /** Adds the metric's points to out.metrics; returns how many were taken. */
  private metric(m: OtlpMetric, labels: string[], prefix: string, now: number, out: MetricsDecoded): number {
    const name = m.name ?? '';
    const unit = m.unit ?? '';
    const npoints = countPoints(m);
    if (name === '') {
      rejectPoints(out, npoints, 'a metric without a name');
      return 0;
    }
    let taken = 0;
    if (m.gauge) {
      const promName = prometheusName(name, unit, 'gauge');
      for (const dp of m.gauge.dataPoints ?? []) {
        if (skip(dp)) continue;
        out.metrics.push({ type: 'g', name: promName, tags: tags(labels, dp.attributes), value: numberValue(dp) });
        taken++;
      }
    } else if (m.sum) {
      const temporality = m.sum.aggregationTemporality ?? 0;
      if (temporality !== DELTA && temporality !== CUMULATIVE) return rejectPoints(out, npoints, `metric ${name}: aggregation temporality must be delta or cumulative`);
      const monotonic = m.sum.isMonotonic === true;
      const promName = prometheusName(name, unit, monotonic ? 'counter' : 'gauge');
      for (const dp of m.sum.dataPoints ?? []) {
        if (skip(dp)) continue;
        const v = numberValue(dp);
        const t = tags(labels, dp.attributes);
        if (monotonic) {
          if (!(v >= 0) && temporality === DELTA) {
            reject(out, `metric ${name}: a monotonic delta sum must not be negative`);
            continue;
          }
          const delta = temporality === DELTA ? v : this.counterDelta(streamKey(prefix, name, 'c', dp.attributes), dp, v, now, out);
          if (delta === null) continue;
          out.metrics.push({ type: 'c', name: promName, tags: t, value: delta });
        } else if (temporality === CUMULATIVE) {
          out.metrics.push({ type: 'g', name: promName, tags: t, value: v });
        } else {
          const total = this.runningTotal(streamKey(prefix, name, 'ud', dp.attributes), dp, v, now);
          out.metrics.push({ type: 'g', name: promName, tags: t, value: total });
        }
        taken++;
      }
    } else if (m.histogram) {
      const temporality = m.histogram.aggregationTemporality ?? 0;
      if (temporality !== DELTA && temporality !== CUMULATIVE) return rejectPoints(out, npoints, `metric ${name}: aggregation temporality must be delta or cumulative`);
      const promName = prometheusName(name, unit, 'histogram');
      for (const dp of m.histogram.dataPoints ?? []) {
        if (skip(dp)) continue;
        const bounds = dp.explicitBounds ?? [];
        const counts = (dp.bucketCounts ?? []).map(int64ToNumber);
        if (counts.length === 0 && bounds.length === 0) {
          // a histogram with no buckets carries only count and sum: one bucket, everything above no bound
          counts.push(int64ToNumber(dp.count));
        }
        if (counts.length !== bounds.length + 1) {
          reject(out, `metric ${name}: a histogram point needs explicit_bounds + 1 bucket counts`);
          continue;
        }
        if (!increasing(bounds)) {
          reject(out, `metric ${name}: explicit_bounds must increase strictly`);
          continue;
        }
        let h: { counts: number[]; count: number; sum: number } | null = { counts, count: int64ToNumber(dp.count), sum: dp.sum ?? 0 };
        if (temporality === CUMULATIVE) h = this.histogramDelta(streamKey(prefix, name, 'h', dp.attributes), dp, bounds, h, now, out);
        if (h === null) continue;
        out.metrics.push({ type: 'hist', name: promName, tags: tags(labels, dp.attributes), bounds: [...bounds], counts: h.counts, count: h.count, sum: h.sum });
        taken++;
      }
    } else if (m.exponentialHistogram) {
      const temporality = m.exponentialHistogram.aggregationTemporality ?? 0;
      if (temporality !== DELTA && temporality !== CUMULATIVE) return rejectPoints(out, npoints, `metric ${name}: aggregation temporality must be delta or cumulative`);
      const promName = prometheusName(name, unit, 'summary');
      for (const dp of m.exponentialHistogram.dataPoints ?? []) {
        if (skip(dp)) continue;
        const scale = dp.scale ?? 0;
        if (scale < -10 || scale > 20) {
          reject(out, `metric ${name}: exponential histogram scale must be from -10 to 20`);
          continue;
        }
        let e = expState(dp);
        let sum = dp.sum ?? 0;
        let exact = true;
        if (temporality === CUMULATIVE) {
          const d = this.expDelta(streamKey(prefix, name, 'e', dp.attributes), dp, e, int64ToNumber(dp.count), sum, now, out);
          if (d === null) continue;
          ({ e, sum, exact } = d);
        }
        const metric = expToDistribution(promName, tags(labels, dp.attributes), e, sum, exact && has(dp, 'min') ? dp.min : null, exact && has(dp, 'max') ? dp.max : null, this.options.relativeAccuracy);
        if (metric !== null) {
          if (temporality === DELTA) allSamples(metric, dp);
          out.metrics.push(metric);
        }
        taken++;
      }
    } else if (m.summary) {
      const promName = prometheusName(name, unit, 'summary');
      for (const dp of m.summary.dataPoints ?? []) {
        if (skip(dp)) continue;
        const quantiles: [number, number][] = [];
        let bad = false;
        for (const q of dp.quantileValues ?? []) {
          const qq = q.quantile ?? 0;
          if (!(qq >= 0 && qq <= 1)) bad = true;
          quantiles.push([qq, q.value ?? 0]);
        }
        if (bad) {
          reject(out, `metric ${name}: summary quantiles must be from 0 to 1`);
          continue;
        }
        out.metrics.push({ type: 'sum', name: promName, tags: tags(labels, dp.attributes), quantiles, count: int64ToNumber(dp.count), sum: dp.sum ?? 0 });
        taken++;
      }
    } else if (npoints === 0) {
      return 0;
    }
    return taken;
  }

  /** The state of a cumulative stream, or null (and the new state kept) when this point is only its baseline. */
  private stream(key: string, dp: { startTimeUnixNano?: Int64 | null }, now: number, out: MetricsDecoded): { prev: StreamState | null; state: StreamState; start: string } | null {
    const start = int64ToString(dp.startTimeUnixNano);
    let state = this.streams.get(key);
    this.remember(key, state);
    if (state === undefined) {
      state = { start, seen: now, value: 0, counts: null, bounds: null, count: 0, sum: 0, exp: null };
      this.streams.set(key, state);
      // A stream that began before this process did: what it counted so far may have been delivered already.
      if (start === '0' || BigInt(start) < this.bornNanos) {
        out.baselines++;
        return { prev: state, state, start: '' };
      }
      return { prev: null, state, start };
    }
    state.seen = now;
    return { prev: state.start === start ? state : null, state, start };
  }

  private counterDelta(key: string, dp: NumberPoint, v: number, now: number, out: MetricsDecoded): number | null {
    const s = this.stream(key, dp, now, out);
    if (s === null) return null;
    const { prev, state } = s;
    if (s.start === '') {
      state.value = v;
      return null;
    }
    let delta = v;
    if (prev !== null && v >= prev.value) delta = v - prev.value;
    state.start = s.start;
    state.value = v;
    return delta;
  }

  /** Keeps a stream's state from before this request, once, for undo. */
  private remember(key: string, state: StreamState | undefined): void {
    if (!this.changed.has(key)) this.changed.set(key, state === undefined ? undefined : { ...state });
  }

  private runningTotal(key: string, dp: NumberPoint, v: number, now: number): number {
    let state = this.streams.get(key);
    this.remember(key, state);
    if (state === undefined) {
      state = { start: int64ToString(dp.startTimeUnixNano), seen: now, value: 0, counts: null, bounds: null, count: 0, sum: 0, exp: null };
      this.streams.set(key, state);
    }
    state.seen = now;
    state.value += v;
    return state.value;
  }

  private histogramDelta(
    key: string,
    dp: HistogramPoint,
    bounds: number[],
    h: { counts: number[]; count: number; sum: number },
    now: number,
    out: MetricsDecoded,
  ): { counts: number[]; count: number; sum: number } | null {
    const s = this.stream(key, dp, now, out);
    if (s === null) return null;
    const { prev, state } = s;
    const keep = (): void => {
      state.counts = h.counts;
      state.bounds = bounds;
      state.count = h.count;
      state.sum = h.sum;
      if (s.start !== '') state.start = s.start;
    };
    if (s.start === '') {
      keep();
      return null;
    }
    let result = h;
    if (prev !== null && prev.counts !== null && prev.bounds !== null && sameBounds(prev.bounds, bounds) && h.count >= prev.count) {
      const counts = new Array<number>(h.counts.length);
      let reset = false;
      for (let i = 0; i < counts.length; i++) {
        counts[i] = h.counts[i] - prev.counts[i];
        if (counts[i] < 0) reset = true;
      }
      if (!reset) result = { counts, count: h.count - prev.count, sum: h.sum - prev.sum };
    }
    keep();
    return result;
  }

  private expDelta(key: string, dp: ExpPoint, e: ExpState, count: number, sum: number, now: number, out: MetricsDecoded): { e: ExpState; count: number; sum: number; exact: boolean } | null {
    const s = this.stream(key, dp, now, out);
    if (s === null) return null;
    const { prev, state } = s;
    const keep = (): void => {
      state.exp = e;
      state.count = count;
      state.sum = sum;
      if (s.start !== '') state.start = s.start;
    };
    if (s.start === '') {
      keep();
      return null;
    }
    let result = { e, count, sum, exact: true };
    if (prev !== null && prev.exp !== null && count >= prev.count) {
      const d = subtractExp(e, prev.exp);
      if (d !== null) result = { e: d, count: count - prev.count, sum: sum - prev.sum, exact: false };
    }
    keep();
    return result;
  }
}

function countPoints(m: OtlpMetric): number {
  return (
    (m.gauge?.dataPoints?.length ?? 0) +
    (m.sum?.dataPoints?.length ?? 0) +
    (m.histogram?.dataPoints?.length ?? 0) +
    (m.exponentialHistogram?.dataPoints?.length ?? 0) +
    (m.summary?.dataPoints?.length ?? 0)
  );
}

function reject(out: MetricsDecoded, message: string): void {
  out.rejected++;
  if (out.error === '') out.error = message;
}

function rejectPoints(out: MetricsDecoded, n: number, message: string): number {
  out.rejected += n;
  if (out.error === '' && n > 0) out.error = message;
  return 0;
}

function skip(dp: { flags?: number | null }): boolean {
  return ((dp.flags ?? 0) & NO_RECORDED_VALUE) !== 0;
}

function numberValue(dp: NumberPoint): number {
  if (has(dp, 'asDouble')) return dp.asDouble as number;
  return int64ToNumber(dp.asInt);
}

function tags(labels: readonly string[], attrs: KeyValue[] | null | undefined): string[] {
  const out = labels.slice();
  if (attrs) for (const kv of attrs) out.push(`${prometheusLabel(kv.key)}:${anyValueToString(kv.value)}`);
  return out;
}

function streamKey(prefix: string, name: string, kind: string, attrs: KeyValue[] | null | undefined): string {
  let key = `${prefix}\u0002${kind}:${name}`;
  if (attrs && attrs.length > 0) {
    const parts = attrs.map((kv) => `${kv.key}=${anyValueToString(kv.value)}`);
    if (parts.length > 1) parts.sort();
    key += `\u0002${parts.join('\u0001')}`;
  }
  return key;
}

function increasing(bounds: readonly number[]): boolean {
  for (let i = 1; i < bounds.length; i++) if (!(bounds[i] > bounds[i - 1])) return false;
  return true;
}

function sameBounds(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function expState(dp: ExpPoint): ExpState {
  const toMap = (b: Buckets | null | undefined): Map<number, number> => {
    const m = new Map<number, number>();
    if (!b) return m;
    const offset = b.offset ?? 0;
    const counts = b.bucketCounts ?? [];
    for (let i = 0; i < counts.length; i++) {
      const c = int64ToNumber(counts[i]);
      if (c > 0) m.set(offset + i, c);
    }
    return m;
  };
  return { scale: dp.scale ?? 0, zero: int64ToNumber(dp.zeroCount), pos: toMap(dp.positive), neg: toMap(dp.negative) };
}

/** Bucket i at scale s holds bucket i >> (s − t) at the lower scale t. */
function downscale(e: ExpState, scale: number): ExpState {
  if (e.scale === scale) return e;
  const shift = e.scale - scale;
  const move = (m: Map<number, number>): Map<number, number> => {
    const out = new Map<number, number>();
    for (const [i, c] of m) {
      const j = Math.floor(i / 2 ** shift);
      out.set(j, (out.get(j) ?? 0) + c);
    }
    return out;
  };
  return { scale, zero: e.zero, pos: move(e.pos), neg: move(e.neg) };
}

/** cur − prev at the lower of their scales; null when a bucket went down (a reset). */
function subtractExp(cur: ExpState, prev: ExpState): ExpState | null {
  const scale = Math.min(cur.scale, prev.scale);
  const a = downscale(cur, scale);
  const b = downscale(prev, scale);
  const sub = (x: Map<number, number>, y: Map<number, number>): Map<number, number> | null => {
    const out = new Map<number, number>();
    for (const [i, c] of x) {
      const d = c - (y.get(i) ?? 0);
      if (d < 0) return null;
      if (d > 0) out.set(i, d);
    }
    for (const i of y.keys()) if (!x.has(i)) return null;
    return out;
  };
  const pos = sub(a.pos, b.pos);
  const neg = sub(a.neg, b.neg);
  if (pos === null || neg === null || a.zero < b.zero) return null;
  return { scale, zero: a.zero - b.zero, pos, neg };
}

/**
 * Exemplars that are every sample of a delta point (as many, by weight, as its count, and few
 * enough) become the distribution's samples, so quantiles over them are exact nearest-rank ones.
 * A sample's weight is its `plumb.weight` attribute (the OTLP metric sink writes it), 1 without.
 */
function allSamples(metric: WireDistribution, dp: ExpPoint): void {
  const exemplars = dp.exemplars ?? [];
  if (exemplars.length === 0 || exemplars.length > SKETCH_EXACT_SAMPLES) return;
  const values: number[] = [];
  const weights: number[] = [];
  let total = 0;
  let weighted = false;
  for (const ex of exemplars) {
    const v = has(ex, 'asDouble') ? (ex.asDouble as number) : int64ToNumber(ex.asInt);
    let w = 1;
    for (const kv of ex.filteredAttributes ?? []) if (kv.key === WEIGHT_ATTRIBUTE) w = Number(anyValueToString(kv.value));
    if (!Number.isFinite(v) || !(w > 0)) return;
    if (w !== 1) weighted = true;
    values.push(v);
    weights.push(w);
    total += w;
  }
  if (Math.abs(total - metric.count) > 1e-6 * Math.max(1, metric.count)) return;
  metric.samples = values;
  if (weighted) metric.weights = weights;
}

/** The buckets as a DDSketch, each count at its bucket's geometric midpoint; count travels as what the buckets hold (the collector checks the sketch against it). */
function expToDistribution(name: string, tags: string[], e: ExpState, sum: number, min: number | null | undefined, max: number | null | undefined, accuracy: number): WireDistribution | null {
  const sketch = newSketch(accuracy);
  let lo = Infinity;
  let hi = -Infinity;
  for (const [i, c] of e.pos) {
    const v = 2 ** ((i + 0.5) * 2 ** -e.scale);
    sketch.accept(v, c);
    lo = Math.min(lo, 2 ** (i * 2 ** -e.scale));
    hi = Math.max(hi, 2 ** ((i + 1) * 2 ** -e.scale));
  }
  for (const [i, c] of e.neg) {
    const v = -(2 ** ((i + 0.5) * 2 ** -e.scale));
    sketch.accept(v, c);
    lo = Math.min(lo, -(2 ** ((i + 1) * 2 ** -e.scale)));
    hi = Math.max(hi, -(2 ** (i * 2 ** -e.scale)));
  }
  if (e.zero > 0) {
    sketch.accept(0, e.zero);
    lo = Math.min(lo, 0);
    hi = Math.max(hi, 0);
  }
  const n = sketch.count;
  if (n === 0) return null;
  const minV = min !== null && min !== undefined && Number.isFinite(min) ? min : lo;
  const maxV = max !== null && max !== undefined && Number.isFinite(max) ? max : hi;
  return { type: 'd', name, tags, sketch: encodeSketch(sketch), count: n, sum, min: minV, max: maxV };
}
