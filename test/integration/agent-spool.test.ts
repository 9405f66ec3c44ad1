/**
 * The agent's disk spool through the user's doors: statsd over UDP into a real `plumb agent`
 * process whose collector is down, a kill -9 or a SIGTERM, then a collector and a restarted agent.
 * Counter totals at the collector must equal what was sent: nothing lost, nothing counted twice.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCollector, startAgent, startPlumb, stopAllInProcess, stopAllProcesses, stopProcess, tempDataDir, waitForHealthy, type TrackedProcess } from '../helpers/processes.ts';
import { freeTcpPort, freeUdpPort } from '../helpers/ports.ts';
import { parseExposition, scrape, samplesOf, valueOf, type Exposition } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';
import { startZipkinServer } from '../helpers/zipkin-server.ts';

const dirs: string[] = [];
const heldPorts: { release(): Promise<void> }[] = [];
afterEach(async () => {
  for (let h = heldPorts.pop(); h; h = heldPorts.pop()) await h.release();
  await stopAllProcesses();
  await stopAllInProcess();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * The collector's address while it is down: held by a server answering 503 to everything, so no
 * other test's server can take the port meanwhile. release() frees it for the real collector.
 */
async function downCollector(): Promise<{ port: number; release(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(503).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const held = {
    port,
    release: () =>
      new Promise<void>((r) => {
        if (!server.listening) return r();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
  heldPorts.push(held);
  return held;
}

/** Starts the real collector on the held address. */
async function collectorOn(held: { port: number; release(): Promise<void> }, extra = '') {
  await held.release();
  return startCollector(`collector: { listen: "127.0.0.1:${held.port}"${extra} }`);
}

interface Setup {
  dataDir: string;
  configFile: string;
  collector: { port: number; release(): Promise<void> };
  statsdPort: number;
  agentUrl: string;
}

async function setup(): Promise<Setup> {
  const dataDir = tempDataDir('plumb-spool-');
  dirs.push(dataDir);
  const collector = await downCollector();
  const collectorPort = collector.port;
  const statsdPort = await freeUdpPort();
  const httpPort = await freeTcpPort();
  const configFile = join(dataDir, 'plumb.yaml');
  writeFileSync(
    configFile,
    `
agent:
  http: { listen: "127.0.0.1:${httpPort}" }
  statsd: { listen: "127.0.0.1:${statsdPort}", flushInterval: 100ms }
  host: { enabled: false }
  traces: { zipkin: { enabled: false } }
  forward:
    collectors: ["http://127.0.0.1:${collectorPort}"]
    retryInitial: 50ms
    retryMax: 200ms
    healthCheckInterval: 100ms
log: { level: info }
`,
  );
  return { dataDir, configFile, collector, statsdPort, agentUrl: `http://127.0.0.1:${httpPort}` };
}

function startAgentProcess(s: Setup): TrackedProcess {
  return startPlumb(['agent', '--config', s.configFile], { env: { PLUMB_AGENT__DATA_DIR: join(s.dataDir, 'agent') } });
}

/** Sends `count` counter lines `name:value|c`, several per datagram, over UDP. */
async function sendCounters(port: number, name: string, count: number, value: number): Promise<void> {
  const socket = dgram.createSocket('udp4');
  try {
    for (let i = 0; i < count; i += 10) {
      const lines = Array.from({ length: Math.min(10, count - i) }, () => `${name}:${value}|c`).join('\n');
      await new Promise<void>((resolve, reject) => socket.send(lines, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    socket.close();
  }
}

const sumOf = (e: Exposition, prefix: string) => samplesOf(e, 'plumb_spool_records').filter((x) => x.labels.spool?.startsWith(prefix)).reduce((n, x) => n + x.value, 0);

/**
 * Waits until the agent has counted `lines` lines and two more intervals have been queued since,
 * so the interval holding the last line is in the spool.
 */
async function waitUntilSpooled(agentUrl: string, lines: number): Promise<Exposition> {
  await waitFor(async () => valueOf(await scrape(agentUrl), 'plumb_statsd_lines_total') === lines, { what: `${lines} statsd lines counted` });
  const flushed = valueOf(await scrape(agentUrl), 'plumb_agent_flushes_total') ?? 0;
  return waitFor(
    async () => {
      const e = await scrape(agentUrl);
      return (valueOf(e, 'plumb_agent_flushes_total') ?? 0) >= flushed + 2 && sumOf(e, 'forward_metrics-') > 0 ? e : false;
    },
    { what: 'the last interval written to the spool' },
  );
}

async function collectorTotal(url: string, name: string): Promise<number | undefined> {
  return valueOf(await scrape(url), name);
}

describe('agent spool', () => {
  it('survives kill -9: a restarted agent delivers every spooled interval exactly once', async () => {
    const s = await setup();
    const first = startAgentProcess(s);
    await waitForHealthy(s.agentUrl);
    await sendCounters(s.statsdPort, 'spool.kill.count', 120, 3);
    await sendCounters(s.statsdPort, 'spool.kill.count', 80, 2);
    await waitUntilSpooled(s.agentUrl, 200);
    // a collector starts out presumed up: the agent marks it down at its first failed send or probe
    await waitFor(async () => valueOf(await scrape(s.agentUrl), 'plumb_forward_collector_up', { collector: `http://127.0.0.1:${s.collector.port}` }) === 0, { what: 'the agent to mark the down collector down' });
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');

    const collector = await collectorOn(s.collector);
    const second = startAgentProcess(s);
    await waitForHealthy(s.agentUrl);
    await waitFor(async () => (await collectorTotal(collector.url, 'spool_kill_count_total')) === 120 * 3 + 80 * 2, { what: 'the counter total at the collector' });
    await waitFor(async () => valueOf(await scrape(s.agentUrl), 'plumb_forward_queue_batches') === 0, { what: 'the spool drained' });
    // The agent stops cleanly, its last interval sent; the total has not moved: nothing applied twice.
    expect((await stopProcess(second)).code).toBe(0);
    const c = await scrape(collector.url);
    expect(valueOf(c, 'spool_kill_count_total')).toBe(520);
    expect(valueOf(c, 'plumb_ingest_batches_total', { kind: 'metrics', outcome: 'applied' })).toBeGreaterThanOrEqual(1);
  });

  it('stops gracefully with the collector down: exit 0, batches left in the spool (logged), delivered after a restart', async () => {
    const s = await setup();
    const first = startAgentProcess(s);
    await waitForHealthy(s.agentUrl);
    await sendCounters(s.statsdPort, 'spool.stop.count', 50, 1);
    await waitFor(async () => valueOf(await scrape(s.agentUrl), 'plumb_statsd_lines_total') === 50, { what: '50 lines counted' });
    // no waiting for a flush: stopping flushes the interval in hand
    const exit = await stopProcess(first, 'SIGTERM', 30_000);
    expect(exit.code).toBe(0);
    expect(first.stdout() + first.stderr()).toMatch(/undelivered batches; they are in the spool/);
    const spoolDir = join(s.dataDir, 'agent', 'spool');
    const lanes = readdirSync(spoolDir);
    expect(lanes.some((l) => /^metrics-[0-9a-f]{8}$/.test(l))).toBe(true);

    const collector = await collectorOn(s.collector);
    const second = startAgentProcess(s);
    await waitForHealthy(s.agentUrl);
    await waitFor(async () => (await collectorTotal(collector.url, 'spool_stop_count_total')) === 50, { what: 'the counter total at the collector' });
    expect((await stopProcess(second)).code).toBe(0);
    expect(await collectorTotal(collector.url, 'spool_stop_count_total')).toBe(50);
  });

  it('writes spans to the spool while the collector is down and keeps them across a stop; the next start delivers them', async () => {
    const held = await downCollector();
    const collectorPort = held.port;
    const dataDir = tempDataDir('plumb-spool-spans-');
    dirs.push(dataDir);
    const yaml = `
agent:
  dataDir: ${JSON.stringify(dataDir)}
  http: { listen: "127.0.0.1:0" }
  statsd: { enabled: false }
  host: { enabled: false }
  forward: { collectors: ["http://127.0.0.1:${collectorPort}"], retryInitial: 50ms, retryMax: 200ms, healthCheckInterval: 100ms }
  traces:
    zipkin: { listen: "127.0.0.1:0" }
    batch: { flushInterval: 1h, maxBatchSpans: 1, maxQueuedBatches: 50 }
`;
    const first = await startAgent(yaml);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = (0x2000 + i).toString(16).padStart(16, '0');
      const res = await fetch(`http://${first.agent.zipkinAddress}/api/v2/spans`, {
        method: 'POST',
        body: JSON.stringify([{ traceId: '5b4c3d2e1f0a9b8c', id, name: 'op', timestamp: 1_700_000_000_000_000 + i, duration: 10, localEndpoint: { serviceName: 'app' } }]),
        headers: { 'content-type': 'application/json' },
      });
      expect(res.status).toBe(202);
      ids.push(id);
    }
    // During the outage the spans go to disk as they are batched, not only at stop: the traces
    // lane's memory cap (4 batches) counts only what is not yet written to the spool.
    await waitFor(async () => valueOf(parseExposition(await first.telemetry.metrics()), 'plumb_spool_records', { spool: 'forward_traces' }) === 10, {
      what: 'all 10 span batches in the spool while the collector is down',
    });
    expect(first.agent.spanBatcher?.queued).toBe(0);
    await first.agent.stop(30_000);
    const left = parseExposition(await first.telemetry.metrics());
    expect(valueOf(left, 'plumb_forward_dropped_total', { kind: 'traces', reason: 'shutdown' }) ?? 0).toBe(0);
    expect(valueOf(left, 'plumb_spool_records', { spool: 'forward_traces' })).toBe(10);

    const zipkin = await startZipkinServer();
    try {
      await collectorOn(held, `, traces: { zipkin: { url: "${zipkin.url}" } }`);
      await startAgent(yaml);
      await waitFor(() => zipkin.spans.length === 10, { what: 'the spooled spans exported' });
      expect(zipkin.spans.map((x) => x.id).sort()).toEqual(ids);
    } finally {
      await zipkin.stop();
    }
  });

  it('merges the intervals that do not fit in a full spool, stays healthy, and delivers every count once the collector is back', async () => {
    const held = await downCollector();
    const collectorPort = held.port;
    const a = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { enabled: false }
  forward:
    collectors: ["http://127.0.0.1:${collectorPort}"]
    retryInitial: 50ms
    retryMax: 200ms
    healthCheckInterval: 100ms
    compress: false
    spool: { maxBytes: 8kb, segmentBytes: 1kb }
`);
    let rounds = 0;
    let lines = 0;
    const round = async (): Promise<void> => {
      rounds++;
      await sendCounters(a.statsdPort, 'spool.full.count', 1, 1);
      lines++;
      await waitFor(async () => valueOf(await scrape(a.url), 'plumb_statsd_lines_total') === lines, { what: `${lines} lines counted` });
      await a.agent.flush();
    };
    // intervals that do not fit are merged, not dropped (agent/forward/backlog.ts)
    const merged = async () => valueOf(await scrape(a.url), 'plumb_forward_intervals_merged_total') ?? 0;
    while ((await merged()) < 2) {
      await round();
      expect(rounds).toBeLessThan(200);
    }
    const full = await merged();
    const health = await fetch(`${a.url}/healthz`);
    expect(health.status).toBe(200);
    expect(valueOf(await scrape(a.url), 'plumb_forward_dropped_total', { kind: 'metrics', reason: 'spool_full' }) ?? 0).toBe(0);
    expect(valueOf(await scrape(a.url), 'plumb_spool_refused_total', { spool: samplesOf(await scrape(a.url), 'plumb_spool_records').find((x) => x.labels.spool?.startsWith('forward_metrics-'))?.labels.spool ?? '', reason: 'full' })).toBe(full);

    const collector = await collectorOn(held);
    await waitFor(async () => (await collectorTotal(collector.url, 'spool_full_count_total')) === rounds - full, { what: 'the spooled intervals delivered' });
    // the next interval goes with the merged ones: every count arrives
    await round();
    await waitFor(async () => (await collectorTotal(collector.url, 'spool_full_count_total')) === rounds, { what: 'the merged intervals and a new one delivered' });
  });
});
