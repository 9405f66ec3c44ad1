/**
 * HostCollector on this machine's /proc, cross-checked against the same files read here with
 * code of the test's own and against `free` and `df`. Other processes keep running between our
 * read and theirs, so moving values are compared with the two readings around ours as bounds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HostCollector, HostMetricsSchema, type HostSample } from '../../../../agent/host/index.ts';
import { loadConfig } from '../../../../shared/config.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { waitFor } from '../../../helpers/wait.ts';

const linux = existsSync('/proc/stat') && existsSync('/proc/meminfo');
const hasFree = spawnSync('free', ['-V']).status === 0;
const hasDf = spawnSync('df', ['--version']).status === 0;
const MIB = 1024 * 1024;
/** Memory and disk space other processes may take or give back between two reads. */
const SLACK = 64 * MIB;

function collector(yaml = ''): HostCollector {
  return new HostCollector(loadConfig(HostMetricsSchema, { text: yaml }), { telemetry: new Telemetry(), log: silentLogger() });
}

function find(samples: HostSample[], name: string, tag?: string): HostSample | undefined {
  return samples.find((s) => s.name === name && (tag === undefined || s.tags.includes(tag)));
}

function get(samples: HostSample[], name: string, tag?: string): number {
  const s = find(samples, name, tag);
  if (!s) throw new Error(`no ${name}${tag ? ` {${tag}}` : ''}`);
  return s.value;
}

/** The test's own reading of /proc/meminfo, in bytes. */
function meminfo(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const [key, rest] = line.split(':');
    if (rest) out[key] = parseInt(rest, 10) * (rest.includes('kB') ? 1024 : 1);
  }
  return out;
}

function loadavg(): number[] {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
}

function cpuLines(): string[] {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('cpu'));
}

/** `free -b`: the Mem and Swap rows by column name. */
function free(): { mem: Record<string, number>; swap: Record<string, number> } {
  const lines = execFileSync('free', ['-b', '-w'], { encoding: 'utf8' }).trim().split('\n');
  const header = lines[0].trim().split(/\s+/);
  const row = (prefix: string): Record<string, number> => {
    const cells = lines
      .find((l) => l.startsWith(prefix))!
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return Object.fromEntries(cells.map((v, i) => [header[i], v]));
  };
  return { mem: row('Mem:'), swap: row('Swap:') };
}

/** `df -B1` by mount point (mount point last, so spaces in it survive). */
function df(): Map<string, { size: number; used: number; avail: number }> {
  const out = new Map<string, { size: number; used: number; avail: number }>();
  const text = execFileSync('df', ['-B1', '--output=size,used,avail,target'], { encoding: 'utf8' });
  for (const line of text.trim().split('\n').slice(1)) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(.+)$/.exec(line);
    if (m) out.set(m[4], { size: Number(m[1]), used: Number(m[2]), avail: Number(m[3]) });
  }
  return out;
}

function between(v: number, a: number, b: number, slack = 0): void {
  expect(v).toBeGreaterThanOrEqual(Math.min(a, b) - slack);
  expect(v).toBeLessThanOrEqual(Math.max(a, b) + slack);
}

