/**
 * The status model both roles expose on GET /api/v1/status, the console renders and
 * `plumb status|top` print: each component of the running pipeline with its totals and rates in
 * and out, its queue against its bound, its drops by reason, and a health verdict with the
 * reasons for it. Built from the counters /metrics exposes (read from the role's Telemetry), so
 * the two never disagree.
 *
 * Rates come from a sampler that reads the components' totals once a second and keeps the last
 * RATE_WINDOW_MS: a rate is the difference across that window. Health rules (README, "Health"):
 *
 * - a queue at QUEUE_DEGRADED of its bound is degraded, at QUEUE_FAILED failed;
 * - drops that rose within the window make a component degraded;
 * - each role adds its own (a sink retrying or unreachable, a collector down, a file lagging).
 *
 * The report is healthy when every component is ok.
 */
import type { Telemetry } from './telemetry.ts';

export type Role = 'agent' | 'collector';
export type ComponentKind = 'source' | 'transform' | 'queue' | 'sink';
export type Health = 'ok' | 'degraded' | 'failed';
export type QueueUnit = 'events' | 'bytes' | 'batches';

/** What was loaded, and the outcome of the last reload (filled by whoever reloads). */
export interface ConfigStatus {
  path: string;
  /** sha256 of the file's bytes, hex. */
  hash: string;
  loadedAt: string;
  /** applied: the components that took new settings; needsRestart: changed keys that wait for the next start; trigger: signal, file or bundle. */
  lastReload?: { at: string; result: 'success' | 'failure'; errors: string[]; applied?: string[]; needsRestart?: string[]; trigger?: string };
}

export interface Throughput {
  total: number;
  perSecond: number;
}

export interface ComponentStatus {
  id: string;
  kind: ComponentKind;
  type: string;
  /** Upstream component ids. */
  inputs: string[];
  health: Health;
  problems: string[];
  in: Throughput;
  out: Throughput;
  queue?: { depth: number; bound: number; unit: QueueUnit };
  drops: Record<string, number>;
}

export interface FileStatus {
  path: string;
  /** The file's identity (stable across renames; new after a truncation). */
  id: string;
  /** First byte not yet acknowledged by a collector. */
  offset: number;
  size: number;
  lagBytes: number;
  /** How long the oldest unacknowledged byte has been in the file. */
  lagSeconds: number;
  /** Rotations seen at this path since the agent started. */
  rotations: number;
  /** Events from this file that parsed (or had no pattern), and that grok could not match. */
  parsed: number;
  failed: number;
}

export interface StatsdStatus {
  linesPerSecond: number;
  parseErrors: Record<string, number>;
  series: number;
  seriesCap: number;
}

export interface StatusReport {
  role: Role;
  hostname: string;
  version: string;
  startedAt: string;
  healthy: boolean;
  config: ConfigStatus;
  components: ComponentStatus[];
  files?: FileStatus[];
  statsd?: StatsdStatus;
}

/** What the CLI hands each role so its status can say what it runs. */
export interface StatusContext {
  version: string;
  /** The current config's identity; re-read at each report (a reload replaces it). */
  config: () => ConfigStatus;
}

/** Rates are over this much history. */
export const RATE_WINDOW_MS = 10_000;
/** The sampler reads totals this often. */
export const SAMPLE_INTERVAL_MS = 1000;
/** A queue this full (depth / bound) is degraded… */
export const QUEUE_DEGRADED = 0.8;
/** …and this full, failed: what arrives next is refused or dropped. */
export const QUEUE_FAILED = 0.98;

/** One metric's current label sets and values. */
export interface Reading {
  labels: Record<string, string | number>;
  value: number;
}

/** Which metric, and which of its label sets, a number is the sum of. */
export interface Selector {
  metric: string;
  /** Label values a series must have. */
  where?: Record<string, string>;
  /** Label values that exclude a series. */
  except?: Record<string, readonly string[]>;
}

