/**
 * What the fault-injection scenarios share: plumb roles as child processes that can be killed
 * and started again on the same data directory and port, numbered log lines written by a
 * separate process, the events a sink holds read back, the exact tally of sent / delivered /
 * lost / duplicated, counters scraped from /metrics, statsd counters with a known total, and one
 * summary line per scenario.
 *
 * Everything a scenario starts is registered with its `FaultRun`; `run.cleanup()` (in an
 * afterEach) ends it, newest first, and removes the run's directory.
 */
import { appendFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import YAML from 'yaml';
import { StatsD } from 'hot-shots';
import { NODE_BIN, REPO_ROOT, spawnTracked, startPlumb, stopProcess, tempDataDir, waitForHealthy, type Exit, type TrackedProcess } from '../helpers/processes.ts';
import { freeTcpPort, freeUdpPort } from '../helpers/ports.ts';
import { samplesOf, scrape } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';
import type { EsTestServer } from '../helpers/es-server.ts';
import type { S3TestServer } from '../helpers/s3-server.ts';
import { scanFrames, SPOOL_FRAME_BYTES } from '../../shared/spool.ts';
import { decodeBatch, type OutgoingBatch } from '../../agent/forward/record.ts';
import { metricsLaneName } from '../../agent/forward/forwarder.ts';

export { waitFor };

const LOG_WRITER = path.join(REPO_ROOT, 'test', 'helpers', 'log-writer.ts');

// ---- a scenario's run: its directory and everything to end ----

export interface FaultRun {
  scenario: string;
  /** A fresh directory holding the roles' data dirs, configs and log files. */
  dir: string;
  path(...parts: string[]): string;
  /** Registers something to end at cleanup (ended newest first). */
  defer(end: () => Promise<unknown> | unknown): void;
  /** Ends everything registered, then removes `dir`. Errors are collected, not thrown early. */
  cleanup(): Promise<void>;
}

export function faultRun(scenario: string): FaultRun {
  const dir = tempDataDir(`plumb-fault-${scenario.replace(/[^a-z0-9]+/gi, '-')}-`);
  const ends: (() => Promise<unknown> | unknown)[] = [];
  return {
    scenario,
    dir,
    path: (...parts) => path.join(dir, ...parts),
    defer: (end) => void ends.push(end),
    async cleanup() {
      const errors: unknown[] = [];
      for (let end = ends.pop(); end; end = ends.pop()) {
        try {
          await end();
        } catch (err) {
          errors.push(err);
        }
      }
      await rm(dir, { recursive: true, force: true });
      if (errors.length > 0) throw new AggregateError(errors, `cleaning up ${scenario} failed`);
    },
  };
}

// ---- plumb roles as child processes ----

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `over` merged into `base`: objects key by key, anything else (arrays too) replaced. */
export function mergeConfig(base: Json, over: Json): Json {
  const out: Json = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObject(v) && isObject(out[k]) ? mergeConfig(out[k], v) : v;
  return out;
}

/**
 * One plumb role (`plumb agent` or `plumb collector`) with a fixed data directory, config file
 * and HTTP port, so it can be killed and started again as the same instance: what a restarted
 * process finds on disk is what its predecessor left.
 */
export class Role {
  readonly kind: 'agent' | 'collector';
  readonly name: string;
  readonly dataDir: string;
  readonly configFile: string;
  /** Base URL of its HTTP server (the collector's ingest, the agent's health and metrics). */
  readonly url: string;
  /** The running process, or the last one once it exited. */
  process: TrackedProcess | undefined;
  /** Every process of this role so far, oldest first. */
  readonly processes: TrackedProcess[] = [];

  constructor(kind: 'agent' | 'collector', name: string, dataDir: string, configFile: string, url: string) {
    this.kind = kind;
    this.name = name;
    this.dataDir = dataDir;
    this.configFile = configFile;
    this.url = url;
  }

  get running(): boolean {
    return this.process !== undefined && this.process.exit === null;
  }

  /** Starts the process and waits until /healthz answers; fails with its output if it exits first. */
  async start(timeoutMs = 20_000): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    const p = startPlumb([this.kind, '--config', this.configFile], { env: { [this.kind === 'agent' ? 'PLUMB_AGENT__DATA_DIR' : 'PLUMB_COLLECTOR__DATA_DIR']: this.dataDir } });
    this.process = p;
    this.processes.push(p);
    const died = p.exited.then((exit) => {
      throw new Error(`${this.name} exited while starting (${describeExit(exit)}):\n${p.stderr().slice(-4000)}`);
    });
    try {
      await Promise.race([waitForHealthy(this.url, timeoutMs), died]);
    } finally {
      died.catch(() => undefined);
    }
  }

  /** kill -9: no shutdown, nothing flushed. */
  async kill(): Promise<Exit> {
    return this.end('SIGKILL');
  }

  /** SIGTERM and wait for the exit (SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 15_000): Promise<Exit> {
    return this.end('SIGTERM', timeoutMs);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  private async end(signal: NodeJS.Signals, timeoutMs = 10_000): Promise<Exit> {
    const p = this.process;
    if (!p) return { code: null, signal: null };
    return stopProcess(p, signal, timeoutMs);
  }

  /** stdout and stderr of every process of this role so far (for failure messages). */
  output(): string {
    return this.processes.map((p) => p.stdout() + p.stderr()).join('\n--- restarted ---\n');
  }

  /** Whether /healthz answers 200 right now. */
  async healthy(): Promise<boolean> {
    try {
      return (await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) })).ok;
    } catch {
      return false;
    }
  }

  /** Sum of the samples of `name` in its /metrics whose labels include `labels` (0 when none). */
  async counter(name: string, labels: Record<string, string> = {}): Promise<number> {
    return sumOf(await scrape(this.url), name, labels);
  }
}

