/**
 * Where statsd intervals from every agent become Prometheus series.
 *
 * Counters accumulate into `_total` counters; gauges keep the last value; sets become a gauge of
 * distinct members (the union across agents' latest intervals); timers, histograms and
 * distributions merge their sketches into a sliding window for quantiles (summary) or into
 * classic buckets when a mapping asks for them, with cumulative `_sum` and `_count`.
 *
 * `/metrics` must always stay valid: a metric whose name or type clashes with one already
 * exposed, or whose labels clash, is refused and counted — the first one keeps its place.
 */
import type { Telemetry } from '../../shared/telemetry.ts';
import {
  newSketch,
  mergeSketch,
  quantile,
  countAtOrBelow,
  decodeSketch,
  encodeSketch,
  exactQuantile,
  relativeAccuracyOf,
  SKETCH_EXACT_SAMPLES,
  type Sketch,
} from '../../shared/sketch.ts';
import type { MetricBatch, WireDistribution, WireMetric, StatsdEvent } from '../../shared/wire.ts';
import { checkKey, seriesKey } from '../../shared/membership.ts';
import { Mapper, sanitizeLabelName, type Mapping } from './naming.ts';

export interface MetricStoreOptions {
  quantiles: number[];
  windowMs: number;
  seriesTtlMs: number;
  mappings: Mapping[];
  maxSeries: number;
  maxSetMembers: number;
  relativeAccuracy: number;
  maxEvents: number;
  /** Name prefixes other parts of /metrics own (plumb's self-metrics, span metrics, ALERTS). */
  reservedPrefixes?: readonly string[];
  /** Metrics of one agent batch beyond this many are refused (max_series_per_agent). Default: no limit. */
  maxSeriesPerAgent?: number;
  /** A metric with more tags than this is refused (too_many_labels). Default: no limit. */
  maxLabels?: number;
  /** A metric with a tag name or value longer than this is refused (label_too_long). Default: no limit. */
  maxLabelLength?: number;
}

/** Names the collector's own exposition uses; an application metric may not take them. */
export const RESERVED_PREFIXES: readonly string[] = ['plumb_', 'traces_spanmetrics_', 'ALERTS'];

/**
 * Reserved names that agents do send: their service checks (`plumb.check.up`, …) arrive as
 * metrics and are exposed as `plumb_check_*`; the collector has no self-metric of that prefix.
 */
export const AGENT_PREFIXES: readonly string[] = ['plumb_check_'];

type FamilyType = 'counter' | 'gauge' | 'summary' | 'histogram';
/** Which statsd kind fed a family, so a set and a gauge of one name don't merge; `hist` and `osum` are OTLP's. */
type Origin = 'c' | 'g' | 's' | 'sketch' | 'check' | 'hist' | 'osum';

