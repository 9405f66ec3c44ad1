/**
 * Pre-aggregated time buckets for one series, in tiers that get coarser with age, like a
 * round-robin database. The tiers follow the windows the series is read over: data younger
 * than a window's length is kept at least at 1/60 of that length (1/10 for sketches, which are
 * large), so an SLO reading 5m, 30m, 1h, 6h, 3d and 30d keeps 10 s buckets for the last five
 * minutes, 30 s ones up to half an hour, … and 12 h ones for the month: ~370 buckets rather than
 * 250 000. Every observation lands in exactly one bucket; a bucket pushed out of its tier's ring
 * is merged into the next coarser tier (or dropped past the longest window), so a window's
 * summary never counts anything twice and memory per series is fixed by the windows.
 *
 * Buckets as wide as the base resolution (the agents' flush cadence) count as points: in the
 * window (now − W, now] if their start is. A wider bucket cut by the window's far edge counts
 * in proportion to its overlap, which is exact for steady traffic and otherwise off by at most
 * the uneven part of one bucket.
 */
import { decodeSketch, encodeSketch, mergeSketch, newSketch, relativeAccuracyOf, type Sketch } from '../../shared/sketch.ts';

/** Kinds of data a bucket has seen, as bit flags; a summary ORs them. */
export const KIND_COUNTER = 1;
export const KIND_GAUGE = 2;
export const KIND_SET = 4;
export const KIND_DISTRIBUTION = 8;
export const KIND_LOG = 16;

export interface Bucket {
  /** Absolute bucket number at its tier's resolution (start time = index × resolution). */
  index: number;
  kinds: number;
  /** Reports: one per observation (a distribution's batch counts its values in `events`). */
  reports: number;
  /** Events counted: counter increments, distribution values, log events. */
  events: number;
  sum: number;
  min: number;
  max: number;
  last: number;
  lastAt: number;
  /** Distribution values at or below the store's latency threshold. */
  good: number;
  sketch: Sketch | undefined;
}

export function emptyBucket(index: number): Bucket {
  return { index, kinds: 0, reports: 0, events: 0, sum: 0, min: Infinity, max: -Infinity, last: NaN, lastAt: -Infinity, good: 0, sketch: undefined };
}

/** What buckets and summaries both hold: the statistics merged the same way for both. */
type Stats = Pick<Bucket, 'kinds' | 'reports' | 'events' | 'sum' | 'min' | 'max' | 'last' | 'lastAt' | 'good' | 'sketch'>;

function mergeStats(into: Stats, from: Stats, withSketch: boolean): void {
  into.kinds |= from.kinds;
  into.reports += from.reports;
  into.events += from.events;
  into.sum += from.sum;
  if (from.min < into.min) into.min = from.min;
  if (from.max > into.max) into.max = from.max;
  if (from.lastAt >= into.lastAt) {
    into.last = from.last;
    into.lastAt = from.lastAt;
  }
  into.good += from.good;
  if (withSketch && from.sketch !== undefined) addSketch(into, from.sketch);
}

/**
 * Merges a sketch into a bucket's, creating it with the incoming sketch's relative accuracy:
 * sketches only merge with their own kind, and the collector's accuracy is configurable.
 */
export function addSketch(into: { sketch: Sketch | undefined }, from: Sketch): void {
  if (from.count === 0) return;
  if (into.sketch === undefined) into.sketch = newSketch(relativeAccuracyOf(from));
  mergeSketch(into.sketch, from);
}

/** Adds `from` into `into` (statistics, counts and sketch). */
export function mergeBucket(into: Bucket, from: Bucket): void {
  mergeStats(into, from, true);
}

export interface Tier {
  readonly resolution: number;
  readonly slots: number;
}

/** Bucket widths the tiers choose from; each divides the next, so buckets merge whole. */
const CHAIN = [10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000];

/** Buckets per window length for plain statistics, and for sketches. */
export const BUCKETS_PER_WINDOW = 60;
export const SKETCH_BUCKETS_PER_WINDOW = 10;

/**
 * Tiers for reading `windows` with finest buckets of `base` ms: for each window, buckets of at
 * most window/perWindow (never finer than base) for data younger than the window.
 */
