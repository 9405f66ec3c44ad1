/**
 * `npm run bench:sinks`: log events per second from the collector's log ingest through to a
 * sink, bytes per event on the way, and what the collector spends doing it (CPU, RSS).
 *
 *   node bench/sinks.ts [--via accept|http] [--sinks file,elasticsearch] [--events 200000]
 *                       [--batch 1000] [--concurrency 4] [--runs 3] [--write]
 *
 * For each sink in --sinks, `runs` times, a fresh collector runs as a child process with only that sink, on
 * a fresh data directory, its queues on disk with their default fsync per accepted batch:
 * - `--via accept` (default): the child builds the log router from config (as the collector
 *   does) and calls `LogRouter.accept` with the batches, `concurrency` at a time, as the ingest
 *   route would; the batches are generated in the child before the measured window.
 * - `--via http`: the child is `plumb collector` (from source) and this process posts the
 *   batches to `POST /v1/logs` (gzip NDJSON, x-plumb-batch-id), `concurrency` at a time, as
 *   agents do; a 429 is retried after its Retry-After.
 * The window runs from the first batch to the moment every event is out of the sink's queue
 * (delivered). Elasticsearch is the test server of test/helpers/es-server.ts in this process
 * (it parses every document and keeps the ids, so `create` conflicts behave as in a cluster);
 * its own CPU is not the collector's and is not counted.
 *
 * Events look like the agent's for an nginx access log: ECS fields, a grok-parsed request and
 * the original line, about 620 bytes of NDJSON each. Every run checks the count that arrived.
 * Collector CPU: utime + stime from /proc/<pid>/stat over the window; RSS: VmRSS sampled every
 * 100 ms (peak) and at the end. With --write, appends a section to bench/RESULTS.md.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { machineInfo, processCpuSeconds, processMemory } from './statsd/procfs.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const SELF = fileURLToPath(import.meta.url);

type SinkName = 'file' | 'elasticsearch';

interface Options {
  via: 'accept' | 'http';
  sinks: SinkName[];
  events: number;
  batch: number;
  concurrency: number;
  runs: number;
  write: boolean;
}

function options(argv: string[]): Options {
  const o: Options = { via: 'accept', sinks: ['file', 'elasticsearch'], events: 200_000, batch: 1000, concurrency: 4, runs: 3, write: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--write') {
      o.write = true;
      continue;
    }
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--via' && (v === 'accept' || v === 'http')) o.via = v;
    else if (a === '--sinks') o.sinks = v.split(',').map((s) => s.trim()) as SinkName[];
    else if (a === '--events') o.events = Number(v);
    else if (a === '--batch') o.batch = Number(v);
    else if (a === '--concurrency') o.concurrency = Number(v);
    else if (a === '--runs') o.runs = Number(v);
    else throw new Error(`unknown option ${a} (see the header of bench/sinks.ts)`);
  }
  for (const s of o.sinks) if (s !== 'file' && s !== 'elasticsearch') throw new Error(`--sinks: file or elasticsearch, not ${s}`);
  return o;
}

// ---- events ----

const PATHS = ['/', '/index.html', '/api/v1/users/12345', '/static/app.3f9a1c.js', '/cart?id=7&ref=home', '/search?q=blue+shoes&page=2'];
const AGENTS = ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'curl/8.5.0'];

/** Batch `b` of `size` events, as an agent would send it. */
function makeBatch(b: number, size: number): Buffer {
  const parts: string[] = [];
  for (let i = 0; i < size; i++) {
    const k = b * size + i;
    const t = new Date(Date.UTC(2026, 10, 24) + k * 3);
    const ip = `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
    const path = PATHS[k % PATHS.length];
    const status = [200, 200, 200, 304, 404, 500][k % 6];
    const bytes = (k * 37) % 50_000;
    const agent = AGENTS[k % AGENTS.length];
    const original = `${ip} - - [24/Nov/2026:00:00:00 +0000] "GET ${path} HTTP/1.1" ${status} ${bytes} "-" "${agent}"`;
    parts.push(
      JSON.stringify({
        '@timestamp': t.toISOString(),
        message: original,
        event: { id: `${(k % 97).toString(16).padStart(32, '0')}${(k * 211).toString(16).padStart(12, '0')}`, original },
        host: { name: `web-${k % 4}` },
        log: { file: { path: '/var/log/nginx/access.log' }, offset: k * 211 },
        source: { ip },
        http: { request: { method: 'GET' }, response: { status_code: status, body: { bytes } }, version: '1.1' },
        url: { original: path },
        user_agent: { original: agent },
      }),
    );
  }
  return Buffer.from(parts.join('\n') + '\n');
}

// ---- the child: a collector that only accepts (--via accept) ----

interface ChildStart {
  sink: SinkName;
  esUrl?: string;
  dataDir: string;
  events: number;
  batch: number;
  concurrency: number;
}

async function child(): Promise<void> {
  const { Value } = await import('@sinclair/typebox/value');
  const { CollectorLogsSchema } = await import('../collector/logs/config.ts');
  const { LogRouter } = await import('../collector/logs/router.ts');
  const { RetryableError } = await import('../shared/errors.ts');
  const { Telemetry } = await import('../shared/telemetry.ts');
  const { silentLogger } = await import('../shared/log.ts');
  const start = await new Promise<ChildStart>((resolve) => process.once('message', (m) => resolve(m as ChildStart)));
  const logs = Value.Decode(CollectorLogsSchema, Value.Default(CollectorLogsSchema, sinkConfig(start.sink, start.esUrl)));
  const router = await LogRouter.create(logs, { telemetry: new Telemetry(), log: silentLogger(), dataDir: start.dataDir });
  const batches: Buffer[] = [];
  for (let b = 0; b * start.batch < start.events; b++) batches.push(makeBatch(b, Math.min(start.batch, start.events - b * start.batch)));
  router.start();
  process.send!({ ready: true, ndjsonBytes: batches.reduce((n, b) => n + b.length, 0) });
  await new Promise((resolve) => process.once('message', resolve));
  let next = 0;
  let refused = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const b = next++;
      for (;;) {
        try {
          await router.accept({ id: `bench-${b}`, ndjson: batches[b], count: Math.min(start.batch, start.events - b * start.batch) });
          break;
        } catch (err) {
          if (!(err instanceof RetryableError)) throw err;
          refused++;
          await sleep(50);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: start.concurrency }, worker));
  for (;;) {
    const s = router.status()[0];
    if (s.queue.events === 0 && s.delivered + s.duplicate + s.deadLettered >= start.events) break;
    await sleep(5);
  }
  const s = router.status()[0];
  process.send!({ done: true, refused, status: s });
  await router.stop(Date.now() + 5000);
  process.exit(0);
}

function sinkConfig(sink: SinkName, esUrl: string | undefined): Record<string, unknown> {
  if (sink === 'file') return { sinks: { file: {} } };
  return { sinks: { elasticsearch: { node: esUrl, template: { install: false } } } };
}

// ---- the parent ----

interface RunResult {
  sink: SinkName;
  via: string;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  ndjsonBytesPerEvent: number;
  wireBytesPerEvent: number | null;
  sinkBytesPerEvent: number;
  collectorCpuCores: number;
  cpuMicrosPerEvent: number;
  /** RSS when the window opened (accept mode: with the generated batches in memory). */
  startRssMiB: number;
  peakRssMiB: number;
  endRssMiB: number;
  /** CPU of this harness process (the Elasticsearch stand-in, the HTTP load) over the window. */
  harnessCpuCores: number;
  refused: number;
  arrived: number;
}

async function run(o: Options, sink: SinkName): Promise<RunResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'plumb-bench-sinks-'));
  const { startEsServer } = await import('../test/helpers/es-server.ts');
  const es = sink === 'elasticsearch' ? await startEsServer({ keepSources: false }) : undefined;
  try {
    return o.via === 'accept' ? await runAccept(o, sink, dataDir, es) : await runHttp(o, sink, dataDir, es);
  } finally {
    await es?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

interface Es {
  url: string;
  bulkBytes: number;
  count(target?: string): number;
}

interface Window {
  seconds: number;
  cpu: number;
  harnessCpu: number;
  startRss: number;
  peakRss: number;
  endRss: number;
}

/** Opens the measured window on the collector `pid`: CPU, RSS (sampled every 100 ms) and this process's CPU. */
function window(pid: number): { end: () => Window } {
  const startRss = processMemory(pid).rssBytes;
  let peak = startRss;
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, processMemory(pid).rssBytes);
    } catch {
      // the process ended
    }
  }, 100);
  const cpu0 = processCpuSeconds(pid);
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  return {
    end: () => {
      const seconds = (performance.now() - t0) / 1000;
      const cpu = processCpuSeconds(pid) - cpu0;
      const self = process.cpuUsage(self0);
      clearInterval(timer);
      const endRss = processMemory(pid).rssBytes;
      return { seconds, cpu, harnessCpu: (self.user + self.system) / 1e6, startRss, peakRss: Math.max(peak, endRss), endRss };
    },
  };
}

async function runAccept(o: Options, sink: SinkName, dataDir: string, es: Es | undefined): Promise<RunResult> {
  const c = fork(SELF, ['--child'], { execPath: NODE, execArgv: process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    c.send({ sink, esUrl: es?.url, dataDir, events: o.events, batch: o.batch, concurrency: o.concurrency } satisfies ChildStart);
    const [ready] = (await once(c, 'message')) as [{ ndjsonBytes: number }];
    const pid = c.pid!;
    const w = window(pid);
    c.send({ go: true });
    const [done] = (await once(c, 'message')) as [{ refused: number; status: { delivered: number } }];
    const measured = w.end();
    // the child stops its router and exits by itself (writing its CPU profile, if asked)
    await Promise.race([once(c, 'exit'), sleep(15_000)]);
    return result(o, sink, 'LogRouter.accept', measured, ready.ndjsonBytes, null, done.refused, dataDir, es, done.status.delivered);
  } finally {
    await stopChild(c);
  }
}

async function runHttp(o: Options, sink: SinkName, dataDir: string, es: Es | undefined): Promise<RunResult> {
  const { freeTcpPort } = await import('../test/helpers/ports.ts');
  const port = await freeTcpPort();
  const logs = sinkConfig(sink, es?.url);
  const config = { collector: { listen: `127.0.0.1:${port}`, dataDir, logs }, log: { level: 'warn' } };
  const file = join(dataDir, 'plumb.yaml');
  writeFileSync(file, JSON.stringify(config));
  const c = spawn(NODE, [join(ROOT, 'cli', 'main.ts'), 'collector', '--config', file], { stdio: ['ignore', 'inherit', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  const dispatcher = new Agent({ connections: o.concurrency });
  try {
    await waitHttp(`${base}/metrics`, dispatcher);
    const batches: Buffer[] = [];
    let ndjsonBytes = 0;
    let wireBytes = 0;
    for (let b = 0; b * o.batch < o.events; b++) {
      const raw = makeBatch(b, Math.min(o.batch, o.events - b * o.batch));
      ndjsonBytes += raw.length;
      const gz = gzipSync(raw);
      wireBytes += gz.length;
      batches.push(gz);
    }
    const w = window(c.pid!);
    let next = 0;
    let refused = 0;
    const worker = async (): Promise<void> => {
      while (next < batches.length) {
        const b = next++;
        for (;;) {
          const res = await request(`${base}/v1/logs`, {
            method: 'POST',
            dispatcher,
            headers: { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip', 'x-plumb-batch-id': `bench-${b}` },
            body: batches[b],
          });
          const text = await res.body.text();
          if (res.statusCode === 200) break;
          if (res.statusCode === 429 || res.statusCode === 503) {
            refused++;
            await sleep(Number(res.headers['retry-after'] ?? 1) * 1000);
            continue;
          }
          throw new Error(`POST /v1/logs answered ${res.statusCode}: ${text.slice(0, 300)}`);
        }
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, worker));
    let delivered = 0;
    for (;;) {
      const res = await request(`${base}/api/v1/sinks`, { dispatcher });
      const body = (await res.body.json()) as { sinks: { queue: { events: number }; delivered: number; duplicate: number }[] };
      const s = body.sinks[0];
      delivered = s.delivered;
      if (s.queue.events === 0 && s.delivered + s.duplicate >= o.events) break;
      await sleep(20);
    }
    return result(o, sink, 'POST /v1/logs', w.end(), ndjsonBytes, wireBytes, refused, dataDir, es, delivered);
  } finally {
    await dispatcher.close();
    await stopChild(c);
  }
}

async function waitHttp(url: string, dispatcher: Agent): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await request(url, { dispatcher });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within 30 s`);
    await sleep(100);
  }
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
  await once(c, 'exit');
  clearTimeout(timer);
}

