/**
 * Where a plumb process's memory goes, sampled from inside it: preload it with
 * `node --import ./bench/memory-sampler.ts …` and set MEMORY_SAMPLES to a file. Every
 * MEMORY_SAMPLE_MS (500) it appends one JSON line: VmRSS/VmHWM and thread count, the main
 * isolate's heap (used, total, per space), external and array buffers, each worker thread's heap
 * and external memory (the parser threads), and /proc/self/smaps_rollup, all in MiB.
 * SIGUSR2 writes heap snapshots of the main isolate and of every worker next to the file.
 * Used by `npm run bench:memory -- --only logs --breakdown`.
 */
import workerThreads, { Worker, type WorkerOptions } from 'node:worker_threads';
import v8 from 'node:v8';
import { appendFileSync, createWriteStream, readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { syncBuiltinESMExports } from 'node:module';

const out = process.env.MEMORY_SAMPLES;
const workers = new Set<Worker>();

/** Every Worker made after this preload (piscina's included) is tracked until it exits. */
class TrackedWorker extends Worker {
  constructor(filename: string | URL, options?: WorkerOptions) {
    super(filename, options);
    workers.add(this);
    this.once('exit', () => workers.delete(this));
  }
}
(workerThreads as { Worker: typeof Worker }).Worker = TrackedWorker;
syncBuiltinESMExports();

const mib = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;

function procStatus(): { rss: number; hwm: number; threads: number } {
  const t = readFileSync('/proc/self/status', 'utf8');
  const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? 0);
  return { rss: mib(kb('VmRSS') * 1024), hwm: mib(kb('VmHWM') * 1024), threads: kb('Threads') };
}

function smapsRollup(): Record<string, number> {
  const o: Record<string, number> = {};
  for (const line of readFileSync('/proc/self/smaps_rollup', 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m !== null) o[m[1]] = mib(Number(m[2]) * 1024);
  }
  return o;
}

async function sample(file: string): Promise<void> {
  const mu = process.memoryUsage();
  const heap = v8.getHeapStatistics();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { used: mib(s.space_used_size), size: mib(s.space_size) }]));
  const threads: Record<string, number>[] = [];
  for (const w of workers) {
    const h = await w.getHeapStatistics();
    threads.push({ used: mib(h.used_heap_size), total: mib(h.total_heap_size), external: mib(h.external_memory) });
  }
  const main = { used: mib(mu.heapUsed), total: mib(mu.heapTotal), external: mib(mu.external), arrayBuffers: mib(mu.arrayBuffers), malloced: mib(heap.malloced_memory) };
  appendFileSync(file, `${JSON.stringify({ t: Date.now(), ...procStatus(), main, spaces, workers: threads, rollup: smapsRollup() })}\n`);
}

async function snapshots(file: string): Promise<void> {
  v8.writeHeapSnapshot(`${file}.main.heapsnapshot`);
  let i = 0;
  for (const w of workers) await pipeline(await w.getHeapSnapshot(), createWriteStream(`${file}.worker${i++}.heapsnapshot`));
}

if (out !== undefined && out !== '') {
  setInterval(() => void sample(out).catch(() => undefined), Number(process.env.MEMORY_SAMPLE_MS ?? 500)).unref();
  process.on('SIGUSR2', () => void snapshots(out).catch(() => undefined));
}
