import { describe, expect, it } from 'vitest';
import { PendingInterval, type BacklogDropReason } from '../../../../agent/forward/backlog.ts';
import { decodeSketch, encodeSketch, newSketch, quantile } from '../../../../shared/sketch.ts';
import type { ServiceCheck, StatsdEvent, WireDistribution, WireMetric } from '../../../../shared/wire.ts';

function timer(values: number[]): WireMetric {
  const s = newSketch();
  for (const v of values) s.accept(v);
  return { type: 'ms', name: 't', tags: [], sketch: encodeSketch(s), count: s.count, sum: s.sum, min: s.min, max: s.max, samples: values };
}

const part = (start: number, metrics: WireMetric[]) => ({ start, end: start + 10, metrics, events: [], serviceChecks: [] });

describe('merged pending interval', () => {
  it('adds counters, keeps the last gauge, unites sets, merges sketches and their samples', () => {
    const drops: [BacklogDropReason, number][] = [];
    const drop = (r: BacklogDropReason, n: number): void => void drops.push([r, n]);
    const p = new PendingInterval({ maxSeries: 100, maxSetMembers: 3, maxEvents: 10 }, part(0, [
      { type: 'c', name: 'c', tags: ['a:1'], value: 2 },
      { type: 'g', name: 'g', tags: [], value: 5 },
      { type: 's', name: 's', tags: [], members: ['x', 'y'] },
      timer([1, 2]),
    ]), drop);
    p.merge(part(10, [{ type: 'c', name: 'c', tags: ['a:1'], value: 3 }, { type: 'g', name: 'g', tags: [], value: 7 }, { type: 's', name: 's', tags: [], members: ['y', 'z', 'w'] }, timer([100])]), drop);
    const out = p.toPart();
    expect([out.start, out.end, p.intervals]).toEqual([0, 20, 2]);
    const by = Object.fromEntries(out.metrics.map((m) => [m.name, m]));
    expect(by.c).toMatchObject({ value: 5 });
    expect(by.g).toMatchObject({ value: 7 });
    expect((by.s as { members: string[] }).members.sort()).toEqual(['x', 'y', 'z']);
    const t = by.t as WireDistribution;
    expect([t.count, t.sum, t.min, t.max, t.samples]).toEqual([3, 103, 1, 100, [1, 2, 100]]);
    expect(quantile(decodeSketch(t.sketch, t), 1)).toBeCloseTo(100, 0);
    expect(quantile(decodeSketch(t.sketch, t), 0)).toBeCloseTo(1, 1);
    expect(drops).toEqual([]);
  });

  it('drops, and counts, new series past maxSeries', () => {
    const drops: [BacklogDropReason, number][] = [];
    const p = new PendingInterval({ maxSeries: 1, maxSetMembers: 3, maxEvents: 10 }, part(0, [{ type: 'c', name: 'a', tags: [], value: 1 }]), (r, n) => drops.push([r, n]));
    p.merge(part(10, [{ type: 'c', name: 'a', tags: [], value: 1 }, { type: 'c', name: 'b', tags: [], value: 1 }]), (r, n) => drops.push([r, n]));
    expect(p.toPart().metrics).toEqual([{ type: 'c', name: 'a', tags: [], value: 2 }]);
    expect(drops).toEqual([['merge_max_series', 1]]);
  });
  it('keeps events up to maxEvents and the latest status of each check, counting what does not fit', () => {
    const drops: [BacklogDropReason, number][] = [];
    const drop = (r: BacklogDropReason, n: number): void => void drops.push([r, n]);
    const event = (title: string): StatsdEvent => ({ title, text: '', timestamp: null, hostname: null, aggregationKey: null, priority: null, sourceType: null, alertType: null, tags: [] });
    const check = (name: string, status: ServiceCheck['status']): ServiceCheck => ({ name, status, timestamp: null, hostname: null, tags: [], message: null });
    const withItems = (start: number, events: StatsdEvent[], serviceChecks: ServiceCheck[]) => ({ ...part(start, []), events, serviceChecks });
    const p = new PendingInterval({ maxSeries: 10, maxSetMembers: 3, maxEvents: 2 }, withItems(0, [event('a')], [check('db', 0)]), drop);
    p.merge(withItems(10, [event('b'), event('c')], [check('db', 2), check('cache', 0)]), drop);
    expect(drops).toEqual([['merge_max_events', 1]]);
    p.merge(withItems(20, [], [check('queue', 1), check('db', 1)]), drop);
    const out = p.toPart();
    expect(out.events.map((e) => e.title)).toEqual(['a', 'b']);
    expect(out.serviceChecks.map((c) => [c.name, c.status])).toEqual([['db', 1], ['cache', 0]]);
    expect(drops).toEqual([['merge_max_events', 1], ['merge_max_events', 1]]);
  });
});
