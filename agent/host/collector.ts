/**
 * Host metrics: reads /proc and statfs every interval and turns them into gauges and counters
 * for the agent's aggregator. Names, units and tags are listed in METRICS.md.
 *
 * Kernel counters only mean something as a difference, so the first collection records a
 * baseline for CPU, disk I/O, network, context switches and forks and emits only the values
 * that stand alone (load, memory, filesystems, file handles, processes, uptime). A counter that
 * goes backwards (a device re-created, a wrap) re-baselines that series for one interval.
 * A file that cannot be read or parsed is counted and logged once; it never fails a collection.
 */
import { readFile, readdir, statfs } from 'node:fs/promises';
import type { StatsFs } from 'node:fs';
import { join } from 'node:path';
import picomatch from 'picomatch';
import type { Counter } from 'prom-client';
import type { Telemetry } from '../../shared/telemetry.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { errorMessage } from '../../shared/errors.ts';
import type { HostMetricsConfig } from './config.ts';
import { resolveHostname } from './hostname.ts';
import { IntervalRunner } from './interval.ts';
import {
  CPU_STATES,
  cpuTotal,
  isPartition,
  parseDiskstats,
  parseFileNr,
  parseLoadavg,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parseStat,
  parseUptime,
  type CpuTimes,
  type DiskStats,
  type Mount,
  type NetDev,
  type Parsed,
  type Stat,
} from './procfs.ts';
import { tagValue, type HostSample } from './sample.ts';

export type { HostSample } from './sample.ts';

export interface HostContext {
  telemetry: Telemetry;
  log: Logger;
  /** Monotonic milliseconds used for per-second rates; performance.now() unless a test fixes time. */
  now?: () => number;
}

/** A problem reading one source: `missing` (ENOENT), `denied` (EACCES/EPERM), `parse`, `timeout`, `hung`, `error`. */
type Reason = 'missing' | 'denied' | 'parse' | 'timeout' | 'hung' | 'error';

interface Baseline<T> {
  at: number;
  value: T;
}

type Matcher = (s: string) => boolean;

function matcher(globs: readonly string[]): Matcher {
  return globs.length === 0 ? () => false : picomatch([...globs], { dot: true });
}

export class HostCollector {
  private readonly config: HostMetricsConfig;
  private readonly log: Logger;
  private readonly logOnce: LogOnce;
  private readonly now: () => number;
  private readonly readErrors: Counter<'source' | 'reason'>;
  private readonly collections: Counter;
  private readonly samplesOut: Counter;
  private readonly excludeFs: Set<string>;
  private readonly excludeMount: Matcher;
  private readonly excludeDevice: Matcher;
  private readonly excludeIface: Matcher;
  /** Host's own mount table and network namespace: pid 1's view when /proc is the host's mounted elsewhere. */
  private readonly mountFiles: string[];
  private readonly netDevFiles: string[];

  private host: string | undefined;
  private cpuBase: Baseline<CpuTimes> | undefined;
  private coreBase = new Map<number, CpuTimes>();
  /** Per-core times for node_cpu_seconds_total, kept whether or not perCpu is on. */
  private nodeCoreBase = new Map<number, CpuTimes>();
  private ctxtBase: Baseline<number> | undefined;
  private forksBase: number | undefined;
  private diskBase = new Map<string, Baseline<DiskStats>>();
  private netBase = new Map<string, Baseline<NetDev>>();
  /** statfs calls that have not returned yet, by mount point; a hung mount is not asked again until it answers. */
  private readonly pendingStatfs = new Map<string, Promise<unknown>>();
  private runner: IntervalRunner | undefined;

  constructor(config: HostMetricsConfig, ctx: HostContext) {
    this.config = config;
    this.log = ctx.log;
    this.logOnce = new LogOnce(ctx.log);
    this.now = ctx.now ?? (() => performance.now());
    this.readErrors = ctx.telemetry.counter('plumb_host_read_errors_total', 'Host metric sources that could not be read or parsed, by source and reason.', ['source', 'reason']);
    this.collections = ctx.telemetry.counter('plumb_host_collections_total', 'Host metric collections completed.');
    this.samplesOut = ctx.telemetry.counter('plumb_host_samples_total', 'Host metric samples handed to the aggregator.');
    this.excludeFs = new Set(config.excludeFilesystems);
    this.excludeMount = matcher(config.excludeMountPoints);
    this.excludeDevice = matcher(config.excludeDevices);
    this.excludeIface = matcher(config.excludeInterfaces);
    const own = config.hostProc.replace(/\/+$/, '') === '/proc';
    this.mountFiles = own ? ['self/mounts'] : ['1/mounts', 'self/mounts'];
    this.netDevFiles = own ? ['net/dev'] : ['1/net/dev', 'net/dev'];
  }