/** Values of the metrics a report needs, read at one instant. */
export class MetricValues {
  private readonly values: Map<string, Reading[]>;

  constructor(values: Map<string, Reading[]>) {
    this.values = values;
  }

  /** Reads `names` from the registry (after syncing the counters hot paths keep as plain numbers). */
  static async read(telemetry: Telemetry, names: Iterable<string>): Promise<MetricValues> {
    telemetry.sync();
    const out = new Map<string, Reading[]>();
    for (const name of names) {
      const metric = telemetry.registry.getSingleMetric(name);
      if (metric === undefined) continue;
      const got = await metric.get();
      out.set(name, got.values.map((v) => ({ labels: v.labels as Record<string, string | number>, value: v.value })));
    }
    return new MetricValues(out);
  }

  sum(s: Selector | readonly Selector[]): number {
    if (isSelectorList(s)) return s.reduce((n, one) => n + this.sum(one), 0);
    let n = 0;
    for (const r of this.values.get(s.metric) ?? []) if (matches(r.labels, s)) n += r.value;
    return n;
  }

  /** Sums by the value of `label` (series without it under ''). */
  by(s: Selector, label: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.values.get(s.metric) ?? []) {
      if (!matches(r.labels, s)) continue;
      const k = String(r.labels[label] ?? '');
      out[k] = (out[k] ?? 0) + r.value;
    }
    return out;
  }
}

function isSelectorList(s: Selector | readonly Selector[]): s is readonly Selector[] {
  return Array.isArray(s);
}

function matches(labels: Record<string, string | number>, s: Selector): boolean {
  if (s.where) for (const [k, v] of Object.entries(s.where)) if (String(labels[k]) !== v) return false;
  if (s.except) for (const [k, vs] of Object.entries(s.except)) if (vs.includes(String(labels[k]))) return false;
  return true;
}

/** Drops of one component by reason: each reason is a selector (summed). */
export type DropSelectors = Record<string, Selector | readonly Selector[]>;

/**
 * How one component is read. `extra` adds what counters cannot say (a sink's state, a collector
 * being down); it returns problems with the health they cause.
 */
export interface ComponentSpec {
  id: string;
  kind: ComponentKind;
  type: string;
  inputs: string[];
  in: Selector | readonly Selector[] | ((v: MetricValues) => number);
  out: Selector | readonly Selector[] | ((v: MetricValues) => number);
  drops?: DropSelectors | ((v: MetricValues) => Record<string, number>);
  queue?: () => { depth: number; bound: number; unit: QueueUnit } | undefined;
  extra?: (v: MetricValues) => Problem[];
  /** Counters whose rise within the window is a problem (retries, timeouts): what they count, and which. */
  rising?: { what: string; selector: Selector | readonly Selector[]; health?: Exclude<Health, 'ok'> }[];
}

export interface Problem {
  health: Exclude<Health, 'ok'>;
  text: string;
}

/** The OTLP doors (shared/otlp), the same on both roles: items refused as unusable are drops, answers of "busy" a problem. */
export function otlpSourceSpec(): ComponentSpec {
  const items = { metric: 'plumb_otlp_items_total' };
  return {
    id: 'otlp',
    kind: 'source',
    type: 'otlp',
    inputs: [],
    in: { ...items, except: { outcome: ['baseline'] } },
    out: { ...items, where: { outcome: 'accepted' } },
    drops: { rejected: { ...items, where: { outcome: 'rejected' } } },
    rising: [{ what: 'items answered busy', selector: { ...items, where: { outcome: 'refused' } } }],
  };
}

interface Sample {
  at: number;
  totals: Map<string, number>;
}

/** The last RATE_WINDOW_MS of totals, one sample per SAMPLE_INTERVAL_MS. */
export class RateWindow {
  private readonly samples: Sample[] = [];
  private readonly windowMs: number;

