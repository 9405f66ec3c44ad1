/**
 * Logs end to end: files written (and rotated) by a separate process → a `plumb agent` process
 * (tail, grok in worker threads, forward) → a collector → its file sink. Each test reads the
 * sink's NDJSON back and asserts the exact set of lines: none missing, none twice.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startCollector, startPlumb, spawnTracked, stopAllInProcess, stopAllProcesses, stopProcess, NODE_BIN, REPO_ROOT, type CollectorUnderTest, type TrackedProcess } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import { freeTcpPort } from '../helpers/ports.ts';
import { metricValue } from '../helpers/metrics.ts';

const LOG_WRITER = path.join(REPO_ROOT, 'test', 'helpers', 'log-writer.ts');
const dirs: string[] = [];

afterEach(async () => {
  await stopAllProcesses();
  await stopAllInProcess();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'plumb-logs-e2e-'));
  dirs.push(d);
  return d;
}

/** Every event in the collector's file sink, in file order. */
async function sinkEvents(dataDir: string): Promise<Record<string, unknown>[]> {
  const root = path.join(dataDir, 'logs');
  const events: Record<string, unknown>[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.ndjson')) {
        for (const line of (await readFile(p, 'utf8')).split('\n')) if (line !== '') events.push(JSON.parse(line) as Record<string, unknown>);
      }
    }
  };
  await walk(root);
  return events;
}

/** Line numbers of `<prefix> <n>` messages, sorted. */
function numbers(events: Record<string, unknown>[], prefix = 'line'): number[] {
  return events
    .map((e) => String(e.message))
    .filter((m) => m.startsWith(`${prefix} `))
    .map((m) => Number(m.slice(prefix.length + 1)))
    .sort((a, b) => a - b);
}

const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

async function collector(dir: string): Promise<CollectorUnderTest & { dataDir: string }> {
  const dataDir = path.join(dir, 'collector');
  const c = await startCollector(`collector:\n  listen: "127.0.0.1:0"\n  dataDir: ${JSON.stringify(dataDir)}\n`);
  return { ...c, dataDir };
}

/** A `plumb agent` process tailing `glob`, forwarding to `url`; its state in `dir/agent`. */
async function agentProcess(dir: string, url: string, glob: string, extra = ''): Promise<TrackedProcess> {
  const config = path.join(dir, 'agent.yaml');
  await writeFile(
    config,
    `agent:
  dataDir: ${JSON.stringify(path.join(dir, 'agent'))}
  hostname: e2e-host
  http: { listen: "127.0.0.1:0" }
  statsd: { enabled: false }
  host: { enabled: false }
  traces: { zipkin: { enabled: false } }
  forward: { collectors: [${JSON.stringify(url)}], retryInitial: 50ms, retryMax: 500ms }
  grok: { workers: 2 }
  tail: { discoverInterval: 100ms, pollInterval: 20ms, rotateWait: 1s${extra} }
  logs:
    - path: ${JSON.stringify(glob)}
      pattern: "%{WORD:word} %{INT:n:int}"
      fields: { service: e2e }
`,
  );
  const port = await freeTcpPort();
  const agent = startPlumb(['agent', '--config', config], { env: { PLUMB_AGENT__DATA_DIR: path.join(dir, 'agent'), PLUMB_AGENT__HTTP__LISTEN: `127.0.0.1:${port}` } });
  // up before the test goes on: a stop signalled during start-up would find no handler yet
  await waitFor(async () => agent.exit !== null || (await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false)), { what: 'the agent to answer /healthz', timeoutMs: 30_000 });
  return agent;
}

describe('logs end to end', () => {
  it('a file appended while it is rotated reaches the collector’s file sink exactly once, parsed', async () => {
    const dir = await tempDir();
    const c = await collector(dir);
    const file = path.join(dir, 'app.log');
    const agent = await agentProcess(dir, c.url, `${file}*`);
    const writer = spawnTracked(NODE_BIN, [LOG_WRITER, '--file', file, '--rate', '4000', '--count', '12000', '--rotate-every', '2500', '--keep', '10']);
    const exit = await writer.exited;
    expect(exit.code).toBe(0);
    const report = JSON.parse(writer.stdout().trim()) as { written: number; rotations: number };
    expect(report).toMatchObject({ written: 12_000, rotations: 4 });

    await waitFor(async () => (await sinkEvents(c.dataDir)).length >= 12_000, { what: '12000 events in the file sink', timeoutMs: 30_000 });
    const events = await sinkEvents(c.dataDir);
    expect(numbers(events)).toEqual(upTo(12_000));
    const sample = events.find((e) => e.message === 'line 77');
    expect(sample).toMatchObject({ word: 'line', n: 77, service: 'e2e', host: { name: 'e2e-host' } });
    expect(String((sample?.log as { file: { path: string } }).file.path)).toMatch(/app\.log(\.\d+)?$/);
    expect(new Set(events.map((e) => (e.event as { id: string }).id)).size).toBe(12_000);
    expect((await stopProcess(agent)).code).toBe(0);
  }, 60_000);

  it('kill -9 between send and checkpoint: the restarted agent sends again, the collector keeps each line once', async () => {
    const dir = await tempDir();
    const c = await collector(dir);
    const file = path.join(dir, 'app.log');
    let text = '';
    for (let i = 1; i <= 5000; i++) text += `line ${i}\n`;
    await writeFile(file, text);
    // No checkpoint is written while the first agent runs: everything it delivered is unconfirmed on disk.
    const first = await agentProcess(dir, c.url, file, ', checkpointInterval: 1h');
    await waitFor(async () => (await sinkEvents(c.dataDir)).length >= 5000, { what: 'first delivery', timeoutMs: 30_000 });
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await agentProcess(dir, c.url, file, ', checkpointInterval: 100ms');
    await waitFor(async () => (await metricValue(c.telemetry.registry, 'plumb_ingest_log_events_total', { outcome: 'duplicate' })) >= 5000, {
      what: 'the replay of all 5000 lines',
      timeoutMs: 30_000,
    });
    await appendFile(file, 'line 5001\nline 5002\n');
    await waitFor(async () => (await sinkEvents(c.dataDir)).length >= 5002, { what: 'the appended lines', timeoutMs: 20_000 });
    expect((await stopProcess(second)).code).toBe(0);
    expect(numbers(await sinkEvents(c.dataDir))).toEqual(upTo(5002));
  }, 60_000);

  it('kill -9 mid-stream while a writer appends: after a restart every line is in the sink once', async () => {
    const dir = await tempDir();
    const c = await collector(dir);
    const file = path.join(dir, 'app.log');
    const writer = spawnTracked(NODE_BIN, [LOG_WRITER, '--file', file, '--rate', '3000', '--count', '9000', '--rotate-every', '4000', '--keep', '10']);
    const first = await agentProcess(dir, c.url, `${file}*`, ', checkpointInterval: 200ms');
    await waitFor(async () => (await sinkEvents(c.dataDir)).length >= 2000, { what: 'some lines delivered', timeoutMs: 20_000 });
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await agentProcess(dir, c.url, `${file}*`);
    expect((await writer.exited).code).toBe(0);
    await waitFor(async () => (await sinkEvents(c.dataDir)).length >= 9000, { what: 'all 9000 lines', timeoutMs: 30_000 });
    expect((await stopProcess(second)).code).toBe(0);
    expect(numbers(await sinkEvents(c.dataDir))).toEqual(upTo(9000));
  }, 60_000);
});
