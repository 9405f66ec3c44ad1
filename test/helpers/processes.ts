/**
 * Running plumb under test, with cleanup that holds even when a test fails:
 *
 * - as a child process through the CLI (`node cli/main.ts …`, the user's door), tracked so
 *   `stopAllProcesses()` in an afterAll/afterEach ends whatever is still running;
 * - as roles in this process (PlumbCollector, PlumbAgent) built from YAML exactly as the CLI
 *   builds them, each with its own Telemetry, stopped by `stopAllInProcess()`.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import YAML from 'yaml';
import type { TSchema } from '@sinclair/typebox';
import { PlumbAgent } from '../../agent/agent.ts';
import { PlumbCollector } from '../../collector/collector.ts';
import { loadPlumbConfig, PlumbSchema, type PlumbConfig } from '../../cli/config.ts';
import { Telemetry } from '../../shared/telemetry.ts';
import { silentLogger } from '../../shared/log.ts';
import { waitFor } from './wait.ts';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Node 24 from the `node` package: it runs the TypeScript sources directly. */
export const NODE_BIN = join(REPO_ROOT, 'node_modules', '.bin', 'node');
export const CLI_ENTRY = join(REPO_ROOT, 'cli', 'main.ts');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TrackedProcess {
  child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited (never rejects). */
  exited: Promise<Exit>;
  /** Set once the process has exited. */
  exit: Exit | null;
}

const running = new Set<TrackedProcess>();

/** Spawns a child whose output is collected and whose lifetime is tracked for cleanup. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions = {}): TrackedProcess {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const handle: TrackedProcess = {
    child,
    stdout: () => out,
    stderr: () => err,
    exit: null,
    exited: new Promise<Exit>((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null): void => {
        handle.exit = { code, signal };
        running.delete(handle);
        resolve(handle.exit);
      };
      child.once('exit', (code, signal) => {
        // 'close' follows once stdout/stderr are drained; wait for it so no output is lost.
        if (child.stdout || child.stderr) child.once('close', () => done(code, signal));
        else done(code, signal);
      });
      child.once('error', (e) => {
        err += `spawn failed: ${e.message}\n`;
        done(null, null);
      });
    }),
  };
  running.add(handle);
  return handle;
}

/** The environment of this process without PLUMB_* variables, plus `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PLUMB_')) env[k] = v;
  return { ...env, ...extra };
}

/** Starts `plumb <args>` from the sources; it keeps running until stopped. */
export function startPlumb(args: string[], options: { env?: Record<string, string> } = {}): TrackedProcess {
  return spawnTracked(NODE_BIN, [CLI_ENTRY, ...args], { cwd: REPO_ROOT, env: cleanEnv({ ...privateDataDirs(args), ...options.env }) });
}

/** A fresh directory under the system temp dir; the caller removes it. */
export function tempDataDir(prefix = 'plumb-data-'): string {
  return mkdtempSync(join(os.tmpdir(), prefix));
}

/** Data directories made here for child processes and for in-process roles, removed once those stop. */
const childDirs: string[] = [];
const inProcessDirs: string[] = [];

function removeDirs(dirs: string[]): void {
  for (let d = dirs.pop(); d !== undefined; d = dirs.pop()) rmSync(d, { recursive: true, force: true });
}

/**
 * Roles keep queues, checkpoints and log files under their data directories; a test process
 * gets directories of its own (unless the test sets them), so parallel tests never share one.
 */
function privateDataDirs(args: string[]): Record<string, string> {
  if (!['agent', 'collector', 'all'].includes(args[0])) return {};
  const dir = tempDataDir();
  childDirs.push(dir);
  return { PLUMB_AGENT__DATA_DIR: join(dir, 'agent'), PLUMB_COLLECTOR__DATA_DIR: join(dir, 'collector') };
}

