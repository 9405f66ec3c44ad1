/**
 * plumb's own traces. With `telemetry.tracing.zipkin` set, one forwarded batch yields one trace
 * across both roles: the agent's flush → each forward POST (W3C `traceparent` on the wire) → the
 * collector's ingest (child of that header) → the sink write (the Zipkin exporter's request).
 *
 * The agent and the collector each get their own SelfTracing, as two processes would, and
 * export to a second Zipkin-compatible server, apart from the one the spans of applications go to.
 */
import dgram from 'node:dgram';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PlumbAgent } from '../../agent/agent.ts';
import { PlumbCollector } from '../../collector/collector.ts';
import { silentLogger } from '../../shared/log.ts';
import { Telemetry } from '../../shared/telemetry.ts';
import { SPAN_AGENT_FLUSH, SPAN_FORWARD, SPAN_INGEST, SPAN_SINK_WRITE, startSelfTracing, type SelfTracing } from '../../shared/tracing.ts';
import { rmSync } from 'node:fs';
import { plumbConfig, runPlumb, startPlumb, stopAllProcesses, stopProcess, tempDataDir, waitForHealthy } from '../helpers/processes.ts';
import { freeTcpPorts, freeUdpPort } from '../helpers/ports.ts';
import { scrape, valueOf } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';
import { startZipkinServer, type StoredSpan, type ZipkinTestServer } from '../helpers/zipkin-server.ts';

type Tags = Record<string, string>;

let zipkin: ZipkinTestServer;
let selfZipkin: ZipkinTestServer;
let agentTracing: SelfTracing;
let collectorTracing: SelfTracing;
let collector: PlumbCollector;
let collectorTelemetry: Telemetry;
let agent: PlumbAgent;
let agentTelemetry: Telemetry;

/** Each agent's own data directory (its spool lives there), removed after all tests. */
const agentDirs: string[] = [];

function agentYaml(collectorUrl: string): string {
  const dataDir = tempDataDir();
  agentDirs.push(dataDir);
  return `
agent:
  dataDir: ${JSON.stringify(dataDir)}
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { enabled: false }
  forward: { collectors: ["${collectorUrl}"], retryInitial: 50ms, retryMax: 200ms }
  traces:
    zipkin: { listen: "127.0.0.1:0" }
    batch: { flushInterval: 20ms }
`;
}

beforeAll(async () => {
  zipkin = await startZipkinServer();
  selfZipkin = await startZipkinServer();
  agentTelemetry = new Telemetry();
  collectorTelemetry = new Telemetry();
  agentTracing = await startSelfTracing({ zipkin: selfZipkin.url, serviceName: 'plumb-agent', sampleRatio: 1 }, { telemetry: agentTelemetry, log: silentLogger() });
  collectorTracing = await startSelfTracing({ zipkin: selfZipkin.url, serviceName: 'plumb-collector', sampleRatio: 1 }, { telemetry: collectorTelemetry, log: silentLogger() });
  const collectorDir = tempDataDir();
  agentDirs.push(collectorDir);
  // a private data directory: the collector keeps its counters there across restarts
  const collectorConfig = plumbConfig(`collector: { listen: "127.0.0.1:0", dataDir: ${JSON.stringify(collectorDir)}, traces: { zipkin: { url: "${zipkin.url}" } } }`).collector;
  collector = new PlumbCollector(collectorConfig, { telemetry: collectorTelemetry, log: silentLogger(), tracing: collectorTracing });
  await collector.start();
  agent = new PlumbAgent(plumbConfig(agentYaml(collector.url)).agent, { telemetry: agentTelemetry, log: silentLogger(), tracing: agentTracing });
  await agent.start();
});

afterAll(async () => {
  await agent?.stop(2000);
  await collector?.stop(2000);
  await agentTracing?.shutdown();
  await collectorTracing?.shutdown();
  await zipkin?.stop();
  await selfZipkin?.stop();
  for (const d of agentDirs) rmSync(d, { recursive: true, force: true });
});

/** plumb's own spans stored so far, by id. */
function selfSpans(): Map<string, StoredSpan> {
  return new Map(selfZipkin.spans.map((s) => [s.id, s]));
}

/**
 * Walks from a span up through its parents: [the span, its parent, …]. Both roles are flushed
 * on every poll because a span is exported only once it has ended (a server span ends after
 * its response is written, a sink write after Zipkin answered).
 */
async function chainEndingAt(leaf: (s: StoredSpan) => boolean, length: number, what: string): Promise<StoredSpan[]> {
  return waitFor(
    async () => {
      await agentTracing.flush();
      await collectorTracing.flush();
      const spans = selfSpans();
      const start = [...spans.values()].find(leaf);
      if (start === undefined) return undefined;
      const chain = [start];
      while (chain.length < length) {
        const parentId = chain.at(-1)!.parentId as string | undefined;
        const parent = parentId === undefined ? undefined : spans.get(parentId);
        if (parent === undefined) return undefined;
        chain.push(parent);
      }
      return chain;
    },
    { what, timeoutMs: 15_000 },
  );
}

