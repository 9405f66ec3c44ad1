/**
 * Saturated throughput of the statsd hot path on one core, without the network: the load
 * generator's datagrams are fed to plumb's Aggregator in a tight loop, the interval is flushed
 * on the agent's schedule (every FLUSH_SECONDS, default 10, so the per-interval cost of
 * re-creating series is counted), and lines/s is reported per run, per wall second and per
 * CPU second (the machine may be shared; CPU seconds are what the code itself took).
 *
 *   node bench/statsd/inprocess.ts POOL_FILE SECONDS REPEATS [WARMUP_SECONDS] [FLUSH_SECONDS]
 *
 * Prints one JSON object. Run it as its own process so the harness's heap and JIT stay out of it.
 */
import { readFileSync } from 'node:fs';
import { Aggregator } from '../../agent/statsd/aggregator.ts';
import { AgentSchema, aggregatorOptions } from '../../agent/config.ts';
import { loadConfig } from '../../shared/config.ts';

const [file, secondsArg, repeatsArg, warmupArg, flushArg] = process.argv.slice(2);
const seconds = Number(secondsArg);
const repeats = Number(repeatsArg);
const warmup = Number(warmupArg ?? 1);
const flushNs = BigInt(Math.round(Number(flushArg ?? 10) * 1e9));
if (!file || !(seconds > 0 && seconds <= 120) || !(repeats >= 1 && repeats <= 20) || !(warmup >= 0) || !(flushNs > 0n)) {
  process.stderr.write('usage: node bench/statsd/inprocess.ts POOL_FILE SECONDS REPEATS [WARMUP_SECONDS] [FLUSH_SECONDS]\n');
  process.exit(2);
}

/** Each datagram in its own Buffer, as dgram delivers them. */
function readPool(path: string): Buffer[] {
  const raw = readFileSync(path);
  const out: Buffer[] = [];
  let pos = 0;
  while (pos + 4 <= raw.length) {
    const len = raw.readUInt32LE(pos);
    out.push(Buffer.from(raw.subarray(pos + 4, pos + 4 + len)));
    pos += 4 + len;
  }
  return out;
}

function newAggregator(): Aggregator {
  // The agent's defaults, straight from its schema.
  const s = loadConfig(AgentSchema, { text: '{}', file: '<defaults>' }).statsd;
  return new Aggregator(aggregatorOptions(s));
}

interface Run {
  lines: number;
  seconds: number;
  linesPerSecond: number;
  cpuSeconds: number;
  linesPerCpuSecond: number;
}

/** When the next interval ends; carried across runs like the agent's timer. */
let nextFlush = process.hrtime.bigint() + flushNs;

/** Feeds datagrams for `durationS`; returns lines aggregated and the time taken. */
function drive(agg: Aggregator, pool: Buffer[], durationS: number): Run {
  const startLines = agg.stats.lines;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(Math.round(durationS * 1e9));
  let i = 0;
  let now = t0;
  while (now < end) {
    for (let k = 0; k < 256; k++) {
      agg.ingest(pool[i]);
      if (++i === pool.length) i = 0;
    }
    now = process.hrtime.bigint();
    if (now >= nextFlush) {
      agg.flush();
      nextFlush = now + flushNs;
    }
  }
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const lines = agg.stats.lines - startLines;
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return { lines, seconds: elapsed, linesPerSecond: lines / elapsed, cpuSeconds, linesPerCpuSecond: lines / cpuSeconds };
}

const pool = readPool(file);
const agg = newAggregator();
drive(agg, pool, warmup);
const runs: Run[] = [];
for (let r = 0; r < repeats; r++) runs.push(drive(agg, pool, seconds));
const parseErrors = agg.stats.parseErrors.reduce((a, b) => a + b, 0);
process.stdout.write(
  JSON.stringify({
    datagrams: pool.length,
    poolLines: pool.reduce((n, b) => n + countLines(b), 0),
    runs,
    parseErrors,
    droppedMaxSeries: agg.stats.droppedMaxSeries,
    rssBytes: process.memoryUsage().rss,
  }) + '\n',
);

function countLines(b: Buffer): number {
  let n = b.length > 0 ? 1 : 0;
  for (let p = b.indexOf(0x0a); p >= 0; p = b.indexOf(0x0a, p + 1)) n++;
  return n;
}
