import { describe, expect, it } from 'vitest';
import { Aggregator, EXACT_SAMPLES, type AggregatorOptions } from '../../../../agent/statsd/aggregator.ts';
import { decodeSketch, encodeSketch, newSketch, quantile } from '../../../../shared/sketch.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import type { WireMetric } from '../../../../shared/wire.ts';

const options = (over: Partial<AggregatorOptions> = {}): AggregatorOptions => ({
  maxSeries: 1000,
  maxSetMembers: 1000,
  relativeAccuracy: 0.01,
  tagStyles: { influx: true, librato: true, signalfx: true },
  maxEvents: 100,
  gaugeTtlMs: 3_600_000,
  extraTags: [],
  ...over,
});

function feed(agg: Aggregator, ...datagrams: string[]): void {
  for (const d of datagrams) agg.ingest(Buffer.from(d));
}

function find(metrics: WireMetric[], name: string, tags: string[] = []): WireMetric {
  const m = metrics.find((x) => x.name === name && x.tags.join(',') === tags.join(','));
  if (!m) throw new Error(`no ${name} ${tags} in ${JSON.stringify(metrics)}`);
  return m;
}

describe('interval aggregation', () => {
  it('sums counters with sample rates, across lines and datagrams', () => {
    const agg = new Aggregator(options());
    feed(agg, 'hits:1|c\nhits:2|c', 'hits:1|c|@0.1', 'hits:1|c|@0.5\n');
    expect(find(agg.flush().metrics, 'hits')).toEqual({ type: 'c', name: 'hits', tags: [], value: 15 });
  });

  it('treats tag order and repeats as the same series, and each style alike', () => {
    const agg = new Aggregator(options());
    feed(agg, 'req:1|c|#b:2,a:1', 'req:1|c|#a:1,b:2,a:1', 'req,a=1,b=2:1|c', 'req#b=2,a=1:1|c', 'req[a=1,b=2]:1|c', 'req:1|c|#a:1');
    const metrics = agg.flush().metrics;
    expect(find(metrics, 'req', ['a:1', 'b:2'])).toMatchObject({ value: 5 });
    expect(find(metrics, 'req', ['a:1'])).toMatchObject({ value: 1 });
    expect(metrics).toHaveLength(2);
  });

  it('keeps gauges across intervals as the base for deltas', () => {
    const agg = new Aggregator(options());
    feed(agg, 'fuel:10|g', 'fuel:+5|g\nfuel:-2|g');
    expect(find(agg.flush().metrics, 'fuel')).toMatchObject({ value: 13 });
    feed(agg, 'fuel:-3|g');
    expect(find(agg.flush().metrics, 'fuel')).toMatchObject({ value: 10 });
    // a gauge not touched in an interval is not resent
    expect(agg.flush().metrics).toHaveLength(0);
    feed(agg, 'fuel:7|g\nfuel:+1|g');
    expect(find(agg.flush().metrics, 'fuel')).toMatchObject({ value: 8 });
  });

  it('counts distinct set members', () => {
    const agg = new Aggregator(options());
    feed(agg, 'users:alice|s\nusers:bob|s', 'users:alice|s');
    const m = find(agg.flush().metrics, 'users');
    expect(m.type === 's' && [...m.members].sort()).toEqual(['alice', 'bob']);
  });

  it('puts timers into a sketch with exact count, sum, min and max', () => {
    const agg = new Aggregator(options());
    const values: number[] = [];
    for (let i = 1; i <= 1000; i++) values.push(i);
    feed(agg, values.map((v) => `t:${v}|ms`).join('\n'), 'd:1:2:3|d|@0.5');
    const metrics = agg.flush().metrics;
    const t = find(metrics, 't');
    if (t.type !== 'ms') throw new Error('not a timer');
    expect([t.count, t.sum, t.min, t.max]).toEqual([1000, 500500, 1, 1000]);
    const sketch = decodeSketch(t.sketch, t);
    expect(Math.abs(quantile(sketch, 0.99) - 990) / 990).toBeLessThanOrEqual(0.01);
    const d = find(metrics, 'd');
    // sample rate 0.5: each value stands for two
    expect(d).toMatchObject({ count: 6, sum: 12, min: 1, max: 3 });
  });

  it('drops good lines from nobody: bad lines are counted one by one', () => {
    const telemetry = new Telemetry();
    const agg = new Aggregator(options(), telemetry);
    feed(agg, 'good:1|c\nbad line\ngood:1|c\nworse:1|zz\n:1|c\ngood:1|c|@7');
    expect(find(agg.flush().metrics, 'good')).toMatchObject({ value: 2 });
    expect(agg.stats.lines).toBe(2);
    expect(agg.stats.parseErrors.reduce((a, b) => a + b, 0)).toBe(4);
  });

  it('enforces maxSeries with a counted drop, keeping existing series', () => {
    const agg = new Aggregator(options({ maxSeries: 10 }));
    const lines: string[] = [];
    for (let i = 0; i < 50; i++) lines.push(`flood:1|c|#id:${i}`);
    feed(agg, lines.join('\n'), 'flood:1|c|#id:0');
    const metrics = agg.flush().metrics;
    expect(metrics).toHaveLength(10);
    expect(find(metrics, 'flood', ['id:0'])).toMatchObject({ value: 2 });
    expect(agg.stats.droppedMaxSeries).toBe(40);
  });

  it('adds configured tags to every series', () => {
    const agg = new Aggregator(options({ extraTags: ['host:web-1'] }));
    feed(agg, 'x:1|c|#env:prod');
    expect(find(agg.flush().metrics, 'x', ['env:prod', 'host:web-1'])).toMatchObject({ value: 1 });
  });

  it('collects events and service checks per interval, bounded', () => {
    const agg = new Aggregator(options({ maxEvents: 2 }));
    feed(agg, '_e{1,1}:a|b\n_e{1,1}:c|d\n_e{1,1}:e|f\n_sc|db|1');
    const out = agg.flush();
    expect(out.events.map((e) => e.title)).toEqual(['a', 'c']);
    expect(out.serviceChecks).toEqual([{ name: 'db', status: 1, timestamp: null, hostname: null, tags: [], message: null }]);
    expect(agg.stats.droppedEvents).toBe(1);
  });

  it('exposes its counters through telemetry', async () => {
    const telemetry = new Telemetry();
    const agg = new Aggregator(options(), telemetry);
    feed(agg, 'a:1|c\nb:x|c');
    const text = await telemetry.metrics();
    expect(text).toContain('plumb_statsd_lines_total 1');
    expect(text).toContain('plumb_statsd_parse_errors_total{reason="bad_value"} 1');
  });
});

