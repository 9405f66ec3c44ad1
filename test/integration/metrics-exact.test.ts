/**
 * One bad item costs nobody else's data, and the numbers that come out are exact: through the
 * agent's UDP socket and the collector's HTTP ingest.
 *
 * - Lines over the shared statsd limits (shared/statsd-limits.ts) are refused by the agent when
 *   it parses them, counted by reason; the good lines of the same datagram reach the collector.
 * - A batch item the collector refuses (its schema, or its store's limits) is refused alone and
 *   reported by path and reason; the agent counts it and does not send the batch again.
 * - Negative counter increments and values that are or become non-finite are refused by reason.
 * - Small samples: nearest-rank quantiles (t:0,0,250 → p90 = p99 = 250; 1,2,3,4 → p90 = 4).
 * - `|T` timestamps further than maxTimestampSkew from now are refused by reason.
 * - A set with no members in an interval shows 0.
 * - DogStatsD events: absent hostname is null, absent date is the arrival time.
 *
 * The agent's interval ends only when a test flushes it (flushInterval is an hour).
 */
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, startCollector, stopAllInProcess, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { scrape, samplesOf, valueOf, type Exposition } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';
import { newSketch, encodeSketch } from '../../shared/sketch.ts';
import { STATSD_LIMITS } from '../../shared/statsd-limits.ts';

let collector: CollectorUnderTest;
let agent: AgentUnderTest;
let socket: dgram.Socket;
let datagramsSent = 0;

beforeAll(async () => {
  collector = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  limits: { maxLabels: 8 }
`);
  agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h, maxTimestampSkew: 5m }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
`);
  socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.connect(agent.statsdPort, '127.0.0.1', () => resolve()));
});

afterAll(async () => {
  await new Promise<void>((resolve) => (socket ? socket.close(() => resolve()) : resolve()));
  await stopAllInProcess();
});

async function send(...datagrams: string[]): Promise<Exposition> {
  for (const d of datagrams) await new Promise<void>((resolve, reject) => socket.send(Buffer.from(d), (err) => (err ? reject(err) : resolve())));
  datagramsSent += datagrams.length;
  return waitFor(
    async () => {
      const a = await scrape(agent.url);
      expect(valueOf(a, 'plumb_statsd_datagrams_total')).toBe(datagramsSent);
      return a;
    },
    { what: `the agent to receive ${datagramsSent} datagrams` },
  );
}

function parseErrors(a: Exposition): Record<string, number> {
  return Object.fromEntries(samplesOf(a, 'plumb_statsd_parse_errors_total').map((s) => [s.labels.reason, s.value]));
}

/** Flushes the agent and waits until the collector shows `check`. */
async function flushAndSee(check: (e: Exposition) => void, what: string): Promise<Exposition> {
  await agent.agent.flush();
  return waitFor(
    async () => {
      const e = await scrape(collector.url);
      check(e);
      return e;
    },
    { what },
  );
}

