/**
 * Fault: hostile requests at a collector that needs a bearer token, while a legitimate agent
 * holding the token streams log lines and statsd counters through it.
 *
 * - Unauthenticated: no Authorization header, a wrong token, another scheme, on ingest and on
 *   the API → 401 with `WWW-Authenticate: Bearer`. The open paths (/metrics, /readyz) stay open.
 * - Malformed (with the token): bad JSON, bad and truncated gzip → 400; an unsupported
 *   Content-Encoding or Content-Type → 415; bodies that break the metric batch schema or a log
 *   line's required fields → 400 (a bad item in a good metric batch envelope is refused alone).
 * - Oversized: a body past `collector.maxBodyBytes` (1 MiB here) and a gzip bomb that is small on
 *   the wire but expands past it → 413.
 * - Flood: for a few seconds, concurrent loopback clients post unauthenticated requests (401) and
 *   authenticated 128 KiB log batches. The file sink gathers for 2 s before each write, so its
 *   queue passes its high-water mark (`collector.logs.queue`: 4 MiB, 0.5) and the collector
 *   answers 429 + Retry-After until the sink has written.
 *
 * Asserted: every hostile request got its status; the collector counted them
 * (`plumb_ingest_rejected_total{status}` for every refusal by status, 401, 400, 413, 415 and 429;
 * `plumb_ingest_invalid_logs_total{reason}` for each refused log line, whether its batch was taken (200) or refused whole;
 * `plumb_ingest_backpressure_total{kind="logs"}` also for every 429, the flood's and the agent's);
 * it answered every /healthz probe throughout; the sink holds exactly the flood events of the
 * batches answered 200 and none of those answered 429; and the agent's data arrived exactly:
 * every line once, the counter total equal to what was sent.
 */
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import {
  agentRole,
  awaitDelivery,
  collectorRole,
  counterTally,
  faultRun,
  fileSinkEvents,
  freeUdpPort,
  lineNumbers,
  report,
  sendCounter,
  since,
  stopwatch,
  waitFor,
  waitReady,
  watchHealth,
  writeLog,
  type FaultRun,
} from './harness.ts';

const TOKEN = 'hostile-test-token-4f1c9a';
const LINES = 20_000;
const RATE = 4000;
const INCREMENTS = 20_000;
const FLOOD_MS = 3000;
const FLOOD_MAX_MS = 30_000;
const FLOOD_MIN_REQUESTS = 1000;
const FLOOD_LOG_CLIENTS = 8;
const FLOOD_OPEN_CLIENTS = 8;
const FLOOD_EVENTS_PER_BATCH = 600;

let run: FaultRun;
afterEach(async () => {
  await run?.cleanup();
});

type Counted = 'rejected' | 'invalid_logs';

interface HostileCase {
  what: string;
  method?: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
  status: number;
  /** Which counter must show it: the HTTP door's rejections, or log batches refused for their lines. */
  counted: Counted;
  /** For invalid_logs: the reason label. */
  reason?: string;
}

function metricBatch(id: string): string {
  return JSON.stringify({ id, agent: 'hostile', seq: 1, start: 0, end: 1, metrics: [{ type: 'c', name: 'hostile.injected', tags: [], value: 1_000_000 }], events: [], serviceChecks: [] });
}

function logLine(message: string, id: string, pad = 0): string {
  return JSON.stringify({ '@timestamp': new Date().toISOString(), message, event: { id }, pad: '.'.repeat(pad) });
}

