/**
 * HostCollector against a fabricated /proc: every value is known, so the expected numbers are exact,
 * including the rates and percentages computed across two collections.
 */
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { hostname as osHostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HostCollector, HostMetricsSchema, type HostSample } from '../../../../agent/host/index.ts';
import { loadConfig } from '../../../../shared/config.ts';
import { createLogger, silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { waitFor } from '../../../helpers/wait.ts';

const STAT_1 = `cpu  100 10 50 800 20 5 5 10 0 0
cpu0 50 5 25 400 10 3 2 5 0 0
cpu1 50 5 25 400 10 2 3 5 0 0
intr 1 2 3
ctxt 1000
btime 1700000000
processes 500
procs_running 3
procs_blocked 1
`;
// Over the interval: user +60, system +20, idle +100, iowait +10, irq +5, steal +5 = 200 jiffies.
// cpu0 takes user 30, system 10, idle 50, iowait 10; cpu1 user 30, system 10, idle 50, irq 5, steal 5.
const STAT_2 = `cpu  160 10 70 900 30 10 5 15 0 0
cpu0 80 5 35 450 20 3 2 5 0 0
cpu1 80 5 35 450 10 7 3 10 0 0
intr 1 2 3
ctxt 3000
btime 1700000000
processes 520
procs_running 2
procs_blocked 0
`;

const MEMINFO = `MemTotal:       16000000 kB
MemFree:         2000000 kB
MemAvailable:    9000000 kB
Buffers:          500000 kB
Cached:          5000000 kB
SwapCached:            0 kB
SReclaimable:     300000 kB
SwapTotal:       4000000 kB
SwapFree:        3000000 kB
HugePages_Total:       0
`;

const DISKSTATS_1 = `   8       0 sda 1000 0 20000 500 2000 0 40000 1000 0 1500 1500 0 0 0 0
   8       1 sda1 900 0 18000 450 1900 0 38000 950 0 1400 1400 0 0 0 0
   7       0 loop0 10 0 20 1 0 0 0 0 0 1 1 0 0 0 0
 253       0 zram0 10 0 20 1 0 0 0 0 0 1 1 0 0 0 0
`;
// sda: +100 reads, +2000 sectors, +200 ms reading, +400 writes, +8000 sectors, +800 ms writing, 2 in flight, +2500 ms busy, +5000 weighted.
const DISKSTATS_2 = `   8       0 sda 1100 0 22000 700 2400 0 48000 1800 2 4000 6500 0 0 0 0
   8       1 sda1 1000 0 20000 650 2300 0 46000 1750 2 3900 6400 0 0 0 0
   7       0 loop0 20 0 40 2 0 0 0 0 0 2 2 0 0 0 0
 253       0 zram0 20 0 40 2 0 0 0 0 0 2 2 0 0 0 0
`;

const NET_HEADER = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
`;
const NET_1 = `${NET_HEADER}    lo:    5000      50    0    0    0     0          0         0     5000      50    0    0    0     0       0          0
  eth0:    1000      10    0    0    0     0          0         0    50000      50    0    0    0     0       0          0
`;
const NET_2 = `${NET_HEADER}    lo:    9000      90    0    0    0     0          0         0     9000      90    0    0    0     0       0          0
  eth0:  101000     110    2    1    0     0          0         0   250000     250    0    3    0     0       0          0
`;
// The agent's own network namespace, which must not be mistaken for the host's.
const NET_CONTAINER = `${NET_HEADER}  eth9:       1       1    0    0    0     0          0         0        1       1    0    0    0     0       0          0
`;

const MOUNTS = [
  '/dev/sda1 / ext4 rw,relatime 0 0',
  'proc /proc proc rw 0 0',
  'tmpfs /run tmpfs rw 0 0',
  '/dev/sdb1 /data\\040disk xfs rw 0 0',
  '/dev/sda1 /srv/bind ext4 rw 0 0',
  'overlay /var/lib/docker/overlay2/abc/merged overlay rw 0 0',
  '/dev/sdc1 /gone ext4 rw 0 0',
].join('\n');

const KIB = 1024;
const MIB = 1024 * 1024;

let dir: string;
let proc: string;
let root: string;

function write(rel: string, text: string): void {
  const path = join(proc, rel);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

function fabricate(): void {
  write('stat', STAT_1);
  write('meminfo', MEMINFO);
  write('loadavg', '1.50 1.00 0.50 3/250 12345\n');
  write('diskstats', DISKSTATS_1);
  write('1/net/dev', NET_1);
  write('net/dev', NET_CONTAINER);
  write('1/mounts', MOUNTS);
  write('sys/fs/file-nr', '2048\t0\t100000\n');
  write('sys/kernel/hostname', 'fakehost\n');
  write('uptime', '12345.67 20000.00\n');
  mkdirSync(join(proc, '42'));
  mkdirSync(join(proc, '300'));
  mkdirSync(join(proc, 'self'));
  mkdirSync(join(root, 'data disk'));
  mkdirSync(join(root, 'srv/bind'), { recursive: true });
}

function collector(yaml = '', telemetry = new Telemetry(), clock = { t: 0 }, log = silentLogger()): HostCollector {
  const config = loadConfig(HostMetricsSchema, { text: `hostProc: ${JSON.stringify(proc)}\nhostRoot: ${JSON.stringify(root)}\n${yaml}` });
  return new HostCollector(config, { telemetry, log, now: () => clock.t });
}

/** name|tag,tag → sample, tags without host: for brevity. */
function byKey(samples: HostSample[]): Map<string, HostSample> {
  const m = new Map<string, HostSample>();
  for (const s of samples) {
    const key = `${s.name}|${s.tags.filter((t) => !t.startsWith('host:')).join(',')}`;
    expect(m.has(key), `duplicate series ${key}`).toBe(false);
    m.set(key, s);
  }
  return m;
}

function value(samples: Map<string, HostSample>, key: string): number {
  const s = samples.get(key);
  if (!s) throw new Error(`no sample ${key}; have ${[...samples.keys()].join(' ')}`);
  return s.value;
}

async function readErrors(telemetry: Telemetry): Promise<Record<string, number>> {
  const m = telemetry.registry.getSingleMetric('plumb_host_read_errors_total');
  const out: Record<string, number> = {};
  for (const v of (await m!.get()).values) out[`${v.labels.source}:${v.labels.reason}`] = v.value;
  return out;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'plumb-host-'));
  proc = join(dir, 'proc');
  root = join(dir, 'root');
  mkdirSync(proc);
  mkdirSync(root);
  fabricate();
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('HostCollector on a fabricated /proc', () => {
  it('emits only stand-alone values on the first collection', async () => {
    const samples = byKey(await collector().collect());
    for (const key of samples.keys()) {
      expect(key).not.toMatch(/^system\.(cpu\.(user|idle|context_switches)|net\.|proc\.created|io\.(r_s|util|reads))/);
    }
    expect(value(samples, 'system.load.1|')).toBe(1.5);
    expect(value(samples, 'system.load.5|')).toBe(1);
    expect(value(samples, 'system.load.15|')).toBe(0.5);
    expect(value(samples, 'system.load.norm.1|')).toBe(0.75);
    expect(value(samples, 'system.cpu.cores|')).toBe(2);
    expect(value(samples, 'system.proc.threads|')).toBe(250);
    expect(value(samples, 'system.mem.size|')).toBe(16_000_000 * KIB);
    expect(value(samples, 'system.mem.available|')).toBe(9_000_000 * KIB);
    expect(value(samples, 'system.mem.used|')).toBe(7_000_000 * KIB);
    expect(value(samples, 'system.mem.free|')).toBe(2_000_000 * KIB);
    expect(value(samples, 'system.mem.cached|')).toBe(5_300_000 * KIB);
    expect(value(samples, 'system.mem.buffers|')).toBe(500_000 * KIB);
    expect(value(samples, 'system.mem.pct_used|')).toBeCloseTo(43.75, 10);
    expect(value(samples, 'system.swap.size|')).toBe(4_000_000 * KIB);
    expect(value(samples, 'system.swap.used|')).toBe(1_000_000 * KIB);
    expect(value(samples, 'system.swap.free|')).toBe(3_000_000 * KIB);
    expect(value(samples, 'system.fd.open|')).toBe(2048);
    expect(value(samples, 'system.fd.max|')).toBe(100_000);
    expect(value(samples, 'system.proc.number|')).toBe(3); // 1, 42, 300; not "self"
    expect(value(samples, 'system.proc.running|')).toBe(3);
    expect(value(samples, 'system.proc.blocked|')).toBe(1);
    expect(value(samples, 'system.uptime|')).toBe(12345.67);
    expect(value(samples, 'system.io.in_progress|device:sda')).toBe(0);
    for (const s of samples.values()) expect(s.tags[0]).toBe('host:fakehost');
  });

  it('computes exact percentages, rates and counters across two collections', async () => {
    const clock = { t: 1_000 };
    const c = collector('perCpu: true', new Telemetry(), clock);
    await c.collect();
    write('stat', STAT_2);
    write('diskstats', DISKSTATS_2);
    write('1/net/dev', NET_2);
    clock.t += 10_000;
    const samples = byKey(await c.collect());

    const cpu = { user: 30, nice: 0, system: 10, idle: 50, iowait: 5, irq: 2.5, softirq: 0, steal: 2.5 };
    for (const [state, pct] of Object.entries(cpu)) expect(value(samples, `system.cpu.${state}|cpu:total`), state).toBeCloseTo(pct, 10);
    const core0 = { user: 30, nice: 0, system: 10, idle: 50, iowait: 10, irq: 0, softirq: 0, steal: 0 };
    const core1 = { user: 30, nice: 0, system: 10, idle: 50, iowait: 0, irq: 5, softirq: 0, steal: 5 };
    for (const [state, pct] of Object.entries(core0)) expect(value(samples, `system.cpu.${state}|cpu:0`), state).toBeCloseTo(pct, 10);
    for (const [state, pct] of Object.entries(core1)) expect(value(samples, `system.cpu.${state}|cpu:1`), state).toBeCloseTo(pct, 10);
    expect(value(samples, 'system.cpu.context_switches|')).toBeCloseTo(200, 10);
    expect(samples.get('system.proc.created|')).toMatchObject({ type: 'c', value: 20 });

    const io = (name: string): number => value(samples, `system.io.${name}|device:sda`);
    expect(io('r_s')).toBeCloseTo(10, 10);
    expect(io('w_s')).toBeCloseTo(40, 10);
    expect(io('rbytes_s')).toBeCloseTo((2000 * 512) / 10, 10);
    expect(io('wbytes_s')).toBeCloseTo((8000 * 512) / 10, 10);
    expect(io('r_await')).toBeCloseTo(2, 10);
    expect(io('w_await')).toBeCloseTo(2, 10);
    expect(io('util')).toBeCloseTo(25, 10);
    expect(io('avg_q_sz')).toBeCloseTo(0.5, 10);
    expect(io('in_progress')).toBe(2);
    expect(samples.get('system.io.reads|device:sda')).toMatchObject({ type: 'c', value: 100 });
    expect(samples.get('system.io.writes|device:sda')).toMatchObject({ type: 'c', value: 400 });
    expect(samples.get('system.io.bytes_read|device:sda')).toMatchObject({ type: 'c', value: 2000 * 512 });
    expect(samples.get('system.io.bytes_written|device:sda')).toMatchObject({ type: 'c', value: 8000 * 512 });
    // Partitions, loop and zram devices are left out by default.
    expect([...samples.keys()].filter((k) => /device:(sda1|loop0|zram0)$/.test(k))).toEqual([]);

    const net = (name: string): HostSample | undefined => samples.get(`system.net.${name}|iface:eth0`);
    expect(net('bytes_rcvd')?.value).toBeCloseTo(10_000, 10);
    expect(net('bytes_sent')?.value).toBeCloseTo(20_000, 10);
    expect(net('packets_in')?.value).toBeCloseTo(10, 10);
    expect(net('packets_out')?.value).toBeCloseTo(20, 10);
    expect(net('packets_in.error')).toMatchObject({ type: 'c', value: 2 });
    expect(net('packets_in.drop')).toMatchObject({ type: 'c', value: 1 });
    expect(net('packets_out.error')).toMatchObject({ type: 'c', value: 0 });
    expect(net('packets_out.drop')).toMatchObject({ type: 'c', value: 3 });
    // lo is excluded by default; eth9 lives in the agent's own namespace, not the host's.
    expect([...samples.keys()].filter((k) => /iface:(lo|eth9)$/.test(k))).toEqual([]);

    for (const s of samples.values()) {
      expect(Number.isFinite(s.value), s.name).toBe(true);
      if (s.type === 'c') expect(s.value, s.name).toBeGreaterThanOrEqual(0);
    }
  });

  it('re-baselines a counter that went backwards instead of emitting a negative delta', async () => {
    const clock = { t: 0 };
    const c = collector('', new Telemetry(), clock);
    await c.collect();
    write('1/net/dev', NET_2);
    clock.t += 10_000;
    await c.collect();
    write('1/net/dev', NET_1); // eth0 re-created: counters restart lower
    clock.t += 10_000;
    const afterReset = byKey(await c.collect());
    expect([...afterReset.keys()].filter((k) => k.includes('iface:eth0'))).toEqual([]);
    write('1/net/dev', NET_2);
    clock.t += 10_000;
    const resumed = byKey(await c.collect());
    expect(value(resumed, 'system.net.bytes_rcvd|iface:eth0')).toBeCloseTo(10_000, 10);
  });

  it('reports real filesystems under hostRoot, leaving out pseudo, excluded, duplicate and vanished mounts', async () => {
    const telemetry = new Telemetry();
    const samples = byKey(await collector('', telemetry).collect());
    const mounts = [...new Set([...samples.keys()].filter((k) => k.startsWith('system.disk.size|')))].sort();
    expect(mounts).toEqual(['system.disk.size|device:/dev/sda1,mount:/,fstype:ext4', 'system.disk.size|device:/dev/sdb1,mount:/data_disk,fstype:xfs']);

    // "/" is hostRoot itself; compare with the filesystem the temporary directory lives on.
    const fs = statfsSync(root);
    const block = fs.frsize || fs.bsize;
    const tags = 'device:/dev/sda1,mount:/,fstype:ext4';
    expect(value(samples, `system.disk.size|${tags}`)).toBe(fs.blocks * block);
    const slack = 64 * MIB; // other writers on the same disk between the two reads
    expect(Math.abs(value(samples, `system.disk.free|${tags}`) - fs.bfree * block)).toBeLessThan(slack);
    expect(Math.abs(value(samples, `system.disk.avail|${tags}`) - fs.bavail * block)).toBeLessThan(slack);
    expect(Math.abs(value(samples, `system.disk.used|${tags}`) - (fs.blocks - fs.bfree) * block)).toBeLessThan(slack);
    const used = value(samples, `system.disk.used|${tags}`);
    const avail = value(samples, `system.disk.avail|${tags}`);
    expect(value(samples, `system.disk.pct_used|${tags}`)).toBeCloseTo((used / (used + avail)) * 100, 10);
    if (fs.files > 0) {
      expect(value(samples, `system.fs.inodes.max|${tags}`)).toBe(fs.files);
      expect(value(samples, `system.fs.inodes.used|${tags}`) + value(samples, `system.fs.inodes.free|${tags}`)).toBe(fs.files);
    }

    // /gone is listed in the mount table but not there: counted, not thrown.
    expect(await readErrors(telemetry)).toEqual({ 'statfs:missing': 1 });
  });

  it('reads the mount table of pid 1 and falls back to self when it is not readable', async () => {
    rmSync(join(proc, '1/mounts'));
    write('self/mounts', '/dev/sda1 / ext4 rw 0 0\n');
    const telemetry = new Telemetry();
    const samples = byKey(await collector('', telemetry).collect());
    expect(samples.has('system.disk.size|device:/dev/sda1,mount:/,fstype:ext4')).toBe(true);
    expect(await readErrors(telemetry)).toEqual({});
  });

  it('reports what statfs sees where one mount hides another', async () => {
    mkdirSync(join(root, 'mnt'));
    mkdirSync(join(root, 'opt'));
    write('1/mounts', ['/dev/sdd1 /mnt ext4 rw 0 0', 'tmpfs /mnt tmpfs rw 0 0', 'tmpfs /opt tmpfs rw 0 0', '/dev/sde1 /opt ext4 rw 0 0'].join('\n'));
    const keys = [...byKey(await collector().collect()).keys()].filter((k) => k.startsWith('system.disk.size|'));
    expect(keys).toEqual(['system.disk.size|device:/dev/sde1,mount:/opt,fstype:ext4']);
  });

  it('collects on start and on its interval, and starts again after a stop', async () => {
    const c = collector('interval: 1h');
    const got: HostSample[][] = [];
    for (let round = 1; round <= 2; round++) {
      c.start((samples) => got.push(samples));
      await waitFor(() => got.length === round, { what: `collection ${round}` });
      await c.stop();
    }
    expect(got[1].some((s) => s.name === 'system.load.1')).toBe(true);
  });

  it('counts and logs once a missing or garbled file, and still emits everything else', async () => {
    rmSync(join(proc, 'stat'));
    write('meminfo', 'this is not meminfo\n');
    const telemetry = new Telemetry();
    const lines: string[] = [];
    const log = createLogger({
      level: 'warn',
      destination: new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    });
    const c = collector('', telemetry, { t: 0 }, log);
    const first = byKey(await c.collect());
    const second = byKey(await c.collect());

    // /gone is in the fabricated mount table but not under hostRoot.
    expect(await readErrors(telemetry)).toEqual({ 'stat:missing': 2, 'meminfo:parse': 2, 'statfs:missing': 2 });
    expect(lines.filter((l) => l.includes('"source":"stat"'))).toHaveLength(1);
    for (const s of [first, second]) {
      expect([...s.keys()].some((k) => k.startsWith('system.cpu.') || k.startsWith('system.mem.'))).toBe(false);
      expect(value(s, 'system.load.1|')).toBe(1.5);
      expect(value(s, 'system.uptime|')).toBe(12345.67);
    }
  });

  it('survives a hostProc that does not exist at all', async () => {
    const telemetry = new Telemetry();
    const config = loadConfig(HostMetricsSchema, { text: `hostProc: ${JSON.stringify(join(dir, 'nowhere'))}` });
    const samples = await new HostCollector(config, { telemetry, log: silentLogger() }).collect();
    expect(samples).toEqual([]);
    const errors = await readErrors(telemetry);
    expect(errors['stat:missing']).toBe(1);
    expect(errors['pids:missing']).toBe(1);
  });

  it('takes the host name from config, then the kernel, then the OS', async () => {
    expect(await collector('hostname: web-7').hostname()).toBe('web-7');
    expect(await collector().hostname()).toBe('fakehost');
    rmSync(join(proc, 'sys/kernel/hostname'));
    expect(await collector().hostname()).toBe(osHostname());
  });

  it('honours configured exclusions and partitions', async () => {
    mkdirSync(join(root, 'run'));
    mkdirSync(join(root, 'var/lib/docker/overlay2/abc/merged'), { recursive: true });
    const clock = { t: 0 };
    const c = collector('excludeInterfaces: []\nexcludeDevices: ["sd*"]\npartitions: true\nexcludeFilesystems: [proc]\nexcludeMountPoints: ["/data*"]', new Telemetry(), clock);
    await c.collect();
    write('diskstats', DISKSTATS_2);
    write('1/net/dev', NET_2);
    clock.t += 10_000;
    const keys = [...byKey(await c.collect()).keys()];
    expect(keys.some((k) => k.endsWith('iface:lo'))).toBe(true);
    expect(keys.filter((k) => k.startsWith('system.io.r_s|'))).toEqual(['system.io.r_s|device:loop0', 'system.io.r_s|device:zram0']);
    const mounts = keys.filter((k) => k.startsWith('system.disk.size|')).map((k) => /mount:([^,]+)/.exec(k)![1]);
    expect(mounts.sort()).toEqual(['/', '/run', '/var/lib/docker/overlay2/abc/merged']);
  });
});

describe('HostMetricsSchema', () => {
  it('has documented defaults and rejects unknown keys', () => {
    const config = loadConfig(HostMetricsSchema, { text: '' });
    expect(config).toMatchObject({ enabled: true, interval: 10_000, hostProc: '/proc', perCpu: false, excludeInterfaces: ['lo'] });
    expect(config.excludeFilesystems).toContain('tmpfs');
    expect(() => loadConfig(HostMetricsSchema, { text: 'perCPU: true' })).toThrow(/perCPU: unknown key \(did you mean "perCpu"\?\)/);
    expect(() => loadConfig(HostMetricsSchema, { text: 'interval: soon' })).toThrow(/interval: expected a duration/);
  });
});

describe("node_exporter's names", () => {
  it('emits cumulative counters as increases, and gauges, under node_exporter names and labels', async () => {
    const clock = { t: 1_000 };
    const c = collector('', new Telemetry(), clock);
    const first = byKey(await c.collect());
    // counters need a baseline: none on the first collection
    expect([...first.keys()].filter((k) => /^node_.*_total\|/.test(k))).toEqual([]);
    expect(value(first, 'node_load1|')).toBe(1.5);
    expect(value(first, 'node_memory_MemTotal_bytes|')).toBe(16_000_000 * KIB);
    expect(value(first, 'node_memory_MemAvailable_bytes|')).toBe(9_000_000 * KIB);
    expect(first.has('node_memory_HugePages_Total_bytes|')).toBe(false);
    write('stat', STAT_2);
    write('diskstats', DISKSTATS_2);
    write('1/net/dev', NET_2);
    clock.t += 10_000;
    const samples = byKey(await c.collect());
    const cpu = (n: number, mode: string): number => value(samples, `node_cpu_seconds_total|cpu:${n},mode:${mode}`);
    expect([cpu(0, 'user'), cpu(0, 'system'), cpu(0, 'idle'), cpu(0, 'iowait'), cpu(0, 'irq'), cpu(0, 'steal')]).toEqual([0.3, 0.1, 0.5, 0.1, 0, 0]);
    expect([cpu(1, 'user'), cpu(1, 'idle'), cpu(1, 'irq'), cpu(1, 'steal'), cpu(1, 'nice'), cpu(1, 'softirq')]).toEqual([0.3, 0.5, 0.05, 0.05, 0, 0]);
    expect(samples.get('node_cpu_seconds_total|cpu:0,mode:user')?.type).toBe('c');
    expect(value(samples, 'node_context_switches_total|')).toBe(2000);
    expect(value(samples, 'node_forks_total|')).toBe(20);
    expect(value(samples, 'node_procs_running|')).toBe(2);
    expect(value(samples, 'node_disk_reads_completed_total|device:sda')).toBe(100);
    expect(value(samples, 'node_disk_writes_completed_total|device:sda')).toBe(400);
    expect(value(samples, 'node_disk_read_bytes_total|device:sda')).toBe(2000 * 512);
    expect(value(samples, 'node_disk_written_bytes_total|device:sda')).toBe(8000 * 512);
    expect(value(samples, 'node_disk_read_time_seconds_total|device:sda')).toBe(0.2);
    expect(value(samples, 'node_disk_write_time_seconds_total|device:sda')).toBe(0.8);
    expect(value(samples, 'node_disk_io_time_seconds_total|device:sda')).toBe(2.5);
    expect(value(samples, 'node_disk_io_time_weighted_seconds_total|device:sda')).toBe(5);
    expect(value(samples, 'node_disk_io_now|device:sda')).toBe(2);
    expect(value(samples, 'node_network_receive_bytes_total|device:eth0')).toBe(100_000);
    expect(value(samples, 'node_network_transmit_bytes_total|device:eth0')).toBe(200_000);
    expect(value(samples, 'node_network_receive_packets_total|device:eth0')).toBe(100);
    expect(value(samples, 'node_network_receive_errs_total|device:eth0')).toBe(2);
    expect(value(samples, 'node_network_receive_drop_total|device:eth0')).toBe(1);
    expect(value(samples, 'node_network_transmit_drop_total|device:eth0')).toBe(3);
    expect(samples.has('node_network_receive_bytes_total|device:lo')).toBe(false);
    const fs = statfsSync(root);
    const block = fs.frsize > 0 ? fs.frsize : fs.bsize;
    const avail = value(samples, 'node_filesystem_avail_bytes|device:/dev/sda1,mountpoint:/,fstype:ext4');
    expect(Math.abs(avail - fs.bavail * block)).toBeLessThan(256 * MIB);
    expect(samples.has('node_filesystem_size_bytes|device:/dev/sda1,mountpoint:/,fstype:ext4')).toBe(true);
    expect(value(samples, 'node_filefd_allocated|')).toBe(2048);
  });

  it('are left out with nodeExporter: false', async () => {
    const samples = await collector('nodeExporter: false').collect();
    expect(samples.filter((s) => s.name.startsWith('node_'))).toEqual([]);
  });
});
