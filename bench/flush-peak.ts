/**
 * What one statsd flush costs in memory on top of the aggregator's steady state, in one process:
 *
 *   node --expose-gc --optimize-for-size bench/flush-peak.ts [--series 100000] [--lines 20] [--collectors 1] [--modes stream,wire,stream,wire]
 *
 * A real agent (PlumbAgent, spool on, gzip on, as configured by default) is fed lines straight
 * into its aggregator with the mix of bench/loadgen.c (60 % counters, 30 % timers, 5 % gauges,
 * 5 % sets; `--lines` per series and interval), while a stand-in collector in a child process
 * answers 200. Before each flush the heap is collected and VmHWM reset (/proc/self/clear_refs);
 * during the flush memoryUsage() is sampled at every turn of the event loop; after it, the
 * forwarder drains. Reported per flush: RSS before, VmHWM during the flush and its send, and
 * the highest heap used / external / array buffers sampled, each as the rise over "before".
 *
 * Modes, one flush each, in the order given: `stream` is the agent's usual hand-off (each series
 * written as JSON into its collector's gzipped body); `wire` is the path taken while someone taps
 * the aggregator (a tap is opened for that flush): the interval as wire objects, handed to the
 * forwarder as an object. The two back to back in one process are the A/B of the flush's cost.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PlumbAgent } from '../agent/agent.ts';
import { loadPlumbConfig } from '../cli/config.ts';
import { Telemetry } from '../shared/telemetry.ts';
import { silentLogger } from '../shared/log.ts';

const MiB = 1048576;
const argv = process.argv.slice(2);
const arg = (name: string, d: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const SERIES = arg('series', 100_000);
const LINES = arg('lines', 20);
const modesAt = argv.indexOf('--modes');
const MODES = (modesAt >= 0 ? argv[modesAt + 1] : 'stream,wire,stream,wire').split(',');
const COLLECTORS = arg('collectors', 1);

const maybeGc = (globalThis as { gc?: () => void }).gc;
if (maybeGc === undefined) throw new Error('run with --expose-gc');
const gc: () => void = maybeGc;

function status(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** The stand-in collectors: a child process answering 200 to every POST, bodies read and dropped. */
async function standIns(n: number): Promise<{ urls: string[]; stop: () => void }> {
  const code = `const http=require('node:http');const ports=[];let left=${n};for(let i=0;i<${n};i++){const s=http.createServer((q,r)=>{q.resume();q.on('end',()=>r.writeHead(200,{'content-type':'application/json'}).end('{}'))});s.listen(0,'127.0.0.1',()=>{ports.push(s.address().port);if(--left===0)console.log(ports.join(','))})}`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  return { urls: line.toString().trim().split(',').map((p) => `http://127.0.0.1:${p}`), stop: () => child.kill() };
}

/** One interval: LINES lines per series in ~1.4 KB datagrams, the series in a shuffled order. */
function feed(agent: PlumbAgent, round: number): void {
  let dgram = '';
  let seed = 12345 + round;
  const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  for (let k = 0; k < LINES; k++) {
    for (let i = 0; i < SERIES; i++) {
      const kind = i % 20;
      const r = rnd();
      const host = i % 50;
      const line =
        kind < 12
          ? `api.req.t${i}:${1 + (r % 9)}|c|#h:${host}`
          : kind < 18
            ? `api.req.t${i}:${r % 1000}|ms|#h:${host}`
            : kind === 18
              ? `api.req.t${i}:${r % 10000}|g|#h:${host}`
              : `api.req.t${i}:u${r % 1000}|s|#h:${host}`;
      dgram += dgram.length === 0 ? line : `\n${line}`;
      if (dgram.length > 1400) {
        agent.aggregator.ingest(Buffer.from(dgram));
        dgram = '';
      }
    }
  }
  if (dgram.length > 0) agent.aggregator.ingest(Buffer.from(dgram));
}

async function main(): Promise<void> {
  const collectors = await standIns(COLLECTORS);
  const dataDir = mkdtempSync(join(os.tmpdir(), 'plumb-flush-peak-'));
  const config = loadPlumbConfig({
    text: `agent:
  dataDir: ${JSON.stringify(dataDir)}
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h, maxSeries: ${SERIES * 2} }
  host: { enabled: false }
  traces: { zipkin: { enabled: false } }
  forward: { collectors: ${JSON.stringify(collectors.urls)}, healthCheckInterval: 200ms }
`,
    env: {},
  });
  const agent = new PlumbAgent(config.agent, { telemetry: new Telemetry(), log: silentLogger() });
  await agent.start();
  const rows: string[] = [];
  try {
    for (let f = 0; f < MODES.length; f++) {
      const mode = MODES[f];
      feed(agent, f);
      const tap = mode === 'wire' ? agent.taps.tap('aggregator', { limit: 1 }) : null;
      gc();
      await sleep(50);
      gc();
      const before = process.memoryUsage();
      writeFileSync('/proc/self/clear_refs', '5');
      const rssBefore = status('VmRSS');
      let top = { heapUsed: 0, external: 0, arrayBuffers: 0, rss: 0 };
      let sampling = true;
      const sample = (): void => {
        const m = process.memoryUsage();
        top = { heapUsed: Math.max(top.heapUsed, m.heapUsed), external: Math.max(top.external, m.external), arrayBuffers: Math.max(top.arrayBuffers, m.arrayBuffers), rss: Math.max(top.rss, m.rss) };
        if (sampling) setImmediate(sample);
      };
      sample();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await agent.flush();
      if (tap !== null) agent.taps.release(tap);
      const flushMs = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const end = Date.now() + 30_000;
      while (agent.forwarder.queuedBatches > 0 && Date.now() < end) await sleep(5);
      sampling = false;
      const hwm = status('VmHWM');
      const rise = (a: number, b: number): string => ((a - b) / MiB).toFixed(1);
      rows.push(
        `flush ${f + 1} (${mode}): RSS before ${(rssBefore / MiB).toFixed(1)}, VmHWM ${(hwm / MiB).toFixed(1)} (+${rise(hwm, rssBefore)}); heap used before ${(before.heapUsed / MiB).toFixed(1)}, top +${rise(top.heapUsed, before.heapUsed)}; external +${rise(top.external, before.external)}, array buffers +${rise(top.arrayBuffers, before.arrayBuffers)}; flush ${flushMs.toFixed(0)} ms, CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms`,
      );
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    }
  } finally {
    await agent.stop(5000);
    collectors.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  process.stdout.write(`series ${SERIES}, ${LINES} lines each, ${COLLECTORS} collector(s), load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n${rows.join('\n')}\n`);
}

await main();
