/**
 * The collector's `/metrics` as Prometheus reads it. Data of every kind (counters, gauges,
 * sets, timer summaries, mapped histograms, service checks) arrives through the real doors,
 * along with label values full of quotes, backslashes, newlines, control characters and
 * non-ASCII text; then
 *  - `promtool check metrics` must find nothing to say about the exposition, and
 *  - a real Prometheus server scraping the collector must ingest it (target up, no scrape
 *    error) and answer its query API with the values and the exact label values sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatsD } from 'hot-shots';
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { startAgent, startCollector, stopAllInProcess, stopAllProcesses, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { PROMETHEUS, PROMTOOL, promtoolCheckMetrics, scrape, scrapeText, startPrometheus, valueOf, type PrometheusUnderTest } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';

const HARD_VALUES = [
  'say "hi"',
  'C:\\temp\\new',
  'ends with a backslash \\',
  '\\n is not a newline',
  'line one\nline two',
  '\n',
  '"',
  '\\',
  '\\"',
  'tab\there',
  'carriage\rreturn',
  'nul\u0000byte',
  'Zürich',
  '東京',
  '🚀 launch',
  'e\u0301 combining',
  'a:b:c',
  'comma, and = sign',
  '{curly} [square]',
  ' leading and trailing ',
];

/** Hard cases plus 200 arbitrary Unicode strings (seeded: the same every run). */
const LABEL_VALUES = [...HARD_VALUES, ...fc.sample(fc.string({ unit: 'binary', minLength: 1, maxLength: 24 }), { seed: 4242, numRuns: 200 })];

let collector: CollectorUnderTest;
let agent: AgentUnderTest;
let client: StatsD;
let prometheus: PrometheusUnderTest | null = null;