describe('limits shared by agent and collector, per item', () => {
  it('refuses over-long names and tags, too many tags and event tags at the agent; the good lines of the datagram arrive', async () => {
    const before = parseErrors(await scrape(agent.url));
    const manyTags = Array.from({ length: STATSD_LIMITS.maxTags + 1 }, (_, i) => `t${i}:v`).join(',');
    const a = await send(
      [
        'limits.good:1|c|#env:prod',
        `${'n'.repeat(STATSD_LIMITS.maxNameLength + 1)}:1|c`,
        `limits.longtag:1|c|#k:${'v'.repeat(STATSD_LIMITS.maxTagLength)}`,
        `limits.manytags:1|c|#${manyTags}`,
        `_e{5,4}:title|text|#${manyTags}`,
        `limits.member:${'m'.repeat(STATSD_LIMITS.maxSetMemberLength + 1)}|s`,
        'limits.good:2|c|#env:prod',
      ].join('\n'),
    );
    const after = parseErrors(a);
    const delta = (r: string): number => (after[r] ?? 0) - (before[r] ?? 0);
    expect({ name: delta('name_too_long'), tag: delta('tag_too_long'), tags: delta('too_many_tags'), member: delta('member_too_long') }).toEqual({ name: 1, tag: 1, tags: 2, member: 1 });
    const e = await flushAndSee((e) => expect(valueOf(e, 'limits_good_total', { env: 'prod' })).toBe(3), 'the good lines at the collector');
    expect(samplesOf(e, 'limits_longtag_total')).toEqual([]);
    const agentAfter = await scrape(agent.url);
    expect(samplesOf(agentAfter, 'plumb_forward_dropped_total').reduce((n, s) => n + s.value, 0)).toBe(0);
  });

  it('a collector refusing one item reports it; the agent counts it and does not send the batch again', async () => {
    // 9 tags is within the statsd limit (256) but over this collector's maxLabels (8)
    const wide = Array.from({ length: 9 }, (_, i) => `k${i}:v`).join(',');
    await send(`items.wide:1|c|#${wide}\nitems.kept:4|c`);
    await flushAndSee((e) => expect(valueOf(e, 'items_kept_total')).toBe(4), 'the kept item');
    const a = await waitFor(
      async () => {
        const a = await scrape(agent.url);
        expect(valueOf(a, 'plumb_forward_items_rejected_total', { kind: 'metrics', reason: 'too_many_labels' })).toBe(1);
        return a;
      },
      { what: 'the agent to count the refused item' },
    );
    expect(valueOf(a, 'plumb_forward_retries_total', { kind: 'metrics' }) ?? 0).toBe(0);
    expect(valueOf(a, 'plumb_forward_dropped_total', { kind: 'metrics', reason: 'rejected' }) ?? 0).toBe(0);
    expect(valueOf(a, 'plumb_forward_queue_batches')).toBe(0);
  });

  it('HTTP: null, true, "5", an over-long tag and a negative counter are refused by path; the rest applies', async () => {
    const one = newSketch();
    one.accept(3);
    const body = {
      id: 'per-item-1',
      agent: 'http-client',
      seq: 1,
      start: 0,
      end: 1,
      metrics: [
        { type: 'c', name: 'http.good', tags: [], value: 2 },
        { type: 'c', name: 'http.null', tags: [], value: null },
        { type: 'g', name: 'http.true', tags: [], value: true },
        { type: 'g', name: 'http.string', tags: [], value: '5' },
        { type: 'c', name: 'http.longtag', tags: [`k:${'v'.repeat(STATSD_LIMITS.maxTagLength)}`], value: 1 },
        { type: 'c', name: 'http.negative', tags: [], value: -3 },
        { type: 'ms', name: 'http.timer', tags: [], sketch: encodeSketch(one), count: '1', sum: 3, min: 3, max: 3 },
        { type: 'g', name: 'http.gauge', tags: [], value: 7 },
      ],
      events: [{ title: 't', text: 'x', timestamp: 'now', hostname: null, aggregationKey: null, priority: null, sourceType: null, alertType: null, tags: [] }],
      serviceChecks: [],
    };
    const res = await fetch(`${collector.url}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as { accepted: number; refused: number; errors: { path: string; reason: string }[]; reasons: Record<string, number> };
    expect(answer.accepted).toBe(2);
    expect(answer.refused).toBe(7);
    expect(answer.errors.map((e) => [e.path, e.reason])).toEqual([
      ['/metrics/1/value', 'wrong_type'],
      ['/metrics/2/value', 'wrong_type'],
      ['/metrics/3/value', 'wrong_type'],
      ['/metrics/4/tags/0', 'tag_too_long'],
      ['/metrics/5/value', 'negative_counter'],
      ['/metrics/6/count', 'wrong_type'],
      ['/events/0/timestamp', 'wrong_type'],
    ]);
    const e = await scrape(collector.url);
    expect(valueOf(e, 'http_good_total')).toBe(2);
    expect(valueOf(e, 'http_gauge')).toBe(7);
    for (const name of ['http_null_total', 'http_true', 'http_string', 'http_longtag_total', 'http_negative_total', 'http_timer_count']) expect(samplesOf(e, name), name).toEqual([]);
    expect(valueOf(e, 'plumb_ingest_items_rejected_total', { kind: 'metrics', reason: 'wrong_type' })).toBe(4);
    expect(valueOf(e, 'plumb_ingest_items_rejected_total', { kind: 'events', reason: 'wrong_type' })).toBe(1);
  });
});

describe('exact numbers', () => {
  it('refuses negative counter increments, and values that are or become non-finite; a counter never decreases', async () => {
    const before = parseErrors(await scrape(agent.url));
    const a = await send(
      ['exact.counter:5|c', 'exact.counter:-8|c', 'exact.big:1e308|c', 'exact.big:1e308|c', 'exact.tiny:1|c|@1e-320', 'exact.inf:Infinity|c', 'exact.nan:NaN|ms', 'exact.huge:1e309|g'].join(
        '\n',
      ),
    );
    const after = parseErrors(a);
    const delta = (r: string): number => (after[r] ?? 0) - (before[r] ?? 0);
    expect({ negative: delta('negative_counter'), nonFinite: delta('non_finite'), rate: delta('bad_sample_rate'), value: delta('bad_value') }).toEqual({
      negative: 1,
      nonFinite: 1,
      rate: 1,
      value: 3,
    });
    const e = await flushAndSee((e) => expect(valueOf(e, 'exact_counter_total')).toBe(5), 'the counter');
    expect(valueOf(e, 'exact_big_total')).toBe(1e308);
    for (const name of ['exact_tiny_total', 'exact_inf_total', 'exact_nan_count', 'exact_huge']) expect(samplesOf(e, name), name).toEqual([]);
  });

  it('small samples get nearest-rank quantiles; large ones stay within the sketch accuracy', async () => {
    const large = Array.from({ length: 2000 }, (_, i) => i + 1);
    const lines = ['q.three:0|ms', 'q.three:0|ms', 'q.three:250|ms', 'q.four:1|ms', 'q.four:2|ms', 'q.four:3|ms', 'q.four:4|ms', 'q.rated:10|ms|@0.5', 'q.rated:20|ms'];
    const datagrams = [lines.join('\n')];
    for (let i = 0; i < large.length; i += 100) datagrams.push(large.slice(i, i + 100).map((v) => `q.large:${v}|ms`).join('\n'));
    await send(...datagrams);
    const e = await flushAndSee((e) => expect(valueOf(e, 'q_large_count')).toBe(2000), 'the timers');
    const q = (name: string, quantile: string): number | undefined => valueOf(e, name, { quantile });
    expect([q('q_three', '0.5'), q('q_three', '0.9'), q('q_three', '0.99')]).toEqual([0, 250, 250]);
    expect([q('q_four', '0.5'), q('q_four', '0.9'), q('q_four', '0.99')]).toEqual([2, 4, 4]);
    // 10 sampled at 0.5 weighs 2 of 3: the median is 10
    expect([q('q_rated', '0.5'), q('q_rated', '0.9')]).toEqual([10, 20]);
    for (const [quantile, exact] of [['0.5', 1000], ['0.9', 1800], ['0.99', 1980]] as const) {
      const v = q('q_large', quantile) as number;
      expect(Math.abs(v - exact) / exact, `p${quantile}`).toBeLessThanOrEqual(0.0101);
    }
  });

  it('refuses |T timestamps beyond maxTimestampSkew and counts the ones within it in the current interval', async () => {
    const before = parseErrors(await scrape(agent.url));
    const now = Math.floor(Date.now() / 1000);
    const a = await send([`ts.counter:1|c|T${now - 3600}`, `ts.counter:2|c|T${now + 3600}`, `ts.counter:4|c|T${now - 10}`, 'ts.counter:8|c'].join('\n'));
    expect((parseErrors(a).timestamp_out_of_range ?? 0) - (before.timestamp_out_of_range ?? 0)).toBe(2);
    await flushAndSee((e) => expect(valueOf(e, 'ts_counter_total')).toBe(12), 'the counter');
  });

  it('a set with no members in an interval shows 0', async () => {
    await send('set.users:alice|s\nset.users:bob|s\nset.marker:1|c');
    await flushAndSee((e) => expect(valueOf(e, 'set_users')).toBe(2), 'the set with two members');
    await send('set.marker:1|c');
    await flushAndSee((e) => {
      expect(valueOf(e, 'set_marker_total')).toBe(2);
      expect(valueOf(e, 'set_users')).toBe(0);
    }, 'the set with no members');
  });

  it('an event without hostname shows null, without a date its arrival time', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    await send('_e{6,4}:nodate|text\nevent.marker:1|c');
    await flushAndSee((e) => expect(valueOf(e, 'event_marker_total')).toBe(1), 'the batch with the event');
    const { events } = (await (await fetch(`${collector.url}/api/v1/events`)).json()) as { events: { title: string; timestamp: number | null; hostname: string | null }[] };
    const ev = events.find((x) => x.title === 'nodate');
    expect(ev?.hostname).toBeNull();
    expect(ev?.timestamp).toBeGreaterThanOrEqual(t0);
    expect(ev?.timestamp).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
  });
});
