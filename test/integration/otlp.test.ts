/**
 * OTLP into the agent, through the doors users touch: applications instrumented with the real
 * OpenTelemetry JS SDK and its OTLP exporters (http/protobuf, http/json, gRPC) send traces,
 * metrics of every instrument kind and logs to a running agent, which forwards to a collector.
 * What comes out is checked where users read it: Zipkin (against the SDK's own Zipkin exporter
 * posting the same spans to a reference server), the collector's /metrics, and the file sink.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { startAgent, startCollector, stopAllInProcess, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { scrape, valueOf, samplesOf } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';
import { startZipkinServer, type StoredSpan, type ZipkinTestServer } from '../helpers/zipkin-server.ts';
import { handleRequest, startOtlpApp, type OtlpApp, type OtlpProtocol } from '../helpers/otlp-app.ts';
import { micros } from '../helpers/otel-app.ts';
import { decodeResponse, encodeRequest } from '../../shared/otlp/codec.ts';

const REQUESTS = 3;

async function fileEvents(dir: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.name.endsWith('.ndjson')) for (const l of (await readFile(p, 'utf8')).split('\n')) if (l) out.push(JSON.parse(l) as Record<string, unknown>);
    }
  };
  await walk(dir);
  return out;
}

function recordMetrics(app: OtlpApp, scale: number): void {
  const m = app.meter;
  m.createCounter('app.requests', { unit: '{request}' }).add(10 * scale, { route: '/orders' });
  m.createUpDownCounter('app.queue.depth').add(7 * scale);
  const duration = m.createHistogram('app.request.duration', { unit: 'ms' });
  for (const v of [5, 20, 20, 70, 700]) duration.record(v * scale);
  const size = m.createHistogram('app.request.size', { unit: 'By' });
  for (let i = 1; i <= 1000; i++) size.record(i);
  m.createObservableGauge('app.temperature', { unit: 'Cel' }).addCallback((r) => r.observe(21.5));
}

describe('OpenTelemetry SDK → agent (OTLP) → collector', () => {
  let zipkin: ZipkinTestServer;
  let reference: ZipkinTestServer;
  let collector: CollectorUnderTest;
  let agent: AgentUnderTest;

  beforeAll(async () => {
    zipkin = await startZipkinServer();
    reference = await startZipkinServer();
    collector = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  traces:
    zipkin: { url: "${zipkin.url}", retryInitial: 50ms }
  logs:
    sinks:
      file: { flushInterval: 50ms }
`);
    agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
  traces:
    zipkin: { enabled: false }
    batch: { flushInterval: 50ms }
  otlp:
    enabled: true
    http: { listen: "127.0.0.1:0" }
    grpc: { listen: "127.0.0.1:0" }
`);
  });

  afterAll(async () => {
    await stopAllInProcess();
    await zipkin?.stop();
    await reference?.stop();
  });

  const endpoint = (protocol: OtlpProtocol): string => (protocol === 'grpc' ? agent.agent.otlpGrpcAddress : `http://${agent.agent.otlpHttpAddress}`);

  for (const protocol of ['http/protobuf', 'http/json', 'grpc'] as const) {
    it(`takes traces, metrics and logs over ${protocol}`, async () => {
      const service = `shop-${protocol.replace(/\W/g, '-')}`;
      const app = startOtlpApp({ protocol, endpoint: endpoint(protocol), serviceName: service, instanceId: 'i-1', resource: { 'deployment.environment.name': 'test' }, zipkinReference: `${reference.url}/api/v2/spans` });
      for (let i = 0; i < REQUESTS; i++) await handleRequest(app, i);
      recordMetrics(app, 1);
      await app.flushMetrics();
      const recorded = app.spans();
      await app.shutdown();

      // traces: what the collector exported to Zipkin, against the SDK's own Zipkin exporter
      const ids = new Set(recorded.map((s) => s.spanContext().spanId));
      await waitFor(() => zipkin.spans.filter((s) => ids.has(s.id)).length >= recorded.length, { timeoutMs: 15_000, what: `${recorded.length} spans in Zipkin` });
      await waitFor(() => reference.spans.filter((s) => ids.has(s.id)).length >= recorded.length, { what: 'the reference spans' });
      const out = new Map(zipkin.spans.filter((s) => ids.has(s.id)).map((s) => [s.id, s]));
      expect(out.size).toBe(recorded.length);
      for (const ref of reference.spans.filter((s) => ids.has(s.id))) {
        const got = out.get(ref.id) as StoredSpan & Record<string, unknown>;
        expect(got.traceId).toBe(ref.traceId);
        expect(got.parentId).toBe(ref.parentId);
        expect(got.kind).toBe(ref.kind);
        expect(got.name).toBe(ref.name);
        expect(got.localEndpoint).toEqual({ serviceName: service });
        expect(Math.abs((got.timestamp as number) - (ref.timestamp as number))).toBeLessThanOrEqual(1);
        expect(Math.abs(((got.duration as number) ?? 0) - ((ref.duration as number) ?? 0))).toBeLessThanOrEqual(1);
        // every tag OpenTelemetry's Zipkin exporter writes, plus the specification's scope tags
        expect(got.tags).toMatchObject(ref.tags as Record<string, string>);
        expect((got.tags as Record<string, string>)['otel.scope.name']).toBe('plumb-otlp-test');
        expect((got.tags as Record<string, string>)['otel.scope.version']).toBe('1.2.3');
      }
      const client = [...out.values()].filter((s) => s.kind === 'CLIENT');
      expect(client).toHaveLength(REQUESTS);
      for (const c of client) {
        expect(c.remoteEndpoint).toEqual({ serviceName: 'orders-db' });
        const values = (c.annotations as { value: string }[]).map((a) => a.value);
        expect(values[0]).toBe('query sent');
        expect(values[1]).toMatch(/^"rows read":\{"rows":"\d+"\}$/);
      }
      const failed = [...out.values()].filter((s) => s.name === 'render invoice');
      for (const f of failed) {
        expect((f.tags as Record<string, string>).error).toBe('template missing');
        const links = JSON.parse((f.tags as Record<string, string>)['otel.links']) as { traceId: string; spanId: string; attributes: Record<string, string> }[];
        expect(links).toHaveLength(1);
        expect(links[0].attributes).toEqual({ why: 'follows' });
        expect(out.get(links[0].spanId)?.name).toBe('SELECT orders');
      }
      for (const r of recorded) expect(out.get(r.spanContext().spanId)?.timestamp).toBe(Math.floor(micros(r.startTime)));

      // metrics: every instrument kind, on /metrics
      const labels = { service_name: service, service_instance_id: 'i-1' };
      const metrics = await waitFor(
        async () => {
          const e = await scrape(collector.url);
          return valueOf(e, 'app_temperature_celsius', labels) !== undefined && valueOf(e, 'app_requests_total', { ...labels, route: '/orders' }) !== undefined ? e : null;
        },
        { timeoutMs: 15_000, what: 'OTLP metrics on /metrics' },
      );
      expect(valueOf(metrics, 'app_requests_total', { ...labels, route: '/orders' })).toBe(10);
      expect(valueOf(metrics, 'app_queue_depth', labels)).toBe(7);
      expect(valueOf(metrics, 'app_temperature_celsius', labels)).toBe(21.5);
      expect(valueOf(metrics, 'app_request_duration_milliseconds_bucket', { ...labels, le: '10' })).toBe(1);
      expect(valueOf(metrics, 'app_request_duration_milliseconds_bucket', { ...labels, le: '50' })).toBe(3);
      expect(valueOf(metrics, 'app_request_duration_milliseconds_bucket', { ...labels, le: '500' })).toBe(4);
      expect(valueOf(metrics, 'app_request_duration_milliseconds_bucket', { ...labels, le: '+Inf' })).toBe(5);
      expect(valueOf(metrics, 'app_request_duration_milliseconds_sum', labels)).toBe(815);
      expect(valueOf(metrics, 'app_request_size_bytes_count', labels)).toBe(1000);
      expect(valueOf(metrics, 'app_request_size_bytes_sum', labels)).toBe(500500);
      // exponential buckets (scale ≥ 3 for 1..1000 in 160 buckets) merged into a 1% sketch: within 6%
      for (const [q, v] of [[0.5, 500], [0.9, 900], [0.99, 990]] as const) {
        const got = valueOf(metrics, 'app_request_size_bytes', { ...labels, quantile: String(q) }) as number;
        expect(Math.abs(got - v) / v).toBeLessThan(0.06);
      }
      const info = samplesOf(metrics, 'target_info', labels);
      expect(info).toHaveLength(1);
      expect(info[0].labels.deployment_environment_name).toBe('test');

      // logs: in the file sink, with the trace and span of the request that wrote them
      const events = await waitFor(
        async () => {
          const all = (await fileEvents(join(collector.collector.config.dataDir, 'logs'))).filter((e) => (e.service as { name?: string } | undefined)?.name === service);
          return all.length >= REQUESTS ? all : null;
        },
        { timeoutMs: 15_000, what: 'log events in the file sink' },
      );
      expect(events).toHaveLength(REQUESTS);
      const servers = new Map(recorded.filter((s) => s.name === 'GET /orders/:id').map((s) => [s.spanContext().spanId, s.spanContext().traceId]));
      for (const e of events) {
        expect(e.message).toMatch(/^order \d served without invoice$/);
        expect(e.log).toEqual({ level: 'WARN' });
        expect((e.event as { severity: number }).severity).toBe(13);
        expect((e.event as { id: string }).id).toMatch(/^otlp-[0-9a-f]{32}-0$/);
        const spanId = (e.span as { id: string }).id;
        expect(servers.get(spanId)).toBe((e.trace as { id: string }).id);
        expect((e.attributes as Record<string, unknown>)['app.region']).toBe('eu');
      }
    }, 60_000);
  }

  it('cumulative counters from two hosts, restarted in between, add up to the true total', async () => {
    const url = `http://${agent.agent.otlpHttpAddress}`;
    let total = 0;
    const run = async (host: string, adds: number[]): Promise<void> => {
      const app = startOtlpApp({ protocol: 'http/protobuf', endpoint: url, serviceName: 'billing', instanceId: host });
      const counter = app.meter.createCounter('billing.invoices');
      for (const n of adds) {
        counter.add(n);
        total += n;
        await app.flushMetrics();
      }
      await app.shutdown();
    };
    // two "hosts", each its own cumulative stream and series (service.instance.id is a label)
    await Promise.all([run('a', [3, 4, 5]), run('b', [10, 1])]);
    // both restart: their cumulative counts begin again at 0 with a new start time
    await Promise.all([run('a', [2, 2]), run('b', [7])]);
    const labels = { service_name: 'billing' };
    await waitFor(async () => valueOf(await scrape(collector.url), 'billing_invoices_total', { ...labels, service_instance_id: 'b' }) !== undefined, { what: 'the counter' });
    await waitFor(
      async () => {
        const e = await scrape(collector.url);
        const sum = (valueOf(e, 'billing_invoices_total', { ...labels, service_instance_id: 'a' }) ?? 0) + (valueOf(e, 'billing_invoices_total', { ...labels, service_instance_id: 'b' }) ?? 0);
        return sum === total;
      },
      { timeoutMs: 15_000, what: `billing_invoices_total to add up to ${total}` },
    );
  }, 30_000);

  it('answers 200 with the rejected count when some spans are invalid, and delivers the rest', async () => {
    const good = (n: number): Record<string, unknown> => ({ traceId: Buffer.alloc(16, 0x5a), spanId: Buffer.from(`00000000000000${n.toString(16).padStart(2, '0')}`, 'hex'), name: `good-${n}`, kind: 2, startTimeUnixNano: '1700000000000000000', endTimeUnixNano: '1700000000001000000' });
    const body = encodeRequest('traces', {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'partial' } }] },
          scopeSpans: [{ spans: [good(1), { ...good(2), traceId: Buffer.alloc(16) }, good(3), { ...good(4), spanId: Buffer.alloc(3, 1) }] }],
        },
      ],
    });
    const res = await fetch(`http://${agent.agent.otlpHttpAddress}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip' }, body: gzipSync(body) });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-protobuf');
    const answer = decodeResponse('traces', new Uint8Array(await res.arrayBuffer()), false);
    expect(answer.rejected).toBe(2);
    expect(answer.message).toMatch(/trace_id|span_id/);
    await waitFor(() => zipkin.spans.filter((s) => String(s.name).startsWith('good-')).length === 2, { what: 'the two good spans in Zipkin' });
    expect(zipkin.spans.filter((s) => String(s.name).startsWith('good-')).map((s) => s.name).sort()).toEqual(['good-1', 'good-3']);

    const bad = await fetch(`http://${agent.agent.otlpHttpAddress}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: Buffer.from([0xff, 0xff, 0xff]) });
    expect(bad.status).toBe(400);
    const json = await fetch(`http://${agent.agent.otlpHttpAddress}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"resourceLogs": 5}' });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { code: number }).code).toBe(3);
    const text = await fetch(`http://${agent.agent.otlpHttpAddress}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
    expect(text.status).toBe(415);
  });
});

describe('OpenTelemetry SDK → collector (OTLP), with a bearer token', () => {
  let zipkin: ZipkinTestServer;
  let collector: CollectorUnderTest;
  const TOKEN = 'otlp-test-token-1';

  beforeAll(async () => {
    zipkin = await startZipkinServer();
    collector = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  auth: { tokens: ["${TOKEN}"] }
  traces:
    zipkin: { url: "${zipkin.url}", retryInitial: 50ms }
  logs:
    sinks:
      file: { flushInterval: 50ms }
  otlp:
    enabled: true
    http: { listen: "127.0.0.1:0" }
    grpc: { listen: "127.0.0.1:0" }
`);
  });

  afterAll(async () => {
    await stopAllInProcess();
    await zipkin?.stop();
  });

  for (const protocol of ['http/protobuf', 'grpc'] as const) {
    it(`takes all three signals over ${protocol} with the token, and refuses them without`, async () => {
      const addr = collector.collector.otlpAddresses;
      const endpoint = protocol === 'grpc' ? addr.grpc : `http://${addr.http}`;
      const service = `direct-${protocol.replace(/\W/g, '-')}`;
      const app = startOtlpApp({ protocol, endpoint, serviceName: service, instanceId: 'c-1', headers: { authorization: `Bearer ${TOKEN}` } });
      await handleRequest(app, 0);
      recordMetrics(app, 2);
      await app.flushMetrics();
      const recorded = app.spans();
      await app.shutdown();
      const ids = new Set(recorded.map((s) => s.spanContext().spanId));
      await waitFor(() => zipkin.spans.filter((s) => ids.has(s.id)).length === recorded.length, { timeoutMs: 15_000, what: 'the spans in Zipkin' });
      const labels = { service_name: service, service_instance_id: 'c-1' };
      await waitFor(async () => valueOf(await scrape(collector.url), 'app_requests_total', { ...labels, route: '/orders' }) === 20, { what: 'the counter on /metrics' });
      const e = await scrape(collector.url);
      expect(valueOf(e, 'app_request_duration_milliseconds_bucket', { ...labels, le: '50' })).toBe(3);
      expect(valueOf(e, 'app_queue_depth', labels)).toBe(14);
      await waitFor(async () => (await fileEvents(join(collector.collector.config.dataDir, 'logs'))).some((ev) => (ev.service as { name?: string } | undefined)?.name === service), { what: 'the log event in the file sink' });

      const refused = startOtlpApp({ protocol, endpoint, serviceName: `${service}-nope`, instanceId: 'c-2' });
      refused.meter.createCounter('nope').add(1);
      await refused.flushMetrics().catch(() => undefined);
      await refused.shutdown().catch(() => undefined);
      expect(valueOf(await scrape(collector.url), 'nope_total', { service_name: `${service}-nope`, service_instance_id: 'c-2' })).toBeUndefined();
    }, 30_000);
  }

  it('answers 401 over HTTP without the token', async () => {
    const res = await fetch(`http://${collector.collector.otlpAddresses.http}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: Buffer.alloc(0) });
    expect(res.status).toBe(401);
  });
});
