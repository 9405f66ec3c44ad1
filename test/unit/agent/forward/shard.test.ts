import { describe, expect, it } from 'vitest';
import { collectorSeed, ownerOf, rendezvousWeight, shardInterval, seriesKey } from '../../../../agent/forward/shard.ts';
import type { WireMetric } from '../../../../shared/wire.ts';

const C = ['http://collector-a:9102', 'http://collector-b:9102', 'http://collector-c:9102', 'http://collector-d:9102'];
const keys = Array.from({ length: 20_000 }, (_, i) => `http.requests|route:/api/${i % 97},pod:web-${i}`);

function owners(collectors: readonly string[]): Map<string, string> {
  return new Map(keys.map((k) => [k, ownerOf(k, collectors)]));
}

describe('rendezvous sharding', () => {
  it('is stable: the same key goes to the same collector whatever the order of the list', () => {
    const a = owners(C);
    const b = owners([...C].reverse());
    for (const k of keys) expect(b.get(k)).toBe(a.get(k));
    expect(rendezvousWeight('x', collectorSeed(C[0]))).toBe(rendezvousWeight('x', collectorSeed(C[0])));
  });

  it('spreads keys evenly', () => {
    const counts = new Map<string, number>();
    for (const owner of owners(C).values()) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    const fair = keys.length / C.length;
    for (const c of C) {
      // 20 000 keys over 4 collectors: a fair share is 5 000, with a standard deviation near 61
      expect(Math.abs((counts.get(c) ?? 0) - fair)).toBeLessThan(fair * 0.06);
    }
  });

  it('removing a collector moves only the keys it owned, spread over the others', () => {
    const before = owners(C);
    const after = owners(C.filter((c) => c !== C[1]));
    const movedTo = new Map<string, number>();
    for (const k of keys) {
      if (before.get(k) === C[1]) {
        const to = after.get(k) as string;
        movedTo.set(to, (movedTo.get(to) ?? 0) + 1);
      } else {
        expect(after.get(k)).toBe(before.get(k));
      }
    }
    const moved = [...movedTo.values()].reduce((a, b) => a + b, 0);
    for (const c of [C[0], C[2], C[3]]) expect(movedTo.get(c) ?? 0).toBeGreaterThan(moved / 3 - moved * 0.1);
  });

  it('adding a collector takes keys only onto the new one', () => {
    const before = owners(C.slice(0, 3));
    const after = owners(C);
    let taken = 0;
    for (const k of keys) {
      if (after.get(k) === C[3]) taken++;
      else expect(after.get(k)).toBe(before.get(k));
    }
    expect(Math.abs(taken - keys.length / 4)).toBeLessThan((keys.length / 4) * 0.06);
  });

  it('splits an interval by series, event title and check name, each in exactly one part', () => {
    const metrics: WireMetric[] = keys.slice(0, 500).map((k, i) => ({ type: 'c', name: `m${i}`, tags: [k], value: i }));
    const events = Array.from({ length: 20 }, (_, i) => ({ title: `deploy ${i}`, text: '', timestamp: null, hostname: null, aggregationKey: null, priority: null, sourceType: null, alertType: null, tags: [] }));
    const serviceChecks = Array.from({ length: 20 }, (_, i) => ({ name: `check.${i}`, status: 0 as const, timestamp: null, hostname: null, tags: [], message: null }));
    const parts = shardInterval({ metrics, events, serviceChecks }, C.slice(0, 2));
    expect(parts).toHaveLength(2);
    expect(parts[0].metrics.length + parts[1].metrics.length).toBe(500);
    expect(parts[0].events.length + parts[1].events.length).toBe(20);
    expect(parts[0].serviceChecks.length + parts[1].serviceChecks.length).toBe(20);
    for (let p = 0; p < 2; p++) {
      for (const m of parts[p].metrics) expect(ownerOf(seriesKey(m), C.slice(0, 2))).toBe(C[p]);
      expect(parts[p].metrics.length).toBeGreaterThan(150);
    }
    // the same interval splits the same way every time
    expect(shardInterval({ metrics, events, serviceChecks }, C.slice(0, 2))).toEqual(parts);
  });
});