function result(o: Options, sink: SinkName, via: string, w: Window, ndjsonBytes: number, wireBytes: number | null, refused: number, dataDir: string, es: Es | undefined, delivered: number): RunResult {
  const { seconds, cpu } = w;
  const arrived = sink === 'elasticsearch' ? es!.count() : countLines(join(dataDir, 'logs'));
  if (arrived !== o.events) throw new Error(`${sink}: ${arrived} events arrived, ${o.events} sent`);
  if (delivered !== o.events) throw new Error(`${sink}: the sink counted ${delivered} delivered, ${o.events} sent`);
  const sinkBytes = sink === 'elasticsearch' ? es!.bulkBytes : dirBytes(join(dataDir, 'logs'));
  const r2 = (n: number) => Math.round(n * 100) / 100;
  return {
    sink,
    via,
    events: o.events,
    seconds: r2(seconds),
    eventsPerSecond: Math.round(o.events / seconds),
    ndjsonBytesPerEvent: Math.round(ndjsonBytes / o.events),
    wireBytesPerEvent: wireBytes === null ? null : Math.round(wireBytes / o.events),
    sinkBytesPerEvent: Math.round(sinkBytes / o.events),
    collectorCpuCores: r2(cpu / seconds),
    cpuMicrosPerEvent: r2((cpu * 1e6) / o.events),
    startRssMiB: Math.round(w.startRss / 2 ** 20),
    peakRssMiB: Math.round(w.peakRss / 2 ** 20),
    endRssMiB: Math.round(w.endRss / 2 ** 20),
    harnessCpuCores: r2(w.harnessCpu / seconds),
    refused,
    arrived,
  };
}

