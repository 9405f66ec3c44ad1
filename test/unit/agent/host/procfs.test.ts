import { describe, expect, it } from 'vitest';
import { isPartition, parseDiskstats, parseLoadavg, parseMeminfo, parseMounts, parseNetDev, parseStat } from '../../../../agent/host/procfs.ts';

describe('procfs parsers', () => {
  it('reads CPU lines of old kernels without steal as zero steal', () => {
    const { value, bad } = parseStat('cpu  10 1 5 100 2 0 0\ncpu0 10 1 5 100 2 0 0\nctxt 7\n');
    expect(bad).toBe(0);
    expect(value.total).toEqual({ user: 10, nice: 1, system: 5, idle: 100, iowait: 2, irq: 0, softirq: 0, steal: 0 });
    expect(value.cores.get(0)?.idle).toBe(100);
    expect(value.contextSwitches).toBe(7);
  });

  it('counts malformed lines instead of failing', () => {
    expect(parseStat('cpu x y\n').bad).toBe(1);
    const mem = parseMeminfo('MemTotal: 100 kB\ngarbage\nHugePages_Total:       0\n');
    expect(mem.bad).toBe(1);
    expect(mem.value.get('MemTotal')).toBe(102_400);
    expect(mem.value.get('HugePages_Total')).toBe(0);
    expect(parseLoadavg('nonsense').value).toBeUndefined();
  });

  it('reads diskstats of every kernel generation and converts sectors to bytes', () => {
    const text = [
      '   8       0 sda 1 0 8 3 4 0 16 6 0 7 9', // 11 counters (before 4.18)
      '   8      16 sdb 1 0 8 3 4 0 16 6 0 7 9 0 0 0 0 0 0', // 17 counters (5.5+)
      '   8       1 sda1 1 2 3 4', // 2.6.25-era partition line
    ].join('\n');
    const { value, bad } = parseDiskstats(text);
    expect(bad).toBe(1);
    expect(value.map((d) => d.name)).toEqual(['sda', 'sdb']);
    expect(value[0]).toMatchObject({ reads: 1, bytesRead: 4096, readMs: 3, writes: 4, bytesWritten: 8192, writeMs: 6, inProgress: 0, ioMs: 7, weightedIoMs: 9 });
  });

  it('tells partitions from whole devices by kernel naming', () => {
    for (const p of ['sda1', 'vdb12', 'xvda1', 'nvme0n1p2', 'mmcblk0p1', 'md0p1']) expect(isPartition(p), p).toBe(true);
    for (const d of ['sda', 'vda', 'xvdf', 'nvme0n1', 'mmcblk0', 'dm-0', 'md0', 'sr0']) expect(isPartition(d), d).toBe(false);
  });

  it('reads /proc/net/dev including the old format without a space after the colon', () => {
    const text = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '  eth0:123 4 5 6 0 0 0 0 789 10 11 12 0 0 0 0',
    ].join('\n');
    const { value, bad } = parseNetDev(text);
    expect(bad).toBe(0);
    expect(value).toEqual([{ iface: 'eth0', bytesIn: 123, packetsIn: 4, errorsIn: 5, dropsIn: 6, bytesOut: 789, packetsOut: 10, errorsOut: 11, dropsOut: 12 }]);
  });

  it('decodes the octal escapes the kernel writes in mount points', () => {
    const { value } = parseMounts('/dev/sdb1 /mnt/my\\040disk\\134x ext4 rw 0 0\n');
    expect(value[0]).toEqual({ source: '/dev/sdb1', mountPoint: '/mnt/my disk\\x', fsType: 'ext4' });
  });
});
