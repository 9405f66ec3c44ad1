/**
 * Parsers for the /proc files host metrics read. Each takes the file's text and returns plain
 * numbers; lines it cannot read are skipped and counted in `bad` so the caller can report them.
 * Field layouts follow proc(5).
 */

export interface Parsed<T> {
  value: T;
  /** Lines that did not have the expected shape. */
  bad: number;
}

/** The eight /proc/stat CPU states in jiffies. guest and guest_nice are already inside user and nice. */
export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
}

export const CPU_STATES: readonly (keyof CpuTimes)[] = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'];

export interface Stat {
  total: CpuTimes | undefined;
  /** Per core, keyed by the N of cpuN. */
  cores: Map<number, CpuTimes>;
  contextSwitches: number | undefined;
  /** Processes and threads created since boot. */
  processesCreated: number | undefined;
  procsRunning: number | undefined;
  procsBlocked: number | undefined;
}

export function parseStat(text: string): Parsed<Stat> {
  const value: Stat = { total: undefined, cores: new Map(), contextSwitches: undefined, processesCreated: undefined, procsRunning: undefined, procsBlocked: undefined };
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split(/\s+/);
    const key = f[0];
    if (key.startsWith('cpu')) {
      const times = cpuTimes(f);
      if (times === undefined) {
        bad++;
      } else if (key === 'cpu') {
        value.total = times;
      } else {
        const n = Number(key.slice(3));
        if (Number.isInteger(n) && key.length > 3) value.cores.set(n, times);
        else bad++;
      }
      continue;
    }
    const n = Number(f[1]);
    if (key === 'ctxt') value.contextSwitches = finite(n);
    else if (key === 'processes') value.processesCreated = finite(n);
    else if (key === 'procs_running') value.procsRunning = finite(n);
    else if (key === 'procs_blocked') value.procsBlocked = finite(n);
  }
  return { value, bad };
}

function cpuTimes(f: string[]): CpuTimes | undefined {
  // Kernels before 2.6.11 lack steal; before 2.6 also iowait, irq, softirq. Missing ones are 0.
  if (f.length < 5) return undefined;
  const n = (i: number): number => (f[i] === undefined || f[i] === '' ? 0 : Number(f[i]));
  const t: CpuTimes = { user: n(1), nice: n(2), system: n(3), idle: n(4), iowait: n(5), irq: n(6), softirq: n(7), steal: n(8) };
  for (const s of CPU_STATES) if (!Number.isFinite(t[s]) || t[s] < 0) return undefined;
  return t;
}

export function cpuTotal(t: CpuTimes): number {
  return t.user + t.nice + t.system + t.idle + t.iowait + t.irq + t.softirq + t.steal;
}

/** /proc/meminfo in bytes, keyed as the kernel names them (MemTotal, SwapFree…). */
export function parseMeminfo(text: string): Parsed<Map<string, number>> {
  const value = new Map<string, number>();
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = /^([\w()]+):\s+(\d+)(?:\s+(kB))?\s*$/.exec(line);
    if (!m) {
      bad++;
      continue;
    }
    value.set(m[1], Number(m[2]) * (m[3] === 'kB' ? 1024 : 1));
  }
  return { value, bad };
}

export interface LoadAvg {
  load1: number;
  load5: number;
  load15: number;
  /** Runnable scheduling entities (threads) / all of them, from the fourth field. */
  runnable: number;
  threads: number;
}

export function parseLoadavg(text: string): Parsed<LoadAvg | undefined> {
  const f = text.trim().split(/\s+/);
  const rt = /^(\d+)\/(\d+)$/.exec(f[3] ?? '');
  const value = { load1: Number(f[0]), load5: Number(f[1]), load15: Number(f[2]), runnable: rt ? Number(rt[1]) : NaN, threads: rt ? Number(rt[2]) : NaN };
  if (![value.load1, value.load5, value.load15].every(Number.isFinite)) return { value: undefined, bad: 1 };
  return { value, bad: rt ? 0 : 1 };
}