function describeExit(exit: Exit): string {
  return exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
}

/** Sum of matching samples; counters of several label sets (sink, reason, …) add up. */
export function sumOf(exposition: Awaited<ReturnType<typeof scrape>>, name: string, labels: Record<string, string> = {}): number {
  return samplesOf(exposition, name, labels).reduce((n, s) => n + s.value, 0);
}

export interface RoleOptions {
  /** Distinguishes several roles of one kind in a run (e.g. "collector-a"); default the kind. */
  name?: string;
  /** Merged over the role's section of the generated config. */
  config?: Json;
  /** Fixed HTTP port (default: a free one, kept across restarts). */
  port?: number;
  /** Write the config and make the role, without starting it. */
  start?: boolean;
}

async function makeRole(run: FaultRun, kind: 'agent' | 'collector', section: Json, options: RoleOptions): Promise<Role> {
  const name = options.name ?? kind;
  const dataDir = run.path(name, 'data');
  await mkdir(dataDir, { recursive: true });
  const configFile = run.path(name, `${kind}.yaml`);
  await writeFile(configFile, YAML.stringify({ [kind]: mergeConfig({ ...section, dataDir }, options.config ?? {}) }));
  const merged = mergeConfig(section, options.config ?? {}) as { listen?: string; http?: { listen?: string } };
  const address = kind === 'collector' ? merged.listen : merged.http?.listen;
  const role = new Role(kind, name, dataDir, configFile, `http://${address}`);
  run.defer(() => role.stop(5000));
  if (options.start !== false) await role.start();
  return role;
}

/**
 * A `plumb collector` on 127.0.0.1:<port>. `logs` is its `collector.logs` section (sinks and
 * their queues); without one, events go to the file sink under its data dir.
 */
export async function collectorRole(run: FaultRun, options: RoleOptions & { logs?: Json } = {}): Promise<Role> {
  const port = options.port ?? (await freeTcpPort());
  const section: Json = { listen: `127.0.0.1:${port}` };
  if (options.logs) section.logs = options.logs;
  return makeRole(run, 'collector', section, options);
}

export interface AgentRoleOptions extends RoleOptions {
  collectors: string[];
  /** Files (globs) to tail; each line becomes one event with the line as its message. */
  files?: string[];
  /** UDP port for statsd; absent: statsd off. Pass `await freeUdpPort()` to keep it across restarts. */
  statsdPort?: number;
}

/**
 * A `plumb agent` forwarding to `collectors`, tailing `files`, statsd on `statsdPort` when given,
 * with short retry and tail intervals so a scenario spends its time on the fault, not on waiting.
 */