export interface RunResult extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs `plumb <args>` to completion, feeding `input` on stdin; killed if it outlives `timeoutMs`. */
export async function runPlumb(args: string[], options: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  const p = startPlumb(args, { env: options.env });
  p.child.stdin?.on('error', () => undefined); // a process that exits early closes its stdin
  p.child.stdin?.end(options.input ?? '');
  const timeoutMs = options.timeoutMs ?? 20_000;
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  try {
    const exit = await p.exited;
    if (exit.signal === 'SIGKILL') throw new Error(`plumb ${args.join(' ')} did not finish within ${timeoutMs} ms; stderr:\n${p.stderr()}`);
    return { ...exit, stdout: p.stdout(), stderr: p.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `signal`, waits for the exit; SIGKILL if it does not come within `timeoutMs`. */
export async function stopProcess(p: TrackedProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<Exit> {
  if (p.exit) return p.exit;
  p.child.kill(signal);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Ends every child this module started that is still running. */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...running].map((p) => stopProcess(p, 'SIGTERM', 5000)));
  removeDirs(childDirs);
}

// ---- roles in this process ----

type Stoppable = { stop(): Promise<void> };
const inProcess: Stoppable[] = [];

/** Validated config from YAML text, with no environment overrides. */
export function plumbConfig(yaml: string): PlumbConfig {
  return loadPlumbConfig({ text: yaml, env: {} });
}

export interface CollectorUnderTest {
  collector: PlumbCollector;
  telemetry: Telemetry;
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
}

/** Starts a collector from the `collector:` section in `yaml` (say `listen: "127.0.0.1:0"` for a free port). */
export async function startCollector(yaml: string): Promise<CollectorUnderTest> {
  const config = plumbConfig(yaml);
  const raw = (YAML.parse(yaml) ?? {}) as { collector?: Record<string, unknown> };
  if (raw.collector?.dataDir === undefined) inProcessDirs.push((config.collector.dataDir = tempDataDir()));
  const telemetry = new Telemetry();
  const collector = new PlumbCollector(config.collector, { telemetry, log: silentLogger() });
  await collector.start();
  inProcess.push(collector);
  return { collector, telemetry, url: collector.url };
}

export interface AgentUnderTest {
  agent: PlumbAgent;
  telemetry: Telemetry;
  /** UDP port statsd listens on. */
  statsdPort: number;
  /** Base URL of the agent's HTTP server (health, self-metrics). */
  url: string;
}

/**
 * Whether the configuration schema has the key at `path` (e.g. ["agent", "traces", "zipkin"]).
 * The agent gains subsystems over time; tests of one signal use this to keep the others quiet.
 */
export function configHasKey(path: string[]): boolean {
  let node: TSchema = PlumbSchema;
  for (const key of path) {
    const props = (node as { properties?: Record<string, TSchema> }).properties;
    if (!props || !(key in props)) return false;
    node = props[key];
  }
  return true;
}

/**
 * Starts an agent from the `agent:` section in `yaml`. Receivers that bind a fixed default port
 * and that the YAML does not mention (the Zipkin span receiver) are turned off, so tests in
 * parallel files never fight over a port.
 */
export async function startAgent(yaml: string): Promise<AgentUnderTest> {
  const config = plumbConfig(yaml);
  const raw = (YAML.parse(yaml) ?? {}) as { agent?: Record<string, unknown> };
  if (raw.agent?.dataDir === undefined) inProcessDirs.push((config.agent.dataDir = tempDataDir()));
  if (configHasKey(['agent', 'traces', 'zipkin', 'enabled']) && raw.agent?.traces === undefined) {
    (config.agent as unknown as { traces: { zipkin: { enabled: boolean } } }).traces.zipkin.enabled = false;
  }
  const telemetry = new Telemetry();
  const agent = new PlumbAgent(config.agent, { telemetry, log: silentLogger() });
  // Registered before start so a half-started agent is still stopped.
  inProcess.push({ stop: () => agent.stop(2000) });
  await agent.start();
  const port = Number(agent.statsd.udpAddress.slice(agent.statsd.udpAddress.lastIndexOf(':') + 1));
  return { agent, telemetry, statsdPort: port, url: `http://${agent.httpAddress}` };
}

/** Stops every role started here, newest first (agents before the collector they feed). */
export async function stopAllInProcess(): Promise<void> {
  const errors: unknown[] = [];
  for (let s = inProcess.pop(); s; s = inProcess.pop()) {
    try {
      await s.stop();
    } catch (err) {
      errors.push(err);
    }
  }
  removeDirs(inProcessDirs);
  if (errors.length > 0) throw new AggregateError(errors, 'stopping in-process roles failed');
}

/** Waits until `url` + `/healthz` answers 200 (a child process finished starting). */
export async function waitForHealthy(url: string, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    async () => {
      const res = await fetch(`${url}/healthz`);
      return res.ok;
    },
    { timeoutMs, intervalMs: 50, what: `${url}/healthz` },
  );
}
