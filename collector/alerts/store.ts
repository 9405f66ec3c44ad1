/**
 * What the alert engine keeps of the metrics and logs its rules read. A store holds, for one
 * selector (metric name + label matchers, or a log filter) and one grouping, a TieredWindow per
 * group of series. Rules with the same selector and grouping share a store. All stores draw
 * from one SeriesBudget, so the engine's memory is capped no matter what agents send.
 */
import { countAtOrBelow, newSketch, type Sketch } from '../../shared/sketch.ts';
import {
  KIND_COUNTER,
  KIND_DISTRIBUTION,
  KIND_GAUGE,
  KIND_LOG,
  KIND_SET,
  BUCKETS_PER_WINDOW,
  SKETCH_BUCKETS_PER_WINDOW,
  TieredWindow,
  addSketch,
  emptySummary,
  mergeSummary,
  tierLayout,
  type Bucket,
  type Summary,
  type Tier,
  type WindowState,
} from './buckets.ts';
import { matches, type Matcher } from './matchers.ts';

export type MetricKind = 'c' | 'g' | 's' | 'ms' | 'h' | 'd' | 'hist';

/** One series of one agent batch, as the collector's ingest sees it after name mapping. */
export interface MetricObservation {
  statsdName: string;
  /** Prometheus name after mapping, without _total. */
  name: string;
  labels: Readonly<Record<string, string>>;
  type: MetricKind;
  /** Counter: increment for the interval; gauge: value; set: distinct members in the interval. */
  value?: number;
  /** Timers, histograms, distributions: the interval's sketch (count, sum, min, max set). */
  sketch?: Sketch;
  /** OTLP explicit histograms (`hist`, with `sketch` made from them): the interval's bucket counts, so a latency SLO at a bound counts exactly. */
  histogram?: { bounds: readonly number[]; counts: readonly number[] };
}

/** A cumulative counter reading (a total since the source started); the store derives increments. */
export interface CumulativeObservation {
  statsdName?: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** Caps the number of groups and counter baselines across every store. */
export class SeriesBudget {
  readonly max: number;
  used = 0;
  refused = 0;
  /** Called on each refusal (the engine counts it in a metric). */
  onRefused: () => void = () => {};
  constructor(max: number) {
    this.max = max;
  }
  take(): boolean {
    if (this.used >= this.max) {
      this.refused++;
      this.onRefused();
      return false;
    }
    this.used++;
    return true;
  }
  release(n = 1): void {
    this.used -= n;
  }
}

export interface Group {
  readonly key: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly window: TieredWindow;
  lastSeen: number;
}

export interface GroupSummary {
  readonly key: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly summary: Summary;
}

export interface StoreSpec {
  /** Metric names this store is fed from (as written in the rule, plus the name without _total). */
  readonly names: readonly string[];
  readonly matchers: readonly Matcher[];
  /** Log stores only: tested against `field`. */
  readonly logMatch: RegExp | undefined;
  readonly logField: string;
  readonly isLog: boolean;
  /** Group labels; undefined groups by every label of the series. */
  readonly by: readonly string[] | undefined;
  /** Keep a sketch per bucket (quantile aggregates). */
  readonly sketches: boolean;
  /** Count distribution values at or below this (latency SLOs); NaN for none. */
  readonly goodAtOrBelow: number;
}

export function storeKey(spec: StoreSpec): string {
  return JSON.stringify([
    spec.isLog,
    spec.names,
    spec.matchers.map((m) => [m.name, m.op, m.value]),
    spec.logMatch?.source ?? null,
    spec.logField,
    spec.by ?? null,
    spec.sketches,
    Number.isNaN(spec.goodAtOrBelow) ? null : spec.goodAtOrBelow,
  ]);
}

/** A store's content as saved: groups as [key, labels, lastSeen, window], baselines as [series, total, at]. */
export interface StoreState {
  groups: [string, Record<string, string>, number, WindowState][];
  baselines: [string, number, number][];
}

export class SeriesStore {
  readonly key: string;
  readonly spec: StoreSpec;
  private readonly budget: SeriesBudget;
  private readonly resolution: number;
  /** The windows rules read from this store, and the longest of them. */
  private windows: readonly number[] = [];
  horizon = 0;
  private layout: Tier[] = [];
  readonly groups = new Map<string, Group>();
  /** Last cumulative reading per series, to turn totals into increments. */
  private readonly baselines = new Map<string, { value: number; at: number }>();

