/**
 * What one fleet costs: bytes between collectors and the share of series forwarded, agents that
 * route (list the collectors) against agents behind one load-balanced URL, three collectors
 * against one; and how long an agent batch takes to be acknowledged.
 *
 *   node bench/fleet.ts [--agents 4] [--series 1000] [--intervals 10]
 *
 * Collectors run in this process (PlumbCollector, real HTTP on loopback, journals on a temp dir,
 * fsync batch). Each simulated agent's interval is one MetricBatch of `series` series (half
 * counters, half timers with a 20-value sketch), built and gzip-posted the way the agent posts it.
 * "agents route": each interval is split by rendezvous over the collectors and each part posted to
 * its owner (agent/forward/shard.ts). "one URL": the whole batch goes to the next collector in
 * turn (a kernel-balanced Service). Bytes between collectors are plumb_fleet_forwarded_bytes_total
 * (gzip bodies) summed over the fleet, per interval of all agents.
 */
import { gzipSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PlumbCollector } from '../collector/collector.ts';
import { loadPlumbConfig } from '../cli/config.ts';
import { Telemetry } from '../shared/telemetry.ts';
import { silentLogger } from '../shared/log.ts';
import { newSketch, encodeSketch } from '../shared/sketch.ts';
import { shardInterval } from '../agent/forward/shard.ts';
import type { MetricBatch, WireMetric } from '../shared/wire.ts';

const { values } = parseArgs({ options: { agents: { type: 'string', default: '4' }, series: { type: 'string', default: '1000' }, intervals: { type: 'string', default: '10' } } });
const AGENTS = Number(values.agents);
const SERIES = Number(values.series);
const INTERVALS = Number(values.intervals);

async function fleet(n: number): Promise<{ collectors: PlumbCollector[]; telemetry: Telemetry[]; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'plumb-bench-fleet-'));
  const ports = Array.from({ length: n }, (_, i) => 20_000 + Math.floor(Math.random() * 20_000) + i);
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const collectors: PlumbCollector[] = [];
  const telemetry: Telemetry[] = [];
  for (let i = 0; i < n; i++) {
    const fleetYaml = n > 1 ? `, fleet: { members: ${JSON.stringify(urls)}, interval: 1s }` : '';
    const config = loadPlumbConfig({ text: `collector: { listen: "127.0.0.1:${ports[i]}", dataDir: "${join(dir, String(i))}"${fleetYaml} }` });
    const t = new Telemetry();
    const c = new PlumbCollector(config.collector, { telemetry: t, log: silentLogger() });
    await c.start();
    collectors.push(c);
    telemetry.push(t);
  }
  return { collectors, telemetry, dir };
}

function interval(agent: number, seq: number): MetricBatch {
  const metrics: WireMetric[] = [];
  for (let s = 0; s < SERIES; s++) {
    const tags = [`env:prod`, `route:/api/r${s % 50}`, `pod:web-${s}`];
    if (s % 2 === 0) {
      metrics.push({ type: 'c', name: 'bench.requests', tags, value: agent + 1 });
    } else {
      const sk = newSketch();
      for (let k = 0; k < 20; k++) sk.accept(((k * 37 + s + agent) % 200) + 1);
      metrics.push({ type: 'ms', name: 'bench.latency', tags, sketch: encodeSketch(sk), count: sk.count, sum: sk.sum, min: sk.min, max: sk.max });
    }
  }
  return { id: `bench-agent-${agent}:${seq}`, agent: `bench-agent-${agent}`, seq, start: seq * 10_000, end: (seq + 1) * 10_000, metrics, events: [], serviceChecks: [] };
}

async function post(url: string, batch: MetricBatch): Promise<number> {
  const body = gzipSync(Buffer.from(JSON.stringify(batch)));
  const started = performance.now();
  const res = await fetch(`${url}/v1/metrics`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
  await res.arrayBuffer();
  return performance.now() - started;
}

async function sumOf(t: Telemetry, name: string): Promise<number> {
  let n = 0;
  for (const line of (await t.metrics()).split('\n')) if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function run(name: string, n: number, route: 'agents' | 'one-url'): Promise<void> {
  const { collectors, telemetry, dir } = await fleet(n);
  const urls = collectors.map((c) => c.url);
  const latencies: number[] = [];
  let next = 0;
  let agentBytes = 0;
  for (let seq = 1; seq <= INTERVALS; seq++) {
    await Promise.all(
      Array.from({ length: AGENTS }, async (_, a) => {
        const batch = interval(a, seq);
        if (route === 'agents') {
          const parts = shardInterval(batch, urls);
          const posts = parts.map((p, i) => (p.metrics.length === 0 ? null : { url: urls[i], b: { ...batch, id: `${batch.id}:${i}`, ...p } })).filter((x) => x !== null);
          for (const p of posts) agentBytes += gzipSync(Buffer.from(JSON.stringify(p.b))).length;
          latencies.push(Math.max(...(await Promise.all(posts.map((p) => post(p.url, p.b))))));
        } else {
          agentBytes += gzipSync(Buffer.from(JSON.stringify(batch))).length;
          latencies.push(await post(urls[next++ % urls.length], batch));
        }
      }),
    );
  }
  let forwardedBytes = 0;
  let forwarded = 0;
  let kept = 0;
  for (const t of telemetry) {
    forwardedBytes += await sumOf(t, 'plumb_fleet_forwarded_bytes_total');
    forwarded += await sumOf(t, 'plumb_fleet_forwarded_series_total');
    kept += await sumOf(t, 'plumb_fleet_kept_series_total');
  }
  const series = collectors.reduce((x, c) => x + c.store.size, 0);
  console.log(
    JSON.stringify({
      run: name,
      collectors: n,
      agents: AGENTS,
      seriesPerAgent: SERIES,
      intervals: INTERVALS,
      seriesHeld: series,
      forwardedShare: n > 1 ? Number((forwarded / (forwarded + kept)).toFixed(3)) : 0,
      bytesBetweenCollectorsPerInterval: Math.round(forwardedBytes / INTERVALS),
      agentBytesPerInterval: Math.round(agentBytes / INTERVALS),
      ackMsMedian: Number(median(latencies).toFixed(1)),
    }),
  );
  for (const c of collectors) await c.stop();
  rmSync(dir, { recursive: true, force: true });
}

await run('one collector', 1, 'one-url');
await run('3 collectors, agents route', 3, 'agents');
await run('3 collectors, one URL', 3, 'one-url');
