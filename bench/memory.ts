/**
 * The memory rows of issue 17, each in fresh processes, beside peers measured in the same run:
 *
 *   npm run bench:memory                       all rows, about 9 minutes
 *   npm run bench:memory -- --only idle,statsd --no-record
 *   npm run bench:memory -- --code /tmp/old    an already compiled tree (another commit) instead of this checkout
 *   npm run bench:memory -- --only logs --breakdown   the `plumb all` row with bench/memory-sampler.ts preloaded:
 *                                              where its memory is at the peak (main heap, buffers, parser threads, mappings)
 *
 * Rows: idle agent (beside Node alone, a bare Node UDP socket, Etsy statsd); agent at a steady
 * 100k statsd lines/s over 1000 series (same peers); 100k distinct series (beside Etsy); agent
 * forwarding 50k spans/s and then through a 60 s collector outage (beside a bare Node HTTP server
 * taking the same load); collector with 500k live series; `plumb all` tailing and parsing a
 * file at full speed. Each figure is VmRSS at the end of the phase and VmHWM (the peak) from
 * /proc/<pid>/status; plumb's own split (V8 heap used / total, external, new space) comes from
 * its /metrics. The load average is recorded next to every row: the machine is shared.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { appendFileSync, closeSync, createWriteStream, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildCode, codeVersion, removeBuild, type CodePaths } from './statsd/build.ts';
import { buildLoadgen } from './statsd/loadgen.ts';
import { measure } from './statsd/measure.ts';
import { machineInfo, processCpuSeconds, processMemory } from './statsd/procfs.ts';
import { SHIPPED_NODE_FLAGS } from './shipped.ts';
import { killAll, track } from './statsd/processes.ts';
import { freePort, Sink, startTarget, TARGET_LABELS, type TargetName } from './statsd/targets.ts';
import { bodies, startLoad } from './span-load.ts';

const BENCH = import.meta.dirname;
const WORK = join(BENCH, '.work', 'memory');
const ROWS = ['idle', 'statsd', 'series', 'spans', 'collector', 'logs'] as const;
type Row = (typeof ROWS)[number];
const MiB = 1048576;

interface Options {
  only: Set<Row>;
  record: boolean;
  code: string | null;
  label: string;
  /** Node flags for plumb's processes only (e.g. --max-semi-space-size=2), instead of the shipped ones (SHIPPED_NODE_FLAGS). */
  flags: string[] | null;
  /** Preload bench/memory-sampler.ts into `plumb all` and report its breakdown at the peak. */
  breakdown: boolean;
}

function options(argv: string[]): Options {
  const o: Options = { only: new Set(ROWS), record: true, code: null, label: '', flags: null, breakdown: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') o.only = new Set(argv[++i].split(',') as Row[]);
    else if (a === '--no-record') o.record = false;
    else if (a === '--code') o.code = resolve(argv[++i]);
    else if (a === '--label') o.label = argv[++i];
    else if (a === '--agent-flags') o.flags = argv[++i].split(' ').filter((f) => f.length > 0);
    else if (a === '--breakdown') o.breakdown = true;
    else if (a === '--help') {
      process.stdout.write('node bench/memory.ts [--only idle,statsd,series,spans,collector,logs] [--code COMPILED_DIR] [--label TEXT] [--agent-flags "NODE FLAGS"] [--breakdown] [--no-record]\n');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

// ---- readings ----

interface Reading {
  who: string;
  rss: number;
  peak: number;
  /** plumb's own split from its /metrics, MiB. */
  split?: string;
  note?: string;
  load: string;
}

const loadavg = (): string => os.loadavg().map((l) => l.toFixed(1)).join(' ');
const mib = (b: number): string => `${Math.round(b / MiB)}`;

function metric(text: string, name: string, labels = ''): number {
  const re = new RegExp(`^${name}${labels ? `\\{[^}]*${labels}[^}]*\\}` : '(?:\\{[^}]*\\})?'} ([0-9.e+-]+)$`, 'gm');
  let total = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) total += Number(m[1]);
  return total;
}

