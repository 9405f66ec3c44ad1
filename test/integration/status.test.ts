/**
 * GET /api/v1/status and `plumb status` against running pipelines (child processes through the
 * CLI): a healthy agent → collector → Elasticsearch pipeline says so and exits 0; with
 * Elasticsearch stopped the sink is degraded and `plumb status` exits 1; an agent whose collector
 * is gone shows its file lagging, in bytes and seconds.
 */
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runPlumb, startPlumb, stopAllProcesses, waitForHealthy } from '../helpers/processes.ts';
import { freeTcpPorts, freeUdpPort } from '../helpers/ports.ts';
import { startEsServer, type EsTestServer } from '../helpers/es-server.ts';
import { waitFor } from '../helpers/wait.ts';
import type { StatusReport } from '../../shared/status.ts';

let dir: string;
let es: EsTestServer | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plumb-status-'));
});

afterEach(async () => {
  await stopAllProcesses();
  await es?.stop().catch(() => undefined);
  es = undefined;
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function status(url: string): Promise<StatusReport> {
  const res = await fetch(`${url}/api/v1/status`);
  expect(res.status).toBe(200);
  return (await res.json()) as StatusReport;
}

function lines(from: number, n: number): string {
  let out = '';
  for (let i = from; i < from + n; i++) out += `2026-12-07T10:00:00Z INFO request ${i} done\n`;
  return out;
}

describe('plumb status', () => {
  it('a healthy pipeline exits 0; with Elasticsearch stopped its sink is degraded and the exit code is 1', async () => {
    es = await startEsServer();
    const [agentPort, collectorPort] = await freeTcpPorts(2);
    const statsdPort = await freeUdpPort();
    const log = join(dir, 'app.log');
    await writeFile(log, lines(0, 50));
    const config = join(dir, 'all.yaml');
    await writeFile(
      config,
      `agent:
  http: { listen: "127.0.0.1:${agentPort}" }
  statsd: { listen: "127.0.0.1:${statsdPort}", flushInterval: 1s }
  forward: { collectors: ["http://127.0.0.1:${collectorPort}"], retryInitial: 50ms, retryMax: 200ms }
  traces: { zipkin: { enabled: false } }
  logs: [{ path: ${JSON.stringify(log)} }]
collector:
  listen: "127.0.0.1:${collectorPort}"
  logs:
    sinks:
      elasticsearch: { node: ${JSON.stringify(es.url)}, retryInitial: 20ms, retryMax: 200ms, flushInterval: 50ms, timeout: 2s }
`,
    );
    startPlumb(['all', '--config', config]);
    const agentUrl = `http://127.0.0.1:${agentPort}`;
    const collectorUrl = `http://127.0.0.1:${collectorPort}`;
    await waitForHealthy(agentUrl, 30_000);
    await waitFor(() => es!.count('plumb-logs-*') === 50, { timeoutMs: 30_000, what: '50 events in Elasticsearch' });

    const agent = await waitFor(async () => {
      const s = await status(agentUrl);
      return s.healthy && s.files?.[0]?.offset === (await import('node:fs')).statSync(log).size ? s : undefined;
    }, { timeoutMs: 20_000, what: 'a healthy agent with its file acknowledged' });
    expect(agent.role).toBe('agent');
    expect(agent.config.path).toBe(config);
    expect(agent.config.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(agent.files).toEqual([expect.objectContaining({ path: log, lagBytes: 0, parsed: 50, failed: 0, rotations: 0 })]);
    expect(agent.components.map((c) => c.id)).toEqual(expect.arrayContaining(['statsd', 'files', 'parser', 'forward_logs', 'forward']));
    expect(agent.components.find((c) => c.id === 'files')?.out.total).toBe(50);

    const healthy = await waitFor(async () => {
      const r = await runPlumb(['status', '--url', collectorUrl]);
      return r.code === 0 ? r : undefined;
    }, { timeoutMs: 20_000, what: 'plumb status to exit 0 for the collector' });
    expect(healthy.stdout).toMatch(/plumb collector on .*: healthy/);
    expect(healthy.stdout).toMatch(/^logs_elasticsearch\s+sink\s+elasticsearch\s+ok\s/m);

    await es.stop();
    await appendFile(log, lines(50, 20));
    const sick = await waitFor(async () => {
      const s = await status(collectorUrl);
      const sink = s.components.find((c) => c.id === 'logs_elasticsearch');
      return sink?.health === 'degraded' ? s : undefined;
    }, { timeoutMs: 30_000, what: 'the Elasticsearch sink to be degraded' });
    expect(sick.healthy).toBe(false);
    const sink = sick.components.find((c) => c.id === 'logs_elasticsearch')!;
    expect(sink.problems.join(' ')).toMatch(/retrying|unavailable/);
    expect(sink.queue).toMatchObject({ unit: 'bytes' });

    const r = await runPlumb(['status', '--url', collectorUrl]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('UNHEALTHY');
    expect(r.stdout).toMatch(/^logs_elasticsearch\s+sink\s+elasticsearch\s+degraded\s/m);
    expect(r.stdout).toMatch(/PROBLEMS\n(.*\n)*\s+logs_elasticsearch: (retrying|destination unavailable)/);

    const json = await runPlumb(['status', '--url', collectorUrl, '--json']);
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as StatusReport).components.find((c) => c.id === 'logs_elasticsearch')?.health).toBe('degraded');
  }, 90_000);

  it('an agent whose collector is gone shows its file lagging, and exits 1', async () => {
    const [agentPort, deadPort] = await freeTcpPorts(2);
    const statsdPort = await freeUdpPort();
    const log = join(dir, 'lagging.log');
    await writeFile(log, lines(0, 30));
    const config = join(dir, 'agent.yaml');
    await writeFile(
      config,
      `agent:
  http: { listen: "127.0.0.1:${agentPort}" }
  statsd: { listen: "127.0.0.1:${statsdPort}" }
  forward: { collectors: ["http://127.0.0.1:${deadPort}"], retryInitial: 50ms, retryMax: 200ms, healthCheckInterval: 200ms }
  traces: { zipkin: { enabled: false } }
  tail: { lagThreshold: 1500ms }
  logs: [{ path: ${JSON.stringify(log)} }]
`,
    );
    startPlumb(['agent', '--config', config]);
    const url = `http://127.0.0.1:${agentPort}`;
    await waitForHealthy(url, 30_000);
    const size = (await import('node:fs')).statSync(log).size;
    const s = await waitFor(async () => {
      const s = await status(url);
      const f = s.files?.[0];
      const lagging = f !== undefined && f.lagSeconds > 1.5 && s.components.find((c) => c.id === 'files')?.health === 'degraded';
      return lagging && s.components.find((c) => c.id === 'forward')?.health === 'failed' ? s : undefined;
    }, { timeoutMs: 20_000, what: 'the file to lag more than 1.5 s, its collector down' });
    expect(s.files?.[0]).toMatchObject({ path: log, offset: 0, size, lagBytes: size });
    const files = s.components.find((c) => c.id === 'files')!;
    expect(files.problems[0]).toContain(log);
    expect(s.components.find((c) => c.id === 'forward')?.problems.join(' ')).toContain(`no collector is reachable (http://127.0.0.1:${deadPort})`);

    const r = await runPlumb(['status', '--url', url]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^${log.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+0B\\s+1\\.2KiB\\s+1\\.2KiB\\s+\\d+\\s+0\\s+30 \\(100\\.0%\\)`, 'm'));
    expect(r.stdout).toContain('lags');
  }, 60_000);

  it('asks a collector that needs a token with --token-file or PLUMB_TOKEN, and says so when none is given', async () => {
    const [port] = await freeTcpPorts(1);
    const config = join(dir, 'collector.yaml');
    await writeFile(config, `collector:\n  listen: "127.0.0.1:${port}"\n  auth: { tokens: ["s3cret-token"] }\n`);
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, '# the collector token\ns3cret-token\n');
    startPlumb(['collector', '--config', config]);
    const url = `http://127.0.0.1:${port}`;
    await waitForHealthy(url, 30_000);
    const none = await runPlumb(['status', '--url', url]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('401, give a token with --token-file or PLUMB_TOKEN');
    const viaFile = await waitFor(async () => {
      const r = await runPlumb(['status', '--url', url, '--token-file', tokenFile, '--json']);
      return r.code === 0 ? r : undefined;
    }, { timeoutMs: 20_000, what: 'a healthy answer with the token file' });
    expect((JSON.parse(viaFile.stdout) as StatusReport).role).toBe('collector');
    const viaEnv = await runPlumb(['status', '--url', url], { env: { PLUMB_TOKEN: 's3cret-token' } });
    expect(viaEnv.code).toBe(0);
    const wrong = await runPlumb(['tap', 'ingest_logs', '--url', url], { env: { PLUMB_TOKEN: 'wrong' } });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('401');
  }, 60_000);

  it('exits 2 with a clear message when nothing answers', async () => {
    const [port] = await freeTcpPorts(1);
    const r = await runPlumb(['status', '--url', `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot reach http://127.0.0.1:${port}`);
  });
});
