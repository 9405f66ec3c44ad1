import { describe, expect, it } from 'vitest';
import { MetricStore, type MetricStoreOptions } from '../../../../collector/metrics/store.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { newSketch, encodeSketch } from '../../../../shared/sketch.ts';
import type { MetricBatch, WireMetric } from '../../../../shared/wire.ts';

const options = (over: Partial<MetricStoreOptions> = {}): MetricStoreOptions => ({
  quantiles: [0.5, 0.99],
  windowMs: 60_000,
  seriesTtlMs: 600_000,
  mappings: [],
  maxSeries: 1000,
  maxSetMembers: 1000,
  relativeAccuracy: 0.01,
  maxEvents: 10,
  ...over,
});

let seq = 0;
function batch(metrics: WireMetric[], agent = 'a'): MetricBatch {
  seq++;
  return { id: `${agent}:${seq}`, agent, seq, start: 0, end: 0, metrics, events: [], serviceChecks: [] };
}

function timer(name: string, values: number[], tags: string[] = []): WireMetric {
  const s = newSketch();
  for (const v of values) s.accept(v);
  return { type: 'ms', name, tags, sketch: encodeSketch(s), count: s.count, sum: s.sum, min: s.min, max: s.max };
}

/** Samples of the exposition as name{labels} → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

describe('metric store', () => {
  it('accumulates counters across batches and agents into _total', () => {
    const store = new MetricStore(options());
    store.apply(batch([{ type: 'c', name: 'deploys', tags: ['env:prod'], value: 1 }], 'a'));
    store.apply(batch([{ type: 'c', name: 'deploys', tags: ['env:prod'], value: 2.5 }], 'b'));
    const text = store.render();
    expect(text).toContain('# TYPE deploys_total counter');
    expect(samples(text).get('deploys_total{env="prod"}')).toBe(3.5);
  });

  it('keeps the last gauge value and the union of set members across agents', () => {
    const store = new MetricStore(options());
    store.apply(batch([{ type: 'g', name: 'temp', tags: [], value: 3 }, { type: 's', name: 'users', tags: [], members: ['x', 'y'] }], 'a'));
    store.apply(batch([{ type: 'g', name: 'temp', tags: [], value: 7 }, { type: 's', name: 'users', tags: [], members: ['y', 'z'] }], 'b'));
    const s = samples(store.render());
    expect(s.get('temp')).toBe(7);
    expect(s.get('users')).toBe(3);
  });

  it('merges sketches from several agents into window quantiles with cumulative sum and count', () => {
    const store = new MetricStore(options({ quantiles: [0.5, 0.99] }));
    const all: number[] = [];
    for (let agent = 0; agent < 4; agent++) {
      const values = Array.from({ length: 2500 }, (_, i) => (agent * 2500 + i + 1) / 10);
      all.push(...values);
      store.apply(batch([timer('api.latency', values)], `agent${agent}`));
    }
    all.sort((x, y) => x - y);
    const s = samples(store.render());
    for (const q of [0.5, 0.99]) {
      const exact = all[Math.floor(q * (all.length - 1))];
      const got = s.get(`api_latency{quantile="${q}"}`)!;
      expect(Math.abs(got - exact) / exact).toBeLessThanOrEqual(0.01);
    }
    expect(s.get('api_latency_count')).toBe(10_000);
    expect(s.get('api_latency_sum')).toBeCloseTo(all.reduce((a, b) => a + b, 0), 6);
  });

  it('forgets quantiles older than the window but keeps cumulative sum and count', () => {
    const store = new MetricStore(options({ windowMs: 60_000 }));
    store.apply(batch([timer('t', [5])]), 1_000_000);
    const later = samples(store.render(1_000_000 + 120_000));
    expect(later.get('t{quantile="0.5"}')).toBeNaN();
    expect(later.get('t_count')).toBe(1);
  });

  it('applies mapping rules with glob captures and drops', () => {
    const store = new MetricStore(
      options({
        mappings: [
          { match: 'api.*.requests', matchType: 'glob', name: 'api_requests', labels: { endpoint: '$1' }, action: 'map' },
          { match: 'debug.*', matchType: 'glob', labels: {}, action: 'drop' },
          { match: '^db\\.(\\w+)\\.time$', matchType: 'regex', name: 'db_time', labels: { op: '$1' }, action: 'map', histogram: { buckets: [10, 100] } },
        ],
      }),
    );
    store.apply(
      batch([
        { type: 'c', name: 'api.users.requests', tags: ['env:prod'], value: 4 },
        { type: 'c', name: 'debug.noise', tags: [], value: 1 },
        timer('db.select.time', [1, 5, 50, 500]),
      ]),
    );
    const text = store.render();
    const s = samples(text);
    expect(s.get('api_requests_total{endpoint="users",env="prod"}')).toBe(4);
    expect(text).not.toContain('debug');
    expect(text).toContain('# TYPE db_time histogram');
    expect(s.get('db_time_bucket{op="select",le="10"}')).toBe(2);
    expect(s.get('db_time_bucket{op="select",le="100"}')).toBe(3);
    expect(s.get('db_time_bucket{op="select",le="+Inf"}')).toBe(4);
    expect(store.refused.dropped_by_mapping).toBe(1);
  });

  it('refuses clashes so /metrics stays valid, and counts each', async () => {
    const telemetry = new Telemetry();
    const store = new MetricStore(options(), telemetry);
    store.apply(
      batch([
        { type: 'c', name: 'x', tags: [], value: 1 },
        { type: 'g', name: 'x_total', tags: [], value: 1 }, // would emit a second x_total
        { type: 'g', name: 'y', tags: [], value: 1 },
        { type: 's', name: 'y', tags: [], members: ['a'] }, // same name, other kind
        timer('lat', [1]),
        { type: 'g', name: 'lat_count', tags: [], value: 1 }, // the summary owns lat_count
        timer('q', [1], ['quantile:0.5']),
        { type: 'g', name: 'z', tags: ['a-b:1', 'a_b:2'], value: 1 }, // both become label a_b
      ]),
    );
    // x_total is the counter family's own name (type conflict); lat_count belongs to the summary (collision)
    expect(store.refused).toMatchObject({ name_collision: 1, type_conflict: 2, reserved_label: 1, label_clash: 1 });
    const names = [...samples(store.render()).keys()];
    expect(names.filter((n) => n === 'x_total')).toHaveLength(1);
    expect(await telemetry.metrics()).toContain('plumb_metrics_refused_total{reason="type_conflict"} 2');
  });

  it('refuses sketches made with another relative accuracy instead of failing the batch', () => {
    const store = new MetricStore(options({ relativeAccuracy: 0.01 }));
    const s = newSketch(0.05);
    s.accept(3);
    const other: WireMetric = { type: 'd', name: 'coarse', tags: [], sketch: encodeSketch(s), count: 1, sum: 3, min: 3, max: 3 };
    expect(store.apply(batch([other, { type: 'c', name: 'fine', tags: [], value: 1 }]))).toBe(1);
    expect(store.refused.accuracy_mismatch).toBe(1);
    expect(store.render()).toContain('fine_total 1');
  });

  it('escapes label values and sanitizes names', () => {
    const store = new MetricStore(options());
    store.apply(batch([{ type: 'g', name: 'app-1.cpu%', tags: ['path:C:\\dir "x"\nnext', '9lives:yes', 'flag'], value: 1 }]));
    expect(store.render()).toContain('app_1_cpu_{_9lives="yes",flag="true",path="C:\\\\dir \\"x\\"\\nnext"} 1');
  });

  it('expires series after seriesTtl and frees their names', () => {
    const store = new MetricStore(options({ seriesTtlMs: 1000 }));
    store.apply(batch([{ type: 'c', name: 'old', tags: [], value: 1 }]), 0);
    expect(store.render(5000)).not.toContain('old_total');
    expect(store.size).toBe(0);
    store.apply(batch([{ type: 'g', name: 'old_total', tags: [], value: 1 }]), 6000);
    expect(store.render(6000)).toContain('old_total 1');
  });

  it('enforces maxSeries', () => {
    const store = new MetricStore(options({ maxSeries: 3 }));
    store.apply(batch(Array.from({ length: 5 }, (_, i): WireMetric => ({ type: 'g', name: 'g', tags: [`i:${i}`], value: i }))));
    expect(store.size).toBe(3);
    expect(store.refused.max_series).toBe(2);
  });

  it('exposes service checks as a gauge and keeps recent events, bounded', () => {
    const store = new MetricStore(options({ maxEvents: 2 }));
    const b = batch([]);
    b.serviceChecks = [{ name: 'db', status: 2, timestamp: null, hostname: 'h1', tags: [], message: 'down' }];
    b.events = ['a', 'b', 'c'].map((title) => ({ title, text: '', timestamp: null, hostname: null, aggregationKey: null, priority: null, sourceType: null, alertType: null, tags: [] }));
    store.apply(b);
    expect(samples(store.render()).get('service_check_status{check="db",host="h1"}')).toBe(2);
    expect(store.recentEvents().map((e) => e.title)).toEqual(['b', 'c']);
  });
});
