/**
 * Rendezvous (highest random weight) sharding of an interval's series across collectors. Each
 * key goes to the collector with the highest weight(key, collector); removing a collector moves
 * only the keys it owned, adding one takes roughly 1/n of the keys from the others, and every
 * agent makes the same choice without talking to the others.
 */
import type { MetricBatch, ServiceCheck, StatsdEvent, WireMetric } from '../../shared/wire.ts';

/** FNV-1a over the UTF-16 code units of `s`: fast, and well spread once mixed. */
function fnv1a(s: string, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The finalizer of MurmurHash3: every input bit flips about half the output bits. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A collector's part of the weight, computed once per collector rather than once per series. */
export function collectorSeed(collector: string): number {
  return mix(fnv1a(collector));
}

/** The weight of `key` on the collector whose seed is `seed`. */
export function rendezvousWeight(key: string, seed: number): number {
  return mix(fnv1a(key) ^ seed);
}

/**
 * Which of `collectors` owns `key`: the index of the highest weight (ties go to the first).
 * `seeds` are collectorSeed() of each collector, in the same order.
 */
export function ownerIndex(key: string, seeds: readonly number[]): number {
  const hk = fnv1a(key);
  let best = 0;
  let bestWeight = -1;
  for (let i = 0; i < seeds.length; i++) {
    const w = mix(hk ^ seeds[i]);
    if (w > bestWeight) {
      bestWeight = w;
      best = i;
    }
  }
  return best;
}

/** The collector in `collectors` that owns `key`. */
export function ownerOf(key: string, collectors: readonly string[]): string {
  return collectors[ownerIndex(key, collectors.map(collectorSeed))];
}

/** A series is its name and tags; the statsd type does not split it (the collector keys it the same way). */
export function seriesKey(m: WireMetric): string {
  return m.tags.length === 0 ? m.name : `${m.name}|${m.tags.join(',')}`;
}

export type IntervalContent = Pick<MetricBatch, 'metrics' | 'events' | 'serviceChecks'>;

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
  const seeds = collectors.map(collectorSeed);
  for (const m of interval.metrics) parts[ownerIndex(seriesKey(m), seeds)].metrics.push(m);
  for (const e of interval.events) parts[ownerIndex(eventKey(e), seeds)].events.push(e);
  for (const c of interval.serviceChecks) parts[ownerIndex(checkKey(c), seeds)].serviceChecks.push(c);
  return parts;
}

function eventKey(e: StatsdEvent): string {
  return `event|${e.title}`;
}

function checkKey(c: ServiceCheck): string {
  return `check|${c.name}`;
}
