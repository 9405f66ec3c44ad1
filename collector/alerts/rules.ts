/**
 * The rule file: YAML in, typed rules out. Validation walks every rule and reports every mistake
 * at once, each line naming the rule (its name, its index and line) and the key, so an operator
 * can fix a file in one pass. The format is described in config/rules/README.md.
 */
import { readFileSync } from 'node:fs';
import YAML, { LineCounter, isMap, isScalar, isSeq } from 'yaml';
import { formatDuration, parseDuration } from '../../shared/units.ts';
import { formatMatchers, parseMatcher, type Matcher } from './matchers.ts';
import { compileTemplate, type Template } from './template.ts';
import { suggest } from '../../shared/config.ts';

export type CompareOp = '>' | '>=' | '<' | '<=' | '==' | '!=';
export type AggregateKind = 'avg' | 'min' | 'max' | 'sum' | 'count' | 'rate' | 'increase' | 'last' | 'quantile';

export interface Aggregate {
  /** As written: "p99", "rate". */
  readonly name: string;
  readonly kind: AggregateKind;
  /** The quantile for kind "quantile" (p99 → 0.99, p999 → 0.999); NaN otherwise. */
  readonly q: number;
}

export interface MetricRef {
  /** statsd name or mapped Prometheus name, as written. */
  readonly metric: string;
  readonly where: readonly Matcher[];
}

export interface LogRef {
  readonly where: readonly Matcher[];
  /** Tested (unanchored) against `field` of each event. */
  readonly match: RegExp | undefined;
  readonly field: string;
}

/**
 * A rule over the collector's log patterns (collector/patterns). Each template of a source the
 * matchers select (labels `source`, `pattern_id`) is a group:
 * - `new`: the template was first seen within the window (after the miner's own first window);
 *   the value is its events since.
 * - `spike`: its events per minute over the window divided by those over the `baseline` before
 *   the window (at least one event's worth, so a quiet pattern is not divided by 0); templates
 *   with fewer than `minEvents` in the window, or first seen within the window + baseline, are left out.
 */
export interface PatternRef {
  readonly where: readonly Matcher[];
  readonly signal: 'new' | 'spike';
  readonly baseline: number;
  readonly minEvents: number;
}

export type Source =
  | { readonly kind: 'metric'; readonly ref: MetricRef }
  | { readonly kind: 'ratio'; readonly numerator: MetricRef; readonly denominator: MetricRef }
  | { readonly kind: 'logs'; readonly ref: LogRef }
  | { readonly kind: 'patterns'; readonly ref: PatternRef };

export type TemplateMap = ReadonlyMap<string, Template>;

interface RuleCommon {
  /** Position in the file, for messages and stable ordering. */
  readonly index: number;
  readonly line: number | undefined;
  readonly name: string;
  /** Equal identities across a reload carry alert state over (pending timers keep running). */
  readonly identity: string;
  /** Labels to group by; undefined means every label of the series. */
  readonly by: readonly string[] | undefined;
  readonly labels: TemplateMap;
  readonly annotations: TemplateMap;
}

export interface ThresholdRule extends RuleCommon {
  readonly type: 'alert';
  readonly source: Source;
  readonly aggregate: Aggregate;
  readonly window: number;
  readonly op: CompareOp | undefined;
  readonly threshold: number | undefined;
  /** Fire when the rule's metric has no data at all in the window. */
  readonly absent: boolean;
  readonly for: number;
  readonly keepFiringFor: number;
  /** Human-readable expression for the rules API. */
  readonly query: string;
}

export interface BurnAlert {
  readonly severity: string;
  readonly long: number;
  readonly short: number;
  readonly factor: number;
  readonly for: number;
}

export type Indicator =
  | { readonly kind: 'events'; readonly good: MetricRef | undefined; readonly bad: MetricRef | undefined; readonly total: MetricRef }
  | { readonly kind: 'latency'; readonly ref: MetricRef; readonly threshold: number };

export interface SloRule extends RuleCommon {
  readonly type: 'slo';
  /** Labels to group by; an SLO sums all its series unless told otherwise. */
  readonly by: readonly string[];
  /** Percent, e.g. 99.9. */
  readonly objective: number;
  /** The error budget as a fraction of events: 1 − objective/100. */
  readonly budget: number;
  readonly period: number;
  readonly indicator: Indicator;
  /** alertname of the burn-rate alerts. */
  readonly alertName: string;
  readonly burnAlerts: readonly BurnAlert[];
}

