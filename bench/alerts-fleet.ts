/**
 * `npm run bench:alerts-fleet [-- --seconds N --rules N --series N]`: what fleet-wide rule
 * evaluation costs, and how fast a rule moves after a kill.
 *
 * The same rule file (p99 of a timer, a ratio of two counters, an absent rule, and an SLO, per
 * rule group; `--rules` groups) and the same load (`--series` label values per metric, one batch
 * per collector per second, each series posted to one collector chosen by hash, as agents
 * sharding over the members would) run against 1 collector and then against a fleet of 3
 * (`collector.fleet` static list, shared token, loopback). After `--seconds` the collectors'
 * /metrics give, per collector: evaluation rounds, the mean round time
 * (plumb_alerts_evaluation_duration_seconds: in a fleet this includes probing the others and
 * fetching their partial aggregates), and bytes of rule traffic (plumb_alerts_fleet_bytes_total,
 * counted by the asking side: requests sent plus answers received). Then, in the fleet, the
 * collector owning the most rules is killed (SIGKILL) and the time until every one of its rules
 * is owned by a survivor is measured. Collectors run from source (node cli/main.ts collector).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { freeTcpPorts } from '../test/helpers/ports.ts';
import { parseExposition, samplesOf } from '../test/helpers/prometheus.ts';
import { encodeSketch, newSketch } from '../shared/sketch.ts';
import type { MetricBatch, WireMetric } from '../shared/wire.ts';

const ROOT = resolve(import.meta.dirname, '..');
const WORK = join(import.meta.dirname, '.work', 'alerts-fleet');
const TOKEN = 'bench-fleet-token';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

const SECONDS = arg('seconds', 30);
const GROUPS = arg('rules', 5);
const SERIES = arg('series', 20);
const INTERVAL = arg('interval', 1000);

function rules(): string {
  const out: unknown[] = [];
  for (let g = 0; g < GROUPS; g++) {
    out.push({ alert: `LatencyHigh${g}`, metric: `bench.latency${g}`, aggregate: 'p99', window: '1m', op: '>', threshold: 1e9 });
    out.push({ alert: `ErrorsHigh${g}`, ratio: { numerator: { metric: `bench.errors${g}` }, denominator: { metric: `bench.requests${g}` } }, window: '1m', op: '>', threshold: 0.5 });
    out.push({ alert: `Missing${g}`, metric: `bench.requests${g}`, aggregate: 'count', window: '1m', absent: true });
    out.push({ slo: `bench${g}`, objective: 99, period: '1h', bad: { metric: `bench.errors${g}` }, total: { metric: `bench.requests${g}` }, alerts: [{ severity: 'page', long: '1h', short: '5m', burnRate: 14.4 }] });
  }
  return YAML.stringify({ rules: out });
}

interface Collector {
  url: string;
  proc: ChildProcess;
}

async function startCollectors(n: number, dir: string): Promise<Collector[]> {
  const ports = await freeTcpPorts(n);
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  writeFileSync(join(dir, 'rules.yaml'), rules());
  const out: Collector[] = [];
  for (let i = 0; i < n; i++) {
    const cfg = {
      collector: {
        listen: `127.0.0.1:${ports[i]}`,
        dataDir: join(dir, `c${i}`),
        alerts: { rulesFile: join(dir, 'rules.yaml'), evaluationInterval: `${INTERVAL}ms`, watch: false },
        ...(n > 1 ? { fleet: { members: urls, token: TOKEN, interval: '1s' } } : {}),
      },
    };
    writeFileSync(join(dir, `c${i}.yaml`), YAML.stringify(cfg));
    const proc = spawn(join(ROOT, 'node_modules', '.bin', 'node'), [join(ROOT, 'cli', 'main.ts'), 'collector', '--config', join(dir, `c${i}.yaml`)], { cwd: ROOT, stdio: 'ignore' });
    out.push({ url: urls[i], proc });
  }
  for (const c of out) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        if ((await fetch(`${c.url}/readyz`)).ok) break;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`${c.url} did not start`);
      await sleep(100);
    }
  }
  return out;
}

function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** One second of load: every series once, each batch to the collector its series hash to. */
function batches(n: number, seq: number): MetricBatch[] {
  const per: WireMetric[][] = Array.from({ length: n }, () => []);
  const sk = newSketch();
  for (let v = 1; v <= 100; v++) sk.accept(v);
  const sketch = encodeSketch(sk);
  for (let g = 0; g < GROUPS; g++) {
    for (let s = 0; s < SERIES; s++) {
      const tags = [`host:h${s}`];
      const metrics: WireMetric[] = [
        { type: 'ms', name: `bench.latency${g}`, tags, sketch, count: sk.count, sum: sk.sum, min: sk.min, max: sk.max },
        { type: 'c', name: `bench.requests${g}`, tags, value: 100 },
        { type: 'c', name: `bench.errors${g}`, tags, value: 1 },
      ];
      for (const m of metrics) per[hash(`${m.name}|${tags[0]}`) % n].push(m);
    }
  }
  const now = Date.now();
  return per.map((metrics, i) => ({ id: `bench-${i}:${seq}`, agent: `bench-${i}`, seq, start: now - 1000, end: now, metrics, events: [], serviceChecks: [] }));
}