const service = (s: StoredSpan) => (s.localEndpoint as { serviceName?: string } | undefined)?.serviceName;
const tags = (s: StoredSpan) => (s.tags ?? {}) as Tags;

describe('self-tracing', () => {
  it('links one span batch from the agent flush to the Zipkin sink write in one trace', async () => {
    const appSpan = { traceId: '1f2e3d4c5b6a7988', id: '0102030405060708', name: 'charge card', localEndpoint: { serviceName: 'billing' }, timestamp: 1_700_000_000_000_000, duration: 900 };
    const res = await fetch(`http://${agent.zipkinAddress}/api/v2/spans`, { method: 'POST', body: JSON.stringify([appSpan]), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(202);
    await zipkin.waitForSpans(1);

    const [write, ingest, forward, flush] = await chainEndingAt((s) => s.name === SPAN_SINK_WRITE, 4, 'sink write → ingest → forward → flush');
    expect([write.name, ingest.name, forward.name, flush.name]).toEqual([SPAN_SINK_WRITE, SPAN_INGEST, SPAN_FORWARD, SPAN_AGENT_FLUSH]);
    // one trace, parent links all the way up, a root at the agent
    expect(new Set([write, ingest, forward, flush].map((s) => s.traceId)).size).toBe(1);
    expect(flush.parentId).toBeUndefined();
    expect([service(flush), service(forward), service(ingest), service(write)]).toEqual(['plumb-agent', 'plumb-agent', 'plumb-collector', 'plumb-collector']);
    expect([flush.kind, forward.kind, ingest.kind, write.kind]).toEqual([undefined, 'CLIENT', 'SERVER', 'CLIENT']);

    const batchId = tags(flush)['plumb.batch.id'];
    expect(batchId).toMatch(/:traces:\d+$/);
    expect(tags(flush)).toMatchObject({ 'plumb.kind': 'traces', 'plumb.spans': '1', 'plumb.outcome': 'queued' });
    expect(tags(forward)).toMatchObject({ 'plumb.kind': 'traces', 'plumb.batch.id': batchId, 'http.response.status_code': '200', 'url.full': `${collector.url}/v1/traces` });
    expect(tags(ingest)).toMatchObject({ 'http.route': '/v1/traces', 'plumb.batch.id': batchId, 'http.response.status_code': '200' });
    expect(tags(write)).toMatchObject({ 'plumb.sink': 'zipkin', 'plumb.spans': '1', 'url.full': `${zipkin.url}/api/v2/spans` });
    // the application's own span is not part of plumb's trace, and arrived unchanged
    expect(zipkin.spans[0]).toEqual(appSpan);
    expect(selfZipkin.spans.some((s) => s.traceId === appSpan.traceId)).toBe(false);
  });

  it('links a metrics interval from the agent flush to the collector ingest', async () => {
    const socket = dgram.createSocket('udp4');
    try {
      const port = Number(agent.statsd.udpAddress.slice(agent.statsd.udpAddress.lastIndexOf(':') + 1));
      await new Promise<void>((resolve, reject) => socket.send(Buffer.from('self.traced:1|c'), port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
      await waitFor(async () => valueOf(await scrape(`http://${agent.httpAddress}`), 'plumb_statsd_lines_total') === 1, { what: 'the statsd line at the agent' });
    } finally {
      socket.close();
    }
    await agent.flush();
    const [ingest, forward, flush] = await chainEndingAt((s) => s.name === SPAN_INGEST && tags(s)['http.route'] === '/v1/metrics', 3, 'ingest → forward → metrics flush');
    expect([ingest.name, forward.name, flush.name]).toEqual([SPAN_INGEST, SPAN_FORWARD, SPAN_AGENT_FLUSH]);
    expect(new Set([ingest, forward, flush].map((s) => s.traceId)).size).toBe(1);
    expect(tags(flush)).toMatchObject({ 'plumb.kind': 'metrics', 'plumb.metrics': '1' });
    expect(tags(forward)['plumb.batch.id']).toBe(tags(flush)['plumb.batch.id']);
    expect(tags(ingest)['plumb.batch.id']).toBe(tags(flush)['plumb.batch.id']);
    expect(valueOf(await scrape(collector.url), 'self_traced_total')).toBe(1);
  });

  it('counts what it exported', async () => {
    await agentTracing.flush();
    const m = await agentTelemetry.metrics();
    expect(m).toMatch(/^plumb_tracing_spans_total\{outcome="exported"\} [1-9]/m);
  });
});

describe('traceparent on the forward request', () => {
  let fake: Server;
  let seen: IncomingHttpHeaders[];
  let other: PlumbAgent | undefined;

  beforeAll(async () => {
    seen = [];
    fake = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', () => resolve()));
  });

  afterEach(async () => {
    await other?.stop(2000);
    other = undefined;
    seen.length = 0;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => fake.close(() => resolve()));
  });

  async function forwardOneSpan(tracing: SelfTracing | undefined): Promise<IncomingHttpHeaders> {
    const url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;
    other = new PlumbAgent(plumbConfig(agentYaml(url)).agent, { telemetry: new Telemetry(), log: silentLogger(), ...(tracing ? { tracing } : {}) });
    await other.start();
    const res = await fetch(`http://${other.zipkinAddress}/api/v2/spans`, { method: 'POST', body: JSON.stringify([{ traceId: 'aaaaaaaaaaaaaaaa', id: 'bbbbbbbbbbbbbbbb' }]), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(202);
    return waitFor(() => seen.find((h) => h['x-plumb-batch-id']?.includes(':traces:')), { what: 'the forwarded span batch' });
  }

  it('carries the forward span as W3C traceparent when self-tracing is on', async () => {
    const headers = await forwardOneSpan(agentTracing);
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(headers.traceparent));
    expect(m, String(headers.traceparent)).not.toBeNull();
    const forward = await waitFor(
      async () => {
        await agentTracing.flush();
        return selfSpans().get(m![2]);
      },
      { what: 'the forward span named by traceparent' },
    );
    expect(forward.name).toBe(SPAN_FORWARD);
    expect(forward.traceId).toBe(m![1]);
  });

  it('sends no traceparent when self-tracing is off', async () => {
    const headers = await forwardOneSpan(undefined);
    expect(headers.traceparent).toBeUndefined();
    expect(headers.tracestate).toBeUndefined();
  });
});

describe('plumb all with self-tracing (the CLI)', () => {
  afterAll(async () => {
    await stopAllProcesses();
  });

  it('traces a span batch through both roles and exports it on SIGTERM', async () => {
    const sink = await startZipkinServer();
    const own = await startZipkinServer();
    try {
      const [agentHttp, collectorPort, receiverPort] = await freeTcpPorts(3);
      const statsdPort = await freeUdpPort();
      const collectorUrl = `http://127.0.0.1:${collectorPort}`;
      const plumb = startPlumb(['all'], {
        env: {
          PLUMB_AGENT__HTTP__LISTEN: `127.0.0.1:${agentHttp}`,
          PLUMB_AGENT__STATSD__LISTEN: `127.0.0.1:${statsdPort}`,
          PLUMB_AGENT__HOST__ENABLED: 'false',
          PLUMB_AGENT__FORWARD__COLLECTORS: `["${collectorUrl}"]`,
          PLUMB_AGENT__TRACES__ZIPKIN__LISTEN: `127.0.0.1:${receiverPort}`,
          PLUMB_AGENT__TRACES__BATCH__FLUSH_INTERVAL: '20ms',
          PLUMB_COLLECTOR__LISTEN: `127.0.0.1:${collectorPort}`,
          PLUMB_COLLECTOR__TRACES__ZIPKIN: `{url: "${sink.url}"}`,
          PLUMB_TELEMETRY__TRACING__ZIPKIN: own.url,
          PLUMB_LOG__LEVEL: 'warn',
        },
      });
      await waitForHealthy(collectorUrl);
      await waitFor(async () => (await fetch(`http://127.0.0.1:${agentHttp}/readyz`)).status === 200, { what: 'the agent to be ready' });
      const res = await fetch(`http://127.0.0.1:${receiverPort}/api/v2/spans`, { method: 'POST', body: JSON.stringify([{ traceId: 'cccccccccccccccc', id: 'dddddddddddddddd', name: 'op' }]), headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(202);
      await sink.waitForSpans(1);
      // plumb's own spans wait in its batch processor; a clean stop exports them
      const exit = await stopProcess(plumb, 'SIGTERM');
      expect(exit, plumb.stderr()).toEqual({ code: 0, signal: null });
      const byId = new Map(own.spans.map((s) => [s.id, s]));
      const write = own.spans.find((s) => s.name === SPAN_SINK_WRITE);
      expect(write, JSON.stringify(own.spans.map((s) => s.name))).toBeDefined();
      const ingest = byId.get(write!.parentId as string)!;
      const forward = byId.get(ingest.parentId as string)!;
      const flush = byId.get(forward.parentId as string)!;
      expect([ingest?.name, forward?.name, flush?.name]).toEqual([SPAN_INGEST, SPAN_FORWARD, SPAN_AGENT_FLUSH]);
      expect(new Set([write!, ingest, forward, flush].map((s) => s.traceId)).size).toBe(1);
      expect(new Set(own.spans.map(service))).toEqual(new Set(['plumb']));
    } finally {
      await sink.stop();
      await own.stop();
    }
  });

  it("refuses to send plumb's own spans to its own receiver", async () => {
    const r = await runPlumb(['agent'], { env: { PLUMB_TELEMETRY__TRACING__ZIPKIN: 'http://127.0.0.1:9411' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/PLUMB_ERR_CONFIG_INVALID:[^]*telemetry\.tracing\.zipkin: points at this agent's own Zipkin receiver/);
  });
});
