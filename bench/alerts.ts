/**
 * How the alert engine's cost grows with rules and series.
 *
 *   node --expose-gc bench/alerts.ts            (Node 24: node_modules/.bin/node)
 *
 * Each scenario loads rules, feeds 5 minutes of 10 s batches for every series (the windows are
 * full), then times evaluation rounds (median of 5) and the feeding itself (per observation).
 * Rules get distinct windows so nothing is shared between them: the worst case. Rule kinds
 * rotate through rate of a counter, avg of a gauge and p99 of a timer (sketch merges). Heap is
 * measured after a forced GC when --expose-gc is given.
 */
import { silentLogger } from '../shared/log.ts';
import { newSketch } from '../shared/sketch.ts';
import { Telemetry } from '../shared/telemetry.ts';
import { loadConfig } from '../shared/config.ts';
import { AlertsConfigSchema } from '../collector/alerts/config.ts';
import { AlertEngine } from '../collector/alerts/engine.ts';

const S = 1000;
const gc = (globalThis as { gc?: () => void }).gc;

function heapMb(): number {
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const KINDS = [
  { type: 'c' as const, aggregate: 'rate' },
  { type: 'g' as const, aggregate: 'avg' },
  { type: 'ms' as const, aggregate: 'p99' },
];

interface Result {
  scenario: string;
  rules: number;
  seriesPerRule: number;
  tracked: number;
  feedNsPerObs: number;
  evalMs: number;
  heapMb: number;
}

function scenario(name: string, rules: number, seriesPerRule: number, kinds = KINDS): Result {
  const yaml = ['rules:'];
  for (let r = 0; r < rules; r++) {
    const k = kinds[r % kinds.length];
    // Distinct windows (5m, 5m10s, …) keep rules from sharing a store.
    yaml.push(`  - { alert: R${r}, metric: m${r}, aggregate: ${k.aggregate}, window: ${300 + (r % 30) * 10}s, op: ">", threshold: 1e12 }`);
  }
  const config = loadConfig(AlertsConfigSchema, { text: `maxSeries: ${rules * seriesPerRule + 1}\n` });
  const before = heapMb();
  const engine = new AlertEngine({ config, telemetry: new Telemetry(), log: silentLogger() });
  const loaded = engine.loadRulesText(yaml.join('\n'));
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const sketch = newSketch();
  for (let i = 1; i <= 10; i++) sketch.accept(i * 10);
  const labels = Array.from({ length: seriesPerRule }, (_, i) => ({ host: `h${i % 100}`, route: `/r${i}` }));
  let observations = 0;
  const started = process.hrtime.bigint();
  for (let t = 0; t < 300 * S; t += 10 * S) {
    for (let r = 0; r < rules; r++) {
      const k = kinds[r % kinds.length];
      const name = `m${r}`;
      for (const l of labels) {
        engine.observeMetric({ statsdName: name, name, labels: l, type: k.type, value: 1, sketch: k.type === 'ms' ? sketch : undefined }, t);
        observations++;
      }
    }
  }
  const feedNs = Number(process.hrtime.bigint() - started) / observations;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    engine.evaluate(300 * S + i * 15 * S);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const heap = heapMb() - before;
  return { scenario: name, rules, seriesPerRule, tracked: rules * seriesPerRule, feedNsPerObs: feedNs, evalMs: times[2], heapMb: heap };
}

/** An availability SLO per group after `hours` of 10 s batches: the 30-day horizon in use. */
function sloScenario(groups: number, hours: number): Result {
  const config = loadConfig(AlertsConfigSchema, { text: `maxSeries: ${2 * groups + 1}\n` });
  const before = heapMb();
  const engine = new AlertEngine({ config, telemetry: new Telemetry(), log: silentLogger() });
  const loaded = engine.loadRulesText(`
rules:
  - { slo: checkout, objective: 99.9, period: 30d, by: [route], good: { metric: ok }, total: { metric: requests } }
`);
  if (!loaded.ok) throw new Error(loaded.errors.join('\n'));
  const labels = Array.from({ length: groups }, (_, i) => ({ route: `/r${i}` }));
  let observations = 0;
  const end = hours * 3600 * S;
  const started = process.hrtime.bigint();
  for (let t = 0; t < end; t += 10 * S) {
    for (const l of labels) {
      engine.observeMetric({ statsdName: 'requests', name: 'requests', labels: l, type: 'c', value: 100 }, t);
      engine.observeMetric({ statsdName: 'ok', name: 'ok', labels: l, type: 'c', value: 99 }, t);
      observations += 2;
    }
  }
  const feedNs = Number(process.hrtime.bigint() - started) / observations;
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = process.hrtime.bigint();
    engine.evaluate(end + i * 15 * S);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { scenario: `SLO 30d, ${hours}h of data`, rules: 3, seriesPerRule: groups, tracked: 2 * groups, feedNsPerObs: feedNs, evalMs: times[2], heapMb: heapMb() - before };
}

const results: Result[] = [];
for (const n of [100, 1000, 10_000]) results.push(scenario('series sweep, 10 mixed rules', 10, n));
for (const r of [1, 10, 100]) results.push(scenario('rule sweep, 1000 series/rule', r, 1000));
for (const n of [1000, 10_000]) results.push(scenario('p99 only (sketch merges)', 10, n, [KINDS[2]]));
for (const n of [1000, 10_000]) results.push(scenario('rate only (counters)', 10, n, [KINDS[0]]));
for (const g of [1, 100]) results.push(sloScenario(g, 80));

console.log(`node ${process.version}${gc ? '' : ' (run with --expose-gc for heap figures)'}`);
console.table(
  results.map((r) => ({
    scenario: r.scenario,
    rules: r.rules,
    'series/rule': r.seriesPerRule,
    'series tracked': r.tracked,
    'feed ns/obs': Math.round(r.feedNsPerObs),
    'eval ms': Number(r.evalMs.toFixed(2)),
    'eval µs/series': Number(((r.evalMs * 1000) / r.tracked).toFixed(2)),
    'heap MB': gc ? Number(r.heapMb.toFixed(1)) : '-',
  })),
);
