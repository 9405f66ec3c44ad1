/**
 * Splitting an interval between collectors by rendezvous hashing (shared/membership.ts), the
 * same choice every collector makes for the series it owns: an agent that lists the collectors
 * sends each series straight to its owner, and a collector forwards only what the agent guessed
 * wrong (its list differs from the collectors', or a collector was down).
 */
import type { MetricBatch } from '../../shared/wire.ts';
import { checkKey, eventKey, memberSeed, normalizeMember, ownerIndex, seriesKey } from '../../shared/membership.ts';

export { ownerOf, seriesKey, memberSeed as collectorSeed, rendezvousWeight } from '../../shared/membership.ts';

export type IntervalContent = Pick<MetricBatch, 'metrics' | 'events' | 'serviceChecks'>;

/** The rendezvous seeds of `collectors`, normalized as collectors normalize their member list, so both make the same choice. */
function collectorSeeds(collectors: readonly string[]): number[] {
  return collectors.map((c) => memberSeed(normalizeMember(c)));
}

/** Which of `collectors` (its index) owns a series: the choice shardInterval makes for its metric. */
export function seriesOwner(collectors: readonly string[]): (name: string, tags: string[]) => number {
  const seeds = collectorSeeds(collectors);
  return (name, tags) => ownerIndex(seriesKey({ name, tags }), seeds);
}

/**
 * Splits an interval between `collectors`: metrics by series, events by title, service checks by
 * name. Returns one part per collector, in the same order; parts may be empty.
 */
export function shardInterval(interval: IntervalContent, collectors: readonly string[]): IntervalContent[] {
  const parts: IntervalContent[] = collectors.map(() => ({ metrics: [], events: [], serviceChecks: [] }));
  if (collectors.length === 1) {
    parts[0] = { metrics: interval.metrics, events: interval.events, serviceChecks: interval.serviceChecks };
    return parts;
  }
  const seeds = collectorSeeds(collectors);
  for (const m of interval.metrics) parts[ownerIndex(seriesKey(m), seeds)].metrics.push(m);
  for (const e of interval.events) parts[ownerIndex(eventKey(e), seeds)].events.push(e);
  for (const c of interval.serviceChecks) parts[ownerIndex(checkKey(c), seeds)].serviceChecks.push(c);
  return parts;
}
