/**
 * Bad bodies at the agent's Zipkin receiver. Each is refused with the status a Zipkin client
 * understands (400, 413, 415) and a message naming what is wrong, counted by reason, and kept
 * away from the collector; good spans sent in between still arrive, and the metrics path
 * (statsd UDP → collector /metrics) keeps working throughout.
 */
import dgram from 'node:dgram';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, startCollector, stopAllInProcess, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { scrape, valueOf } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';
import { startZipkinServer, type ZipkinTestServer } from '../helpers/zipkin-server.ts';

const MAX_BODY = 64 * 1024;

let zipkin: ZipkinTestServer;
let collector: CollectorUnderTest;
let agent: AgentUnderTest;
let spansUrl: string;
let socket: dgram.Socket;
let linesSent = 0;
let goodSpans = 0;

beforeAll(async () => {
  zipkin = await startZipkinServer();
  collector = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  traces: { zipkin: { url: "${zipkin.url}" } }
`);
  agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
  traces:
    zipkin: { listen: "127.0.0.1:0", maxBodyBytes: ${MAX_BODY}, maxSpansPerRequest: 100 }
    batch: { flushInterval: 20ms }
`);
  spansUrl = `http://${agent.agent.zipkinAddress}/api/v2/spans`;
  socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.connect(agent.statsdPort, '127.0.0.1', () => resolve()));
});

afterAll(async () => {
  await new Promise<void>((resolve) => (socket ? socket.close(() => resolve()) : resolve()));
  await stopAllInProcess();
  await zipkin?.stop();
});

const good = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', id: '00f067aa0ba902b7', name: 'checkout', kind: 'SERVER', timestamp: 1_700_000_000_000_000, duration: 1200, localEndpoint: { serviceName: 'shop' } };

