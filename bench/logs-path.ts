/**
 * `npm run bench:logs-path`: the real log path on this machine — a `plumb agent` process tails a
 * generated ~200 MiB combined-format access log (1 070 000 lines) from the start, parses it with
 * %{COMBINEDAPACHELOG} and forwards it (gzip, as configured by default) to a `plumb collector`
 * process, whose file sink writes it to hourly NDJSON files (disk queue fsync per batch, file
 * fsync per write: the defaults). Both run from source, as `npm run plumb` runs them.
 *
 * Measured window: from the first event the file sink wrote to the last; lines/s and CPU per line
 * (agent + collector, /proc/<pid>/stat) over that window. Peers in the same run, same file:
 * - raw regex ceiling: the compiled %{COMBINEDAPACHELOG} alone, `exec` over 200 000 lines in memory;
 * - bare Node read + split: `fs.readSync` in 1 MiB chunks, newline search, one string per line
 *   (what any Node tailer pays before parsing).
 * Afterwards the written files are checked: event count, and the sum and hash of every event's
 * `log.offset` must equal the file's (a lost or doubled line fails the run).
 *
 * Options: --lines N, --runs N (default 1), --profile (CPU profiles of both processes into
 * bench/.work/prof-*), --write (append a section to bench/RESULTS.md).
 */
import { appendFileSync, closeSync, mkdirSync, openSync, readdirSync, readSync, rmSync, statSync, readFileSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { compileGrok } from '../agent/logs/grok/index.ts';
import { generateAccessLog, mix, sampleLines, type FileFacts } from './access-log.ts';
import { freePort, waitForOk, stopChild } from './span-load.ts';
import { SHIPPED_NODE_FLAGS } from './shipped.ts';
import { processCpuSeconds, processMemory, machineInfo, cpuPressureMicros, threadCpuSeconds } from './statsd/procfs.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(ROOT, 'bench', '.work');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const CLI = join(ROOT, 'cli', 'main.ts');
const PATTERN = '%{COMBINEDAPACHELOG}';
/** As an operator would configure it: the event's time from the line. */
const TIMESTAMP = { field: 'timestamp', format: 'dd/MMM/yyyy:HH:mm:ss Z' };

interface Options {
  lines: number;
  runs: number;
  profile: boolean;
  write: boolean;
  threads: number;
}

function options(): Options {
  const a = process.argv.slice(2);
  const num = (name: string, dflt: number): number => {
    const i = a.indexOf(name);
    return i >= 0 ? Number(a[i + 1]) : dflt;
  };
  return { lines: num('--lines', 1_070_000), runs: num('--runs', 1), threads: num('--threads', 1), profile: a.includes('--profile'), write: a.includes('--write') };
}

/** CPU seconds of this thread's work, from process.cpuUsage (this process runs nothing else meanwhile). */
function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function rawRegex(lines: readonly string[]): { linesPerSecond: number; cpuMicrosPerLine: number } {
  const re = compileGrok({ patterns: PATTERN }).regexes[0];
  let best = { linesPerSecond: 0, cpuMicrosPerLine: 0 };
  for (let r = 0; r < 3; r++) {
    const c = cpuNow();
    const t = performance.now();
    let matched = 0;
    for (let i = 0; i < lines.length; i++) if (re.exec(lines[i]) !== null) matched++;
    const s = (performance.now() - t) / 1000;
    if (matched !== lines.length) throw new Error(`the pattern matched ${matched} of ${lines.length} lines`);
    const rate = lines.length / s;
    if (rate > best.linesPerSecond) best = { linesPerSecond: rate, cpuMicrosPerLine: ((cpuNow() - c) * 1e6) / lines.length };
  }
  return best;
}

/** Read + split + one string per line over the whole file, as a bare Node program would. */
function readSplit(facts: FileFacts): { linesPerSecond: number; cpuMicrosPerLine: number } {
  const buf = Buffer.allocUnsafe(1 << 20);
  let best = { linesPerSecond: 0, cpuMicrosPerLine: 0 };
  for (let r = 0; r < 2; r++) {
    const fd = openSync(facts.path, 'r');
    const c = cpuNow();
    const t = performance.now();
    let lines = 0;
    let chars = 0;
    let carry = '';
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      let pos = 0;
      for (let nl = buf.indexOf(0x0a, pos); nl !== -1 && nl < n; nl = buf.indexOf(0x0a, pos)) {
        const line = carry === '' ? buf.toString('utf8', pos, nl) : carry + buf.toString('utf8', pos, nl);
        carry = '';
        chars += line.length;
        lines++;
        pos = nl + 1;
      }
      if (pos < n) carry = buf.toString('utf8', pos, n);
    }
    closeSync(fd);
    const s = (performance.now() - t) / 1000;
    if (lines !== facts.lines || chars === 0) throw new Error(`read ${lines} lines of ${facts.lines}`);
    const rate = lines / s;
    if (rate > best.linesPerSecond) best = { linesPerSecond: rate, cpuMicrosPerLine: ((cpuNow() - c) * 1e6) / lines };
  }
  return best;
}

