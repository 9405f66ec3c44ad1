/**
 * What the span benchmarks (bench/traces.ts, bench/otlp.ts, bench/memory.ts) share: a counting
 * Zipkin stand-in, plumb processes started from source, /proc readings, and the generated span
 * load with the clients that post it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';

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

export interface Load {
  readonly accepted: number;
  readonly refused: number;
  stop(): Promise<void>;
}

export interface LoadOptions {
  contentType: string;
  /** Keep-alive clients posting at once. */
  concurrency: number;
  itemsPerRequest: number;
  /** The status that means accepted. */
  ok: number;
  /** Items/s on an absolute schedule; absent: as fast as the answers come. */
  rate?: number;
  /**
   * 'throw': 429 and 503 count as refused (the client backs off 20 ms), any other answer ends
   * the run; 'count': every other answer or error counts as refused.
   */
  otherwise: 'throw' | 'count';
}

/** Posts `payloads` round-robin to `url` until stopped, counting accepted and refused items. */
export function startLoad(url: string, payloads: Buffer[], o: LoadOptions): Load {
  const dispatcher = new Agent({ connections: o.concurrency, keepAliveTimeout: 30_000 });
  const state = { accepted: 0, refused: 0, running: true };
  const start = performance.now();
  let sent = 0;
  async function client(k: number): Promise<void> {
    let next = k;
    while (state.running) {
      let body: Buffer;
      if (o.rate !== undefined) {
        const due = start + (sent * o.itemsPerRequest * 1000) / o.rate;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        body = payloads[sent++ % payloads.length];
      } else body = payloads[next % payloads.length];
      let status: number;
      try {
        const res = await request(url, { method: 'POST', body, headers: { 'content-type': o.contentType }, dispatcher });
        await res.body.dump();
        status = res.statusCode;
      } catch (err) {
        if (o.otherwise === 'throw') throw err;
        status = 0;
      }
      if (status === o.ok) {
        state.accepted += o.itemsPerRequest;
        next += o.concurrency;
      } else if (o.otherwise === 'count') state.refused += o.itemsPerRequest;
      else if (status === 429 || status === 503) {
        state.refused += o.itemsPerRequest;
        await sleep(20);
      } else throw new Error(`agent answered ${status}`);
    }
  }
  const clients = Array.from({ length: o.concurrency }, (_, k) => client(k));
  return {
    get accepted() {
      return state.accepted;
    },
    get refused() {
      return state.refused;
    },
    async stop() {
      state.running = false;
      await Promise.all(clients);
      await dispatcher.close();
    },
  };
}

/** `--name value` pairs over numeric defaults; an unknown name is an error. */
export function numericOptions<T extends { [K in keyof T]: number }>(defaults: T, argv: string[]): T {
  const o = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in o)) throw new Error(`unknown option ${argv[i]}`);
    (o as Record<string, number>)[key] = Number(argv[i + 1]);
  }
  return o;
}