function hostileCases(): HostileCase[] {
  const json = { 'content-type': 'application/json' };
  const ndjson = { 'content-type': 'application/x-ndjson' };
  const auth = { authorization: `Bearer ${TOKEN}` };
  const valid = metricBatch('hostile:1');
  const gz = gzipSync(valid);
  const oversized = JSON.stringify({ id: 'hostile:big', agent: 'hostile', seq: 1, start: 0, end: 1, metrics: [], events: [], serviceChecks: [], pad: 'x'.repeat(2 * 1024 * 1024) });
  // 64 MiB of zeros is about 64 KiB of gzip: small on the wire, far past maxBodyBytes once inflated.
  const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
  return [
    { what: 'metrics without a token', path: '/v1/metrics', headers: json, body: valid, status: 401, counted: 'rejected' },
    { what: 'metrics with a wrong token', path: '/v1/metrics', headers: { ...json, authorization: 'Bearer not-the-token' }, body: valid, status: 401, counted: 'rejected' },
    { what: 'metrics with basic auth', path: '/v1/metrics', headers: { ...json, authorization: `Basic ${Buffer.from(`plumb:${TOKEN}`).toString('base64')}` }, body: valid, status: 401, counted: 'rejected' },
    { what: 'metrics with an empty bearer', path: '/v1/metrics', headers: { ...json, authorization: 'Bearer ' }, body: valid, status: 401, counted: 'rejected' },
    { what: 'logs without a token', path: '/v1/logs', headers: ndjson, body: logLine('hostile', 'hostile-1'), status: 401, counted: 'rejected' },
    { what: 'traces without a token', path: '/v1/traces', headers: json, body: '[]', status: 401, counted: 'rejected' },
    { what: 'sinks API without a token', method: 'GET', path: '/api/v1/sinks', headers: {}, status: 401, counted: 'rejected' },
    { what: 'gzip bomb without a token', path: '/v1/metrics', headers: { ...json, 'content-encoding': 'gzip' }, body: bomb, status: 401, counted: 'rejected' },
    { what: 'bad JSON', path: '/v1/metrics', headers: { ...json, ...auth }, body: '{"id":"hostile:2","agent":', status: 400, counted: 'rejected' },
    { what: 'bad gzip', path: '/v1/metrics', headers: { ...json, ...auth, 'content-encoding': 'gzip' }, body: Buffer.from('this is not gzip at all, not even close'), status: 400, counted: 'rejected' },
    { what: 'truncated gzip', path: '/v1/metrics', headers: { ...json, ...auth, 'content-encoding': 'gzip' }, body: gz.subarray(0, Math.floor(gz.length / 2)), status: 400, counted: 'rejected' },
    { what: 'unsupported content-encoding', path: '/v1/metrics', headers: { ...json, ...auth, 'content-encoding': 'br' }, body: valid, status: 415, counted: 'rejected' },
    { what: 'metrics as a form', path: '/v1/metrics', headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth }, body: 'a=1&b=2', status: 415, counted: 'rejected' },
    { what: 'metrics as XML', path: '/v1/metrics', headers: { 'content-type': 'application/xml', ...auth }, body: '<batch/>', status: 415, counted: 'rejected' },
    { what: 'metrics as text/plain', path: '/v1/metrics', headers: { 'content-type': 'text/plain', ...auth }, body: metricBatch('hostile:5'), status: 415, counted: 'rejected' },
    { what: 'logs as text/plain', path: '/v1/logs', headers: { 'content-type': 'text/plain', ...auth }, body: logLine('hostile', 'hostile-2'), status: 415, counted: 'rejected' },
    { what: 'metric batch without metrics', path: '/v1/metrics', headers: { ...json, ...auth }, body: JSON.stringify({ id: 'hostile:3', agent: 'hostile', seq: 1 }), status: 400, counted: 'rejected' },
    // (a bad item inside a good envelope is refused alone and its batch applies: metric-items.test.ts)
    { what: 'metric batch with a negative seq', path: '/v1/metrics', headers: { ...json, ...auth }, body: metricBatch('hostile:4').replace('"seq":1', '"seq":-1'), status: 400, counted: 'rejected' },
    { what: 'metric batch as an array', path: '/v1/metrics', headers: { ...json, ...auth }, body: '[1,2,3]', status: 400, counted: 'rejected' },
    { what: 'log line without a message', path: '/v1/logs', headers: { ...ndjson, ...auth }, body: JSON.stringify({ '@timestamp': new Date().toISOString(), event: { id: 'hostile-3' } }), status: 400, counted: 'invalid_logs', reason: 'message' },
    // one line that is not JSON is refused on its own: the batch's good line is taken (200, the bad one listed)
    { what: 'log line that is not JSON beside a good one', path: '/v1/logs', headers: { ...ndjson, ...auth }, body: `${logLine('hostile', 'hostile-4')}\n{"message": oops}`, status: 200, counted: 'invalid_logs', reason: 'json' },
    { what: 'log batch of nothing but a line that is not JSON', path: '/v1/logs', headers: { ...ndjson, ...auth }, body: '{"message": oops}', status: 400, counted: 'invalid_logs', reason: 'json' },
    { what: 'log line with a bad timestamp', path: '/v1/logs', headers: { ...ndjson, ...auth }, body: JSON.stringify({ '@timestamp': 'yesterday', message: 'hostile', event: { id: 'hostile-5' } }), status: 400, counted: 'invalid_logs', reason: 'timestamp' },
    { what: 'oversized metric batch', path: '/v1/metrics', headers: { ...json, ...auth }, body: oversized, status: 413, counted: 'rejected' },
    { what: 'oversized log batch', path: '/v1/logs', headers: { ...ndjson, ...auth }, body: Array.from({ length: 6000 }, (_, i) => logLine('hostile', `hostile-big-${i}`, 200)).join('\n'), status: 413, counted: 'rejected' },
    { what: 'gzip bomb', path: '/v1/metrics', headers: { ...json, ...auth, 'content-encoding': 'gzip' }, body: bomb, status: 413, counted: 'rejected' },
    { what: 'gzip bomb of logs', path: '/v1/logs', headers: { ...ndjson, ...auth, 'content-encoding': 'gzip' }, body: bomb, status: 413, counted: 'rejected' },
  ];
}