/** heap used / heap total, external, new space: where plumb's RSS goes, read from its own /metrics. */
async function split(metricsUrl: string): Promise<string> {
  try {
    const text = await (await fetch(metricsUrl)).text();
    const m = (n: string, l = ''): string => (metric(text, `plumb_${n}`, l) / MiB).toFixed(0);
    return `heap ${m('nodejs_heap_size_used_bytes')}/${m('nodejs_heap_size_total_bytes')}, new space ${m('nodejs_heap_space_size_total_bytes', 'space="new"')}, external ${m('nodejs_external_memory_bytes')}`;
  } catch {
    return '';
  }
}

function read(who: string, pid: number, extra: Partial<Reading> = {}): Reading {
  const m = processMemory(pid);
  return { who, rss: m.rssBytes, peak: m.peakRssBytes, load: loadavg(), ...extra };
}

// ---- processes ----

function spawnNode(args: string[], name: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  mkdirSync(join(WORK, 'logs'), { recursive: true });
  const out = openSync(join(WORK, 'logs', `${name}.log`), 'a');
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', out, out], env }));
  closeSync(out);
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(t);
}

async function waitOk(url: string, child: ChildProcess, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`${url}: the process exited (see bench/.work/memory/logs)`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

let plumbFlags: string[] | null = null;


function plumbProcess(code: CodePaths, role: string, yaml: string, name: string, samples?: string): ChildProcess {
  const file = join(WORK, `${name}.yaml`);
  writeFileSync(file, yaml);
  const flags = plumbFlags ?? SHIPPED_NODE_FLAGS[role as keyof typeof SHIPPED_NODE_FLAGS] ?? [];
  if (samples === undefined) return spawnNode([...flags, code.agentMain, role, '--config', file], name);
  return spawnNode([...flags, '--import', join(BENCH, 'memory-sampler.ts'), code.agentMain, role, '--config', file], name, { ...process.env, MEMORY_SAMPLES: samples });
}

/** Resident MiB of a process by mapping: the node binary, the main malloc arena ([heap]), other anonymous memory, other files. */
function mappings(pid: number): string {
  const groups = new Map<string, number>();
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) {
      const n = head[1];
      name = n === '' ? 'anonymous' : n === '[heap]' ? 'malloc [heap]' : n.endsWith('/node') ? 'node binary' : n.startsWith('/') ? 'other files' : 'anonymous';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss !== null) groups.set(name, (groups.get(name) ?? 0) + Number(rss[1]) * 1024);
  }
  return [...groups].map(([k, v]) => `${k} ${mib(v)}`).join(', ');
}

interface Sample {
  rss: number;
  main: { used: number; total: number; external: number; arrayBuffers: number };
  workers: { used: number; total: number; external: number }[];
}

/** The sampler's reading with the highest RSS, in words. */
function breakdownAtPeak(samples: string, map: string): string {
  let top: Sample | undefined;
  for (const line of readFileSync(samples, 'utf8').split('\n')) {
    if (line === '') continue;
    const s = JSON.parse(line) as Sample;
    if (top === undefined || s.rss > top.rss) top = s;
  }
  if (top === undefined) return '';
  const threads = top.workers.map((w) => `${w.total} heap + ${w.external} external`).join('; ');
  return `at the peak sample (RSS ${top.rss}): main heap ${top.main.used}/${top.main.total}, main external ${top.main.external} (array buffers ${top.main.arrayBuffers}), parser threads: ${threads}; resident by mapping: ${map}`;
}

// ---- rows ----

const SOCKET_ASK = 4 * MiB;

async function idle(code: CodePaths): Promise<Reading[]> {
  const out: Reading[] = [];
  const alone = spawnNode(['-e', 'setInterval(() => {}, 1000)'], 'node-alone');
  await sleep(5000);
  out.push(read('Node alone', alone.pid!));
  await stop(alone);
  const sink = new Sink();
  await sink.start();
  for (const name of ['plumb', 'etsy', 'bare'] as TargetName[]) {
    const t = await startTarget(name, { receiveBufferBytes: SOCKET_ASK, workDir: WORK, code, nodeFlags: plumbFlags ?? [...SHIPPED_NODE_FLAGS.agent] }, sink.port);
    await sleep(5000);
    out.push(read(TARGET_LABELS[name], t.pid, name === 'plumb' ? { split: await split(await agentMetricsUrl()) } : {}));
    await t.stop();
  }
  await sink.stop();
  return out;
}