describe('flushing in slices', () => {
  it('gives the same interval as flush(), and lines arriving meanwhile count toward the next one', async () => {
    const lines = Array.from({ length: 50 }, (_, i) => `t.${i}:${i}|ms\nc.${i}:1|c\ng.${i}:${i}|g\ns.${i}:m|s`).join('\n');
    const a = new Aggregator(options());
    const b = new Aggregator(options());
    feed(a, lines);
    feed(b, lines);
    const pending = b.flushAsync(1000, 7);
    feed(b, 'late:1|c');
    const [sync, sliced] = [a.flush(1000), await pending];
    expect(sliced.metrics).toEqual(sync.metrics);
    const next = b.flush().metrics;
    expect(next.filter((m) => m.type !== 's')).toEqual([{ type: 'c', name: 'late', tags: [], value: 1 }]);
    // the sets of the last interval, once, with no members
    expect(next.filter((m) => m.type === 's')).toHaveLength(50);
    expect(next.every((m) => m.type !== 's' || m.members.length === 0)).toBe(true);
  });

  it('reports a set that got no member in an interval once with none, then forgets it', () => {
    const agg = new Aggregator(options());
    feed(agg, 'users:alice|s\nusers:bob|s');
    expect(find(agg.flush(1000).metrics, 'users')).toEqual({ type: 's', name: 'users', tags: [], members: ['alice', 'bob'] });
    expect(agg.flush(2000).metrics).toEqual([{ type: 's', name: 'users', tags: [], members: [] }]);
    expect(agg.flush(3000).metrics).toEqual([]);
  });

  it('keeps the first samples of a timer exactly beside its sketch, with their weights', () => {
    const agg = new Aggregator(options());
    feed(agg, 't:0|ms\nt:0|ms\nt:250|ms\nr:10|ms|@0.5\nr:20|ms');
    const metrics = agg.flush().metrics;
    expect(find(metrics, 't')).toMatchObject({ samples: [0, 0, 250], count: 3 });
    expect(find(metrics, 't')).not.toHaveProperty('weights');
    expect(find(metrics, 'r')).toMatchObject({ samples: [10, 20], weights: [2, 1], count: 3 });
    feed(agg, Array.from({ length: 65 }, (_, i) => `big:${i}|ms`).join('\n'));
    expect(find(agg.flush().metrics, 'big')).not.toHaveProperty('samples');
  });
});

