import { describe, expect, it } from 'vitest';
import { MetricStore, type MetricStoreOptions } from '../../../../collector/metrics/store.ts';
import { newSketch, encodeSketch } from '../../../../shared/sketch.ts';
import type { MetricBatch, WireMetric } from '../../../../shared/wire.ts';

const options = (over: Partial<MetricStoreOptions> = {}): MetricStoreOptions => ({
  quantiles: [0.5, 0.99],
  windowMs: 60_000,
  seriesTtlMs: 600_000,
  mappings: [{ match: 'db.*.time', matchType: 'glob', name: 'db_time', labels: { op: '$1' }, action: 'map', histogram: { buckets: [10, 100] } }],
  maxSeries: 100_000,
  maxSetMembers: 1000,
  relativeAccuracy: 0.01,
  maxEvents: 10,
  ...over,
});

let seq = 0;
function batch(metrics: WireMetric[], agent = 'a'): MetricBatch {
  seq++;
  return {
    id: `${agent}:${seq}`,
    agent,
    seq,
    start: 0,
    end: 0,
    metrics,
    events: [{ title: `deploy ${seq}`, text: '', timestamp: null, hostname: null, aggregationKey: null, priority: null, sourceType: null, alertType: null, tags: [] }],
    serviceChecks: [{ name: 'db.up', status: 1, timestamp: null, hostname: 'h1', tags: [], message: null }],
  };
}

function timer(name: string, values: number[], tags: string[] = []): WireMetric {
  const s = newSketch();
  for (const v of values) s.accept(v);
  return { type: 'ms', name, tags, sketch: encodeSketch(s), count: s.count, sum: s.sum, min: s.min, max: s.max };
}

describe('metric store snapshot', () => {
  it('restores every kind of series so the exposition is the same, and keeps accumulating from there', () => {
    const now = 1_700_000_000_000;
    const store = new MetricStore(options());
    store.apply(
      batch([
        { type: 'c', name: 'requests', tags: ['env:prod', 'path:/a "quoted"\\'], value: 3 },
        { type: 'g', name: 'temp', tags: [], value: -2.5 },
        { type: 's', name: 'users', tags: [], members: ['x', 'y'] },
        timer('latency', [1, 2, 3, 400, -7]),
        timer('db.select.time', [1, 5, 50, 500]),
      ]),
      now - 20_000,
    );
    store.apply(batch([{ type: 'c', name: 'requests', tags: ['env:prod', 'path:/a "quoted"\\'], value: 2 }, { type: 's', name: 'users', tags: [], members: ['z'] }, timer('latency', [9, 10])], 'b'), now);

    const copy = new MetricStore(options());
    expect(copy.restore(store.snapshot())).toBe(0);
    expect(copy.render(now + 1000)).toBe(store.render(now + 1000));
    expect(copy.size).toBe(store.size);
    expect(copy.recentEvents()).toEqual(store.recentEvents());

    const more = batch([{ type: 'c', name: 'requests', tags: ['env:prod', 'path:/a "quoted"\\'], value: 10 }, timer('latency', [1000])]);
    store.apply(more, now + 2000);
    copy.apply(more, now + 2000);
    expect(copy.render(now + 3000)).toBe(store.render(now + 3000));
    expect(copy.render(now + 3000)).toContain('requests_total{env="prod",path="/a \\"quoted\\"\\\\"} 15');
  });

  it('splits a large family into several chunks and restores all of it', () => {
    const store = new MetricStore(options());
    const metrics: WireMetric[] = [];
    for (let i = 0; i < 25_000; i++) metrics.push({ type: 'c', name: 'hits', tags: [`n:${i}`], value: i });
    store.apply(batch(metrics));
    const chunks = store.snapshot();
    expect(chunks.length).toBeGreaterThan(2);
    const copy = new MetricStore(options());
    copy.restore(chunks);
    expect(copy.size).toBe(store.size);
    expect(copy.size).toBeGreaterThan(25_000);
    expect(copy.render()).toBe(store.render());
  });

  it('skips a chunk it cannot read and counts it', () => {
    const store = new MetricStore(options());
    store.apply(batch([{ type: 'g', name: 'a', tags: [], value: 1 }]));
    const copy = new MetricStore(options());
    expect(copy.restore([Buffer.from('{not json'), ...store.snapshot()])).toBe(1);
    expect(copy.render()).toContain('\na 1\n');
  });
});

describe('metric store limits', () => {
  it('refuses metrics beyond maxSeriesPerAgent, over maxLabels or with a label over maxLabelLength, and applies the rest', () => {
    const store = new MetricStore(options({ maxSeriesPerAgent: 3, maxLabels: 2, maxLabelLength: 8 }));
    const refusals: string[] = [];
    store.onRefused = (reason, m, agent) => refusals.push(`${reason}:${m.name}:${agent}`);
    const refused = store.apply(
      batch(
        [
          { type: 'c', name: 'ok', tags: ['a:1', 'b:2'], value: 1 },
          { type: 'c', name: 'many', tags: ['a:1', 'b:2', 'c:3'], value: 1 },
          { type: 'c', name: 'long', tags: ['k:123456789'], value: 1 },
          { type: 'c', name: 'over', tags: [], value: 1 },
          { type: 'c', name: 'over2', tags: [], value: 1 },
        ],
        'agent-1',
      ),
    );
    expect(refused).toBe(4);
    expect(store.refused.too_many_labels).toBe(1);
    expect(store.refused.label_too_long).toBe(1);
    expect(store.refused.max_series_per_agent).toBe(2);
    expect(refusals).toEqual(['too_many_labels:many:agent-1', 'label_too_long:long:agent-1', 'max_series_per_agent:over:agent-1', 'max_series_per_agent:over2:agent-1']);
    expect(store.render()).toContain('ok_total{a="1",b="2"} 1');
    // a long name and value together are fine as long as each fits
    expect(store.apply(batch([{ type: 'c', name: 'fits', tags: ['12345678:12345678'], value: 1 }]))).toBe(0);
  });
});
