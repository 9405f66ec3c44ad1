/**
 * Heap per series of the statsd aggregator, in process, after a forced GC; and the CPU per line
 * of its hot path. The datagrams are the C load generator's line mix (bench/loadgen.c: 60 %
 * counters, 30 % timers, 5 % gauges, 5 % sets, one `h:` tag), built here in JavaScript.
 *
 *   node --expose-gc bench/statsd/series-heap.ts [--series 100000] [--lines 2000000] [--hot-series 1000] [--hot-seconds 5]
 *       [--module agent/statsd/aggregator.ts[,OTHER_COPY.ts]]
 *
 * Several --module paths (e.g. a copy of the previous aggregator) have their hot path timed in
 * the same process, alternating in rounds, so an A/B shares the machine's moment: CPU ns per line
 * at 1000 series. The heap is measured for the first module only (run once per module): bytes
 * per series after ingesting LINES lines (forced GC), then with the flushed batch's wire objects
 * (the aggregator released), and the CPU of the flush and its gzipped JSON. Also A/B: CPU per
 * line while the SERIES series are new (the slow path once per series).
 */
import { resolve } from 'node:path';
import os from 'node:os';
import { AgentSchema, aggregatorOptions } from '../../agent/config.ts';
import { loadConfig } from '../../shared/config.ts';
import { encodeJson } from '../../shared/json-stream.ts';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const SERIES = Number(opt('series', '100000'));
const LINES = Number(opt('lines', String(SERIES * 20)));
const HOT_SERIES = Number(opt('hot-series', '1000'));
const HOT_SECONDS = Number(opt('hot-seconds', '5'));
const MODULES = opt('module', 'agent/statsd/aggregator.ts').split(',');

let seed = 42;
function rnd(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed;
}

function line(i: number): string {
  const kind = i % 20;
  const host = i % 16;
  const r = rnd();
  if (kind < 12) return `api.req.t${i}:${1 + (r % 9)}|c|#h:${host}`;
  if (kind < 18) return `api.req.t${i}:${r % 1000}|ms|#h:${host}`;
  if (kind === 18) return `api.req.t${i}:${r % 10000}|g|#h:${host}`;
  return `api.req.t${i}:u${r % 1000}|s|#h:${host}`;
}

/** ~1.4 KB datagrams of lines over `series` series, `lines` lines in all. */
function datagrams(series: number, lines: number): Buffer[] {
  const out: Buffer[] = [];
  let text = '';
  for (let n = 0; n < lines; n++) {
    // every series at least once, then uniformly
    const l = line(n < series ? n : rnd() % series);
    if (text.length + l.length + 1 > 1400) {
      out.push(Buffer.from(text));
      text = '';
    }
    text = text.length === 0 ? l : `${text}\n${l}`;
  }
  if (text.length > 0) out.push(Buffer.from(text));
  return out;
}

interface Agg {
  ingest(buf: Buffer): void;
  flush(now?: number): { metrics: unknown[] };
  readonly seriesCount: number;
  stats: { lines: number };
}
type AggCtor = new (o: ReturnType<typeof aggregatorOptions>) => Agg;

const options = aggregatorOptions(loadConfig(AgentSchema, { text: '{}', file: '<defaults>' }).statsd);
options.maxSeries = Math.max(options.maxSeries, SERIES);

function heap(): { used: number; external: number } {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return { used: m.heapUsed, external: m.external };
}

const big = datagrams(SERIES, LINES);
const hot = datagrams(HOT_SERIES, 200_000);
const MiB = 1048576;

const load = (): string => os.loadavg().map((l) => l.toFixed(1)).join(' ');
const ctors: AggCtor[] = [];
for (const path of MODULES) ctors.push(((await import(resolve(path))) as { Aggregator: AggCtor }).Aggregator);

// CPU per line at HOT_SERIES series, the modules alternating in rounds so the machine's load
// falls on each alike; the interval is flushed every pass over the datagrams.
const hots = ctors.map((C) => new C(options));
const hotRun = (h: Agg, seconds: number): { lines: number; cpuNs: number } => {
  const cpu0 = process.cpuUsage();
  const lines0 = h.stats.lines;
  const end = performance.now() + seconds * 1000;
  let i = 0;
  while (performance.now() < end) {
    for (let k = 0; k < 64; k++) {
      h.ingest(hot[i]);
      if (++i === hot.length) {
        i = 0;
        h.flush();
      }
    }
  }
  const cpu = process.cpuUsage(cpu0);
  return { lines: h.stats.lines - lines0, cpuNs: (cpu.user + cpu.system) * 1000 };
};
for (const h of hots) hotRun(h, 1);
const totals = hots.map(() => ({ lines: 0, cpuNs: 0, rounds: [] as number[] }));
const ROUNDS = 5;
for (let r = 0; r < ROUNDS; r++) {
  hots.forEach((h, k) => {
    const x = hotRun(h, HOT_SECONDS / ROUNDS);
    totals[k].lines += x.lines;
    totals[k].cpuNs += x.cpuNs;
    totals[k].rounds.push(+(x.cpuNs / x.lines).toFixed(1));
  });
}
MODULES.forEach((m, k) => {
  process.stdout.write(JSON.stringify({ module: m, hotSeries: HOT_SERIES, cpuNsPerLine: +(totals[k].cpuNs / totals[k].lines).toFixed(1), rounds: totals[k].rounds, load: load() }) + '\n');
});
hots.length = 0;

// CPU per line while SERIES series are new: the slow path (decode, intern, allocate) once per
// series, then the cache. Alternating, two rounds each.
const cold = MODULES.map(() => ({ lines: 0, cpuNs: 0 }));
for (let r = 0; r < 2; r++) {
  ctors.forEach((C, k) => {
    const agg = new C(options);
    const cpu0 = process.cpuUsage();
    for (const d of big) agg.ingest(d);
    const cpu = process.cpuUsage(cpu0);
    cold[k].lines += agg.stats.lines;
    cold[k].cpuNs += (cpu.user + cpu.system) * 1000;
  });
}
MODULES.forEach((m, k) => {
  process.stdout.write(JSON.stringify({ module: m, series: SERIES, lines: LINES, ingestCpuNsPerLine: +(cold[k].cpuNs / cold[k].lines).toFixed(1), load: load() }) + '\n');
});

// Heap of the first module only: a second one would be measured over the first's leftovers.
{
  const base = heap();
  const agg = new ctors[0](options);
  for (const d of big) agg.ingest(d);
  const filled = heap();
  const cpu0 = process.cpuUsage();
  const batch = agg.flush();
  const wire = heap();
  // as the forwarder writes it (shared/json-stream.ts), and as one string for its size
  const gz = await encodeJson(batch, true, 1);
  const c = process.cpuUsage(cpu0);
  const jsonLength = JSON.stringify(batch).length;
  process.stdout.write(
    JSON.stringify({
      module: MODULES[0],
      series: SERIES,
      lines: agg.stats.lines,
      heapBytesPerSeries: Math.round((filled.used - base.used) / SERIES),
      heapFilledMiB: +((filled.used - base.used) / MiB).toFixed(1),
      externalFilledMiB: +((filled.external - base.external) / MiB).toFixed(1),
      heapWireBatchMiB: +((wire.used - base.used) / MiB).toFixed(1),
      jsonMiB: +(jsonLength / MiB).toFixed(1),
      gzipMiB: +(gz.length / MiB).toFixed(1),
      flushCpuMs: Math.round((c.user + c.system) / 1000),
      load: load(),
    }) + '\n',
  );
}