export async function agentRole(run: FaultRun, options: AgentRoleOptions): Promise<Role & { statsdPort?: number }> {
  const port = options.port ?? (await freeTcpPort());
  const section: Json = {
    hostname: `${options.name ?? 'agent'}-host`,
    http: { listen: `127.0.0.1:${port}` },
    statsd: options.statsdPort === undefined ? { enabled: false } : { listen: `127.0.0.1:${options.statsdPort}`, flushInterval: '200ms' },
    host: { enabled: false },
    traces: { zipkin: { enabled: false } },
    forward: { collectors: options.collectors, retryInitial: '50ms', retryMax: '1s' },
    grok: { workers: 2 },
    tail: { discoverInterval: '100ms', pollInterval: '20ms', checkpointInterval: '200ms', rotateWait: '1s' },
    logs: (options.files ?? []).map((p) => ({ path: p })),
  };
  const role = await makeRole(run, 'agent', section, options);
  return Object.assign(role, { statsdPort: options.statsdPort });
}

export { freeTcpPort, freeUdpPort };

// ---- numbered log lines ----

export interface LogWriter {
  file: string;
  process: TrackedProcess;
  /** Resolves with the writer's report once it finished (fails if it did not exit 0). */
  done(): Promise<{ written: number; rotations: number; last: number }>;
}

/**
 * Appends `line 1` … `line <count>` to `file` at `rate` lines/s (0: as fast as it can) from a
 * separate process (test/helpers/log-writer.ts), rotating every `rotateEvery` lines when set.
 */
export function writeLog(run: FaultRun, options: { file: string; count: number; rate?: number; rotateEvery?: number; keep?: number; prefix?: string }): LogWriter {
  const args = [LOG_WRITER, '--file', options.file, '--count', String(options.count), '--rate', String(options.rate ?? 0)];
  if (options.rotateEvery) args.push('--rotate-every', String(options.rotateEvery), '--keep', String(options.keep ?? 10));
  if (options.prefix) args.push('--prefix', options.prefix);
  const p = spawnTracked(NODE_BIN, args);
  run.defer(() => stopProcess(p, 'SIGTERM', 5000));
  return {
    file: options.file,
    process: p,
    async done() {
      const exit = await p.exited;
      if (exit.code !== 0) throw new Error(`log writer failed (${describeExit(exit)}): ${p.stderr()}`);
      return JSON.parse(p.stdout().trim()) as { written: number; rotations: number; last: number };
    },
  };
}

// ---- what a sink holds ----

export type SinkEvent = Record<string, unknown>;

/** Every event in a collector's file sink (NDJSON under `<dataDir>/logs`, or `dir`). */
export async function fileSinkEvents(collectorDataDir: string, dir = path.join(collectorDataDir, 'logs')): Promise<SinkEvent[]> {
  const events: SinkEvent[] = [];
  const walk = async (d: string): Promise<void> => {
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.ndjson')) for (const line of (await readFile(p, 'utf8')).split('\n')) if (line !== '') events.push(JSON.parse(line) as SinkEvent);
    }
  };
  await walk(dir);
  return events;
}

/** Every document in the Elasticsearch test server (matching `target`), with `_id` beside the source. */
export function esEvents(es: EsTestServer, target = '*'): (SinkEvent & { _id: string })[] {
  return es.docs(target).map((d) => ({ ...d.source, _id: d.id }));
}

/** Every event in every S3 object under `prefix` (gunzipped NDJSON), with the object's key. */
export async function s3Events(s3: S3TestServer, prefix = ''): Promise<(SinkEvent & { _key: string })[]> {
  const out: (SinkEvent & { _key: string })[] = [];
  for (const key of await s3.keys(prefix)) {
    for (const line of (await s3.text(key)).split('\n')) if (line !== '') out.push({ ...(JSON.parse(line) as SinkEvent), _key: key });
  }
  return out;
}

