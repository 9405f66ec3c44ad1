/**
 * The collector's alert engine. The collector feeds it what it ingests (observeMetric,
 * observeCumulative, observeLog); the engine keeps bounded, pre-aggregated buckets for just the
 * series its rules read, evaluates every rule each `evaluationInterval`, moves alerts through
 * pending → firing → resolved, and hands notifications to bounded delivery queues. Evaluation is
 * synchronous and never waits on the network. It knows nothing of the collector's metric store.
 *
 * Lifecycle: `start()` loads the rule file (a broken file at start-up is a ConfigError listing
 * every mistake), starts the notifiers, the evaluation timer and the file watcher; `reload()`
 * re-reads the file (the composition root calls it on SIGHUP), keeping the running rules when
 * the new file has errors; `stop()` stops the timers and drains the queues until its deadline.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../../shared/config.ts';
import { errorMessage } from '../../shared/errors.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { formatDuration } from '../../shared/units.ts';
import { aggregate, compare } from './aggregate.ts';
import { validResolution } from './buckets.ts';
import type { AlertsConfig } from './config.ts';
import { alertsJSON, renderMetrics, rulesJSON, type SloView, type UnitView } from './exposition.ts';
import { equalityLabels, type Matcher } from './matchers.ts';
import { Notifier, type AlertNotice, type PostFn } from './notify.ts';
import { formatWindow, parseRules, type BurnAlert, type MetricRef, type Rule, type SloRule, type TemplateMap, type ThresholdRule } from './rules.ts';
import { budgetRemaining, burnRate, indicatorCounts, type GroupCounts } from './slo.ts';
import { AlertBudget, AlertSet, type Alert, type Rendered, type Sample, type Transition } from './state.ts';
import { SeriesBudget, SeriesStore, storeKey, type CumulativeObservation, type GroupSummary, type MetricObservation, type StoreSpec, type StoreState } from './store.ts';
import { compileTemplate } from './template.ts';
import { FileWatcher } from './watch.ts';
import { answerPatterns, MergedPatterns, patternValues, type PatternTable, type PatternsRequest } from './patterns.ts';
import { loadAlert, RuleStateJournal, saveAlert, type GroupState, type RuleStateMeta } from './persist.ts';
import type { JournalOptions } from '../../shared/journal.ts';
import { mergeSummary, summaryFromState, summaryState } from './buckets.ts';
import type { FleetMembers, GroupWire, PartialsRequest, PartialsResponse, RuleFleetHandler, RulePeerClient, Want } from './fleet.ts';

export type { MetricObservation, CumulativeObservation } from './store.ts';

export interface AlertEngineOptions {
  config: AlertsConfig;
  telemetry: Telemetry;
  log: Logger;
  /** The clock, Unix milliseconds; tests inject their own. */
  now?: () => number;
  /** Replaces the HTTP client of the notifiers (tests). */
  post?: PostFn;
  /**
   * When a series is stale: a gauge's last reading counts for `last` rules (and for `absent`
   * on them) until this long after it arrived, the same TTL after which /metrics drops the
   * series (collector.metrics.seriesTtl). Default 10 minutes.
   */
  staleAfter?: number;
  /** Where rule state is journaled (<dataDir>/state/alert-rules); absent: nothing survives a restart. */
  persist?: Omit<JournalOptions, 'name'>;
  /** The collector's log patterns, for `patterns:` rules; absent: they see no patterns. */
  patterns?: PatternTable | null;
}

/** Default of `staleAfter`, the default of collector.metrics.seriesTtl. */
export const DEFAULT_STALE_AFTER = 10 * 60_000;

/** First bytes of the alert engine's chunks in the metrics journal's snapshot. */
export const WINDOW_CHUNK_PREFIX = '{"k":"alerts"';

/** Groups per snapshot chunk, so a large store is not one huge string. */
const GROUPS_PER_CHUNK = 1000;

export interface ReloadResult {
  ok: boolean;
  /** Every problem found, each naming the rule and key; empty when ok. */
  errors: string[];
  /** Alerting rules running after the reload (an SLO counts once per burn-rate alert). */
  rules: number;
}

/** One alerting rule as evaluated: a threshold rule, or one burn-rate alert of an SLO. */
class Unit implements UnitView {
  readonly name: string;
  readonly rule: string;
  readonly slo: string | undefined;
  readonly identity: string;
  readonly query: string;
  readonly for: number;
  readonly keepFiringFor: number;
  readonly labels: TemplateMap;
  readonly annotations: TemplateMap;
  /** Labels the unit adds itself (an SLO's slo, severity and window). */
  readonly fixed: Readonly<Record<string, string>>;
  readonly set: AlertSet;
  /** The ownership group (the rule or SLO) it belongs to. */
  readonly group: string;
  /** How much of the past its verdict needs covered by data seen, because missing data can make it fire (0: none). */
  readonly grace: number;
  /** Why it is not evaluated now (start-up grace); undefined when it is. */
  waiting: string | undefined;
  /** In a fleet: the collector evaluating it (this one or another); undefined alone. */
  owner: string | undefined;
  graceUntil: number | undefined;
  health: 'ok' | 'err' | 'unknown' = 'unknown';
  lastError = '';
  lastEvaluation: number | undefined;
  evaluationTime = 0;
  nodata = false;

  constructor(init: {
    name: string;
    rule: string;
    slo?: string;
    identity: string;
    query: string;
    for: number;
    keepFiringFor: number;
    labels: TemplateMap;
    annotations: TemplateMap;
    fixed?: Record<string, string>;
    budget: AlertBudget;
    group: string;
    grace?: number;
  }) {
    this.name = init.name;
    this.rule = init.rule;
    this.slo = init.slo;
    this.identity = init.identity;
    this.query = init.query;
    this.for = init.for;
    this.keepFiringFor = init.keepFiringFor;
    this.labels = init.labels;
    this.annotations = init.annotations;
    this.fixed = init.fixed ?? {};
    this.set = new AlertSet(init.budget);
    this.group = init.group;
    this.grace = init.grace ?? 0;
  }

  get alerts(): Iterable<Alert> {
    return this.set.alerts.values();
  }

  get labelSources(): Record<string, string> {
    return Object.fromEntries([...this.labels].map(([k, t]) => [k, t.source]));
  }

  get annotationSources(): Record<string, string> {
    return Object.fromEntries([...this.annotations].map(([k, t]) => [k, t.source]));
  }

  render(s: Sample): Rendered {
    const context = { ...s.labels, ...this.fixed };
    const ctx = { value: s.value, labels: context };
    const labels: Record<string, string> = { ...context };
    for (const [k, t] of this.labels) labels[k] = t.render(ctx);
    labels.alertname = this.name;
    for (const k of Object.keys(labels)) if (labels[k] === '') delete labels[k];
    const annotations: Record<string, string> = {};
    for (const [k, t] of this.annotations) annotations[k] = t.render(ctx);
    return { labels, annotations };
  }
}

interface ThresholdEval {
  readonly kind: 'alert';
  /** Ownership group key. */
  readonly key: string;
  readonly rule: ThresholdRule;
  /** The window read: the rule's, or for `last` the staleness TTL (a reading counts until it is stale). */
  readonly window: number;
  readonly unit: Unit;
  readonly main: SeriesStore | undefined;
  readonly numerator: SeriesStore | undefined;
  readonly denominator: SeriesStore | undefined;
}

interface SloEval {
  readonly kind: 'slo';
  readonly key: string;
  readonly rule: SloRule;
  readonly burns: { readonly alert: BurnAlert; readonly unit: Unit }[];
  readonly stores: { good?: SeriesStore; bad?: SeriesStore; total?: SeriesStore; latency?: SeriesStore };
  /** Every window the SLO reads: the burn windows and the period. */
  readonly windows: readonly number[];
  view: SloView;
}

type Compiled = ThresholdEval | SloEval;