function walk(dir: string, visit: (path: string) => void): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, visit);
    else visit(p);
  }
}

function countLines(dir: string): number {
  let n = 0;
  walk(dir, (p) => {
    if (!p.endsWith('.ndjson')) return;
    const buf = readFileSync(p);
    for (let i = buf.indexOf(0x0a); i >= 0; i = buf.indexOf(0x0a, i + 1)) n++;
  });
  return n;
}

function dirBytes(dir: string): number {
  let n = 0;
  walk(dir, (p) => (n += statSync(p).size));
  return n;
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  return v.length === 0 ? 0 : v.length % 2 === 1 ? v[(v.length - 1) / 2] : Math.round((v[v.length / 2 - 1] + v[v.length / 2]) / 2);
}

function render(o: Options, results: RunResult[], date: string, commit: string): string {
  const rows = results
    .map((r) => `| ${r.sink} | ${r.via} | ${r.events.toLocaleString('en-US')} | ${r.eventsPerSecond.toLocaleString('en-US')} | ${r.ndjsonBytesPerEvent}${r.wireBytesPerEvent !== null ? ` (${r.wireBytesPerEvent} gzip)` : ''} | ${r.sinkBytesPerEvent} | ${r.collectorCpuCores} | ${r.cpuMicrosPerEvent} | ${r.startRssMiB} / ${r.peakRssMiB} / ${r.endRssMiB} | ${r.harnessCpuCores} | ${r.refused} |`)
    .join('\n');
  return `
## Log sinks: ingest → disk queue → sink (\`bench/sinks.ts\`)

**Date** ${date}. **Commit** ${commit}. **Machine** ${JSON.stringify(machineInfo())}.

**Method** \`node bench/sinks.ts --via ${o.via} --sinks ${o.sinks.join(',')} --events ${o.events} --batch ${o.batch} --concurrency ${o.concurrency} --runs ${o.runs} --write\`, one row per run. Median events/s: ${o.sinks.map((sink) => `${sink} ${median(results.filter((r) => r.sink === sink).map((r) => r.eventsPerSecond)).toLocaleString('en-US')}`).join(', ')}. One collector process per sink (from source, Node type stripping), only that sink configured, queues on disk with fsync per accepted batch. ${
    o.via === 'accept'
      ? '`LogRouter.accept` called directly in the collector process (the ingest route is not in the measured path), batches generated before the window.'
      : '`plumb collector` fed over HTTP: gzip NDJSON `POST /v1/logs`, retried after Retry-After on 429.'
  } Window: first batch → every event out of the sink's queue. Elasticsearch = the test server (\`test/helpers/es-server.ts\`) in the harness process, not a cluster. Bytes per event: NDJSON in; at the sink, bytes written to files or bulk request bytes. ${o.via === 'accept' ? 'RSS at the start includes the generated batches held by the child. ' : ''}Harness CPU is this process: the Elasticsearch stand-in${o.via === 'http' ? ' and the HTTP load' : ''}; when it nears one core, the stand-in, not plumb, sets the pace.

| sink | via | events | events/s | bytes/event in | bytes/event at the sink | collector CPU (cores) | CPU µs/event | collector RSS MiB start / peak / end | harness CPU (cores) | 429s |
|---|---|---|---|---|---|---|---|---|---|---|
${rows}
`;
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const results: RunResult[] = [];
  for (const sink of o.sinks) {
    for (let i = 0; i < o.runs; i++) {
      process.stderr.write(`bench:sinks: ${sink} via ${o.via}, ${o.events} events, run ${i + 1}/${o.runs}…\n`);
      const r = await run(o, sink);
      process.stderr.write(`  ${r.eventsPerSecond} events/s, ${r.collectorCpuCores} cores, peak RSS ${r.peakRssMiB} MiB\n`);
      results.push(r);
    }
  }
  const date = new Date().toISOString().slice(0, 10);
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  process.stdout.write(JSON.stringify({ date, commit, machine: machineInfo(), options: o, results }, null, 2) + '\n');
  if (o.write) appendFileSync(join(ROOT, 'bench', 'RESULTS.md'), render(o, results, date, commit));
}

if (process.argv.includes('--child')) await child();
else await main();