  /** The host:<name> tag's value, resolved once (see resolveHostname). */
  async hostname(): Promise<string> {
    this.host ??= await resolveHostname(this.config.hostname, this.config.hostProc);
    return this.host;
  }

  /** One reading of every source. Never rejects: unreadable sources are counted and left out. */
  async collect(): Promise<HostSample[]> {
    const host = await this.hostname();
    const tags = [`host:${tagValue(host)}`];
    const [stat, meminfo, loadavg, diskstats, netDev, fileNr, uptime, processes, filesystems] = await Promise.all([
      this.readParsed('stat', ['stat'], parseStat),
      this.readParsed('meminfo', ['meminfo'], parseMeminfo),
      this.readParsed('loadavg', ['loadavg'], parseLoadavg),
      this.readParsed('diskstats', ['diskstats'], parseDiskstats),
      this.readParsed('net_dev', this.netDevFiles, parseNetDev),
      this.readParsed('file_nr', ['sys/fs/file-nr'], parseFileNr),
      this.readParsed('uptime', ['uptime'], parseUptime),
      this.countProcesses(),
      this.filesystems(tags),
    ]);
    const at = this.now();
    const out: HostSample[] = [];
    let cores: number | undefined;
    if (stat) cores = this.cpu(out, tags, stat.value, at);
    if (loadavg?.value) {
      const l = loadavg.value;
      gauge(out, 'system.load.1', l.load1, tags);
      gauge(out, 'system.load.5', l.load5, tags);
      gauge(out, 'system.load.15', l.load15, tags);
      if (this.config.nodeExporter) {
        gauge(out, 'node_load1', l.load1, tags);
        gauge(out, 'node_load5', l.load5, tags);
        gauge(out, 'node_load15', l.load15, tags);
      }
      if (cores !== undefined && cores > 0) {
        gauge(out, 'system.load.norm.1', l.load1 / cores, tags);
        gauge(out, 'system.load.norm.5', l.load5 / cores, tags);
        gauge(out, 'system.load.norm.15', l.load15 / cores, tags);
      }
      if (Number.isFinite(l.threads)) gauge(out, 'system.proc.threads', l.threads, tags);
    }
    if (meminfo) this.memory(out, tags, meminfo);
    if (diskstats) this.disks(out, tags, diskstats.value, at);
    out.push(...filesystems);
    if (netDev) this.network(out, tags, netDev.value, at);
    if (fileNr?.value) {
      gauge(out, 'system.fd.open', fileNr.value.allocated - fileNr.value.unused, tags);
      gauge(out, 'system.fd.max', fileNr.value.max, tags);
      if (this.config.nodeExporter) {
        gauge(out, 'node_filefd_allocated', fileNr.value.allocated, tags);
        gauge(out, 'node_filefd_maximum', fileNr.value.max, tags);
      }
    }
    if (processes !== undefined) gauge(out, 'system.proc.number', processes, tags);
    if (stat) {
      const s = stat.value;
      const node = this.config.nodeExporter;
      if (s.procsRunning !== undefined) gauge(out, 'system.proc.running', s.procsRunning, tags);
      if (s.procsBlocked !== undefined) gauge(out, 'system.proc.blocked', s.procsBlocked, tags);
      if (node && s.procsRunning !== undefined) gauge(out, 'node_procs_running', s.procsRunning, tags);
      if (node && s.procsBlocked !== undefined) gauge(out, 'node_procs_blocked', s.procsBlocked, tags);
      if (s.processesCreated !== undefined) {
        if (this.forksBase !== undefined && s.processesCreated >= this.forksBase) {
          out.push({ name: 'system.proc.created', type: 'c', value: s.processesCreated - this.forksBase, tags });
          if (node) counter(out, 'node_forks_total', s.processesCreated - this.forksBase, tags);
        }
        this.forksBase = s.processesCreated;
      }
    }
    if (uptime?.value !== undefined) gauge(out, 'system.uptime', uptime.value, tags);
    this.collections.inc();
    this.samplesOut.inc(out.length);
    return out;
  }