export function tierLayout(base: number, windows: readonly number[], perWindow: number = BUCKETS_PER_WINDOW): Tier[] {
  const chain = [base, ...CHAIN.filter((c) => c > base && c % base === 0)];
  const spans: { resolution: number; span: number }[] = [];
  for (const w of [...windows].sort((a, b) => a - b)) {
    const target = Math.max(base, w / perWindow);
    let resolution = base;
    for (const c of chain) if (c <= target) resolution = c;
    const last = spans[spans.length - 1];
    if (last !== undefined && resolution <= last.resolution) last.span = Math.max(last.span, w);
    else spans.push({ resolution, span: w });
  }
  // A tier holds the ages between the finer tier's span and its own.
  return spans.map((t, k) => ({ resolution: t.resolution, slots: Math.ceil((t.span - (k > 0 ? spans[k - 1].span : 0)) / t.resolution) + 3 }));
}

/** A resolution the tiers can nest: it must divide one minute. */
export function validResolution(ms: number): boolean {
  return ms >= 1 && ms <= 60_000 && 60_000 % ms === 0;
}

export interface Summary {
  kinds: number;
  /** Buckets that held data; 0 means no data in the window. */
  buckets: number;
  reports: number;
  events: number;
  sum: number;
  min: number;
  max: number;
  last: number;
  lastAt: number;
  good: number;
  sketch: Sketch | undefined;
}

export function emptySummary(): Summary {
  return { kinds: 0, buckets: 0, reports: 0, events: 0, sum: 0, min: Infinity, max: -Infinity, last: NaN, lastAt: -Infinity, good: 0, sketch: undefined };
}

interface Ring {
  readonly resolution: number;
  readonly slots: number;
  readonly buckets: (Bucket | undefined)[];
  /** Highest bucket index ever placed here; anything `slots` older has moved on. */
  newest: number;
}

export class TieredWindow {
  private rings: Ring[];
  /** Width of a bucket that counts as a point (the agents' flush cadence). */
  private readonly base: number;
  /** Buckets currently held, across tiers. */
  size = 0;

  constructor(layout: readonly Tier[], base: number) {
    this.rings = layout.map(makeRing);
    this.base = base;
  }

  get layout(): Tier[] {
    return this.rings.map((r) => ({ resolution: r.resolution, slots: r.slots }));
  }

  /** The bucket an observation made at time `t` belongs to, created if needed; undefined when `t` is older than the horizon. */
  bucketAt(t: number): Bucket | undefined {
    return this.locate(0, t, undefined);
  }

  /**
   * Adds the data of (now − window, now] to `into`. Finest-tier buckets count as points at their
   * start: in if the start is in the window. Coarser buckets hold data spread over their width,
   * so the one straddling the window's far edge counts in proportion to its overlap (its counts
   * and sums scaled; extremes, last value and sketch only when most of it is inside). With
   * `withSketch`, sketches are merged too (the expensive part, so only quantile rules ask).
   */
  summarize(now: number, window: number, into: Summary, withSketch: boolean): void {
    const from = now - window;
    for (let k = 0; k < this.rings.length; k++) {
      const ring = this.rings[k];
      const res = ring.resolution;
      const hi = Math.floor(now / res);
      const edge = Math.floor(from / res);
      const lo = res === this.base ? edge + 1 : edge;
      const buckets = ring.buckets;
      // A coarse ring lags behind now by the finer tiers' span, so scan by index, or whole.
      if (hi - lo + 1 <= ring.slots) {
        for (let idx = lo; idx <= hi; idx++) {
          const b = buckets[slotOf(idx, ring.slots)];
          if (b !== undefined && b.index === idx) this.add(into, b, withSketch, k, edge, from);
        }
      } else {
        for (let i = 0; i < buckets.length; i++) {
          const b = buckets[i];
          if (b !== undefined && b.index >= lo && b.index <= hi) this.add(into, b, withSketch, k, edge, from);
        }
      }
    }
  }

