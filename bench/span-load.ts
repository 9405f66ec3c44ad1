/**
 * What the span benchmarks (bench/traces.ts, bench/otlp.ts) share: a counting Zipkin stand-in,
 * plumb processes started from source, /proc readings, and the generated span load.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const CLI = join(ROOT, 'cli', 'main.ts');
const TRACE_ID_KEY = Buffer.from('"traceId":');

export function countSpans(json: Buffer): number {
  let n = 0;
  for (let at = json.indexOf(TRACE_ID_KEY); at !== -1; at = json.indexOf(TRACE_ID_KEY, at + TRACE_ID_KEY.length)) n++;
  return n;
}

export async function startZipkin(): Promise<{ server: Server; url: string; spans: () => number }> {
  let spans = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      spans += countSpans(req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw);
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans: () => spans };
}

// ---- plumb processes ----

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

export function startPlumb(role: 'agent' | 'collector', env: Record<string, string>): ChildProcess {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PLUMB_')) clean[k] = v;
  const child = spawn(NODE, [CLI, role], { cwd: ROOT, env: { ...clean, PLUMB_LOG__LEVEL: 'warn', ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
  return child;
}

export async function waitForOk(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

/** User + system CPU seconds of a process, from /proc/<pid>/stat (Linux, USER_HZ 100). */
export function cpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** Busy and total CPU seconds of the whole machine, from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / 100, total: total / 100 };
}

export function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) / 1024 : 0;
}

// ---- load ----

export function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** `count` request bodies of `spans` spans each: a SERVER span per trace with CLIENT children. */
export function bodies(count: number, spans: number): Buffer[] {
  const out: Buffer[] = [];
  const now = Date.now() * 1000;
  let id = 1;
  for (let b = 0; b < count; b++) {
    const list: unknown[] = [];
    const traceId = hex(0x10000 + b, 32);
    const root = hex(id, 16);
    for (let i = 0; i < spans; i++) {
      const server = i === 0;
      list.push({
        traceId,
        id: server ? root : hex(id + i, 16),
        ...(server ? {} : { parentId: root }),
        name: server ? 'GET /api/orders/{id}' : `SELECT orders ${i % 5}`,
        kind: server ? 'SERVER' : 'CLIENT',
        timestamp: now + i * 10,
        duration: 150 + ((i * 7919) % 5000),
        localEndpoint: { serviceName: `svc-${b % 4}`, ipv4: '10.0.0.12', port: 8080 },
        tags: { 'http.request.method': 'GET', 'http.route': '/api/orders/{id}', 'db.system': 'postgresql', 'net.peer.name': 'db-1', 'app.shard': String(i % 16), 'otel.library.name': 'bench' },
      });
    }
    id += spans;
    out.push(Buffer.from(JSON.stringify(list)));
  }
  return out;
}