  /**
   * Collects now and every interval, handing each collection to `sink`. `driven`: collects now and
   * then at each tick() instead, so the owner can collect once per interval of its own (see tick).
   */
  start(sink: (samples: HostSample[]) => void, driven = false): void {
    this.runner ??= new IntervalRunner(this.config.interval, async () => {
      const samples = await this.collect();
      try {
        sink(samples);
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'host metrics: the aggregator refused a collection');
      }
    });
    if (driven) this.runner.startDriven();
    else this.runner.start();
  }

  /** Driven mode: one collection now (skipped while the previous one has not finished). */
  tick(): void {
    this.runner?.tick();
  }

  /** Stops the schedule; resolves once a collection in progress has been handed over. */
  async stop(): Promise<void> {
    await this.runner?.stop();
  }

  // ---- CPU ---------------------------------------------------------------------------------

  /** Returns the number of cores, for the normalised load. */
  private cpu(out: HostSample[], tags: string[], stat: Stat, at: number): number | undefined {
    const cores = stat.cores.size > 0 ? stat.cores.size : undefined;
    if (cores !== undefined) gauge(out, 'system.cpu.cores', cores, tags);
    if (stat.total) {
      if (this.cpuBase) cpuPercentages(out, this.cpuBase.value, stat.total, [...tags, 'cpu:total']);
      this.cpuBase = { at, value: stat.total };
    }
    if (this.config.perCpu) {
      for (const [n, times] of stat.cores) {
        const prev = this.coreBase.get(n);
        if (prev) cpuPercentages(out, prev, times, [...tags, `cpu:${n}`]);
      }
      // Cores taken offline drop out of /proc/stat; forget them with the rest.
      this.coreBase = stat.cores;
    }
    if (this.config.nodeExporter) {
      // node_exporter's cumulative CPU seconds per core and mode: the increase since the last
      // collection (USER_HZ is 100 on Linux); the collector adds them up into a counter.
      for (const [n, times] of stat.cores) {
        const prev = this.nodeCoreBase.get(n);
        if (!prev) continue;
        for (const mode of CPU_STATES) counter(out, 'node_cpu_seconds_total', Math.max(0, times[mode] - prev[mode]) / USER_HZ, [...tags, `cpu:${n}`, `mode:${mode}`]);
      }
      this.nodeCoreBase = stat.cores;
    }
    if (stat.contextSwitches !== undefined) {
      const prev = this.ctxtBase;
      if (prev && stat.contextSwitches >= prev.value && at > prev.at) {
        gauge(out, 'system.cpu.context_switches', ((stat.contextSwitches - prev.value) * 1000) / (at - prev.at), tags);
        if (this.config.nodeExporter) counter(out, 'node_context_switches_total', stat.contextSwitches - prev.value, tags);
      }
      this.ctxtBase = { at, value: stat.contextSwitches };
    }
    return cores;
  }

  // ---- memory ------------------------------------------------------------------------------

  private memory(out: HostSample[], tags: string[], meminfo: Parsed<Map<string, number>>): void {
    const m = meminfo.value;
    const total = m.get('MemTotal');
    const free = m.get('MemFree');
    if (total === undefined || free === undefined) {
      // Bad lines were reported already; one problem per file and collection is enough.
      if (meminfo.bad === 0) this.problem('meminfo', 'parse', undefined, 'MemTotal or MemFree missing');
      return;
    }
    const buffers = m.get('Buffers') ?? 0;
    // The page cache plus reclaimable slab: what `free` reports as cache.
    const cached = (m.get('Cached') ?? 0) + (m.get('SReclaimable') ?? 0);
    // Kernels before 3.14 have no MemAvailable; free + buffers + cache is the classic estimate.
    const available = m.get('MemAvailable') ?? free + buffers + cached;
    gauge(out, 'system.mem.size', total, tags);
    gauge(out, 'system.mem.available', available, tags);
    gauge(out, 'system.mem.used', total - available, tags);
    gauge(out, 'system.mem.free', free, tags);
    gauge(out, 'system.mem.cached', cached, tags);
    gauge(out, 'system.mem.buffers', buffers, tags);
    if (total > 0) gauge(out, 'system.mem.pct_used', ((total - available) / total) * 100, tags);
    const swapTotal = m.get('SwapTotal');
    const swapFree = m.get('SwapFree');
    if (swapTotal !== undefined && swapFree !== undefined) {
      gauge(out, 'system.swap.size', swapTotal, tags);
      gauge(out, 'system.swap.free', swapFree, tags);
      gauge(out, 'system.swap.used', swapTotal - swapFree, tags);
    }
    if (this.config.nodeExporter) {
      for (const key of NODE_MEMINFO_BYTES) {
        const v = m.get(key);
        if (v !== undefined) gauge(out, `node_memory_${key}_bytes`, v, tags);
      }
    }
  }

  // ---- block devices -----------------------------------------------------------------------

  private disks(out: HostSample[], tags: string[], stats: DiskStats[], at: number): void {
    const next = new Map<string, Baseline<DiskStats>>();
    for (const d of stats) {
      if (this.excludeDevice(d.name) || (!this.config.partitions && isPartition(d.name))) continue;
      const t = [...tags, `device:${tagValue(d.name)}`];
      gauge(out, 'system.io.in_progress', d.inProgress, t);
      if (this.config.nodeExporter) gauge(out, 'node_disk_io_now', d.inProgress, t);
      const prev = this.diskBase.get(d.name);
      next.set(d.name, { at, value: d });
      if (!prev || at <= prev.at) continue;
      const p = prev.value;
      const dReads = d.reads - p.reads;
      const dWrites = d.writes - p.writes;
      const dRead = d.bytesRead - p.bytesRead;
      const dWritten = d.bytesWritten - p.bytesWritten;
      const dReadMs = d.readMs - p.readMs;
      const dWriteMs = d.writeMs - p.writeMs;
      const dIoMs = d.ioMs - p.ioMs;
      const dWeighted = d.weightedIoMs - p.weightedIoMs;
      // The kernel's 32-bit fields wrap on busy devices; a negative step is one lost interval.
      if (Math.min(dReads, dWrites, dRead, dWritten, dReadMs, dWriteMs, dIoMs, dWeighted) < 0) continue;
      const ms = at - prev.at;
      const perSecond = 1000 / ms;
      gauge(out, 'system.io.r_s', dReads * perSecond, t);
      gauge(out, 'system.io.w_s', dWrites * perSecond, t);
      gauge(out, 'system.io.rbytes_s', dRead * perSecond, t);
      gauge(out, 'system.io.wbytes_s', dWritten * perSecond, t);
      gauge(out, 'system.io.r_await', dReads > 0 ? dReadMs / dReads : 0, t);
      gauge(out, 'system.io.w_await', dWrites > 0 ? dWriteMs / dWrites : 0, t);
      gauge(out, 'system.io.util', Math.min(100, (dIoMs / ms) * 100), t);
      gauge(out, 'system.io.avg_q_sz', dWeighted / ms, t);
      counter(out, 'system.io.reads', dReads, t);
      counter(out, 'system.io.writes', dWrites, t);
      counter(out, 'system.io.bytes_read', dRead, t);
      counter(out, 'system.io.bytes_written', dWritten, t);
      if (this.config.nodeExporter) {
        counter(out, 'node_disk_reads_completed_total', dReads, t);
        counter(out, 'node_disk_writes_completed_total', dWrites, t);
        counter(out, 'node_disk_read_bytes_total', dRead, t);
        counter(out, 'node_disk_written_bytes_total', dWritten, t);
        counter(out, 'node_disk_read_time_seconds_total', dReadMs / 1000, t);
        counter(out, 'node_disk_write_time_seconds_total', dWriteMs / 1000, t);
        counter(out, 'node_disk_io_time_seconds_total', dIoMs / 1000, t);
        counter(out, 'node_disk_io_time_weighted_seconds_total', dWeighted / 1000, t);
      }
    }
    this.diskBase = next;
  }

  // ---- network -----------------------------------------------------------------------------

  private network(out: HostSample[], tags: string[], ifaces: NetDev[], at: number): void {
    const next = new Map<string, Baseline<NetDev>>();
    for (const n of ifaces) {
      if (this.excludeIface(n.iface)) continue;
      const prev = this.netBase.get(n.iface);
      next.set(n.iface, { at, value: n });
      if (!prev || at <= prev.at) continue;
      const p = prev.value;
      const d = {
        bytesIn: n.bytesIn - p.bytesIn,
        bytesOut: n.bytesOut - p.bytesOut,
        packetsIn: n.packetsIn - p.packetsIn,
        packetsOut: n.packetsOut - p.packetsOut,
        errorsIn: n.errorsIn - p.errorsIn,
        errorsOut: n.errorsOut - p.errorsOut,
        dropsIn: n.dropsIn - p.dropsIn,
        dropsOut: n.dropsOut - p.dropsOut,
      };
      if (Object.values(d).some((v) => v < 0)) continue;
      const perSecond = 1000 / (at - prev.at);
      const t = [...tags, `iface:${tagValue(n.iface)}`];
      gauge(out, 'system.net.bytes_rcvd', d.bytesIn * perSecond, t);
      gauge(out, 'system.net.bytes_sent', d.bytesOut * perSecond, t);
      gauge(out, 'system.net.packets_in', d.packetsIn * perSecond, t);
      gauge(out, 'system.net.packets_out', d.packetsOut * perSecond, t);
      counter(out, 'system.net.packets_in.error', d.errorsIn, t);
      counter(out, 'system.net.packets_out.error', d.errorsOut, t);
      counter(out, 'system.net.packets_in.drop', d.dropsIn, t);
      counter(out, 'system.net.packets_out.drop', d.dropsOut, t);
      if (this.config.nodeExporter) {
        const nt = [...tags, `device:${tagValue(n.iface)}`];
        counter(out, 'node_network_receive_bytes_total', d.bytesIn, nt);
        counter(out, 'node_network_transmit_bytes_total', d.bytesOut, nt);
        counter(out, 'node_network_receive_packets_total', d.packetsIn, nt);
        counter(out, 'node_network_transmit_packets_total', d.packetsOut, nt);
        counter(out, 'node_network_receive_errs_total', d.errorsIn, nt);
        counter(out, 'node_network_transmit_errs_total', d.errorsOut, nt);
        counter(out, 'node_network_receive_drop_total', d.dropsIn, nt);
        counter(out, 'node_network_transmit_drop_total', d.dropsOut, nt);
      }
    }
    this.netBase = next;
  }

  // ---- filesystems -------------------------------------------------------------------------

  private async filesystems(tags: string[]): Promise<HostSample[]> {
    const mounts = await this.readParsed('mounts', this.mountFiles, parseMounts);
    if (!mounts) return [];
    const chosen = this.realMounts(mounts.value);
    const results = await Promise.all(chosen.map((m) => this.statfs(m)));
    const out: HostSample[] = [];
    chosen.forEach((m, i) => {
      const s = results[i];
      if (!s) return;
      const block = s.frsize > 0 ? s.frsize : s.bsize;
      const total = s.blocks * block;
      const free = s.bfree * block;
      const avail = s.bavail * block;
      const used = total - free;
      const t = [...tags, `device:${tagValue(m.source)}`, `mount:${tagValue(m.mountPoint)}`, `fstype:${tagValue(m.fsType)}`];
      gauge(out, 'system.disk.size', total, t);
      gauge(out, 'system.disk.used', used, t);
      gauge(out, 'system.disk.free', free, t);
      gauge(out, 'system.disk.avail', avail, t);
      // As df computes Use%: blocks reserved for root count neither as used nor as available.
      if (used + avail > 0) gauge(out, 'system.disk.pct_used', (used / (used + avail)) * 100, t);
      // Some filesystems (btrfs, vfat) have no fixed inode table and report 0.
      if (s.files > 0) {
        gauge(out, 'system.fs.inodes.max', s.files, t);
        gauge(out, 'system.fs.inodes.used', s.files - s.ffree, t);
        gauge(out, 'system.fs.inodes.free', s.ffree, t);
        gauge(out, 'system.fs.inodes.pct_used', ((s.files - s.ffree) / s.files) * 100, t);
      }
      if (this.config.nodeExporter) {
        const nt = [...tags, `device:${tagValue(m.source)}`, `mountpoint:${tagValue(m.mountPoint)}`, `fstype:${tagValue(m.fsType)}`];
        gauge(out, 'node_filesystem_size_bytes', total, nt);
        gauge(out, 'node_filesystem_free_bytes', free, nt);
        gauge(out, 'node_filesystem_avail_bytes', avail, nt);
        gauge(out, 'node_filesystem_files', s.files, nt);
        gauge(out, 'node_filesystem_files_free', s.ffree, nt);
      }
    });
    return out;
  }

  /** Disks an operator would list: excluded types and mount points out, each device once (bind mounts repeat it). */
  private realMounts(mounts: Mount[]): Mount[] {
    // A later mount on the same point hides the earlier one, and statfs sees the later one.
    const visible = new Map<string, number>();
    mounts.forEach((m, i) => visible.set(m.mountPoint, i));
    const seenDevices = new Set<string>();
    const chosen: Mount[] = [];
    mounts.forEach((m, i) => {
      if (visible.get(m.mountPoint) !== i) return;
      if (this.excludeFs.has(m.fsType) || this.excludeMount(m.mountPoint)) return;
      if (m.source.startsWith('/')) {
        if (seenDevices.has(m.source)) return;
        seenDevices.add(m.source);
      }
      chosen.push(m);
    });
    return chosen;
  }

  private async statfs(m: Mount): Promise<StatsFs | undefined> {
    if (this.pendingStatfs.has(m.mountPoint)) {
      this.problem('statfs', 'hung', m.mountPoint, 'a mount has not answered statfs since an earlier collection; skipped until it does');
      return undefined;
    }
    const path = this.config.hostRoot === undefined ? m.mountPoint : join(this.config.hostRoot, m.mountPoint);
    const call = statfs(path, { bigint: false });
    this.pendingStatfs.set(m.mountPoint, call);
    const settle = (): void => {
      this.pendingStatfs.delete(m.mountPoint);
    };
    call.then(settle, settle);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.config.statfsTimeout);
    });
    try {
      const r = await Promise.race([call, timeout]);
      if (r === 'timeout') {
        this.problem('statfs', 'timeout', m.mountPoint, `statfs did not answer within ${this.config.statfsTimeout}ms (a hung network mount?)`);
        return undefined;
      }
      return r;
    } catch (err) {
      // A mount that vanished between reading the table and statfs is routine (containers come and go).
      this.problem('statfs', reasonOf(err), m.mountPoint, errorMessage(err));
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- processes ---------------------------------------------------------------------------

  private async countProcesses(): Promise<number | undefined> {
    try {
      let n = 0;
      for (const name of await readdir(this.config.hostProc)) if (isPid(name)) n++;
      return n;
    } catch (err) {
      this.problem('pids', reasonOf(err), this.config.hostProc, errorMessage(err));
      return undefined;
    }
  }

  // ---- reading and reporting ---------------------------------------------------------------

  /** Reads the first of `files` (relative to hostProc) that exists and parses it; undefined when none can be read. */
  private async readParsed<T>(source: string, files: string[], parse: (text: string) => Parsed<T>): Promise<Parsed<T> | undefined> {
    let lastErr: unknown;
    for (const f of files) {
      const path = join(this.config.hostProc, f);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        lastErr = err;
        continue;
      }
      const parsed = parse(text);
      if (parsed.bad > 0) this.problem(source, 'parse', path, `${parsed.bad} line(s) not in the expected format`);
      return parsed;
    }
    this.problem(source, reasonOf(lastErr), join(this.config.hostProc, files[0]), errorMessage(lastErr));
    return undefined;
  }

  private problem(source: string, reason: Reason, path: string | undefined, detail: string): void {
    this.readErrors.inc({ source, reason });
    this.logOnce.warn(`host:${source}:${reason}:${path ?? ''}`, { source, reason, path, detail }, `host metrics: cannot read ${source}; its metrics are left out`);
  }
}

