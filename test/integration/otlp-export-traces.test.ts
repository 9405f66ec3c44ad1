/**
 * OTLP span export (collector.traces.otlp).
 * - Round trip: collector A exports to collector B's OTLP door; the spans B sends to its Zipkin
 *   sink are the spans A sent to its own, field for field (Zipkin-born spans with endpoint
 *   addresses, debug, shared, annotations; OpenTelemetry SDK spans with events, links, status).
 * - Against an OTLP test server that decodes each request with the official definitions: a 429
 *   with Retry-After is retried after that pause, a partial_success puts that many spans in the
 *   dead-letter file, headers are sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCollector, stopAllInProcess, tempDataDir, type CollectorUnderTest } from '../helpers/processes.ts';
import { startZipkinServer, type StoredSpan, type ZipkinTestServer } from '../helpers/zipkin-server.ts';
import { startOtlpServer, type OtlpTestServer } from '../helpers/otlp-server.ts';
import { handleRequest, startOtlpApp } from '../helpers/otlp-app.ts';
import { waitFor } from '../helpers/wait.ts';
import { hex } from '../../shared/otlp/codec.ts';

const ZIPKIN_BORN = [
  {
    traceId: '5af7183fb1d4cf5f5af7183fb1d4cf5f',
    id: '6b221d5bc9e6496c',
    parentId: '352bff9a74ca9ad2',
    kind: 'SERVER',
    name: 'get /api',
    timestamp: 1556604172355737,
    duration: 1431,
    localEndpoint: { serviceName: 'backend', ipv4: '192.168.99.1', port: 3306 },
    remoteEndpoint: { ipv6: '2001:db8::c001', port: 52104 },
    annotations: [
      { timestamp: 1556604172355800, value: 'wr' },
      { timestamp: 1556604172355900, value: '"exception":{"exception.message":"x"}' },
      { timestamp: 1556604172356000, value: '"not": {"an event": 1}' },
    ],
    tags: { 'http.method': 'GET', 'http.path': '/api', error: 'false', 'otel.scope.name': 'lib', 'service.name': 'backend' },
    shared: true,
  },
  {
    traceId: '352bff9a74ca9ad2',
    id: '0000000000000abc',
    kind: 'CLIENT',
    name: 'query',
    timestamp: 1556604172355000,
    duration: 20,
    localEndpoint: { serviceName: 'frontend' },
    remoteEndpoint: { serviceName: 'db', ipv4: '10.0.0.9', port: 5432 },
    tags: { 'db.statement': 'select 1', 'otel.status_code': 'ERROR', error: 'timeout' },
    debug: true,
  },
  { traceId: '352bff9a74ca9ad2', id: '0000000000000abd', name: 'bare', timestamp: 1556604172356000 },
];

function byId(spans: StoredSpan[]): StoredSpan[] {
  return [...spans].sort((a, b) => `${a.traceId}${a.id}`.localeCompare(`${b.traceId}${b.id}`));
}

async function postBatch(url: string, spans: unknown[]): Promise<void> {
  const res = await fetch(`${url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'a1:traces:1', agent: 'a1', seq: 1, spans }) });
  expect(res.status).toBe(200);
}

describe('OTLP span export, plumb → plumb', () => {
  let zipkinA: ZipkinTestServer;
  let zipkinB: ZipkinTestServer;
  let a: CollectorUnderTest;

  beforeAll(async () => {
    zipkinA = await startZipkinServer();
    zipkinB = await startZipkinServer();
    const b = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  traces:
    zipkin: { url: "${zipkinB.url}", retryInitial: 50ms }
  otlp: { enabled: true, http: { listen: "127.0.0.1:0" }, grpc: { enabled: false } }
`);
    a = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  traces:
    zipkin: { url: "${zipkinA.url}", retryInitial: 50ms }
    otlp: { endpoint: "http://${b.collector.otlpAddresses.http}", flushInterval: 50ms, retryInitial: 50ms }
  otlp: { enabled: true, http: { listen: "127.0.0.1:0" }, grpc: { enabled: false } }
`);
  });

  afterAll(async () => {
    await stopAllInProcess();
    await zipkinA.stop();
    await zipkinB.stop();
  });

  it('gives the other collector the same spans, every field', async () => {
    await postBatch(a.url, ZIPKIN_BORN);
    const app = startOtlpApp({ protocol: 'http/protobuf', endpoint: `http://${a.collector.otlpAddresses.http}`, serviceName: 'checkout', instanceId: 'c-1' });
    await handleRequest(app, 1);
    await app.shutdown();
    const total = ZIPKIN_BORN.length + 3;
    await zipkinA.waitForSpans(total);
    await zipkinB.waitForSpans(total, 15_000);
    const sent = byId(zipkinA.spans);
    expect(sent).toHaveLength(total);
    expect(byId(zipkinB.spans)).toEqual(sent);
    // the SDK's spans kept what OTLP has beyond Zipkin's fields
    const render = sent.find((s) => s.name === 'render invoice') as StoredSpan & { tags: Record<string, string> };
    expect(JSON.parse(render.tags['otel.links'])).toEqual([expect.objectContaining({ attributes: { why: 'follows' } })]);
    expect(render.tags['otel.status_code']).toBe('ERROR');
    const sinks = (await (await fetch(`${a.url}/api/v1/sinks`)).json()) as { spans: { name: string; delivered: number }[] };
    expect(sinks.spans.find((s) => s.name === 'otlp_spans')?.delivered).toBe(total);
  });
});

describe('OTLP span export to an OTLP server', () => {
  let server: OtlpTestServer;
  let c: CollectorUnderTest;
  const dataDir = tempDataDir('plumb-otlp-spans-');

  beforeAll(async () => {
    server = await startOtlpServer();
    c = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  dataDir: "${dataDir}"
  traces:
    otlp: { endpoint: "${server.url}", flushInterval: 50ms, retryInitial: 50ms, headers: { authorization: "Bearer s3cret" } }
`);
  });

  afterAll(async () => {
    await stopAllInProcess();
    await server.stop();
  });

  it('retries a 429 after its Retry-After, dead-letters what partial_success refused, decodes with the official definitions', async () => {
    server.answerNext('traces', { status: 429, retryAfter: '1' }, { rejected: 1, message: 'span too old' });
    await postBatch(c.url, ZIPKIN_BORN);
    await waitFor(() => server.accepted('traces').length >= 1, { timeoutMs: 15_000, what: 'an accepted export' });
    expect(server.errors).toEqual([]);
    const [refused, partial] = server.requests;
    expect(refused.answer).toEqual({ status: 429, retryAfter: '1' });
    expect(partial.at - refused.at).toBeGreaterThanOrEqual(950);
    expect(partial.headers.authorization).toBe('Bearer s3cret');
    expect(partial.headers['content-encoding']).toBe('gzip');
    type Req = { resourceSpans: { resource: { attributes: { key: string; value: { stringValue: string } }[] }; scopeSpans: { spans: { spanId: Uint8Array; kind: number; status?: { code: number; message: string } }[] }[] }[] };
    const body = partial.body as unknown as Req;
    const services = body.resourceSpans.map((rs) => rs.resource.attributes.find((kv) => kv.key === 'service.name')?.value.stringValue).sort();
    expect(services).toEqual(['backend', 'frontend', 'unknown_service']);
    const spans = body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
    expect(spans.map((s) => hex(s.spanId)).sort()).toEqual(['0000000000000abc', '0000000000000abd', '6b221d5bc9e6496c']);
    const client = spans.find((s) => hex(s.spanId) === '0000000000000abc');
    expect(client?.kind).toBe(3);
    expect(client?.status).toMatchObject({ code: 2, message: 'timeout' });
    const dead = await waitFor(async () => {
      const text = await readFile(join(dataDir, 'spans', 'log-sinks', 'otlp_spans', 'dead-letter.ndjson'), 'utf8').catch(() => '');
      return text.trim() === '' ? null : text.trim().split('\n');
    }, { what: 'the dead-letter file' });
    expect(dead).toHaveLength(1);
    expect(dead[0]).toContain('span too old');
    const sinks = (await (await fetch(`${c.url}/api/v1/sinks`)).json()) as { spans: { name: string; delivered: number; deadLettered: number; retries: number }[] };
    expect(sinks.spans.find((s) => s.name === 'otlp_spans')).toMatchObject({ delivered: 2, deadLettered: 1, retries: 1 });
  });
});