function post(body: string | Uint8Array<ArrayBuffer>, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Response> {
  return fetch(spansUrl, { method: 'POST', body, headers });
}

/** A statsd counter through UDP, the agent's interval ended, the value read at the collector. */
async function metricsPathWorks(): Promise<void> {
  await new Promise<void>((resolve, reject) => socket.send(Buffer.from('traces_test.heartbeat:1|c'), (err) => (err ? reject(err) : resolve())));
  linesSent++;
  await waitFor(async () => valueOf(await scrape(agent.url), 'plumb_statsd_lines_total') === linesSent, { what: `the agent to parse ${linesSent} lines` });
  await agent.agent.flush();
  await waitFor(async () => valueOf(await scrape(collector.url), 'traces_test_heartbeat_total') === linesSent, { what: 'the counter at the collector' });
}

/** A good span still goes all the way through. */
async function spansPathWorks(): Promise<void> {
  const id = (0xabc000 + goodSpans).toString(16).padStart(16, '0');
  expect((await post(JSON.stringify([{ ...good, id }]))).status).toBe(202);
  goodSpans++;
  await zipkin.waitForSpans(goodSpans);
  expect(zipkin.spans.at(-1)?.id).toBe(id);
}

const cases: { name: string; body: () => string | Uint8Array<ArrayBuffer>; headers?: Record<string, string>; status: number; reason: string; message?: RegExp }[] = [
  { name: 'not JSON', body: () => '[{"traceId": "4bf9', status: 400, reason: 'not_json', message: /^body is not valid JSON/ },
  { name: 'a JSON object instead of an array', body: () => JSON.stringify(good), status: 400, reason: 'not_array', message: /^spans: must be a JSON array/ },
  { name: 'a 33-character trace id', body: () => JSON.stringify([{ ...good, traceId: '4'.repeat(33) }]), status: 400, reason: 'trace_id', message: /^spans\[0\]\.traceId: must be 16 or 32 lower-hex characters/ },
  { name: 'a 17-character span id', body: () => JSON.stringify([{ ...good, id: 'a'.repeat(17) }]), status: 400, reason: 'span_id', message: /^spans\[0\]\.id: must be 16 lower-hex characters/ },
  { name: 'a 20-character parent id', body: () => JSON.stringify([{ ...good, parentId: 'b'.repeat(20) }]), status: 400, reason: 'parent_id', message: /^spans\[0\]\.parentId: must be 16 lower-hex characters/ },
  { name: 'no trace id', body: () => JSON.stringify([{ id: good.id, name: 'x' }]), status: 400, reason: 'trace_id', message: /^spans\[0\]\.traceId: required/ },
  { name: 'no span id', body: () => JSON.stringify([{ traceId: good.traceId }]), status: 400, reason: 'span_id', message: /^spans\[0\]\.id: required/ },
  { name: 'a null where a tag needs a string', body: () => JSON.stringify([{ ...good, tags: { 'http.status_code': null } }]), status: 400, reason: 'tags', message: /must be a string \(got null\)/ },
  { name: 'more spans than allowed', body: () => JSON.stringify(Array.from({ length: 101 }, () => good)), status: 400, reason: 'too_many_spans', message: /101 spans in one body, at most 100/ },
  { name: 'a body over the limit', body: () => JSON.stringify([{ ...good, tags: { blob: 'x'.repeat(MAX_BODY) } }]), status: 413, reason: 'too_large' },
  {
    name: 'a gzip body that expands past the limit',
    body: () => new Uint8Array(gzipSync(JSON.stringify([{ ...good, tags: { blob: 'x'.repeat(4 * MAX_BODY) } }]))),
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    status: 413,
    reason: 'too_large',
  },
  { name: 'broken gzip', body: () => new Uint8Array([0x1f, 0x8b, 1, 2, 3]), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, status: 400, reason: 'bad_gzip' },
  { name: 'protobuf', body: () => new Uint8Array([0x0a, 0x01]), headers: { 'content-type': 'application/x-protobuf' }, status: 415, reason: 'media_type' },
  { name: 'a Content-Encoding other than gzip', body: () => '[]', headers: { 'content-type': 'application/json', 'content-encoding': 'br' }, status: 415, reason: 'encoding' },
];

describe('bad bodies at the Zipkin receiver', () => {
  it('leaves both paths working before anything bad arrives', async () => {
    await metricsPathWorks();
    await spansPathWorks();
  });

  for (const c of cases) {
    it(`refuses ${c.name} with ${c.status}`, async () => {
      const batchesBefore = valueOf(await scrape(collector.url), 'plumb_ingest_batches_total', { kind: 'traces', outcome: 'applied' }) ?? 0;
      const res = await post(c.body(), c.headers);
      expect(res.status).toBe(c.status);
      const text = await res.text();
      if (c.message) expect(text).toMatch(c.message);
      if (c.status === 413) expect(text).toMatch(/larger than 65536 bytes/);
      const a = await scrape(agent.url);
      const outcome = c.status === 413 ? 'too_large' : c.status === 415 ? 'unsupported' : 'invalid';
      expect(valueOf(a, 'plumb_traces_requests_total', { outcome })).toBeGreaterThanOrEqual(1);
      if (outcome === 'invalid') expect(valueOf(a, 'plumb_traces_invalid_total', { reason: c.reason })).toBeGreaterThanOrEqual(1);
      // the good path, both signals, right after
      await spansPathWorks();
      await metricsPathWorks();
      const batchesAfter = valueOf(await scrape(collector.url), 'plumb_ingest_batches_total', { kind: 'traces', outcome: 'applied' }) ?? 0;
      expect(batchesAfter - batchesBefore).toBe(1);
    });
  }

  it('kept every bad span away from Zipkin and the span metrics', async () => {
    expect(zipkin.spans).toHaveLength(goodSpans);
    const m = await scrape(collector.url);
    expect(valueOf(m, 'traces_spanmetrics_calls_total', { service: 'shop', span_name: 'checkout', span_kind: 'SPAN_KIND_SERVER', status_code: 'STATUS_CODE_UNSET' })).toBe(goodSpans);
    expect(valueOf(m, 'plumb_ingest_batches_total', { kind: 'traces', outcome: 'invalid' }) ?? 0).toBe(0);
    const a = await scrape(agent.url);
    expect(valueOf(a, 'plumb_traces_spans_received_total')).toBe(goodSpans);
    expect(valueOf(a, 'plumb_traces_requests_total', { outcome: 'accepted' })).toBe(goodSpans);
  });
});
