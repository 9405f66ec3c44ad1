import { describe, expect, it } from 'vitest';
import { newSketch, mergeSketch, type Sketch } from '../../../../shared/sketch.ts';
import { harness } from './harness.ts';

const S = 1000;

function sketchOf(values: number[]): Sketch {
  const s = newSketch();
  for (const v of values) s.accept(v);
  return s;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** One rule per aggregate over `metric`, named after the aggregate. */
function rulesFor(metric: string, aggregates: string[], extra = ''): string {
  return `rules:\n${aggregates
    .map((a) => `  - { alert: ${a}, metric: ${metric}, aggregate: ${a}, window: 1m, op: ">", threshold: 1e12${extra} }`)
    .join('\n')}\n`;
}

function value(h: ReturnType<typeof harness>, rule: string, now: number): number {
  const v = h.engine.values(rule, now);
  expect(v).toHaveLength(1);
  return v[0].value;
}

describe('aggregates over counters', () => {
  const aggs = ['count', 'sum', 'avg', 'min', 'max', 'rate', 'increase'];
  it('sums increments: increase, rate per second, count of events, per-report avg/min/max', () => {
    const h = harness(rulesFor('http.requests', aggs));
    // Three agents' batches inside the window, one before it.
    for (const [t, v] of [[0, 1000], [20 * S, 10], [40 * S, 20], [60 * S, 30]]) {
      h.engine.observeMetric({ statsdName: 'http.requests', name: 'http_requests', labels: { service: 'api' }, type: 'c', value: v }, t);
    }
    const now = 60 * S; // window (0 s, 60 s]: the batch at 0 s is out
    expect(value(h, 'increase', now)).toBe(60);
    expect(value(h, 'rate', now)).toBe(1); // 60 events / 60 s
    expect(value(h, 'count', now)).toBe(60);
    expect(value(h, 'sum', now)).toBe(60);
    expect(value(h, 'avg', now)).toBe(20);
    expect(value(h, 'min', now)).toBe(10);
    expect(value(h, 'max', now)).toBe(30);
  });

  it('finds rules by the Prometheus name, with or without _total, as well as the statsd name', () => {
    const h = harness(`
rules:
  - { alert: ByStatsd, metric: http.requests, aggregate: increase, window: 1m, op: ">", threshold: 0 }
  - { alert: ByProm, metric: http_requests, aggregate: increase, window: 1m, op: ">", threshold: 0 }
  - { alert: ByPromTotal, metric: http_requests_total, aggregate: increase, window: 1m, op: ">", threshold: 0 }
`);
    h.engine.observeMetric({ statsdName: 'http.requests', name: 'http_requests', labels: {}, type: 'c', value: 7 }, 10 * S);
    for (const r of ['ByStatsd', 'ByProm', 'ByPromTotal']) expect(value(h, r, 10 * S)).toBe(7);
  });
});

describe('aggregates over cumulative counters', () => {
  it('turns totals into increments and treats a drop as a restart from zero', () => {
    const h = harness(rulesFor('jobs_done_total', ['increase', 'rate']).replace(/window: 1m/g, 'window: 5m'));
    // The source restarts between 150 and 30: its 30 jobs since the restart are new work.
    const totals = [100, 150, 200, 30, 80];
    totals.forEach((v, i) => h.engine.observeCumulative({ name: 'jobs_done', labels: { worker: 'w1' }, value: v }, (i + 1) * 10 * S));
    const now = 60 * S;
    // 100 is only the baseline; then +50, +50, +30 (restart), +50.
    expect(value(h, 'increase', now)).toBe(180);
    expect(value(h, 'rate', now)).toBeCloseTo(180 / 300, 12);
  });

  it('keeps a baseline per series', () => {
    const h = harness(rulesFor('jobs_done', ['increase']).replace(/}$/m, ', by: [] }'));
    for (const [i, w] of ['a', 'b'].entries()) {
      h.engine.observeCumulative({ name: 'jobs_done', labels: { worker: w }, value: 1000 * (i + 1) }, 10 * S);
      h.engine.observeCumulative({ name: 'jobs_done', labels: { worker: w }, value: 1000 * (i + 1) + 5 }, 20 * S);
    }
    expect(value(h, 'increase', 30 * S)).toBe(10);
  });
});

