/**
 * `npm run bench:remote-write`: samples per second from one collector's metric store to a
 * long-term store, and the collector CPU each sample costs, for remote_write into
 * VictoriaMetrics and for Graphite's plaintext protocol into carbon-cache.
 *
 *   node bench/metric-sinks.ts [--sinks remote-write,graphite] [--series 20000] [--exports 20]
 *                              [--runs 3] [--shards 4] [--write]
 *
 * Each run builds, in this process, the collector's metric store and its metric sinks exactly as
 * the collector does (MetricSinks.create from the collector.metrics.sinks schema with its
 * defaults: disk queue with fsync every second, 2000 samples per remote_write request), fills the
 * store with `series` series (70% gauges, 20% counters, 10% timers exposed as a summary of three
 * quantiles plus _sum and _count: 1.4 samples per series), then makes `exports` exports back to
 * back, each stamped one second after the previous, and waits until the sink's queue is empty and
 * every sample is counted delivered. The window runs from the first export to that moment:
 * samples/s = samples delivered / window; collector CPU = this process's user+system time over
 * the window (store walk, queueing with fsync, decoding, protobuf + snappy or the Graphite lines,
 * HTTP or TCP). The store's own CPU (from /proc/<pid>/stat) is reported beside it, not counted.
 *
 * The stores are the Debian packages' binaries, started fresh for every run on free ports with
 * their own data directories (test/helpers/tsdb.ts): VictoriaMetrics single-node; carbon-cache
 * with 1-second whisper files kept 10 minutes (Graphite's "delivered" means written into
 * carbon's socket: carbon acknowledges nothing). For remote_write the run also checks
 * VictoriaMetrics holds every series. With --write, appends a section to bench/RESULTS.md.
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Value } from '@sinclair/typebox/value';
import { silentLogger } from '../shared/log.ts';
import { Telemetry } from '../shared/telemetry.ts';
import { encodeSketch, newSketch } from '../shared/sketch.ts';
import type { WireMetric } from '../shared/wire.ts';
import { MetricStore } from '../collector/metrics/store.ts';
import { MetricSinksSchema, type MetricSinksConfig } from '../collector/metrics/sinks/config.ts';
import { MetricSinks } from '../collector/metrics/sinks/export.ts';
import { startCarbon, startVictoriaMetrics } from '../test/helpers/tsdb.ts';
import { machineInfo, machineBusySeconds, processCpuSeconds } from './statsd/procfs.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const { values: args } = parseArgs({
  options: {
    sinks: { type: 'string', default: 'remote-write,graphite' },
    series: { type: 'string', default: '20000' },
    exports: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
    shards: { type: 'string', default: '4' },
    write: { type: 'boolean', default: false },
  },
});
const SERIES = Number(args.series);
const EXPORTS = Number(args.exports);
const RUNS = Number(args.runs);
const SHARDS = Number(args.shards);

interface RunResult {
  samples: number;
  seconds: number;
  cpuSeconds: number;
  storeCpuSeconds: number;
  otherCores: number;
  requests?: number;
  stored?: number;
}

function fillStore(store: MetricStore): void {
  const sketch = newSketch(0.01);
  for (let i = 1; i <= 200; i++) sketch.accept(i * 1.7);
  const encoded = encodeSketch(sketch);
  const metrics: WireMetric[] = [];
  for (let i = 0; i < SERIES; i++) {
    const tags = [`host:web-${i % 50}`, `shard:${i % 7}`];
    const r = i % 10;
    if (r < 7) metrics.push({ type: 'g', name: `bench.gauge_${i % 400}`, tags: [...tags, `n:${i}`], value: i * 0.5 });
    else if (r < 9) metrics.push({ type: 'c', name: `bench.counter_${i % 200}`, tags: [...tags, `n:${i}`], value: i });
    else metrics.push({ type: 'ms', name: `bench.timer_${i % 100}`, tags: [...tags, `n:${i}`], sketch: encoded, count: sketch.count, sum: sketch.sum, min: sketch.min, max: sketch.max });
  }
  const now = Date.now();
  store.apply({ id: 'bench:1', agent: 'bench', seq: 1, start: now - 1000, end: now, metrics, events: [], serviceChecks: [] }, now);
}

async function counterValue(t: Telemetry, name: string, labels: Record<string, string>): Promise<number> {
  const m = (await t.registry.getSingleMetric(name)?.get()) as { values: { labels: Record<string, string>; value: number }[] } | undefined;
  return m?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}

async function run(kind: string): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'plumb-bench-ms-'));
  const server = kind === 'remote-write' ? await startVictoriaMetrics() : await startCarbon({ retention: '1s:10m' });
  try {
    const sinkConfig =
      kind === 'remote-write'
        ? { remoteWrite: [{ name: 'vm', url: (server as Awaited<ReturnType<typeof startVictoriaMetrics>>).writeUrl, shards: SHARDS }] }
        : { graphite: [{ name: 'graphite', host: '127.0.0.1', port: (server as Awaited<ReturnType<typeof startCarbon>>).port }] };
    const config = Value.Decode(MetricSinksSchema, Value.Default(MetricSinksSchema, { interval: '1h', queue: { maxBytes: '2gb' }, ...sinkConfig })) as MetricSinksConfig;
    const store = new MetricStore({ quantiles: [0.5, 0.9, 0.99], windowMs: 3_600_000, seriesTtlMs: 3_600_000, mappings: [], maxSeries: 10_000_000, maxSetMembers: 100, relativeAccuracy: 0.01, maxEvents: 10 });
    fillStore(store);
    const telemetry = new Telemetry();
    const sinks = await MetricSinks.create(config, store, { telemetry, log: silentLogger(), dataDir: dir });
    sinks.start();
    const sinkName = kind === 'remote-write' ? 'vm' : 'graphite';
    const base = Math.floor(Date.now() / 1000) * 1000 - EXPORTS * 1000;
    const pid = server.pid()!;
    const storeCpu0 = processCpuSeconds(pid);
    const busy0 = machineBusySeconds();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let k = 0; k < EXPORTS; k++) await sinks.exportAt(base + k * 1000);
    const samples = await counterValue(telemetry, 'plumb_metric_export_samples_total', { sink: sinkName });
    for (;;) {
      const delivered = await counterValue(telemetry, 'plumb_sink_events_total', { sink: sinkName, outcome: 'delivered' });
      if (delivered >= samples) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const storeCpuSeconds = processCpuSeconds(pid) - storeCpu0;
    const otherCores = Math.max(0, (machineBusySeconds() - busy0 - cpuSeconds - storeCpuSeconds) / seconds);
    const dead = await counterValue(telemetry, 'plumb_sink_dead_letter_total', { sink: sinkName });
    if (dead > 0) throw new Error(`${dead} samples were dead-lettered`);
    const result: RunResult = { samples, seconds, cpuSeconds, storeCpuSeconds, otherCores };
    if (kind === 'remote-write') {
      const vm = server as Awaited<ReturnType<typeof startVictoriaMetrics>>;
      result.requests = await counterValue(telemetry, 'plumb_remote_write_requests_total', { sink: 'vm', status: '2xx' });
      await vm.flush();
      const rows = await vm.query('count({__name__=~"bench_.+"})', base / 1000 + EXPORTS - 1);
      result.stored = Number(rows[0]?.value[1] ?? 0);
      if (result.stored !== samples / EXPORTS) throw new Error(`VictoriaMetrics holds ${result.stored} series at the last export, expected ${samples / EXPORTS}`);
    }
    await sinks.stop(Date.now() + 5000);
    return result;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const fmt = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }).replace(/,/g, ' ');

async function main(): Promise<void> {
  const m = machineInfo();
  const started = new Date();
  const sections: string[] = [];
  for (const kind of args.sinks.split(',')) {
    const results: RunResult[] = [];
    for (let r = 0; r < RUNS; r++) {
      const res = await run(kind);
      results.push(res);
      console.log(`${kind} run ${r + 1}: ${fmt(res.samples / res.seconds)} samples/s, ${fmt((res.cpuSeconds / res.samples) * 1e6, 2)} µs CPU/sample, store ${fmt(res.storeCpuSeconds, 2)} s CPU, other load ${fmt(res.otherCores, 2)} cores`);
    }
    const rows = results.map(
      (res, i) =>
        `| ${i + 1} | ${fmt(res.samples)} | ${fmt(res.seconds, 2)} | ${fmt(res.samples / res.seconds)} | ${fmt(res.cpuSeconds / res.seconds, 2)} | ${fmt((res.cpuSeconds / res.samples) * 1e6, 2)} | ${fmt((res.storeCpuSeconds / res.samples) * 1e6, 2)} | ${fmt(res.otherCores, 2)} |${kind === 'remote-write' ? ` ${fmt(res.requests ?? 0)} |` : ''}`,
    );
    const rate = median(results.map((r) => r.samples / r.seconds));
    const perSample = median(results.map((r) => (r.cpuSeconds / r.samples) * 1e6));
    sections.push(
      [
        `### ${kind === 'remote-write' ? 'remote_write → VictoriaMetrics' : 'Graphite plaintext → carbon-cache'}`,
        '',
        `| run | samples | seconds | samples/s | collector CPU (cores) | collector µs CPU/sample | store µs CPU/sample | other load (cores) |${kind === 'remote-write' ? ' requests |' : ''}`,
        `|---|---|---|---|---|---|---|---|${kind === 'remote-write' ? '---|' : ''}`,
        ...rows,
        '',
        `Median: **${fmt(rate)} samples/s**, **${fmt(perSample, 2)} µs of collector CPU per sample**.`,
        '',
      ].join('\n'),
    );
  }
  const text = [
    '',
    `## Metric sinks: store → disk queue → remote_write / Graphite (\`bench/metric-sinks.ts\`)`,
    '',
    `**Date** ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC. **Machine** ${m.cpus} × ${m.cpuModel}, ${fmt(m.memTotalBytes / 2 ** 30)} GiB, Linux ${m.kernel}, Node ${m.node}; shared with other work (the "other load" column).`,
    '',
    `**Method** \`npm run bench:remote-write -- --series ${SERIES} --exports ${EXPORTS} --runs ${RUNS} --shards ${SHARDS}\`, from source. One collector's metric store and metric sinks in one process (built as the collector builds them, defaults except the queue's size), ${fmt(SERIES)} series (${fmt(SERIES * 1.4)} samples per export), ${EXPORTS} exports back to back; the window ends when every sample is counted delivered. Stores from the Debian packages, fresh for each run. Details in the file's header.`,
    '',
    ...sections,
  ].join('\n');
  console.log(text);
  if (args.write) appendFileSync(join(ROOT, 'bench', 'RESULTS.md'), text);
}

await main();
