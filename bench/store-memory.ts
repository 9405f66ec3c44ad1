/**
 * What the collector's metric store holds per series, and what one /metrics render costs, in
 * this process (the store alone: no HTTP, no ingest):
 *
 *   npm run bench:store-memory -- --series 500000
 *   npm run bench:store-memory -- --store /tmp/old/collector/metrics/store.ts   another tree's store, same workload
 *
 * Heap per series: V8 heap used after a forced GC, before and after applying the series (ten
 * agents' batches of counters, 500 names × N hosts, as bench:memory's collector row sends),
 * divided by the series count. `--kinds mixed` adds gauges and timers (sketch summaries).
 * Render: the RSS peak above the settled process (VmHWM, reset through /proc/self/clear_refs)
 * and CPU time of one render() into a string, and of renderChunks() written chunk by chunk to
 * a sink when the store has it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { newSketch, encodeSketch } from '../shared/sketch.ts';
import type { MetricBatch, WireMetric } from '../shared/wire.ts';

interface Options {
  series: number;
  perBatch: number;
  kinds: 'counter' | 'mixed';
  store: string;
}

function options(argv: string[]): Options {
  const o: Options = { series: 500_000, perBatch: 50_000, kinds: 'counter', store: resolve(import.meta.dirname, '../collector/metrics/store.ts') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--series') o.series = Number(argv[++i]);
    else if (a === '--per-batch') o.perBatch = Number(argv[++i]);
    else if (a === '--kinds') o.kinds = argv[++i] as Options['kinds'];
    else if (a === '--store') o.store = resolve(argv[++i]);
    else if (a === '--help') {
      process.stdout.write('node --expose-gc bench/store-memory.ts [--series N] [--per-batch N] [--kinds counter|mixed] [--store PATH_TO_store.ts]\n');
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  return o;
}

const MiB = 1048576;
const gc = globalThis.gc;
if (gc === undefined) throw new Error('run with node --expose-gc (npm run bench:store-memory does)');

function settle(): number {
  for (let i = 0; i < 3; i++) gc!();
  return process.memoryUsage().heapUsed;
}

function status(): { rss: number; hwm: number } {
  const text = readFileSync('/proc/self/status', 'latin1');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** The RSS peak of `f` above the process as it stands when it starts (VmHWM reset first). */
async function peakOf(f: () => Promise<void> | void): Promise<{ peak: number; cpuMs: number }> {
  settle();
  writeFileSync('/proc/self/clear_refs', '5');
  const before = status().rss;
  const cpu = process.cpuUsage();
  await f();
  const used = process.cpuUsage(cpu);
  const peak = status().hwm - before;
  return { peak, cpuMs: (used.user + used.system) / 1000 };
}

const timerSketch = (() => {
  const s = newSketch();
  for (let v = 1; v <= 200; v++) s.accept(v * 1.7);
  return { sketch: encodeSketch(s), count: s.count, sum: s.sum, min: s.min, max: s.max };
})();

function metricOf(n: number, kinds: Options['kinds']): WireMetric {
  const tags = [`host:h${Math.floor(n / 500)}`, 'env:bench'];
  const k = kinds === 'counter' ? 0 : n % 20;
  // mixed: the statsd bench's mix, 60 % counters, 30 % timers, 10 % gauges
  if (k < 12) return { type: 'c', name: `bench.requests.m${n % 500}`, tags, value: 1 };
  if (k < 18) return { type: 'ms', name: `bench.latency.m${n % 500}`, tags, ...timerSketch };
  return { type: 'g', name: `bench.queue.m${n % 500}`, tags, value: n };
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const { MetricStore } = (await import(o.store)) as typeof import('../collector/metrics/store.ts');
  const now = Date.now();
  const base = settle();
  const store = new MetricStore({ quantiles: [0.5, 0.9, 0.99], windowMs: 600_000, seriesTtlMs: 3_600_000, mappings: [], maxSeries: 10_000_000, maxSetMembers: 1000, relativeAccuracy: 0.01, maxEvents: 100 });
  const cpu = process.cpuUsage();
  for (let b = 0; b * o.perBatch < o.series; b++) {
    const metrics: WireMetric[] = [];
    for (let i = 0; i < o.perBatch && b * o.perBatch + i < o.series; i++) metrics.push(metricOf(b * o.perBatch + i, o.kinds));
    const agent = `bench-${b}`;
    const batch: MetricBatch = { id: `${agent}:1:0`, agent, seq: 1, start: now - 10_000, end: now, metrics, events: [], serviceChecks: [] };
    store.apply(batch, now);
  }
  const applyCpu = process.cpuUsage(cpu);
  const held = settle() - base;
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  const out: string[] = [
    `store ${o.store}`,
    `${store.size} series (${o.kinds}): heap ${(held / MiB).toFixed(1)} MiB after forced GC, ${Math.round(held / store.size)} bytes/series; apply CPU ${((applyCpu.user + applyCpu.system) / 1000).toFixed(0)} ms; load ${load}`,
  ];
  const chunked = (store as unknown as { renderChunks?: (now: number) => Iterable<string> }).renderChunks;
  if (chunked !== undefined) {
    let bytes = 0;
    const streamed = await peakOf(async () => {
      const sink = new Writable({
        highWaterMark: 65536,
        write(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          setImmediate(done); // a socket takes a while to drain
        },
      });
      await pipeline(Readable.from(chunked.call(store, now + 1000)), sink);
    });
    out.push(`renderChunks() streamed to a sink (${(bytes / MiB).toFixed(1)} MiB): RSS peak +${(streamed.peak / MiB).toFixed(0)} MiB, CPU ${streamed.cpuMs.toFixed(0)} ms`);
  }
  let length = 0;
  const asString = await peakOf(() => {
    length = store.render(now + 1000).length;
  });
  out.push(`render() to one string (${(length / MiB).toFixed(1)} MiB of text): RSS peak +${(asString.peak / MiB).toFixed(0)} MiB, CPU ${asString.cpuMs.toFixed(0)} ms`);
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