describe.skipIf(!linux)('HostCollector on this machine', () => {
  it('matches /proc read independently', async () => {
    const memBefore = meminfo();
    const loadBefore = loadavg();
    const uptimeBefore = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    const samples = await collector().collect();
    const memAfter = meminfo();
    const loadAfter = loadavg();
    const uptimeAfter = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);

    expect(get(samples, 'system.mem.size')).toBe(memAfter.MemTotal);
    expect(get(samples, 'system.swap.size')).toBe(memAfter.SwapTotal);
    between(get(samples, 'system.mem.available'), memBefore.MemAvailable, memAfter.MemAvailable, SLACK);
    between(get(samples, 'system.mem.free'), memBefore.MemFree, memAfter.MemFree, SLACK);
    between(get(samples, 'system.swap.used'), memBefore.SwapTotal - memBefore.SwapFree, memAfter.SwapTotal - memAfter.SwapFree, SLACK);
    for (const [i, n] of [1, 5, 15].entries()) between(get(samples, `system.load.${n}`), loadBefore[i], loadAfter[i]);
    between(get(samples, 'system.uptime'), uptimeBefore, uptimeAfter);

    const [, , max] = readFileSync('/proc/sys/fs/file-nr', 'utf8').trim().split(/\s+/).map(Number);
    expect(get(samples, 'system.fd.max')).toBe(max);
    const cores = cpuLines().filter((l) => /^cpu\d/.test(l)).length;
    expect(get(samples, 'system.cpu.cores')).toBe(cores);
    const pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length;
    between(get(samples, 'system.proc.number'), pids, pids, 50);
    for (const s of samples) expect(s.tags[0]).toMatch(/^host:./);
  });

  it.skipIf(!hasFree)('agrees with free -b', async () => {
    const before = free();
    const samples = await collector().collect();
    const after = free();
    expect(get(samples, 'system.mem.size')).toBe(after.mem.total);
    expect(get(samples, 'system.swap.size')).toBe(after.swap.total);
    between(get(samples, 'system.mem.used'), before.mem.used, after.mem.used, SLACK);
    between(get(samples, 'system.mem.available'), before.mem.available, after.mem.available, SLACK);
    between(get(samples, 'system.mem.free'), before.mem.free, after.mem.free, SLACK);
    between(get(samples, 'system.mem.buffers'), before.mem.buffers, after.mem.buffers, SLACK);
    between(get(samples, 'system.mem.cached'), before.mem.cache, after.mem.cache, SLACK);
    between(get(samples, 'system.swap.used'), before.swap.used, after.swap.used, SLACK);
  });

  it.skipIf(!hasDf)('agrees with df -B1 on every mount both report, and always on /', async () => {
    // "/" may be an overlay in a container, which the defaults leave out; this config keeps only "/".
    const rootOnly = collector('excludeFilesystems: []\nexcludeMountPoints: ["/?*", "/?*/**"]');
    const before = df();
    const samples = [...(await collector().collect()), ...(await rootOnly.collect())];
    const after = df();
    const mounts = new Set(samples.filter((s) => s.name === 'system.disk.size').map((s) => s.tags.find((t) => t.startsWith('mount:'))!.slice(6)));
    expect(mounts.has('/')).toBe(true);
    let compared = 0;
    for (const mount of mounts) {
      const a = before.get(mount);
      const b = after.get(mount);
      if (!a || !b) continue;
      const tag = `mount:${mount}`;
      expect(get(samples, 'system.disk.size', tag)).toBe(b.size);
      between(get(samples, 'system.disk.used', tag), a.used, b.used, SLACK);
      between(get(samples, 'system.disk.avail', tag), a.avail, b.avail, SLACK);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(1);
  });

  it('gives CPU percentages that sum to 100, in total and per core', async () => {
    const c = collector('perCpu: true');
    const first = await c.collect();
    expect(find(first, 'system.cpu.user')).toBeUndefined(); // a baseline, not a percentage
    const baseline = cpuLines();
    // Every core's line must have moved, or that core has no interval to report.
    await waitFor(() => cpuLines().every((l, i) => l !== baseline[i]), { what: 'every CPU line in /proc/stat to advance' });
    const samples = await c.collect();
    const byCpu = new Map<string, number>();
    for (const s of samples) {
      if (!s.name.startsWith('system.cpu.') || s.name === 'system.cpu.cores' || s.name === 'system.cpu.context_switches') continue;
      expect(s.value).toBeGreaterThanOrEqual(0);
      expect(s.value).toBeLessThanOrEqual(100);
      const cpu = s.tags.find((t) => t.startsWith('cpu:'))!;
      byCpu.set(cpu, (byCpu.get(cpu) ?? 0) + s.value);
    }
    expect(byCpu.size).toBe(1 + get(samples, 'system.cpu.cores'));
    for (const [cpu, sum] of byCpu) expect(sum, cpu).toBeCloseTo(100, 6);
  });
});
