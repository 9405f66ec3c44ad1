/**
 * The traces path end to end through the doors users touch: a real OpenTelemetry NodeSDK
 * application with the real Zipkin exporter posts to the agent's receiver; the agent batches
 * and forwards to the collector over HTTP; the collector exports to a Zipkin-compatible server
 * and exposes span metrics on /metrics.
 *
 * The application exports every span twice: to plumb, and straight to a reference Zipkin server.
 * What comes out behind the collector must equal the reference copy (plumb's only documented
 * change: fractional microseconds rounded) and what the SDK recorded.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { PlumbAgent } from '../../agent/agent.ts';
import { silentLogger } from '../../shared/log.ts';
import { Telemetry } from '../../shared/telemetry.ts';
import { rmSync } from 'node:fs';
import { startAgent, startCollector, stopAllInProcess, plumbConfig, tempDataDir, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { PROMTOOL, promtoolCheckMetrics, scrape, scrapeText, valueOf } from '../helpers/prometheus.ts';
import { freeTcpPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { startZipkinServer, type StoredSpan, type ZipkinTestServer } from '../helpers/zipkin-server.ts';
import { micros, runOtelApp, ZIPKIN_KIND } from '../helpers/otel-app.ts';

const REQUESTS = 4;

/** The instrumented service: every span goes to each Zipkin URL; what the SDK recorded comes back. */
async function runApp(zipkinUrls: string[], serviceName: string, requests: number): Promise<ReadableSpan[]> {
  const app = await runOtelApp(zipkinUrls, serviceName, requests);
  await app.shutdown();
  return app.spans;
}

function postSpans(address: string, spans: unknown[]): Promise<Response> {
  return fetch(`http://${address}/api/v2/spans`, { method: 'POST', body: JSON.stringify(spans), headers: { 'content-type': 'application/json' } });
}

function spanAt(i: number): Record<string, unknown> {
  return { traceId: '7a3c2e9f0b1d4c6e', id: (0x1000 + i).toString(16).padStart(16, '0'), name: 'poll', timestamp: 1_700_000_000_000_000 + i, duration: 100, localEndpoint: { serviceName: 'worker' } };
}

describe('OpenTelemetry app → agent → collector → Zipkin', () => {
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
`);
    agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
  traces:
    zipkin: { listen: "127.0.0.1:0" }
    batch: { flushInterval: 50ms }
`);
  });

  afterAll(async () => {
    await stopAllInProcess();
    await zipkin?.stop();
    await reference?.stop();
  });

  it('delivers every span unchanged and counts it in span metrics', async () => {
    const recorded = await runApp([`http://${agent.agent.zipkinAddress}/api/v2/spans`, `${reference.url}/api/v2/spans`], 'checkout', REQUESTS);
    expect(recorded).toHaveLength(3 * REQUESTS);
    await zipkin.waitForSpans(recorded.length);
    await reference.waitForSpans(recorded.length);
    expect(zipkin.spans).toHaveLength(recorded.length);

    // what arrived behind the collector equals what the app sent to Zipkin directly
    const byId = (spans: StoredSpan[]) => new Map(spans.map((s) => [s.id, s]));
    const direct = byId(reference.spans);
    for (const s of zipkin.spans) {
      const ref = direct.get(s.id);
      expect(ref, `span ${s.id} reached Zipkin directly too`).toBeDefined();
      expect(s).toEqual({ ...ref, timestamp: Math.round(ref!.timestamp as number) });
    }

    // and what the SDK recorded: ids, parents, timing, tags, events
    const stored = byId(zipkin.spans);
    for (const r of recorded) {
      const ctx = r.spanContext();
      const z = stored.get(ctx.spanId)!;
      expect(z.traceId).toBe(ctx.traceId);
      expect(z.parentId).toBe(r.parentSpanContext?.spanId);
      expect(z.name).toBe(r.name);
      expect(z.kind).toBe(ZIPKIN_KIND[r.kind]);
      expect(z.timestamp).toBe(micros(r.startTime));
      expect(z.duration).toBe(micros(r.duration) || undefined);
      for (const [k, v] of Object.entries(r.attributes)) expect((z.tags as Record<string, string>)[k]).toBe(String(v));
      expect(z.annotations ?? []).toEqual(r.events.map((e) => ({ timestamp: micros(e.time), value: e.name })));
    }
    expect(zipkin.traces()).toHaveLength(REQUESTS);

    const text = await scrapeText(collector.url);
    const m = await scrape(collector.url);
    const series = { service: 'checkout', span_kind: '', span_name: '', status_code: '' };
    const expected = [
      { span_name: 'GET /orders/:id', span_kind: 'SPAN_KIND_SERVER', status_code: 'STATUS_CODE_OK' },
      { span_name: 'SELECT orders', span_kind: 'SPAN_KIND_CLIENT', status_code: 'STATUS_CODE_UNSET' },
      { span_name: 'render invoice', span_kind: 'SPAN_KIND_INTERNAL', status_code: 'STATUS_CODE_ERROR' },
    ];
    for (const labels of expected) {
      expect(valueOf(m, 'traces_spanmetrics_calls_total', { ...series, ...labels }), labels.span_name).toBe(REQUESTS);
      expect(valueOf(m, 'traces_spanmetrics_latency_count', { ...series, ...labels })).toBe(REQUESTS);
      expect(valueOf(m, 'traces_spanmetrics_latency_bucket', { ...series, ...labels, le: '+Inf' })).toBe(REQUESTS);
      const sum = recorded.filter((r) => r.name === labels.span_name).reduce((acc, r) => acc + Math.round(micros(r.duration)), 0) / 1e6;
      expect(valueOf(m, 'traces_spanmetrics_latency_sum', { ...series, ...labels })).toBeCloseTo(sum, 9);
    }
    expect(valueOf(m, 'plumb_sink_events_total', { sink: 'zipkin', outcome: 'sent' })).toBe(recorded.length);
    expect(valueOf(m, 'plumb_ingest_spans_total')).toBe(recorded.length);
    const a = await scrape(agent.url);
    expect(valueOf(a, 'plumb_traces_spans_received_total')).toBe(recorded.length);
    expect(valueOf(a, 'plumb_forward_dropped_total', { kind: 'traces', reason: 'queue_full' }) ?? 0).toBe(0);
    if (PROMTOOL !== null) {
      const check = await promtoolCheckMetrics(text);
      expect(check.code, check.output).toBe(0);
    }
  });
});

