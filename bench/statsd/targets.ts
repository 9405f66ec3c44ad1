/**
 * The contenders, each a child process listening on 127.0.0.1 with a known receive buffer:
 * plumb's agent (`plumb agent`), Etsy statsd 0.9 (the `statsd` package), and a bare Node dgram
 * socket that only counts lines. Each reports the lines it processed from its own counters.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { openSync, closeSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { udpSocketState, udpReceiveBuffer } from './procfs.ts';
import { track } from './processes.ts';
import type { CodePaths } from './build.ts';

export type TargetName = 'plumb' | 'etsy' | 'bare';

export const TARGET_LABELS: Record<TargetName, string> = {
  plumb: 'plumb agent',
  etsy: 'Etsy statsd 0.9',
  bare: 'bare Node dgram (counts lines only)',
};

export interface TargetCounts {
  /** Lines the target processed (plumb: parsed and aggregated; Etsy: metrics_received; bare: counted). */
  lines: number;
  /** Lines the target rejected as malformed. */
  parseErrors: number;
  /** Datagrams the kernel dropped on the target's socket (receive buffer full). */
  socketDrops: number;
}

export interface Target {
  readonly name: TargetName;
  readonly pid: number;
  readonly port: number;
  /** The receive buffer as the kernel reports it (ss skmem rb: twice what was asked). */
  readonly receiveBuffer: number;
  counts(): Promise<TargetCounts>;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Bytes asked of the kernel with SO_RCVBUF (the kernel doubles it and caps it at rmem_max). */
  receiveBufferBytes: number;
  /** Scratch folder for configs and logs. */
  workDir: string;
  /** Compiled or source entry points. */
  code: CodePaths;
  /** plumb only: write a V8 CPU profile into this folder when the agent exits. */
  cpuProfileDir?: string;
  /** plumb only: extra Node flags for the agent (e.g. --max-semi-space-size=2). */
  nodeFlags?: string[];
}

const REPO = resolve(import.meta.dirname, '..', '..');