  constructor(spec: StoreSpec, windows: readonly number[], resolution: number, budget: SeriesBudget) {
    this.spec = spec;
    this.key = storeKey(spec);
    this.resolution = resolution;
    this.budget = budget;
    this.setWindows(windows);
  }

  /** Sets the windows read from this store (after a reload), re-bucketing what it holds. */
  setWindows(windows: readonly number[]): void {
    const sorted = [...new Set(windows)].sort((a, b) => a - b);
    if (sorted.length === this.windows.length && sorted.every((w, i) => w === this.windows[i])) return;
    this.windows = sorted;
    this.horizon = sorted[sorted.length - 1] ?? 0;
    this.layout = tierLayout(this.resolution, sorted, this.spec.sketches ? SKETCH_BUCKETS_PER_WINDOW : BUCKETS_PER_WINDOW);
    for (const g of this.groups.values()) g.window.resize(this.layout);
  }

  get baselineCount(): number {
    return this.baselines.size;
  }

  get bucketCount(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.window.size;
    return n;
  }

  observeMetric(o: MetricObservation, now: number): void {
    if (!matches(this.spec.matchers, (l) => o.labels[l] ?? '')) return;
    const b = this.bucket(o.labels, now);
    if (b === undefined) return;
    switch (o.type) {
      case 'c':
        if (o.value !== undefined && Number.isFinite(o.value)) addSample(b, KIND_COUNTER, o.value, o.value, now, this.spec.sketches);
        break;
      case 'g':
      case 's':
        if (o.value !== undefined && Number.isFinite(o.value)) addSample(b, o.type === 'g' ? KIND_GAUGE : KIND_SET, o.value, 0, now, this.spec.sketches);
        break;
      default:
        if (o.sketch !== undefined && o.sketch.count > 0) this.addDistribution(b, o.sketch, now, o.histogram);
    }
  }

  observeCumulative(o: CumulativeObservation, now: number): void {
    if (!Number.isFinite(o.value) || !matches(this.spec.matchers, (l) => o.labels[l] ?? '')) return;
    const id = seriesId(o.labels);
    const prev = this.baselines.get(id);
    if (prev === undefined) {
      // The first reading only sets the baseline: its total includes whatever came before we looked.
      if (this.budget.take()) this.baselines.set(id, { value: o.value, at: now });
      return;
    }
    // A lower total means the source restarted from zero: everything it counted since is new.
    const increment = o.value >= prev.value ? o.value - prev.value : o.value;
    prev.value = o.value;
    prev.at = now;
    const b = this.bucket(o.labels, now);
    if (b !== undefined) addSample(b, KIND_COUNTER, increment, increment, now, this.spec.sketches);
  }

  observeLog(get: (field: string) => string, labelsOf: () => Record<string, string>, now: number): void {
    if (!matches(this.spec.matchers, get)) return;
    if (this.spec.logMatch !== undefined && !this.spec.logMatch.test(get(this.spec.logField))) return;
    const b = this.bucket(labelsOf(), now);
    if (b === undefined) return;
    b.kinds |= KIND_LOG;
    b.reports++;
    b.events++;
    if (now >= b.lastAt) {
      b.last = 1;
      b.lastAt = now;
    }
  }

  /** Per group, the data in (now − window, now]; groups without data there are left out. */
  summarize(now: number, window: number, withSketch: boolean): GroupSummary[] {
    const out: GroupSummary[] = [];
    for (const g of this.groups.values()) {
      const s = emptySummary();
      g.window.summarize(now, window, s, withSketch);
      if (s.buckets > 0) out.push({ key: g.key, labels: g.labels, summary: s });
    }
    return out;
  }

  /** Everything in the window merged into one summary, whatever the groups. */
  total(now: number, window: number, withSketch: boolean): Summary {
    const s = emptySummary();
    for (const g of this.summarize(now, window, withSketch)) mergeSummary(s, g.summary);
    return s;
  }

  /** Forgets groups and baselines not seen within the horizon, returning their budget. */
  sweep(now: number): void {
    const cutoff = now - this.horizon - this.resolution;
    for (const [k, g] of this.groups) {
      if (g.lastSeen < cutoff) {
        this.groups.delete(k);
        this.budget.release();
      }
    }
    for (const [k, b] of this.baselines) {
      if (b.at < cutoff) {
        this.baselines.delete(k);
        this.budget.release();
      }
    }
  }