/** Lines of a collector sink's dead-letter file (none when there is no file). */
export function deadLetters(collector: Role, sink: string): string[] {
  const file = path.join(collector.dataDir, 'log-sinks', sink, 'dead-letter.ndjson');
  if (!existsSync(file) || statSync(file).size === 0) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

// ---- the tally ----

/** The numbers n of events whose message is `<prefix> <n>`, in sink order (others are skipped). */
export function lineNumbers(events: readonly SinkEvent[], prefix = 'line'): number[] {
  const head = `${prefix} `;
  const out: number[] = [];
  for (const e of events) {
    const m = e.message;
    if (typeof m === 'string' && m.startsWith(head)) out.push(Number(m.slice(head.length)));
  }
  return out;
}

export interface Tally {
  /** Numbers sent: 1 … sent. */
  sent: number;
  /** Distinct sent numbers that arrived. */
  delivered: number;
  /** Sent numbers that never arrived. */
  lost: number;
  /** Arrivals beyond the first of a number. */
  duplicated: number;
  /** Arrivals of numbers that were never sent. */
  unexpected: number;
  /** Up to 20 of each, for the failure message. */
  examples: { lost: number[]; duplicated: number[]; unexpected: number[] };
}

/** Compares what arrived with `1 … sent`. Exactly once means lost, duplicated and unexpected all 0. */
export function tally(sent: number, arrived: readonly number[]): Tally {
  const seen = new Uint32Array(sent + 1);
  let duplicated = 0;
  let unexpected = 0;
  const examples = { lost: [] as number[], duplicated: [] as number[], unexpected: [] as number[] };
  for (const n of arrived) {
    if (!Number.isInteger(n) || n < 1 || n > sent) {
      unexpected++;
      if (examples.unexpected.length < 20) examples.unexpected.push(n);
    } else if (seen[n]++ > 0) {
      duplicated++;
      if (examples.duplicated.length < 20) examples.duplicated.push(n);
    }
  }
  let delivered = 0;
  for (let n = 1; n <= sent; n++) {
    if (seen[n] > 0) delivered++;
    else if (examples.lost.length < 20) examples.lost.push(n);
  }
  return { sent, delivered, lost: sent - delivered, duplicated, unexpected, examples };
}

export interface Delivery extends Tally {
  /** Whether every sent line arrived before the deadline. */
  complete: boolean;
  /** When the last read-back began (performance.now()): the moment it was complete, if it was. */
  at: number;
}

/**
 * Polls until every line `1 … sent` has arrived (`arrived()` reads the sink back, `ready()` is
 * a cheap check run first, e.g. a document count) or the deadline passes. Never throws on the
 * deadline: it returns the last tally, so a scenario reports its numbers and then asserts them.
 */
export async function awaitDelivery(sent: number, arrived: () => Promise<readonly number[]> | readonly number[], options: { ready?: () => Promise<boolean> | boolean; timeoutMs?: number; intervalMs?: number } = {}): Promise<Delivery> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let last: Tally = tally(sent, []);
  while (true) {
    const ready = options.ready ? await options.ready() : true;
    if (ready || Date.now() >= deadline) {
      const polled = performance.now();
      last = tally(sent, await arrived());
      if (last.lost === 0) return { ...last, complete: true, at: polled };
    }
    if (Date.now() >= deadline) return { ...last, complete: false, at: performance.now() };
    await sleep(options.intervalMs ?? 200);
  }
}

/** Same, for counter totals: what was sent against what the sink counted. */
export function counterTally(sent: number, counted: number): Tally {
  const lost = Math.max(0, sent - counted);
  const extra = Math.max(0, counted - sent);
  return { sent, delivered: Math.min(sent, counted), lost, duplicated: extra, unexpected: 0, examples: { lost: [], duplicated: [], unexpected: [] } };
}

// ---- the summary line ----

export interface ScenarioResult {
  scenario: string;
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  /** From the end of the fault until every event was delivered (ms). */
  recoveryMs: number;
  /** Anything else worth reporting (retries, refusals, …). */
  notes?: Record<string, number | string>;
}

/**
 * Prints one line per scenario, and appends it as JSON to the file named by
 * PLUMB_FAULTS_SUMMARY when that is set (a CI step can then publish the table).
 */
export function report(result: ScenarioResult): void {
  const notes = Object.entries(result.notes ?? {}).map(([k, v]) => ` ${k}=${v}`).join('');
  console.log(`fault ${result.scenario}: sent=${result.sent} delivered=${result.delivered} lost=${result.lost} duplicated=${result.duplicated} recovery=${(result.recoveryMs / 1000).toFixed(1)}s${notes}`);
  const file = process.env.PLUMB_FAULTS_SUMMARY;
  if (file) appendFileSync(file, `${JSON.stringify({ ...result, at: new Date().toISOString() })}\n`);
}

// ---- time ----

/** Milliseconds since the watch was made. */
export function stopwatch(): () => number {
  const t0 = performance.now();
  return () => Math.round(performance.now() - t0);
}

/**
 * Keeps a fault on for `ms` (a timed window: the fault's own duration), then runs `clear`.
 * Returns the time the fault was cleared (performance.now()), to measure recovery from.
 */
export async function holdFault(ms: number, clear: () => Promise<unknown> | unknown): Promise<number> {
  await sleep(ms);
  await clear();
  return performance.now();
}

/** Milliseconds from `t` to `until` (performance.now() values; until defaults to now). */
export function since(t: number, until = performance.now()): number {
  return Math.max(0, Math.round(until - t));
}

