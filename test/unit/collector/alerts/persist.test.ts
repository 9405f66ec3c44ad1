import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { AlertEngine } from '../../../../collector/alerts/engine.ts';
import { newSketch } from '../../../../shared/sketch.ts';
import { TieredWindow, emptySummary, tierLayout } from '../../../../collector/alerts/buckets.ts';
import { alertsConfig, Clock, states } from './harness.ts';

const S = 1000;
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const RULES = `
rules:
  - alert: DepthHigh
    metric: queue.depth
    aggregate: last
    window: 1m
    op: ">"
    threshold: 10
    for: 2m
  - alert: HeartbeatMissing
    metric: heartbeat
    aggregate: count
    window: 1m
    absent: true
  - alert: TooFewOrders
    metric: orders
    aggregate: increase
    window: 2m
    op: "<"
    threshold: 5
  - alert: SlowP99
    metric: latency
    aggregate: p99
    window: 1m
    op: ">"
    threshold: 100
`;

function engine(clock: Clock, dir: string | undefined, options: { staleAfter?: number; rules?: string } = {}): AlertEngine {
  const e = new AlertEngine({
    config: alertsConfig({ evaluationInterval: '15s' }),
    telemetry: new Telemetry(),
    log: silentLogger(),
    now: clock.now,
    staleAfter: options.staleAfter,
    persist: dir === undefined ? undefined : { dir, fsync: 'never', checkpointBytes: 1 << 20, checkpointIntervalMs: 60_000 },
  });
  const r = e.loadRulesText(options.rules ?? RULES);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return e;
}

function rule(e: AlertEngine, name: string): { state: string; reason?: string; graceUntil?: string } {
  return (e.rulesJSON().data as { groups: { rules: { name: string; state: string; reason?: string }[] }[] }).groups[0].rules.find((r) => r.name === name)!;
}

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'plumb-alert-state-'));
  dirs.push(d);
  return d;
}