  private add(into: Summary, b: Bucket, withSketch: boolean, k: number, edge: number, from: number): void {
    const res = this.rings[k].resolution;
    if (res === this.base || b.index !== edge) {
      addToSummary(into, b, withSketch);
      return;
    }
    // The bucket straddling the far edge: its data spans from its start to its end or, if the
    // finer tier still holds the rest of its time, to the oldest time that tier holds.
    const start = b.index * res;
    const finer = k > 0 ? this.rings[k - 1] : undefined;
    const held = finer === undefined ? Infinity : (finer.newest - finer.slots + 1) * finer.resolution;
    const end = Number.isFinite(held) ? Math.max(start + 1, Math.min(start + res, held)) : start + res;
    addWeighted(into, b, withSketch, Math.min(1, (end - from) / (end - start)));
  }

  /** Changes the tiers (rules were reloaded), keeping the data the new layout can hold. */
  resize(layout: readonly Tier[]): void {
    const old = this.rings;
    this.rings = layout.map(makeRing);
    this.size = 0;
    for (const ring of old) {
      // The finest new tier whose buckets can take this ring's buckets whole.
      const target = this.rings.findIndex((r) => r.resolution % ring.resolution === 0);
      if (target < 0) continue;
      const kept = ring.buckets.filter((b): b is Bucket => b !== undefined).sort((a, b) => a.index - b.index);
      for (const b of kept) this.place(target, b.index * ring.resolution, b);
    }
  }

  /**
   * Finds or makes the bucket for time `t` in tier `k` or, when that tier's slot already holds
   * newer data, in a coarser one. `reuse` (a bucket pushed out of a finer tier) becomes the new
   * bucket instead of allocating, which moves its sketch rather than copying it.
   */
  private locate(k: number, t: number, reuse: Bucket | undefined): Bucket | undefined {
    for (; k < this.rings.length; k++) {
      const ring = this.rings[k];
      const idx = Math.floor(t / ring.resolution);
      const slot = slotOf(idx, ring.slots);
      const cur = ring.buckets[slot];
      if (cur !== undefined) {
        if (cur.index === idx) return cur;
        if (cur.index > idx) continue;
        ring.buckets[slot] = undefined;
        this.size--;
        this.demote(k, cur);
      }
      let b: Bucket;
      if (reuse !== undefined) {
        b = reuse;
        b.index = idx;
      } else b = emptyBucket(idx);
      ring.buckets[slot] = b;
      if (idx > ring.newest) ring.newest = idx;
      this.size++;
      return b;
    }
    return undefined;
  }

  /** Everything the window holds, as JSON-safe data (the alert state's snapshot). */
  exportState(): WindowState {
    return {
      tiers: this.layout,
      newest: this.rings.map((r) => finite(r.newest)),
      rings: this.rings.map((r) => r.buckets.filter((b): b is Bucket => b !== undefined).map(bucketState)),
    };
  }

  /**
   * A window rebuilt from exportState(), then fitted to `layout` (the rules' windows may have
   * changed since it was saved). Throws on malformed state.
   */
  static fromState(state: WindowState, layout: readonly Tier[], base: number): TieredWindow {
    const w = new TieredWindow(state.tiers, base);
    state.rings.forEach((buckets, k) => {
      const ring = w.rings[k];
      if (ring === undefined) throw new Error('window state has more rings than tiers');
      ring.newest = state.newest[k] ?? -Infinity;
      for (const s of buckets) {
        const b = bucketFromState(s);
        const slot = slotOf(b.index, ring.slots);
        if (ring.buckets[slot] === undefined) w.size++;
        ring.buckets[slot] = b;
      }
    });
    if (!sameLayout(state.tiers, layout)) w.resize(layout);
    return w;
  }

  private demote(k: number, b: Bucket): void {
    if (k + 1 >= this.rings.length) return; // past the horizon
    this.place(k + 1, b.index * this.rings[k].resolution, b);
  }

  private place(k: number, t: number, b: Bucket): void {
    const target = this.locate(k, t, b);
    if (target !== undefined && target !== b) mergeBucket(target, b);
  }
}

