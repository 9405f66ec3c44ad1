/**
 * /metrics streams the store's exposition in pieces (renderChunks) instead of one string: the
 * pieces must add up to render()'s text exactly, stay near the asked size, and stay valid when
 * batches are applied or series removed between two pieces (a scrape drains while ingest runs).
 */
import { describe, expect, it } from 'vitest';
import { MetricStore, type MetricStoreOptions } from '../../../../collector/metrics/store.ts';
import { newSketch, encodeSketch } from '../../../../shared/sketch.ts';
import type { MetricBatch, WireMetric } from '../../../../shared/wire.ts';

const NOW = 1_000_000;

const HISTOGRAM: MetricStoreOptions['mappings'][number] = { match: 'db.*.time', matchType: 'glob', name: 'db_time', labels: { op: '$1' }, action: 'map', histogram: { buckets: [10, 100] } };
const options = (): MetricStoreOptions => ({ quantiles: [0.5, 0.99], windowMs: 60_000, seriesTtlMs: 600_000, mappings: [HISTOGRAM], maxSeries: 100_000, maxSetMembers: 1000, relativeAccuracy: 0.01, maxEvents: 10 });

function batch(metrics: WireMetric[], agent = 'a'): MetricBatch {
  return { id: `${agent}:1`, agent, seq: 1, start: 0, end: 0, metrics, events: [], serviceChecks: [] };
}

function timer(name: string, values: number[], tags: string[] = []): WireMetric {
  const s = newSketch();
  for (const v of values) s.accept(v);
  return { type: 'ms', name, tags, sketch: encodeSketch(s), count: s.count, sum: s.sum, min: s.min, max: s.max };
}

/** Every kind the store exposes, `n` series of the counter family. */
function filled(n: number): MetricStore {
  const store = new MetricStore(options());
  const metrics: WireMetric[] = [];
  for (let i = 0; i < n; i++) metrics.push({ type: 'c', name: 'requests', tags: [`host:h${i}`, 'env:prod'], value: i + 0.5 });
  metrics.push({ type: 'g', name: 'queue.depth', tags: ['path:C:\\dir "x"\nnext'], value: -3 });
  metrics.push({ type: 's', name: 'users', tags: [], members: ['a', 'b'] });
  metrics.push(timer('api.latency', [1, 2, 3, 400], ['route:/a']));
  metrics.push(timer('db.select.time', [5, 50, 500]));
  metrics.push({ type: 'hist', name: 'otlp.size', tags: ['k:v'], bounds: [1, 10], counts: [1, 2, 3], sum: 40, count: 6 });
  metrics.push({ type: 'sum', name: 'otlp.rtt', tags: [], quantiles: [[0.5, 3], [0.9, 7]], sum: 30, count: 6 });
  store.apply(batch(metrics), NOW);
  return store;
}

describe('metric store exposition in pieces', () => {
  it('adds up to render() exactly, every piece whole lines and near the asked size', () => {
    const store = filled(3000);
    const text = store.render(NOW + 1000);
    const pieces = [...store.renderChunks(NOW + 1000, 4096)];
    expect(pieces.length).toBeGreaterThan(20);
    expect(pieces.join('')).toBe(text);
    for (const p of pieces) {
      expect(p.endsWith('\n')).toBe(true);
      // a piece closes after the series that takes it past the size: one series' lines at most beyond
      expect(p.length).toBeLessThan(4096 + 1000);
    }
    expect(text).toContain('queue_depth{path="C:\\\\dir \\"x\\"\\nnext"} -3');
    expect(text).toContain('requests_total{env="prod",host="h2999"} 2999.5');
    expect(text).toContain('otlp_rtt{quantile="0.9"} 7');
  });

  it('is empty for an empty store, as render() is', () => {
    const store = new MetricStore(options());
    expect([...store.renderChunks(NOW)]).toEqual([]);
    expect(store.render(NOW)).toBe('');
  });

  it('stays valid when series are added and removed between pieces: each line once, each family once', () => {
    const store = filled(2000);
    const before = new Set(store.render(NOW + 1000).split('\n').filter((l) => l.startsWith('requests_total{')));
    const lines: string[] = [];
    let step = 0;
    for (const piece of store.renderChunks(NOW + 1000, 2048)) {
      lines.push(...piece.split('\n').slice(0, -1));
      step++;
      if (step === 3) {
        // new series of an existing family and a new family, and a series not reached yet removed
        store.apply(batch([{ type: 'c', name: 'requests', tags: ['host:late', 'env:prod'], value: 1 }, { type: 'g', name: 'late.gauge', tags: [], value: 1 }], 'b'), NOW + 1000);
        expect(store.removeSeries([['requests_total', 'env="prod",host="h1999"']])).toBe(1);
      }
    }
    expect(step).toBeGreaterThan(3);
    expect(new Set(lines).size).toBe(lines.length);
    const families = lines.filter((l) => l.startsWith('# TYPE '));
    expect(new Set(families).size).toBe(families.length);
    const shown = new Set(lines.filter((l) => l.startsWith('requests_total{')));
    for (const l of before) if (!l.includes('h1999')) expect(shown.has(l)).toBe(true);
    expect(shown.has('requests_total{env="prod",host="h1999"} 1999.5')).toBe(false);
    expect(shown.has('requests_total{env="prod",host="late"} 1')).toBe(true);
    expect(lines).toContain('late_gauge 1');
  });
});