describe('compact per-series state', () => {
  // What the aggregator sent when every timer series fed a sketch live, sample by sample.
  function liveSketch(values: number[], weights: number[]) {
    const s = newSketch(0.01);
    values.forEach((v, i) => s.accept(v, weights[i]));
    return { sketch: encodeSketch(s), count: s.count, sum: s.sum, min: s.min, max: s.max };
  }

  it('sends the same sketch, count, sum, min and max as one fed live, on both sides of the exact-sample limit', () => {
    for (const n of [1, 7, 8, 9, 33, EXACT_SAMPLES - 1, EXACT_SAMPLES, EXACT_SAMPLES + 1, 300]) {
      const agg = new Aggregator(options());
      const values: number[] = [];
      const weights: number[] = [];
      const lines: string[] = [];
      for (let i = 0; i < n; i++) {
        // zero, negatives, fractions, and a sample rate on some lines (a weight first seen mid-way)
        const v = i % 11 === 0 ? 0 : ((i * 7919) % 1000) * (i % 5 === 0 ? -1 : 1) + (i % 3) / 4;
        const rate = i > 3 && i % 4 === 0 ? 0.25 : 1;
        values.push(v);
        weights.push(1 / rate);
        lines.push(`lat:${v}|h${rate === 1 ? '' : `|@${rate}`}`);
      }
      feed(agg, lines.join('\n'));
      const m = find(agg.flush().metrics, 'lat');
      expect(m, `${n} samples`).toMatchObject({ type: 'h', ...liveSketch(values, weights) });
      if (n <= EXACT_SAMPLES) {
        expect(m).toMatchObject({ samples: values });
        if (n > 4) expect(m).toMatchObject({ weights });
        else expect(m).not.toHaveProperty('weights');
      } else {
        expect(m).not.toHaveProperty('samples');
      }
    }
  });

  it('tells apart thousands of raw texts in its byte cache, across intervals', () => {
    const agg = new Aggregator(options({ maxSeries: 20_000 }));
    for (let round = 0; round < 3; round++) {
      const lines: string[] = [];
      // same name bytes with and without a tags section, an empty one, types that share a name
      for (let i = 0; i < 5000; i++) lines.push(`s${i}:1|c|#h:${i % 7}`, `s${i}:2|c`, `s${i}:4|c|#`, `s${i}:${i}|g|#h:${i % 7}`);
      for (let i = 0; i < lines.length; i += 40) feed(agg, lines.slice(i, i + 40).join('\n'), lines.slice(i, i + 40).join('\n'));
      const metrics = agg.flush().metrics;
      // `s:2|c` and `s:4|c|#` are one series (no tags): 2 × (2 + 4)
      expect(metrics).toHaveLength(15_000);
      expect(find(metrics, 's4321', ['h:2'])).toMatchObject({ type: 'c', value: 2 });
      expect(find(metrics.filter((m) => m.type === 'c'), 's4321')).toMatchObject({ value: 12 });
      expect(find(metrics.filter((m) => m.type === 'g'), 's4321', ['h:2'])).toMatchObject({ value: 4321 });
    }
  });

  it('keeps refusing a series past maxSeries from its cached bytes, and counts every line', () => {
    const agg = new Aggregator(options({ maxSeries: 2 }));
    feed(agg, 'a:1|c\nb:1|c\nc:1|c\nc:1|c', 'c:1|c');
    expect(agg.flush().metrics).toHaveLength(2);
    expect(agg.stats.droppedMaxSeries).toBe(3);
  });
});
