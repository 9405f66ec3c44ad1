/**
 * Quantiles of small samples are nearest rank over the samples themselves, merged across agents;
 * past SKETCH_EXACT_SAMPLES in the window the sketch answers within its relative accuracy.
 */
import { describe, expect, it } from 'vitest';
import { MetricStore } from '../../../../collector/metrics/store.ts';
import { newSketch, encodeSketch, SKETCH_EXACT_SAMPLES } from '../../../../shared/sketch.ts';
import type { MetricBatch, WireMetric } from '../../../../shared/wire.ts';

const NOW = 10_000_000;

function store(): MetricStore {
  return new MetricStore({ quantiles: [0.5, 0.9, 0.99], windowMs: 60_000, seriesTtlMs: 600_000, mappings: [], maxSeries: 100, maxSetMembers: 100, relativeAccuracy: 0.01, maxEvents: 0 });
}

function timer(values: number[], withSamples = values.length <= SKETCH_EXACT_SAMPLES): WireMetric {
  const s = newSketch();
  for (const v of values) s.accept(v);
  const m: WireMetric = { type: 'ms', name: 'lat', tags: [], sketch: encodeSketch(s), count: s.count, sum: s.sum, min: s.min, max: s.max };
  if (withSamples) m.samples = values;
  return m;
}

let seq = 0;
function batch(agent: string, m: WireMetric): MetricBatch {
  seq++;
  return { id: `${agent}:${seq}`, agent, seq, start: 0, end: 0, metrics: [m], events: [], serviceChecks: [] };
}

function quantiles(s: MetricStore): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of s.render(NOW).split('\n')) {
    const m = /^lat\{quantile="([\d.]+)"\} (\S+)$/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

describe('summary quantiles', () => {
  it('are nearest rank at small counts', () => {
    const s = store();
    s.apply(batch('a', timer([0, 0, 250])), NOW);
    expect(quantiles(s)).toEqual({ '0.5': 0, '0.9': 250, '0.99': 250 });
    const four = store();
    four.apply(batch('a', timer([1, 2, 3, 4])), NOW);
    expect(quantiles(four)).toEqual({ '0.5': 2, '0.9': 4, '0.99': 4 });
  });

  it('merge the samples of several agents', () => {
    const s = store();
    s.apply(batch('a', timer([1, 2])), NOW);
    s.apply(batch('b', timer([3, 100])), NOW);
    expect(quantiles(s)).toEqual({ '0.5': 2, '0.9': 100, '0.99': 100 });
  });

  it('fall back to the sketch once the window holds more samples than are kept, or a batch came without them', () => {
    const s = store();
    const many = Array.from({ length: SKETCH_EXACT_SAMPLES }, (_, i) => i + 1);
    s.apply(batch('a', timer(many)), NOW);
    expect(quantiles(s)['0.99']).toBe(SKETCH_EXACT_SAMPLES);
    s.apply(batch('b', timer([1000])), NOW);
    // 65 samples now: the sketch answers with its own rank rule (rank 0.99·64 → the 64th value),
    // within 1% of it; nearest rank would have said 1000
    expect(Math.abs(quantiles(s)['0.99'] - SKETCH_EXACT_SAMPLES) / SKETCH_EXACT_SAMPLES).toBeLessThanOrEqual(0.01);
    const without = store();
    without.apply(batch('a', timer([0, 0, 250], false)), NOW);
    expect(quantiles(without)['0.9']).toBe(0);
  });

  it('survive a snapshot and restore', () => {
    const s = store();
    s.apply(batch('a', timer([0, 0, 250])), NOW);
    const copy = store();
    copy.restore(s.snapshot());
    expect(quantiles(copy)).toEqual({ '0.5': 0, '0.9': 250, '0.99': 250 });
  });
});