type Summaries = (store: SeriesStore, window: number, sketch: boolean) => GroupSummary[];

interface RuleValues {
  values: { labels: Readonly<Record<string, string>>; value: number }[];
  hadData: boolean;
  error: string | undefined;
}

const ADDITIVE = new Set(['count', 'sum', 'rate', 'increase']);

interface Installed {
  readonly compiled: Compiled[];
  readonly units: Unit[];
  readonly stores: Map<string, SeriesStore>;
  /** Metric name → stores fed by it. */
  readonly byName: Map<string, SeriesStore[]>;
  readonly logStores: SeriesStore[];
}

const EMPTY: Installed = { compiled: [], units: [], stores: new Map(), byName: new Map(), logStores: [] };

/** What an engine's windows cover (see AlertEngine.coverage). */
export interface Coverage {
  since: number;
  resumedAt: number;
  bridge: number;
}

/**
 * When a window of `grace` ms is covered: it reaches no further back than the start of the
 * coverage, and an absence before the last start is bridged once as long again has passed
 * (the agents' spools deliver at least as fast as they filled), or the whole window.
 */
export function readyAt(c: Coverage, grace: number): number {
  return Math.max(c.since + grace, c.resumedAt + Math.min(grace, c.bridge));
}

function unitsOf(c: Compiled): Unit[] {
  return c.kind === 'alert' ? [c.unit] : c.burns.map((b) => b.unit);
}

function wantKey(store: string, window: number, sketch: boolean): string {
  return `${store}|${window}|${sketch}`;
}

/** A rule's ownership and state key: short, and equal on every collector loading the same rule. */
function groupKey(identity: string): string {
  return createHash('sha256').update(identity).digest('hex').slice(0, 16);
}

/** Names a rule's metric is looked up by: as written, and without a Prometheus _total suffix. */
function metricNames(metric: string): string[] {
  return metric.endsWith('_total') && metric.length > 6 ? [metric, metric.slice(0, -6)] : [metric];
}

function fieldText(event: Record<string, unknown>, field: string): string {
  let v = event[field];
  if (v === undefined && field.includes('.')) {
    let cur: unknown = event;
    for (const part of field.split('.')) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[part] : undefined;
    v = cur;
  }
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return '';
}

interface FleetState {
  readonly members: FleetMembers;
  readonly peers: RulePeerClient;
  /** No rule is owned before this (Unix ms): the others must first see this collector up. */
  ownFrom: number;
  /** Groups evaluated here in the last round. */
  owned: Set<string>;
  /** Coverage of every member that answered this round, and members found down. */
  coverages: Coverage[];
  down: { member: string; since: number }[];
  /** Rules that moved here from another collector. */
  takeovers: number;
  /** Bytes between collectors (both ways) and duration of the last round. */
  lastBytes: number;
  /** Settles once the probes under way at the last round have answered or timed out (stop() waits for it). */
  probing: Promise<void> | null;
}

export class AlertEngine implements RuleFleetHandler {
  private readonly config: AlertsConfig;
  private readonly telemetry: Telemetry;
  private readonly log: Logger;
  private readonly logOnce: LogOnce;
  private readonly clock: () => number;
  private readonly notifier: Notifier;
  private readonly seriesBudget: SeriesBudget;
  private readonly alertBudget: AlertBudget;
  private readonly watcher: FileWatcher | undefined;
  private installed: Installed = EMPTY;
  private timer: NodeJS.Timeout | undefined;
  private reloading: Promise<ReloadResult> | undefined;
  private lastEvaluation: number | undefined;
  private lastEvaluationSeconds = 0;
  private readonly metrics;
  private readonly staleAfter: number;
  private readonly patterns: PatternTable | null;
  /** The fleet's merged pattern table while a fleet round evaluates (null: this collector's own). */
  private roundPatterns: PatternTable | null = null;
  private readonly persistOptions: Omit<JournalOptions, 'name'> | undefined;
  private ruleState: RuleStateJournal | null = null;
  /**
   * What the windows cover: everything received since `since` (-Infinity: assume always, no
   * start-up grace), except for the absence before `resumedAt`, `bridge` ms long, which the
   * agents fill by sending what they spooled meanwhile.
   */
  coverage: Coverage = { since: -Infinity, resumedAt: -Infinity, bridge: 0 };
  /** Whether the windows came back from the metrics journal at start-up. */
  private windowsRestored = false;
  /** Window chunks that could not be read at restore. */
  windowsCorrupt = 0;
  private fleet: FleetState | null = null;
  private ticking = false;

  /** Outcome of the latest load or reload. */
  lastReload: { ok: boolean; at: number | undefined; errors: string[] } = { ok: true, at: undefined, errors: [] };

  constructor(options: AlertEngineOptions) {
    const { config, telemetry } = options;
    if (!validResolution(config.resolution)) {
      throw new ConfigError('alerts', [`alerts.resolution: must divide one minute evenly, e.g. 5s, 10s, 15s or 30s (got ${formatDuration(config.resolution)})`]);
    }
    this.config = config;
    this.telemetry = telemetry;
    this.log = options.log;
    this.patterns = options.patterns ?? null;
    this.logOnce = new LogOnce(options.log);
    this.clock = options.now ?? Date.now;
    this.staleAfter = options.staleAfter ?? DEFAULT_STALE_AFTER;
    this.persistOptions = options.persist;
    this.notifier = new Notifier({ config, telemetry, log: options.log, post: options.post });
    const seriesDropped = telemetry.counter('plumb_alerts_series_dropped_total', 'Series the alert engine refused to track, by reason (limit: maxSeries reached).', ['reason']);
    seriesDropped.inc({ reason: 'limit' }, 0);
    this.seriesBudget = new SeriesBudget(config.maxSeries);
    this.seriesBudget.onRefused = () => seriesDropped.inc({ reason: 'limit' });
    const alertsDropped = telemetry.counter('plumb_alerts_alerts_dropped_total', 'Alerts not tracked, by reason (limit: maxAlerts reached).', ['reason']);
    alertsDropped.inc({ reason: 'limit' }, 0);
    this.alertBudget = new AlertBudget(config.maxAlerts);
    this.alertBudget.onRefused = () => alertsDropped.inc({ reason: 'limit' });
    const seriesUsed = (): number => this.seriesBudget.used;
    const bucketsHeld = (): number => {
      let n = 0;
      for (const s of this.installed.stores.values()) n += s.bucketCount;
      return n;
    };
    const alertsTracked = (): number => this.alertBudget.used;
    const rulesLoaded = (): number => this.installed.units.length;
    telemetry.gauge('plumb_alerts_series', 'Series (groups) and counter baselines the alert engine tracks; the limit is maxSeries.', [], function collect() {
      this.set(seriesUsed());
    });
    telemetry.gauge('plumb_alerts_buckets', 'Time buckets held across every tracked series.', [], function collect() {
      this.set(bucketsHeld());
    });
    telemetry.gauge('plumb_alerts_tracked', 'Alerts pending, firing or recently resolved; the limit is maxAlerts.', [], function collect() {
      this.set(alertsTracked());
    });
    telemetry.gauge('plumb_alerts_rules', 'Alerting rules loaded (an SLO counts once per burn-rate alert).', [], function collect() {
      this.set(rulesLoaded());
    });
    this.metrics = {
      evaluations: telemetry.counter('plumb_alerts_evaluations_total', 'Evaluation rounds of all rules.'),
      failures: telemetry.counter('plumb_alerts_rule_evaluation_failures_total', 'Rule evaluations that failed (see lastError in /api/v1/rules).'),
      duration: telemetry.histogram('plumb_alerts_evaluation_duration_seconds', 'Time one evaluation round of all rules took.', [], [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]),
      reloads: telemetry.counter('plumb_alerts_reloads_total', 'Rule file loads, by result.', ['result']),
      reloadOk: telemetry.gauge('plumb_alerts_last_reload_successful', '1 if the last rule file load succeeded, 0 if the running rules are older than the file.'),
      takeovers: telemetry.counter('plumb_alerts_rule_takeovers_total', 'Rules (a threshold rule, or an SLO) this collector started evaluating after another collector had (its owner died or handed back).'),
    };
    this.metrics.takeovers.inc(0);
    const ownedRules = (): number => this.fleet?.owned.size ?? this.installed.compiled.length;
    telemetry.gauge('plumb_alerts_rules_owned', 'Rules (a threshold rule, or an SLO) this collector evaluates; in a fleet, those it ranks first for among the live collectors.', [], function collect() {
      this.set(ownedRules());
    });
    const traffic = (): { sent: number; received: number } => this.fleet?.peers.traffic ?? { sent: 0, received: 0 };
    const fleetBytes = telemetry.counter('plumb_alerts_fleet_bytes_total', 'Bytes of rule traffic between collectors (partial aggregates, rule state), by direction.', ['direction']);
    telemetry.countFrom(fleetBytes, () => traffic().sent, { direction: 'sent' });
    telemetry.countFrom(fleetBytes, () => traffic().received, { direction: 'received' });
    this.metrics.reloads.inc({ result: 'success' }, 0);
    this.metrics.reloads.inc({ result: 'failure' }, 0);
    this.metrics.reloadOk.set(1);
    this.watcher = config.rulesFile !== undefined && config.watch ? new FileWatcher(config.rulesFile, config.watchInterval, () => void this.reload()) : undefined;
  }

