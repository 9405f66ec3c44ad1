/**
 * OTLP metric export (collector.metrics.sinks.otlp).
 * - Round trip: collector A exports to collector B's OTLP door; B's /metrics shows every series
 *   A's shows with the same values: counters, gauges, sets, sketch summaries (exact quantiles
 *   over few samples, sketch quantiles over many), sketches mapped to buckets, OTLP explicit
 *   histograms and summaries — over two export intervals, so deltas add up.
 * - Against the OTLP test server (official definitions): the points are deltas with the
 *   representation the README states; 429 + Retry-After is retried, partial_success dead-letters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, stopAllInProcess, type CollectorUnderTest } from '../helpers/processes.ts';
import { startOtlpServer, type OtlpTestServer } from '../helpers/otlp-server.ts';
import { MetricPoster, counter, gauge } from '../helpers/metric-poster.ts';
import { waitFor } from '../helpers/wait.ts';
import { int64ToNumber } from '../../shared/otlp/codec.ts';
import { histogramAndSummaryRequest } from '../helpers/otlp-metrics.ts';
import { encodeSketch, newSketch } from '../../shared/sketch.ts';
import type { WireMetric } from '../../shared/wire.ts';

const FAMILIES = ['requests_total', 'temperature', 'users', 'latency_small', 'latency_big', 'bucketed_ms', 'http_server_duration_milliseconds', 'rpc_latency_seconds'];

function timer(name: string, values: number[], tags: string[], withSamples: boolean): WireMetric {
  const sk = newSketch(0.01);
  for (const v of values) sk.accept(v);
  return {
    type: 'ms',
    name,
    tags,
    sketch: encodeSketch(sk),
    count: values.length,
    sum: values.reduce((a, b) => a + b, 0),
    min: Math.min(...values),
    max: Math.max(...values),
    ...(withSamples ? { samples: values } : {}),
  };
}

function otlpInput(n: number): Uint8Array {
  return histogramAndSummaryRequest({
    service: 'api',
    histogram: { attributes: { route: '/a' }, count: 6 * n, sum: 120 * n, bucketCounts: [n, 2 * n, 3 * n], explicitBounds: [10, 50] },
    summary: { count: 10 * n, sum: 5 * n, quantiles: [[0.5, 0.25 * n], [0.99, 0.75 * n]] },
  });
}

async function postOtlp(c: CollectorUnderTest, n: number): Promise<void> {
  const res = await fetch(`http://${c.collector.otlpAddresses.http}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: Buffer.from(otlpInput(n)) });
  expect(res.status).toBe(200);
}

/** The sample lines of our families, sorted. */
async function samples(url: string): Promise<string[]> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#') && FAMILIES.some((f) => l.startsWith(f) && /^[a-z_]+(_bucket|_sum|_count)?[{ ]/.test(l) && l.match(/^[a-z_]+/)![0].replace(/_(bucket|sum|count)$/, '') === f.replace(/_(bucket|sum|count)$/, '')))
    .sort();
}

function batchOne(): WireMetric[] {
  const big = Array.from({ length: 500 }, (_, i) => 1 + ((i * 37) % 5000));
  return [
    counter('requests', 3, ['route:/a']),
    counter('requests', 1, ['route:/b']),
    gauge('temperature', 21.5),
    { type: 's', name: 'users', tags: [], members: ['ann', 'bob', 'cy'] },
    timer('latency_small', [5, 7, 9, 250, 11], ['route:/a'], true),
    timer('latency_big', big, [], false),
    timer('bucketed.ms', [3, 30, 300, 3000], [], true),
  ];
}

function batchTwo(): WireMetric[] {
  return [counter('requests', 4, ['route:/a']), gauge('temperature', 19), { type: 's', name: 'users', tags: [], members: ['ann', 'dee'] }, timer('latency_small', [6, 8, 400], ['route:/a'], true), timer('bucketed.ms', [1, 99], [], true)];
}

const MAPPINGS = `
    mappings:
      - { match: "bucketed.*", name: "bucketed_ms", histogram: { buckets: [10, 100, 1000] } }`;

