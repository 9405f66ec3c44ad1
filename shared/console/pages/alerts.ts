/**
 * Alerts page (collector): every rule with its state, value, `for` progress and last
 * evaluation; every SLO with its remaining budget and burn rate per window, and charts of both
 * over the SLO's period. Reads the alert engine's /api/v1/rules body in-process.
 */
import { badge, esc, fmtAgo, fmtNumber, fmtPercent, fmtSeconds, labelText, table, type Row } from '../html.ts';
import { lineChart, type ChartSeries } from '../chart.ts';

interface AlertJSON {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

interface RuleJSON {
  state: 'firing' | 'pending' | 'inactive' | 'nodata' | 'grace';
  name: string;
  slo?: string;
  query: string;
  /** `for`, seconds */
  duration: number;
  alerts: AlertJSON[];
  health: 'ok' | 'err' | 'unknown';
  lastError: string;
  lastEvaluation: string;
  evaluationTime: number;
  reason?: string;
  owner?: string;
}

interface SloJSON {
  name: string;
  objective: number;
  /** seconds */
  period: number;
  errorBudgetRemaining: { labels: Record<string, string>; value: number }[];
  burnRates: { labels: Record<string, string>; window: string; value: number }[];
}

/** The body of GET /api/v1/rules, as far as this page reads it. */
export interface RulesBody {
  data: {
    groups: { name: string; interval: number; lastEvaluation: string; rules: RuleJSON[] }[];
    slos: SloJSON[];
    lastReload?: { ok: boolean; at: string | null; errors: string[] };
  };
}

/** One sample of an SLO's history: labels (as JSON) → value; burn keys are `${window} ${labels}`. */
export interface SloSample {
  at: number;
  budget: Record<string, number>;
  burn: Record<string, number>;
}

export interface AlertsSource {
  rules(): RulesBody;
  history(slo: string): readonly SloSample[];
}

const STATE_TONE = { firing: 'bad', pending: 'warn', inactive: 'ok', nodata: 'muted', grace: 'muted' } as const;

function forProgress(rule: RuleJSON, alert: AlertJSON, now: number): string {
  if (rule.duration <= 0) return '<span class="muted">no for</span>';
  const held = Math.max(0, (now - Date.parse(alert.activeAt)) / 1000);
  if (alert.state === 'firing') return `firing for ${fmtSeconds(held)}`;
  const share = Math.min(1, held / rule.duration);
  return `<progress max="1" value="${share.toFixed(3)}"></progress> ${fmtSeconds(held)} of ${fmtSeconds(rule.duration)}`;
}

/** The alert's labels less those the row already says (its name, its SLO). */
function shownLabels(labels: Record<string, string>): Record<string, string> {
  const { alertname: _name, slo: _slo, ...rest } = labels;
  return rest;
}

function ruleRows(rule: RuleJSON, now: number): Row[] {
  const head = (alert: AlertJSON | undefined): string[] => [
    `<strong>${esc(rule.name)}</strong>${rule.slo !== undefined ? ` <span class="muted">SLO ${esc(rule.slo)}</span>` : ''}<div class="query">${esc(rule.query)}</div>`,
    badge(alert?.state ?? rule.state, STATE_TONE[alert?.state ?? rule.state]) + (rule.reason !== undefined ? ` <span class="muted">${esc(rule.reason)}</span>` : ''),
    alert !== undefined ? `${esc(fmtNumber(Number(alert.value)))} <span class="muted">${esc(labelText(shownLabels(alert.labels)))}</span>` : '<span class="muted">–</span>',
    alert !== undefined ? forProgress(rule, alert, now) : rule.duration > 0 ? `<span class="muted">for ${fmtSeconds(rule.duration)}</span>` : '',
    `${fmtAgo(rule.lastEvaluation, now)}${rule.health === 'err' ? ` ${badge('error', 'bad')} <span class="error">${esc(rule.lastError)}</span>` : ''}${rule.owner !== undefined ? ` <span class="muted">evaluated by ${esc(rule.owner)}</span>` : ''}`,
  ];
  const mark = (s: string): Row['mark'] => (s === 'firing' ? 'bad' : s === 'pending' ? 'warn' : '');
  if (rule.alerts.length === 0) return [{ cells: head(undefined), mark: rule.health === 'err' ? 'bad' : '', attrs: `data-rule="${esc(rule.name)}" data-state="${rule.state}"` }];
  return rule.alerts.map((a) => ({ cells: head(a), mark: mark(a.state), attrs: `data-rule="${esc(rule.name)}" data-state="${a.state}"` }));
}

function sloSection(slo: SloJSON, history: readonly SloSample[], now: number): string {
  const budgetRows = slo.errorBudgetRemaining.map((p) => {
    const burns = slo.burnRates.filter((b) => JSON.stringify(b.labels) === JSON.stringify(p.labels));
    const tone = p.value <= 0 ? 'bad' : p.value < 0.25 ? 'warn' : 'ok';
    return {
      cells: [
        esc(labelText(p.labels) || '(all)'),
        `${badge(fmtPercent(p.value), tone)} <meter min="0" max="1" low="0.25" optimum="1" value="${Math.max(0, p.value)}"></meter>`,
        burns.map((b) => `<span class="burn${b.value > 1 ? ' hot' : ''}">${esc(b.window)}: ${esc(fmtNumber(b.value))}×</span>`).join(' ') || '<span class="muted">–</span>',
      ],
      mark: tone === 'bad' ? 'bad' : tone === 'warn' ? 'warn' : '',
    } satisfies Row;
  });
  const from = now - slo.period * 1000;
  const budgetSeries = new Map<string, ChartSeries & { points: [number, number][] }>();
  const burnSeries = new Map<string, ChartSeries & { points: [number, number][] }>();
  for (const s of history) {
    for (const [k, v] of Object.entries(s.budget)) {
      const name = labelText(JSON.parse(k) as Record<string, string>) || 'budget';
      let series = budgetSeries.get(k);
      if (series === undefined) budgetSeries.set(k, (series = { name, points: [] }));
      series.points.push([s.at, v]);
    }
    for (const [k, v] of Object.entries(s.burn)) {
      const space = k.indexOf(' ');
      const name = `${k.slice(0, space)} ${labelText(JSON.parse(k.slice(space + 1)) as Record<string, string>)}`.trim();
      let series = burnSeries.get(k);
      if (series === undefined) burnSeries.set(k, (series = { name, points: [] }));
      series.points.push([s.at, v]);
    }
  }
  const charts =
    history.length === 0
      ? '<p class="empty">No evaluation sampled yet: the charts fill in as the collector evaluates the SLO.</p>'
      : lineChart([...budgetSeries.values()], { from, to: now, yMin: 0, yMax: 1, marks: [{ value: 0, label: 'spent' }], title: `Error budget remaining over the ${fmtSeconds(slo.period)} period` }) +
        lineChart([...burnSeries.values()], { from, to: now, yMin: 0, yMax: 2, marks: [{ value: 1, label: '1× (spends the budget in one period)' }], title: 'Burn rate per window' });
  return `<section class="slo" data-slo="${esc(slo.name)}"><h3>${esc(slo.name)} <span class="muted">objective ${esc(slo.objective)}% over ${fmtSeconds(slo.period)}</span></h3>
${table(['group', 'budget remaining', 'burn rate per window'], budgetRows, 'No events counted for this SLO yet.')}${charts}</section>`;
}

export function alertsPage(source: AlertsSource, now = Date.now()): string {
  const body = source.rules();
  const groups = body.data.groups;
  const rules = groups.flatMap((g) => g.rules);
  const firing = rules.reduce((n, r) => n + r.alerts.filter((a) => a.state === 'firing').length, 0);
  const pending = rules.reduce((n, r) => n + r.alerts.filter((a) => a.state === 'pending').length, 0);
  const reload = body.data.lastReload;
  const reloadNote =
    reload !== undefined && !reload.ok
      ? `<div class="problem"><strong>The rule file has errors; the previous rules keep running.</strong><ul>${reload.errors.map((e) => `<li>${esc(e)}</li>`).join('')}</ul></div>`
      : '';
  const lastEval = groups[0]?.lastEvaluation;
  const summary = `<p class="summary">${badge(`${firing} firing`, firing > 0 ? 'bad' : 'ok')} ${badge(`${pending} pending`, pending > 0 ? 'warn' : 'muted')} ${rules.length} rules, evaluated every ${fmtSeconds(groups[0]?.interval ?? 0)}, last ${fmtAgo(lastEval, now)}</p>`;
  const rows = rules.flatMap((r) => ruleRows(r, now));
  // firing first, then pending
  const order = (r: Row): number => (r.mark === 'bad' ? 0 : r.mark === 'warn' ? 1 : 2);
  rows.sort((a, b) => order(a) - order(b));
  const slos = body.data.slos.map((s) => sloSection(s, source.history(s.name), now)).join('');
  return `<h1>Alerts</h1>${reloadNote}${summary}
${table(['rule', 'state', 'value', 'for', 'last evaluation'], rows, 'No alert rules are configured (collector.alerts.rulesFile).', ' class="rules"')}
<h2>SLOs</h2>${slos === '' ? '<p class="empty">No SLOs are configured.</p>' : slos}`;
}