export type Rule = ThresholdRule | SloRule;

export interface ParseResult {
  rules: Rule[];
  /** Every problem found; the rules are only usable when this is empty. */
  errors: string[];
}

export interface ParseOptions {
  /** Finest bucket width: no window may be shorter. */
  resolution: number;
}

/** The longest window or SLO period a rule may use. */
export const MAX_WINDOW = 90 * 86_400_000;

/** The multiwindow, multi-burn-rate alerts of the SRE workbook for a 30-day budget. */
export const DEFAULT_BURN_ALERTS: readonly BurnAlert[] = [
  { severity: 'page', long: 3_600_000, short: 300_000, factor: 14.4, for: 0 },
  { severity: 'page', long: 6 * 3_600_000, short: 1_800_000, factor: 6, for: 0 },
  { severity: 'ticket', long: 3 * 86_400_000, short: 6 * 3_600_000, factor: 1, for: 0 },
];

const OPS: readonly CompareOp[] = ['>', '>=', '<', '<=', '==', '!='];
const PLAIN_AGGREGATES = ['avg', 'min', 'max', 'sum', 'count', 'rate', 'increase', 'last'] as const;
const LOG_AGGREGATES = ['count', 'rate', 'increase'];
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const ALERT_KEYS = ['alert', 'metric', 'where', 'ratio', 'logs', 'patterns', 'aggregate', 'window', 'op', 'threshold', 'for', 'keepFiringFor', 'labels', 'annotations', 'by', 'absent'];
const SLO_KEYS = ['slo', 'objective', 'period', 'good', 'bad', 'total', 'latency', 'by', 'alert', 'alerts', 'labels', 'annotations'];
const REF_KEYS = ['metric', 'where'];
const LOG_KEYS = ['where', 'match', 'field'];
const PATTERN_KEYS = ['new', 'spike', 'where'];
const SPIKE_KEYS = ['baseline', 'minEvents'];
/** Minutes of per-pattern counts the miner keeps (collector/patterns/miner.ts RATE_MINUTES). */
const PATTERN_HISTORY = 72 * 60_000;
const LATENCY_KEYS = ['metric', 'where', 'threshold'];
const BURN_KEYS = ['severity', 'long', 'short', 'burnRate', 'for'];

export function parseAggregate(text: string): Aggregate | undefined {
  if ((PLAIN_AGGREGATES as readonly string[]).includes(text)) return { name: text, kind: text as AggregateKind, q: NaN };
  const m = /^p(\d{2,4})$/.exec(text);
  if (m && !/^0+$/.test(m[1])) return { name: text, kind: 'quantile', q: Number(`0.${m[1]}`) };
  return undefined;
}

/** Parses and validates a rule file's text. Never throws. */
/** Reads and checks a rule file for `plumb check-config`; every error, each prefixed with the file. */
export function checkRulesFile(file: string, options: ParseOptions): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return [`collector.alerts.rulesFile: cannot read ${file} (${(err as Error).message})`];
  }
  return parseRules(text, options).errors.map((e) => `${file}: ${e}`);
}