function spawnPlumb(role: 'agent' | 'collector', env: Record<string, string>, profileDir: string | null): ChildProcess {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PLUMB_')) clean[k] = v;
  const flags = [...SHIPPED_NODE_FLAGS[role], ...(profileDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`])];
  return spawn(NODE, [...flags, CLI, role], { cwd: ROOT, env: { ...clean, PLUMB_LOG__LEVEL: 'warn', ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
}

async function delivered(metricsUrl: string): Promise<number> {
  try {
    const text = await (await fetch(metricsUrl)).text();
    const m = /^plumb_sink_events_total\{sink="file",outcome="delivered"\} (\d+)/m.exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

interface PathRun {
  seconds: number;
  linesPerSecond: number;
  mibPerSecond: number;
  agentCpuMicrosPerLine: number;
  collectorCpuMicrosPerLine: number;
  cpuMicrosPerLine: number;
  /** The agent's CPU µs a line by thread over the window: main, parser threads, V8's helpers (GC, compiler), libuv's pool (gzip). */
  agentThreads: { main: number; parsers: number; v8: number; libuv: number };
  agentPeakRssMiB: number;
  collectorPeakRssMiB: number;
  written: number;
  offsetsMatch: boolean;
  pressure: number | null;
}

async function realPath(facts: FileFacts, o: Options, run: number): Promise<PathRun> {
  const dir = join(WORK, `path-${run}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const profileDir = o.profile ? join(WORK, `prof-${run}`) : null;
  if (profileDir !== null) rmSync(profileDir, { recursive: true, force: true });
  const port = await freePort();
  const collector = spawnPlumb('collector', { PLUMB_COLLECTOR__LISTEN: `127.0.0.1:${port}`, PLUMB_COLLECTOR__DATA_DIR: join(dir, 'collector') }, profileDir === null ? null : join(profileDir, 'collector'));
  const agent: { child: ChildProcess | null } = { child: null };
  try {
    await waitForOk(`http://127.0.0.1:${port}/healthz`, 60_000);
    const metricsUrl = `http://127.0.0.1:${port}/metrics`;
    agent.child = spawnPlumb('agent', {
      PLUMB_AGENT__DATA_DIR: join(dir, 'agent'),
      PLUMB_AGENT__HTTP__LISTEN: '127.0.0.1:0',
      PLUMB_AGENT__STATSD__ENABLED: 'false',
      PLUMB_AGENT__HOST__ENABLED: 'false',
      PLUMB_AGENT__TRACES__ZIPKIN__ENABLED: 'false',
      PLUMB_AGENT__FORWARD__COLLECTORS: `["http://127.0.0.1:${port}"]`,
      PLUMB_AGENT__GROK__WORKERS: String(o.threads),
      PLUMB_AGENT__LOGS: JSON.stringify([{ path: facts.path, pattern: PATTERN, timestamp: TIMESTAMP }]),
    }, profileDir === null ? null : join(profileDir, 'agent'));
    const apid = agent.child.pid as number;
    const cpid = collector.pid as number;
    let peakA = 0;
    let peakC = 0;
    let start: { t: number; n: number; cpuA: number; cpuC: number; threadsA: Record<string, number> } | null = null;
    const p0 = cpuPressureMicros();
    const deadline = performance.now() + 900_000;
    let n = 0;
    for (;;) {
      if (agent.child.exitCode !== null || collector.exitCode !== null) throw new Error('a plumb process exited during the run');
      peakA = Math.max(peakA, processMemory(apid).rssBytes);
      peakC = Math.max(peakC, processMemory(cpid).rssBytes);
      n = await delivered(metricsUrl);
      if (start === null && n > 0) start = { t: performance.now(), n, cpuA: processCpuSeconds(apid), cpuC: processCpuSeconds(cpid), threadsA: threadCpuSeconds(apid) };
      if (n >= facts.lines) break;
      if (performance.now() > deadline) throw new Error(`timed out with ${n} of ${facts.lines} events written`);
      // a scrape of /metrics costs the collector ~3 ms: four a second stay under 1 % of its time
      await sleep(250);
    }
    const t1 = performance.now();
    const cpuA = processCpuSeconds(apid);
    const cpuC = processCpuSeconds(cpid);
    const threadsA = threadCpuSeconds(apid);
    const p1 = cpuPressureMicros();
    const s = start as NonNullable<typeof start>;
    const lines = n - s.n;
    const seconds = (t1 - s.t) / 1000;
    await stopChild(agent.child);
    await stopChild(collector);
    const check = checkWritten(join(dir, 'collector', 'logs'));
    return {
      seconds: round(seconds, 2),
      linesPerSecond: Math.round(lines / seconds),
      mibPerSecond: round(((lines / facts.lines) * facts.bytes) / 2 ** 20 / seconds, 1),
      agentCpuMicrosPerLine: round(((cpuA - s.cpuA) * 1e6) / lines, 1),
      collectorCpuMicrosPerLine: round(((cpuC - s.cpuC) * 1e6) / lines, 1),
      cpuMicrosPerLine: round(((cpuA - s.cpuA + cpuC - s.cpuC) * 1e6) / lines, 1),
      agentThreads: Object.fromEntries(
        Object.entries({ main: 'MainThread', parsers: 'WorkerThread', v8: 'V8Worker', libuv: 'libuv-worker' }).map(([k, name]) => [k, round((((threadsA[name] ?? 0) - (s.threadsA[name] ?? 0)) * 1e6) / lines, 1)]),
      ) as PathRun['agentThreads'],
      agentPeakRssMiB: Math.round(peakA / 2 ** 20),
      collectorPeakRssMiB: Math.round(peakC / 2 ** 20),
      written: check.events,
      offsetsMatch: check.events === facts.lines && check.offsetSum === facts.offsetSum && check.offsetHash === facts.offsetHash,
      pressure: p0 === null || p1 === null ? null : round((p1 - p0) / 1e6 / seconds, 2),
    };
  } finally {
    if (agent.child !== null) await stopChild(agent.child);
    await stopChild(collector);
    rmSync(dir, { recursive: true, force: true });
  }
}

const OFFSET_KEY = Buffer.from('"offset":');

function checkWritten(dir: string): { events: number; offsetSum: number; offsetHash: number } {
  let events = 0;
  let offsetSum = 0;
  let offsetHash = 0;
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        const body = readFileSync(p);
        for (let at = body.indexOf(OFFSET_KEY); at !== -1; at = body.indexOf(OFFSET_KEY, at + 1)) {
          let v = 0;
          let q = at + OFFSET_KEY.length;
          while (body[q] >= 0x30 && body[q] <= 0x39) v = v * 10 + (body[q++] - 0x30);
          events++;
          offsetSum += v;
          offsetHash ^= mix(v);
        }
      }
    }
  };
  walk(dir);
  return { events, offsetSum, offsetHash };
}