describe('alert state across restarts', () => {
  it('windows round-trip through their chunks, sketches included', () => {
    const clock = new Clock(1_000_000);
    const a = engine(clock, undefined);
    const sk = newSketch();
    for (let v = 1; v <= 200; v++) sk.accept(v);
    for (let t = 0; t < 60 * S; t += 10 * S) {
      a.observeMetric({ statsdName: 'latency', name: 'latency', labels: { svc: 'api' }, type: 'ms', sketch: sk }, clock.t + t);
      a.observeMetric({ statsdName: 'orders', name: 'orders', labels: {}, type: 'c', value: 2 }, clock.t + t);
    }
    const now = clock.t + 60 * S;
    const b = engine(clock, undefined);
    b.restoreWindows(a.windowChunks());
    expect(b.windowsCorrupt).toBe(0);
    expect(b.values('SlowP99', now)).toEqual(a.values('SlowP99', now));
    expect(b.values('TooFewOrders', now)).toEqual([{ labels: {}, value: 12 }]);
  });

  it('a window saved under other tiers is fitted to the current ones', () => {
    const old = new TieredWindow(tierLayout(10 * S, [5 * 60 * S]), 10 * S);
    for (let t = 0; t < 300 * S; t += 10 * S) {
      const b = old.bucketAt(t)!;
      b.kinds = 1;
      b.events += 1;
      b.reports++;
    }
    const w = TieredWindow.fromState(JSON.parse(JSON.stringify(old.exportState())), tierLayout(10 * S, [60 * S, 5 * 60 * S]), 10 * S);
    const s = emptySummary();
    w.summarize(299 * S, 5 * 60 * S, s, false);
    expect(s.events).toBe(30);
  });

  it('restores pending alerts with their active-since time, so `for` goes on', async () => {
    const dir = await tempDir();
    const clock = new Clock(1_000_000);
    const a = engine(clock, dir);
    await a.start({ evaluate: false });
    a.startEvaluating();
    for (let i = 0; i < 5; i++) {
      a.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: { queue: 'q' }, type: 'g', value: 50 }, clock.t);
      a.observeMetric({ statsdName: 'heartbeat', name: 'heartbeat', labels: {}, type: 'c', value: 1 }, clock.t);
      a.evaluate(clock.t);
      clock.t += 15 * S;
    }
    const activeAt = a.alertsJSON().data.alerts.find((x) => x.labels.alertname === 'DepthHigh')!.activeAt;
    const chunks = a.windowChunks();
    await a.stop(0); // as good as a kill for the rule state: every evaluation was journaled

    clock.t += 5 * S;
    const b = engine(clock, dir);
    await b.start({ evaluate: false });
    b.restoreWindows(chunks);
    b.startEvaluating();
    expect(states(b, 'DepthHigh')).toEqual(['pending']);
    expect(b.alertsJSON().data.alerts.find((x) => x.labels.alertname === 'DepthHigh')!.activeAt).toBe(activeAt);
    // a short absence (20 s) is bridged once as long again has passed, not a whole window
    b.observeMetric({ statsdName: 'heartbeat', name: 'heartbeat', labels: {}, type: 'c', value: 1 }, clock.t);
    b.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: { queue: 'q' }, type: 'g', value: 50 }, clock.t);
    b.evaluate(clock.t + 10 * S);
    expect(rule(b, 'HeartbeatMissing').state).toBe('grace');
    expect(rule(b, 'HeartbeatMissing').reason).toMatch(/away for 20s/);
    b.evaluate(clock.t + 20 * S);
    expect(rule(b, 'HeartbeatMissing').state).toBe('inactive');
    clock.t = Date.parse(activeAt) + 2 * 60 * S;
    b.evaluate(clock.t);
    expect(states(b, 'DepthHigh')).toEqual(['firing']);
    await b.stop(0);
  });

  it('a fresh start waits for the windows of rules that fire on missing data, and says so', async () => {
    const dir = await tempDir();
    const clock = new Clock(1_000_000);
    const e = engine(clock, dir);
    await e.start({ evaluate: false });
    e.restoreWindows([]);
    e.startEvaluating();
    e.observeMetric({ statsdName: 'orders', name: 'orders', labels: {}, type: 'c', value: 1 }, clock.t);
    e.evaluate(clock.t);
    expect(rule(e, 'HeartbeatMissing').state).toBe('grace');
    expect(rule(e, 'HeartbeatMissing').reason).toMatch(/start-up grace.*1m window/);
    expect(rule(e, 'TooFewOrders').state).toBe('grace');
    expect(rule(e, 'DepthHigh').state).toBe('nodata');
    e.evaluate(clock.t + 59 * S);
    expect(states(e, 'HeartbeatMissing')).toEqual([]);
    e.evaluate(clock.t + 60 * S);
    expect(states(e, 'HeartbeatMissing')).toEqual(['firing']);
    expect(rule(e, 'TooFewOrders').state).toBe('grace'); // a 2m window, of which one order is seen
    e.observeMetric({ statsdName: 'orders', name: 'orders', labels: {}, type: 'c', value: 1 }, clock.t + 119 * S);
    e.evaluate(clock.t + 120 * S);
    expect(states(e, 'TooFewOrders')).toEqual(['firing']);
    await e.stop(0);
  });

  it('after an absence longer than outageTolerance, pending progress and coverage start over', async () => {
    const dir = await tempDir();
    const clock = new Clock(1_000_000);
    const a = engine(clock, dir);
    await a.start({ evaluate: false });
    a.startEvaluating();
    a.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: { queue: 'q' }, type: 'g', value: 50 }, clock.t);
    a.evaluate(clock.t);
    expect(states(a, 'DepthHigh')).toEqual(['pending']);
    await a.stop(0);
    clock.t += 2 * 3_600_000;
    const b = engine(clock, dir);
    await b.start({ evaluate: false });
    b.restoreWindows([]);
    b.startEvaluating();
    expect(states(b, 'DepthHigh')).toEqual([]);
    b.evaluate(clock.t);
    expect(rule(b, 'HeartbeatMissing').state).toBe('grace');
    await b.stop(0);
  });
});

describe('one definition of stale', () => {
  it('a gauge that stops keeps its last reading for the series TTL, then is absent', () => {
    const clock = new Clock(0);
    const e = engine(clock, undefined, {
      staleAfter: 5 * 60 * S,
      rules: `
rules:
  - alert: DepthHigh
    metric: queue.depth
    aggregate: last
    window: 1m
    op: ">"
    threshold: 10
  - alert: DepthGone
    metric: queue.depth
    aggregate: last
    window: 1m
    absent: true
`,
    });
    e.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: { queue: 'q' }, type: 'g', value: 50 }, 1000);
    e.evaluate(2 * S);
    expect(states(e, 'DepthHigh')).toEqual(['firing']);
    // long past the rule's 1m window, still within the TTL: as on /metrics, the reading stands
    e.evaluate(4 * 60 * S);
    expect(states(e, 'DepthHigh')).toEqual(['firing']);
    expect(states(e, 'DepthGone')).toEqual([]);
    e.evaluate(1000 + 5 * 60 * S);
    expect(states(e, 'DepthHigh')).toEqual(['firing']);
    e.evaluate(1001 + 5 * 60 * S);
    expect(states(e, 'DepthHigh')).toEqual([]);
    expect(states(e, 'DepthGone')).toEqual(['firing']);
  });
});

