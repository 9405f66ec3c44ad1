/**
 * The highest rate a target takes with at most `maxLoss` of its lines lost.
 *
 * Short probes find the bracket (a ×2 ladder up from `start`, then geometric bisection until the
 * bracket is narrower than `precision`); the best passing rate is then confirmed with `repeats`
 * full-length runs. When their median loss is over the limit, single full-length runs look below
 * it (a ladder down, then bisection) for the next rate to confirm.
 */
import type { Target } from './targets.ts';
import { measure, measureQuiet, median, medianRun, type Measurement, type QuietBudget } from './measure.ts';

export interface SearchOptions {
  start: number;
  /** The search never offers more than this (the generator's flat-out rate is about 10M lines/s). */
  ceiling: number;
  maxLoss: number;
  probeSeconds: number;
  confirmSeconds: number;
  repeats: number;
  /** Stop bisecting when hi/lo < 1 + precision. */
  precision: number;
  series: number;
  /** Confirmations (each at a lower rate) tried before the search gives up. */
  confirmAttempts: number;
  /** Full-length single runs allowed when looking below a failed confirmation. */
  maxLongRuns: number;
  /** Attempts per confirmation run when other work on the machine disturbs it. */
  quietAttempts: number;
  quietBudget: QuietBudget;
  /** Total time budget; past it the search confirms what it has. */
  budgetSeconds: number;
  log: (line: string) => void;
}

export interface SearchResult {
  /** Highest rate whose confirmation runs' median loss is within the limit (0 if none). */
  maxRate: number;
  /** True when even the ceiling passed: the target may take more than measured. */
  atCeiling: boolean;
  /** Every single run of the search, short probes and full-length ones. */
  probes: { rate: number; seconds: number; loss: number; targetCpu: number; cpuPressure: number }[];
  /** The confirmation runs at maxRate. */
  confirm: Measurement[];
  /** The median-loss confirmation run. */
  median: Measurement | null;
  /** Confirmation attempts that failed, with their median loss. */
  rejected: { rate: number; medianLoss: number }[];
}

const round = (r: number): number => {
  const digits = Math.pow(10, Math.max(0, Math.floor(Math.log10(r)) - 2));
  return Math.round(r / digits) * digits;
};

export async function findMaxRate(loadgen: string, target: Target, o: SearchOptions): Promise<SearchResult> {
  const deadline = Date.now() + o.budgetSeconds * 1000;
  const probes: SearchResult['probes'] = [];
  const probe = async (rate: number): Promise<boolean> => {
    const m = await measure(loadgen, target, rate, o.probeSeconds, o.series, probes.length + 1);
    probes.push({ rate, seconds: o.probeSeconds, loss: m.loss, targetCpu: m.targetCpu, cpuPressure: m.cpuPressure });
    const ok = m.loss <= o.maxLoss && m.parseErrors === 0;
    o.log(`    probe ${fmtRate(rate)}: loss ${fmtPct(m.loss)}, drops ${m.socketDrops} datagrams, cpu ${fmtPct(m.targetCpu)}, contention ${fmtPct(m.cpuPressure)} ${ok ? 'ok' : 'LOSS'}`);
    return ok;
  };

  let lo = 0;
  let hi = Infinity;
  let rate = o.start;
  // Up (or down) the ladder until the first failure is bracketed.
  while (Date.now() < deadline) {
    if (await probe(rate)) {
      lo = rate;
      if (rate >= o.ceiling) break;
      if (hi !== Infinity) break;
      rate = Math.min(o.ceiling, rate * 2);
    } else {
      hi = rate;
      if (lo > 0 || rate <= 5000) break;
      rate = round(rate / 2);
    }
  }
  const atCeilingProbe = lo >= o.ceiling;
  while (!atCeilingProbe && lo > 0 && hi !== Infinity && hi / lo > 1 + o.precision && Date.now() < deadline) {
    const mid = round(Math.sqrt(lo * hi));
    if (mid <= lo || mid >= hi) break;
    if (await probe(mid)) lo = mid;
    else hi = mid;
  }

  // Confirm with full-length runs. Short probes can miss what happens once an interval (the
  // receivers flush every 10 s), so after a failed confirmation the search goes on with single
  // full-length runs: down a ladder to a passing rate, bisect, then confirm that rate again.
  const rejected: SearchResult['rejected'] = [];
  let longRuns = 0;
  const long = async (rate: number): Promise<boolean> => {
    longRuns++;
    const m = await measureQuiet(loadgen, target, rate, o.confirmSeconds, o.series, 50 + longRuns, o.quietBudget, 1);
    probes.push({ rate, seconds: o.confirmSeconds, loss: m.loss, targetCpu: m.targetCpu, cpuPressure: m.cpuPressure });
    const ok = m.loss <= o.maxLoss && m.parseErrors === 0;
    o.log(`    run ${fmtRate(rate)} × ${o.confirmSeconds}s: loss ${fmtPct(m.loss)}, drops ${m.socketDrops} datagrams, cpu ${fmtPct(m.targetCpu)}, contention ${fmtPct(m.cpuPressure)} ${ok ? 'ok' : 'LOSS'}`);
    return ok;
  };
  let candidate = lo;
  for (let attempt = 0; attempt < o.confirmAttempts && candidate > 0; attempt++) {
    const runs: Measurement[] = [];
    for (let r = 0; r < o.repeats; r++) runs.push(await measureQuiet(loadgen, target, candidate, o.confirmSeconds, o.series, 100 + r, o.quietBudget, o.quietAttempts));
    const loss = median(runs.map((m) => m.loss));
    o.log(`    confirm ${fmtRate(candidate)} × ${o.repeats} × ${o.confirmSeconds}s: median loss ${fmtPct(loss)} [${runs.map((m) => `${fmtPct(m.loss)} (contention ${fmtPct(m.cpuPressure)})`).join(', ')}]`);
    if (loss <= o.maxLoss) {
      return { maxRate: candidate, atCeiling: atCeilingProbe && candidate >= o.ceiling, probes, confirm: runs, median: medianRun(runs, (m) => m.loss), rejected };
    }
    rejected.push({ rate: candidate, medianLoss: loss });
    // A near miss steps down a little, a clear one halves.
    let failed = candidate;
    let rate = round(candidate / (loss < 0.01 ? 1 + 2 * o.precision : 2));
    while (rate >= 5000 && longRuns < o.maxLongRuns && !(await long(rate))) {
      failed = rate;
      rate = round(rate / 2);
    }
    if (rate < 5000 || longRuns >= o.maxLongRuns) {
      candidate = rate >= 5000 ? rate : 0;
      continue;
    }
    let good = rate;
    while (failed / good > 1 + o.precision && longRuns < o.maxLongRuns) {
      const mid = round(Math.sqrt(good * failed));
      if (mid <= good || mid >= failed) break;
      if (await long(mid)) good = mid;
      else failed = mid;
    }
    candidate = good;
  }
  return { maxRate: 0, atCeiling: false, probes, confirm: [], median: null, rejected };
}

export function fmtRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(2)}M/s`;
  if (r >= 1e3) return `${(r / 1e3).toFixed(0)}k/s`;
  return `${r.toFixed(0)}/s`;
}

export function fmtPct(f: number): string {
  if (Number.isNaN(f)) return 'n/a';
  if (Math.abs(f) < 0.0001) return `${(f * 100).toFixed(3)}%`;
  if (Math.abs(f) < 0.1) return `${(f * 100).toFixed(2)}%`;
  return `${(f * 100).toFixed(1)}%`;
}