function round(n: number, digits: number): number {
  return Number(n.toFixed(digits));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  const o = options();
  const facts = await generateAccessLog(WORK, o.lines);
  const sample = await sampleLines(facts.path, 200_000);
  const load = os.loadavg();
  const runs: { raw: ReturnType<typeof rawRegex>; split: ReturnType<typeof readSplit>; path: PathRun }[] = [];
  for (let r = 0; r < o.runs; r++) {
    const raw = rawRegex(sample);
    const split = readSplit(facts);
    const path = await realPath(facts, o, r);
    runs.push({ raw, split, path });
    process.stderr.write(`run ${r + 1}: ${JSON.stringify({ raw, split, path })}\n`);
  }
  const result = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    machine: machineInfo(),
    loadAverage: load.map((x) => round(x, 2)),
    file: { lines: facts.lines, mib: round(facts.bytes / 2 ** 20, 1), avgLineBytes: Math.round(facts.bytes / facts.lines) },
    threads: o.threads,
    runs,
    median: {
      linesPerSecond: median(runs.map((r) => r.path.linesPerSecond)),
      cpuMicrosPerLine: median(runs.map((r) => r.path.cpuMicrosPerLine)),
      toRawRegex: round(median(runs.map((r) => r.path.linesPerSecond / r.raw.linesPerSecond)), 3),
      toReadSplit: round(median(runs.map((r) => r.path.linesPerSecond / r.split.linesPerSecond)), 3),
    },
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  if (o.write) appendFileSync(join(ROOT, 'bench', 'RESULTS.md'), render(result));
  if (runs.some((r) => !r.path.offsetsMatch)) process.exitCode = 1;
}