/**
 * Polls `url`/healthz every `intervalMs` until stopped and records each probe that was not a
 * 200 (with the time since the watch began): "the process stayed up" as evidence.
 */
export function watchHealth(url: string, intervalMs = 250): { stop(): Promise<{ probes: number; failures: string[] }> } {
  let stopping = false;
  let probes = 0;
  const failures: string[] = [];
  const clock = stopwatch();
  const loop = (async () => {
    while (!stopping) {
      probes++;
      try {
        const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) failures.push(`${clock()} ms: ${res.status}`);
      } catch (err) {
        failures.push(`${clock()} ms: ${(err as Error).message}`);
      }
      await sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      stopping = true;
      await loop;
      return { probes, failures };
    },
  };
}

// ---- statsd counters with a known total ----

/**
 * Sends `increments` statsd increments of `name` (each by `value`, default 1) to 127.0.0.1:`port`
 * over UDP with hot-shots, packed into datagrams of up to 1400 bytes, `perTick` lines at a time
 * with a pause of `tickMs` between (UDP has no backpressure; pacing keeps the agent's socket
 * buffer from overflowing). Returns the exact total sent: the number the collector must show.
 */
export async function sendCounter(port: number, name: string, options: { increments: number; value?: number; tags?: string[]; perTick?: number; tickMs?: number }): Promise<{ total: number; lines: number }> {
  const value = options.value ?? 1;
  const perTick = options.perTick ?? 500;
  const errors: Error[] = [];
  const client = new StatsD({ host: '127.0.0.1', port, protocol: 'udp', maxBufferSize: 1400, bufferFlushInterval: 60_000, errorHandler: (err) => errors.push(err) });
  try {
    let sent = 0;
    while (sent < options.increments) {
      const n = Math.min(perTick, options.increments - sent);
      for (let i = 0; i < n; i++) client.increment(name, value, options.tags ?? []);
      client.flush();
      sent += n;
      if (sent < options.increments) await sleep(options.tickMs ?? 5);
    }
  } finally {
    await new Promise<void>((resolve) => client.close(() => resolve()));
  }
  if (errors.length > 0) throw new AggregateError(errors, `sending ${name} failed`);
  return { total: options.increments * value, lines: options.increments };
}

// ---- an HTTP proxy in front of a collector that can withhold its answers ----

/** One request the proxy passed upstream and whose answer it then kept from the client. */
export interface SwallowedRequest {
  path: string;
  /** The agent's x-plumb-batch-id header ('' when absent). */
  batchId: string;
  /** What the collector answered (the client never saw it). */
  status: number;
}

export interface FaultProxy {
  /** Base URL to give the agent instead of the collector's. */
  url: string;
  /**
   * Requests whose path starts with `prefix` are still handed to the collector, which applies
   * them, but its answer is withheld: the client waits until its timeout or until it dies.
   * null: everything passes both ways again (requests already held stay held).
   */
  swallow(prefix: string | null): void;
  /** Requests answered upstream whose answer was withheld, oldest first. */
  readonly swallowed: readonly SwallowedRequest[];
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

/**
 * An HTTP proxy on 127.0.0.1 forwarding every request to `target` (a collector). It makes "the
 * collector applied the batch but the agent never heard back" happen on purpose: the window in
 * which a kill -9 leaves a delivered batch unacknowledged in the agent's spool. A request the
 * target cannot take (refused, reset) is answered by resetting the client's connection.
 */
export async function faultProxy(run: FaultRun, target: string, options: { port?: number } = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  const keepAlive = new http.Agent({ keepAlive: true });
  let swallowPrefix: string | null = null;
  const swallowed: SwallowedRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('end', () => {
      const path = req.url ?? '/';
      const body = Buffer.concat(chunks);
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && k !== 'host' && k !== 'content-length') headers[k] = v;
      headers['content-length'] = body.length;
      const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path, headers, agent: keepAlive }, (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (c: Buffer) => parts.push(c));
        answer.on('error', () => res.destroy());
        answer.on('end', () => {
          const status = answer.statusCode ?? 502;
          if (swallowPrefix !== null && path.startsWith(swallowPrefix)) {
            const id = req.headers['x-plumb-batch-id'];
            swallowed.push({ path, batchId: typeof id === 'string' ? id : '', status });
            return; // the client is left waiting; its connection stays open until it gives up
          }
          const back: http.OutgoingHttpHeaders = {};
          for (const [k, v] of Object.entries(answer.headers)) if (!HOP_BY_HOP.has(k) && k !== 'content-length') back[k] = v;
          const text = Buffer.concat(parts);
          back['content-length'] = text.length;
          res.writeHead(status, back);
          res.end(text);
        });
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  const port = options.port ?? (await freeTcpPort());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  run.defer(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    keepAlive.destroy();
  });
  return {
    url: `http://127.0.0.1:${port}`,
    swallow(prefix) {
      swallowPrefix = prefix;
    },
    swallowed,
  };
}

