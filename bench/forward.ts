/**
 * `npm run bench:forward [-- --quick] [options]`: the agent's delivery path (agent/forward/).
 * 1. Throughput with the disk spool off and on (fsync batch, interval, never), side by side in
 *    the same run: a compiled `plumb agent` fed spans flat out, forwarding to a stand-in
 *    collector; variants alternate across rounds, medians and ratios to spool-off are reported.
 * 2. Recovery: the agent under a steady span and statsd load forwarding to a real `plumb
 *    collector`, the collector unreachable for --outage seconds, then back; backlog at the peak,
 *    time until it is gone, drain rate against the steady rate, and an exact count of what
 *    arrived. See bench/README.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { buildCode, codeVersion, removeBuild } from './statsd/build.ts';
import { cpuPressureMicros, machineBusySeconds, machineInfo, processCpuSeconds, processMemory } from './statsd/procfs.ts';
import { freeTcpPorts, freeUdpPort } from '../test/helpers/ports.ts';
import { parseExposition, samplesOf, type Exposition } from '../test/helpers/prometheus.ts';
import { COUNTER_EXPOSED, SpanLoad, StatsdLoad } from './forward/load.ts';
import { startStandInCollector, startZipkinCounter, type StandInCounts } from './forward/standin.ts';
import { OutageProxy } from './forward/proxy.ts';

const BENCH = import.meta.dirname;
const ROOT = resolve(BENCH, '..');
const WORK = join(BENCH, '.work', 'forward');
const NODE = process.execPath;

const USAGE = `Usage: npm run bench:forward -- [options]

  --quick               smoke run (~1 min): 1 round × 1+2 s per variant, a 5 s outage; not recorded
  --only LIST           throughput,recovery (default both)
  --variants LIST       spool variants for throughput: off,batch,interval,never (default all)
  --rounds N            throughput rounds, each runs every variant once, order rotated (default 3)
  --seconds N           measured window per throughput run (default 10)
  --warmup N            seconds before the window (default 3)
  --concurrency N       span clients in the throughput runs (default 8)
  --batch-spans N       agent.traces.batch.maxBatchSpans (default 1000, the agent's default)
  --outage N            seconds the collector is unreachable in the recovery run (default 60)
  --span-rate N         spans/s of the steady load in the recovery run (default 20000)
  --statsd-rate N       statsd lines/s of the steady load in the recovery run (default 20000)
  --series N            distinct statsd counter series (default 10000)
  --flush-interval D    agent.statsd.flushInterval in the recovery run (default 1s)
  --from-source         run plumb's .ts files instead of compiling them first
  --record / --no-record  append to bench/RESULTS.md (default: full runs yes, quick runs no)
  --help                this text
`;

type Variant = 'off' | 'batch' | 'interval' | 'never';
const VARIANTS: readonly Variant[] = ['off', 'batch', 'interval', 'never'];

interface Options {
  quick: boolean;
  sections: Set<string>;
  variants: Variant[];
  rounds: number;
  seconds: number;
  warmup: number;
  concurrency: number;
  spansPerRequest: number;
  batchSpans: number;
  outage: number;
  spanRate: number;
  statsdRate: number;
  series: number;
  flushInterval: string;
  steadySeconds: number;
  fromSource: boolean;
  record: boolean | null;
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    quick: false,
    sections: new Set(['throughput', 'recovery']),
    variants: [...VARIANTS],
    rounds: 3,
    seconds: 10,
    warmup: 3,
    concurrency: 8,
    spansPerRequest: 100,
    batchSpans: 1000,
    outage: 60,
    spanRate: 20_000,
    statsdRate: 20_000,
    series: 10_000,
    flushInterval: '1s',
    steadySeconds: 10,
    fromSource: false,
    record: null,
  };
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    given.add(a);
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (): number => {
      const n = Number(value());
      if (!Number.isFinite(n) || n < 0) throw new Error(`${a} needs a number ≥ 0`);
      return n;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--only') o.sections = new Set(value().split(','));
    else if (a === '--variants') o.variants = value().split(',') as Variant[];
    else if (a === '--rounds') o.rounds = num();
    else if (a === '--seconds') o.seconds = num();
    else if (a === '--warmup') o.warmup = num();
    else if (a === '--concurrency') o.concurrency = num();
    else if (a === '--batch-spans') o.batchSpans = num();
    else if (a === '--outage') o.outage = num();
    else if (a === '--span-rate') o.spanRate = num();
    else if (a === '--statsd-rate') o.statsdRate = num();
    else if (a === '--series') o.series = num();
    else if (a === '--flush-interval') o.flushInterval = value();
    else if (a === '--from-source') o.fromSource = true;
    else if (a === '--record') o.record = true;
    else if (a === '--no-record') o.record = false;
    else if (a === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  for (const v of o.variants) if (!VARIANTS.includes(v)) throw new Error(`--variants: one of ${VARIANTS.join(', ')}, not ${v}`);
  for (const s of o.sections) if (s !== 'throughput' && s !== 'recovery') throw new Error(`--only: throughput or recovery, not ${s}`);
  if (o.quick) {
    if (!given.has('--rounds')) o.rounds = 1;
    if (!given.has('--seconds')) o.seconds = 2;
    if (!given.has('--warmup')) o.warmup = 1;
    if (!given.has('--outage')) o.outage = 5;
    o.steadySeconds = 2;
  }
  return o;
}

function log(line: string): void {
  process.stderr.write(`bench:forward: ${line}\n`);
}

// ---- plumb processes ----

interface Role {
  child: ChildProcess;
  pid: number;
  logFile: string;
}

function startRole(main: string, role: 'agent' | 'collector', name: string, config: unknown): Role {
  const file = join(WORK, `${name}.yaml`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  const logFile = join(WORK, `${name}.log`);
  const out = openSync(logFile, 'w');
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PLUMB_')) env[k] = v;
  const child = spawn(NODE, [main, role, '--config', file], { cwd: WORK, env, stdio: ['ignore', out, out] });
  closeSync(out);
  return { child, pid: child.pid!, logFile };
}

async function stopRole(r: Role): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  const exited = once(r.child, 'exit');
  r.child.kill('SIGTERM');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

async function waitOk(url: string, role: Role, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (role.child.exitCode !== null) throw new Error(`${url}: the process exited (${role.child.exitCode}); see ${role.logFile}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms; see ${role.logFile}`);
    await sleep(50);
  }
}

async function scrape(base: string): Promise<Exposition> {
  const res = await fetch(`${base}/metrics`);
  return parseExposition(await res.text());
}

function sum(e: Exposition, name: string, match: (labels: Record<string, string>) => boolean = () => true): number {
  return samplesOf(e, name)
    .filter((s) => match(s.labels))
    .reduce((n, s) => n + s.value, 0);
}

interface AgentSetup {
  dataDir: string;
  http: number;
  zipkin: number;
  collector: string;
  spool: Variant;
  batchSpans: number;
  statsd?: { port: number; flushInterval: string };
}

/** The agent's config: defaults except ports, the spool variant, and statsd / host metrics as asked. */
function agentConfig(s: AgentSetup): unknown {
  return {
    agent: {
      dataDir: s.dataDir,
      http: { listen: `127.0.0.1:${s.http}` },
      statsd: s.statsd ? { listen: `127.0.0.1:${s.statsd.port}`, flushInterval: s.statsd.flushInterval } : { enabled: false },
      host: { enabled: false },
      traces: { zipkin: { listen: `127.0.0.1:${s.zipkin}` }, batch: { maxBatchSpans: s.batchSpans } },
      forward: { collectors: [s.collector], spool: s.spool === 'off' ? { enabled: false } : { enabled: true, fsync: s.spool } },
    },
    log: { level: 'warn' },
  };
}