  // ── lifecycle ──────────────────────────────────────────────────────────────────────────────

  /**
   * Loads the rule file (throws ConfigError listing every mistake), restores the saved rule
   * state, then starts delivery, watching and (unless `evaluate` is false) evaluation. The
   * collector passes `evaluate: false` and calls startEvaluating() once the windows are back.
   */
  async start(options: { evaluate?: boolean } = {}): Promise<void> {
    // Watch before reading, so an edit made while the file is read is not missed.
    this.watcher?.start();
    if (this.config.rulesFile !== undefined) {
      const result = await this.reload();
      if (!result.ok) {
        this.watcher?.stop();
        throw new ConfigError(this.config.rulesFile, result.errors);
      }
    }
    if (this.persistOptions !== undefined && this.ruleState === null) {
      this.ruleState = await RuleStateJournal.open({ ...this.persistOptions, name: 'alert-rules' }, { telemetry: this.telemetry, log: this.log });
      this.adoptSaved(this.ruleState.groups, this.clock());
    }
    this.notifier.start();
    if (options.evaluate !== false) this.startEvaluating();
  }

  /**
   * Settles the coverage of the windows, then evaluates every evaluationInterval. Restored
   * windows of a collector away for less than alerts.outageTolerance continue the coverage
   * they had; otherwise it starts now, and rules that fire on missing data wait (start-up grace).
   */
  startEvaluating(): void {
    const now = this.clock();
    const meta = this.ruleState?.meta;
    const away = meta === undefined ? Infinity : now - meta.lastEvaluation;
    if (meta !== undefined && this.windowsRestored && away <= this.config.outageTolerance) {
      this.coverage = { since: Math.min(meta.coveredSince, now), resumedAt: now, bridge: Math.max(0, away) };
    } else {
      this.coverage = { since: now, resumedAt: now, bridge: 0 };
    }
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.tick(), this.config.evaluationInterval);
      this.timer.unref();
    }
  }

  private tick(): void {
    if (this.fleet === null) {
      this.evaluate(this.clock());
      return;
    }
    if (this.ticking) return; // the previous round is still asking the others
    this.ticking = true;
    this.evaluateFleet(this.clock())
      .catch((err: unknown) => this.logOnce.warn('fleet-round', { err: errorMessage(err) }, 'a fleet evaluation round failed'))
      .finally(() => {
        this.ticking = false;
      });
  }

  /** Stops evaluating and watching; queued notifications get until `timeoutMs` to go out. */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.watcher?.stop();
    await this.notifier.stop(timeoutMs);
    while (this.ticking) await new Promise((r) => setTimeout(r, 10));
    await this.fleet?.probing;
    await this.fleet?.peers.close();
    await this.ruleState?.close();
    this.ruleState = null;
  }

  /** When a window of `grace` ms is covered: here, or in a fleet by every member that answered and since any member went down. */
  private readyAt(grace: number): number {
    const f = this.fleet;
    if (f === null) return readyAt(this.coverage, grace);
    let t = readyAt(this.coverage, grace);
    for (const c of f.coverages) t = Math.max(t, readyAt(c, grace));
    for (const d of f.down) t = Math.max(t, d.since + grace);
    return t;
  }

  // ── a fleet of collectors (see fleet.ts) ───────────────────────────────────────────────────

  /**
   * Evaluates rules as one member of a fleet from now on: only the rules this collector owns,
   * over every live member's data. Call before startEvaluating(); it owns nothing until fleetReady().
   */
  attachFleet(members: FleetMembers, peers: RulePeerClient): void {
    this.fleet = { members, peers, ownFrom: Infinity, owned: new Set(), coverages: [], down: [], takeovers: 0, lastBytes: 0, probing: null };
  }

  /** The collector listens: it may own rules two evaluation intervals from now, once the others have seen it up. */
  fleetReady(): void {
    if (this.fleet !== null) this.fleet.ownFrom = this.clock() + 2 * this.config.evaluationInterval;
  }

  /** One evaluation round now: alone, or as a member of the fleet (tests; the timer calls the same). */
  evaluateRound(now: number = this.clock()): Promise<void> {
    if (this.fleet === null) {
      this.evaluate(now);
      return Promise.resolve();
    }
    return this.evaluateFleet(now);
  }

  /** One round in a fleet: probe, own, fetch and merge the partial aggregates, evaluate, save, replicate, notify. */
  private async evaluateFleet(now: number): Promise<void> {
    const started = performance.now();
    const f = this.fleet!;
    const self = f.members.self();
    const list = f.members.members();
    const bytesBefore = f.peers.traffic.sent + f.peers.traffic.received;
    // Probes run beside the rounds, each member's on its own: a refused connection (a dead
    // collector) is known within milliseconds and used in this round, however long another member
    // takes to answer its probe; a collector that hangs delays no round by more than a quarter of
    // the interval, and counts as down after its third timeout.
    f.probing = f.peers.probe(list, self, now);
    await Promise.race([f.probing, new Promise((r) => setTimeout(r, Math.max(50, this.config.evaluationInterval / 4)).unref())]);
    const others = list.filter((m) => m !== self && f.peers.isUp(m));
    f.down = f.peers.downMembers();
    const { compiled } = this.installed;

    // who owns what, seen from here
    const owned: Compiled[] = [];
    const gained: Compiled[] = [];
    const runnerUp = new Map<string, string>();
    for (const c of compiled) {
      let owner: string | undefined;
      if (list.length === 0) owner = self; // no member list read yet: a fleet of one
      else {
        const live = f.members.rank(c.key).filter((m) => m === self || f.peers.isUp(m));
        owner = live[0];
        if (owner === self && live[1] !== undefined) runnerUp.set(c.key, live[1]);
      }
      const mine = owner !== undefined && owner === self && now >= f.ownFrom;
      for (const u of unitsOf(c)) u.owner = owner;
      if (mine) {
        owned.push(c);
        if (!f.owned.has(c.key)) gained.push(c);
      } else if (f.owned.has(c.key)) {
        // another collector evaluates it now: it holds the state; nothing is resolved or sent from here
        for (const u of unitsOf(c)) u.set.dispose();
        if (c.kind === 'slo') c.view = { ...c.view, budgetRemaining: [], burnRates: [] };
      }
    }
    if (gained.length > 0) await this.takeOver(gained, others, self);
    f.owned = new Set(owned.map((c) => c.key));

    // the partial aggregates every owned rule reads, from every live member
    const wants = new Map<string, Want>();
    const want = (s: SeriesStore | undefined, window: number, sketch: boolean): void => {
      if (s !== undefined) wants.set(wantKey(s.key, window, sketch), [s.key, window, sketch]);
    };
    for (const c of owned) {
      if (c.kind === 'alert') {
        const sketch = c.rule.aggregate.kind === 'quantile';
        for (const s of [c.main, c.numerator, c.denominator]) want(s, c.window, sketch);
      } else for (const w of c.windows) for (const s of Object.values(c.stores)) want(s, w, false);
    }
    const list2 = [...wants.values()];
    // log-pattern rules read every collector's templates (patterns.ts: across a fleet)
    const patternRules = owned.flatMap((c) => (c.kind === 'alert' && c.rule.source.kind === 'patterns' ? [{ ref: c.rule.source.ref, window: c.window }] : []));
    const patternAsk: PatternsRequest | undefined =
      patternRules.length === 0 || this.patterns === null
        ? undefined
        : { activeSince: now - Math.max(...patternRules.map((r) => r.window + r.ref.baseline)) - 60_000, firstSeen: [] };
    const mergedPatterns = patternAsk === undefined ? null : new MergedPatterns();
    const merged = new Map<string, Map<string, GroupSummary>>();
    const local = this.partials({ from: '', now, wants: list2, patterns: patternAsk });
    const add = (answer: PartialsResponse): void => {
      if (answer.patterns) mergedPatterns?.addActive(answer.patterns.active);
      answer.partials.forEach((groups, i) => {
        if (groups === null) return;
        const key = wantKey(...list2[i]);
        let m = merged.get(key);
        if (m === undefined) merged.set(key, (m = new Map()));
        for (const [gkey, labels, state] of groups) {
          const g = m.get(gkey);
          if (g === undefined) m.set(gkey, { key: gkey, labels, summary: summaryFromState(state) });
          else mergeSummary(g.summary, summaryFromState(state));
        }
      });
    };
    add(local);
    let missing: string | undefined;
    f.coverages = [];
    if (list2.length > 0 || patternAsk !== undefined || owned.some((c) => unitsOf(c).some((u) => u.grace > 0))) {
      const answers = await Promise.allSettled(others.map((m) => f.peers.partials(m, { from: self ?? '', now, wants: list2, patterns: patternAsk })));
      answers.forEach((a, i) => {
        if (a.status === 'fulfilled') {
          add(a.value);
          f.coverages.push(a.value.coverage);
        } else missing ??= `collector ${others[i]} did not answer for the rules' data (${errorMessage(a.reason)})`;
      });
    }
    // a template that looks new here may have been seen long ago by a collector where it is quiet now
    const newWindow = Math.max(-1, ...patternRules.filter((r) => r.ref.signal === 'new').map((r) => r.window));
    const candidates = mergedPatterns === null || newWindow < 0 || missing !== undefined ? [] : mergedPatterns.newCandidates(newWindow, now);
    if (candidates.length > 0) {
      const ask: PatternsRequest = { activeSince: null, firstSeen: candidates };
      mergedPatterns!.addFirstSeen(answerPatterns(this.patterns!, ask).firstSeen);
      const answers = await Promise.allSettled(others.map((m) => f.peers.partials(m, { from: self ?? '', now, wants: [], patterns: ask })));
      answers.forEach((a, i) => {
        if (a.status === 'fulfilled') mergedPatterns!.addFirstSeen(a.value.patterns?.firstSeen ?? []);
        else missing ??= `collector ${others[i]} did not answer for the rules' data (${errorMessage(a.reason)})`;
      });
    }

    let webhook: AlertNotice[] = [];
    if (missing !== undefined) {
      // part of the fleet's data is out of sight: alerts stay as they were, as for any failed evaluation
      for (const c of owned) for (const u of unitsOf(c)) this.advance(u, now, missing, false, [], webhook);
    } else {
      this.roundPatterns = mergedPatterns;
      try {
        webhook = this.evaluateRules(owned, now, (s, window, sketch) => [...(merged.get(wantKey(s.key, window, sketch))?.values() ?? [])]);
      } finally {
        this.roundPatterns = null;
      }
    }
    const resend = this.resends(owned.flatMap(unitsOf), now);
    // on disk and at the runner-up before anyone is told: a takeover never sends a notification
    // twice. Neither copy needs the other, so they are made at once.
    await Promise.all([this.persist(now, owned), this.replicate(owned, runnerUp, now)]);
    this.deliver(resend, webhook);
    f.lastBytes = f.peers.traffic.sent + f.peers.traffic.received - bytesBefore;
    this.endRound(now, started);
  }

  /**
   * Rules this collector starts evaluating: their newest state among its own journal and the
   * live members' copies (the runner-up holds the dead owner's; a returning owner finds the
   * interim one's).
   */
  private async takeOver(gained: Compiled[], others: readonly string[], self: string | undefined): Promise<void> {
    const f = this.fleet!;
    const keys = gained.map((c) => c.key);
    const best = new Map<string, GroupState>();
    for (const key of keys) {
      const mine = this.ruleState?.groups.get(key);
      if (mine !== undefined) best.set(key, mine);
    }
    const answers = await Promise.allSettled(others.map((m) => f.peers.states(m, keys)));
    for (const a of answers) {
      if (a.status !== 'fulfilled') continue;
      for (const [key, g] of a.value.groups) {
        const cur = best.get(key);
        if (keys.includes(key) && (cur === undefined || g.at > cur.at)) best.set(key, g);
      }
    }
    for (const c of gained) {
      const g = best.get(c.key);
      if (g !== undefined && g.owner !== '' && g.owner !== self) {
        f.takeovers++;
        this.metrics.takeovers.inc();
        this.log.info({ rule: c.rule.name, from: g.owner, stateAt: new Date(g.at).toISOString() }, 'took over an alert rule');
      }
      for (const u of unitsOf(c)) {
        const saved = g?.units[u.identity];
        u.set.restore((saved ?? []).map(loadAlert));
      }
    }
  }

  /** Sends each owned rule's state to its runner-up, one request per runner-up. */
  private async replicate(owned: readonly Compiled[], runnerUp: ReadonlyMap<string, string>, now: number): Promise<void> {
    const f = this.fleet!;
    const self = f.members.self() ?? '';
    const byMember = new Map<string, [string, GroupState][]>();
    for (const c of owned) {
      const to = runnerUp.get(c.key);
      if (to === undefined) continue;
      let list = byMember.get(to);
      if (list === undefined) byMember.set(to, (list = []));
      list.push([c.key, this.groupState(c.key, unitsOf(c), now, self)]);
    }
    const sent = await Promise.allSettled([...byMember].map(([m, groups]) => f.peers.replicate(m, { from: self, groups })));
    for (const r of sent) if (r.status === 'rejected') this.logOnce.warn('replicate', { err: errorMessage(r.reason) }, 'alert rule state could not be sent to the runner-up; it is sent again next round');
  }

  // ── the internal routes' side (RuleFleetHandler) ──

  /** This collector's partial aggregates for what another collector's rules read. */
  partials(req: PartialsRequest): PartialsResponse {
    if (req.from !== '') this.fleet?.peers.markUp(req.from);
    const partials = req.wants.map(([store, window, sketch]): GroupWire[] | null => {
      const s = this.installed.stores.get(store);
      if (s === undefined) return null;
      return s.summarize(req.now, window, sketch).map((g) => [g.key, g.labels as Record<string, string>, summaryState(g.summary)]);
    });
    const patterns = req.patterns === undefined ? undefined : this.patterns === null ? null : answerPatterns(this.patterns, req.patterns);
    return { coverage: this.coverage, partials, ...(patterns === undefined ? {} : { patterns }) };
  }

  /** The copies of rule state this collector holds (its own rules' and replicas). */
  states(keys: readonly string[]): [string, GroupState][] {
    const out: [string, GroupState][] = [];
    for (const key of keys) {
      const g = this.ruleState?.groups.get(key);
      if (g !== undefined) out.push([key, g]);
    }
    return out;
  }

  /** A rule owner's state, kept (and journaled) for when this collector takes the rule over. */
  replica(from: string, groups: [string, GroupState][]): number {
    if (from !== '') this.fleet?.peers.markUp(from);
    const journal = this.ruleState;
    if (journal === null) return 0;
    const taken: [string, GroupState][] = [];
    for (const [key, g] of groups) {
      if (this.fleet?.owned.has(key)) continue; // evaluated here now: ours is newer
      const cur = journal.groups.get(key);
      if (cur === undefined || g.at > cur.at) taken.push([key, g]);
    }
    if (taken.length > 0) void journal.recordGroups(taken);
    return taken.length;
  }

  /** Rule ownership in short, for GET /api/v1/fleet: rules owned here, takeovers, members found down. */
  fleetOwnership(): { owned: number; total: number; takeovers: number; down: string[] } {
    const f = this.fleet;
    return { owned: f?.owned.size ?? this.installed.compiled.length, total: this.installed.compiled.length, takeovers: f?.takeovers ?? 0, down: f?.down.map((d) => d.member) ?? [] };
  }

  /** Rule ownership as this collector sees it, for GET /api/v1/fleet/rules. */
  fleetRules(): Record<string, unknown> {
    const f = this.fleet;
    const self = f?.members.self();
    return {
      fleet: f !== null,
      self: self ?? null,
      members: f?.members.members() ?? [],
      down: f?.down.map((d) => ({ member: d.member, since: new Date(d.since).toISOString() })) ?? [],
      owned: f?.owned.size ?? this.installed.compiled.length,
      takeovers: f?.takeovers ?? 0,
      lastRoundBytes: f?.lastBytes ?? 0,
      bytes: f === null ? { sent: 0, received: 0 } : { sent: f.peers.traffic.sent, received: f.peers.traffic.received },
      rules: this.installed.compiled.map((c) => {
        const rank = f === null ? [] : f.members.rank(c.key).filter((m) => m === self || f.peers.isUp(m));
        return { name: c.rule.name, type: c.kind === 'alert' ? 'alert' : 'slo', key: c.key, owner: f === null ? (self ?? null) : (rank[0] ?? null), runnerUp: rank[1] ?? null, owned: f === null || f.owned.has(c.key) };
      }),
    };
  }

  // ── state across restarts ──────────────────────────────────────────────────────────────────

  /**
   * Gives each rule the alerts saved for it. After an absence longer than outageTolerance
   * pending alerts start their `for` over (firing ones stay, and resolve if the condition is gone).
   */
  private adoptSaved(groups: ReadonlyMap<string, GroupState>, now: number): void {
    const meta = this.ruleState?.meta;
    const away = meta === undefined ? Infinity : now - meta.lastEvaluation;
    const keepPending = away <= this.config.outageTolerance;
    let adopted = 0;
    for (const u of this.installed.units) {
      const saved = groups.get(u.group)?.units[u.identity];
      if (saved === undefined) continue;
      u.set.restore(saved.filter((a) => keepPending || a.state !== 'pending').map(loadAlert));
      adopted += u.set.alerts.size;
    }
    if (adopted > 0) this.log.info({ alerts: adopted, awayMs: Number.isFinite(away) ? away : null, keptPending: keepPending }, 'alert state restored');
  }

  /** The alerts of one ownership group, as saved and as sent to the runner-up. */
  private groupState(_key: string, units: readonly Unit[], now: number, owner: string): GroupState {
    const out: GroupState = { at: now, owner, units: {} };
    for (const u of units) out.units[u.identity] = [...u.set.alerts.values()].map(saveAlert);
    return out;
  }

  /**
   * Journals this round: the meta, the state of every rule this collector evaluates, and the
   * removal of rules no longer loaded. Replicas of other collectors' rules are left as they are.
   */
  private persist(now: number, owned?: readonly Compiled[]): Promise<void> | undefined {
    const journal = this.ruleState;
    if (journal === null) return undefined;
    const meta: RuleStateMeta = { coveredSince: Number.isFinite(this.coverage.since) ? this.coverage.since : now, lastEvaluation: now };
    const groups: [string, GroupState | null][] = [];
    for (const c of owned ?? this.installed.compiled) groups.push([c.key, this.groupState(c.key, unitsOf(c), now, this.fleet?.members.self() ?? '')]);
    const loaded = new Set(this.installed.compiled.map((c) => c.key));
    for (const key of journal.groups.keys()) if (!loaded.has(key)) groups.push([key, null]);
    return journal.record(meta, groups);
  }

  /**
   * The windows as chunks for the metrics journal's snapshot: taken at the same cut as the
   * metric store, so replaying the journal's later batches brings them up to date.
   */
  windowChunks(): Buffer[] {
    const out: Buffer[] = [];
    for (const [key, store] of this.installed.stores) {
      const state = store.exportState();
      for (let i = 0; i < Math.max(1, state.groups.length); i += GROUPS_PER_CHUNK) {
        const part = { groups: state.groups.slice(i, i + GROUPS_PER_CHUNK), baselines: i === 0 ? state.baselines : [] };
        out.push(Buffer.from(`${WINDOW_CHUNK_PREFIX},"store":${JSON.stringify(key)},"state":${JSON.stringify(part)}}`));
      }
    }
    return out;
  }

  /** Puts back what windowChunks() saved, into the stores of the rules loaded now (others are dropped). */
  restoreWindows(chunks: readonly Buffer[]): void {
    this.windowsRestored = true;
    for (const c of chunks) {
      try {
        const chunk = JSON.parse(c.toString('utf8')) as { store: string; state: StoreState };
        const store = this.installed.stores.get(chunk.store);
        if (store !== undefined) this.windowsCorrupt += store.restoreState(chunk.state);
      } catch {
        this.windowsCorrupt++;
      }
    }
    if (this.windowsCorrupt > 0) this.log.warn({ chunks: this.windowsCorrupt }, 'alert windows: some saved groups could not be read and start empty');
  }

  /** Starts or stops reloading on file changes independently of start()/stop(). */
  startWatching(): void {
    this.watcher?.start();
  }

  stopWatching(): void {
    this.watcher?.stop();
  }

  /** Resolves when every notification queue is empty (tests, graceful shutdown). */
  deliveryIdle(): Promise<void> {
    return this.notifier.idle();
  }

  // ── rules ──────────────────────────────────────────────────────────────────────────────────

  /** Re-reads the rule file. On any error the running rules stay and every error is logged and returned. */
  reload(): Promise<ReloadResult> {
    const file = this.config.rulesFile;
    if (file === undefined) return Promise.resolve({ ok: true, errors: [], rules: this.installed.units.length });
    // One reload at a time; a change during a reload triggers another afterwards.
    const run = async (): Promise<ReloadResult> => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        return this.rejected(file, [`cannot read the rule file (${errorMessage(err)})`]);
      }
      return this.loadRulesText(text, file);
    };
    const next = (this.reloading ?? Promise.resolve()).then(run, run);
    this.reloading = next;
    return next;
  }

  /** Installs rules from YAML text (the rule file's content); keeps the running rules if it has errors. */
  loadRulesText(text: string, source = '<rules>'): ReloadResult {
    const { rules, errors } = parseRules(text, { resolution: this.config.resolution });
    if (errors.length > 0) return this.rejected(source, errors);
    this.install(rules, this.clock());
    this.metrics.reloads.inc({ result: 'success' });
    this.metrics.reloadOk.set(1);
    this.lastReload = { ok: true, at: this.clock(), errors: [] };
    this.log.info({ file: source, rules: this.installed.units.length }, 'alert rules loaded');
    return { ok: true, errors: [], rules: this.installed.units.length };
  }

  private rejected(source: string, errors: string[]): ReloadResult {
    this.metrics.reloads.inc({ result: 'failure' });
    this.metrics.reloadOk.set(0);
    this.lastReload = { ok: false, at: this.clock(), errors };
    this.log.error({ file: source, errors, code: 'PLUMB_ERR_CONFIG_INVALID' }, `alert rule file has ${errors.length} error(s); the previous rules keep running`);
    return { ok: false, errors, rules: this.installed.units.length };
  }

  private install(rules: Rule[], now: number): void {
    const old = this.installed;
    const stores = new Map<string, SeriesStore>();
    const windows = new Map<string, number[]>();
    const resolution = this.config.resolution;
    const store = (spec: StoreSpec, read: readonly number[]): SeriesStore => {
      const key = storeKey(spec);
      let s = stores.get(key);
      if (s === undefined) {
        s = old.stores.get(key) ?? new SeriesStore(spec, read, resolution, this.seriesBudget);
        stores.set(key, s);
        windows.set(key, []);
      }
      windows.get(key)!.push(...read);
      return s;
    };
    const metricSpec = (ref: MetricRef, by: readonly string[] | undefined, sketches: boolean, goodAtOrBelow = NaN): StoreSpec => ({
      names: metricNames(ref.metric),
      matchers: ref.where,
      logMatch: undefined,
      logField: '',
      isLog: false,
      by,
      sketches,
      goodAtOrBelow,
    });

    const compiled: Compiled[] = [];
    const units: Unit[] = [];
    const occurrences = new Map<string, number>();
    for (const rule of rules) {
      if (rule.type === 'alert') {
        const sketches = rule.aggregate.kind === 'quantile';
        const src = rule.source;
        // A reading counts until it is stale, as on /metrics: `last` looks back over the TTL
        // (one finest bucket more, then the reading's own time decides).
        const window = rule.aggregate.kind === 'last' ? this.staleAfter + resolution : rule.window;
        let main: SeriesStore | undefined;
        let numerator: SeriesStore | undefined;
        let denominator: SeriesStore | undefined;
        if (src.kind === 'metric') main = store(metricSpec(src.ref, rule.by, sketches), [window]);
        else if (src.kind === 'ratio') {
          numerator = store(metricSpec(src.numerator, rule.by, sketches), [window]);
          denominator = store(metricSpec(src.denominator, rule.by, sketches), [window]);
        } else if (src.kind === 'logs') {
          main = store({ names: [], matchers: src.ref.where, logMatch: src.ref.match, logField: src.ref.field, isLog: true, by: rule.by ?? [], sketches: false, goodAtOrBelow: NaN }, [window]);
        }
        const base = `alert\u0000${rule.name}\u0000${rule.identity}`;
        const n = occurrences.get(base) ?? 0;
        occurrences.set(base, n + 1);
        const identity = `${base}\u0000${n}`;
        const key = groupKey(identity);
        // Missing data makes these fire: absent, and "too few" comparisons of counts and sums.
        const missingFires = rule.absent || ((rule.op === '<' || rule.op === '<=') && ADDITIVE.has(rule.aggregate.kind));
        const unit = new Unit({
          name: rule.name,
          rule: rule.name,
          identity,
          group: key,
          grace: missingFires ? (rule.aggregate.kind === 'last' ? this.staleAfter : rule.window) : 0,
          query: rule.query,
          for: rule.for,
          keepFiringFor: rule.keepFiringFor,
          labels: rule.labels,
          annotations: rule.annotations,
          budget: this.alertBudget,
        });
        units.push(unit);
        compiled.push({ kind: 'alert', key, rule, window, unit, main, numerator, denominator });
      } else {
        const ind = rule.indicator;
        const sloWindows = [...new Set([rule.period, ...rule.burnAlerts.flatMap((b) => [b.long, b.short])])].sort((a, b) => a - b);
        const stores: SloEval['stores'] = {};
        if (ind.kind === 'latency') stores.latency = store(metricSpec(ind.ref, rule.by, false, ind.threshold), sloWindows);
        else {
          if (ind.good) stores.good = store(metricSpec(ind.good, rule.by, false), sloWindows);
          if (ind.bad) stores.bad = store(metricSpec(ind.bad, rule.by, false), sloWindows);
          stores.total = store(metricSpec(ind.total, rule.by, false), sloWindows);
        }
        const annotations: TemplateMap =
          rule.annotations.size > 0
            ? rule.annotations
            : new Map([
                ['summary', compileTemplate(`SLO {{ $labels.slo }} is burning its error budget {{ $value }}x too fast over {{ $labels.window }}`)],
                ['description', compileTemplate(`Objective ${rule.objective}% over ${formatWindow(rule.period)}: a burn rate of 1 spends exactly the period's error budget.`)],
              ]);
        const key = groupKey(`slo\u0000${rule.name}\u0000${rule.identity}`);
        const burns = rule.burnAlerts.map((b) => {
          const window = formatWindow(b.long);
          const by = rule.by.length > 0 ? ` by (${rule.by.join(', ')})` : '';
          return {
            alert: b,
            unit: new Unit({
              name: rule.alertName,
              rule: rule.name,
              slo: rule.name,
              identity: `slo\u0000${rule.name}\u0000${rule.identity}\u0000${b.severity}\u0000${b.long}\u0000${b.short}\u0000${b.factor}`,
              query: `burn_rate${by}(${rule.name}[${window}]) > ${b.factor} and burn_rate${by}(${rule.name}[${formatWindow(b.short)}]) > ${b.factor}`,
              for: b.for,
              keepFiringFor: 0,
              labels: rule.labels,
              annotations,
              fixed: { slo: rule.name, severity: b.severity, window },
              budget: this.alertBudget,
              group: key,
            }),
          };
        });
        for (const b of burns) units.push(b.unit);
        compiled.push({ kind: 'slo', key, rule, burns, stores, windows: sloWindows, view: { name: rule.name, objective: rule.objective, period: rule.period, budgetRemaining: [], burnRates: [] } });
      }
    }

    // Alert state carries over to units whose definition did not change.
    const oldUnits = new Map(old.units.map((u) => [u.identity, u]));
    for (const u of units) {
      const prev = oldUnits.get(u.identity);
      if (prev === undefined) continue;
      u.set.adopt(prev.set);
      u.health = prev.health;
      u.lastError = prev.lastError;
      u.lastEvaluation = prev.lastEvaluation;
      u.evaluationTime = prev.evaluationTime;
      u.nodata = prev.nodata;
      oldUnits.delete(u.identity);
    }
    // Alerts of removed rules resolve now, so receivers are not left with ghosts.
    const ended: AlertNotice[] = [];
    for (const u of oldUnits.values()) {
      for (const a of u.set.alerts.values()) if (a.state === 'firing') ended.push(this.notice(a, 'resolved', now));
      u.set.dispose();
    }
    this.deliver(ended, ended);

    for (const [key, s] of stores) s.setWindows(windows.get(key)!);
    for (const [key, s] of old.stores) if (!stores.has(key)) s.dispose();
    const byName = new Map<string, SeriesStore[]>();
    const logStores: SeriesStore[] = [];
    for (const s of stores.values()) {
      if (s.spec.isLog) logStores.push(s);
      for (const name of s.spec.names) {
        const list = byName.get(name);
        if (list === undefined) byName.set(name, [s]);
        else list.push(s);
      }
    }
    this.installed = { compiled, units, stores, byName, logStores };
  }

  // ── observations ───────────────────────────────────────────────────────────────────────────

  /** One series of an agent batch: counters as increments, gauges and sets as values, timers as sketches. */
  /** Whether any rule reads this metric (by statsd or mapped name); lets callers skip building observations. */
  wantsMetric(statsdName: string, name: string): boolean {
    const byName = this.installed.byName;
    return byName.size > 0 && (byName.has(statsdName) || byName.has(name));
  }

  observeMetric(o: MetricObservation, now: number): void {
    const byName = this.installed.byName;
    if (byName.size === 0) return;
    const first = byName.get(o.statsdName);
    if (first !== undefined) for (const s of first) s.observeMetric(o, now);
    if (o.name === o.statsdName) return;
    const second = byName.get(o.name);
    if (second !== undefined) for (const s of second) if (first === undefined || !first.includes(s)) s.observeMetric(o, now);
  }

  /** A cumulative counter reading (total since the source started); a drop in the total is taken as a restart from zero. */
  observeCumulative(o: CumulativeObservation, now: number): void {
    const byName = this.installed.byName;
    if (byName.size === 0) return;
    const first = o.statsdName === undefined ? undefined : byName.get(o.statsdName);
    if (first !== undefined) for (const s of first) s.observeCumulative(o, now);
    if (o.name === o.statsdName) return;
    const second = byName.get(o.name);
    if (second !== undefined) for (const s of second) if (first === undefined || !first.includes(s)) s.observeCumulative(o, now);
  }

  /** Some rule counts log events: the ingest only hands events over when one does. */
  get observesLogs(): boolean {
    return this.installed.logStores.length > 0;
  }

  /** A log event seen by the collector (fields such as level, message, host). */
  observeLog(event: Record<string, unknown>, now: number): void {
    const stores = this.installed.logStores;
    if (stores.length === 0) return;
    const get = (field: string): string => fieldText(event, field);
    for (const s of stores) {
      const by = s.spec.by ?? [];
      s.observeLog(get, () => Object.fromEntries(by.map((f) => [f, get(f)])), now);
    }
  }

  // ── evaluation ─────────────────────────────────────────────────────────────────────────────

  /** One evaluation round of every rule at time `now`. Synchronous; never throws. */
  evaluate(now: number = this.clock()): void {
    const started = performance.now();
    const memo = new Map<string, GroupSummary[]>();
    const summaries = (s: SeriesStore, window: number, sketch: boolean): GroupSummary[] => {
      const key = wantKey(s.key, window, sketch);
      let v = memo.get(key);
      if (v === undefined) {
        v = s.summarize(now, window, sketch);
        memo.set(key, v);
      }
      return v;
    };
    const webhook = this.evaluateRules(this.installed.compiled, now, summaries);
    const resend = this.resends(this.installed.units, now);
    const written = this.persist(now);
    // a notification goes out once the state that says it was sent is on disk
    if (written === undefined) this.deliver(resend, webhook);
    else void written.then(() => this.deliver(resend, webhook));
    this.endRound(now, started);
  }

  private endRound(now: number, started: number): void {
    for (const s of this.installed.stores.values()) s.sweep(now);
    this.lastEvaluation = now;
    this.lastEvaluationSeconds = (performance.now() - started) / 1000;
    this.metrics.evaluations.inc();
    this.metrics.duration.observe(this.lastEvaluationSeconds);
  }

  /** Firing and freshly resolved alerts of `units` due for (re)sending to Alertmanager. */
  private resends(units: Iterable<Unit>, now: number): AlertNotice[] {
    const resend: AlertNotice[] = [];
    if (this.notifier.hasAlertmanager) {
      const validFor = 4 * Math.max(this.config.resendInterval, this.config.evaluationInterval);
      for (const u of units) {
        for (const a of u.set.due(now, this.config.resendInterval, validFor)) resend.push(this.notice(a, a.state === 'firing' ? 'firing' : 'resolved', now));
      }
    }
    return resend;
  }

  /** Evaluates `compiled` at `now` over `summaries`; returns the state changes for the webhooks. */
  private evaluateRules(compiled: readonly Compiled[], now: number, summaries: Summaries): AlertNotice[] {
    const webhook: AlertNotice[] = [];
    for (const c of compiled) {
      const t0 = performance.now();
      try {
        if (c.kind === 'alert') this.evaluateThreshold(c, now, summaries, webhook);
        else this.evaluateSlo(c, now, summaries, webhook);
      } catch (err) {
        // Not expected; one rule's bug must not stop the others.
        this.metrics.failures.inc();
        this.logOnce.warn(`crash:${c.rule.name}`, { rule: c.rule.name, err: errorMessage(err) }, 'alert rule evaluation failed unexpectedly');
      }
      const seconds = (performance.now() - t0) / 1000;
      if (c.kind === 'alert') c.unit.evaluationTime = seconds;
      else for (const b of c.burns) b.unit.evaluationTime = seconds;
    }
    return webhook;
  }

  /** Each group's value of a threshold rule at `now` (before the comparison). */
  private ruleValues(c: ThresholdEval, now: number, summaries: Summaries): RuleValues {
    const { rule, window } = c;
    const values: { labels: Readonly<Record<string, string>>; value: number }[] = [];
    const sketch = rule.aggregate.kind === 'quantile';
    // `last`: a group whose newest reading is older than the staleness TTL has no value, as on /metrics.
    const fresh = rule.aggregate.kind === 'last' ? (g: GroupSummary) => g.summary.lastAt >= now - this.staleAfter : () => true;
    if (rule.source.kind === 'patterns') {
      const table = this.roundPatterns ?? this.patterns;
      if (table === null) return { values, hadData: false, error: 'log pattern mining is off (collector.patterns.enabled)' };
      values.push(...patternValues(table, rule.source.ref, window, now));
      return { values, hadData: values.length > 0, error: undefined };
    }
    if (c.main !== undefined) {
      const groups = summaries(c.main, window, sketch).filter(fresh);
      for (const g of groups) {
        const r = aggregate(rule.aggregate, g.summary, window);
        if (!r.ok) return { values, hadData: true, error: r.error };
        values.push({ labels: g.labels, value: r.value });
      }
      return { values, hadData: groups.length > 0, error: undefined };
    }
    const numerators = new Map(summaries(c.numerator!, window, sketch).filter(fresh).map((g) => [g.key, g.summary]));
    const denominators = summaries(c.denominator!, window, sketch).filter(fresh);
    const additive = ADDITIVE.has(rule.aggregate.kind);
    for (const g of denominators) {
      const d = aggregate(rule.aggregate, g.summary, window);
      if (!d.ok) return { values, hadData: true, error: `denominator: ${d.error}` };
      const ns = numerators.get(g.key);
      let n: number;
      if (ns !== undefined) {
        const r = aggregate(rule.aggregate, ns, window);
        if (!r.ok) return { values, hadData: true, error: `numerator: ${r.error}` };
        n = r.value;
      } else if (additive) {
        n = 0; // the numerator counted nothing where the denominator counted something
      } else continue;
      if (d.value !== 0) values.push({ labels: g.labels, value: n / d.value });
    }
    return { values, hadData: denominators.length > 0, error: undefined };
  }

  private evaluateThreshold(c: ThresholdEval, now: number, summaries: Summaries, webhook: AlertNotice[]): void {
    const { rule } = c;
    let result: RuleValues;
    try {
      result = this.ruleValues(c, now, summaries);
    } catch (err) {
      result = { values: [], hadData: false, error: errorMessage(err) };
    }
    const samples: Sample[] = [];
    if (rule.op !== undefined && rule.threshold !== undefined) {
      for (const v of result.values) if (!Number.isNaN(v.value) && compare(rule.op, v.value, rule.threshold)) samples.push(v);
    }
    if (rule.absent && !result.hadData) samples.push({ labels: this.absentLabels(rule), value: undefined });
    if (this.inGrace(c.unit, now)) {
      // Missing data would make it fire, and the window reaches back before what this
      // collector has seen: its alerts stay as they are until the window is covered.
      c.unit.lastEvaluation = now;
      c.unit.nodata = !result.hadData;
      if (result.error === undefined) {
        c.unit.health = 'ok';
        c.unit.lastError = '';
      }
      return;
    }
    this.advance(c.unit, now, result.error, !result.hadData, samples, webhook);
  }

  /** Whether the unit waits for its window to be covered; sets its `waiting` reason. */
  private inGrace(unit: Unit, now: number): boolean {
    const until = unit.grace === 0 ? -Infinity : this.readyAt(unit.grace);
    if (now >= until) {
      unit.waiting = undefined;
      unit.graceUntil = undefined;
      return false;
    }
    unit.graceUntil = until;
    const c = this.coverage;
    const lost = this.fleet?.down.find((d) => d.since + unit.grace > now);
    const why =
      lost !== undefined
        ? `collector ${lost.member} stopped answering at ${new Date(lost.since).toISOString()}, and its series must be covered again by the others`
        : c.since + unit.grace > now || this.fleet !== null
          ? `its ${formatWindow(unit.grace)} window reaches back before the data the collectors have seen (this one since ${new Date(c.since).toISOString()})`
          : `the collector was away for ${formatDuration(c.bridge)} until ${new Date(c.resumedAt).toISOString()} and agents are still delivering what they held meanwhile`;
    unit.waiting = `start-up grace: missing data makes this rule fire, and ${why}; it is evaluated from ${new Date(until).toISOString()} on`;
    return true;
  }

  private absentLabels(rule: ThresholdRule): Record<string, string> {
    const src = rule.source;
    const matchers: readonly Matcher[] = src.kind === 'ratio' ? src.denominator.where : src.ref.where;
    const labels = equalityLabels(matchers);
    if (rule.by === undefined) return labels;
    return Object.fromEntries(Object.entries(labels).filter(([k]) => rule.by!.includes(k)));
  }

  private evaluateSlo(c: SloEval, now: number, summaries: Summaries, webhook: AlertNotice[]): void {
    const { rule } = c;
    let error: string | undefined;
    const perWindow = new Map<number, Map<string, GroupCounts>>();
    try {
      for (const w of c.windows) {
        const parts = {
          good: c.stores.good && summaries(c.stores.good, w, false),
          bad: c.stores.bad && summaries(c.stores.bad, w, false),
          total: c.stores.total && summaries(c.stores.total, w, false),
          latency: c.stores.latency && summaries(c.stores.latency, w, false),
        };
        perWindow.set(w, new Map(indicatorCounts(rule.indicator, parts).map((g) => [g.key, g])));
      }
    } catch (err) {
      error = errorMessage(err);
    }
    const period = perWindow.get(rule.period) ?? new Map<string, GroupCounts>();
    const burnWindows = [...new Set(rule.burnAlerts.flatMap((b) => [b.long, b.short]))].sort((a, b) => a - b);
    c.view = {
      name: rule.name,
      objective: rule.objective,
      period: rule.period,
      budgetRemaining: [...period.values()].map((g) => ({ labels: g.labels, value: budgetRemaining(g.counts, rule.budget) })),
      burnRates: burnWindows.flatMap((w) => [...(perWindow.get(w)?.values() ?? [])].map((g) => ({ labels: g.labels, window: formatWindow(w), value: burnRate(g.counts, rule.budget) }))),
    };
    for (const { alert, unit } of c.burns) {
      const samples: Sample[] = [];
      const long = perWindow.get(alert.long);
      const short = perWindow.get(alert.short);
      if (error === undefined && long !== undefined && short !== undefined) {
        for (const [key, g] of long) {
          const s = short.get(key);
          if (s === undefined) continue;
          const l = burnRate(g.counts, rule.budget);
          if (l > alert.factor && burnRate(s.counts, rule.budget) > alert.factor) samples.push({ labels: g.labels, value: l });
        }
      }
      this.advance(unit, now, error, long === undefined || long.size === 0, samples, webhook);
    }
  }

  private advance(unit: Unit, now: number, error: string | undefined, nodata: boolean, samples: Sample[], webhook: AlertNotice[]): void {
    unit.lastEvaluation = now;
    if (error !== undefined) {
      // A failed evaluation leaves the alerts as they were: no data is not the same as "fine".
      unit.health = 'err';
      unit.lastError = error;
      this.metrics.failures.inc();
      this.logOnce.warn(`eval:${unit.identity}:${error}`, { rule: unit.rule, alertname: unit.name, err: error }, 'alert rule evaluation failed');
      return;
    }
    unit.health = 'ok';
    unit.lastError = '';
    unit.nodata = nodata;
    let transitions: Transition[];
    try {
      transitions = unit.set.update(now, samples, unit.for, unit.keepFiringFor, (s) => unit.render(s));
    } catch (err) {
      unit.health = 'err';
      unit.lastError = errorMessage(err);
      this.metrics.failures.inc();
      return;
    }
    for (const t of transitions) webhook.push(this.notice(t.alert, t.to, now));
  }

  private notice(a: Alert, status: 'firing' | 'resolved', now: number): AlertNotice {
    return {
      status,
      labels: a.labels,
      annotations: a.annotations,
      startsAt: a.firedAt ?? a.activeAt,
      endsAt: status === 'resolved' ? (a.resolvedAt ?? now) : a.validUntil,
      generatorURL: `${this.config.externalUrl.replace(/\/+$/, '')}/api/v1/rules#${encodeURIComponent(a.labels.alertname ?? '')}`,
      value: a.value,
    };
  }

  private deliver(alertmanager: AlertNotice[], webhooks: AlertNotice[]): void {
    this.notifier.toAlertmanager(alertmanager);
    this.notifier.toWebhooks(webhooks, this.config.externalUrl);
  }

  // ── exposition ─────────────────────────────────────────────────────────────────────────────

  private get sloViews(): SloView[] {
    return this.installed.compiled.filter((c): c is SloEval => c.kind === 'slo').map((c) => c.view);
  }

  /** Each SLO's budget and burn rates as of the last evaluation (the console samples them into a history). */
  slos(): readonly SloView[] {
    return this.sloViews;
  }

  /**
   * Prometheus text for the collector's /metrics page: ALERTS, ALERTS_FOR_STATE,
   * plumb_slo_error_budget_remaining and plumb_slo_burn_rate, with # HELP and # TYPE lines.
   * Values are those of the last evaluation.
   */
  metricsText(): string {
    return renderMetrics(this.installed.units, this.sloViews);
  }

  /** Body of GET /api/v1/alerts (Prometheus' shape): pending and firing alerts. */
  alertsJSON(): ReturnType<typeof alertsJSON> {
    return alertsJSON(this.installed.units);
  }

  /** Body of GET /api/v1/rules (Prometheus' shape) plus the SLOs' budgets and burn rates. */
  rulesJSON(): Record<string, unknown> {
    const body = rulesJSON(
      {
        name: 'plumb',
        file: this.config.rulesFile ?? '',
        interval: this.config.evaluationInterval,
        lastEvaluation: this.lastEvaluation,
        evaluationTime: this.lastEvaluationSeconds,
      },
      this.installed.units,
      this.sloViews,
    );
    (body.data as Record<string, unknown>).lastReload = {
      ok: this.lastReload.ok,
      at: this.lastReload.at === undefined ? null : new Date(this.lastReload.at).toISOString(),
      errors: this.lastReload.errors,
    };
    return body;
  }

  /** Each group's current value of the named threshold rule (debugging, tests); empty if no such rule. */
  values(ruleName: string, now: number = this.clock()): { labels: Record<string, string>; value: number }[] {
    const c = this.installed.compiled.find((x): x is ThresholdEval => x.kind === 'alert' && x.rule.name === ruleName);
    if (c === undefined) return [];
    const r = this.ruleValues(c, now, (s, w, sketch) => s.summarize(now, w, sketch));
    if (r.error !== undefined) throw new Error(r.error);
    return r.values.map((v) => ({ labels: { ...v.labels }, value: v.value }));
  }
}
