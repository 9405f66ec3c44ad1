/**
 * `npm run bench:statsd [-- --quick] [options]`: statsd ingest benchmark of plumb's agent against
 * Etsy statsd and a bare Node socket, on the same machine, in the same run. See bench/README.md.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildLoadgen, dumpPool, runLoadgen } from './statsd/loadgen.ts';
import { machineInfo, processMemory } from './statsd/procfs.ts';
import { killAll, track } from './statsd/processes.ts';
import { Sink, startPlumb, startTarget, TARGET_LABELS, type Target, type TargetName } from './statsd/targets.ts';
import { measure, measureQuiet, median, type Measurement, type QuietBudget } from './statsd/measure.ts';
import { findMaxRate, fmtPct, fmtRate } from './statsd/search.ts';
import { BUILD_DIR, buildCode, codeVersion, removeBuild, sourcePaths, type CodePaths } from './statsd/build.ts';
import { importFootprints } from './statsd/footprint.ts';
import { newestProfile, summarizeProfile, type ProfileSummary } from './statsd/profile.ts';
import { renderMarkdown, type InProcessResult, type RateResult, type RunReport, type SaturatedResult, type SteadyResult } from './statsd/report.ts';

const BENCH = import.meta.dirname;
const WORK = join(BENCH, '.work');
/** Half of net.core.rmem_default: asking for it gets exactly the kernel's default buffer (Linux doubles the ask). */
const DEFAULT_ASK = 106_496;
/** 4 MiB, the agent's own default (agent.statsd.receiveBuffer: 4mb); the kernel caps it at rmem_max. */
const LARGE_ASK = 4 * 1024 * 1024;
const DATAGRAM_BYTES = 1400;

const USAGE = `Usage: npm run bench:statsd -- [options]

  --quick               short probes and single runs (~2 min) instead of medians of 3 × 10 s (~15 min)
  --targets LIST        comma-separated subset of plumb,etsy,bare (default: all)
  --only LIST           comma-separated subset of inprocess,rates,steady,saturated,footprint,profile
  --series N            distinct series for the UDP runs (default 1000)
  --steady-rate N       lines/s for the steady CPU/RSS runs (default 100000)
  --profile             also profile in a quick run (always on in a full run)
  --from-source         run plumb's .ts files directly instead of compiling them first
  --agent-flags "F…"    extra Node flags for plumb's agent, e.g. "--max-semi-space-size=2"
  --no-record           do not append the results to bench/RESULTS.md
  --help                this text
`;

interface Options {
  quick: boolean;
  targets: TargetName[];
  sections: Set<string>;
  series: number;
  steadyRate: number;
  profile: boolean;
  record: boolean;
  fromSource: boolean;
  agentFlags: string[];
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    quick: false,
    targets: ['plumb', 'etsy', 'bare'],
    sections: new Set(['inprocess', 'rates', 'steady', 'saturated', 'footprint', 'profile']),
    series: 1000,
    steadyRate: 100_000,
    profile: false,
    record: true,
    fromSource: false,
    agentFlags: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') o.quick = true;
    else if (a === '--targets') o.targets = value().split(',') as TargetName[];
    else if (a === '--only') o.sections = new Set(value().split(','));
    else if (a === '--series') o.series = Number(value());
    else if (a === '--steady-rate') o.steadyRate = Number(value());
    else if (a === '--profile') o.profile = true;
    else if (a === '--no-record') o.record = false;
    else if (a === '--from-source') o.fromSource = true;
    else if (a === '--agent-flags') o.agentFlags = value().split(/\s+/).filter((f) => f.length > 0);
    else if (a === '--help') {
      process.stdout.write(USAGE);
      process.exit(0);
    } else throw new Error(`unknown option ${a}\n\n${USAGE}`);
  }
  for (const t of o.targets) if (!(t in TARGET_LABELS)) throw new Error(`unknown target ${t} (plumb, etsy, bare)`);
  if (!(o.series >= 1 && o.series <= 1_000_000)) throw new Error('--series must be 1..1000000');
  if (!(o.steadyRate > 0 && o.steadyRate <= 10_000_000)) throw new Error('--steady-rate must be 1..10000000');
  if (!o.quick) o.profile = true;
  return o;
}