function render(r: { date: string; machine: unknown; loadAverage: number[]; file: { lines: number; mib: number; avgLineBytes: number }; threads: number; runs: { raw: { linesPerSecond: number; cpuMicrosPerLine: number }; split: { linesPerSecond: number; cpuMicrosPerLine: number }; path: PathRun }[] }): string {
  const f = (n: number): string => Math.round(n).toLocaleString('en-US');
  const rows = r.runs
    .map((x, i) => `| ${i + 1} | ${f(x.path.linesPerSecond)} | ${x.path.mibPerSecond} | ${x.path.cpuMicrosPerLine} (${x.path.agentCpuMicrosPerLine} + ${x.path.collectorCpuMicrosPerLine}) | ${x.path.agentThreads.main} / ${x.path.agentThreads.parsers} / ${x.path.agentThreads.v8} / ${x.path.agentThreads.libuv} | ${x.path.agentPeakRssMiB} / ${x.path.collectorPeakRssMiB} | ${f(x.raw.linesPerSecond)} (${round(x.raw.cpuMicrosPerLine, 2)} µs) | ${f(x.split.linesPerSecond)} (${round(x.split.cpuMicrosPerLine, 2)} µs) | ${round(x.path.linesPerSecond / x.raw.linesPerSecond, 3)} / ${round(x.path.linesPerSecond / x.split.linesPerSecond, 3)} | ${x.path.pressure ?? '–'} | ${x.path.offsetsMatch ? `yes (${f(x.path.written)})` : 'NO'} |`)
    .join('\n');
  return `
## Real log path: \`plumb agent\` → \`plumb collector\` → file sink (\`bench/logs-path.ts\`) — ${r.date}

**Machine** ${JSON.stringify(r.machine)}; load average at the start ${r.loadAverage.join(' / ')} (shared machine).

**Method** \`npm run bench:logs-path -- --write\`: ${f(r.file.lines)} generated combined-format lines (${r.file.mib} MiB, ${r.file.avgLineBytes} B/line) tailed from the start by a \`plumb agent\` (${r.threads} parser thread${r.threads === 1 ? '' : 's'}, \`%{COMBINEDAPACHELOG}\` with its \`timestamp\` as the event's date, gzip forwarding; Node flags as shipped: agent \`--max-semi-space-size=2\`, collector \`8\`) into a \`plumb collector\` whose file sink writes hourly NDJSON files (defaults: disk queue fsync per batch, file fsync per write, pattern mining on). Window: first event written by the file sink → last. CPU: agent + collector from /proc/<pid>/stat over the window. Peers, same run and file: the raw regex alone over 200 000 lines in memory; a bare Node read + split (1 MiB reads, one string per line). Written files checked afterwards (count, sum and hash of every \`log.offset\`).

| run | lines/s | MiB/s | CPU µs/line (agent + collector) | agent µs/line: main / parser threads / V8 helpers / libuv (gzip) | peak RSS MiB agent / collector | raw regex lines/s (CPU/line) | bare read+split lines/s (CPU/line) | path ÷ regex / ÷ read+split | CPU pressure | every line once |
|---|---|---|---|---|---|---|---|---|---|---|
${rows}
`;
}

await main();