export const REFUSAL_REASONS = [
  'type_conflict',
  'name_collision',
  'label_clash',
  'reserved_label',
  'max_series',
  'bad_sketch',
  'accuracy_mismatch',
  'dropped_by_mapping',
  'max_series_per_agent',
  'too_many_labels',
  'label_too_long',
  'bucket_mismatch',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** A metric of a batch the store refused: its index in the batch and why. */
export interface MetricRefusal {
  index: number;
  reason: RefusalReason;
}

const WINDOW_SLOTS = 6;

/**
 * A series' state. A collector holds hundreds of thousands of these, and most are counters or
 * gauges that need only a value, so the object keeps four fields and the label and routing key
 * strings; what summaries, histograms and sets add (sum, count, window, buckets, members) and
 * the pending delta live in one `SeriesExtra` made on first use. Reading a field of an absent
 * extra gives its zero value.
 */
class Series {
  readonly labels: string;
  /** The key that decides which collector of a fleet owns it (shared/membership.ts seriesKey): the statsd name and tags, before mapping. */
  route = '';
  lastSeen: number;
  value = 0;
  private x: SeriesExtra | null = null;

  constructor(labels: string, now: number) {
    this.labels = labels;
    this.lastSeen = now;
  }

  private extra(): SeriesExtra {
    return (this.x ??= new SeriesExtra());
  }

  get sum(): number {
    return this.x === null ? 0 : this.x.sum;
  }
  set sum(v: number) {
    if (this.x !== null || v !== 0) this.extra().sum = v;
  }
  get count(): number {
    return this.x === null ? 0 : this.x.count;
  }
  set count(v: number) {
    if (this.x !== null || v !== 0) this.extra().count = v;
  }
  /** sets: each agent's members from its latest interval */
  get setMembers(): Map<string, Set<string>> | null {
    return this.x === null ? null : this.x.setMembers;
  }
  set setMembers(v: Map<string, Set<string>> | null) {
    if (this.x !== null || v !== null) this.extra().setMembers = v;
  }
  get slots(): (Sketch | null)[] | null {
    return this.x === null ? null : this.x.slots;
  }
  set slots(v: (Sketch | null)[] | null) {
    if (this.x !== null || v !== null) this.extra().slots = v;
  }
  get slotIndex(): number[] | null {
    return this.x === null ? null : this.x.slotIndex;
  }
  set slotIndex(v: number[] | null) {
    if (this.x !== null || v !== null) this.extra().slotIndex = v;
  }
  /** Per slot: its samples while they are few enough to keep (null: past SKETCH_EXACT_SAMPLES, or not sent). */
  get slotExact(): (ExactSamples | null)[] | null {
    return this.x === null ? null : this.x.slotExact;
  }
  set slotExact(v: (ExactSamples | null)[] | null) {
    if (this.x !== null || v !== null) this.extra().slotExact = v;
  }
  get buckets(): number[] | null {
    return this.x === null ? null : this.x.buckets;
  }
  set buckets(v: number[] | null) {
    if (this.x !== null || v !== null) this.extra().buckets = v;
  }
  /** OTLP summaries: the quantiles as the source computed them. */
  get quantiles(): [number, number][] | null {
    return this.x === null ? null : this.x.quantiles;
  }
  set quantiles(v: [number, number][] | null) {
    if (this.x !== null || v !== null) this.extra().quantiles = v;
  }
  /** What was applied since the last drainDeltas() (only while the store tracks deltas). */
  get pending(): PendingDelta | null {
    return this.x === null ? null : this.x.pending;
  }
  set pending(v: PendingDelta | null) {
    if (this.x !== null || v !== null) this.extra().pending = v;
  }
}

/** What a series holds beyond a value: see Series. */
class SeriesExtra {
  sum = 0;
  count = 0;
  setMembers: Map<string, Set<string>> | null = null;
  slots: (Sketch | null)[] | null = null;
  slotIndex: number[] | null = null;
  slotExact: (ExactSamples | null)[] | null = null;
  buckets: number[] | null = null;
  quantiles: [number, number][] | null = null;
  pending: PendingDelta | null = null;
}

/**
 * What a series received since the last drainDeltas(): the OTLP metric sink exports these as
 * deltas. Counters: `value`; histograms: per-bucket `counts` (the last above every bound) with
 * sum and count; sketch summaries: the merged `sketch` and, while few enough, the samples.
 */
interface PendingDelta {
  value: number;
  sum: number;
  count: number;
  counts: number[] | null;
  sketch: Sketch | null;
  exact: ExactSamples | null;
}

function pendingOf(series: Series): PendingDelta {
  return (series.pending ??= { value: 0, sum: 0, count: 0, counts: null, sketch: null, exact: { values: [], weights: [] } });
}

class Family {
  readonly name: string;
  readonly type: FamilyType;
  readonly origin: Origin;
  readonly help: string;
  readonly sampleNames: string[];
  readonly buckets: number[] | undefined;
  readonly series = new Map<string, Series>();

  constructor(name: string, type: FamilyType, origin: Origin, help: string, buckets: number[] | undefined) {
    this.name = name;
    this.type = type;
    this.origin = origin;
    this.help = help;
    this.buckets = buckets;
    this.sampleNames =
      type === 'summary' ? [name, `${name}_sum`, `${name}_count`] : type === 'histogram' ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
  }
}

export class MetricStore {
  private options: MetricStoreOptions;
  private mapper: Mapper;
  private readonly families = new Map<string, Family>();
  /** sample name → family that owns it, so no two families ever emit the same sample name */
  private readonly sampleOwners = new Map<string, string>();
  private seriesCount = 0;
  private current: WireMetric | null = null;
  /** Routing key of what is being applied, stamped on the series it updates. */
  private currentRoute = '';
  private currentIndex = 0;
  private refusals: MetricRefusal[] | null = null;
  private currentAgent = '';
  private readonly events: StatsdEvent[] = [];
  readonly refused: Record<RefusalReason, number> = Object.fromEntries(REFUSAL_REASONS.map((r) => [r, 0])) as Record<RefusalReason, number>;
  expired = 0;
  /** Keep what each series received since the last drainDeltas() (on when an OTLP metric sink exports). */
  trackDeltas = false;
  /** Told of every sample applied that it wants; the alert engine listens here. */
  observer: MetricObserver | null = null;
  /** Told of every metric refused (the ingest logs them, once per reason and minute). */
  onRefused: ((reason: RefusalReason, metric: WireMetric, agent: string) => void) | null = null;

  constructor(options: MetricStoreOptions, telemetry?: Telemetry) {
    this.options = options;
    this.mapper = new Mapper(options.mappings);
    if (telemetry) {
      const refusedCounter = telemetry.counter('plumb_metrics_refused_total', 'metric samples the collector refused to expose, by reason', ['reason']);
      for (const r of REFUSAL_REASONS) telemetry.countFrom(refusedCounter, () => this.refused[r], { reason: r });
      telemetry.countFrom(telemetry.counter('plumb_metrics_expired_series_total', 'series removed after seriesTtl without updates'), () => this.expired);
      telemetry.gaugeFrom('plumb_metrics_series', 'series held by the collector', () => this.seriesCount);
    }
  }

  get size(): number {
    return this.seriesCount;
  }

  /**
   * Limits and name mappings from a config reload. Series named by the old mappings keep their
   * names and age out after seriesTtl; samples from now on are named by the new ones.
   */
  reconfigure(changes: Pick<MetricStoreOptions, 'mappings' | 'maxSeries' | 'seriesTtlMs' | 'maxEvents' | 'maxSeriesPerAgent' | 'maxLabels' | 'maxLabelLength'>): void {
    this.options = { ...this.options, ...changes };
    this.mapper = new Mapper(changes.mappings);
  }

  recentEvents(): StatsdEvent[] {
    return [...this.events];
  }

  /**
   * Applies one agent batch; returns how many metrics were refused. With `refusals`, each refused
   * metric's index in `batch.metrics` and reason are added to it.
   */
  apply(batch: MetricBatch, now = Date.now(), refusals: MetricRefusal[] | null = null): number {
    let refusedBefore = 0;
    for (const r of REFUSAL_REASONS) refusedBefore += this.refused[r];
    this.refusals = refusals;
    try {
      const metrics = batch.metrics;
      const perBatch = Math.min(metrics.length, this.options.maxSeriesPerAgent ?? Infinity);
      for (let i = 0; i < perBatch; i++) {
        const m = metrics[i];
        this.currentIndex = i;
        const limit = this.checkLabels(m);
        if (limit === null) this.applyMetric(m, batch.agent, now);
        else this.refuse(limit, m, batch.agent);
      }
      // An agent sends its series of one interval in one batch: the rest is over its share.
      for (let i = perBatch; i < metrics.length; i++) {
        this.currentIndex = i;
        this.refuse('max_series_per_agent', metrics[i], batch.agent);
      }
    } finally {
      this.refusals = null;
    }
    for (const c of batch.serviceChecks) {
      const tags = c.hostname ? [...c.tags, `host:${c.hostname}`] : c.tags;
      this.currentRoute = checkKey(c);
      this.applyValue('service_check_status', 'gauge', 'check', `service check status (0 ok, 1 warning, 2 critical, 3 unknown)`, { check: c.name }, tags, now, (s) => {
        s.value = c.status;
      });
    }
    for (const e of batch.events) {
      if (this.events.length >= this.options.maxEvents) this.events.shift();
      this.events.push(e);
    }
    let refusedAfter = 0;
    for (const r of REFUSAL_REASONS) refusedAfter += this.refused[r];
    return refusedAfter - refusedBefore;
  }

  /** The limit a metric's tags break, if any. */
  private checkLabels(m: WireMetric): RefusalReason | null {
    const tags = m.tags;
    if (tags.length > (this.options.maxLabels ?? Infinity)) return 'too_many_labels';
    const max = this.options.maxLabelLength ?? Infinity;
    for (const tag of tags) {
      if (tag.length <= max) continue; // name and value together fit, so each does
      const colon = tag.indexOf(':');
      if (colon < 0 || colon > max || tag.length - colon - 1 > max) return 'label_too_long';
    }
    return null;
  }

  private refuse(reason: RefusalReason, m: WireMetric, agent: string): void {
    this.refused[reason]++;
    this.refusals?.push({ index: this.currentIndex, reason });
    this.onRefused?.(reason, m, agent);
  }

  /** A refusal inside applyValue, on behalf of the metric being applied (service checks have none). */
  private refuseCurrent(reason: RefusalReason): void {
    if (this.current === null) this.refused[reason]++;
    else this.refuse(reason, this.current, this.currentAgent);
  }

  private applyMetric(m: WireMetric, agent: string, now: number): void {
    this.current = m;
    this.currentAgent = agent;
    this.currentRoute = seriesKey(m);
    try {
      this.applyMapped(m, agent, now);
    } finally {
      this.current = null;
    }
  }

  private applyMapped(m: WireMetric, agent: string, now: number): void {
    const mapped = this.mapper.map(m.name);
    if (mapped === null) {
      this.refuse('dropped_by_mapping', m, agent);
      return;
    }
    const help = mapped.help ?? (m.type === 'hist' || m.type === 'sum' ? `OTLP ${m.type === 'hist' ? 'histogram' : 'summary'} ${m.name}` : `statsd ${m.type} ${m.name}`);
    switch (m.type) {
      case 'hist': {
        const existing = this.families.get(mapped.name);
        if (m.counts.length !== m.bounds.length + 1 || !increasing(m.bounds) || (existing !== undefined && existing.origin === 'hist' && !sameBounds(existing.buckets ?? [], m.bounds))) {
          this.refuse('bucket_mismatch', m, agent);
          return;
        }
        const s = this.applyValue(mapped.name, 'histogram', 'hist', help, mapped.labels, m.tags, now, (series) => {
          series.sum += m.sum;
          series.count += m.count;
          series.buckets ??= new Array(m.bounds.length).fill(0);
          let cumulative = 0;
          for (let i = 0; i < m.bounds.length; i++) {
            cumulative += m.counts[i] ?? 0;
            series.buckets[i] += cumulative;
          }
          if (this.trackDeltas) {
            const p = pendingOf(series);
            p.sum += m.sum;
            p.count += m.count;
            p.counts ??= new Array(m.bounds.length + 1).fill(0);
            for (let i = 0; i <= m.bounds.length; i++) p.counts[i] += m.counts[i] ?? 0;
          }
        }, m.bounds);
        if (s) this.observe(m, mapped.name, s, now, undefined);
        return;
      }
      case 'sum': {
        const s = this.applyValue(mapped.name, 'summary', 'osum', help, mapped.labels, m.tags, now, (series) => {
          // count and sum are the source's running totals; quantiles its own window's
          series.quantiles = m.quantiles;
          series.sum = m.sum;
          series.count = m.count;
        });
        if (s) this.observeSummary(m, mapped.name, s, now);
        return;
      }
      case 'c': {
        const name = mapped.name.endsWith('_total') ? mapped.name : `${mapped.name}_total`;
        const s = this.applyValue(name, 'counter', 'c', help, mapped.labels, m.tags, now, (series) => {
          series.value += m.value;
          if (this.trackDeltas) pendingOf(series).value += m.value;
        });
        if (s) this.observe(m, mapped.name, s, now, m.value);
        return;
      }
      case 'g': {
        const s = this.applyValue(mapped.name, 'gauge', 'g', help, mapped.labels, m.tags, now, (series) => {
          series.value = m.value;
        });
        if (s) this.observe(m, mapped.name, s, now, m.value);
        return;
      }
      case 's': {
        const s = this.applyValue(mapped.name, 'gauge', 's', help, mapped.labels, m.tags, now, (series) => {
          series.setMembers ??= new Map();
          series.setMembers.set(agent, new Set(m.members.slice(0, this.options.maxSetMembers)));
          series.value = unionSize(series.setMembers, this.options.maxSetMembers);
        });
        if (s) this.observe(m, mapped.name, s, now, s.value);
        return;
      }
      default: {
        let sketch: Sketch;
        try {
          sketch = decodeSketch(m.sketch, m);
        } catch {
          this.refuse('bad_sketch', m, agent);
          return;
        }
        // Sketches only merge with equal relative accuracy: agents and collector must agree.
        if (relativeAccuracyOf(sketch) !== this.options.relativeAccuracy) {
          this.refuse('accuracy_mismatch', m, agent);
          return;
        }
        const buckets = mapped.buckets;
        const s = this.applyValue(mapped.name, buckets ? 'histogram' : 'summary', 'sketch', help, mapped.labels, m.tags, now, (series) => {
          series.sum += m.sum;
          series.count += m.count;
          const p = this.trackDeltas ? pendingOf(series) : null;
          if (p !== null) {
            p.sum += m.sum;
            p.count += m.count;
          }
          if (buckets) {
            series.buckets ??= new Array(buckets.length).fill(0);
            const exact = exactSamplesOf(m);
            if (p !== null) p.counts ??= new Array(buckets.length + 1).fill(0);
            let below = 0;
            for (let i = 0; i < buckets.length; i++) {
              const atOrBelow = exact === null ? countAtOrBelow(sketch, buckets[i]) : weightAtOrBelow(exact, buckets[i]);
              series.buckets[i] += atOrBelow;
              if (p !== null) (p.counts as number[])[i] += atOrBelow - below;
              below = atOrBelow;
            }
            if (p !== null) (p.counts as number[])[buckets.length] += m.count - below;
          } else {
            const exact = exactSamplesOf(m);
            this.addToWindow(series, sketch, exact, now);
            if (p !== null) addPending(p, sketch, exact, this.options.relativeAccuracy);
          }
        }, buckets);
        if (s) this.observe(m, mapped.name, s, now, undefined, sketch);
      }
    }
  }

  private observe(m: WireMetric, name: string, series: Series, now: number, value: number | undefined, sketch?: Sketch): void {
    if (this.observer === null || m.type === 'sum' || !this.observer.wants(m.name, name)) return;
    if (m.type === 'hist') {
      // the alert engine reads the interval's buckets (exact counts at a bound) and a sketch of them for quantiles
      this.observer.observe({ statsdName: m.name, name, labels: parseLabelKey(series.labels), type: 'hist', value: undefined, sketch: histogramSketch(m.bounds, m.counts, m.sum, this.options.relativeAccuracy), histogram: { bounds: m.bounds, counts: m.counts } }, now);
      return;
    }
    this.observer.observe({ statsdName: m.name, name, labels: parseLabelKey(series.labels), type: m.type, value, sketch }, now);
  }

  /**
   * An OTLP summary for the alert engine: each quantile as a gauge series with a `quantile`
   * label, `_count` and `_sum` as the running totals they are.
   */
  private observeSummary(m: WireMetric & { type: 'sum' }, name: string, series: Series, now: number): void {
    const o = this.observer;
    if (o === null) return;
    const labels = parseLabelKey(series.labels);
    if (o.wants(m.name, name)) {
      for (const [q, v] of m.quantiles) o.observe({ statsdName: m.name, name, labels: { ...labels, quantile: String(q) }, type: 'g', value: v, sketch: undefined }, now);
    }
    if (o.observeCumulative === undefined) return;
    for (const [suffix, value] of [['_count', m.count], ['_sum', m.sum]] as const) {
      if (o.wants(`${m.name}${suffix}`, `${name}${suffix}`)) o.observeCumulative({ statsdName: `${m.name}${suffix}`, name: `${name}${suffix}`, labels, value }, now);
    }
  }

  /** Finds or creates the family and series, refusing clashes; runs `update` on the series. */
  private applyValue(
    name: string,
    type: FamilyType,
    origin: Origin,
    help: string,
    ruleLabels: Record<string, string>,
    tags: string[],
    now: number,
    update: (s: Series) => void,
    buckets?: number[],
  ): Series | null {
    let family = this.families.get(name);
    if (family === undefined) {
      for (const prefix of this.options.reservedPrefixes ?? RESERVED_PREFIXES) {
        if (name.startsWith(prefix) && !AGENT_PREFIXES.some((p) => name.startsWith(p))) {
          this.refuseCurrent('name_collision');
          return null;
        }
      }
      const candidate = new Family(name, type, origin, help, buckets);
      for (const sample of candidate.sampleNames) {
        if (this.sampleOwners.has(sample)) {
          this.refuseCurrent('name_collision');
          return null;
        }
      }
      family = candidate;
    } else if (family.type !== type || family.origin !== origin) {
      this.refuseCurrent('type_conflict');
      return null;
    }
    const labels = labelKey(ruleLabels, tags, type);
    if (typeof labels !== 'string') {
      this.refuseCurrent(labels.refused);
      return null;
    }
    let series = family.series.get(labels);
    if (series === undefined) {
      if (this.seriesCount >= this.options.maxSeries) {
        this.refuseCurrent('max_series');
        return null;
      }
      if (!this.families.has(name)) {
        this.families.set(name, family);
        for (const sample of family.sampleNames) this.sampleOwners.set(sample, name);
      }
      // the key lives as long as the series: one flat string, not the pieces it was built from
      const key = flatString(labels);
      series = new Series(key, now);
      family.series.set(key, series);
      this.seriesCount++;
    }
    series.lastSeen = now;
    // a series' routing key rarely changes: keep the flat copy it has rather than each batch's
    if (series.route !== this.currentRoute) series.route = flatString(this.currentRoute);
    update(series);
    return series;
  }

  private addToWindow(series: Series, sketch: Sketch, exact: ExactSamples | null, now: number): void {
    const slotMs = Math.max(1000, Math.floor(this.options.windowMs / WINDOW_SLOTS));
    const index = Math.floor(now / slotMs);
    series.slots ??= new Array(WINDOW_SLOTS).fill(null);
    series.slotIndex ??= new Array(WINDOW_SLOTS).fill(-1);
    series.slotExact ??= new Array(WINDOW_SLOTS).fill(null);
    const i = index % WINDOW_SLOTS;
    if (series.slotIndex[i] !== index || series.slots[i] === null) {
      series.slots[i] = newSketch(this.options.relativeAccuracy);
      series.slotIndex[i] = index;
      series.slotExact[i] = { values: [], weights: [] };
    }
    mergeSketch(series.slots[i] as Sketch, sketch);
    const kept = series.slotExact[i];
    if (kept !== null && exact !== null && kept.values.length + exact.values.length <= SKETCH_EXACT_SAMPLES) {
      for (let k = 0; k < exact.values.length; k++) {
        kept.values.push(exact.values[k]);
        kept.weights.push(exact.weights[k]);
      }
    } else {
      series.slotExact[i] = null;
    }
  }

  /**
   * The q-quantile of a series' window: nearest rank over its samples while the window holds at
   * most SKETCH_EXACT_SAMPLES of them (from every agent), the sketch's estimate past that.
   */
  windowQuantiles(series: Series, qs: readonly number[], now: number): number[] {
    const exact = this.windowExact(series, now);
    if (exact !== null) return qs.map((q) => exactQuantile(exact.values, exact.weights, q));
    const sk = this.windowSketch(series, now);
    return qs.map((q) => (sk === null ? NaN : quantile(sk, q)));
  }

  private windowExact(series: Series, now: number): ExactSamples | null {
    if (!series.slots || !series.slotIndex || !series.slotExact) return null;
    const slotMs = Math.max(1000, Math.floor(this.options.windowMs / WINDOW_SLOTS));
    const current = Math.floor(now / slotMs);
    const out: ExactSamples = { values: [], weights: [] };
    for (let i = 0; i < WINDOW_SLOTS; i++) {
      const s = series.slots[i];
      if (s === null || s.count === 0 || series.slotIndex[i] <= current - WINDOW_SLOTS) continue;
      const e = series.slotExact[i];
      if (e === null || out.values.length + e.values.length > SKETCH_EXACT_SAMPLES) return null;
      out.values.push(...e.values);
      out.weights.push(...e.weights);
    }
    return out.values.length > 0 ? out : null;
  }

  /** The sketch of everything seen by a series within the window ending now. */
  windowSketch(series: Series, now: number): Sketch | null {
    if (!series.slots || !series.slotIndex) return null;
    const slotMs = Math.max(1000, Math.floor(this.options.windowMs / WINDOW_SLOTS));
    const current = Math.floor(now / slotMs);
    let merged: Sketch | null = null;
    for (let i = 0; i < WINDOW_SLOTS; i++) {
      const s = series.slots[i];
      if (s === null || series.slotIndex[i] <= current - WINDOW_SLOTS) continue;
      merged ??= newSketch(this.options.relativeAccuracy);
      mergeSketch(merged, s);
    }
    return merged;
  }

  /**
   * The whole state as JSON chunks (one per family, or per SNAPSHOT_SERIES series of a large
   * one, plus the recent events), for the ingest's journal. Sketches travel in their wire form.
   */
  snapshot(): Buffer[] {
    const chunks: Buffer[] = [];
    for (const f of this.families.values()) {
      let series: SeriesState[] = [];
      const flush = (): void => {
        const chunk: FamilyChunk = { k: 'family', name: f.name, type: f.type, origin: f.origin, help: f.help, buckets: f.buckets ?? null, series };
        chunks.push(Buffer.from(JSON.stringify(chunk)));
        series = [];
      };
      for (const s of f.series.values()) {
        series.push(seriesState(s));
        if (series.length >= SNAPSHOT_SERIES) flush();
      }
      if (series.length > 0) flush();
    }
    if (this.events.length > 0) chunks.push(Buffer.from(JSON.stringify({ k: 'events', events: this.events } satisfies EventsChunk)));
    return chunks;
  }

  /**
   * Replaces the state with what snapshot() took. A chunk it cannot read is skipped and
   * counted in the returned number (the journal has already verified each chunk's checksum).
   */
  restore(chunks: readonly Buffer[]): number {
    this.families.clear();
    this.sampleOwners.clear();
    this.seriesCount = 0;
    this.events.length = 0;
    let bad = 0;
    for (const buf of chunks) {
      let chunk: FamilyChunk | EventsChunk;
      try {
        chunk = JSON.parse(buf.toString('utf8')) as FamilyChunk | EventsChunk;
        if (chunk.k === 'events') {
          for (const e of chunk.events) this.events.push(e);
          continue;
        }
        let family = this.families.get(chunk.name);
        if (family === undefined) {
          family = new Family(chunk.name, chunk.type, chunk.origin, chunk.help, chunk.buckets ?? undefined);
          this.families.set(chunk.name, family);
          for (const sample of family.sampleNames) this.sampleOwners.set(sample, chunk.name);
        }
        for (const st of chunk.series) {
          if (!family.series.has(st.l)) this.seriesCount++;
          family.series.set(st.l, this.restoreSeries(st));
        }
      } catch {
        bad++;
      }
    }
    while (this.events.length > this.options.maxEvents) this.events.shift();
    return bad;
  }

  private restoreSeries(st: SeriesState): Series {
    const s = new Series(st.l, st.t);
    s.route = st.r ?? '';
    s.value = st.v;
    s.sum = st.s;
    s.count = st.c;
    if (st.b) s.buckets = st.b;
    if (st.q) s.quantiles = st.q;
    if (st.m) s.setMembers = new Map(st.m.map(([agent, members]) => [agent, new Set(members)]));
    if (st.w) {
      s.slots = new Array(WINDOW_SLOTS).fill(null);
      s.slotIndex = new Array(WINDOW_SLOTS).fill(-1);
      s.slotExact = new Array(WINDOW_SLOTS).fill(null);
      for (const [index, sketch, count, sum, min, max, values, weights] of st.w) {
        const i = index % WINDOW_SLOTS;
        s.slots[i] = decodeSketch(sketch, { count, sum, min, max });
        s.slotIndex[i] = index;
        if (values !== undefined && weights !== undefined) s.slotExact[i] = { values, weights };
      }
    }
    return s;
  }

  // ---- moving series between collectors (collector/fleet) ----

  /**
   * The state of every series `to` gives a destination for, grouped by destination, as
   * snapshot chunks (what mergeSeries() takes) with the (family, labels) of each. Nothing is
   * removed: the caller removes them once the destination has them.
   */
  exportSeries(to: (route: string, family: string, labels: string) => string | undefined): Map<string, { chunks: unknown[]; keys: SeriesRef[] }> {
    const out = new Map<string, { chunks: Buffer[]; keys: SeriesRef[]; open: Map<string, FamilyChunk> }>();
    for (const f of this.families.values()) {
      for (const s of f.series.values()) {
        const dest = to(s.route === '' ? `${f.name}{${s.labels}}` : s.route, f.name, s.labels);
        if (dest === undefined) continue;
        let d = out.get(dest);
        if (d === undefined) out.set(dest, (d = { chunks: [], keys: [], open: new Map() }));
        let chunk = d.open.get(f.name);
        if (chunk === undefined) d.open.set(f.name, (chunk = { k: 'family', name: f.name, type: f.type, origin: f.origin, help: f.help, buckets: f.buckets ?? null, series: [] }));
        chunk.series.push(seriesState(s));
        d.keys.push([f.name, s.labels]);
      }
    }
    const result = new Map<string, { chunks: unknown[]; keys: SeriesRef[] }>();
    for (const [dest, d] of out) result.set(dest, { chunks: [...d.open.values()], keys: d.keys });
    return result;
  }

  /** How many series' routing keys satisfy `pred` (GET /api/v1/fleet: what this collector owns). */
  countRoutes(pred: (route: string) => boolean): number {
    let n = 0;
    for (const f of this.families.values()) for (const s of f.series.values()) if (pred(s.route === '' ? `${f.name}{${s.labels}}` : s.route)) n++;
    return n;
  }

  /** Removes series (handed to another collector); returns how many were there. */
  removeSeries(keys: readonly SeriesRef[]): number {
    let removed = 0;
    for (const [name, labels] of keys) {
      const family = this.families.get(name);
      if (family === undefined || !family.series.delete(labels)) continue;
      removed++;
      this.seriesCount--;
      if (family.series.size === 0) {
        this.families.delete(name);
        for (const sample of family.sampleNames) this.sampleOwners.delete(sample);
      }
    }
    return removed;
  }

  /**
   * Merges series another collector held (exportSeries() chunks) into this store: counters,
   * sums, counts and buckets add up, window sketches merge slot by slot, set members unite per
   * agent, a gauge keeps the later value. Returns how many series were merged; a family that
   * clashes with one here is refused and counted like an agent's metric would be.
   */
  mergeSeries(chunks: readonly unknown[]): number {
    let merged = 0;
    for (const c of chunks) {
      const chunk = c as FamilyChunk;
      if (chunk?.k !== 'family' || !Array.isArray(chunk.series)) continue;
      let family = this.families.get(chunk.name);
      if (family === undefined) {
        const candidate = new Family(chunk.name, chunk.type, chunk.origin, chunk.help, chunk.buckets ?? undefined);
        if (candidate.sampleNames.some((n) => this.sampleOwners.has(n))) {
          this.refused.name_collision += chunk.series.length;
          continue;
        }
        family = candidate;
        this.families.set(chunk.name, family);
        for (const sample of family.sampleNames) this.sampleOwners.set(sample, chunk.name);
      } else if (family.type !== chunk.type || family.origin !== chunk.origin) {
        this.refused.type_conflict += chunk.series.length;
        continue;
      }
      for (const st of chunk.series) {
        const incoming = this.restoreSeries(st);
        const here = family.series.get(st.l);
        if (here === undefined) {
          if (this.seriesCount >= this.options.maxSeries) {
            this.refused.max_series++;
            continue;
          }
          family.series.set(st.l, incoming);
          this.seriesCount++;
        } else {
          mergeInto(here, incoming, family.origin, this.options.maxSetMembers);
        }
        merged++;
      }
      if (family.series.size === 0) {
        this.families.delete(chunk.name);
        for (const sample of family.sampleNames) this.sampleOwners.delete(sample);
      }
    }
    return merged;
  }

  /** Drops series not updated within seriesTtl, and families left empty. */
  expire(now = Date.now()): void {
    const ttl = this.options.seriesTtlMs;
    for (const [name, family] of this.families) {
      for (const [key, s] of family.series) {
        if (now - s.lastSeen > ttl) {
          family.series.delete(key);
          this.seriesCount--;
          this.expired++;
        }
      }
      if (family.series.size === 0) {
        this.families.delete(name);
        for (const sample of family.sampleNames) this.sampleOwners.delete(sample);
      }
    }
  }

  /**
   * Every series with what it received since the last call (counters, histograms, sketch
   * summaries) or its current value (gauges, sets, OTLP summaries), in the store's own kinds,
   * and forgets what it returned: the OTLP metric sink exports these as deltas.
   */
  drainDeltas(visit: (d: SeriesDelta) => void, now = Date.now()): void {
    this.expire(now);
    for (const family of this.families.values()) {
      for (const s of family.series.values()) {
        const p = s.pending;
        s.pending = null;
        const base = { name: family.name, help: family.help, labels: s.labels };
        switch (family.origin) {
          case 'c':
            visit({ ...base, kind: 'counter', value: p?.value ?? 0 });
            break;
          case 'g':
          case 's':
          case 'check':
            visit({ ...base, kind: 'gauge', value: s.value });
            break;
          case 'osum':
            visit({ ...base, kind: 'summary', quantiles: s.quantiles ?? [], sum: s.sum, count: s.count });
            break;
          case 'hist':
          case 'sketch': {
            if (family.type === 'histogram') {
              const bounds = family.buckets ?? [];
              visit({ ...base, kind: 'histogram', bounds, counts: p?.counts ?? new Array<number>(bounds.length + 1).fill(0), sum: p?.sum ?? 0, count: p?.count ?? 0 });
            } else if (p !== null && p.sketch !== null && p.count > 0) {
              visit({ ...base, kind: 'sketch', sketch: p.sketch, sum: p.sum, count: p.count, samples: p.exact });
            }
            break;
          }
        }
      }
    }
  }

  /** Prometheus text exposition (format 0.0.4) of every series. */
  render(now = Date.now()): string {
    let out = '';
    for (const chunk of this.renderChunks(now)) out += chunk;
    return out;
  }

  /**
   * render()'s text in pieces of about `size` characters, made as they are asked for: /metrics
   * streams them, so a scrape of 500k series holds a piece at a time, not the whole text. The
   * store may change between pieces (a batch applied while the socket drains); what a piece
   * shows is the store as it was when that piece was made, and every series still there when
   * the walk reaches it is shown once.
   */
  *renderChunks(now = Date.now(), size = RENDER_CHUNK_CHARS): Generator<string, void, undefined> {
    this.expire(now);
    const lines = new ExpositionLines();
    const quantiles = this.options.quantiles;
    for (const family of this.families.values()) {
      lines.family(family.name, family.type, family.help);
      for (const s of family.series.values()) {
        this.visitSeries(family, s, lines, quantiles, now);
        if (lines.chars >= size) yield lines.take();
      }
    }
    if (lines.chars > 0) yield lines.take();
  }

  /**
   * Walks every sample /metrics shows at `now`, in exposition order: render() and the metric
   * sinks (remote_write, Graphite) both read the store through here, so what they send is what
   * /metrics exposes. Labels come as the exposition's label text (`a="1",b="2"`, escaped).
   */
  visit(visitor: SampleVisitor, now = Date.now()): void {
    this.expire(now);
    const quantiles = this.options.quantiles;
    for (const family of this.families.values()) {
      visitor.family(family.name, family.type, family.help);
      for (const s of family.series.values()) this.visitSeries(family, s, visitor, quantiles, now);
    }
  }

  private visitSeries(family: Family, s: Series, visitor: SampleVisitor, quantiles: number[], now: number): void {
    const name = family.name;
    const l = s.labels;
    switch (family.type) {
      case 'counter':
      case 'gauge':
        visitor.sample(name, l, s.value);
        break;
      case 'summary': {
        if (s.quantiles !== null) {
          for (const [q, v] of s.quantiles) visitor.sample(name, joinLabels(l, `quantile="${q}"`), v);
          visitor.sample(`${name}_sum`, l, s.sum);
          visitor.sample(`${name}_count`, l, s.count);
          break;
        }
        const values = this.windowQuantiles(s, quantiles, now);
        for (let qi = 0; qi < quantiles.length; qi++) visitor.sample(name, joinLabels(l, `quantile="${quantiles[qi]}"`), values[qi]);
        visitor.sample(`${name}_sum`, l, s.sum);
        visitor.sample(`${name}_count`, l, s.count);
        break;
      }
      case 'histogram': {
        const bounds = family.buckets ?? [];
        const counts = s.buckets ?? [];
        for (let i = 0; i < bounds.length; i++) visitor.sample(`${name}_bucket`, joinLabels(l, `le="${formatValue(bounds[i])}"`), counts[i] ?? 0);
        visitor.sample(`${name}_bucket`, joinLabels(l, 'le="+Inf"'), s.count);
        visitor.sample(`${name}_sum`, l, s.sum);
        visitor.sample(`${name}_count`, l, s.count);
        break;
      }
    }
  }
}

/** Characters per renderChunks() piece: a few socket writes' worth. */
const RENDER_CHUNK_CHARS = 256 * 1024;

/** Exposition text lines gathered into pieces. */
class ExpositionLines implements SampleVisitor {
  private lines: string[] = [];
  chars = 0;

  family(name: string, type: FamilyType, help: string): void {
    this.push(`# HELP ${name} ${escapeHelp(help)}`);
    this.push(`# TYPE ${name} ${type}`);
  }

  sample(name: string, labels: string, value: number): void {
    this.push(`${name}${wrap(labels)} ${formatValue(value)}`);
  }

  /** The lines so far as one text, each ending in a newline. */
  take(): string {
    this.lines.push('');
    const text = this.lines.join('\n');
    this.lines = [];
    this.chars = 0;
    return text;
  }

  private push(line: string): void {
    this.lines.push(line);
    this.chars += line.length + 1;
  }
}

export type { FamilyType };

/** One series as drainDeltas() gives it. `labels`: the exposition's label text. */
export type SeriesDelta = { name: string; help: string; labels: string } & (
  | { kind: 'counter' | 'gauge'; value: number }
  | { kind: 'summary'; quantiles: [number, number][]; sum: number; count: number }
  | { kind: 'histogram'; bounds: number[]; counts: number[]; sum: number; count: number }
  | { kind: 'sketch'; sketch: Sketch; sum: number; count: number; samples: ExactSamples | null }
);

/** Adds an applied sketch (and its samples, while the delta holds at most SKETCH_EXACT_SAMPLES) to a pending delta. */
function addPending(p: PendingDelta, sketch: Sketch, exact: ExactSamples | null, accuracy: number): void {
  p.sketch ??= newSketch(accuracy);
  mergeSketch(p.sketch, sketch);
  const kept = p.exact;
  if (kept !== null && exact !== null && kept.values.length + exact.values.length <= SKETCH_EXACT_SAMPLES) {
    for (let k = 0; k < exact.values.length; k++) {
      kept.values.push(exact.values[k]);
      kept.weights.push(exact.weights[k]);
    }
  } else {
    p.exact = null;
  }
}

/** What MetricStore.visit() calls: once per family, then once per sample of it. */
export interface SampleVisitor {
  family(name: string, type: FamilyType, help: string): void;
  /** `labels`: the exposition's label text without braces, '' when none. */
  sample(name: string, labels: string, value: number): void;
}

/** Series per snapshot chunk: a family of a million series becomes many chunks, not one huge string. */
const SNAPSHOT_SERIES = 10_000;

interface FamilyChunk {
  k: 'family';
  name: string;
  type: FamilyType;
  origin: Origin;
  help: string;
  buckets: number[] | null;
  series: SeriesState[];
}

interface EventsChunk {
  k: 'events';
  events: StatsdEvent[];
}

/** A series in a snapshot; window slots as [slot index, sketch, count, sum, min, max, exact values?, their weights?]. */
interface SeriesState {
  l: string;
  /** routing key (absent in snapshots older than fleets) */
  r?: string;
  t: number;
  v: number;
  s: number;
  c: number;
  b?: number[];
  q?: [number, number][];
  m?: [string, string[]][];
  w?: [number, string, number, number, number, number, number[]?, number[]?][];
}

function seriesState(s: Series): SeriesState {
  const st: SeriesState = { l: s.labels, t: s.lastSeen, v: s.value, s: s.sum, c: s.count };
  if (s.route !== '') st.r = s.route;
  if (s.buckets) st.b = s.buckets;
  if (s.quantiles) st.q = s.quantiles;
  if (s.setMembers) st.m = [...s.setMembers].map(([agent, members]) => [agent, [...members]]);
  if (s.slots && s.slotIndex) {
    st.w = [];
    for (let i = 0; i < WINDOW_SLOTS; i++) {
      const sk = s.slots[i];
      if (sk === null || sk.count === 0) continue;
      const e = s.slotExact?.[i] ?? null;
      st.w.push(e === null ? [s.slotIndex[i], encodeSketch(sk), sk.count, sk.sum, sk.min, sk.max] : [s.slotIndex[i], encodeSketch(sk), sk.count, sk.sum, sk.min, sk.max, e.values, e.weights]);
    }
  }
  return st;
}

/** A series in the store: [family name, label key]. */
export type SeriesRef = [string, string];

/** `incoming` (the same series from another collector) added to `here`. */
function mergeInto(here: Series, incoming: Series, origin: Origin, maxSetMembers: number): void {
  if (origin === 'osum') {
    // an OTLP summary is its source's own figures: the newer copy wins whole
    if (incoming.lastSeen >= here.lastSeen) {
      here.quantiles = incoming.quantiles;
      here.sum = incoming.sum;
      here.count = incoming.count;
    }
    if (here.route === '') here.route = incoming.route;
    here.lastSeen = Math.max(here.lastSeen, incoming.lastSeen);
    return;
  }
  if (origin === 'g' || origin === 'check') {
    if (incoming.lastSeen >= here.lastSeen) here.value = incoming.value;
  } else if (origin === 's') {
    here.setMembers ??= new Map();
    // each agent's latest interval counts: the other collector's copy wins only if it is newer
    for (const [agent, members] of incoming.setMembers ?? []) {
      if (!here.setMembers.has(agent) || incoming.lastSeen > here.lastSeen) here.setMembers.set(agent, members);
    }
    here.value = unionSize(here.setMembers, maxSetMembers);
  } else {
    here.value += incoming.value;
  }
  here.sum += incoming.sum;
  here.count += incoming.count;
  if (incoming.buckets) {
    here.buckets ??= new Array(incoming.buckets.length).fill(0);
    for (let i = 0; i < incoming.buckets.length; i++) here.buckets[i] += incoming.buckets[i];
  }
  if (incoming.slots && incoming.slotIndex) {
    here.slots ??= new Array(WINDOW_SLOTS).fill(null);
    here.slotIndex ??= new Array(WINDOW_SLOTS).fill(-1);
    here.slotExact ??= new Array(WINDOW_SLOTS).fill(null);
    for (let i = 0; i < WINDOW_SLOTS; i++) {
      const sk = incoming.slots[i];
      const index = incoming.slotIndex[i];
      const exact = incoming.slotExact?.[i] ?? null;
      if (sk === null || index < 0) continue;
      if (here.slotIndex[i] === index && here.slots[i] !== null) {
        mergeSketch(here.slots[i] as Sketch, sk);
        const kept = here.slotExact[i];
        here.slotExact[i] =
          kept !== null && exact !== null && kept.values.length + exact.values.length <= SKETCH_EXACT_SAMPLES
            ? { values: kept.values.concat(exact.values), weights: kept.weights.concat(exact.weights) }
            : null;
      } else if (here.slotIndex[i] < index || here.slots[i] === null) {
        here.slots[i] = sk;
        here.slotIndex[i] = index;
        here.slotExact[i] = exact;
      }
    }
  }
  if (here.route === '') here.route = incoming.route;
  here.lastSeen = Math.max(here.lastSeen, incoming.lastSeen);
}

export interface MetricObserver {
  wants(statsdName: string, name: string): boolean;
  /** `now`: when the batch was applied (at a journal replay, when it first was). */
  observe(o: ObservedMetric, now: number): void;
  /** A running total (an OTLP summary's `_count` and `_sum`). */
  observeCumulative?(o: { statsdName: string; name: string; labels: Record<string, string>; value: number }, now: number): void;
}

export interface ObservedMetric {
  statsdName: string;
  name: string;
  labels: Record<string, string>;
  type: Exclude<WireMetric['type'], 'sum'>;
  value: number | undefined;
  sketch: Sketch | undefined;
  /** OTLP explicit histograms: the interval's per-bucket counts (the last above every bound). */
  histogram?: { bounds: readonly number[]; counts: readonly number[] };
}

/**
 * An explicit-bucket histogram as a sketch: each bucket's count at its upper bound (the last,
 * unbounded one at the last bound), so a quantile read from it is the bound of the bucket it
 * falls in, as Prometheus' histogram_quantile would at most report.
 */
export function histogramSketch(bounds: readonly number[], counts: readonly number[], sum: number, accuracy: number): Sketch {
  const sk = newSketch(accuracy);
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i];
    if (c > 0) sk.accept(bounds.length === 0 ? 0 : bounds[Math.min(i, bounds.length - 1)], c);
  }
  // the source's sum, not the bounds': averages stay true
  if (sk.count > 0) sk.sum = sum;
  return sk;
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