describe('aggregates over gauges and sets', () => {
  it('avg, min, max, last, sum and count of readings', () => {
    const h = harness(rulesFor('pool.size', ['avg', 'min', 'max', 'last', 'sum', 'count', 'p50']));
    [5, 9, 7].forEach((v, i) => h.engine.observeMetric({ statsdName: 'pool.size', name: 'pool_size', labels: {}, type: 'g', value: v }, (i + 1) * 10 * S));
    const now = 30 * S;
    expect(value(h, 'avg', now)).toBe(7);
    expect(value(h, 'min', now)).toBe(5);
    expect(value(h, 'max', now)).toBe(9);
    expect(value(h, 'last', now)).toBe(7);
    expect(value(h, 'sum', now)).toBe(21);
    expect(value(h, 'count', now)).toBe(3);
    expect(value(h, 'p50', now)).toBeCloseTo(7, 0);
  });

  it('a set reports its cardinality per interval', () => {
    const h = harness(rulesFor('users.seen', ['max', 'last']));
    h.engine.observeMetric({ statsdName: 'users.seen', name: 'users_seen', labels: {}, type: 's', value: 12 }, 10 * S);
    h.engine.observeMetric({ statsdName: 'users.seen', name: 'users_seen', labels: {}, type: 's', value: 4 }, 20 * S);
    expect(value(h, 'max', 30 * S)).toBe(12);
    expect(value(h, 'last', 30 * S)).toBe(4);
  });

  it('refuses rate on a gauge with a reason in the rules API, and keeps evaluating other rules', () => {
    const h = harness(rulesFor('pool.size', ['rate', 'max']));
    h.engine.observeMetric({ statsdName: 'pool.size', name: 'pool_size', labels: {}, type: 'g', value: 5 }, 10 * S);
    h.engine.evaluate(20 * S);
    const rules = (h.engine.rulesJSON().data as { groups: { rules: { name: string; health: string; lastError: string }[] }[] }).groups[0].rules;
    const rate = rules.find((r) => r.name === 'rate')!;
    expect(rate.health).toBe('err');
    expect(rate.lastError).toMatch(/needs a counter.*gauge/);
    expect(rules.find((r) => r.name === 'max')!.health).toBe('ok');
  });
});