describe('delivery', () => {
  const agents: PlumbAgent[] = [];
  const zipkins: ZipkinTestServer[] = [];
  const dataDirs: string[] = [];
  // agents first, then the collectors they feed, then Zipkin
  afterEach(async () => {
    for (let a = agents.pop(); a; a = agents.pop()) await a.stop(2000);
    await stopAllInProcess();
    for (let z = zipkins.pop(); z; z = zipkins.pop()) await z.stop();
    for (let d = dataDirs.pop(); d !== undefined; d = dataDirs.pop()) rmSync(d, { recursive: true, force: true });
  });

  async function agentFor(yaml: string): Promise<PlumbAgent> {
    const config = plumbConfig(yaml).agent;
    // a data directory of its own: the agent spools undelivered batches there
    dataDirs.push((config.dataDir = tempDataDir()));
    const agent = new PlumbAgent(config, { telemetry: new Telemetry(), log: silentLogger() });
    agents.push(agent);
    await agent.start();
    return agent;
  }

  async function zipkinServer(): Promise<ZipkinTestServer> {
    const z = await startZipkinServer();
    zipkins.push(z);
    return z;
  }

  it('delivers every accepted span on a clean stop, including the batch still open', async () => {
    const zipkin = await zipkinServer();
    const collector = await startCollector(`collector: { listen: "127.0.0.1:0", traces: { zipkin: { url: "${zipkin.url}" } } }`);
    const agent = await agentFor(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { enabled: false }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"] }
  traces:
    zipkin: { listen: "127.0.0.1:0" }
    batch: { flushInterval: 1h, maxBatchSpans: 7 }
`);
    let accepted = 0;
    for (let i = 0; i < 30; i++) {
      const res = await postSpans(agent.zipkinAddress, [spanAt(i)]);
      expect(res.status).toBe(202);
      accepted++;
    }
    // 4 full batches are sealed; 2 spans wait in the open batch until stop seals it
    await agent.stop(5000);
    await collector.collector.stop(5000);
    expect(zipkin.spans).toHaveLength(accepted);
    expect(new Set(zipkin.spans.map((s) => s.id)).size).toBe(accepted);
  });

  it('answers apps 429 while the collector is away instead of dropping, and delivers everything once it is back', async () => {
    const zipkin = await zipkinServer();
    const port = await freeTcpPort();
    const agent = await agentFor(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { enabled: false }
  host: { enabled: false }
  forward: { collectors: ["http://127.0.0.1:${port}"], maxQueueBatches: 2, retryInitial: 20ms, retryMax: 100ms }
  traces:
    zipkin: { listen: "127.0.0.1:0", retryAfter: 2s }
    batch: { flushInterval: 10ms, maxBatchSpans: 1, maxQueuedBatches: 2 }
`);
    const accepted: string[] = [];
    let refused: Response | undefined;
    for (let i = 0; i < 100 && refused === undefined; i++) {
      const span = spanAt(i);
      const res = await postSpans(agent.zipkinAddress, [span]);
      if (res.status === 202) accepted.push(span.id as string);
      else refused = res;
    }
    expect(refused?.status).toBe(429);
    expect(refused?.headers.get('retry-after')).toBe('2');
    // one span per batch: at most 2 batches wait in the forwarder and 2 in the batcher
    expect(accepted.length).toBeGreaterThanOrEqual(1);
    expect(accepted.length).toBeLessThanOrEqual(4);
    const a = await scrape(`http://${agent.httpAddress}`);
    expect(valueOf(a, 'plumb_forward_dropped_total', { kind: 'traces', reason: 'queue_full' }) ?? 0).toBe(0);
    expect(valueOf(a, 'plumb_traces_spans_refused_total')).toBeGreaterThanOrEqual(1);

    await startCollector(`collector: { listen: "127.0.0.1:${port}", traces: { zipkin: { url: "${zipkin.url}" } } }`);
    await zipkin.waitForSpans(accepted.length);
    await waitFor(() => agent.spanBatcher!.queued === 0 && agent.forwarder.queuedBatches === 0, { what: 'the agent to drain' });
    expect(zipkin.spans.map((s) => s.id).sort()).toEqual([...accepted].sort());
  });
});