beforeAll(async () => {
  collector = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  metrics:
    mappings:
      - match: "http.*.latency"
        name: http_latency
        labels: { route: "$1" }
        histogram: { buckets: [10, 50, 100] }
`);
  agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
`);
  client = new StatsD({ host: '127.0.0.1', port: agent.statsdPort, protocol: 'udp', maxBufferSize: 1400, bufferFlushInterval: 60_000 });

  // Through the UDP door: one of each kind, and tag values a statsd client can carry.
  const sent: ((c: StatsD) => void)[] = [
    (c) => c.increment('deploys', 1, ['env:prod']),
    (c) => c.increment('deploys', 2, ['env:prod']),
    (c) => c.increment('deploys', 1, ['env:staging']),
    (c) => c.gauge('queue.depth', 42, ['queue:mail']),
    (c) => c.gaugeDelta('queue.depth', -2, ['queue:mail']),
    (c) => c.set('users.unique', 'alice'),
    (c) => c.set('users.unique', 'bob'),
    ...[3, 30, 300].map((v) => (c: StatsD) => c.timing('db.query', v, ['db:orders'])),
    ...[5, 70].map((v) => (c: StatsD) => c.timing('http.home.latency', v)),
    (c) => c.increment('tagged.hard', 1, ['quote:say "hi"', 'path:C:\\temp\\new', 'city:Zürich', 'emoji:🚀 launch', 'cjk:東京']),
  ];
  for (const send of sent) send(client);
  client.check('db.reachable', client.CHECKS.CRITICAL, { hostname: 'db-1', message: 'connection refused' });
  client.flush();
  await waitFor(
    async () => {
      const a = await scrape(agent.url);
      expect(valueOf(a, 'plumb_statsd_lines_total')).toBe(sent.length);
      expect(valueOf(a, 'plumb_statsd_events_total', { kind: 'service_check' })).toBe(1);
      return true;
    },
    { what: 'the agent to take in every line' },
  );
  await agent.agent.flush();

  // Through the HTTP door: what no statsd line can carry (a newline, a comma) in a label value.
  const res = await fetch(`${collector.url}/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    body: gzipSync(
      JSON.stringify({
        id: 'label-values-1',
        agent: 'label-values',
        seq: 1,
        start: 0,
        end: 1,
        metrics: LABEL_VALUES.map((v, i) => ({ type: 'c', name: 'label.roundtrip', tags: [`id:${i}`, `v:${v}`], value: i + 1 })),
        events: [],
        serviceChecks: [],
      }),
    ),
  });
  expect(await res.json()).toEqual({ accepted: LABEL_VALUES.length, refused: 0, duplicate: false });

  await waitFor(
    async () => {
      const e = await scrape(collector.url);
      expect(valueOf(e, 'deploys_total', { env: 'prod' })).toBe(3);
      expect(valueOf(e, 'service_check_status', { check: 'db.reachable', host: 'db-1' })).toBe(2);
      return true;
    },
    { what: 'the agent interval at the collector' },
  );
});

afterAll(async () => {
  await prometheus?.stop();
  await stopAllProcesses();
  await new Promise<void>((resolve) => (client ? client.close(() => resolve()) : resolve()));
  await stopAllInProcess();
});

describe('the collector exposition through Prometheus tools', () => {
  const promtoolMissing = PROMTOOL === null ? ' — SKIPPED: promtool is not installed (Debian package "prometheus")' : '';
  it.skipIf(PROMTOOL === null)(`passes promtool check metrics with every kind of series and hard label values${promtoolMissing}`, async () => {
    const text = await scrapeText(collector.url);
    // everything sent is in the text that was checked
    for (const family of ['deploys_total', 'queue_depth', 'users_unique', 'db_query', 'http_latency', 'service_check_status', 'label_roundtrip_total', 'tagged_hard_total']) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    expect(text).toContain('\\n'); // a newline escaped in a label value
    const result = await promtoolCheckMetrics(text);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  const prometheusMissing = PROMETHEUS === null ? ' — SKIPPED: prometheus is not installed (Debian package "prometheus")' : '';
  it.skipIf(PROMETHEUS === null)(`is scraped by a real Prometheus whose query API returns what was sent${prometheusMissing}`, async () => {
    prometheus = await startPrometheus({ targets: [collector.collector.address], scrapeInterval: '1s' });
    const p = prometheus;
    const deploys = await waitFor(
      async () => {
        const r = await p.query('deploys_total');
        return r.length === 2 ? r : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'Prometheus to scrape deploys_total' },
    );
    const byEnv = Object.fromEntries(deploys.map((s) => [s.metric.env, Number(s.value[1])]));
    expect(byEnv).toEqual({ prod: 3, staging: 1 });
    // the whole scrape was accepted, not just the lines before a problem
    const targets = await p.targets();
    expect(targets).toEqual([expect.objectContaining({ health: 'up', lastError: '' })]);

    const one = async (q: string): Promise<number> => {
      const r = await p.query(q);
      expect(r, q).toHaveLength(1);
      return Number(r[0].value[1]);
    };
    expect(await one('queue_depth{queue="mail"}')).toBe(40);
    expect(await one('users_unique')).toBe(2);
    expect(await one('db_query_count{db="orders"}')).toBe(3);
    expect(await one('db_query_sum{db="orders"}')).toBe(333);
    expect(await one('http_latency_bucket{route="home",le="50"}')).toBe(1);
    expect(await one('service_check_status{check="db.reachable"}')).toBe(2);
    const hard = await p.query('tagged_hard_total');
    expect(hard).toHaveLength(1);
    expect(hard[0].metric).toMatchObject({ quote: 'say "hi"', path: 'C:\\temp\\new', city: 'Zürich', emoji: '🚀 launch', cjk: '東京' });

    // Every label value comes back from Prometheus exactly as it was sent.
    const roundtrip = await p.query('label_roundtrip_total');
    const got = new Map(roundtrip.map((s) => [Number(s.metric.id), { v: s.metric.v, value: Number(s.value[1]) }]));
    const mismatches = LABEL_VALUES.flatMap((v, i) => {
      const g = got.get(i);
      return g && g.v === v && g.value === i + 1 ? [] : [{ id: i, sent: v, got: g }];
    });
    expect(mismatches).toEqual([]);
  });
});
