/**
 * Error-budget arithmetic for SLOs. With an objective of 99.9 % the budget is 0.1 % of events;
 * a burn rate is the window's error ratio divided by the budget, so burning at 1× spends the
 * whole budget in exactly one period and 14.4× spends 2 % of a 30-day budget in one hour.
 * Alerts follow the SRE workbook's multiwindow, multi-burn-rate recipe: an alert fires only while
 * both its long and its short window burn faster than its factor, so it pages quickly on a sharp
 * outage and stops soon after recovery.
 */
import type { Summary } from './buckets.ts';
import { KIND_COUNTER, KIND_DISTRIBUTION, KIND_LOG } from './buckets.ts';
import type { Indicator } from './rules.ts';
import type { GroupSummary } from './store.ts';

export interface Counts {
  good: number;
  total: number;
}

/** Fraction of events that were bad; NaN without events. Clamped: counters from different agents can land in different buckets. */
export function errorRatio(c: Counts): number {
  if (!(c.total > 0)) return NaN;
  return Math.min(1, Math.max(0, (c.total - c.good) / c.total));
}

export function burnRate(c: Counts, budget: number): number {
  return errorRatio(c) / budget;
}

/** Share of the period's budget still unspent: 1 untouched, 0 spent, negative overspent. */
export function budgetRemaining(c: Counts, budget: number): number {
  return 1 - errorRatio(c) / budget;
}

function countable(s: Summary): boolean {
  return (s.kinds & (KIND_COUNTER | KIND_DISTRIBUTION | KIND_LOG)) !== 0;
}

export interface GroupCounts {
  readonly key: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly counts: Counts;
}

/**
 * Good and total events per group in one window, from the indicator's stores' summaries.
 * `parts` holds the summaries of good, bad, total (events SLO) or the latency store.
 * Throws when a metric cannot be counted (a gauge named as an SLO's events).
 */
export function indicatorCounts(indicator: Indicator, parts: { good?: GroupSummary[]; bad?: GroupSummary[]; total?: GroupSummary[]; latency?: GroupSummary[] }): GroupCounts[] {
  const out: GroupCounts[] = [];
  if (indicator.kind === 'latency') {
    for (const g of parts.latency ?? []) {
      if (!(g.summary.kinds & KIND_DISTRIBUTION)) throw new Error(`latency SLO metric ${indicator.ref.metric} must be a timer, histogram or distribution`);
      out.push({ key: g.key, labels: g.labels, counts: { good: g.summary.good, total: g.summary.events } });
    }
    return out;
  }
  const side = indicator.good !== undefined ? 'good' : 'bad';
  const byKey = new Map<string, Summary>();
  for (const g of parts[side] ?? []) {
    if (!countable(g.summary)) throw new Error(`SLO ${side} metric ${(indicator.good ?? indicator.bad)!.metric} must be a counter, timer or distribution`);
    byKey.set(g.key, g.summary);
  }
  for (const g of parts.total ?? []) {
    if (!countable(g.summary)) throw new Error(`SLO total metric ${indicator.total.metric} must be a counter, timer or distribution`);
    const total = g.summary.events;
    // No good (or bad) events reported in a window where requests were: none happened.
    const n = byKey.get(g.key)?.events ?? 0;
    out.push({ key: g.key, labels: g.labels, counts: { good: side === 'good' ? n : total - n, total } });
  }
  return out;
}