async function scrape(url: string): Promise<ReturnType<typeof parseExposition>> {
  return parseExposition(await (await fetch(`${url}/metrics`)).text());
}

function sum(e: ReturnType<typeof parseExposition>, name: string): number {
  return samplesOf(e, name).reduce((n, s) => n + s.value, 0);
}

interface RunResult {
  collectors: number;
  perCollector: { rounds: number; owned: number; meanRoundMs: number; bytes: number }[];
  bytesPerRound: number;
  moveMs?: number;
}

async function runOnce(n: number): Promise<RunResult> {
  const dir = join(WORK, `n${n}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const cs = await startCollectors(n, dir);
  try {
    await sleep(3 * INTERVAL);
    const before = await Promise.all(cs.map((c) => scrape(c.url)));
    for (let seq = 1; seq <= SECONDS; seq++) {
      const t0 = Date.now();
      const bs = batches(n, seq);
      await Promise.all(
        bs.map((b, i) =>
          fetch(`${cs[i].url}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(b) }).then((r) => r.arrayBuffer()),
        ),
      );
      await sleep(Math.max(0, 1000 - (Date.now() - t0)));
    }
    const after = await Promise.all(cs.map((c) => scrape(c.url)));
    const perCollector = cs.map((_, i) => {
      const d = (name: string): number => sum(after[i], name) - sum(before[i], name);
      const rounds = d('plumb_alerts_evaluations_total');
      return {
        rounds,
        owned: sum(after[i], 'plumb_alerts_rules_owned'),
        meanRoundMs: +((d('plumb_alerts_evaluation_duration_seconds_sum') / Math.max(1, d('plumb_alerts_evaluation_duration_seconds_count'))) * 1000).toFixed(2),
        bytes: d('plumb_alerts_fleet_bytes_total'),
      };
    });
    const rounds = Math.max(...perCollector.map((p) => p.rounds));
    const result: RunResult = { collectors: n, perCollector, bytesPerRound: Math.round(perCollector.reduce((t, p) => t + p.bytes, 0) / Math.max(1, rounds)) };
    if (n > 1) {
      // kill the collector owning the most rules; time until the survivors own every rule
      const victim = perCollector.reduce((best, p, i) => (p.owned > perCollector[best].owned ? i : best), 0);
      const total = perCollector.reduce((t, p) => t + p.owned, 0);
      cs[victim].proc.kill('SIGKILL');
      const killed = Date.now();
      for (;;) {
        const owned = await Promise.all(cs.filter((_, i) => i !== victim).map(async (c) => sum(await scrape(c.url), 'plumb_alerts_rules_owned')));
        if (owned.reduce((a, b) => a + b, 0) === total) break;
        if (Date.now() - killed > 30_000) throw new Error('rules did not move within 30 s');
        await sleep(20);
      }
      result.moveMs = Date.now() - killed;
    }
    return result;
  } finally {
    for (const c of cs) c.proc.kill('SIGKILL');
  }
}

const results: RunResult[] = [];
for (const n of [1, 3]) results.push(await runOnce(n));
console.log(JSON.stringify({ seconds: SECONDS, ruleGroups: GROUPS, rules: GROUPS * 4, seriesPerMetric: SERIES, intervalMs: INTERVAL, results }, null, 2));
rmSync(WORK, { recursive: true, force: true });