interface FloodResult {
  requests: number;
  /** status → count */
  statuses: Map<number, number>;
  /** Flood event numbers in batches answered 200, and in those answered otherwise. */
  accepted: number[];
  refused: number[];
  /** 429s that came without a Retry-After header. */
  without429RetryAfter: number;
  ms: number;
}

/**
 * Concurrent clients on loopback for at least FLOOD_MS (longer, up to FLOOD_MAX_MS, until a 429
 * was seen and FLOOD_MIN_REQUESTS were made): some post unauthenticated metric batches, others authenticated log batches of
 * FLOOD_EVENTS_PER_BATCH events each (`flood <n>`, ids `flood-<n>`).
 */
async function flood(url: string): Promise<FloodResult> {
  const clock = stopwatch();
  const result: FloodResult = { requests: 0, statuses: new Map(), accepted: [], refused: [], without429RetryAfter: 0, ms: 0 };
  const count = (status: number): void => void result.statuses.set(status, (result.statuses.get(status) ?? 0) + 1);
  // A flood is at least FLOOD_MS and FLOOD_MIN_REQUESTS long, and lasts until a 429 was seen;
  // a slow (shared) machine makes it longer, not smaller.
  const going = (): boolean =>
    clock() < FLOOD_MS || (clock() < FLOOD_MAX_MS && ((result.statuses.get(429) ?? 0) === 0 || result.requests < FLOOD_MIN_REQUESTS));
  let next = 1;
  const logClient = async (): Promise<void> => {
    while (going()) {
      const first = next;
      next += FLOOD_EVENTS_PER_BATCH;
      const numbers = Array.from({ length: FLOOD_EVENTS_PER_BATCH }, (_, i) => first + i);
      const body = numbers.map((n) => logLine(`flood ${n}`, `flood-${n}`, 120)).join('\n');
      const res = await fetch(`${url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${TOKEN}` }, body });
      await res.arrayBuffer();
      result.requests++;
      count(res.status);
      if (res.status === 200) result.accepted.push(...numbers);
      else result.refused.push(...numbers);
      if (res.status === 429 && !res.headers.get('retry-after')) result.without429RetryAfter++;
    }
  };
  const body = metricBatch('flood:1');
  const openClient = async (): Promise<void> => {
    while (going()) {
      const res = await fetch(`${url}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.arrayBuffer();
      result.requests++;
      count(res.status);
    }
  };
  await Promise.all([...Array.from({ length: FLOOD_LOG_CLIENTS }, logClient), ...Array.from({ length: FLOOD_OPEN_CLIENTS }, openClient)]);
  result.ms = clock();
  return result;
}

describe('fault: hostile requests at a collector with a bearer token, beside a legitimate agent', () => {
  it('each refused with its status and counted; the collector stays up; the agent delivers exactly', async () => {
    run = faultRun('hostile-requests');
    const collector = await collectorRole(run, {
      config: {
        auth: { tokens: [TOKEN] },
        maxBodyBytes: '1mib',
        logs: {
          // The sink gathers for 2 s before each write, so a flood fills its queue past high water.
          sinks: { file: { flushInterval: '2s', flushBytes: '4mib' } },
          queue: { maxBytes: '4mib', highWater: 0.5, retryAfter: '1s' },
        },
      },
    });
    const health = watchHealth(collector.url);
    const statsdPort = await freeUdpPort();
    const file = run.path('app.log');
    const agent = await agentRole(run, {
      collectors: [collector.url],
      files: [file],
      statsdPort,
      config: { forward: { auth: { token: TOKEN }, healthCheckInterval: '200ms' } },
    });
    await waitReady(agent);
    const writer = writeLog(run, { file, count: LINES, rate: RATE });
    const statsd = sendCounter(statsdPort, 'faults.hostile.count', { increments: INCREMENTS, perTick: 100, tickMs: 10 });

    // One of each hostile request, while the agent streams.
    const answers: { what: string; status: number; expected: number; wwwAuthenticate: string | null }[] = [];
    const cases = hostileCases();
    for (const c of cases) {
      const res = await fetch(`${collector.url}${c.path}`, { method: c.method ?? 'POST', headers: c.headers, body: typeof c.body === 'string' || c.body === undefined ? c.body : new Uint8Array(c.body) });
      await res.arrayBuffer();
      answers.push({ what: c.what, status: res.status, expected: c.status, wwwAuthenticate: res.headers.get('www-authenticate') });
    }
    const open = { metrics: (await fetch(`${collector.url}/metrics`)).status, readyz: (await fetch(`${collector.url}/readyz`)).status };

    const flooded = await flood(collector.url);
    const floodEnded = performance.now();

    const sent = await statsd;
    expect((await writer.done()).written).toBe(LINES);
    const settled = async (): Promise<boolean> =>
      (await agent.counter('plumb_tail_lines_total')) >= LINES &&
      (await agent.counter('plumb_tail_unacked_batches')) === 0 &&
      (await collector.counter('plumb_sink_queue_events', { sink: 'file' })) === 0;
    const lines = await awaitDelivery(LINES, async () => lineNumbers(await fileSinkEvents(collector.dataDir)), { ready: settled, timeoutMs: 45_000, intervalMs: 250 });
    const metricsAt = await waitFor(async () => ((await collector.counter('faults_hostile_count_total')) >= sent.total && (await agent.counter('plumb_forward_queue_batches')) === 0 ? performance.now() : false), {
      what: 'the counter total at the collector',
      timeoutMs: 20_000,
    }).catch(() => performance.now());
    const counters = counterTally(sent.total, await collector.counter('faults_hostile_count_total'));
    const floodInSink = lineNumbers(await fileSinkEvents(collector.dataDir), 'flood').sort((x, y) => x - y);
    const probes = await health.stop();

    const rejected = async (status: number): Promise<number> => collector.counter('plumb_ingest_rejected_total', { status: String(status) });
    const counted = {
      401: await rejected(401),
      400: await rejected(400),
      413: await rejected(413),
      415: await rejected(415),
      429: await rejected(429),
      invalidLogs: await collector.counter('plumb_ingest_invalid_logs_total'),
      backpressure: await collector.counter('plumb_ingest_backpressure_total', { kind: 'logs' }),
    };
    const agentLogRetries = await agent.counter('plumb_forward_retries_total', { kind: 'logs' });
    const flood429 = flooded.statuses.get(429) ?? 0;
    report({
      scenario: 'hostile-requests',
      sent: LINES,
      delivered: lines.delivered,
      lost: lines.lost,
      duplicated: lines.duplicated,
      recoveryMs: since(floodEnded, Math.max(lines.at, metricsAt)),
      notes: {
        hostile: cases.length,
        floodRequests: flooded.requests,
        floodMs: flooded.ms,
        flood: [...flooded.statuses].sort((x, y) => x[0] - y[0]).map(([s, n]) => `${s}:${n}`).join(','),
        floodEventsAccepted: flooded.accepted.length,
        agentLog429: agentLogRetries,
        counterSent: sent.total,
        counterDelivered: counters.delivered,
        counterLost: counters.lost,
        counterDuplicated: counters.duplicated,
        rejected: `401:${counted[401]},400:${counted[400]},413:${counted[413]},415:${counted[415]}`,
        healthProbes: probes.probes,
        healthFailures: probes.failures.length,
      },
    });

    const output = `collector output:\n${collector.output().slice(-3000)}\nagent output:\n${agent.output().slice(-2000)}`;
    // Each hostile request got its status; a 401 says how to authenticate.
    expect(answers.map((a) => `${a.what}: ${a.status}`)).toEqual(answers.map((a) => `${a.what}: ${a.expected}`));
    for (const a of answers) if (a.status === 401) expect(a.wwwAuthenticate, a.what).toMatch(/^Bearer /);
    expect(open).toEqual({ metrics: 200, readyz: 200 });
    // The flood met 401 and 429 (with Retry-After), and nothing else but 200.
    expect([...flooded.statuses.keys()].sort()).toEqual([200, 401, 429]);
    expect(flooded.without429RetryAfter).toBe(0);
    expect(flooded.requests).toBeGreaterThanOrEqual(FLOOD_MIN_REQUESTS);

    // Counted: what the door refused by status; log batches refused for a line by reason; every 429.
    const expectCount = (status: number): number => cases.filter((c) => c.status === status).length;
    expect(counted).toEqual({
      401: expectCount(401) + (flooded.statuses.get(401) ?? 0),
      400: expectCount(400),
      413: expectCount(413),
      415: expectCount(415),
      429: flood429 + agentLogRetries,
      invalidLogs: cases.filter((c) => c.counted === 'invalid_logs').length,
      backpressure: flood429 + agentLogRetries,
    });
    for (const c of cases.filter((x) => x.counted === 'invalid_logs')) {
      expect(await collector.counter('plumb_ingest_invalid_logs_total', { reason: c.reason ?? '' }), c.what).toBeGreaterThanOrEqual(1);
    }
    expect(await agent.counter('plumb_forward_retries_total', { kind: 'metrics' })).toBe(0);

    // Stayed up; took exactly the flood batches it acknowledged; nothing injected by the hostile ones.
    expect(probes.failures).toEqual([]);
    expect(collector.running).toBe(true);
    expect(floodInSink).toEqual([...flooded.accepted].sort((x, y) => x - y));
    expect(await collector.counter('hostile_injected_total')).toBe(0);

    // The agent's data, exactly.
    expect(await agent.counter('plumb_statsd_lines_total')).toBe(sent.lines);
    expect(lines, output).toMatchObject({ complete: true, delivered: LINES, lost: 0, duplicated: 0, unexpected: 0 });
    expect(counters, output).toMatchObject({ lost: 0, duplicated: 0 });
    expect(await agent.counter('plumb_forward_dropped_total')).toBe(0);
  }, 120_000);
});
