/**
 * Values of the alert rules over log patterns (`patterns:` in a rule, rules.ts PatternRef), read
 * from the collector's pattern table (collector/patterns/miner.ts) at evaluation time. One group
 * per template: labels source and pattern_id, plus the template text as `pattern`.
 */
import { matches } from './matchers.ts';
import { eventsBetween as eventsIn } from '../patterns/miner.ts';
import type { PatternRef } from './rules.ts';

const MINUTE = 60_000;

/** What the rules read of a pattern; the miner's PatternStats has these. */
export interface PatternFacts {
  readonly id: string;
  readonly firstSeen: number;
  readonly count: number;
  readonly minutes: Uint32Array;
  readonly minuteOf: Float64Array;
}

export interface PatternTable {
  entries(): Iterable<{ source: string; template: string; stats: PatternFacts }>;
  /** When the table began without history: templates first seen in its first window are not new. */
  readonly learningSince: number;
}

export interface PatternValue {
  labels: Record<string, string>;
  value: number;
}

export function patternValues(table: PatternTable, ref: PatternRef, window: number, now: number): PatternValue[] {
  const out: PatternValue[] = [];
  // whole minutes: the current minute is still filling
  const end = Math.floor(now / MINUTE) * MINUTE;
  for (const { source, template, stats } of table.entries()) {
    if (ref.where.length > 0 && !matches(ref.where, (name) => (name === 'source' ? source : name === 'pattern_id' ? stats.id : ''))) continue;
    const labels = { source, pattern_id: stats.id, pattern: template };
    if (ref.signal === 'new') {
      if (stats.firstSeen < now - window || stats.firstSeen < table.learningSince + window) continue;
      out.push({ labels, value: stats.count });
      continue;
    }
    if (stats.firstSeen > end - window - ref.baseline) continue;
    const recent = eventsIn(stats, end - window, end);
    if (recent < ref.minEvents) continue;
    const before = eventsIn(stats, end - window - ref.baseline, end - window);
    const recentRate = recent / window;
    const baseRate = Math.max(before, 1) / ref.baseline;
    out.push({ labels, value: recentRate / baseRate });
  }
  return out;
}
