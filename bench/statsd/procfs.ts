/**
 * What the kernel says about the benchmark's processes and sockets: CPU and memory of a pid,
 * receive-queue length and drops of a UDP port, UDP error counters, and machine facts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';

const TICKS_PER_SECOND = 100; // USER_HZ; /proc/<pid>/stat counts in these on Linux

/** User + system CPU seconds of a process (all its threads). */
export function processCpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // The command name may contain spaces and ')': fields start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/**
 * CPU seconds of a process by thread name (/proc/<pid>/task/<tid>/comm): Node names its main
 * thread MainThread, worker_threads WorkerThread, V8's GC and compiler helpers V8Worker and the
 * libuv pool libuv-worker. Threads that ended are not counted (the process total still has them).
 */
export function threadCpuSeconds(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let name: string;
    let text: string;
    try {
      name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'latin1').trim();
      text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
    } catch {
      continue; // the thread ended meanwhile
    }
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  }
  return out;
}

export interface Memory {
  rssBytes: number;
  peakRssBytes: number;
}

export function processMemory(pid: number): Memory {
  const text = readFileSync(`/proc/${pid}/status`, 'latin1');
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
}

export interface UdpSocketState {
  /** Bytes waiting in the receive queue. */
  rxQueue: number;
  /** Datagrams dropped because the receive buffer was full. */
  drops: number;
}

/** The receive queue and drop count of the IPv4 UDP socket bound to `port` (/proc/net/udp). */
export function udpSocketState(port: number): UdpSocketState | null {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const lines = readFileSync('/proc/net/udp', 'latin1').split('\n');
  for (let i = 1; i < lines.length; i++) {
    const cols = lines[i].trim().split(/\s+/);
    if (cols.length < 13 || !cols[1].endsWith(hexPort)) continue;
    const rx = cols[4].split(':')[1];
    return { rxQueue: parseInt(rx, 16), drops: Number(cols[12]) };
  }
  return null;
}

/** The kernel's UDP counters for the whole host (`Udp:` rows of /proc/net/snmp). */
export function udpSnmp(): { rcvbufErrors: number; inErrors: number; inDatagrams: number } {
  const rows = readFileSync('/proc/net/snmp', 'latin1')
    .split('\n')
    .filter((l) => l.startsWith('Udp: '));
  const names = rows[0].split(/\s+/).slice(1);
  const values = rows[1].split(/\s+/).slice(1).map(Number);
  const get = (n: string): number => values[names.indexOf(n)] ?? 0;
  return { rcvbufErrors: get('RcvbufErrors'), inErrors: get('InErrors'), inDatagrams: get('InDatagrams') };
}

/** Busy CPU seconds of the whole machine (all cores) from /proc/stat. */
export function machineBusySeconds(): number {
  const first = readFileSync('/proc/stat', 'latin1').split('\n')[0];
  const v = first.split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait
  const busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] ?? 0);
  return busy / TICKS_PER_SECOND;
}

/**
 * Microseconds during which at least one runnable task waited for a CPU (PSI, /proc/pressure/cpu
 * `some` total), or null without PSI. Its growth over a run says how much the run was contended.
 */
export function cpuPressureMicros(): number | null {
  try {
    const m = /^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'latin1'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The receive buffer the kernel granted to the UDP socket on `port`, as `ss` reports it (skmem rb). */
export function udpReceiveBuffer(port: number): number | null {
  try {
    const out = execFileSync('ss', ['-uamnH', `sport = :${port}`], { encoding: 'utf8', timeout: 5000 });
    const m = /rb(\d+)/.exec(out);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  kernel: string;
  node: string;
  rmemDefault: number;
  rmemMax: number;
  memTotalBytes: number;
}

export function machineInfo(): MachineInfo {
  const sysctl = (name: string): number => Number(readFileSync(`/proc/sys/net/core/${name}`, 'latin1').trim());
  return {
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    kernel: os.release(),
    node: process.version,
    rmemDefault: sysctl('rmem_default'),
    rmemMax: sysctl('rmem_max'),
    memTotalBytes: os.totalmem(),
  };
}