/** CPU of the machine, of this process and PSI at one instant, to open and close a window. */
interface Clock {
  t: number;
  machineBusy: number;
  harnessCpu: number;
  pressure: number | null;
}

function clock(): Clock {
  const c = process.cpuUsage();
  return { t: performance.now(), machineBusy: machineBusySeconds(), harnessCpu: (c.user + c.system) / 1e6, pressure: cpuPressureMicros() };
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 === 1 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

// ---- 1. throughput ----

interface ThroughputRun {
  variant: Variant;
  round: number;
  seconds: number;
  batchesPerSecond: number;
  mbPerSecond: number;
  spansPerSecond: number;
  bytesPerBatch: number;
  agentCpuCores: number;
  agentCpuMicrosPerSpan: number;
  peakRssMiB: number;
  /** Mean POST latency the agent measured (plumb_forward_request_seconds), ms. */
  meanRequestMs: number;
  refused429PerSecond: number;
  harnessCpuCores: number;
  /** CPU used by other processes on the machine during the window. */
  otherCpuCores: number;
  /** Share of the window during which some task waited for a CPU (PSI). */
  cpuPressure: number | null;
  accepted: number;
  delivered: number;
  lost: number;
  duplicates: number;
}

async function throughputRun(o: Options, main: string, variant: Variant, roundNo: number): Promise<ThroughputRun> {
  const standIn = await startStandInCollector();
  const [http, zipkin] = await freeTcpPorts(2);
  const dataDir = join(WORK, `agent-${variant}`);
  rmSync(dataDir, { recursive: true, force: true });
  const agent = startRole(main, 'agent', `agent-${variant}`, agentConfig({ dataDir, http, zipkin, collector: standIn.url, spool: variant, batchSpans: o.batchSpans }));
  const agentUrl = `http://127.0.0.1:${http}`;
  let load: SpanLoad | null = null;
  try {
    await waitOk(`${agentUrl}/readyz`, agent);
    load = new SpanLoad({ url: `http://127.0.0.1:${zipkin}/api/v2/spans`, concurrency: o.concurrency, spansPerRequest: o.spansPerRequest, rate: 0, maxBacklogRequests: 0 });
    await sleep(o.warmup * 1000);
    const open = async () => ({ counts: { ...standIn.counts } as StandInCounts, clock: clock(), cpu: processCpuSeconds(agent.pid), refused: load!.refusedRequests, metrics: await scrape(agentUrl) });
    const a = await open();
    await sleep(o.seconds * 1000);
    const b = await open();
    load.check();
    const peakRssMiB = processMemory(agent.pid).peakRssBytes / 2 ** 20;
    await load.stop();
    const drainDeadline = Date.now() + 30_000;
    while (standIn.counts.spans < load.acceptedSpans && Date.now() < drainDeadline) await sleep(20);

    const seconds = (b.clock.t - a.clock.t) / 1000;
    const batches = b.counts.batches - a.counts.batches;
    const bytes = b.counts.bodyBytes - a.counts.bodyBytes;
    const spans = b.counts.spans - a.counts.spans;
    const cpu = b.cpu - a.cpu;
    const harnessCpu = b.clock.harnessCpu - a.clock.harnessCpu;
    const busy = b.clock.machineBusy - a.clock.machineBusy;
    const latencySum = sum(b.metrics, 'plumb_forward_request_seconds_sum', (l) => l.kind === 'traces') - sum(a.metrics, 'plumb_forward_request_seconds_sum', (l) => l.kind === 'traces');
    const latencyCount = sum(b.metrics, 'plumb_forward_request_seconds_count', (l) => l.kind === 'traces') - sum(a.metrics, 'plumb_forward_request_seconds_count', (l) => l.kind === 'traces');
    const pressure = a.clock.pressure !== null && b.clock.pressure !== null ? (b.clock.pressure - a.clock.pressure) / 1e6 / seconds : null;
    return {
      variant,
      round: roundNo,
      seconds: round(seconds),
      batchesPerSecond: round(batches / seconds, 1),
      mbPerSecond: round(bytes / seconds / 1e6, 2),
      spansPerSecond: Math.round(spans / seconds),
      bytesPerBatch: Math.round(bytes / Math.max(1, batches)),
      agentCpuCores: round(cpu / seconds),
      agentCpuMicrosPerSpan: round((cpu / Math.max(1, spans)) * 1e6),
      peakRssMiB: Math.round(peakRssMiB),
      meanRequestMs: round((latencySum / Math.max(1, latencyCount)) * 1000),
      refused429PerSecond: round((b.refused - a.refused) / seconds, 1),
      harnessCpuCores: round(harnessCpu / seconds),
      otherCpuCores: round((busy - cpu - harnessCpu) / seconds),
      cpuPressure: pressure === null ? null : round(pressure, 3),
      accepted: load.acceptedSpans,
      delivered: standIn.counts.spans,
      lost: load.acceptedSpans - standIn.counts.spans,
      duplicates: standIn.counts.duplicates,
    };
  } finally {
    await load?.stop().catch(() => undefined);
    await stopRole(agent);
    await standIn.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

interface VariantSummary {
  variant: Variant;
  runs: number;
  batchesPerSecond: number;
  mbPerSecond: number;
  spansPerSecond: number;
  agentCpuCores: number;
  agentCpuMicrosPerSpan: number;
  peakRssMiB: number;
  meanRequestMs: number;
  /** Median over rounds of this variant's spans/s ÷ spool-off's spans/s in the same round. */
  ratioToOff: number | null;
  cpuPressure: number | null;
  lost: number;
}

function summarize(runs: ThroughputRun[], variants: Variant[]): VariantSummary[] {
  return variants.map((variant) => {
    const mine = runs.filter((r) => r.variant === variant);
    const ratios = mine
      .map((r) => {
        const off = runs.find((x) => x.variant === 'off' && x.round === r.round);
        return off ? r.spansPerSecond / off.spansPerSecond : NaN;
      })
      .filter((x) => Number.isFinite(x));
    const m = (k: keyof ThroughputRun): number => median(mine.map((r) => r[k] as number));
    const pressures = mine.map((r) => r.cpuPressure).filter((p): p is number => p !== null);
    return {
      variant,
      runs: mine.length,
      batchesPerSecond: round(m('batchesPerSecond'), 1),
      mbPerSecond: round(m('mbPerSecond')),
      spansPerSecond: Math.round(m('spansPerSecond')),
      agentCpuCores: round(m('agentCpuCores')),
      agentCpuMicrosPerSpan: round(m('agentCpuMicrosPerSpan')),
      peakRssMiB: Math.max(...mine.map((r) => r.peakRssMiB)),
      meanRequestMs: round(m('meanRequestMs')),
      ratioToOff: ratios.length > 0 ? round(median(ratios), 3) : null,
      cpuPressure: pressures.length > 0 ? round(median(pressures), 3) : null,
      lost: mine.reduce((n, r) => n + r.lost, 0),
    };
  });
}

async function throughput(o: Options, main: string): Promise<{ runs: ThroughputRun[]; summary: VariantSummary[] }> {
  const runs: ThroughputRun[] = [];
  for (let r = 0; r < o.rounds; r++) {
    // Rotating the order each round spreads drifts in the machine's load over the variants.
    const order = o.variants.map((_, i) => o.variants[(i + r) % o.variants.length]);
    for (const variant of order) {
      const run = await throughputRun(o, main, variant, r + 1);
      log(`round ${r + 1}/${o.rounds} spool ${variant}: ${run.spansPerSecond} spans/s, ${run.batchesPerSecond} batches/s, ${run.mbPerSecond} MB/s, agent ${run.agentCpuCores} cores, peak RSS ${run.peakRssMiB} MiB, PSI ${run.cpuPressure}, lost ${run.lost}`);
      runs.push(run);
    }
  }
  return { runs, summary: summarize(runs, o.variants) };
}

// ---- 2. recovery ----

interface Sample {
  t: number;
  metricsSpoolRecords: number;
  metricsSpoolBytes: number;
  tracesSpoolRecords: number;
  tracesSpoolBytes: number;
  batcherBatches: number;
  batcherBytes: number;
  sentMetrics: number;
  sentTraces: number;
  wireBytes: number;
  appBacklogRequests: number;
  /** plumb_forward_request_seconds of the traces lane: sum and count so far. */
  traceRequestSeconds: number;
  traceRequests: number;
  /** Spans the agent answered 429 so far. */
  refusedSpans: number;
}

function sampleOf(e: Exposition, t: number, proxy: OutageProxy, load: SpanLoad): Sample {
  const spool = (name: string, pred: (s: string) => boolean): number => sum(e, name, (l) => pred(l.spool ?? ''));
  const isMetrics = (s: string): boolean => s.startsWith('forward_metrics-');
  const isTraces = (s: string): boolean => s === 'forward_traces';
  return {
    t,
    metricsSpoolRecords: spool('plumb_spool_records', isMetrics),
    metricsSpoolBytes: spool('plumb_spool_bytes', isMetrics),
    tracesSpoolRecords: spool('plumb_spool_records', isTraces),
    tracesSpoolBytes: spool('plumb_spool_bytes', isTraces),
    batcherBatches: sum(e, 'plumb_traces_batch_queue_depth'),
    batcherBytes: sum(e, 'plumb_traces_batch_queue_bytes'),
    sentMetrics: sum(e, 'plumb_forward_batches_total', (l) => l.kind === 'metrics'),
    sentTraces: sum(e, 'plumb_forward_batches_total', (l) => l.kind === 'traces'),
    wireBytes: proxy.bytesUp,
    appBacklogRequests: load.backlogRequests,
    traceRequestSeconds: sum(e, 'plumb_forward_request_seconds_sum', (l) => l.kind === 'traces'),
    traceRequests: sum(e, 'plumb_forward_request_seconds_count', (l) => l.kind === 'traces'),
    refusedSpans: sum(e, 'plumb_traces_spans_refused_total'),
  };
}

interface Rates {
  seconds: number;
  batchesPerSecond: number;
  metricBatchesPerSecond: number;
  traceBatchesPerSecond: number;
  wireMBPerSecond: number;
  /** Mean time of the traces lane's POSTs (agent's plumb_forward_request_seconds). */
  meanTraceRequestMs: number;
}

function rates(a: Sample, b: Sample): Rates {
  const s = (b.t - a.t) / 1000;
  return {
    seconds: round(s),
    batchesPerSecond: round((b.sentMetrics + b.sentTraces - a.sentMetrics - a.sentTraces) / s, 1),
    metricBatchesPerSecond: round((b.sentMetrics - a.sentMetrics) / s, 1),
    traceBatchesPerSecond: round((b.sentTraces - a.sentTraces) / s, 1),
    wireMBPerSecond: round((b.wireBytes - a.wireBytes) / s / 1e6, 2),
    meanTraceRequestMs: round(((b.traceRequestSeconds - a.traceRequestSeconds) / Math.max(1, b.traceRequests - a.traceRequests)) * 1000, 1),
  };
}

interface RecoveryResult {
  outageSeconds: number;
  steady: Rates & { spansPerSecond: number; statsdLinesPerSecond: number };
  peak: {
    metricsSpoolBatches: number;
    metricsSpoolMB: number;
    tracesSpoolBatches: number;
    batcherBatches: number;
    batcherMB: number;
    appBacklogSpans: number;
  };
  /** From the collector's return: first batch acknowledged, metrics spool empty, span backlog gone (s). */
  firstDeliveryS: number | null;
  metricsSpoolEmptyS: number | null;
  spansCaughtUpS: number | null;
  /** From the first delivery until the metrics spool was empty. */
  metricsDrain: Rates | null;
  /** From the first delivery until the span backlog was gone. */
  spanDrain: Rates | null;
  spans: { accepted: number; arrived: number; missing: number; duplicates: number; foreign: number; refused429Requests: number; skippedByApp: number };
  counters: { linesSent: number; linesCounted: number; socketDrops: number; valueSent: number; valueExposed: number; exact: boolean };
  forwardDropped: number;
  forwardRetries: number;
  agentCpuCores: number;
  collectorCpuCores: number;
  /** This process: the load, the proxy, the Zipkin stand-in, the polling. */
  harnessCpuCores: number;
  /** This process's event-loop delay (p99 / max, ms): the proxy and the stand-ins wait that long. */
  harnessLoopDelayMs: { p99: number; max: number };
  agentPeakRssMiB: number;
  collectorPeakRssMiB: number;
  cpuPressure: number | null;
  timeline: Sample[];
}

async function waitUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

async function recovery(o: Options, main: string): Promise<RecoveryResult> {
  const zipkinOut = await startZipkinCounter();
  const [collectorPort, proxyPort, agentHttp, agentZipkin] = await freeTcpPorts(4);
  const statsdPort = await freeUdpPort();
  const collectorDir = join(WORK, 'collector-data');
  const agentDir = join(WORK, 'agent-recovery');
  for (const d of [collectorDir, agentDir]) rmSync(d, { recursive: true, force: true });
  const collector = startRole(main, 'collector', 'collector', { collector: { listen: `127.0.0.1:${collectorPort}`, dataDir: collectorDir, traces: { zipkin: { url: zipkinOut.url } } }, log: { level: 'warn' } });
  const proxy = new OutageProxy(proxyPort, collectorPort);
  const collectorUrl = `http://127.0.0.1:${collectorPort}`;
  const agentUrl = `http://127.0.0.1:${agentHttp}`;
  let agent: Role | null = null;
  let spans: SpanLoad | null = null;
  let statsd: StatsdLoad | null = null;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  try {
    await waitOk(`${collectorUrl}/readyz`, collector);
    await proxy.up();
    agent = startRole(
      main,
      'agent',
      'agent-recovery',
      agentConfig({ dataDir: agentDir, http: agentHttp, zipkin: agentZipkin, collector: proxy.url, spool: 'batch', batchSpans: o.batchSpans, statsd: { port: statsdPort, flushInterval: o.flushInterval } }),
    );
    await waitOk(`${agentUrl}/readyz`, agent);
    const agentPid = agent.pid;
    const cpu0 = { agent: processCpuSeconds(agentPid), collector: processCpuSeconds(collector.pid), clock: clock() };
    loopDelay.enable();
    spans = new SpanLoad({ url: `http://127.0.0.1:${agentZipkin}/api/v2/spans`, concurrency: 4, spansPerRequest: o.spansPerRequest, rate: o.spanRate, maxBacklogRequests: 100 });
    statsd = new StatsdLoad(statsdPort, o.statsdRate, o.series);
    const t0 = performance.now();
    const timeline: Sample[] = [];
    const load = spans;
    const take = async (): Promise<Sample> => {
      load.check();
      const s = sampleOf(await scrape(agentUrl), performance.now() - t0, proxy, load);
      timeline.push(s);
      return s;
    };
    const sampleFor = async (ms: number, every: number): Promise<void> => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        await take();
        await sleep(Math.min(every, Math.max(0, end - performance.now())));
      }
    };

    log(`recovery: steady load (${o.spanRate} spans/s, ${o.statsdRate} statsd lines/s over ${o.series} series, flush every ${o.flushInterval}), warm-up ${o.warmup} s`);
    await sampleFor(o.warmup * 1000, 250);
    const s0 = await take();
    const spans0 = spans.acceptedSpans;
    const lines0 = statsd.lines;
    await sampleFor(o.steadySeconds * 1000, 250);
    const s1 = await take();
    const steady = { ...rates(s0, s1), spansPerSecond: Math.round((spans.acceptedSpans - spans0) / ((s1.t - s0.t) / 1000)), statsdLinesPerSecond: Math.round((statsd.lines - lines0) / ((s1.t - s0.t) / 1000)) };

    log(`recovery: collector unreachable for ${o.outage} s`);
    await proxy.down();
    const down = await take();
    await sampleFor(o.outage * 1000, 250);
    await proxy.up();
    const up = await take();
    log('recovery: collector back; waiting for the backlog to drain');
    let first: Sample | null = null;
    let metricsEmpty: Sample | null = null;
    let caughtUp: Sample | null = null;
    const drainDeadline = performance.now() + Math.max(120_000, o.outage * 3000);
    while ((metricsEmpty === null || caughtUp === null) && performance.now() < drainDeadline) {
      await sleep(100);
      const s = await take();
      if (first === null && s.sentMetrics + s.sentTraces > up.sentMetrics + up.sentTraces) first = s;
      if (first !== null && metricsEmpty === null && s.metricsSpoolRecords === 0) metricsEmpty = s;
      if (first !== null && caughtUp === null && s.tracesSpoolRecords === 0 && s.batcherBatches === 0 && s.appBacklogRequests <= 4) caughtUp = s;
    }
    // a little more steady load after the backlog is gone, so the tail of the run is ordinary traffic
    await sampleFor(o.quick ? 1000 : 3000, 250);
    const outageSamples = timeline.filter((s) => s.t >= down.t && (metricsEmpty === null || s.t <= Math.max(metricsEmpty.t, caughtUp?.t ?? 0)));
    const peak = {
      metricsSpoolBatches: Math.max(...outageSamples.map((s) => s.metricsSpoolRecords)),
      metricsSpoolMB: round(Math.max(...outageSamples.map((s) => s.metricsSpoolBytes)) / 1e6, 2),
      tracesSpoolBatches: Math.max(...outageSamples.map((s) => s.tracesSpoolRecords)),
      batcherBatches: Math.max(...outageSamples.map((s) => s.batcherBatches)),
      batcherMB: round(Math.max(...outageSamples.map((s) => s.batcherBytes)) / 1e6, 2),
      appBacklogSpans: Math.max(...outageSamples.map((s) => s.appBacklogRequests)) * o.spansPerRequest,
    };

    log('recovery: load stopped; counting what arrived');
    await spans.stop();
    await statsd.stop();
    const flushMs = Number.parseFloat(o.flushInterval) * (o.flushInterval.endsWith('ms') ? 1 : 1000);
    await sleep(2 * flushMs + 500);
    await waitUntil('the agent to send everything', 60_000, async () => {
      const s = await take();
      return s.metricsSpoolRecords === 0 && s.tracesSpoolRecords === 0 && s.batcherBatches === 0 ? s : false;
    });
    const accepted = spans.accepted;
    await waitUntil('the spans at Zipkin', 60_000, async () => (zipkinOut.received.size >= accepted.size ? true : false)).catch((err: unknown) => log(String(err)));
    const agentEnd = await scrape(agentUrl);
    const linesCounted = sum(agentEnd, 'plumb_statsd_lines_total');
    const valueSent = statsd.valueSum;
    const exposed = async (): Promise<number> => sum(await scrape(collectorUrl), COUNTER_EXPOSED);
    await waitUntil('the counter total at the collector', 30_000, async () => ((await exposed()) >= valueSent ? true : false)).catch((err: unknown) => log(String(err)));
    const valueExposed = await exposed();
    const cpu1 = { agent: processCpuSeconds(agentPid), collector: processCpuSeconds(collector.pid), clock: clock() };
    const wall = (cpu1.clock.t - cpu0.clock.t) / 1000;
    const missing = accepted.missingFrom(zipkinOut.received);
    const since = (s: Sample | null): number | null => (s === null ? null : round((s.t - up.t) / 1000, 1));
    return {
      outageSeconds: o.outage,
      steady,
      peak,
      firstDeliveryS: since(first),
      metricsSpoolEmptyS: since(metricsEmpty),
      spansCaughtUpS: since(caughtUp),
      metricsDrain: first && metricsEmpty && metricsEmpty.t > first.t ? rates(first, metricsEmpty) : null,
      spanDrain: first && caughtUp && caughtUp.t > first.t ? rates(first, caughtUp) : null,
      spans: {
        accepted: accepted.size,
        arrived: zipkinOut.received.size,
        missing,
        duplicates: zipkinOut.duplicates,
        foreign: zipkinOut.foreign + zipkinOut.badRequests,
        refused429Requests: spans.refusedRequests,
        skippedByApp: spans.skippedSpans,
      },
      counters: {
        linesSent: statsd.lines,
        linesCounted,
        socketDrops: sum(agentEnd, 'plumb_statsd_socket_drops_total'),
        valueSent,
        valueExposed,
        exact: valueExposed === valueSent && linesCounted === statsd.lines,
      },
      forwardDropped: sum(agentEnd, 'plumb_forward_dropped_total'),
      forwardRetries: sum(agentEnd, 'plumb_forward_retries_total'),
      agentCpuCores: round((cpu1.agent - cpu0.agent) / wall),
      collectorCpuCores: round((cpu1.collector - cpu0.collector) / wall),
      harnessCpuCores: round((cpu1.clock.harnessCpu - cpu0.clock.harnessCpu) / wall),
      harnessLoopDelayMs: { p99: round(loopDelay.percentile(99) / 1e6, 1), max: round(loopDelay.max / 1e6, 1) },
      agentPeakRssMiB: Math.round(processMemory(agentPid).peakRssBytes / 2 ** 20),
      collectorPeakRssMiB: Math.round(processMemory(collector.pid).peakRssBytes / 2 ** 20),
      cpuPressure: cpu0.clock.pressure !== null && cpu1.clock.pressure !== null ? round((cpu1.clock.pressure - cpu0.clock.pressure) / 1e6 / wall, 3) : null,
      timeline,
    };
  } finally {
    loopDelay.disable();
    await spans?.stop().catch(() => undefined);
    await statsd?.stop().catch(() => undefined);
    if (agent) await stopRole(agent);
    await proxy.down();
    await stopRole(collector);
    await zipkinOut.stop();
  }
}

// ---- report ----

const VARIANT_LABEL: Record<Variant, string> = { off: 'spool off', batch: 'spool on, fsync batch', interval: 'spool on, fsync interval (1s)', never: 'spool on, fsync never' };

function fmt(n: number | null, unit = ''): string {
  return n === null || !Number.isFinite(n) ? '–' : `${n.toLocaleString('en-US')}${unit}`;
}

function renderMarkdown(o: Options, report: Report): string {
  const m = report.machine;
  const lines: string[] = [];
  lines.push(`## Forwarder: spool on vs off, and recovery after a collector outage (\`bench/forward.ts\`)`);
  lines.push('');
  lines.push(
    `**Date** ${report.date}. **Commit** ${report.commit}${report.dirty.length > 0 ? ` (working tree also had uncommitted changes in ${report.dirty.join(', ')})` : ''}. ` +
      `**Machine** ${m.cpus} × ${m.cpuModel}, ${Math.round(m.memTotalBytes / 2 ** 30)} GiB, Linux ${m.kernel}, Node ${m.node}; plumb ${report.compiled ? 'compiled to JavaScript (as shipped)' : 'from its .ts sources'}; spool on ext4 under bench/.work/.`,
  );
  lines.push('');
  const argv = process.argv.slice(2).join(' ');
  lines.push(`**Method** \`npm run bench:forward${argv === '' ? '' : ` -- ${argv}`}\` (${report.wallSeconds} s in all). Details: bench/README.md.`);
  const t = report.throughput;
  if (t) {
    lines.push('');
    lines.push(
      `### Throughput, spans flat out (${o.rounds} rounds × ${o.variants.length} variants, order rotated each round, ${o.warmup} s warm-up + ${o.seconds} s window, medians)`,
    );
    lines.push('');
    lines.push(
      `A fresh \`plumb agent\` per run (statsd and host metrics off, defaults otherwise: ${o.batchSpans} spans per forwarded batch, gzip) fed by ${o.concurrency} keep-alive clients posting ${o.spansPerRequest}-span Zipkin requests as fast as they are answered (429 retried after 20 ms), forwarding to the stand-in collector in the harness (gunzips, counts spans per distinct batch id, answers 200). Ratio = median over rounds of spans/s ÷ spool-off's in the same round.`,
    );
    lines.push('');
    lines.push('| variant | spans/s | batches/s | MB/s (gzip) | ratio to spool off | agent CPU (cores) | agent µs CPU/span | peak RSS (MiB) | mean POST (ms) | CPU pressure (PSI) | lost |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
    for (const s of t.summary) {
      lines.push(
        `| ${VARIANT_LABEL[s.variant]} | ${fmt(s.spansPerSecond)} | ${fmt(s.batchesPerSecond)} | ${fmt(s.mbPerSecond)} | ${s.ratioToOff === null ? '–' : `${s.ratioToOff.toFixed(2)}×`} | ${fmt(s.agentCpuCores)} | ${fmt(s.agentCpuMicrosPerSpan)} | ${fmt(s.peakRssMiB)} | ${fmt(s.meanRequestMs)} | ${s.cpuPressure === null ? '–' : `${Math.round(s.cpuPressure * 100)}%`} | ${s.lost} |`,
      );
    }
    lines.push('');
    lines.push('Each run (spans/s · agent cores · other processes\' cores · PSI):');
    lines.push('');
    for (const v of o.variants) {
      const runs = t.runs.filter((r) => r.variant === v);
      lines.push(`- ${VARIANT_LABEL[v]}: ${runs.map((r) => `r${r.round} ${fmt(r.spansPerSecond)} · ${r.agentCpuCores} · ${r.otherCpuCores} · ${r.cpuPressure === null ? '–' : `${Math.round(r.cpuPressure * 100)}%`}`).join('; ')}`);
    }
  }
  const r = report.recovery;
  if (r) {
    lines.push('');
    lines.push(`### Recovery after a ${r.outageSeconds} s collector outage (spool on, fsync batch)`);
    lines.push('');
    lines.push(
      `\`plumb agent\` (defaults; statsd flush every ${o.flushInterval}) → TCP proxy in the harness → \`plumb collector\` (defaults; Zipkin sink = a counting stand-in). Steady load: ${fmt(o.spanRate)} spans/s (unique span ids, 4 clients, 429 retried after 20 ms, at most 100 requests of backlog kept by the "application") and ${fmt(o.statsdRate)} statsd counter lines/s over ${fmt(o.series)} series. The outage closes the proxy's port and resets its connections (what a stopped collector looks like to the agent) while the collector process keeps its counters. Agent /metrics polled every 100–250 ms.`,
    );
    lines.push('');
    lines.push('| measure | value |');
    lines.push('|---|---|');
    lines.push(`| steady rate before the outage | ${fmt(r.steady.batchesPerSecond)} batches/s (${fmt(r.steady.metricBatchesPerSecond)} metrics + ${fmt(r.steady.traceBatchesPerSecond)} traces), ${fmt(r.steady.wireMBPerSecond)} MB/s on the wire, ${fmt(r.steady.spansPerSecond)} spans/s, ${fmt(r.steady.statsdLinesPerSecond)} lines/s; mean traces POST ${fmt(r.steady.meanTraceRequestMs)} ms |`);
    lines.push(`| backlog at the peak: metrics spool | ${fmt(r.peak.metricsSpoolBatches)} batches, ${fmt(r.peak.metricsSpoolMB)} MB |`);
    lines.push(`| backlog at the peak: spans | traces spool ${fmt(r.peak.tracesSpoolBatches)} batches; span batcher ${fmt(r.peak.batcherBatches)} batches, ${fmt(r.peak.batcherMB)} MB; application backlog ${fmt(r.peak.appBacklogSpans)} spans |`);
    lines.push(`| collector back → first batch acknowledged | ${fmt(r.firstDeliveryS, ' s')} |`);
    lines.push(`| collector back → metrics spool empty | ${fmt(r.metricsSpoolEmptyS, ' s')} |`);
    lines.push(`| collector back → span backlog gone (traces spool and batcher empty, application caught up) | ${fmt(r.spansCaughtUpS, ' s')} |`);
    const ratio = (d: Rates | null): string =>
      d === null ? '–' : `${fmt(d.batchesPerSecond)} batches/s (${fmt(d.metricBatchesPerSecond)} metrics + ${fmt(d.traceBatchesPerSecond)} traces), ${fmt(d.wireMBPerSecond)} MB/s over ${d.seconds} s (mean traces POST ${fmt(d.meanTraceRequestMs)} ms) = ${r.steady.batchesPerSecond > 0 ? round(d.batchesPerSecond / r.steady.batchesPerSecond, 1) : '–'}× the steady batch rate, ${r.steady.wireMBPerSecond > 0 ? round(d.wireMBPerSecond / r.steady.wireMBPerSecond, 1) : '–'}× its MB/s`;
    lines.push(`| drain, first delivery → metrics spool empty | ${ratio(r.metricsDrain)} |`);
    lines.push(`| drain, first delivery → span backlog gone | ${ratio(r.spanDrain)} |`);
    lines.push(`| spans accepted (202) → arrived at Zipkin | ${fmt(r.spans.accepted)} → ${fmt(r.spans.arrived)}: missing ${r.spans.missing}, duplicates ${r.spans.duplicates}, unknown ${r.spans.foreign} |`);
    lines.push(`| spans pushed back | ${fmt(r.spans.refused429Requests)} requests answered 429 (retried); ${fmt(r.spans.skippedByApp)} spans dropped by the application's bounded backlog (never offered) |`);
    lines.push(`| statsd counters sent → exposed by the collector | lines ${fmt(r.counters.linesSent)} sent, ${fmt(r.counters.linesCounted)} counted by the agent (socket drops ${r.counters.socketDrops}); total ${fmt(r.counters.valueSent)} → ${fmt(r.counters.valueExposed)}: ${r.counters.exact ? '**exact**' : '**not exact**'} |`);
    lines.push(`| forward drops / retries | ${r.forwardDropped} / ${fmt(r.forwardRetries)} |`);
    lines.push(`| CPU over the run (cores), peak RSS | agent ${r.agentCpuCores}, ${r.agentPeakRssMiB} MiB; collector ${r.collectorCpuCores}, ${r.collectorPeakRssMiB} MiB; harness ${r.harnessCpuCores} (event-loop delay p99 ${r.harnessLoopDelayMs.p99} ms, max ${r.harnessLoopDelayMs.max} ms); PSI ${r.cpuPressure === null ? '–' : `${Math.round(r.cpuPressure * 100)}%`} |`);
  }
  return lines.join('\n');
}

interface Report {
  date: string;
  commit: string;
  dirty: string[];
  compiled: boolean;
  machine: ReturnType<typeof machineInfo>;
  options: Omit<Options, 'sections'> & { sections: string[] };
  wallSeconds: number;
  throughput?: { runs: ThroughputRun[]; summary: VariantSummary[] };
  recovery?: RecoveryResult;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const started = performance.now();
  mkdirSync(WORK, { recursive: true });
  const version = codeVersion();
  let main = join(ROOT, 'cli', 'main.ts');
  if (!o.fromSource) {
    log('compiling plumb (bench/tsconfig.bench.json)…');
    main = buildCode(log).agentMain;
  }
  try {
    const report: Report = {
      date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      commit: version.commit,
      dirty: version.dirty,
      compiled: !o.fromSource,
      machine: machineInfo(),
      options: { ...o, sections: [...o.sections] },
      wallSeconds: 0,
    };
    if (o.sections.has('throughput')) report.throughput = await throughput(o, main);
    if (o.sections.has('recovery')) report.recovery = await recovery(o, main);
    report.wallSeconds = Math.round((performance.now() - started) / 1000);
    const json = join(WORK, `result-${report.date.replace(/[:]/g, '')}.json`);
    writeFileSync(json, JSON.stringify(report, null, 2));
    const markdown = renderMarkdown(o, report);
    process.stdout.write(`${markdown}\n`);
    log(`raw results: ${json}`);
    if (o.record ?? !o.quick) {
      appendFileSync(join(BENCH, 'RESULTS.md'), `\n${markdown}\n`);
      log('appended to bench/RESULTS.md');
    }
    const r = report.recovery;
    const lost = (report.throughput?.summary.reduce((n, s) => n + s.lost, 0) ?? 0) + (r ? r.spans.missing : 0);
    if (lost !== 0 || (r && !r.counters.exact)) process.exitCode = 1;
  } finally {
    if (!o.fromSource) removeBuild();
  }
}

await main();