describe('OTLP metric export, plumb → plumb', () => {
  let a: CollectorUnderTest;
  let b: CollectorUnderTest;

  beforeAll(async () => {
    b = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  otlp: { enabled: true, http: { listen: "127.0.0.1:0" }, grpc: { enabled: false } }
`);
    a = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  metrics:${MAPPINGS}
    sinks:
      interval: 1s
      otlp: { endpoint: "http://${b.collector.otlpAddresses.http}", flushInterval: 50ms, retryInitial: 50ms }
  otlp: { enabled: true, http: { listen: "127.0.0.1:0" }, grpc: { enabled: false } }
`);
  });

  afterAll(async () => {
    await stopAllInProcess();
  });

  it('shows the other collector the same series and values for every kind', async () => {
    const poster = new MetricPoster('host-1');
    expect(await poster.send(a.url, batchOne())).toBe(true);
    await postOtlp(a, 1);
    const sinks = a.collector.metricSinks!;
    const first = sinks.lastExportAt;
    await waitFor(() => sinks.lastExportAt > first, { timeoutMs: 5000, what: 'an export' });
    expect(await poster.send(a.url, batchTwo())).toBe(true);
    await postOtlp(a, 2);
    const want = await samples(a.url);
    expect(want.length).toBeGreaterThan(20);
    const got = await waitFor(async () => {
      const s = await samples(b.url);
      return JSON.stringify(s) === JSON.stringify(want) ? s : null;
    }, { timeoutMs: 10_000, what: 'the same samples in the second collector', intervalMs: 200 }).catch(async () => samples(b.url));
    expect(got).toEqual(want);
    // the windows hold what both intervals sent: exact quantiles over the 8 small samples
    expect(want).toContain('latency_small{route="/a",quantile="0.99"} 400');
    expect(want).toContain('latency_small_count{route="/a"} 8');
  });
});

describe('OTLP metric export to an OTLP server', () => {
  let server: OtlpTestServer;
  let c: CollectorUnderTest;

  beforeAll(async () => {
    server = await startOtlpServer();
    c = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  metrics:
    sinks:
      interval: 1s
      otlp: { endpoint: "${server.url}", flushInterval: 50ms, retryInitial: 50ms, headers: { x-scope-orgid: "t1" } }
`);
  });

  afterAll(async () => {
    await stopAllInProcess();
    await server.stop();
  });

  it('sends deltas in the stated representation, retrying a 429 after its Retry-After', async () => {
    server.answerNext('metrics', { status: 429, retryAfter: '1' });
    const poster = new MetricPoster('host-2');
    expect(await poster.send(c.url, [counter('jobs', 5), gauge('queue_depth', 7), timer('op_ms', [2, 4, 8], [], true)])).toBe(true);
    type Point = Record<string, unknown> & { timeUnixNano: unknown; startTimeUnixNano?: unknown };
    type Metric = { name: string; sum?: { aggregationTemporality: number; isMonotonic: boolean; dataPoints: (Point & { asDouble: number })[] }; gauge?: { dataPoints: (Point & { asDouble: number })[] }; exponentialHistogram?: { aggregationTemporality: number; dataPoints: (Point & { count: unknown; sum: number; min: number; max: number; scale: number; exemplars: { asDouble: number }[] })[] } };
    const metricsOf = (i: number): Metric[] => (server.accepted('metrics')[i].body as unknown as { resourceMetrics: { scopeMetrics: { metrics: Metric[] }[] }[] }).resourceMetrics.flatMap((rm) => rm.scopeMetrics.flatMap((sm) => sm.metrics));
    await waitFor(() => server.accepted('metrics').some((r) => metricsOf(server.accepted('metrics').indexOf(r)).some((m) => m.name === 'jobs')), { timeoutMs: 10_000, what: 'an accepted export with the counter' });
    expect(server.errors).toEqual([]);
    const [refused] = server.requests;
    expect(refused.answer).toEqual({ status: 429, retryAfter: '1' });
    const okIndex = server.accepted('metrics').findIndex((_, i) => metricsOf(i).some((m) => m.name === 'jobs'));
    const ok = server.accepted('metrics')[okIndex];
    expect(ok.at - refused.at).toBeGreaterThanOrEqual(950);
    expect(ok.headers['x-scope-orgid']).toBe('t1');
    const metrics = metricsOf(okIndex);
    const jobs = metrics.find((m) => m.name === 'jobs')!;
    expect(jobs.sum).toMatchObject({ aggregationTemporality: 1, isMonotonic: true });
    expect(jobs.sum!.dataPoints[0].asDouble).toBe(5);
    expect(int64ToNumber(jobs.sum!.dataPoints[0].timeUnixNano as never) - int64ToNumber(jobs.sum!.dataPoints[0].startTimeUnixNano as never)).toBeGreaterThanOrEqual(1e9);
    expect(metrics.find((m) => m.name === 'queue_depth')!.gauge!.dataPoints[0].asDouble).toBe(7);
    const op = metrics.find((m) => m.name === 'op_ms')!.exponentialHistogram!;
    expect(op.aggregationTemporality).toBe(1);
    expect(op.dataPoints[0]).toMatchObject({ sum: 14, min: 2, max: 8 });
    expect(int64ToNumber(op.dataPoints[0].count as never)).toBe(3);
    expect(op.dataPoints[0].exemplars.map((e) => e.asDouble)).toEqual([2, 4, 8]);
    // the next export: nothing new, so the counter's delta is 0 and the sketch is not sent
    await waitFor(() => server.accepted('metrics').length > okIndex + 1, { timeoutMs: 5000, what: 'the next export' });
    const next = metricsOf(okIndex + 1);
    expect(next.find((m) => m.name === 'jobs')!.sum!.dataPoints[0].asDouble).toBe(0);
    expect(next.find((m) => m.name === 'op_ms')).toBeUndefined();
  });
});
