/**
 * One measured run: offer a rate to a target for a fixed time, then read what the target
 * processed (its own counters), what the kernel dropped (per socket and host-wide), and the CPU
 * of the target, of the load generator and of everything else on the machine.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Target, TargetCounts } from './targets.ts';
import { runLoadgen } from './loadgen.ts';
import { cpuPressureMicros, machineBusySeconds, processCpuSeconds, processMemory, udpSnmp, udpSocketState } from './procfs.ts';

export interface Measurement {
  target: string;
  /** Offered lines/s (0 = flat out). */
  offeredRate: number;
  seconds: number;
  sentLines: number;
  sentDatagrams: number;
  sendErrors: number;
  /** Lines/s the generator actually sent. */
  sentRate: number;
  /** Lines the target counted as processed, start to fully drained. */
  receivedLines: number;
  parseErrors: number;
  /** 1 - received/sent. */
  loss: number;
  /** Lines/s the target processed while the generator was sending (the saturated figure). */
  processedRate: number;
  /** Datagrams dropped on the target's socket, from its counter or /proc/net/udp. */
  socketDrops: number;
  /** Host-wide UDP RcvbufErrors delta (/proc/net/snmp): includes anyone else's sockets. */
  kernelRcvbufErrors: number;
  /** Fraction of one core used by the target while the generator was sending. */
  targetCpu: number;
  loadgenCpu: number;
  /**
   * Busy CPU of everything else on the machine, in cores: /proc/stat (tick-sampled) minus the
   * target and the generator (precise), so only a rough figure.
   */
  otherCpu: number;
  /** Fraction of the run during which some task waited for a CPU (PSI); NaN without PSI. */
  cpuPressure: number;
  rssBytes: number;
  peakRssBytes: number;
  maxLateUs: number;
}

/** Waits until the target's receive queue is empty and its line count stops moving. */
async function drain(target: Target, deadlineMs: number): Promise<TargetCounts> {
  const end = Date.now() + deadlineMs;
  let last = await target.counts();
  while (Date.now() < end) {
    await sleep(150);
    const now = await target.counts();
    const queue = udpSocketState(target.port)?.rxQueue ?? 0;
    if (queue === 0 && now.lines === last.lines) return now;
    last = now;
  }
  return last;
}

export async function measure(loadgen: string, target: Target, rate: number, seconds: number, series: number, seed = 1): Promise<Measurement> {
  const before = await drain(target, 10_000);
  const snmp0 = udpSnmp();
  const machine0 = machineBusySeconds();
  const psi0 = cpuPressureMicros();
  const cpu0 = processCpuSeconds(target.pid);
  const t0 = performance.now();
  const gen = await runLoadgen(loadgen, { port: target.port, rate, seconds, series, seed });
  const cpu1 = processCpuSeconds(target.pid);
  const machine1 = machineBusySeconds();
  const psi1 = cpuPressureMicros();
  const wall = (performance.now() - t0) / 1000;
  const atEnd = await target.counts();
  const after = await drain(target, 15_000);
  const snmp1 = udpSnmp();
  const mem = processMemory(target.pid);

  const targetCpuS = cpu1 - cpu0;
  const loadgenCpuS = gen.userSeconds + gen.systemSeconds;
  const received = after.lines - before.lines;
  return {
    target: target.name,
    offeredRate: rate,
    seconds,
    sentLines: gen.lines,
    sentDatagrams: gen.datagrams,
    sendErrors: gen.sendErrors,
    sentRate: gen.lines / gen.elapsed,
    receivedLines: received,
    parseErrors: after.parseErrors - before.parseErrors,
    loss: gen.lines > 0 ? 1 - received / gen.lines : 0,
    processedRate: (atEnd.lines - before.lines) / gen.elapsed,
    socketDrops: after.socketDrops - before.socketDrops,
    kernelRcvbufErrors: snmp1.rcvbufErrors - snmp0.rcvbufErrors,
    targetCpu: targetCpuS / wall,
    loadgenCpu: loadgenCpuS / wall,
    otherCpu: Math.max(0, machine1 - machine0 - targetCpuS - loadgenCpuS) / wall,
    cpuPressure: psi0 !== null && psi1 !== null ? (psi1 - psi0) / 1e6 / wall : NaN,
    rssBytes: mem.rssBytes,
    peakRssBytes: mem.peakRssBytes,
    maxLateUs: gen.maxLateUs,
  };
}

/** How contended the CPUs are: PSI `some` as a fraction of time, or (without PSI) busy cores / 2. */
async function contention(windowMs: number): Promise<number> {
  const p0 = cpuPressureMicros();
  const b0 = machineBusySeconds();
  const t = performance.now();
  await sleep(windowMs);
  const wall = (performance.now() - t) / 1000;
  const p1 = cpuPressureMicros();
  if (p0 !== null && p1 !== null) return (p1 - p0) / 1e6 / wall;
  return (machineBusySeconds() - b0) / wall / 2;
}

/**
 * Waits (up to `maxWaitMs`) until the CPUs are not contended (at most `limit`, see contention)
 * over half a second, so a run doesn't start in the middle of someone else's burst.
 */
export async function waitForQuiet(maxWaitMs: number, limit: number): Promise<number> {
  const end = Date.now() + maxWaitMs;
  let c = Infinity;
  while (Date.now() < end) {
    c = await contention(500);
    if (c <= limit) break;
  }
  return c;
}

function disturbance(m: Measurement): number {
  return Number.isNaN(m.cpuPressure) ? m.otherCpu / 2 : m.cpuPressure;
}

/** Time the whole benchmark may spend waiting for quiet and re-running disturbed runs. */
export interface QuietBudget {
  remainingMs: number;
}

/**
 * A run that counts: started on a quiet machine when possible, and repeated (up to `attempts`)
 * when the CPUs were contended for more than `maxPressure` of it; the least disturbed is kept.
 * Waiting and repeating draw on `budget`; once it is spent, runs are taken as they come.
 */
export async function measureQuiet(loadgen: string, target: Target, rate: number, seconds: number, series: number, seed: number, budget: QuietBudget, attempts = 3, maxPressure = 0.1): Promise<Measurement> {
  let best: Measurement | null = null;
  for (let a = 0; a < attempts; a++) {
    if (a > 0 && budget.remainingMs < seconds * 1000) break;
    const t = Date.now();
    if (budget.remainingMs > 0) await waitForQuiet(Math.min(5000, budget.remainingMs), 0.05);
    const m = await measure(loadgen, target, rate, seconds, series, seed + a * 1000);
    budget.remainingMs -= a > 0 ? Date.now() - t : Date.now() - t - seconds * 1000;
    if (best === null || disturbance(m) < disturbance(best)) best = m;
    if (disturbance(m) <= maxPressure) break;
  }
  return best as Measurement;
}

export function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** The run whose `key` is the median (for odd counts), so its other fields stay consistent. */
export function medianRun<T>(runs: T[], key: (r: T) => number): T {
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  return sorted[(sorted.length - 1) >> 1];
}
