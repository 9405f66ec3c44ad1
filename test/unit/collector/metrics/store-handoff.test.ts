/**
 * Moving series between collectors (a fleet's scale-down): what one store exports and another
 * merges must expose the same numbers as one store that saw everything.
 */
import { describe, expect, it } from 'vitest';
import { MetricStore, type MetricStoreOptions } from '../../../../collector/metrics/store.ts';
import { newSketch, encodeSketch } from '../../../../shared/sketch.ts';
import { seriesKey } from '../../../../shared/membership.ts';
import type { MetricBatch, WireMetric } from '../../../../shared/wire.ts';

const options: MetricStoreOptions = { quantiles: [0.5, 0.9, 0.99], windowMs: 60_000, seriesTtlMs: 600_000, mappings: [], maxSeries: 1000, maxSetMembers: 1000, relativeAccuracy: 0.01, maxEvents: 10 };

let seq = 0;
function batch(metrics: WireMetric[], agent: string): MetricBatch {
  seq++;
  return { id: `${agent}:${seq}`, agent, seq, start: 0, end: 0, metrics, events: [], serviceChecks: [{ name: 'db', status: 1, timestamp: null, hostname: null, tags: [], message: null }] };
}

function timer(name: string, values: number[]): WireMetric {
  const s = newSketch();
  for (const v of values) s.accept(v);
  return { type: 'ms', name, tags: ['env:prod'], sketch: encodeSketch(s), count: s.count, sum: s.sum, min: s.min, max: s.max };
}

function agentBatch(agent: string, i: number): MetricBatch {
  const values = Array.from({ length: 50 }, (_, k) => ((k * 37 + i * 11) % 97) + 1 + i);
  return batch(
    [
      { type: 'c', name: 'requests', tags: ['env:prod'], value: 3 + i },
      { type: 'g', name: 'queue', tags: [], value: i },
      { type: 's', name: 'users', tags: [], members: [`${agent}-${i}`, 'shared'] },
      timer('latency', values),
    ],
    agent,
  );
}

describe('series handoff between stores', () => {
  it('export from one store and merge into another equals one store that saw every batch', () => {
    const now = 1_700_000_000_000;
    const single = new MetricStore(options);
    const a = new MetricStore(options);
    const b = new MetricStore(options);
    for (let i = 0; i < 6; i++) {
      const x = agentBatch('x', i);
      const y = agentBatch('y', i);
      single.apply(x, now + i * 1000);
      single.apply(y, now + i * 1000);
      // a saw the first half of the intervals, b (the new owner) the second half
      (i < 3 ? a : b).apply(x, now + i * 1000);
      (i < 3 ? a : b).apply(y, now + i * 1000);
    }
    const groups = a.exportSeries(() => 'b');
    const g = groups.get('b');
    expect(g?.keys.length).toBe(a.size);
    // through JSON, as it travels
    expect(b.mergeSeries(JSON.parse(JSON.stringify(g?.chunks)) as unknown[])).toBe(5);
    expect(a.removeSeries(g?.keys ?? [])).toBe(5);
    expect(a.size).toBe(0);
    expect(b.render(now + 6000)).toBe(single.render(now + 6000));
  });

  it('keeps the routing key of each series through export, snapshot and restore', () => {
    const a = new MetricStore(options);
    a.apply(agentBatch('x', 1));
    const routes: string[] = [];
    a.exportSeries((route) => {
      routes.push(route);
      return undefined;
    });
    expect(routes.sort()).toEqual(['check|db', 'latency|env:prod', 'queue', 'requests|env:prod', 'users'].sort());
    expect(routes).toContain(seriesKey({ name: 'latency', tags: ['env:prod'] }));
    const restored = new MetricStore(options);
    restored.restore(a.snapshot());
    expect(restored.countRoutes((r) => r === 'requests|env:prod')).toBe(1);
  });

  it('refuses a handed-over family whose type clashes with one it has', () => {
    const a = new MetricStore(options);
    a.apply(batch([{ type: 'g', name: 'thing', tags: [], value: 1 }], 'x'));
    const b = new MetricStore(options);
    b.apply(batch([{ type: 's', name: 'thing', tags: [], members: ['m'] }], 'x'));
    const chunks = [...a.exportSeries((r) => (r === 'thing' ? 'b' : undefined)).values()][0].chunks;
    expect(b.mergeSeries(chunks)).toBe(0);
  });
});