/** Adds a share of a bucket: its counts and sums scaled; extremes, last and sketch if most of it counts. */
function addWeighted(into: Summary, b: Bucket, withSketch: boolean, weight: number): void {
  if (weight <= 0) return;
  into.kinds |= b.kinds;
  into.buckets++;
  into.reports += b.reports * weight;
  into.events += b.events * weight;
  into.sum += b.sum * weight;
  into.good += b.good * weight;
  if (weight < 0.5) return;
  if (b.min < into.min) into.min = b.min;
  if (b.max > into.max) into.max = b.max;
  if (b.lastAt >= into.lastAt) {
    into.last = b.last;
    into.lastAt = b.lastAt;
  }
  if (withSketch && b.sketch !== undefined) addSketch(into, b.sketch);
}

function slotOf(idx: number, slots: number): number {
  const m = idx % slots;
  return m < 0 ? m + slots : m;
}

function makeRing(t: Tier): Ring {
  return { resolution: t.resolution, slots: t.slots, buckets: new Array<Bucket | undefined>(t.slots).fill(undefined), newest: -Infinity };
}

export function addToSummary(into: Summary, b: Bucket, withSketch: boolean): void {
  into.buckets++;
  mergeStats(into, b, withSketch);
}

/** Adds one summary into another (series grouped together, numerator joined to denominator). */
export function mergeSummary(into: Summary, from: Summary): void {
  into.buckets += from.buckets;
  mergeStats(into, from, true);
}

// ── state on disk and on the wire ────────────────────────────────────────────────────────────

/** A sketch beside the statistics decodeSketch checks it against: [wire form, count, sum, min, max]. */
export type SketchState = [string, number, number, number, number];

/**
 * A bucket or summary as JSON: [index, kinds, reports, events, sum, min, max, last, lastAt, good,
 * sketch?]; infinities and NaN (an empty bucket's extremes) travel as null.
 */
export type StatsState = [number, number, number, number, number, number | null, number | null, number | null, number | null, number, SketchState?];

export interface WindowState {
  tiers: Tier[];
  /** Each ring's highest bucket index (null: none yet). */
  newest: (number | null)[];
  /** Each ring's buckets. */
  rings: StatsState[][];
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

function sketchState(sk: Sketch | undefined): SketchState | undefined {
  return sk === undefined || sk.count === 0 ? undefined : [encodeSketch(sk), sk.count, sk.sum, sk.min, sk.max];
}

function sketchFromState(s: SketchState | undefined): Sketch | undefined {
  return s === undefined ? undefined : decodeSketch(s[0], { count: s[1], sum: s[2], min: s[3], max: s[4] });
}

function statsState(index: number, s: Stats): StatsState {
  const out: StatsState = [index, s.kinds, s.reports, s.events, s.sum, finite(s.min), finite(s.max), finite(s.last), finite(s.lastAt), s.good];
  const sk = sketchState(s.sketch);
  if (sk !== undefined) out.push(sk);
  return out;
}

function bucketState(b: Bucket): StatsState {
  return statsState(b.index, b);
}

function bucketFromState(s: StatsState): Bucket {
  if (!Array.isArray(s) || s.length < 10) throw new Error('malformed bucket state');
  return {
    index: s[0],
    kinds: s[1],
    reports: s[2],
    events: s[3],
    sum: s[4],
    min: s[5] ?? Infinity,
    max: s[6] ?? -Infinity,
    last: s[7] ?? NaN,
    lastAt: s[8] ?? -Infinity,
    good: s[9],
    sketch: sketchFromState(s[10]),
  };
}

/** A summary as JSON (index slot holds its bucket count), for partial aggregates sent between collectors. */
export function summaryState(s: Summary): StatsState {
  return statsState(s.buckets, s);
}

export function summaryFromState(s: StatsState): Summary {
  const b = bucketFromState(s);
  return { kinds: b.kinds, buckets: b.index, reports: b.reports, events: b.events, sum: b.sum, min: b.min, max: b.max, last: b.last, lastAt: b.lastAt, good: b.good, sketch: b.sketch };
}

function sameLayout(a: readonly Tier[], b: readonly Tier[]): boolean {
  return a.length === b.length && a.every((t, i) => t.resolution === b[i].resolution && t.slots === b[i].slots);
}