describe('aggregates over timers (sketches)', () => {
  const aggs = ['p50', 'p99', 'p999', 'count', 'sum', 'avg', 'min', 'max', 'rate'];

  it('takes quantiles from sketches made with a relative accuracy other than the default', () => {
    // a collector configured with metrics.relativeAccuracy 0.05 passes such sketches on
    const h = harness(rulesFor('http.request.duration', ['p99']));
    for (const part of [range(1, 1000), range(1001, 2000)]) {
      const s = newSketch(0.05);
      for (const v of part) s.accept(v);
      h.engine.observeMetric({ statsdName: 'http.request.duration', name: 'http_request_duration', labels: {}, type: 'ms', sketch: s }, 10 * S);
    }
    expect(value(h, 'p99', 20 * S)).toBeGreaterThan(1980 * 0.95);
    expect(value(h, 'p99', 20 * S)).toBeLessThan(1980 * 1.05);
  });

  it('merges sketches from several agents and intervals before taking quantiles', () => {
    const h = harness(rulesFor('http.request.duration', aggs));
    const obs = (values: number[], t: number) =>
      h.engine.observeMetric({ statsdName: 'http.request.duration', name: 'http_request_duration', labels: { service: 'api' }, type: 'ms', sketch: sketchOf(values) }, t);
    obs(range(1, 500), 10 * S); // agent A
    obs(range(501, 1000), 10 * S); // agent B, same interval
    obs(range(1001, 2000), 40 * S); // a later interval
    const now = 50 * S;
    // 2000 values 1..2000: quantiles are the values themselves, within DDSketch's 1 % guarantee.
    expect(value(h, 'p50', now)).toBeGreaterThan(1000 * 0.99);
    expect(value(h, 'p50', now)).toBeLessThan(1000 * 1.01);
    expect(value(h, 'p99', now)).toBeGreaterThan(1980 * 0.99);
    expect(value(h, 'p99', now)).toBeLessThan(1980 * 1.01);
    expect(value(h, 'p999', now)).toBeGreaterThan(1998 * 0.99);
    expect(value(h, 'p999', now)).toBeLessThanOrEqual(2000);
    expect(value(h, 'count', now)).toBe(2000);
    expect(value(h, 'sum', now)).toBe((2000 * 2001) / 2);
    expect(value(h, 'avg', now)).toBe(1000.5);
    expect(value(h, 'min', now)).toBe(1);
    expect(value(h, 'max', now)).toBe(2000);
    expect(value(h, 'rate', now)).toBeCloseTo(2000 / 60, 10);
  });

  it('takes quantiles of a group merged across series with `by`', () => {
    const h = harness(rulesFor('http.request.duration', ['p90'], ', by: [service]'));
    const obs = (host: string, values: number[]) =>
      h.engine.observeMetric({ statsdName: 'http.request.duration', name: 'x', labels: { service: 'api', host }, type: 'ms', sketch: sketchOf(values) }, 10 * S);
    obs('h1', range(1, 100));
    obs('h2', range(101, 1000));
    const v = h.engine.values('p90', 20 * S);
    expect(v).toHaveLength(1);
    expect(v[0].labels).toEqual({ service: 'api' });
    expect(v[0].value).toBeGreaterThan(900 * 0.99);
    expect(v[0].value).toBeLessThan(900 * 1.01);
  });

  it('keeps negative values when merging sketches', () => {
    const h = harness(rulesFor('temp.delta', ['min', 'p01']));
    const a = sketchOf([1, 2, 3]);
    const b = sketchOf([-50, -40]);
    mergeSketch(a, sketchOf([4]));
    h.engine.observeMetric({ statsdName: 'temp.delta', name: 'temp_delta', labels: {}, type: 'd', sketch: a }, 10 * S);
    h.engine.observeMetric({ statsdName: 'temp.delta', name: 'temp_delta', labels: {}, type: 'd', sketch: b }, 10 * S);
    expect(value(h, 'min', 20 * S)).toBe(-50);
    expect(value(h, 'p01', 20 * S)).toBeLessThan(-45);
  });
});

describe('log rules', () => {
  it('counts events matching fields and a message pattern, grouped with `by`', () => {
    const h = harness(`
rules:
  - alert: Panics
    logs: { where: { level: "=~ERROR|FATAL" }, match: "panic" }
    window: 1m
    op: ">="
    threshold: 2
  - alert: PanicsPerHost
    logs: { where: { level: ERROR }, match: "panic" }
    by: [host]
    aggregate: rate
    window: 1m
    op: ">"
    threshold: 0
`);
    const ev = (level: string, message: string, host: string, t: number) => h.engine.observeLog({ level, message, host }, t);
    ev('ERROR', 'panic: nil map', 'a', 1 * S);
    ev('FATAL', 'kernel panic', 'b', 2 * S);
    ev('ERROR', 'timeout', 'a', 3 * S);
    ev('INFO', 'panic button pressed in a test', 'a', 4 * S);
    ev('ERROR', 'panic again', 'a', 5 * S);
    expect(value(h, 'Panics', 10 * S)).toBe(3);
    expect(h.engine.values('PanicsPerHost', 10 * S)).toEqual([{ labels: { host: 'a' }, value: 2 / 60 }]);
    h.engine.evaluate(10 * S);
    expect(h.engine.alertsJSON().data.alerts.map((a) => a.labels.alertname).sort()).toEqual(['Panics', 'PanicsPerHost']);
  });
});

