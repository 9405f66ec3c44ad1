/** Turns a benchmark run into the Markdown section appended to bench/RESULTS.md. */
import type { MachineInfo } from './procfs.ts';
import type { Measurement } from './measure.ts';
import type { SearchResult } from './search.ts';
import type { ProfileSummary } from './profile.ts';
import type { Footprint } from './footprint.ts';
import { TARGET_LABELS, type TargetName } from './targets.ts';
import { fmtPct, fmtRate } from './search.ts';

export interface InProcessResult {
  series: number;
  linesPerDatagram: number;
  /** Median of the runs, lines per wall second and per CPU second. */
  linesPerSecond: number;
  linesPerCpuSecond: number;
  runs: { linesPerSecond: number; linesPerCpuSecond: number }[];
  rssBytes: number;
  parseErrors: number;
}

export interface RateResult {
  target: TargetName;
  askedBytes: number;
  /** The kernel's figure for the socket (ss skmem rb), twice the asked size when granted. */
  grantedBytes: number;
  search: SearchResult;
}

export interface SteadyResult {
  target: TargetName;
  rate: number;
  idleRssBytes: number;
  runs: Measurement[];
  cpu: number;
  loadgenCpu: number;
  /** Highest VmRSS seen at the end of a run, and the process's VmHWM at the end. */
  rssBytes: number;
  peakRssBytes: number;
}

export interface SaturatedResult {
  target: TargetName;
  runs: Measurement[];
  processedRate: number;
  /** Lines per CPU-second of the target: its speed on one core however much of one it got. */
  processedPerCpuSecond: number;
  cpu: number;
  loadgenCpu: number;
}

export interface RunReport {
  startedAt: Date;
  finishedAt: Date;
  mode: 'quick' | 'full';
  /** Whether plumb ran compiled to JavaScript (as shipped) or from its .ts sources. */
  compiled: boolean;
  /** The commit measured and the files under agent/, shared/, cli/ that differed from it. */
  version: { commit: string; dirty: string[] };
  machine: MachineInfo;
  series: number;
  linesPerDatagram: number;
  datagramBytes: number;
  settings: { probeSeconds: number; confirmSeconds: number; repeats: number; precision: number; maxLoss: number; steadyRate: number };
  targets: TargetName[];
  inProcess: InProcessResult[];
  rates: RateResult[];
  steady: SteadyResult[];
  saturated: SaturatedResult[];
  profiles: { title: string; summary: ProfileSummary }[];
  footprints: Footprint[];
  /** Median CPU contention (PSI some) over the runs that count. */
  contentionMedian: number;
  /** Median machine busy cores besides target and generator (rough, /proc/stat). */
  otherCpuMedian: number;
}

export const GOALS = {
  defaultBufferRate: 300_000,
  largeBufferRate: 1_400_000,
  saturated: 2_500_000,
  steadyCpu: 0.1,
  steadyRssBytes: 80 * 1024 * 1024,
};

const mb = (b: number): string => `${(b / 1024 / 1024).toFixed(0)} MB`;
const x = (a: number, b: number): string => (b > 0 && a > 0 ? `${(a / b).toFixed(2)}×` : '–');
const met = (ok: boolean | null): string => (ok === null ? 'n/a' : ok ? '**met**' : '**missed**');

function rateFor(r: RunReport, target: TargetName, asked: number): RateResult | undefined {
  return r.rates.find((x) => x.target === target && x.askedBytes === asked);
}

function rateCell(res: RateResult | undefined): string {
  if (!res) return '–';
  const s = res.search;
  if (s.maxRate === 0) return s.rejected.length > 0 ? `< ${fmtRate(Math.min(...s.rejected.map((j) => j.rate)))}` : 'none passed';
  return `${s.atCeiling ? '≥ ' : ''}${fmtRate(s.maxRate)}`;
}

