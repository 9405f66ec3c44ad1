/**
 * What the alert engine shows the outside: Prometheus text for /metrics (ALERTS,
 * ALERTS_FOR_STATE and the SLO gauges, named as Prometheus and SLO tooling expect) and the JSON
 * of /api/v1/alerts and /api/v1/rules in the shape of Prometheus' HTTP API, so Grafana and
 * scripts written for Prometheus can read them.
 */
import type { Alert } from './state.ts';

export interface UnitView {
  /** The alertname. */
  readonly name: string;
  /** The rule or SLO it belongs to. */
  readonly rule: string;
  readonly slo: string | undefined;
  readonly query: string;
  readonly for: number;
  readonly keepFiringFor: number;
  readonly labelSources: Record<string, string>;
  readonly annotationSources: Record<string, string>;
  readonly alerts: Iterable<Alert>;
  readonly health: 'ok' | 'err' | 'unknown';
  readonly lastError: string;
  readonly lastEvaluation: number | undefined;
  /** Seconds. */
  readonly evaluationTime: number;
  /** The rule's data was empty over its window at the last evaluation. */
  readonly nodata: boolean;
  /** Why the rule is not evaluated yet (start-up grace), and until when; undefined when it is. */
  readonly waiting: string | undefined;
  readonly graceUntil: number | undefined;
  /** In a fleet: the collector that evaluates the rule (its alerts are there, not here). */
  readonly owner: string | undefined;
}

export interface SloPoint {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface SloView {
  readonly name: string;
  readonly objective: number;
  readonly period: number;
  readonly budgetRemaining: readonly SloPoint[];
  readonly burnRates: readonly (SloPoint & { window: string })[];
}

export interface GroupView {
  readonly name: string;
  readonly file: string;
  readonly interval: number;
  readonly lastEvaluation: number | undefined;
  readonly evaluationTime: number;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(first: [string, string][], rest: Readonly<Record<string, string>>): string {
  const skip = new Set(first.map(([k]) => k));
  const pairs = [...first, ...Object.entries(rest).filter(([k, v]) => !skip.has(k) && v !== '').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))];
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** The text the collector appends to its /metrics page. Ends with a newline. */
export function renderMetrics(units: Iterable<UnitView>, slos: Iterable<SloView>): string {
  const alerts: string[] = [];
  const forState: string[] = [];
  for (const u of units) {
    for (const a of u.alerts) {
      if (a.state === 'inactive') continue;
      const { alertname, ...rest } = a.labels;
      alerts.push(`ALERTS${labelText([['alertname', alertname ?? u.name], ['alertstate', a.state]], rest)} 1`);
      forState.push(`ALERTS_FOR_STATE${labelText([['alertname', alertname ?? u.name]], rest)} ${Math.floor(a.activeAt / 1000)}`);
    }
  }
  const out = [
    '# HELP ALERTS Alerts pending or firing, one series per alert.',
    '# TYPE ALERTS gauge',
    ...alerts,
    '# HELP ALERTS_FOR_STATE Unix time in seconds at which each pending or firing alert became active.',
    '# TYPE ALERTS_FOR_STATE gauge',
    ...forState,
  ];
  const budget: string[] = [];
  const burn: string[] = [];
  for (const s of slos) {
    for (const p of s.budgetRemaining) budget.push(`plumb_slo_error_budget_remaining${labelText([['slo', s.name]], p.labels)} ${num(p.value)}`);
    for (const p of s.burnRates) burn.push(`plumb_slo_burn_rate${labelText([['slo', s.name], ['window', p.window]], p.labels)} ${num(p.value)}`);
  }
  out.push(
    '# HELP plumb_slo_error_budget_remaining Share of the SLO period\'s error budget not yet spent (1 untouched, 0 spent, negative overspent).',
    '# TYPE plumb_slo_error_budget_remaining gauge',
    ...budget,
    '# HELP plumb_slo_burn_rate How fast the error budget burns over the window: 1 spends it in exactly one period.',
    '# TYPE plumb_slo_burn_rate gauge',
    ...burn,
  );
  return `${out.join('\n')}\n`;
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

export interface AlertJSON {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
  keepFiringSince?: string;
}

function alertJSON(a: Alert): AlertJSON | undefined {
  if (a.state === 'inactive') return undefined;
  const out: AlertJSON = { labels: a.labels, annotations: a.annotations, state: a.state, activeAt: iso(a.activeAt)!, value: a.value === undefined ? 'NaN' : String(a.value) };
  if (a.keepFiringSince !== undefined) out.keepFiringSince = iso(a.keepFiringSince);
  return out;
}

/** Body of GET /api/v1/alerts. */
export function alertsJSON(units: Iterable<UnitView>): { status: 'success'; data: { alerts: AlertJSON[] } } {
  const alerts: AlertJSON[] = [];
  for (const u of units) {
    for (const a of u.alerts) {
      const j = alertJSON(a);
      if (j !== undefined) alerts.push(j);
    }
  }
  return { status: 'success', data: { alerts } };
}

function ruleState(u: UnitView): 'firing' | 'pending' | 'inactive' | 'nodata' | 'grace' {
  let pending = false;
  for (const a of u.alerts) {
    if (a.state === 'firing') return 'firing';
    if (a.state === 'pending') pending = true;
  }
  if (pending) return 'pending';
  if (u.waiting !== undefined) return 'grace';
  return u.nodata ? 'nodata' : 'inactive';
}

/**
 * Body of GET /api/v1/rules. `state` adds "nodata" and "grace" (waiting for its window to be
 * covered by data seen, with `reason` and `graceUntil`) to Prometheus' three states.
 */
export function rulesJSON(group: GroupView, units: Iterable<UnitView>, slos: Iterable<SloView>): Record<string, unknown> {
  const rules = [...units].map((u) => ({
    state: ruleState(u),
    name: u.name,
    rule: u.rule,
    ...(u.slo !== undefined ? { slo: u.slo } : {}),
    query: u.query,
    duration: u.for / 1000,
    keepFiringFor: u.keepFiringFor / 1000,
    labels: u.labelSources,
    annotations: u.annotationSources,
    alerts: [...u.alerts].map(alertJSON).filter((a) => a !== undefined),
    health: u.health,
    lastError: u.lastError,
    evaluationTime: u.evaluationTime,
    lastEvaluation: iso(u.lastEvaluation) ?? '0001-01-01T00:00:00Z',
    type: 'alerting',
    ...(u.waiting !== undefined ? { reason: u.waiting, graceUntil: iso(u.graceUntil) } : {}),
    ...(u.owner !== undefined ? { owner: u.owner } : {}),
  }));
  return {
    status: 'success',
    data: {
      groups: [
        {
          name: group.name,
          file: group.file,
          interval: group.interval / 1000,
          evaluationTime: group.evaluationTime,
          lastEvaluation: iso(group.lastEvaluation) ?? '0001-01-01T00:00:00Z',
          rules,
        },
      ],
      slos: [...slos].map((s) => ({
        name: s.name,
        objective: s.objective,
        period: s.period / 1000,
        errorBudgetRemaining: s.budgetRemaining.map((p) => ({ labels: p.labels, value: p.value })),
        burnRates: s.burnRates.map((p) => ({ labels: p.labels, window: p.window, value: p.value })),
      })),
    },
  };
}