describe('ratio rules', () => {
  it('divides numerator by denominator per group; no numerator data counts as zero', () => {
    const h = harness(`
rules:
  - alert: ErrorRatio
    ratio:
      numerator: { metric: http.errors, where: { code: "=~5.." } }
      denominator: { metric: http.requests }
    by: [service]
    window: 5m
    op: ">"
    threshold: 0.01
`);
    const c = (name: string, labels: Record<string, string>, v: number) => h.engine.observeMetric({ statsdName: name, name, labels, type: 'c', value: v }, 10 * S);
    c('http.requests', { service: 'api' }, 1000);
    c('http.requests', { service: 'web' }, 500);
    c('http.errors', { service: 'api', code: '503' }, 30);
    c('http.errors', { service: 'api', code: '404' }, 70); // not a 5xx
    const values = h.engine.values('ErrorRatio', 20 * S).sort((a, b) => (a.labels.service < b.labels.service ? -1 : 1));
    expect(values).toEqual([
      { labels: { service: 'api' }, value: 0.03 },
      { labels: { service: 'web' }, value: 0 },
    ]);
  });
});

describe('label matchers', () => {
  it('supports =, !=, =~ and !~, with a missing label reading as empty', () => {
    const h = harness(`
rules:
  - { alert: Eq, metric: m, where: { env: prod }, aggregate: increase, window: 1m, op: ">", threshold: 0, by: [] }
  - { alert: Ne, metric: m, where: { env: "!=prod" }, aggregate: increase, window: 1m, op: ">", threshold: 0, by: [] }
  - { alert: Re, metric: m, where: { env: "=~pro.*|stag" }, aggregate: increase, window: 1m, op: ">", threshold: 0, by: [] }
  - { alert: NotRe, metric: m, where: { env: "!~pro.*" }, aggregate: increase, window: 1m, op: ">", threshold: 0, by: [] }
  - { alert: Literal, metric: m, where: { env: "==~odd" }, aggregate: increase, window: 1m, op: ">", threshold: 0, by: [] }
`);
    const c = (env: string | undefined, v: number) => h.engine.observeMetric({ statsdName: 'm', name: 'm', labels: env === undefined ? {} : { env }, type: 'c', value: v }, 10 * S);
    c('prod', 1);
    c('production', 2);
    c('stag', 4);
    c(undefined, 8);
    c('=~odd', 16);
    expect(value(h, 'Eq', 20 * S)).toBe(1);
    expect(value(h, 'Ne', 20 * S)).toBe(2 + 4 + 8 + 16);
    expect(value(h, 'Re', 20 * S)).toBe(1 + 2 + 4); // anchored: "=~odd" does not match
    expect(value(h, 'NotRe', 20 * S)).toBe(4 + 8 + 16);
    expect(value(h, 'Literal', 20 * S)).toBe(16);
  });
});

describe('series limit', () => {
  it('refuses new series past maxSeries and counts the refusals', async () => {
    const h = harness(rulesFor('m', ['increase']), { config: { maxSeries: 3 } });
    for (let i = 0; i < 5; i++) h.engine.observeMetric({ statsdName: 'm', name: 'm', labels: { id: String(i) }, type: 'c', value: 1 }, 10 * S);
    expect(h.engine.values('increase', 20 * S)).toHaveLength(3);
    const text = await h.telemetry.metrics();
    expect(text).toContain('plumb_alerts_series 3');
    expect(text).toContain('plumb_alerts_series_dropped_total{reason="limit"} 2');
  });

  it('gives the budget back when series fall out of the horizon', () => {
    const h = harness(rulesFor('m', ['increase']), { config: { maxSeries: 1 } });
    h.engine.observeMetric({ statsdName: 'm', name: 'm', labels: { id: 'old' }, type: 'c', value: 1 }, 0);
    h.engine.evaluate(10 * 60 * S);
    h.engine.observeMetric({ statsdName: 'm', name: 'm', labels: { id: 'new' }, type: 'c', value: 1 }, 10 * 60 * S);
    expect(h.engine.values('increase', 10 * 60 * S)).toEqual([{ labels: { id: 'new' }, value: 1 }]);
  });
});