const t0 = Date.now();
function log(line: string): void {
  const s = ((Date.now() - t0) / 1000).toFixed(0).padStart(4);
  process.stderr.write(`[${s}s] ${line}\n`);
}

function runNode(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    const child = track(spawn(process.execPath, args, { cwd: resolve(BENCH, '..'), stdio: ['ignore', 'pipe', 'inherit'] }));
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) res(out);
      else rej(new Error(`node ${args.join(' ')} exited with ${code}`));
    });
  });
}

async function inProcess(code: CodePaths, loadgen: string, series: number, seconds: number, repeats: number, profileDir?: string): Promise<InProcessResult> {
  const pool = join(WORK, `pool-${series}.bin`);
  const dumped = await dumpPool(loadgen, pool, series);
  const flags = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const text = await runNode([...flags, code.inprocess, pool, String(seconds), String(repeats), '1', '10'], (seconds * repeats + 30) * 1000);
  const r = JSON.parse(text) as { runs: { linesPerSecond: number; linesPerCpuSecond: number }[]; rssBytes: number; parseErrors: number };
  return {
    series,
    linesPerDatagram: dumped.lines / dumped.datagrams,
    linesPerSecond: median(r.runs.map((x) => x.linesPerSecond)),
    linesPerCpuSecond: median(r.runs.map((x) => x.linesPerCpuSecond)),
    runs: r.runs,
    rssBytes: r.rssBytes,
    parseErrors: r.parseErrors,
  };
}

interface RunContext {
  code: CodePaths;
  sinkPort: number;
  agentFlags: string[];
}

async function withTarget<T>(ctx: RunContext, name: TargetName, askedBytes: number, fn: (t: Target) => Promise<T>): Promise<T> {
  const target = await startTarget(name, { receiveBufferBytes: askedBytes, workDir: WORK, code: ctx.code, nodeFlags: ctx.agentFlags }, ctx.sinkPort);
  try {
    return await fn(target);
  } finally {
    await target.stop();
  }
}