function spawnChild(args: string[], logName: string, workDir: string, ipc = false): ChildProcess {
  mkdirSync(join(workDir, 'logs'), { recursive: true });
  const out = openSync(join(workDir, 'logs', `${logName}.log`), 'a');
  const child = track(spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', out, out, ...(ipc ? (['ipc'] as const) : [])] }));
  closeSync(out);
  return child;
}

async function stopChild(child: ChildProcess, deadlineMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
  await exited;
  clearTimeout(timer);
}

/** A free port on 127.0.0.1 for both UDP and TCP (asked of the kernel, then released). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((res) => udp.bind(0, '127.0.0.1', () => res()));
    const port = udp.address().port;
    const tcpFree = await new Promise<boolean>((res) => {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
    });
    await new Promise<void>((res) => udp.close(() => res()));
    if (tcpFree) return port;
  }
  throw new Error('no free port found on 127.0.0.1');
}

/** Polls `check` until it returns true, failing after `deadlineMs` or when the child exits. */
async function waitFor(what: string, child: ChildProcess, deadlineMs: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited during start-up (see bench/.work/logs)`);
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  throw new Error(`${what} did not come up within ${deadlineMs} ms (see bench/.work/logs)`);
}

/** Receive buffer of the socket on `port`, or of the kernel's report once it has one. */
async function grantedBuffer(port: number): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const rb = udpReceiveBuffer(port);
    if (rb !== null) return rb;
    await sleep(50);
  }
  return 0;
}

/** A stand-in collector: answers every request with 200 and counts what it got. */
export class Sink {
  private server: Server | null = null;
  port = 0;
  requests = 0;
  bytes = 0;

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.requests++;
      req.on('data', (chunk: Buffer) => {
        this.bytes += chunk.length;
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((res) => s.close(() => res()));
  }
}

// ── plumb ────────────────────────────────────────────────────────────────────────────────────

function metricValue(text: string, name: string): number {
  let total = 0;
  const re = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm');
  for (let m = re.exec(text); m !== null; m = re.exec(text)) total += Number(m[1]);
  return total;
}

export async function startPlumb(options: StartOptions, sinkPort: number): Promise<Target> {
  const udpPort = await freePort();
  const httpPort = await freePort();
  const zipkinPort = await freePort();
  const configFile = join(options.workDir, `plumb-agent-${options.receiveBufferBytes}.yaml`);
  writeFileSync(
    configFile,
    [
      'agent:',
      `  dataDir: ${JSON.stringify(join(options.workDir, 'agent-data'))}`,
      `  http: { listen: "127.0.0.1:${httpPort}" }`,
      `  statsd: { listen: "127.0.0.1:${udpPort}", receiveBuffer: ${options.receiveBufferBytes}, flushInterval: 10s }`,
      `  forward: { collectors: ["http://127.0.0.1:${sinkPort}"] }`,
      // the receiver stays on, as by default, on a port no other process on a shared machine holds
      `  traces: { zipkin: { listen: "127.0.0.1:${zipkinPort}" } }`,
      'log: { level: warn }',
      '',
    ].join('\n'),
  );
  const nodeFlags = [...(options.nodeFlags ?? []), ...(options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : [])];
  const child = spawnChild([...nodeFlags, options.code.agentMain, 'agent', '--config', configFile], 'plumb', options.workDir);
  const base = `http://127.0.0.1:${httpPort}`;
  await waitFor('plumb agent', child, 20_000, async () => (await fetch(`${base}/readyz`)).ok);
  const receiveBuffer = await grantedBuffer(udpPort);
  return {
    name: 'plumb',
    pid: child.pid as number,
    port: udpPort,
    receiveBuffer,
    async counts() {
      const text = await (await fetch(`${base}/metrics`)).text();
      return {
        lines: metricValue(text, 'plumb_statsd_lines_total'),
        parseErrors: metricValue(text, 'plumb_statsd_parse_errors_total') + metricValue(text, 'plumb_statsd_dropped_total'),
        socketDrops: metricValue(text, 'plumb_statsd_socket_drops_total'),
      };
    },
    stop: () => stopChild(child, 15_000),
  };
}

// ── Etsy statsd ──────────────────────────────────────────────────────────────────────────────

/** Sends one management-console command and returns the reply up to its END marker. */
function mgmtCommand(port: number, command: string, timeoutMs = 5000): Promise<string> {
  return new Promise((res, rej) => {
    const sock = connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      sock.destroy();
      rej(new Error(`statsd management console: no reply to "${command}"`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${command}\n`));
    sock.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('END\n\n') || text.startsWith('health:')) {
        clearTimeout(timer);
        sock.destroy();
        res(text);
      }
    });
    sock.on('error', (err) => {
      clearTimeout(timer);
      rej(err);
    });
  });
}

function statLine(text: string, key: string): number {
  const m = new RegExp(`^${key.replace(/\./g, '\\.')}: (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

function counterValue(inspected: string, key: string): number {
  const m = new RegExp(`'${key.replace(/\./g, '\\.')}': (\\d+)`).exec(inspected);
  return m ? Number(m[1]) : NaN;
}

export async function startEtsy(options: StartOptions): Promise<Target> {
  const udpPort = await freePort();
  const mgmtPort = await freePort();
  const configFile = join(options.workDir, `etsy-${options.receiveBufferBytes}.conf`);
  const server = options.code.etsyServer;
  const backend = options.code.etsyBackend;
  writeFileSync(
    configFile,
    `{
  address: '127.0.0.1',
  port: ${udpPort},
  mgmt_address: '127.0.0.1',
  mgmt_port: ${mgmtPort},
  flushInterval: 10000,
  automaticConfigReload: false,
  backends: [${JSON.stringify(backend)}],
  servers: [{ server: ${JSON.stringify(server)}, address: '127.0.0.1', port: ${udpPort}, receiveBuffer: ${options.receiveBufferBytes} }]
}
`,
  );
  const child = spawnChild(['--import', options.code.etsyCompat, join(REPO, 'node_modules', 'statsd', 'stats.js'), configFile], 'etsy', options.workDir);
  await waitFor('Etsy statsd', child, 20_000, async () => (await mgmtCommand(mgmtPort, 'health')).includes('up') && udpSocketState(udpPort) !== null);
  const receiveBuffer = await grantedBuffer(udpPort);
  return {
    name: 'etsy',
    pid: child.pid as number,
    port: udpPort,
    receiveBuffer,
    async counts() {
      // statsd zeroes its counters at each flush; the backend keeps the flushed total. Read
      // flushed, live, flushed again, and retry if a flush fell in between.
      for (let attempt = 0; attempt < 5; attempt++) {
        const before = await mgmtCommand(mgmtPort, 'stats');
        const live = await mgmtCommand(mgmtPort, 'counters');
        const after = await mgmtCommand(mgmtPort, 'stats');
        const flushed = statLine(before, 'bench.lines_flushed');
        if (flushed !== statLine(after, 'bench.lines_flushed')) continue;
        const lines = flushed + counterValue(live, 'statsd.metrics_received');
        const bad = statLine(before, 'bench.bad_lines_flushed') + counterValue(live, 'statsd.bad_lines_seen');
        if (!Number.isFinite(lines)) throw new Error('could not read statsd.metrics_received from the statsd console');
        return { lines, parseErrors: bad, socketDrops: udpSocketState(udpPort)?.drops ?? 0 };
      }
      throw new Error('statsd kept flushing while its counters were read');
    },
    stop: () => stopChild(child, 10_000),
  };
}

// ── bare Node socket ─────────────────────────────────────────────────────────────────────────

export async function startBare(options: StartOptions): Promise<Target> {
  const udpPort = await freePort();
  const child = spawnChild([options.code.bareSink, String(udpPort), String(options.receiveBufferBytes)], 'bare', options.workDir, true);
  await new Promise<void>((res, rej) => {
    const onExit = (): void => {
      clearTimeout(timer);
      rej(new Error('bare sink exited during start-up (see bench/.work/logs)'));
    };
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      rej(new Error('bare sink did not start within 20 s'));
    }, 20_000);
    child.once('exit', onExit);
    child.once('message', () => {
      clearTimeout(timer);
      child.off('exit', onExit);
      res();
    });
  });
  const receiveBuffer = await grantedBuffer(udpPort);
  return {
    name: 'bare',
    pid: child.pid as number,
    port: udpPort,
    receiveBuffer,
    async counts() {
      const reply = once(child, 'message') as Promise<[{ lines: number }]>;
      child.send('counts');
      const [msg] = await reply;
      return { lines: msg.lines, parseErrors: 0, socketDrops: udpSocketState(udpPort)?.drops ?? 0 };
    },
    stop: () => stopChild(child, 5000),
  };
}

export function startTarget(name: TargetName, options: StartOptions, sinkPort: number): Promise<Target> {
  if (name === 'plumb') return startPlumb(options, sinkPort);
  if (name === 'etsy') return startEtsy(options);
  return startBare(options);
}