export function parseRules(text: string, options: ParseOptions): ParseResult {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) return { rules: [], errors: doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`) };
  const root: unknown = doc.toJS();
  const errors: string[] = [];
  if (root === null || root === undefined) return { rules: [], errors };
  if (!isObject(root)) return { rules: [], errors: ['the top level must be a mapping with a "rules:" list'] };
  for (const key of Object.keys(root)) if (key !== 'rules') errors.push(`${key}: unknown key${hint(key, ['rules'])}`);
  const list = root.rules;
  if (list === undefined || list === null) return { rules: [], errors };
  if (!Array.isArray(list)) return { rules: [], errors: [...errors, 'rules: expected a list of rules'] };

  const rulesNode = doc.get('rules', true);
  const lineAt = (node: unknown): number | undefined => {
    const offset = isMap(node) || isSeq(node) || isScalar(node) ? node.range?.[0] : undefined;
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
  };
  /** The line of a rule's key ("patterns.spike.baseline"), or of the rule when the key is not written. */
  const lineOf = (i: number, key: string): number | undefined => {
    const item = isSeq(rulesNode) ? rulesNode.items[i] : undefined;
    if (!isMap(item)) return lineAt(item);
    let node: unknown = item;
    let keyNode: unknown;
    for (const part of key.split(/\.|\[(\d+)\]/).filter((p) => p !== undefined && p !== '')) {
      if (isSeq(node) && /^\d+$/.test(part)) {
        node = node.items[Number(part)];
        keyNode = node;
        continue;
      }
      if (!isMap(node)) break;
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === part);
      if (pair === undefined) break;
      keyNode = pair.key;
      node = pair.value;
    }
    return lineAt(keyNode) ?? lineAt(item);
  };

  const rules: Rule[] = [];
  const sloNames = new Map<string, number>();
  list.forEach((raw: unknown, i: number) => {
    const c = new Checker(errors, i, (key) => lineOf(i, key), raw, options);
    const rule = c.rule();
    if (rule === undefined) return;
    if (rule.type === 'slo') {
      const seen = sloNames.get(rule.name);
      if (seen !== undefined) {
        c.error('slo', `duplicate SLO name (also rules[${seen}]); SLO names label their metrics and must be unique`);
        return;
      }
      sloNames.set(rule.name, i);
    }
    if (c.ok) rules.push(rule);
  });
  return { rules: errors.length === 0 ? rules : [], errors };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Validates one rule, appending each problem to the shared error list. */
class Checker {
  private readonly errors: string[];
  private readonly index: number;
  private readonly lineOf: (key: string) => number | undefined;
  private readonly raw: unknown;
  private readonly options: ParseOptions;
  private name: string | undefined;
  private count = 0;

  constructor(errors: string[], index: number, lineOf: (key: string) => number | undefined, raw: unknown, options: ParseOptions) {
    this.errors = errors;
    this.index = index;
    this.lineOf = lineOf;
    this.raw = raw;
    this.options = options;
  }

  get ok(): boolean {
    return this.count === 0;
  }

  /** `rule "A" (rules[0], line 6)`: the line is the key's when it is written, else the rule's. */
  private describe(key: string): string {
    const line = this.lineOf(key);
    const where = `rules[${this.index}]${line !== undefined ? `, line ${line}` : ''}`;
    return this.name === undefined ? where : `rule "${this.name}" (${where})`;
  }

  error(key: string, message: string): void {
    this.count++;
    this.errors.push(`${this.describe(key)}: ${key === '' ? '' : `${key}: `}${message}`);
  }

  rule(): Rule | undefined {
    const raw = this.raw;
    if (!isObject(raw)) {
      this.error('', 'expected a mapping with "alert:" or "slo:"');
      return undefined;
    }
    const isAlert = 'alert' in raw && !('slo' in raw);
    const isSlo = 'slo' in raw;
    if (!isAlert && !isSlo) {
      this.error('', 'each rule needs "alert: <name>" (a threshold rule) or "slo: <name>" (a service level objective)');
      return undefined;
    }
    const nameKey = isSlo ? 'slo' : 'alert';
    const name = raw[nameKey];
    if (typeof name === 'string' && name.trim() !== '') this.name = name;
    else this.error(nameKey, 'expected a non-empty name');
    const allowed = isSlo ? SLO_KEYS : ALERT_KEYS;
    for (const key of Object.keys(raw)) if (!allowed.includes(key)) this.error(key, `unknown key${hint(key, allowed)}`);
    const n = typeof name === 'string' ? name : '';
    return isSlo ? this.slo(raw, n) : this.alert(raw, n);
  }

  private alert(raw: Record<string, unknown>, name: string): ThresholdRule | undefined {
    const sources = (['metric', 'ratio', 'logs', 'patterns'] as const).filter((k) => raw[k] !== undefined);
    if (sources.length !== 1) {
      this.error(sources.length === 0 ? 'metric' : sources[1], sources.length === 0 ? 'missing: name the data with "metric:", "ratio:", "logs:" or "patterns:"' : `use only one of "metric", "ratio", "logs" and "patterns"`);
    }
    const kind = sources[0] ?? 'metric';
    let source: Source | undefined;
    if (sources.length === 0) {
      // reported above
    } else if (kind === 'metric') {
      const metric = this.metricName(raw.metric, 'metric');
      const where = this.where(raw.where, 'where');
      if (metric !== undefined) source = { kind: 'metric', ref: { metric, where } };
    } else {
      if (raw.where !== undefined) this.error('where', `belongs inside "${kind}:" for a ${kind} rule`);
      source = kind === 'ratio' ? this.ratio(raw.ratio) : kind === 'logs' ? this.logs(raw.logs) : this.patterns(raw.patterns);
    }
    if (kind === 'patterns') {
      // the value is the pattern's own (events, or the spike factor): no aggregate; op and
      // threshold default to "> 0" for new patterns and "> 3" for spikes
      if (raw.aggregate !== undefined) this.error('aggregate', 'a patterns rule has no aggregate: its value is the new pattern\'s events or the spike factor');
      if (raw.absent !== undefined) this.error('absent', 'a patterns rule cannot fire on absent data');
      raw = { ...raw, aggregate: 'count', op: raw.op ?? '>', threshold: raw.threshold ?? (source?.kind === 'patterns' && source.ref.signal === 'spike' ? 3 : 0) };
      delete raw.absent;
    }

    const defaultAggregate = kind === 'metric' ? undefined : kind === 'ratio' ? 'increase' : 'count';
    let aggregate: Aggregate | undefined;
    if (raw.aggregate === undefined) {
      if (defaultAggregate === undefined) this.error('aggregate', 'missing: one of avg, min, max, sum, count, rate, increase, last, p50 … p999');
      else aggregate = parseAggregate(defaultAggregate);
    } else if (typeof raw.aggregate !== 'string' || parseAggregate(raw.aggregate) === undefined) {
      this.error('aggregate', `expected one of avg, min, max, sum, count, rate, increase, last or a percentile like p50, p99, p999 (got ${show(raw.aggregate)})`);
    } else {
      aggregate = parseAggregate(raw.aggregate);
      if (kind === 'logs' && !LOG_AGGREGATES.includes(aggregate!.kind)) {
        this.error('aggregate', `a logs rule counts events: use count, rate or increase (got ${show(raw.aggregate)})`);
      }
    }

    const window = this.duration(raw.window, 'window', { required: true, min: this.options.resolution, max: MAX_WINDOW });
    if (source?.kind === 'patterns' && source.ref.signal === 'spike' && window !== undefined && window + source.ref.baseline > PATTERN_HISTORY) {
      this.error('window', `window + patterns.spike.baseline may span at most ${formatWindow(PATTERN_HISTORY)} (the per-minute counts a pattern keeps)`);
    }
    const absent = this.boolean(raw.absent, 'absent') ?? false;
    let op: CompareOp | undefined;
    let threshold: number | undefined;
    const together = 'missing: give "op" and "threshold" together, or neither for a rule that only fires on absent data';
    if (raw.op === undefined && raw.threshold === undefined) {
      if (!absent) {
        this.error('op', `missing: one of ${OPS.join(' ')}`);
        this.error('threshold', 'missing: the number the aggregate is compared with');
      }
    } else {
      if (raw.op === undefined) this.error('op', absent ? together : `missing: one of ${OPS.join(' ')}`);
      else if (!OPS.includes(raw.op as CompareOp)) this.error('op', `expected one of ${OPS.join(' ')} (got ${show(raw.op)})`);
      else op = raw.op as CompareOp;
      if (raw.threshold === undefined) this.error('threshold', absent ? together : 'missing: the number the aggregate is compared with');
      else if (typeof raw.threshold !== 'number' || !Number.isFinite(raw.threshold)) this.error('threshold', `expected a number (got ${show(raw.threshold)})`);
      else threshold = raw.threshold;
    }
    const forMs = this.duration(raw.for, 'for', { min: 0 }) ?? 0;
    const keepFiringFor = this.duration(raw.keepFiringFor, 'keepFiringFor', { min: 0 }) ?? 0;
    const by = this.by(raw.by);
    if (by !== undefined && aggregate?.kind === 'last') {
      this.error('by', 'the "last" aggregate is per series: remove "by" or use avg, min, max or sum');
    }
    const labels = this.templates(raw.labels, 'labels', true);
    const annotations = this.templates(raw.annotations, 'annotations', false);
    if (source === undefined || aggregate === undefined || window === undefined) return undefined;
    const rule: ThresholdRule = {
      type: 'alert',
      index: this.index,
      line: this.lineOf(""),
      name,
      identity: identity(raw, ['annotations', 'for', 'keepFiringFor']),
      by: kind === 'patterns' ? ['source', 'pattern_id'] : (by ?? (kind === 'metric' ? undefined : [])),
      labels,
      annotations,
      source,
      aggregate,
      window,
      op,
      threshold,
      absent,
      for: forMs,
      keepFiringFor,
      query: '',
    };
    return { ...rule, query: describeRule(rule) };
  }

  private slo(raw: Record<string, unknown>, name: string): SloRule | undefined {
    const objective = raw.objective;
    if (objective === undefined) this.error('objective', 'missing: the percentage of good events, e.g. 99.9');
    else if (typeof objective !== 'number' || !(objective > 0 && objective < 100)) {
      this.error('objective', `expected a percentage between 0 and 100, exclusive, e.g. 99.9 (got ${show(objective)})`);
    }
    const period = this.duration(raw.period, 'period', { required: true, min: 3_600_000, max: MAX_WINDOW });
    let indicator: Indicator | undefined;
    if (raw.latency !== undefined) {
      for (const k of ['good', 'bad', 'total']) if (raw[k] !== undefined) this.error(k, 'a latency SLO takes its good and total events from "latency:"; remove this key');
      indicator = this.latency(raw.latency);
    } else {
      if (raw.good !== undefined && raw.bad !== undefined) this.error('bad', 'give "good" or "bad", not both');
      if (raw.good === undefined && raw.bad === undefined) this.error('good', 'missing: the good events ("good:"), the bad events ("bad:"), or "latency:" for a latency SLO');
      if (raw.total === undefined) this.error('total', 'missing: all events, e.g. total: { metric: http.requests }');
      const good = raw.good === undefined ? undefined : this.ref(raw.good, 'good');
      const bad = raw.bad === undefined ? undefined : this.ref(raw.bad, 'bad');
      const total = raw.total === undefined ? undefined : this.ref(raw.total, 'total');
      if (total !== undefined && (good !== undefined || bad !== undefined)) indicator = { kind: 'events', good, bad, total };
    }
    let alertName = 'SLOErrorBudgetBurn';
    if (raw.alert !== undefined) {
      if (typeof raw.alert === 'string' && raw.alert.trim() !== '') alertName = raw.alert;
      else this.error('alert', 'expected the alertname of the burn-rate alerts');
    }
    const burnAlerts = raw.alerts === undefined ? DEFAULT_BURN_ALERTS : this.burnAlerts(raw.alerts, period);
    const by = this.by(raw.by) ?? [];
    const labels = this.templates(raw.labels, 'labels', true);
    for (const reserved of ['slo', 'severity', 'window']) {
      if (labels.has(reserved)) this.error(`labels.${reserved}`, 'set by the SLO itself; choose another label name');
    }
    const annotations = this.templates(raw.annotations, 'annotations', false);
    if (indicator === undefined || period === undefined || typeof objective !== 'number' || burnAlerts === undefined) return undefined;
    return {
      type: 'slo',
      index: this.index,
      line: this.lineOf(""),
      name,
      identity: identity(raw, ['annotations']),
      by,
      labels,
      annotations,
      objective,
      budget: 1 - objective / 100,
      period,
      indicator,
      alertName,
      burnAlerts,
    };
  }

  private burnAlerts(raw: unknown, period: number | undefined): BurnAlert[] | undefined {
    if (!Array.isArray(raw) || raw.length === 0) {
      this.error('alerts', 'expected a non-empty list like [{ severity: page, long: 1h, short: 5m, burnRate: 14.4 }]');
      return undefined;
    }
    const out: BurnAlert[] = [];
    raw.forEach((item: unknown, i: number) => {
      const key = `alerts[${i}]`;
      if (!isObject(item)) {
        this.error(key, 'expected a mapping with severity, long, short and burnRate');
        return;
      }
      for (const k of Object.keys(item)) if (!BURN_KEYS.includes(k)) this.error(`${key}.${k}`, `unknown key${hint(k, BURN_KEYS)}`);
      const severity = item.severity;
      if (typeof severity !== 'string' || severity === '') this.error(`${key}.severity`, 'expected a severity label value such as page or ticket');
      const long = this.duration(item.long, `${key}.long`, { required: true, min: this.options.resolution, max: MAX_WINDOW });
      const short = this.duration(item.short, `${key}.short`, { required: true, min: this.options.resolution, max: MAX_WINDOW });
      if (long !== undefined && short !== undefined && short > long) this.error(`${key}.short`, 'must not be longer than "long"');
      if (long !== undefined && period !== undefined && long > period) this.error(`${key}.long`, 'must not be longer than the SLO period');
      const factor = item.burnRate;
      if (typeof factor !== 'number' || !(factor > 0)) this.error(`${key}.burnRate`, `expected a positive number, e.g. 14.4 (got ${show(factor)})`);
      const forMs = this.duration(item.for, `${key}.for`, { min: 0 }) ?? 0;
      if (typeof severity === 'string' && severity !== '' && long !== undefined && short !== undefined && typeof factor === 'number' && factor > 0) {
        out.push({ severity, long, short, factor, for: forMs });
      }
    });
    const seen = new Set<string>();
    for (const a of out) {
      const k = `${a.severity}/${a.long}`;
      if (seen.has(k)) this.error('alerts', `two burn-rate alerts share severity ${a.severity} and long window ${formatWindow(a.long)}; they would be the same alert`);
      seen.add(k);
    }
    return out.length === raw.length ? out : undefined;
  }

  private latency(raw: unknown): Indicator | undefined {
    if (!isObject(raw)) {
      this.error('latency', 'expected { metric: <timer>, where: {…}, threshold: <value> }');
      return undefined;
    }
    for (const k of Object.keys(raw)) if (!LATENCY_KEYS.includes(k)) this.error(`latency.${k}`, `unknown key${hint(k, LATENCY_KEYS)}`);
    const metric = this.metricName(raw.metric, 'latency.metric');
    const where = this.where(raw.where, 'latency.where');
    const threshold = raw.threshold;
    if (typeof threshold !== 'number' || !Number.isFinite(threshold)) {
      this.error('latency.threshold', `expected a number: requests at or below it are good (got ${show(threshold)})`);
      return undefined;
    }
    return metric === undefined ? undefined : { kind: 'latency', ref: { metric, where }, threshold };
  }

  private ratio(raw: unknown): Source | undefined {
    if (!isObject(raw)) {
      this.error('ratio', 'expected { numerator: { metric: … }, denominator: { metric: … } }');
      return undefined;
    }
    for (const k of Object.keys(raw)) if (k !== 'numerator' && k !== 'denominator') this.error(`ratio.${k}`, `unknown key${hint(k, ['numerator', 'denominator'])}`);
    if (raw.numerator === undefined) this.error('ratio.numerator', 'missing');
    if (raw.denominator === undefined) this.error('ratio.denominator', 'missing');
    const numerator = raw.numerator === undefined ? undefined : this.ref(raw.numerator, 'ratio.numerator');
    const denominator = raw.denominator === undefined ? undefined : this.ref(raw.denominator, 'ratio.denominator');
    return numerator && denominator ? { kind: 'ratio', numerator, denominator } : undefined;
  }

  private logs(raw: unknown): Source | undefined {
    if (!isObject(raw)) {
      this.error('logs', 'expected { where: { level: ERROR }, match: "panic" }');
      return undefined;
    }
    for (const k of Object.keys(raw)) if (!LOG_KEYS.includes(k)) this.error(`logs.${k}`, `unknown key${hint(k, LOG_KEYS)}`);
    const where = this.where(raw.where, 'logs.where', true);
    let match: RegExp | undefined;
    if (raw.match !== undefined) {
      if (typeof raw.match !== 'string') this.error('logs.match', `expected a regular expression (got ${show(raw.match)})`);
      else {
        try {
          match = new RegExp(raw.match);
        } catch (err) {
          this.error('logs.match', `invalid regular expression (${(err as Error).message})`);
        }
      }
    }
    let field = 'message';
    if (raw.field !== undefined) {
      if (typeof raw.field === 'string' && raw.field !== '') field = raw.field;
      else this.error('logs.field', 'expected the name of the event field "match" applies to');
    }
    return { kind: 'logs', ref: { where, match, field } };
  }

  private patterns(raw: unknown): Source | undefined {
    const usage = 'expected { new: true } or { spike: { baseline: 1h, minEvents: 20 } }, with an optional where: { source: <name> }';
    if (!isObject(raw)) {
      this.error('patterns', usage);
      return undefined;
    }
    for (const k of Object.keys(raw)) if (!PATTERN_KEYS.includes(k)) this.error(`patterns.${k}`, `unknown key${hint(k, PATTERN_KEYS)}`);
    const where = this.where(raw.where, 'patterns.where', true);
    for (const m of where) if (m.name !== 'source' && m.name !== 'pattern_id') this.error('patterns.where', `patterns have the labels source and pattern_id (got ${show(m.name)})`);
    const isNew = raw.new === true;
    const spike = raw.spike;
    if (raw.new !== undefined && raw.new !== true) this.error('patterns.new', `expected true (got ${show(raw.new)})`);
    if (isNew === (spike !== undefined)) {
      this.error('patterns', `give exactly one of "new" and "spike": ${usage}`);
      return undefined;
    }
    if (isNew) return { kind: 'patterns', ref: { where, signal: 'new', baseline: 0, minEvents: 1 } };
    const spec: Record<string, unknown> = spike === true || spike === null ? {} : isObject(spike) ? spike : {};
    if (!(spike === true || spike === null || isObject(spike))) this.error('patterns.spike', usage);
    for (const k of Object.keys(spec)) if (!SPIKE_KEYS.includes(k)) this.error(`patterns.spike.${k}`, `unknown key${hint(k, SPIKE_KEYS)}`);
    const baseline = this.duration(spec.baseline ?? '1h', 'patterns.spike.baseline', { min: 60_000, max: PATTERN_HISTORY }) ?? 3_600_000;
    let minEvents = 10;
    if (spec.minEvents !== undefined) {
      if (typeof spec.minEvents === 'number' && Number.isInteger(spec.minEvents) && spec.minEvents >= 1) minEvents = spec.minEvents;
      else this.error('patterns.spike.minEvents', `expected a whole number of at least 1 (got ${show(spec.minEvents)})`);
    }
    return { kind: 'patterns', ref: { where, signal: 'spike', baseline, minEvents } };
  }

  private ref(raw: unknown, key: string): MetricRef | undefined {
    if (!isObject(raw)) {
      this.error(key, `expected { metric: <name>, where: { label: value } } (got ${show(raw)})`);
      return undefined;
    }
    for (const k of Object.keys(raw)) if (!REF_KEYS.includes(k)) this.error(`${key}.${k}`, `unknown key${hint(k, REF_KEYS)}`);
    const metric = this.metricName(raw.metric, `${key}.metric`);
    const where = this.where(raw.where, `${key}.where`);
    return metric === undefined ? undefined : { metric, where };
  }

  private metricName(raw: unknown, key: string): string | undefined {
    if (typeof raw === 'string' && raw.trim() !== '') return raw.trim();
    this.error(key, raw === undefined ? 'missing: a statsd name (http.request.duration) or its Prometheus name' : `expected a metric name (got ${show(raw)})`);
    return undefined;
  }

  private where(raw: unknown, key: string, fields = false): Matcher[] {
    if (raw === undefined || raw === null) return [];
    if (!isObject(raw)) {
      this.error(key, 'expected a mapping of label to value, e.g. { service: api, code: "=~5.." }');
      return [];
    }
    const out: Matcher[] = [];
    for (const [name, value] of Object.entries(raw)) {
      if (!fields && !LABEL_NAME.test(name)) {
        this.error(`${key}.${name}`, 'not a valid label name (letters, digits and _, not starting with a digit)');
        continue;
      }
      try {
        out.push(parseMatcher(name, value));
      } catch (err) {
        this.error(`${key}.${name}`, (err as Error).message);
      }
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private by(raw: unknown): string[] | undefined {
    if (raw === undefined) return undefined;
    if (!Array.isArray(raw) || !raw.every((l) => typeof l === 'string')) {
      this.error('by', 'expected a list of label names, e.g. [service, host]');
      return undefined;
    }
    for (const l of raw) if (!LABEL_NAME.test(l)) this.error('by', `${JSON.stringify(l)} is not a valid label name`);
    return [...new Set(raw as string[])].sort();
  }

  private templates(raw: unknown, key: string, areLabels: boolean): Map<string, Template> {
    const out = new Map<string, Template>();
    if (raw === undefined || raw === null) return out;
    if (!isObject(raw)) {
      this.error(key, 'expected a mapping of name to text');
      return out;
    }
    for (const [name, value] of Object.entries(raw)) {
      const k = `${key}.${name}`;
      if (areLabels && !LABEL_NAME.test(name)) {
        this.error(k, 'not a valid label name (letters, digits and _, not starting with a digit)');
        continue;
      }
      if (areLabels && name === 'alertname') {
        this.error(k, 'the alert name comes from "alert:"');
        continue;
      }
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        this.error(k, `expected text (got ${show(value)})`);
        continue;
      }
      try {
        out.set(name, compileTemplate(String(value)));
      } catch (err) {
        this.error(k, (err as Error).message);
      }
    }
    return out;
  }

  private duration(raw: unknown, key: string, opts: { required?: boolean; min?: number; max?: number }): number | undefined {
    if (raw === undefined || raw === null) {
      if (opts.required) this.error(key, 'missing: a duration like "30s", "5m" or "1h"');
      return undefined;
    }
    const ms = typeof raw === 'string' ? parseDuration(raw) : undefined;
    if (ms === undefined) {
      this.error(key, `expected a duration like "30s", "5m" or "1h" (got ${show(raw)})`);
      return undefined;
    }
    if (opts.min !== undefined && ms < opts.min) {
      this.error(key, opts.min === 0 ? 'must not be negative' : `must be at least ${formatWindow(opts.min)}, the bucket resolution (got ${show(raw)})`);
      return undefined;
    }
    if (opts.max !== undefined && ms > opts.max) {
      this.error(key, `must be at most ${formatWindow(opts.max)} (got ${show(raw)})`);
      return undefined;
    }
    return ms;
  }

  private boolean(raw: unknown, key: string): boolean | undefined {
    if (raw === undefined) return undefined;
    if (typeof raw === 'boolean') return raw;
    this.error(key, `expected true or false (got ${show(raw)})`);
    return undefined;
  }
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function identity(raw: Record<string, unknown>, ignore: string[]): string {
  const kept: Record<string, unknown> = {};
  for (const k of Object.keys(raw).sort()) if (!ignore.includes(k)) kept[k] = raw[k];
  return JSON.stringify(kept);
}

/** A window as people write it: "5m", "6h", "3d". */
export function formatWindow(ms: number): string {
  return ms > 0 && ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : formatDuration(ms);
}

function refText(ref: MetricRef, window: number): string {
  return `${ref.metric}${formatMatchers(ref.where)}[${formatWindow(window)}]`;
}

/** A PromQL-like one-liner for the rules API; it is a description, not something plumb parses. */
export function describeRule(rule: ThresholdRule): string {
  const agg = rule.aggregate.name;
  const by = rule.by === undefined ? '' : ` by (${rule.by.join(', ')})`;
  let expr: string;
  const s = rule.source;
  if (s.kind === 'metric') expr = `${agg}${by}(${refText(s.ref, rule.window)})`;
  else if (s.kind === 'ratio') expr = `${agg}${by}(${refText(s.numerator, rule.window)}) / ${agg}${by}(${refText(s.denominator, rule.window)})`;
  else if (s.kind === 'patterns') {
    expr =
      s.ref.signal === 'new'
        ? `new_patterns${formatMatchers(s.ref.where)}[${formatWindow(rule.window)}]`
        : `pattern_rate${formatMatchers(s.ref.where)}[${formatWindow(rule.window)}] / pattern_rate${formatMatchers(s.ref.where)}[${formatWindow(s.ref.baseline)} offset ${formatWindow(rule.window)}]`;
  } else {
    const match = s.ref.match ? ` |~ ${JSON.stringify(s.ref.match.source)}` : '';
    expr = `${agg}${by}(logs${formatMatchers(s.ref.where)}${match}[${formatWindow(rule.window)}])`;
  }
  const cond = rule.op !== undefined ? `${expr} ${rule.op} ${rule.threshold}` : '';
  if (!rule.absent) return cond;
  const absent = `absent(${expr})`;
  return cond === '' ? absent : `${cond} or ${absent}`;
}

function hint(key: string, candidates: readonly string[]): string {
  const best = suggest(key, candidates);
  return best === undefined ? '' : ` (did you mean "${best}"?)`;
}