function describe(m: Measurement): string {
  return `sent ${fmtRate(m.sentRate)}, processed ${fmtRate(m.processedRate)}, loss ${fmtPct(m.loss)}, drops ${m.socketDrops}, cpu ${fmtPct(m.targetCpu)}, generator ${fmtPct(m.loadgenCpu)}, contention ${fmtPct(m.cpuPressure)}, rss ${(m.rssBytes / 1048576).toFixed(0)} MB`;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  mkdirSync(WORK, { recursive: true });
  rmSync(join(WORK, 'logs'), { recursive: true, force: true });
  const loadgen = buildLoadgen(WORK);
  const version = codeVersion();
  const code = o.fromSource ? sourcePaths() : buildCode(log);
  const machine = machineInfo();
  const s = {
    probeSeconds: o.quick ? 1 : 2,
    confirmSeconds: o.quick ? 2 : 10,
    repeats: o.quick ? 1 : 3,
    precision: o.quick ? 0.25 : 0.1,
    maxLoss: 0.001,
    steadyRate: o.steadyRate,
  };
  log(`statsd benchmark (${o.quick ? 'quick' : 'full'}): ${o.targets.join(', ')}; ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}`);
  const pool = await dumpPool(loadgen, join(WORK, `pool-${o.series}.bin`), o.series);
  const linesPerDatagram = pool.lines / pool.datagrams;
  const measurements: Measurement[] = [];
  // Waiting for quiet and re-running disturbed runs: at most this much extra time in all.
  const quietBudget: QuietBudget = { remainingMs: o.quick ? 10_000 : 120_000 };
  const report: RunReport = {
    startedAt,
    finishedAt: startedAt,
    mode: o.quick ? 'quick' : 'full',
    compiled: code.compiled,
    version,
    machine,
    series: o.series,
    linesPerDatagram,
    datagramBytes: DATAGRAM_BYTES,
    settings: s,
    targets: o.targets,
    inProcess: [],
    rates: [],
    steady: [],
    saturated: [],
    profiles: [],
    footprints: [],
    contentionMedian: 0,
    otherCpuMedian: 0,
  };

  const sink = new Sink();
  await sink.start();
  const ctx: RunContext = { code, sinkPort: sink.port, agentFlags: o.agentFlags };
  try {
    if (o.sections.has('inprocess') && o.targets.includes('plumb')) {
      const seriesList = o.quick ? [o.series] : [...new Set([o.series, 10_000, 100_000])];
      for (const series of seriesList) {
        const seconds = o.quick ? 2 : series === o.series ? 10 : 3;
        log(`in-process: ${series} series, ${s.repeats} × ${seconds} s`);
        const r = await inProcess(code, loadgen, series, seconds, s.repeats);
        log(`  ${fmtRate(r.linesPerSecond)} (${fmtRate(r.linesPerCpuSecond)} per CPU-second), parse errors ${r.parseErrors}`);
        report.inProcess.push(r);
      }
    }

    if (o.sections.has('rates')) {
      for (const asked of [DEFAULT_ASK, LARGE_ASK]) {
        for (const name of o.targets) {
          await withTarget(ctx, name, asked, async (target) => {
            log(`rate search: ${TARGET_LABELS[name]}, buffer asked ${asked}, kernel granted rb ${target.receiveBuffer}`);
            const search = await findMaxRate(loadgen, target, {
              start: 100_000,
              ceiling: 8_000_000,
              maxLoss: s.maxLoss,
              probeSeconds: s.probeSeconds,
              confirmSeconds: s.confirmSeconds,
              repeats: s.repeats,
              precision: s.precision,
              series: o.series,
              confirmAttempts: o.quick ? 2 : 3,
              maxLongRuns: o.quick ? 4 : 6,
              quietAttempts: o.quick ? 1 : 3,
              quietBudget,
              budgetSeconds: o.quick ? 20 : 120,
              log,
            });
            measurements.push(...search.confirm);
            log(`  → ${search.maxRate > 0 ? fmtRate(search.maxRate) : 'none'}${search.median ? `: ${describe(search.median)}` : ''}`);
            report.rates.push({ target: name, askedBytes: asked, grantedBytes: target.receiveBuffer, search } satisfies RateResult);
          });
        }
      }
    }

    if (o.sections.has('steady') || o.sections.has('saturated')) {
      for (const name of o.targets) {
        await withTarget(ctx, name, LARGE_ASK, async (target) => {
          await sleep(1000);
          const idle = processMemory(target.pid);
          if (o.sections.has('steady')) {
            const seconds = o.quick ? 3 : 10;
            log(`steady ${fmtRate(o.steadyRate)}: ${TARGET_LABELS[name]}, idle RSS ${(idle.rssBytes / 1048576).toFixed(0)} MB, ${s.repeats} × ${seconds} s`);
            await runLoadgen(loadgen, { port: target.port, rate: o.steadyRate, seconds: o.quick ? 1 : 3, series: o.series, seed: 7 }); // warm-up
            const runs: Measurement[] = [];
            for (let r = 0; r < s.repeats; r++) {
              const m = await measureQuiet(loadgen, target, o.steadyRate, seconds, o.series, 200 + r, quietBudget, o.quick ? 1 : 3);
              log(`  ${describe(m)}`);
              runs.push(m);
            }
            measurements.push(...runs);
            const sorted = [...runs].sort((a, b) => a.targetCpu - b.targetCpu);
            report.steady.push({
              target: name,
              rate: o.steadyRate,
              idleRssBytes: idle.rssBytes,
              runs: sorted,
              cpu: median(runs.map((m) => m.targetCpu)),
              loadgenCpu: median(runs.map((m) => m.loadgenCpu)),
              rssBytes: Math.max(...runs.map((m) => m.rssBytes)),
              peakRssBytes: processMemory(target.pid).peakRssBytes,
            } satisfies SteadyResult);
          }
          if (o.sections.has('saturated')) {
            const seconds = o.quick ? 2 : 10;
            log(`saturated (generator flat out): ${TARGET_LABELS[name]}, ${s.repeats} × ${seconds} s`);
            const runs: Measurement[] = [];
            for (let r = 0; r < s.repeats; r++) {
              const m = await measureQuiet(loadgen, target, 0, seconds, o.series, 300 + r, quietBudget, o.quick ? 1 : 3);
              log(`  ${describe(m)}`);
              runs.push(m);
            }
            measurements.push(...runs);
            report.saturated.push({
              target: name,
              runs: [...runs].sort((a, b) => a.processedRate - b.processedRate),
              processedRate: median(runs.map((m) => m.processedRate)),
              processedPerCpuSecond: median(runs.map((m) => (m.targetCpu > 0 ? m.processedRate / m.targetCpu : 0))),
              cpu: median(runs.map((m) => m.targetCpu)),
              loadgenCpu: median(runs.map((m) => m.loadgenCpu)),
            } satisfies SaturatedResult);
          }
        });
      }
    }

    if (!o.quick && o.sections.has('footprint') && o.targets.includes('plumb')) {
      log('footprint: RSS of a fresh Node process after importing each module');
      report.footprints = await importFootprints(code.compiled ? BUILD_DIR : resolve(BENCH, '..'));
      for (const f of report.footprints) log(`  ${(f.rssBytes / 1048576).toFixed(1).padStart(6)} MB  ${f.label}`);
    }

    if (o.profile && o.sections.has('profile') && o.targets.includes('plumb')) {
      const dir = join(WORK, 'profiles');
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const seconds = o.quick ? 3 : 10;
      const profileAgent = async (name: string, rate: number, title: string): Promise<void> => {
        const into = join(dir, name);
        log(`profile: plumb agent, ${title}, ${seconds} s (node --cpu-prof)`);
        const agent = await startPlumb({ receiveBufferBytes: LARGE_ASK, workDir: WORK, code, cpuProfileDir: into, nodeFlags: o.agentFlags }, sink.port);
        try {
          await sleep(2000); // keeps start-up out of the summarized window
          log(`  ${describe(await measure(loadgen, agent, rate, seconds, o.series, 400))}`);
        } finally {
          await agent.stop();
        }
        const file = existsSync(into) ? newestProfile(into) : null;
        // The load's window and the shutdown after it; start-up (module loading) is left out.
        if (file) report.profiles.push({ title: `plumb agent, ${title}, ${o.series} series`, summary: summarizeProfile(file, [BUILD_DIR], seconds * 1000 + 800) });
        else log('  the agent wrote no profile');
      };
      await profileAgent('agent-flat-out', 0, 'UDP flat out');
      await profileAgent('agent-steady', o.steadyRate, `steady ${fmtRate(o.steadyRate)}`);
      log(`profile: in-process Aggregator loop, ${seconds} s`);
      await inProcess(code, loadgen, o.series, seconds, 1, join(dir, 'inprocess'));
      const ipProfile = newestProfile(join(dir, 'inprocess'));
      if (ipProfile) report.profiles.push({ title: `in-process Aggregator.ingest loop, ${o.series} series`, summary: summarizeProfile(ipProfile, [BUILD_DIR]) });
      for (const p of report.profiles) printProfile(p.title, p.summary);
    }
  } finally {
    killAll();
    await sink.stop();
    removeBuild();
  }

  report.finishedAt = new Date();
  report.otherCpuMedian = median(measurements.map((m) => m.otherCpu)) || 0;
  report.contentionMedian = median(measurements.map((m) => m.cpuPressure));
  const markdown = renderMarkdown(report, DEFAULT_ASK, LARGE_ASK);
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  writeFileSync(join(WORK, `statsd-${stamp}.json`), JSON.stringify(report, null, 2));
  process.stdout.write(`\n${markdown}\n`);
  if (o.record) {
    appendFileSync(join(BENCH, 'RESULTS.md'), `\n${markdown}\n`);
    log('appended to bench/RESULTS.md');
  }
  log(`raw results: bench/.work/statsd-${stamp}.json`);
}

function printProfile(title: string, p: ProfileSummary): void {
  log(`top self time — ${title}:`);
  for (const r of p.top.slice(0, 10)) log(`  ${fmtPct(r.selfPct).padStart(6)} self ${fmtPct(r.totalPct).padStart(6)} total  ${r.fn}  ${r.where}`);
}

process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});
process.on('SIGTERM', () => {
  killAll();
  process.exit(143);
});
process.on('exit', () => {
  killAll();
  removeBuild();
});

main().catch((err: unknown) => {
  killAll();
  process.stderr.write(`bench:statsd failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
