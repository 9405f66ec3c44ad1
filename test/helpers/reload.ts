/** Whole-config reload tests' shared pieces: config files for both roles, the status record, the sinks' files. */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT, startPlumb, stopAllProcesses, type TrackedProcess } from './processes.ts';
import { waitFor } from './wait.ts';
import { fileSinkEvents } from '../faults/harness.ts';

export const LOG_WRITER = path.join(REPO_ROOT, 'test', 'helpers', 'log-writer.ts');
const dirs: string[] = [];

/** A directory for one test, removed by cleanUp. */
export async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'plumb-reload-'));
  dirs.push(d);
  return d;
}

/** Stops the processes a test started and removes its directories (afterEach). */
export async function cleanUp(): Promise<void> {
  await stopAllProcesses();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
}

/** Every event in the NDJSON files under `root` (a file sink's directory). */
export function ndjsonUnder(root: string): Promise<Record<string, unknown>[]> {
  return fileSinkEvents(root, root);
}

export function numbersOf(events: Record<string, unknown>[], prefix: string): number[] {
  return events
    .map((e) => String(e.message))
    .filter((m) => m.startsWith(`${prefix} `))
    .map((m) => Number(m.slice(prefix.length + 1)))
    .sort((a, b) => a - b);
}

export const upTo = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

export interface ConfigStatus {
  path: string;
  hash: string;
  loadedAt: string;
  lastReload?: { at: string; result: 'success' | 'failure'; errors: string[]; applied: string[]; needsRestart: string[]; trigger: string };
}

export async function configStatus(base: string): Promise<ConfigStatus> {
  const r = await fetch(`${base}/api/v1/status`);
  if (!r.ok) throw new Error(`status ${r.status}`);
  return ((await r.json()) as { config: ConfigStatus }).config;
}

/** Waits for a reload after `since` (an ISO time) and returns its record. */
export async function nextReload(base: string, since: string, what: string): Promise<NonNullable<ConfigStatus['lastReload']>> {
  const s = await waitFor(
    async () => {
      const st = await configStatus(base);
      return st.lastReload !== undefined && st.lastReload.at > since ? st : undefined;
    },
    { what, timeoutMs: 20_000 },
  );
  return s.lastReload!;
}

export async function metric(base: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}${labels}`) && /[ {]/.test(line.charAt(name.length))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

/** Waits for /readyz; a process that exited meanwhile fails at once, with what it wrote. */
export async function ready(base: string, proc?: TrackedProcess): Promise<void> {
  await waitFor(
    async () => {
      if (proc?.exit) throw new Error(`exited (${JSON.stringify(proc.exit)}): ${proc.stderr().slice(-2000)}`);
      return (await fetch(`${base}/readyz`)).ok;
    },
    { what: `${base} ready`, timeoutMs: 45_000 },
  );
}

export function agentYaml(o: { dataDir: string; http: number; collector: string; statsd?: number; tags?: string[]; inputs: string }): string {
  return `agent:
  dataDir: ${JSON.stringify(o.dataDir)}
  hostname: reload-host
  http: { listen: "127.0.0.1:${o.http}" }
  statsd: ${o.statsd === undefined ? '{ enabled: false }' : `{ listen: "127.0.0.1:${o.statsd}", flushInterval: 500ms, tags: ${JSON.stringify(o.tags ?? [])} }`}
  host: { enabled: false }
  traces: { zipkin: { enabled: false } }
  forward: { collectors: [${JSON.stringify(o.collector)}], retryInitial: 50ms, retryMax: 500ms }
  grok: { workers: 1 }
  tail: { discoverInterval: 100ms, pollInterval: 20ms, checkpointInterval: 200ms }
  logs:
${o.inputs}reload: { debounce: 200ms }
`;
}

export function collectorYaml(o: { dataDir: string; port: number; sinkDir: string; extra?: string }): string {
  return `collector:
  listen: "127.0.0.1:${o.port}"
  dataDir: ${JSON.stringify(o.dataDir)}
  patterns: { enabled: false }
  logs:
    sinks:
      file: { dir: ${JSON.stringify(o.sinkDir)}, flushInterval: 100ms }
${o.extra ?? ''}reload: { debounce: 200ms }
`;
}

export function startRole(role: 'agent' | 'collector', file: string, dataDir: string): TrackedProcess {
  const key = role === 'agent' ? 'PLUMB_AGENT__DATA_DIR' : 'PLUMB_COLLECTOR__DATA_DIR';
  return startPlumb([role, '--config', file], { env: { [key]: dataDir } });
}