async function statsd(code: CodePaths, loadgen: string, rate: number, series: number, names: TargetName[]): Promise<Reading[]> {
  const out: Reading[] = [];
  const sink = new Sink();
  await sink.start();
  for (const name of names) {
    const t = await startTarget(name, { receiveBufferBytes: SOCKET_ASK, workDir: WORK, code, nodeFlags: plumbFlags ?? [...SHIPPED_NODE_FLAGS.agent] }, sink.port);
    // 20 s: two flushes of the 10 s interval
    const m = await measure(loadgen, t, rate, 20, series);
    const metricsUrl = name === 'plumb' ? await agentMetricsUrl() : '';
    out.push({
      who: TARGET_LABELS[name],
      rss: m.rssBytes,
      peak: m.peakRssBytes,
      load: loadavg(),
      note: `${(m.sentRate / 1000).toFixed(0)}k lines/s sent, loss ${(m.loss * 100).toFixed(2)} %, CPU ${(m.targetCpu * 100).toFixed(0)} %`,
      ...(metricsUrl ? { split: await split(metricsUrl) } : {}),
    });
    await t.stop();
  }
  await sink.stop();
  return out;
}

/** The agent started by bench/statsd/targets.ts writes its config here; its HTTP port is in it. */
async function agentMetricsUrl(): Promise<string> {
  const { readFileSync } = await import('node:fs');
  const text = readFileSync(join(WORK, `plumb-agent-${SOCKET_ASK}.yaml`), 'utf8');
  const m = /http: \{ listen: "([^"]+)" \}/.exec(text);
  return m ? `http://${m[1]}/metrics` : '';
}

/** A collector stand-in the spans row can take down and bring back on the same port. */
class Collector {
  server: Server | null = null;
  port = 0;
  async up(): Promise<void> {
    const s = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    });
    s.listen(this.port, '127.0.0.1');
    await once(s, 'listening');
    this.port = (s.address() as AddressInfo).port;
    this.server = s;
  }
  async down(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s === null) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/** `rate` spans/s in requests of 100 spans, on an absolute schedule, from 8 keep-alive clients. */
function spanLoad(url: string, rate: number) {
  return startLoad(url, bodies(64, 100), { contentType: 'application/json', concurrency: 8, itemsPerRequest: 100, ok: 202, rate, otherwise: 'count' });
}

async function spans(code: CodePaths): Promise<Reading[]> {
  const out: Reading[] = [];
  const RATE = 50_000;
  const collector = new Collector();
  await collector.up();
  const [http, receiver] = [await freePort(), await freePort()];
  rmSync(join(WORK, 'spans-agent'), { recursive: true, force: true });
  const agent = plumbProcess(
    code,
    'agent',
    `agent:
  dataDir: ${JSON.stringify(join(WORK, 'spans-agent'))}
  http: { listen: "127.0.0.1:${http}" }
  statsd: { enabled: false }
  host: { enabled: false }
  forward: { collectors: ["http://127.0.0.1:${collector.port}"], retryMax: 2s, healthCheckInterval: 1s }
  traces: { zipkin: { listen: "127.0.0.1:${receiver}" } }
log: { level: warn }
`,
    'spans-agent',
  );
  await waitOk(`http://127.0.0.1:${http}/readyz`, agent);
  const load = spanLoad(`http://127.0.0.1:${receiver}/api/v2/spans`, RATE);
  await sleep(20_000);
  const ok = { accepted: load.accepted, refused: load.refused };
  out.push(read('plumb agent, collector up (20 s)', agent.pid!, { split: await split(`http://127.0.0.1:${http}/metrics`), note: `${Math.round(ok.accepted / 20 / 1000)}k spans/s accepted, ${ok.refused} refused` }));
  await collector.down();
  await sleep(60_000);
  out.push(
    read('plumb agent, 60 s collector outage', agent.pid!, {
      split: await split(`http://127.0.0.1:${http}/metrics`),
      note: `during the outage: ${Math.round((load.accepted - ok.accepted) / 60 / 1000)}k spans/s accepted (spooled), ${Math.round((load.refused - ok.refused) / 60 / 1000)}k/s answered 429`,
    }),
  );
  await collector.up();
  await sleep(10_000);
  await load.stop();
  out.push(read('plumb agent, 10 s after the collector is back', agent.pid!));
  await stop(agent);
  await collector.down();

  // peer: a bare Node HTTP server that reads each body and answers 202
  const port = await freePort();
  const bare = spawnNode(
    [
      '-e',
      `require('node:http').createServer((q, s) => { const c = []; q.on('data', (d) => c.push(d)); q.on('end', () => { Buffer.concat(c); s.writeHead(202).end(); }); }).listen(${port}, '127.0.0.1')`,
    ],
    'bare-http',
  );
  await sleep(1000);
  const peerLoad = spanLoad(`http://127.0.0.1:${port}/api/v2/spans`, RATE);
  await sleep(20_000);
  out.push(read('bare Node HTTP server (reads bodies, answers 202)', bare.pid!, { note: `${Math.round(peerLoad.accepted / 20 / 1000)}k spans/s` }));
  await peerLoad.stop();
  await stop(bare);
  return out;
}