export interface ExactSamples {
  values: number[];
  weights: number[];
}

/** The samples a distribution carries, when it carries a usable set of them. */
function exactSamplesOf(m: WireDistribution): ExactSamples | null {
  const values = m.samples;
  if (values === undefined || values.length === 0 || values.length > SKETCH_EXACT_SAMPLES) return null;
  const weights = m.weights ?? new Array<number>(values.length).fill(1);
  if (weights.length !== values.length) return null;
  let total = 0;
  for (const w of weights) total += w;
  // the samples must be the whole interval, or ranking them would be wrong
  if (Math.abs(total - m.count) > 1e-6 * Math.max(1, m.count)) return null;
  return { values, weights };
}

function weightAtOrBelow(e: ExactSamples, bound: number): number {
  let n = 0;
  for (let i = 0; i < e.values.length; i++) if (e.values[i] <= bound) n += e.weights[i];
  return n;
}

function unionSize(perAgent: Map<string, Set<string>>, max: number): number {
  if (perAgent.size === 1) return perAgent.values().next().value!.size;
  const all = new Set<string>();
  for (const members of perAgent.values()) {
    for (const m of members) {
      all.add(m);
      if (all.size >= max) return all.size;
    }
  }
  return all.size;
}

/**
 * Renders the label set as the series key: `a="1",b="2"`, sorted by name. Tags are `k:v` (a tag
 * without a value becomes `k="true"`); rule labels win over tags of the same name.
 */
