/**
 * What watching a running agent costs: its CPU and memory under a steady load (statsd lines and
 * log lines) with nobody looking, with GET /api/v1/status polled once a second (plumb top
 * --interval 1s), with status asked back to back (CPU per report), with a tap open whose filter
 * matches nothing (every item is looked at, none sent), and with taps streaming.
 *
 *   node bench/observe.ts [--seconds 15] [--lines 2000] [--logs 200]
 *
 * CPU is user + system time of the agent process over each window (/proc/<pid>/stat, all threads)
 * as cores; memory is its RSS at the end of the window. The agent forwards to a collector stand-in
 * that acknowledges everything, so nothing piles up. Prints one JSON object.
 */
import dgram from 'node:dgram';
import { createServer } from 'node:http';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';
import { cpuSeconds, freePort, machineCpu, rssMiB, stopChild, waitForOk } from './span-load.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const seconds = Number(flag('seconds', '15'));
const linesPerSecond = Number(flag('lines', '2000'));
const logsPerSecond = Number(flag('logs', '200'));
const ROOT = join(import.meta.dirname, '..');

interface Window {
  cores: number;
  rssMiB: number;
  otherCores: number;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

async function measure(pid: number, during: (signal: AbortSignal) => Promise<unknown> = async () => undefined): Promise<Window & { extra?: unknown }> {
  const c0 = cpuSeconds(pid);
  const m0 = machineCpu();
  const t0 = performance.now();
  const abort = new AbortController();
  const running = during(abort.signal);
  await sleep(seconds * 1000);
  abort.abort();
  const extra = await running.catch(() => undefined);
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - c0;
  const m1 = machineCpu();
  return { cores: round(cpu / wall, 4), rssMiB: round(rssMiB(pid), 1), otherCores: round((m1.busy - m0.busy - cpu) / wall, 2), ...(extra !== undefined ? { extra } : {}) };
}

/** Reads a tap until aborted; returns the lines it got. */
async function tap(url: string, signal: AbortSignal): Promise<number> {
  let lines = 0;
  try {
    const res = await fetch(url, { signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const b of value) if (b === 0x0a) lines++;
    }
  } catch {
    // aborted at the end of the window
  }
  return lines;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'plumb-observe-bench-'));
  // a collector stand-in: every batch acknowledged
  const collector = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(req.url?.startsWith('/v1/logs') ? '{"accepted":0,"duplicate":0}' : '{"accepted":0,"refused":0,"duplicate":false}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const collectorPort = (collector.address() as AddressInfo).port;
  const httpPort = await freePort();
  const statsdPort = await freePort();
  const log = join(dir, 'app.log');
  await writeFile(log, '');
  const config = join(dir, 'agent.yaml');
  await writeFile(
    config,
    `agent:
  dataDir: ${JSON.stringify(join(dir, 'data'))}
  http: { listen: "127.0.0.1:${httpPort}" }
  statsd: { listen: "127.0.0.1:${statsdPort}", flushInterval: 1s }
  forward: { collectors: ["http://127.0.0.1:${collectorPort}"] }
  traces: { zipkin: { enabled: false } }
  logs: [{ path: ${JSON.stringify(log)}, pattern: "%{WORD:level} %{GREEDYDATA:rest}" }]
log: { level: warn }
`,
  );
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PLUMB_')) clean[k] = v;
  const agent = spawn(join(ROOT, 'node_modules', '.bin', 'node'), [join(ROOT, 'cli', 'main.ts'), 'agent', '--config', config], { cwd: ROOT, env: clean, stdio: ['ignore', 'inherit', 'inherit'] });
  const url = `http://127.0.0.1:${httpPort}`;
  const socket = dgram.createSocket('udp4');
  let timer: NodeJS.Timeout | undefined;
  try {
    await waitForOk(`${url}/readyz`, 30_000);
    // the load: statsd lines in datagrams of 20, log lines appended, every 100 ms
    let n = 0;
    timer = setInterval(() => {
      for (let d = 0; d < linesPerSecond / 200; d++) {
        const lines = Array.from({ length: 20 }, (_, k) => `bench.req.${(n + k) % 50}:${k}|c|#env:bench`);
        n += 20;
        socket.send(lines.join('\n'), statsdPort, '127.0.0.1');
      }
      void appendFile(log, Array.from({ length: logsPerSecond / 10 }, (_, k) => `${k % 10 === 0 ? 'ERROR' : 'INFO'} bench line ${n}.${k}\n`).join(''));
    }, 100);
    await sleep(5000); // warm up
    const pid = agent.pid as number;
    const result: Record<string, unknown> = { machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`, seconds, load: { statsdLinesPerSecond: linesPerSecond, logLinesPerSecond: logsPerSecond } };
    result.idle = await measure(pid);
    result.statusEverySecond = await measure(pid, async (signal) => {
      let bytes = 0;
      while (!signal.aborted) {
        bytes = (await (await fetch(`${url}/api/v1/status`)).text()).length;
        await sleep(1000, undefined, { signal }).catch(() => undefined);
      }
      return { reportBytes: bytes };
    });
    // back to back: CPU per report
    {
      const count = 300;
      const c0 = cpuSeconds(pid);
      const t0 = performance.now();
      for (let i = 0; i < count; i++) await (await fetch(`${url}/api/v1/status`)).text();
      result.statusBackToBack = { requests: count, cpuMsPerReport: round(((cpuSeconds(pid) - c0) * 1000) / count, 3), msPerReport: round((performance.now() - t0) / count, 2) };
    }
    result.tapNothingMatches = await measure(pid, async (signal) => ({ lines: await tap(`${url}/api/v1/tap?component=statsd&filter=${encodeURIComponent('name == "nothing"')}&limit=1000000`, signal) }));
    result.tapStatsd100PerSecond = await measure(pid, async (signal) => ({ lines: await tap(`${url}/api/v1/tap?component=statsd&rate=100&limit=1000000`, signal) }));
    result.tapStatsdAll = await measure(pid, async (signal) => ({ lines: await tap(`${url}/api/v1/tap?component=statsd&rate=10000&limit=1000000`, signal) }));
    result.tapParserErrors = await measure(pid, async (signal) => ({ lines: await tap(`${url}/api/v1/tap?component=parser&filter=${encodeURIComponent('level == "ERROR"')}&rate=1000&limit=1000000`, signal) }));
    result.afterTaps = await measure(pid);
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } finally {
    if (timer) clearInterval(timer);
    socket.close();
    await stopChild(agent);
    collector.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