export interface DiskStats {
  name: string;
  reads: number;
  /** Sectors in /proc/diskstats are always 512 bytes, whatever the device's own sector size. */
  bytesRead: number;
  readMs: number;
  writes: number;
  bytesWritten: number;
  writeMs: number;
  inProgress: number;
  ioMs: number;
  weightedIoMs: number;
}

export function parseDiskstats(text: string): Parsed<DiskStats[]> {
  const value: DiskStats[] = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length === 1 && f[0] === '') continue;
    // major minor name + at least 11 counters (4.18 added 4 discard fields, 5.5 two flush fields).
    if (f.length < 14) {
      bad++;
      continue;
    }
    const n = f.slice(3, 14).map(Number);
    if (!n.every(Number.isFinite)) {
      bad++;
      continue;
    }
    value.push({
      name: f[2],
      reads: n[0],
      bytesRead: n[2] * 512,
      readMs: n[3],
      writes: n[4],
      bytesWritten: n[6] * 512,
      writeMs: n[7],
      inProgress: n[8],
      ioMs: n[9],
      weightedIoMs: n[10],
    });
  }
  return { value, bad };
}

/** Partitions by the kernel's naming: sda1, vdb2, xvda1, nvme0n1p1, mmcblk0p1, md0p1, nbd0p1. */
export function isPartition(name: string): boolean {
  return /^(sd|hd|vd|xvd)[a-z]+\d+$/.test(name) || /^(nvme\d+n\d+|mmcblk\d+|md\d+|nbd\d+|loop\d+)p\d+$/.test(name);
}

export interface NetDev {
  iface: string;
  bytesIn: number;
  packetsIn: number;
  errorsIn: number;
  dropsIn: number;
  bytesOut: number;
  packetsOut: number;
  errorsOut: number;
  dropsOut: number;
}

export function parseNetDev(text: string): Parsed<NetDev[]> {
  const value: NetDev[] = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    // The two header lines have '|' and no colon.
    if (colon < 0) {
      if (line.trim() !== '' && !line.includes('|')) bad++;
      continue;
    }
    const iface = line.slice(0, colon).trim();
    const n = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (iface === '' || n.length < 16 || !n.every(Number.isFinite)) {
      bad++;
      continue;
    }
    value.push({ iface, bytesIn: n[0], packetsIn: n[1], errorsIn: n[2], dropsIn: n[3], bytesOut: n[8], packetsOut: n[9], errorsOut: n[10], dropsOut: n[11] });
  }
  return { value, bad };
}

export interface Mount {
  source: string;
  mountPoint: string;
  fsType: string;
}

/** /proc/<pid>/mounts; the kernel writes space, tab, newline and backslash in names as octal escapes. */
export function parseMounts(text: string): Parsed<Mount[]> {
  const value: Mount[] = [];
  let bad = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const f = line.split(' ');
    if (f.length < 3 || f[1] === '' || f[2] === '') {
      bad++;
      continue;
    }
    value.push({ source: unescapeOctal(f[0]), mountPoint: unescapeOctal(f[1]), fsType: f[2] });
  }
  return { value, bad };
}

function unescapeOctal(s: string): string {
  return s.includes('\\') ? s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) : s;
}

export interface FileNr {
  allocated: number;
  unused: number;
  max: number;
}

/** /proc/sys/fs/file-nr: allocated handles, allocated-but-unused (always 0 since 2.6), maximum. */
export function parseFileNr(text: string): Parsed<FileNr | undefined> {
  const n = text.trim().split(/\s+/).map(Number);
  if (n.length < 3 || !n.every(Number.isFinite)) return { value: undefined, bad: 1 };
  return { value: { allocated: n[0], unused: n[1], max: n[2] }, bad: 0 };
}

/** /proc/uptime: seconds since boot (the second field, idle seconds summed over cores, is ignored). */
export function parseUptime(text: string): Parsed<number | undefined> {
  const v = Number(text.trim().split(/\s+/)[0]);
  return Number.isFinite(v) && text.trim() !== '' ? { value: v, bad: 0 } : { value: undefined, bad: 1 };
}

function finite(n: number): number | undefined {
  return Number.isFinite(n) ? n : undefined;
}