  /** The groups' windows and the counter baselines, JSON-safe (for the collector's snapshot). */
  exportState(): StoreState {
    return {
      groups: [...this.groups.values()].map((g) => [g.key, g.labels, g.lastSeen, g.window.exportState()]),
      baselines: [...this.baselines].map(([id, b]) => [id, b.value, b.at]),
    };
  }

  /**
   * Adds what exportState() saved (a store holds nothing yet when the collector restores it).
   * Groups and baselines draw on the series budget like new ones; a malformed group is skipped
   * and counted in the returned number.
   */
  restoreState(state: StoreState): number {
    let bad = 0;
    for (const entry of state.groups) {
      try {
        const [key, labels, lastSeen, window] = entry;
        if (this.groups.has(key) || typeof key !== 'string') continue;
        const w = TieredWindow.fromState(window, this.layout, this.resolution);
        if (!this.budget.take()) break;
        this.groups.set(key, { key, labels, window: w, lastSeen });
      } catch {
        bad++;
      }
    }
    for (const [id, value, at] of state.baselines) {
      if (this.baselines.has(id) || !this.budget.take()) continue;
      this.baselines.set(id, { value, at });
    }
    return bad;
  }

  /** Gives back every group's budget (the store is no longer used by any rule). */
  dispose(): void {
    this.budget.release(this.groups.size + this.baselines.size);
    this.groups.clear();
    this.baselines.clear();
  }

  private bucket(labels: Readonly<Record<string, string>>, now: number): Bucket | undefined {
    const by = this.spec.by;
    const key = by === undefined ? seriesId(labels) : groupId(labels, by);
    let g = this.groups.get(key);
    if (g === undefined) {
      if (!this.budget.take()) return undefined;
      g = { key, labels: by === undefined ? { ...labels } : project(labels, by), window: new TieredWindow(this.layout, this.resolution), lastSeen: now };
      this.groups.set(key, g);
    }
    if (now > g.lastSeen) g.lastSeen = now;
    return g.window.bucketAt(now);
  }

  private addDistribution(b: Bucket, sketch: Sketch, now: number, histogram?: MetricObservation['histogram']): void {
    b.kinds |= KIND_DISTRIBUTION;
    b.reports++;
    b.events += sketch.count;
    b.sum += sketch.sum;
    if (sketch.min < b.min) b.min = sketch.min;
    if (sketch.max > b.max) b.max = sketch.max;
    if (now >= b.lastAt) {
      b.last = sketch.sum / sketch.count;
      b.lastAt = now;
    }
    if (!Number.isNaN(this.spec.goodAtOrBelow)) b.good += histogram === undefined ? countAtOrBelow(sketch, this.spec.goodAtOrBelow) : bucketsAtOrBelow(histogram, this.spec.goodAtOrBelow);
    if (this.spec.sketches) addSketch(b, sketch);
  }
}

function addSample(b: Bucket, kind: number, value: number, events: number, now: number, sketches: boolean): void {
  b.kinds |= kind;
  b.reports++;
  b.events += events;
  b.sum += value;
  if (value < b.min) b.min = value;
  if (value > b.max) b.max = value;
  if (now >= b.lastAt) {
    b.last = value;
    b.lastAt = now;
  }
  if (sketches) {
    if (b.sketch === undefined) b.sketch = newSketch();
    b.sketch.accept(value);
  }
}

/** A series' identity: its labels, sorted. */
export function seriesId(labels: Readonly<Record<string, string>>): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  keys.sort();
  let s = '';
  for (const k of keys) s += `${k}\u0000${labels[k]}\u0001`;
  return s;
}

function groupId(labels: Readonly<Record<string, string>>, by: readonly string[]): string {
  let s = '';
  for (const k of by) s += `${labels[k] ?? ''}\u0001`;
  return s;
}

function project(labels: Readonly<Record<string, string>>, by: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of by) {
    const v = labels[k];
    if (v !== undefined && v !== '') out[k] = v;
  }
  return out;
}

/** Events in the buckets whose upper bound is at or below `threshold`: exact for a threshold at a bound, an undercount between bounds. */
function bucketsAtOrBelow(h: { bounds: readonly number[]; counts: readonly number[] }, threshold: number): number {
  let n = 0;
  for (let i = 0; i < h.bounds.length && h.bounds[i] <= threshold; i++) n += h.counts[i] ?? 0;
  return n;
}