  constructor(windowMs = RATE_WINDOW_MS) {
    this.windowMs = windowMs;
  }

  add(at: number, totals: Map<string, number>): void {
    this.samples.push({ at, totals });
    // keep one sample at or beyond the window's start, so a rate always spans the whole window
    while (this.samples.length > 2 && this.samples[1].at <= at - this.windowMs) this.samples.shift();
  }

  /** The oldest sample in the window (at most windowMs before `now`), or undefined. */
  private base(now: number): Sample | undefined {
    for (const s of this.samples) if (s.at >= now - this.windowMs - SAMPLE_INTERVAL_MS && s.at < now) return s;
    return undefined;
  }

  /** Per second across the window, ending at `now` with `total`. 0 until there is a sample. */
  rate(key: string, now: number, total: number): number {
    const b = this.base(now);
    if (b === undefined || now <= b.at) return 0;
    const then = b.totals.get(key);
    if (then === undefined) return 0;
    return Math.max(0, total - then) / ((now - b.at) / 1000);
  }

  /** How much `total` grew across the window (0 without history). */
  growth(key: string, now: number, total: number): number {
    const b = this.base(now);
    const then = b?.totals.get(key);
    return then === undefined ? 0 : Math.max(0, total - then);
  }
}

export interface StatusModelOptions {
  role: Role;
  hostname: string;
  telemetry: Telemetry;
  status?: StatusContext;
  /** The components as they are now (the set may change with config). */
  specs: () => ComponentSpec[];
  /** Role-specific sections (files, statsd) and the problems they add to components. */
  sections?: (v: MetricValues, window: RateWindow, now: number) => Promise<Partial<StatusReport> & { problems?: Map<string, Problem[]> }>;
  /** Metrics read besides the specs' selectors (role sections, function-valued specs). */
  metrics?: readonly string[];
  /** Totals beyond the components' to keep rates of (e.g. statsd lines), read from `v`. */
  totals?: (v: MetricValues) => Map<string, number>;
}

const EMPTY_CONFIG: ConfigStatus = { path: '', hash: '', loadedAt: new Date(0).toISOString() };

/** A role's status: the sampler behind the rates, and the report. */
export class StatusModel {
  readonly startedAt = new Date();
  private readonly options: StatusModelOptions;
  private readonly window = new RateWindow();
  private timer: NodeJS.Timeout | null = null;
  private sampling: Promise<void> | null = null;

  constructor(options: StatusModelOptions) {
    this.options = options;
  }