// ---- an agent's spool on disk ----

/** The directory of one of an agent's forward lanes (`metricsLaneName(collectorUrl)`, `traces`). */
export function spoolDir(agent: Role, lane: string): string {
  return path.join(agent.dataDir, 'spool', lane);
}

export { metricsLaneName };

/** One record of a spool segment file, decoded as the forwarder wrote it. */
export interface SpooledBatch {
  /** The segment file and the record's place in it: frame header at `offset`, payload after. */
  file: string;
  offset: number;
  payloadOffset: number;
  payloadBytes: number;
  batch: OutgoingBatch;
  /** The body, gunzipped when it was compressed, parsed as JSON (a MetricBatch for metrics). */
  body: unknown;
}

/**
 * Every valid record in the segment files of a spool directory, oldest first, decoded (frame
 * by shared/spool.ts, record by agent/forward/record.ts). Read from disk with the agent
 * stopped; acknowledged records not yet deleted are included (the cursor is not consulted).
 */
export async function spooledBatches(dir: string): Promise<SpooledBatch[]> {
  const out: SpooledBatch[] = [];
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^\d{20}\.seg$/.test(n)).sort();
  for (const name of names) {
    const file = path.join(dir, name);
    const buf = await readFile(file);
    for (const payload of scanFrames(buf).payloads) {
      const payloadOffset = payload.byteOffset - buf.byteOffset;
      const batch = decodeBatch(payload);
      if ('error' in batch) throw new Error(`${file} at ${payloadOffset}: ${batch.error}`);
      const raw = batch.gzip ? gunzipSync(batch.body) : batch.body;
      out.push({ file, offset: payloadOffset - SPOOL_FRAME_BYTES, payloadOffset, payloadBytes: payload.length, batch, body: JSON.parse(raw.toString('utf8')) as unknown });
    }
  }
  return out;
}

/** name → sum over its label sets, of every sample in `role`'s /metrics whose name starts with `prefix`. */
export async function samplesByName(role: Role, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const s of (await scrape(role.url)).samples) if (s.name.startsWith(prefix)) out.set(s.name, (out.get(s.name) ?? 0) + s.value);
  return out;
}

/**
 * Sends one statsd line per step and waits until `settled(step)` holds (e.g. the agent's spool
 * and drop counters account for it) before the next, so each step ends up in an interval of its
 * own: one batch whose content is known. `line(step)` gives the step's counter name and value.
 */
export async function counterSteps(
  port: number,
  range: { from: number; to: number },
  line: (step: number) => { name: string; value: number },
  settled: (step: number) => Promise<boolean>,
  options: { timeoutMs?: number; until?: () => Promise<boolean> } = {},
): Promise<{ sent: Map<string, number>; steps: number }> {
  const sent = new Map<string, number>();
  let done = 0;
  for (let k = range.from; k <= range.to; k++) {
    if (options.until && (await options.until())) break;
    const { name, value } = line(k);
    await sendCounter(port, name, { increments: 1, value });
    sent.set(name, (sent.get(name) ?? 0) + value);
    done++;
    await waitFor(() => settled(k), { what: `statsd step ${k} (${name}) to settle in the agent`, timeoutMs: options.timeoutMs ?? 10_000, intervalMs: 20 });
  }
  return { sent, steps: done };
}

/**
 * Waits until `role` answers GET /readyz with 200. Role.start() waits for /healthz, which the
 * agent answers before its statsd socket is bound; datagrams sent in between are lost (nothing
 * listens yet), so a scenario that needs an exact statsd total waits for this first.
 */
export async function waitReady(role: Role, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    async () => {
      try {
        return (await fetch(`${role.url}/readyz`, { signal: AbortSignal.timeout(2000) })).ok;
      } catch {
        return false;
      }
    },
    { what: `${role.name} to answer /readyz`, timeoutMs, intervalMs: 50 },
  );
}