function labelKey(ruleLabels: Record<string, string>, tags: string[], type: FamilyType): string | { refused: RefusalReason } {
  const labels = new Map<string, string>();
  for (const tag of tags) {
    const colon = tag.indexOf(':');
    const key = sanitizeLabelName(colon < 0 ? tag : tag.slice(0, colon));
    const value = colon < 0 ? 'true' : tag.slice(colon + 1);
    const prev = labels.get(key);
    if (prev !== undefined && prev !== value) return { refused: 'label_clash' };
    labels.set(key, value);
  }
  for (const [k, v] of Object.entries(ruleLabels)) labels.set(k, v);
  if ((type === 'summary' && labels.has('quantile')) || (type === 'histogram' && labels.has('le'))) return { refused: 'reserved_label' };
  const names = [...labels.keys()].sort();
  const parts: string[] = [];
  for (const n of names) {
    const v = labels.get(n) as string;
    if (v === '') continue; // an empty label value is the same as no label in Prometheus
    parts.push(`${n}="${escapeLabelValue(v)}"`);
  }
  return parts.join(',');
}

/**
 * `s` as one flat string of its own. Keys built by concatenation are trees of pieces that keep
 * the strings they were made from (a batch's metric names, tags) alive with them.
 */
function flatString(s: string): string {
  // V8 copies the pieces of a split into new flat strings; NUL is in no key, so this is one piece
  return s.length < 13 ? s : s.split('\u0000').join('\u0000');
}

/** Label text (`a="1",b="2"`) back into names and values. */
export function parseLabelKey(key: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (let m = re.exec(key); m; m = re.exec(key)) labels[m[1]] = m[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
  return labels;
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function wrap(labels: string): string {
  return labels === '' ? '' : `{${labels}}`;
}

function joinLabels(labels: string, extra: string): string {
  return labels === '' ? extra : `${labels},${extra}`;
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}
