/**
 * Values of the alert rules over log patterns (`patterns:` in a rule, rules.ts PatternRef), read
 * from the collector's pattern table (collector/patterns/miner.ts) at evaluation time. One group
 * per template: labels source and pattern_id, plus the template text as `pattern`.
 */
import { matches } from './matchers.ts';
import { eventsBetween as eventsIn, RATE_MINUTES } from '../patterns/miner.ts';
import type { PatternRef } from './rules.ts';

const MINUTE = 60_000;

/** What the rules read of a pattern; the miner's PatternStats has these. */
export interface PatternFacts {
  readonly id: string;
  readonly firstSeen: number;
  readonly lastSeen: number;
  readonly count: number;
  readonly minutes: Uint32Array;
  readonly minuteOf: Float64Array;
}

export interface PatternTable {
  /** learningSince on an entry overrides the table's (a fleet's merged table: the first sighting's collector). */
  entries(): Iterable<{ source: string; template: string; stats: PatternFacts; learningSince?: number }>;
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
  for (const { source, template, stats, learningSince = table.learningSince } of table.entries()) {
    if (ref.where.length > 0 && !matches(ref.where, (name) => (name === 'source' ? source : name === 'pattern_id' ? stats.id : ''))) continue;
    const labels = { source, pattern_id: stats.id, pattern: template };
    if (ref.signal === 'new') {
      if (stats.firstSeen < now - window || stats.firstSeen < learningSince + window) continue;
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

// ── across a fleet ──
//
// Each collector mines the events it receives, so a rule's owner merges the others' tables with
// its own before evaluating: counts and per-minute events add, a template's first sighting is the
// earliest anywhere. Templates have the same id on every collector (a hash of source and text).
// Sending whole tables every round would cost megabytes, so a round asks in two steps: every
// template active since the rules' longest look-back, in full; then, for the templates that look
// new, only when each collector first saw them (one seen long ago elsewhere is not new).

/** One template as a collector sends it: [source, id, template, firstSeen, lastSeen, count, learningSince, minute, events, minute, events…]. */
export type PatternWire = [string, string, string, number, number, number, number, ...number[]];
/** When a collector first saw a template: [source, id, firstSeen, learningSince]. */
export type FirstSeenWire = [string, string, number, number];

export interface PatternsRequest {
  /** Send every template seen since (Unix ms); null: none. */
  activeSince: number | null;
  /** Send when these templates (`source\u0000id`) were first seen. */
  firstSeen: string[];
}

export interface PatternsAnswer {
  active: PatternWire[];
  firstSeen: FirstSeenWire[];
}

const keyOf = (source: string, id: string): string => `${source}\u0000${id}`;

/** This collector's part of a fleet round (the internal partials route answers with it). */
export function answerPatterns(table: PatternTable, req: PatternsRequest): PatternsAnswer {
  const active: PatternWire[] = [];
  const firstSeen: FirstSeenWire[] = [];
  const wanted = new Set(req.firstSeen);
  for (const { source, template, stats, learningSince = table.learningSince } of table.entries()) {
    if (req.activeSince !== null && stats.lastSeen >= req.activeSince) {
      const wire: PatternWire = [source, stats.id, template, stats.firstSeen, stats.lastSeen, stats.count, learningSince];
      for (let slot = 0; slot < stats.minutes.length; slot++) if (stats.minuteOf[slot] >= 0 && stats.minutes[slot] > 0) wire.push(stats.minuteOf[slot], stats.minutes[slot]);
      active.push(wire);
    }
    if (wanted.size > 0 && wanted.has(keyOf(source, stats.id))) firstSeen.push([source, stats.id, stats.firstSeen, learningSince]);
  }
  return { active, firstSeen };
}

interface MergedEntry {
  source: string;
  template: string;
  stats: { id: string; firstSeen: number; lastSeen: number; count: number; minutes: Uint32Array; minuteOf: Float64Array };
  learningSince: number;
}

/** The fleet's pattern table for one round, merged from every collector's answer. */
export class MergedPatterns implements PatternTable {
  readonly learningSince = -Infinity;
  private readonly byKey = new Map<string, MergedEntry>();

  entries(): Iterable<MergedEntry> {
    return this.byKey.values();
  }

  /** Adds one collector's active templates (each collector's at most once per round). */
  addActive(wires: readonly PatternWire[]): void {
    for (const w of wires) {
      const [source, id, template, firstSeen, lastSeen, count, learningSince] = w;
      const key = keyOf(source, id);
      let e = this.byKey.get(key);
      if (e === undefined) {
        e = { source, template, learningSince, stats: { id, firstSeen, lastSeen, count: 0, minutes: new Uint32Array(RATE_MINUTES), minuteOf: new Float64Array(RATE_MINUTES).fill(-1) } };
        this.byKey.set(key, e);
      }
      this.sighted(e, firstSeen, learningSince);
      e.stats.lastSeen = Math.max(e.stats.lastSeen, lastSeen);
      e.stats.count += count;
      for (let i = 7; i + 1 < w.length; i += 2) {
        const minute = w[i] as number;
        const slot = minute % RATE_MINUTES;
        if (e.stats.minuteOf[slot] > minute) continue; // an older minute than the ring holds
        if (e.stats.minuteOf[slot] < minute) {
          e.stats.minuteOf[slot] = minute;
          e.stats.minutes[slot] = 0;
        }
        e.stats.minutes[slot] += w[i + 1] as number;
      }
    }
  }

  /** Templates that look new within `window` from here: the ones to ask every collector about. */
  newCandidates(window: number, now: number): string[] {
    const out: string[] = [];
    for (const [key, e] of this.byKey) if (e.stats.firstSeen >= now - window) out.push(key);
    return out;
  }

  /** Earlier sightings elsewhere of templates active here. */
  addFirstSeen(wires: readonly FirstSeenWire[]): void {
    for (const [source, id, firstSeen, learningSince] of wires) {
      const e = this.byKey.get(keyOf(source, id));
      if (e !== undefined) this.sighted(e, firstSeen, learningSince);
    }
  }

  private sighted(e: MergedEntry, firstSeen: number, learningSince: number): void {
    if (firstSeen < e.stats.firstSeen || (firstSeen === e.stats.firstSeen && learningSince < e.learningSince)) {
      e.stats.firstSeen = firstSeen;
      e.learningSince = learningSince;
    }
  }
}