export function renderMarkdown(r: RunReport, defaultAsk: number, largeAsk: number): string {
  const m = r.machine;
  const out: string[] = [];
  const date = r.startedAt.toISOString().replace('T', ' ').slice(0, 16);
  out.push(`## statsd ingest — ${date} UTC (${r.mode} run, ${Math.round((r.finishedAt.getTime() - r.startedAt.getTime()) / 60000)} min)`);
  out.push('');
  out.push(
    `Machine: ${m.cpus} × ${m.cpuModel}, Linux ${m.kernel}, ${mb(m.memTotalBytes)} RAM, Node ${m.node}; ` +
      `net.core.rmem_default ${m.rmemDefault}, rmem_max ${m.rmemMax}. plumb ran ${r.compiled ? 'compiled to JavaScript (as shipped)' : 'from its TypeScript sources'}, ` +
      `at commit ${r.version.commit}${r.version.dirty.length > 0 ? ` with uncommitted changes in ${r.version.dirty.join(', ')}` : ''}. ` +
      `Shared with other work: during the runs that count, some task was waiting for a CPU a median ${fmtPct(r.contentionMedian)} of the time (PSI).`,
  );
  out.push('');
  out.push(
    `Traffic: C load generator, ${r.series} series, ${r.datagramBytes}-byte datagrams of ${r.linesPerDatagram.toFixed(1)} lines, ` +
      `60% counters / 30% timers / 5% gauges / 5% sets, one DogStatsD tag per line, to 127.0.0.1. ` +
      `Loss limit ${fmtPct(r.settings.maxLoss)}; probes of ${r.settings.probeSeconds} s, then the best rate confirmed with the median of ` +
      `${r.settings.repeats} × ${r.settings.confirmSeconds} s. Method: bench/README.md.`,
  );
  out.push('');
  if (r.mode === 'quick') {
    out.push(
      '**Quick run**: its runs are shorter than the 10 s flush interval, so they miss what happens at a flush (Etsy stops reading while it sorts its timer samples); the loss-free rates are optimistic, most of all at the default buffer. Use a full run for figures.',
      '',
    );
  }

  const p = (t: TargetName) => r.targets.includes(t);
  const plumbDef = rateFor(r, 'plumb', defaultAsk);
  const plumbBig = rateFor(r, 'plumb', largeAsk);
  const etsyDef = rateFor(r, 'etsy', defaultAsk);
  const etsyBig = rateFor(r, 'etsy', largeAsk);
  const bareDef = rateFor(r, 'bare', defaultAsk);
  const bareBig = rateFor(r, 'bare', largeAsk);
  const inproc = r.inProcess.find((i) => i.series === r.series) ?? r.inProcess[0];
  const sat = (t: TargetName) => r.saturated.find((s) => s.target === t);
  const steady = (t: TargetName) => r.steady.find((s) => s.target === t);
  const rate = (x: RateResult | undefined) => x?.search.maxRate ?? 0;

  out.push('| measure | plumb | Etsy statsd | bare Node socket | plumb ÷ Etsy | goal | plumb vs goal |');
  out.push('|---|---|---|---|---|---|---|');
  if (plumbDef || etsyDef || bareDef) out.push(
    `| highest rate, ≤0.1% loss, kernel default buffer (rb ${plumbDef?.grantedBytes ?? etsyDef?.grantedBytes ?? '?'}) | ${rateCell(plumbDef)} | ${rateCell(etsyDef)} | ${rateCell(bareDef)} | ${x(rate(plumbDef), rate(etsyDef))} | ≥ ${fmtRate(GOALS.defaultBufferRate)} | ${met(plumbDef ? rate(plumbDef) >= GOALS.defaultBufferRate : null)} |`,
  );
  if (plumbBig || etsyBig || bareBig) out.push(
    `| highest rate, ≤0.1% loss, 4 MiB buffer (rb ${plumbBig?.grantedBytes ?? etsyBig?.grantedBytes ?? '?'}) | ${rateCell(plumbBig)} | ${rateCell(etsyBig)} | ${rateCell(bareBig)} | ${x(rate(plumbBig), rate(etsyBig))} | ≥ ${fmtRate(GOALS.largeBufferRate)} | ${met(plumbBig ? rate(plumbBig) >= GOALS.largeBufferRate : null)} |`,
  );
  if (inproc) {
    out.push(
      `| saturated, in-process (Aggregator.ingest loop), lines/s [per CPU-second] | ${fmtRate(inproc.linesPerSecond)} [${fmtRate(inproc.linesPerCpuSecond)}] | – | – | – | ≥ ${fmtRate(GOALS.saturated)} | ${met(inproc.linesPerSecond >= GOALS.saturated)} |`,
    );
  }
  const satCell = (t: TargetName) => {
    const s = sat(t);
    return s ? `${fmtRate(s.processedPerCpuSecond)} (${fmtRate(s.processedRate)} at ${fmtPct(s.cpu)} CPU)` : '–';
  };
  if (r.saturated.length > 0) {
    const sp = sat('plumb');
    out.push(
      `| saturated over UDP (generator flat out), lines per CPU-second (lines/s at the CPU it got) | ${satCell('plumb')} | ${satCell('etsy')} | ${satCell('bare')} | ${x(sp?.processedPerCpuSecond ?? 0, sat('etsy')?.processedPerCpuSecond ?? 0)} | ≥ ${fmtRate(GOALS.saturated)} | ${met(sp ? sp.processedPerCpuSecond >= GOALS.saturated : null)} |`,
    );
  }
  const cpuCell = (t: TargetName) => {
    const s = steady(t);
    return s ? fmtPct(s.cpu) : '–';
  };
  const rssCell = (t: TargetName) => {
    const s = steady(t);
    return s ? `${mb(s.rssBytes)} (peak ${mb(s.peakRssBytes)}, idle ${mb(s.idleRssBytes)})` : '–';
  };
  if (r.steady.length > 0) {
    const sp = steady('plumb');
    out.push(
      `| CPU at a steady ${fmtRate(r.settings.steadyRate)} (one core = 100%) | ${cpuCell('plumb')} | ${cpuCell('etsy')} | ${cpuCell('bare')} | ${x(sp?.cpu ?? 0, steady('etsy')?.cpu ?? 0)} | ≤ ${fmtPct(GOALS.steadyCpu)} | ${met(sp ? sp.cpu <= GOALS.steadyCpu : null)} |`,
    );
    out.push(
      `| RSS at a steady ${fmtRate(r.settings.steadyRate)} | ${rssCell('plumb')} | ${rssCell('etsy')} | ${rssCell('bare')} | ${x(sp?.rssBytes ?? 0, steady('etsy')?.rssBytes ?? 0)} | ≤ ${mb(GOALS.steadyRssBytes)} | ${met(sp ? sp.rssBytes <= GOALS.steadyRssBytes : null)} |`,
    );
  }
  out.push('');
  const missed: string[] = [];
  if (plumbDef && rate(plumbDef) < GOALS.defaultBufferRate) missed.push(`default-buffer rate ${rateCell(plumbDef)} < ${fmtRate(GOALS.defaultBufferRate)}`);
  if (plumbBig && rate(plumbBig) < GOALS.largeBufferRate) missed.push(`4 MiB rate ${rateCell(plumbBig)} < ${fmtRate(GOALS.largeBufferRate)}`);
  if (inproc && inproc.linesPerSecond < GOALS.saturated) missed.push(`in-process saturated ${fmtRate(inproc.linesPerSecond)} < ${fmtRate(GOALS.saturated)}`);
  const sp = sat('plumb');
  if (sp && sp.processedPerCpuSecond < GOALS.saturated) missed.push(`saturated over UDP ${fmtRate(sp.processedPerCpuSecond)} per CPU-second < ${fmtRate(GOALS.saturated)}`);
  const st = steady('plumb');
  if (st && st.cpu > GOALS.steadyCpu) missed.push(`CPU at ${fmtRate(r.settings.steadyRate)} ${fmtPct(st.cpu)} > ${fmtPct(GOALS.steadyCpu)}`);
  if (st && st.rssBytes > GOALS.steadyRssBytes) missed.push(`RSS at ${fmtRate(r.settings.steadyRate)} ${mb(st.rssBytes)} > ${mb(GOALS.steadyRssBytes)}`);
  const measured = [plumbDef, plumbBig, inproc, sp, st].some((v) => v !== undefined);
  if (measured) out.push(missed.length === 0 ? 'plumb met every goal measured in this run.' : `plumb missed: ${missed.join('; ')}.`, '');
  if (!p('etsy') || !p('bare')) out.push(`Targets in this run: ${r.targets.join(', ')}.`, '');

  if (r.inProcess.length > 0) {
    out.push('In-process saturated throughput (plumb Aggregator, agent defaults, interval flushed every 10 s):', '');
    out.push('| series | lines/datagram | lines/s (median) | lines per CPU-second | runs (lines/s) | RSS after |');
    out.push('|---|---|---|---|---|---|');
    for (const i of r.inProcess) {
      out.push(`| ${i.series} | ${i.linesPerDatagram.toFixed(1)} | ${fmtRate(i.linesPerSecond)} | ${fmtRate(i.linesPerCpuSecond)} | ${i.runs.map((x) => fmtRate(x.linesPerSecond)).join(', ')} | ${mb(i.rssBytes)} |`);
    }
    out.push('');
  }

  if (r.rates.length > 0) {
    out.push('Rate search (median confirmation run at the reported rate):', '');
    out.push(`| target | buffer asked → granted (rb) | highest rate ≤0.1% loss | median loss there | socket drops | target CPU | generator CPU | CPU contention | failed confirmations (median loss) | single runs (rate: loss; ${r.settings.probeSeconds} s unless marked) |`);
    out.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const res of r.rates) {
      const md = res.search.median;
      const rej = res.search.rejected.map((j) => `${fmtRate(j.rate)}: ${fmtPct(j.medianLoss)}`).join('; ') || '–';
      const probes = res.search.probes.map((q) => `${fmtRate(q.rate)}: ${fmtPct(q.loss)}${q.seconds === r.settings.confirmSeconds ? ` (${q.seconds} s)` : ''}`).join(', ');
      out.push(
        `| ${TARGET_LABELS[res.target]} | ${res.askedBytes} → ${res.grantedBytes} | ${rateCell(res)} | ${md ? fmtPct(md.loss) : '–'} | ${md ? md.socketDrops : '–'} | ${md ? fmtPct(md.targetCpu) : '–'} | ${md ? fmtPct(md.loadgenCpu) : '–'} | ${md ? fmtPct(md.cpuPressure) : '–'} | ${rej} | ${probes} |`,
      );
    }
    out.push('');
  }

  if (r.steady.length > 0 || r.saturated.length > 0) {
    out.push('Steady and saturated runs (4 MiB buffer, fresh process per target; medians):', '');
    out.push('| target | steady: offered → received | steady loss | steady CPU | generator CPU | contention | RSS end / peak | saturated lines/s | saturated CPU | per CPU-second | generator CPU | contention |');
    out.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const t of r.targets) {
      const s = steady(t);
      const q = sat(t);
      const sm = s ? s.runs[(s.runs.length - 1) >> 1] : undefined;
      const qm = q ? q.runs[(q.runs.length - 1) >> 1] : undefined;
      out.push(
        `| ${TARGET_LABELS[t]} | ${sm ? `${fmtRate(sm.sentRate)} → ${fmtRate(sm.receivedLines / sm.seconds)}` : '–'} | ${sm ? fmtPct(sm.loss) : '–'} | ${s ? fmtPct(s.cpu) : '–'} | ${s ? fmtPct(s.loadgenCpu) : '–'} | ${sm ? fmtPct(sm.cpuPressure) : '–'} | ${s ? `${mb(s.rssBytes)} / ${mb(s.peakRssBytes)}` : '–'} | ${q ? fmtRate(q.processedRate) : '–'} | ${q ? fmtPct(q.cpu) : '–'} | ${q ? fmtRate(q.processedPerCpuSecond) : '–'} | ${q ? fmtPct(q.loadgenCpu) : '–'} | ${qm ? fmtPct(qm.cpuPressure) : '–'} |`,
      );
    }
    out.push('');
  }

  if (r.footprints.length > 0) {
    const base = r.footprints[0].rssBytes;
    out.push('Idle footprint: RSS of a fresh Node process after importing a module (what the agent pays before any traffic; a running `plumb agent` idles at the "idle" RSS above):', '');
    out.push('| imported | RSS | over Node alone | V8 heap used |');
    out.push('|---|---|---|---|');
    for (const f of r.footprints) out.push(`| ${f.label} | ${mb(f.rssBytes)} | ${f === r.footprints[0] ? '–' : `+${mb(f.rssBytes - base)}`} | ${mb(f.heapUsedBytes)} |`);
    out.push('');
  }

  for (const { title, summary } of r.profiles) {
    out.push(`Profile — ${title} (${(summary.sampledMs / 1000).toFixed(1)} s of busy time sampled; shares of busy time, self and total including callees):`, '');
    out.push('| function | where | self | total |');
    out.push('|---|---|---|---|');
    for (const row of summary.top) out.push(`| \`${row.fn}\` | ${row.where} | ${fmtPct(row.selfPct)} | ${fmtPct(row.totalPct)} |`);
    out.push('');
    const withLines = summary.top.filter((row) => row.hotLines.length > 0).slice(0, 4);
    if (withLines.length > 0) {
      out.push(
        'Where their self time goes, by line of their own body (share of the function\'s self time). V8 inlines callees into their callers ' +
          'and does not say which file an inlined line is in, so the rest of a function\'s self time is code inlined from what it calls:',
        '',
      );
      for (const row of withLines) {
        out.push(`- \`${row.fn}\` (${fmtPct(row.selfPct)} of busy time; ${fmtPct(row.ownLinesShare)} of it on its own lines):`);
        for (const l of row.hotLines) out.push(`  - ${fmtPct(l.share)} ${l.where} \`${l.text.replace(/`/g, "'")}\``);
      }
      out.push('');
    }
    out.push(`Self time by file: ${summary.byFile.map((f) => `${f.where} ${fmtPct(f.selfPct)}`).join(' · ')}`, '');
  }
  return out.join('\n');
}