/** Clock ticks per second of /proc/stat's CPU times (USER_HZ; 100 on every Linux architecture plumb runs on). */
const USER_HZ = 100;

/** /proc/meminfo fields exposed as node_memory_<field>_bytes, as node_exporter names them. */
const NODE_MEMINFO_BYTES = [
  'MemTotal',
  'MemFree',
  'MemAvailable',
  'Buffers',
  'Cached',
  'SwapCached',
  'SwapTotal',
  'SwapFree',
  'Active',
  'Inactive',
  'Dirty',
  'Writeback',
  'AnonPages',
  'Mapped',
  'Shmem',
  'Slab',
  'SReclaimable',
  'SUnreclaim',
  'Committed_AS',
] as const;

function cpuPercentages(out: HostSample[], prev: CpuTimes, cur: CpuTimes, tags: string[]): void {
  // iowait may step backwards on tickless kernels; a negative step counts as none.
  const delta = {} as CpuTimes;
  for (const s of CPU_STATES) delta[s] = Math.max(0, cur[s] - prev[s]);
  const total = cpuTotal(delta);
  if (total <= 0) return;
  for (const s of CPU_STATES) gauge(out, `system.cpu.${s}`, (delta[s] / total) * 100, tags);
}

function gauge(out: HostSample[], name: string, value: number, tags: string[]): void {
  out.push({ name, type: 'g', value, tags });
}

function counter(out: HostSample[], name: string, value: number, tags: string[]): void {
  out.push({ name, type: 'c', value, tags });
}

function isPid(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

function reasonOf(err: unknown): Reason {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return 'missing';
  if (code === 'EACCES' || code === 'EPERM') return 'denied';
  return 'error';
}
