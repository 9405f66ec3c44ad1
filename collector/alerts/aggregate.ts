/**
 * Turns a window's summary into the number a rule compares. What each aggregate means depends
 * on the kind of data (see config/rules/README.md):
 *
 *   count     counters, distributions, logs: events counted; gauges and sets: reports received
 *   sum       sum of the values (counter increments, distribution values, gauge readings)
 *   avg       sum / count of values (a distribution's mean; the mean gauge reading)
 *   min, max  exact extremes
 *   last      the newest reading (gauges and sets)
 *   rate      events per second over the window (counters, distributions, logs)
 *   increase  events in the window (counters, distributions, logs)
 *   pNN       quantile from the merged sketches (distributions), or of the readings (gauges)
 */
import { quantile } from '../../shared/sketch.ts';
import { KIND_COUNTER, KIND_DISTRIBUTION, KIND_GAUGE, KIND_LOG, KIND_SET, type Summary } from './buckets.ts';
import type { Aggregate } from './rules.ts';

const COUNTING = KIND_COUNTER | KIND_DISTRIBUTION | KIND_LOG;
const LEVELS = KIND_GAUGE | KIND_SET;

/** The result of one aggregate: a number, or why the data cannot give one. */
export type AggregateResult = { ok: true; value: number } | { ok: false; error: string };

function kindName(kinds: number): string {
  const names: string[] = [];
  if (kinds & KIND_COUNTER) names.push('counter');
  if (kinds & KIND_GAUGE) names.push('gauge');
  if (kinds & KIND_SET) names.push('set');
  if (kinds & KIND_DISTRIBUTION) names.push('timer/histogram/distribution');
  if (kinds & KIND_LOG) names.push('log events');
  return names.join(' and ');
}

export function aggregate(agg: Aggregate, s: Summary, window: number): AggregateResult {
  const kinds = s.kinds;
  if ((kinds & (kinds - 1)) !== 0) {
    return { ok: false, error: `the metric is reported as both ${kindName(kinds)}; give each kind its own name` };
  }
  const counting = (kinds & COUNTING) !== 0;
  const values = kinds & KIND_DISTRIBUTION ? s.events : s.reports;
  switch (agg.kind) {
    case 'count':
      return ok(counting ? s.events : s.reports);
    case 'sum':
      return ok(s.sum);
    case 'avg':
      return values > 0 ? ok(s.sum / values) : ok(NaN);
    case 'min':
      return ok(s.min === Infinity ? NaN : s.min);
    case 'max':
      return ok(s.max === -Infinity ? NaN : s.max);
    case 'last':
      if (kinds & LEVELS) return ok(s.last);
      return { ok: false, error: `"last" reads a gauge or set, but the metric is a ${kindName(kinds)}; use increase or max` };
    case 'rate':
    case 'increase':
      if (!counting) {
        return { ok: false, error: `"${agg.kind}" needs a counter, a timer or log events, but the metric is a ${kindName(kinds)}; feed cumulative totals through observeCumulative` };
      }
      return ok(agg.kind === 'rate' ? s.events / (window / 1000) : s.events);
    case 'quantile':
      if (kinds & (KIND_COUNTER | KIND_LOG)) {
        return { ok: false, error: `"${agg.name}" needs a timer, histogram, distribution or gauge, but the metric is a ${kindName(kinds)}` };
      }
      return ok(s.sketch === undefined ? NaN : quantile(s.sketch, agg.q));
  }
}

function ok(value: number): AggregateResult {
  return { ok: true, value };
}

export function compare(op: string, value: number, threshold: number): boolean {
  switch (op) {
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
    case '==':
      return value === threshold;
    case '!=':
      return value !== threshold;
    default:
      return false;
  }
}