  /** Starts sampling totals (rates need a history). */
  start(): void {
    if (this.timer !== null) return;
    void this.sample();
    this.timer = setInterval(() => void this.sample(), SAMPLE_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private metricNames(specs: readonly ComponentSpec[]): Set<string> {
    const names = new Set<string>(this.options.metrics);
    const add = (s: unknown): void => {
      if (s === undefined || typeof s === 'function') return;
      if (Array.isArray(s)) for (const one of s) add(one);
      else names.add((s as Selector).metric);
    };
    for (const spec of specs) {
      add(spec.in);
      add(spec.out);
      if (spec.drops !== undefined && typeof spec.drops !== 'function') for (const s of Object.values(spec.drops)) add(s);
      for (const r of spec.rising ?? []) add(r.selector);
    }
    return names;
  }

  private totals(specs: readonly ComponentSpec[], v: MetricValues): Map<string, number> {
    const totals = this.options.totals?.(v) ?? new Map<string, number>();
    for (const spec of specs) {
      totals.set(`${spec.id}\0in`, read(spec.in, v));
      totals.set(`${spec.id}\0out`, read(spec.out, v));
      for (const [reason, n] of Object.entries(drops(spec, v))) totals.set(`${spec.id}\0drop\0${reason}`, n);
      for (const r of spec.rising ?? []) totals.set(`${spec.id}\0rise\0${r.what}`, v.sum(r.selector));
    }
    return totals;
  }

  private async sample(): Promise<void> {
    if (this.sampling !== null) return;
    this.sampling = (async () => {
      const specs = this.options.specs();
      const v = await MetricValues.read(this.options.telemetry, this.metricNames(specs));
      this.window.add(Date.now(), this.totals(specs, v));
    })()
      .catch(() => undefined)
      .finally(() => {
        this.sampling = null;
      });
    await this.sampling;
  }

  async report(): Promise<StatusReport> {
    const specs = this.options.specs();
    const v = await MetricValues.read(this.options.telemetry, this.metricNames(specs));
    const now = Date.now();
    const totals = this.totals(specs, v);
    const window = this.window;
    const sections = (await this.options.sections?.(v, window, now)) ?? {};
    const { problems: extraProblems, ...rest } = sections;
    const components: ComponentStatus[] = specs.map((spec) => {
      const problems: Problem[] = [];
      const inTotal = totals.get(`${spec.id}\0in`) ?? 0;
      const outTotal = totals.get(`${spec.id}\0out`) ?? 0;
      const dropped = drops(spec, v);
      for (const [reason, n] of Object.entries(dropped)) {
        const grew = window.growth(`${spec.id}\0drop\0${reason}`, now, n);
        if (grew > 0) problems.push({ health: 'degraded', text: `dropping (${reason}): ${grew} in the last ${RATE_WINDOW_MS / 1000}s` });
      }
      const queue = spec.queue?.();
      if (queue !== undefined && queue.bound > 0) {
        const fill = queue.depth / queue.bound;
        if (fill >= QUEUE_FAILED) problems.push({ health: 'failed', text: `queue full: ${queue.depth} of ${queue.bound} ${queue.unit}` });
        else if (fill >= QUEUE_DEGRADED) problems.push({ health: 'degraded', text: `queue at ${Math.round(fill * 100)}% of its bound (${queue.depth} of ${queue.bound} ${queue.unit})` });
      }
      for (const r of spec.rising ?? []) {
        const key = `${spec.id}\0rise\0${r.what}`;
        const grew = window.growth(key, now, totals.get(key) ?? 0);
        if (grew > 0) problems.push({ health: r.health ?? 'degraded', text: `${r.what}: ${grew} in the last ${RATE_WINDOW_MS / 1000}s` });
      }
      problems.push(...(spec.extra?.(v) ?? []), ...(extraProblems?.get(spec.id) ?? []));
      const health: Health = problems.some((p) => p.health === 'failed') ? 'failed' : problems.length > 0 ? 'degraded' : 'ok';
      return {
        id: spec.id,
        kind: spec.kind,
        type: spec.type,
        inputs: spec.inputs,
        health,
        problems: problems.map((p) => p.text),
        in: { total: inTotal, perSecond: round(window.rate(`${spec.id}\0in`, now, inTotal)) },
        out: { total: outTotal, perSecond: round(window.rate(`${spec.id}\0out`, now, outTotal)) },
        ...(queue !== undefined ? { queue } : {}),
        drops: dropped,
      };
    });
    return {
      role: this.options.role,
      hostname: this.options.hostname,
      version: this.options.status?.version ?? 'unknown',
      startedAt: this.startedAt.toISOString(),
      healthy: components.every((c) => c.health === 'ok'),
      config: this.options.status?.config() ?? { ...EMPTY_CONFIG, loadedAt: this.startedAt.toISOString() },
      components,
      ...rest,
    };
  }
}

function read(s: ComponentSpec['in'], v: MetricValues): number {
  return typeof s === 'function' ? s(v) : v.sum(s);
}

function drops(spec: ComponentSpec, v: MetricValues): Record<string, number> {
  const d = spec.drops;
  if (d === undefined) return {};
  if (typeof d === 'function') return d(v);
  const out: Record<string, number> = {};
  for (const [reason, s] of Object.entries(d)) out[reason] = v.sum(s);
  return out;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