async function collectorSeries(code: CodePaths): Promise<Reading[]> {
  const SERIES = 500_000;
  const PER_BATCH = 50_000;
  const port = await freePort();
  rmSync(join(WORK, 'collector-data'), { recursive: true, force: true });
  const c = plumbProcess(code, 'collector', `collector:\n  listen: "127.0.0.1:${port}"\n  dataDir: ${JSON.stringify(join(WORK, 'collector-data'))}\nlog: { level: warn }\n`, 'collector');
  await waitOk(`http://127.0.0.1:${port}/readyz`, c);
  const idle = read('plumb collector, idle', c.pid!);
  const now = Date.now();
  const cpuStart = processCpuSeconds(c.pid!);
  for (let b = 0; b < SERIES / PER_BATCH; b++) {
    const metrics = [];
    for (let i = 0; i < PER_BATCH; i++) {
      const n = b * PER_BATCH + i;
      // 500 metric names × 1000 hosts: the shape of a fleet, not 500k families of one series
      metrics.push({ type: 'c', name: `bench.requests.m${n % 500}`, tags: [`host:h${Math.floor(n / 500)}`, 'env:bench'], value: 1 });
    }
    const agentId = `bench-${b}`;
    const body = JSON.stringify({ id: `${agentId}:1:0`, agent: agentId, seq: 1, start: now - 10_000, end: now, metrics, events: [], serviceChecks: [] });
    const res = await fetch(`http://127.0.0.1:${port}/v1/metrics`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-plumb-batch-id': `${agentId}:1:0` } });
    if (res.status >= 300) throw new Error(`collector answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  }
  await sleep(3000);
  const cpuIngested = processCpuSeconds(c.pid!);
  const ingested = read('plumb collector, 500k live series (peak: the ingest)', c.pid!, { note: `CPU ${(cpuIngested - cpuStart).toFixed(1)} s for the ten batches` });
  // the scrape's own peak: VmHWM restarts from the RSS of now
  writeFileSync(`/proc/${c.pid!}/clear_refs`, '5');
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const series = text.split('\n').filter((l) => l.startsWith('bench_requests')).length;
  const scraped = read('plumb collector, after one /metrics scrape (peak: the scrape)', c.pid!, { note: `${series} series exposed, ${mib(text.length)} MiB of text, CPU ${(processCpuSeconds(c.pid!) - cpuIngested).toFixed(1)} s` });
  const m = /^plumb_nodejs_heap_size_used_bytes ([0-9.e+]+)/m.exec(text);
  const t = /^plumb_nodejs_heap_size_total_bytes ([0-9.e+]+)/m.exec(text);
  const e = /^plumb_nodejs_external_memory_bytes ([0-9.e+]+)/m.exec(text);
  const n = /^plumb_nodejs_heap_space_size_total_bytes\{space="new"\} ([0-9.e+]+)/m.exec(text);
  if (m && t && e) ingested.split = `heap ${mib(Number(m[1]))}/${mib(Number(t[1]))}, ${n ? `new space ${mib(Number(n[1]))}, ` : ''}external ${mib(Number(e[1]))} (read as the scrape starts)`;
  await stop(c);
  return [idle, ingested, scraped];
}

function accessLine(i: number): string {
  const status = [200, 200, 200, 304, 404, 500][i % 6];
  return `10.0.${(i >> 8) & 255}.${i & 255} - - [24/Nov/2026:10:${String((i >> 6) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')} +0000] "GET /api/orders/${i % 997} HTTP/1.1" ${status} ${(i * 37) % 50_000} "https://shop.example/cart" "Mozilla/5.0 (X11; Linux x86_64) bench/${i % 13}"\n`;
}

async function logs(code: CodePaths, breakdown: boolean): Promise<Reading[]> {
  const LINES = 300_000;
  const dir = join(WORK, 'logs-all');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'access.log');
  const w = createWriteStream(file);
  for (let i = 0; i < LINES; i += 1000) {
    let chunk = '';
    for (let j = i; j < i + 1000; j++) chunk += accessLine(j);
    if (!w.write(chunk)) await once(w, 'drain');
  }
  w.end();
  await once(w, 'finish');
  const [cport, aport] = [await freePort(), await freePort()];
  const p = plumbProcess(
    code,
    'all',
    `agent:
  dataDir: ${JSON.stringify(join(dir, 'agent'))}
  http: { listen: "127.0.0.1:${aport}" }
  statsd: { enabled: false }
  host: { enabled: false }
  traces: { zipkin: { enabled: false } }
  forward: { collectors: ["http://127.0.0.1:${cport}"] }
  logs:
    - path: ${JSON.stringify(file)}
      pattern: "%{COMBINEDAPACHELOG}"
collector:
  listen: "127.0.0.1:${cport}"
  dataDir: ${JSON.stringify(join(dir, 'collector'))}
log: { level: warn }
`,
    'logs-all',
    breakdown ? join(WORK, 'logs-all-samples.jsonl') : undefined,
  );
  await waitOk(`http://127.0.0.1:${cport}/readyz`, p, 60_000);
  const t0 = performance.now();
  const cpu0 = processCpuSeconds(p.pid!);
  let lines = 0;
  let events = 0;
  let maxRss = 0;
  let splitAtPeak = '';
  let mapAtPeak = '';
  while (performance.now() - t0 < 90_000) {
    await sleep(1000);
    const text = await (await fetch(`http://127.0.0.1:${aport}/metrics`)).text();
    lines = metric(text, 'plumb_tail_lines_total');
    events = metric(text, 'plumb_logs_events_total', 'outcome="parsed"') + metric(text, 'plumb_logs_events_total', 'outcome="grok_failure"');
    const rss = processMemory(p.pid!).rssBytes;
    if (rss > maxRss) {
      maxRss = rss;
      splitAtPeak = await split(`http://127.0.0.1:${aport}/metrics`);
      if (breakdown) mapAtPeak = mappings(p.pid!);
    }
    if (lines >= LINES && events >= LINES) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  // CPU of the whole process (agent, parser threads, collector) from ready to the last line parsed
  const cpu = processCpuSeconds(p.pid!) - cpu0;
  const note = `${lines} lines read, ${events} parsed in ${seconds.toFixed(0)} s (${Math.round(events / seconds / 1000)}k lines/s), CPU ${cpu.toFixed(1)} s (${((cpu / Math.max(1, events)) * 1e6).toFixed(1)} µs a line)`;
  const more = breakdown ? `; ${breakdownAtPeak(join(WORK, 'logs-all-samples.jsonl'), mapAtPeak)}` : '';
  const r = read('plumb all (agent tailing + collector, file sink)', p.pid!, { split: splitAtPeak, note: note + more });
  await stop(p);
  rmSync(file, { force: true });
  return [r];
}

// ---- report ----

const TARGETS: Record<Row, { title: string; target: string; plumb: (r: Reading) => boolean }> = {
  idle: { title: 'agent RSS idle (fresh start, no traffic, 5 s)', target: '≤ 65 MB', plumb: (r) => r.who.startsWith('plumb') },
  statsd: { title: 'agent RSS, steady 100k statsd lines/s, 1000 series (20 s)', target: '≤ 90 MB', plumb: (r) => r.who.startsWith('plumb') },
  series: { title: 'agent RSS, 100k distinct series (200k lines/s, 20 s, over UDP)', target: '≤ 200 MB', plumb: (r) => r.who.startsWith('plumb') },
  spans: { title: 'agent RSS forwarding 50k spans/s; during a 60 s collector outage', target: '≤ 200 MiB in both', plumb: (r) => r.who.startsWith('plumb') },
  collector: { title: 'collector RSS with 500k live series', target: '≤ 500 MB', plumb: (r) => r.who.startsWith('plumb') },
  logs: { title: 'peak RSS tailing + parsing at full speed (`plumb all`, 300k combined-log lines, at most 90 s)', target: '≤ 200 MiB', plumb: () => true },
};

function render(results: Map<Row, Reading[]>, o: Options, code: CodePaths, started: Date, minutes: number): string {
  const m = machineInfo();
  const v = codeVersion();
  const lines = [
    `## bench:memory — ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC (${minutes.toFixed(1)} min)${o.label ? ` — ${o.label}` : ''}`,
    '',
    `Machine: ${m.cpus} × ${m.cpuModel}, Linux ${m.kernel}, ${Math.round(m.memTotalBytes / MiB)} MB RAM, Node ${m.node}; shared with other work (load average 1/5/15 min next to each figure). ` +
      `Code: ${o.code ? `compiled tree ${o.code}` : `this checkout at ${v.commit}${v.dirty.length > 0 ? ' (with uncommitted changes)' : ''}, compiled to JavaScript as shipped`}${code.compiled ? '' : ' (from source)'}${o.flags !== null ? `; plumb's processes run with \`${o.flags.join(' ')}\` instead of their shipped flags` : ''}.`,
    '',
    'Method: `npm run bench:memory` (bench/memory.ts). Each contender is a fresh process; plumb\'s run with the Node flags they ship with (agent `--max-semi-space-size=2` as its units and manifests, collector and `plumb all` `8` as theirs, `npm start` and the image) unless `--agent-flags` replaces them; RSS is VmRSS at the end of the phase and peak is VmHWM, both from /proc/<pid>/status. The split is plumb\'s own /metrics at that moment (V8 heap used/total, the young generation, external), MiB. statsd load: the C generator (bench/loadgen.c), 4 MiB receive buffer, stand-in collector answering 200. Spans: 100-span Zipkin v2 JSON requests from 8 keep-alive clients on an absolute schedule to the agent, forwarding to a stand-in collector in the harness that is closed for 60 s and then reopened on the same port. Collector: 10 agents × 50k counter series (500 names × 1000 host tags) POSTed to /v1/metrics, then one /metrics scrape.',
    '',
    '| row | process | RSS MiB | peak (VmHWM) MiB | split (MiB) | load avg | notes | target |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const [row, readings] of results) {
    for (const r of readings) {
      const t = TARGETS[row];
      lines.push(`| ${t.title} | ${r.who} | ${mib(r.rss)} | ${mib(r.peak)} | ${r.split ?? ''} | ${r.load} | ${r.note ?? ''} | ${t.plumb(r) ? t.target : ''} |`);
    }
  }
  return lines.join('\n') + '\n';
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  plumbFlags = o.flags;
  const started = new Date();
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const code: CodePaths = o.code
    ? (() => {
        const c = buildCode(log); // the harness helpers (bare sink, Etsy plug-ins) from this checkout
        return { ...c, agentMain: join(o.code!, 'cli', 'main.js') };
      })()
    : buildCode(log);
  const loadgen = buildLoadgen(join(BENCH, '.work'));
  const results = new Map<Row, Reading[]>();
  const run = async (row: Row, f: () => Promise<Reading[]>): Promise<void> => {
    if (!o.only.has(row)) return;
    log(`${row}…`);
    const r = await f();
    for (const x of r) log(`  ${x.who}: RSS ${mib(x.rss)} MiB, peak ${mib(x.peak)} MiB ${x.split ?? ''} ${x.note ?? ''} (load ${x.load})`);
    results.set(row, r);
  };
  try {
    await run('idle', () => idle(code));
    await run('statsd', () => statsd(code, loadgen, 100_000, 1000, ['plumb', 'etsy', 'bare']));
    await run('series', () => statsd(code, loadgen, 200_000, 100_000, ['plumb', 'etsy']));
    await run('spans', () => spans(code));
    await run('collector', () => collectorSeries(code));
    await run('logs', () => logs(code, o.breakdown));
  } finally {
    killAll();
    removeBuild();
  }
  const text = render(results, o, code, started, (Date.now() - started.getTime()) / 60_000);
  process.stdout.write(text);
  if (o.record) appendFileSync(join(BENCH, 'RESULTS.md'), `\n${text}`);
}

await main();
