import { describe, expect, it } from 'vitest';
import { harness, states, type Harness } from './harness.ts';

const RULES = `
rules:
  - alert: QueueDeep
    metric: queue.depth
    aggregate: last
    window: 1m
    op: ">"
    threshold: 10
    for: 5m
    labels: { severity: page }
    annotations: { summary: "queue {{ $labels.queue }} holds {{ $value }} items" }
  - alert: QueueDeepSticky
    metric: queue.depth
    aggregate: last
    window: 1m
    op: ">"
    threshold: 10
    for: 1m
    keepFiringFor: 2m
  - alert: QueueDeepNow
    metric: queue.depth
    aggregate: last
    window: 1m
    op: ">"
    threshold: 10
`;

const S = 1000;
const M = 60 * S;

/** A harness whose clock stands one evaluation before 0, so the first `run` evaluates at 0. */
function make(rules = RULES, options: Parameters<typeof harness>[1] = {}): Harness {
  const h = harness(rules, options);
  h.clock.t = -15 * S;
  return h;
}

/** Feeds `depth` for the queue and evaluates every 15 s after the clock's time, up to and including `until`. */
function run(h: Harness, until: number, depth: number): void {
  for (let t = h.clock.t + 15 * S; t <= until; t += 15 * S) {
    h.clock.t = t;
    h.engine.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: { queue: 'jobs' }, type: 'g', value: depth }, t);
    h.engine.evaluate(t);
  }
}

function step(h: Harness, depth: number): void {
  run(h, h.clock.t + 15 * S, depth);
}

describe('alert states', () => {
  it('is pending from the first true evaluation and fires exactly when `for` has passed', () => {
    const h = make();
    run(h, 0, 50);
    expect(states(h.engine, 'QueueDeep')).toEqual(['pending']);
    const activeAt = h.engine.alertsJSON().data.alerts.find((a) => a.labels.alertname === 'QueueDeep')!.activeAt;
    expect(activeAt).toBe(new Date(0).toISOString());
    run(h, 5 * M - 15 * S, 50);
    expect(states(h.engine, 'QueueDeep')).toEqual(['pending']);
    step(h, 50); // t = 5m: now − activeAt = for
    expect(h.clock.t).toBe(5 * M);
    expect(states(h.engine, 'QueueDeep')).toEqual(['firing']);
  });

  it('fires on the first evaluation without `for`', () => {
    const h = make();
    run(h, 0, 50);
    expect(states(h.engine, 'QueueDeepNow')).toEqual(['firing']);
  });

  it('renders labels and annotations with the value and the series labels', () => {
    const h = make();
    run(h, 5 * M, 42);
    const a = h.engine.alertsJSON().data.alerts.find((x) => x.labels.alertname === 'QueueDeep')!;
    expect(a.labels).toEqual({ alertname: 'QueueDeep', queue: 'jobs', severity: 'page' });
    expect(a.annotations).toEqual({ summary: 'queue jobs holds 42 items' });
    expect(a.value).toBe('42');
  });

  it('never fires when the condition flaps faster than `for`', () => {
    const h = make();
    // 4 minutes true, 15 s false, repeated for half an hour: no 5-minute stretch of true.
    for (let cycle = 0; cycle < 7; cycle++) {
      run(h, h.clock.t + 4 * M, 50);
      step(h, 1);
      expect(states(h.engine, 'QueueDeep')).toEqual([]);
      step(h, 50);
    }
    expect(h.clock.t).toBeGreaterThan(30 * M);
    expect(states(h.engine, 'QueueDeep')).toEqual(['pending']);
  });

  it('resolves on the first false evaluation, and reports the resolution once to webhooks', async () => {
    const bodies: string[] = [];
    const h = make(RULES, {
      config: { webhooks: [{ url: 'http://receiver.invalid/hook', kind: 'json' }] },
      post: async (_url, body) => {
        bodies.push(body);
      },
    });
    h.engine.start();
    run(h, 5 * M, 50);
    expect(states(h.engine, 'QueueDeep')).toEqual(['firing']);
    step(h, 3);
    expect(states(h.engine, 'QueueDeep')).toEqual([]);
    step(h, 3);
    await h.engine.deliveryIdle();
    await h.engine.stop();
    const events = bodies.flatMap((b) => (JSON.parse(b) as { alerts: { status: string; labels: Record<string, string> }[] }).alerts).filter((a) => a.labels.alertname === 'QueueDeep');
    expect(events.map((e) => e.status)).toEqual(['firing', 'resolved']);
  });

  it('keeps firing for keepFiringFor after the condition clears, then resolves', () => {
    const h = make();
    run(h, 1 * M, 50);
    expect(states(h.engine, 'QueueDeepSticky')).toEqual(['firing']);
    const clearedAt = h.clock.t + 15 * S;
    run(h, clearedAt + 2 * M - 15 * S, 3); // 1m45s after the first false evaluation
    expect(states(h.engine, 'QueueDeepSticky')).toEqual(['firing']);
    expect(h.engine.alertsJSON().data.alerts.find((a) => a.labels.alertname === 'QueueDeepSticky')!.keepFiringSince).toBe(new Date(clearedAt).toISOString());
    step(h, 3); // exactly keepFiringFor after it cleared
    expect(states(h.engine, 'QueueDeepSticky')).toEqual([]);
  });

  it('a condition that returns during keepFiringFor keeps the same alert firing', () => {
    const h = make();
    run(h, 1 * M, 50);
    const firedActiveAt = h.engine.alertsJSON().data.alerts.find((a) => a.labels.alertname === 'QueueDeepSticky')!.activeAt;
    step(h, 3);
    step(h, 3);
    step(h, 50);
    const a = h.engine.alertsJSON().data.alerts.find((x) => x.labels.alertname === 'QueueDeepSticky')!;
    expect(a.state).toBe('firing');
    expect(a.activeAt).toBe(firedActiveAt);
    expect(a.keepFiringSince).toBeUndefined();
  });

  it('starts over as a new pending alert when the condition returns after resolving', () => {
    const h = make();
    run(h, 5 * M, 50);
    step(h, 3);
    step(h, 50);
    const a = h.engine.alertsJSON().data.alerts.find((x) => x.labels.alertname === 'QueueDeep')!;
    expect(a.state).toBe('pending');
    expect(a.activeAt).toBe(new Date(h.clock.t).toISOString());
  });

  it('keeps one alert per label set', () => {
    const h = make();
    for (const queue of ['a', 'b', 'c']) h.engine.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: { queue }, type: 'g', value: queue === 'b' ? 1 : 99 }, 0);
    h.engine.evaluate(0);
    const firing = h.engine.alertsJSON().data.alerts.filter((a) => a.labels.alertname === 'QueueDeepNow');
    expect(firing.map((a) => a.labels.queue).sort()).toEqual(['a', 'c']);
  });

  it('reports no data as its own rule state, and `absent: true` fires on it', () => {
    const h = make(`
rules:
  - alert: HeartbeatMissing
    metric: heartbeat
    where: { service: billing }
    aggregate: count
    window: 1m
    absent: true
    for: 30s
  - alert: HeartbeatLow
    metric: heartbeat
    aggregate: count
    window: 1m
    op: "<"
    threshold: 1
`);
    h.engine.evaluate(0);
    const rules = () => (h.engine.rulesJSON().data as { groups: { rules: { name: string; state: string }[] }[] }).groups[0].rules;
    expect(rules().find((r) => r.name === 'HeartbeatLow')!.state).toBe('nodata');
    expect(states(h.engine, 'HeartbeatMissing')).toEqual(['pending']);
    h.engine.evaluate(30 * S);
    const missing = h.engine.alertsJSON().data.alerts.find((a) => a.labels.alertname === 'HeartbeatMissing')!;
    expect(missing.state).toBe('firing');
    expect(missing.labels).toEqual({ alertname: 'HeartbeatMissing', service: 'billing' });
    h.engine.observeMetric({ statsdName: 'heartbeat', name: 'heartbeat', labels: { service: 'billing' }, type: 'c', value: 1 }, 40 * S);
    h.engine.evaluate(45 * S);
    expect(states(h.engine, 'HeartbeatMissing')).toEqual([]);
    expect(rules().find((r) => r.name === 'HeartbeatLow')!.state).toBe('inactive');
  });

  it('carries pending state over a reload that leaves the rule unchanged', () => {
    const h = make();
    run(h, 3 * M, 50);
    expect(h.engine.loadRulesText(RULES.replace('queue {{ $labels.queue }}', 'the {{ $labels.queue }} queue')).ok).toBe(true);
    run(h, 5 * M, 50);
    const a = h.engine.alertsJSON().data.alerts.find((x) => x.labels.alertname === 'QueueDeep')!;
    expect(a.state).toBe('firing');
    expect(a.annotations.summary).toBe('the jobs queue holds 50 items');
  });
});
