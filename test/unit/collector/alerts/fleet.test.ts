/**
 * Rules over a fleet give the verdict one collector holding all the data would give: three
 * engines each hold part of the series (the same series split between two of them, a ratio's
 * two sides on two of them, an SLO's bad and total events on two others); each rule's owner
 * merges the others' partial aggregates (through their JSON wire form) and must agree with a
 * fourth engine that saw everything, for a quantile, a ratio, absent and an SLO's budget.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { PatternMiner } from '../../../../collector/patterns/miner.ts';
import { PatternsSchema } from '../../../../collector/patterns/config.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { newSketch } from '../../../../shared/sketch.ts';
import { rendezvousRank } from '../../../../shared/membership.ts';
import { AlertEngine } from '../../../../collector/alerts/engine.ts';
import type { PartialsRequest, ReplicaRequest, RulePeerClient } from '../../../../collector/alerts/fleet.ts';
import { alertsConfig, Clock } from './harness.ts';

const S = 1000;
const MEMBERS = ['http://a:9102', 'http://b:9102', 'http://c:9102'];

const RULES = `
rules:
  - alert: LatencyP99
    metric: latency
    aggregate: p99
    window: 1m
    op: ">"
    threshold: -1
  - alert: ErrorRatio
    ratio:
      numerator: { metric: errors }
      denominator: { metric: requests }
    window: 1m
    op: ">"
    threshold: -1
  - alert: HeartbeatMissing
    metric: heartbeat
    aggregate: count
    window: 1m
    absent: true
  - slo: checkout
    objective: 99
    period: 1h
    bad: { metric: errors }
    total: { metric: requests }
    alerts: [{ severity: page, long: 1h, short: 5m, burnRate: 14.4 }]
`;

const wire = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function engine(clock: Clock): AlertEngine {
  const e = new AlertEngine({ config: alertsConfig({ evaluationInterval: '10s' }), telemetry: new Telemetry(), log: silentLogger(), now: clock.now });
  const r = e.loadRulesText(RULES);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return e;
}

/** The other collectors, reached by calling their engines (through JSON, as over HTTP). */
function peers(fleet: Map<string, AlertEngine>): RulePeerClient {
  return {
    traffic: { sent: 0, received: 0, requests: 0, failures: 0 },
    probe: async () => undefined,
    isUp: () => true,
    markUp: () => undefined,
    downMembers: () => [],
    partials: async (m: string, body: PartialsRequest) => wire(fleet.get(m)!.partials(wire(body))),
    states: async (m: string, keys: string[]) => wire({ groups: fleet.get(m)!.states(keys) }),
    replicate: async (m: string, body: ReplicaRequest) => void fleet.get(m)!.replica(body.from, wire(body.groups)),
    close: async () => undefined,
  };
}

describe('rules over a fleet', () => {
  it('each rule is evaluated by its owner only, and gives the verdict of one collector holding everything', async () => {
    const clock = new Clock(10_000_000);
    const fleet = new Map(MEMBERS.map((m) => [m, engine(clock)]));
    const alone = engine(clock);
    for (const [self, e] of fleet) {
      e.attachFleet({ members: () => MEMBERS, self: () => self, rank: (key) => rendezvousRank(key, MEMBERS) }, peers(fleet));
      e.fleetReady();
    }
    const [a, b, c] = MEMBERS.map((m) => fleet.get(m)!);
    const obs = (e: AlertEngine, o: Parameters<AlertEngine['observeMetric']>[0], t: number): void => {
      e.observeMetric(o, t);
      alone.observeMetric(o, t);
    };
    const t0 = clock.t;
    for (let k = 0; k < 6; k++) {
      const t = t0 + k * 10 * S;
      // one latency series, its values split between a (1..500) and b (501..1000)
      const low = newSketch();
      const high = newSketch();
      for (let v = 1; v <= 1000; v++) (v <= 500 ? low : high).accept(v);
      obs(a, { statsdName: 'latency', name: 'latency', labels: { svc: 'api' }, type: 'ms', sketch: low }, t);
      obs(b, { statsdName: 'latency', name: 'latency', labels: { svc: 'api' }, type: 'ms', sketch: high }, t);
      // the ratio's numerator on c, its denominator on a
      obs(c, { statsdName: 'errors', name: 'errors', labels: {}, type: 'c', value: 3 + k }, t);
      obs(a, { statsdName: 'requests', name: 'requests', labels: {}, type: 'c', value: 100 }, t);
      // the heartbeat on b only
      obs(b, { statsdName: 'heartbeat', name: 'heartbeat', labels: {}, type: 'c', value: 1 }, t);
    }
    clock.t = t0 + 55 * S;
    for (const e of fleet.values()) await e.evaluateRound(clock.t);
    alone.evaluate(clock.t);

    const firing = (e: AlertEngine) => e.alertsJSON().data.alerts.map((x) => ({ name: x.labels.alertname, value: x.value, state: x.state }));
    const everywhere = [...fleet.values()].flatMap(firing).sort((x, y) => x.name.localeCompare(y.name));
    // once each across the fleet, with the value the single collector computes; no absent anywhere
    expect(everywhere).toEqual(firing(alone).sort((x, y) => x.name.localeCompare(y.name)));
    expect(everywhere.map((x) => x.name)).toEqual(['ErrorRatio', 'LatencyP99']);
    const p99 = Number(everywhere.find((x) => x.name === 'LatencyP99')!.value);
    expect(Math.abs(p99 - 990) / 990).toBeLessThan(0.011);

    const budget = (e: AlertEngine) => (e.rulesJSON().data as { slos: { errorBudgetRemaining: { value: number }[] }[] }).slos[0].errorBudgetRemaining;
    const sloOwner = [...fleet.values()].find((e) => budget(e).length > 0)!;
    expect(budget(sloOwner)[0].value).toBeCloseTo(budget(alone)[0].value, 12);
    expect([...fleet.values()].filter((e) => budget(e).length > 0)).toHaveLength(1);

    // every collector names the same owner for every rule
    const owners = [...fleet.values()].map((e) => JSON.stringify((e.fleetRules().rules as { owner: string }[]).map((r) => r.owner)));
    expect(new Set(owners).size).toBe(1);

    // the heartbeat stops: absent fires once, on the rule's owner
    clock.t = t0 + 125 * S;
    for (const e of fleet.values()) await e.evaluateRound(clock.t);
    const missing = [...fleet.values()].flatMap((e) => e.alertsJSON().data.alerts.filter((x) => x.labels.alertname === 'HeartbeatMissing'));
    expect(missing).toHaveLength(1);
  });

  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('log-pattern rules see every collector\'s templates: new only if no collector saw it before, spikes over the fleet\'s counts', async () => {
    const MIN = 60 * S;
    const clock = new Clock(Date.UTC(2026, 0, 1));
    const PATTERN_RULES = `
rules:
  - alert: NewLogPattern
    patterns: { new: true }
    window: 10m
  - alert: LogPatternSpike
    patterns: { spike: { baseline: 30m, minEvents: 20 } }
    window: 5m
    threshold: 8
`;
    const withMiner = () => {
      const dir = mkdtempSync(join(tmpdir(), 'plumb-fleet-patterns-'));
      dirs.push(dir);
      const telemetry = new Telemetry();
      const miner = new PatternMiner(Value.Decode(PatternsSchema, Value.Default(PatternsSchema, { saveInterval: 0 })), { telemetry, log: silentLogger(), dataDir: dir });
      miner.start(clock.t);
      const e = new AlertEngine({ config: alertsConfig({ evaluationInterval: '10s' }), telemetry, log: silentLogger(), now: clock.now, patterns: miner });
      const r = e.loadRulesText(PATTERN_RULES);
      if (!r.ok) throw new Error(r.errors.join('\n'));
      return { e, miner };
    };
    const nodes = new Map(MEMBERS.map((m) => [m, withMiner()]));
    const fleet = new Map([...nodes].map(([m, n]) => [m, n.e]));
    const alone = withMiner();
    for (const [self, e] of fleet) {
      e.attachFleet({ members: () => MEMBERS, self: () => self, rank: (key) => rendezvousRank(key, MEMBERS) }, peers(fleet));
      e.fleetReady();
    }
    const [a, b, c] = MEMBERS.map((m) => nodes.get(m)!.miner);
    const send = (miner: PatternMiner, service: string, message: string, n = 1): void => {
      for (let i = 0; i < n; i++) {
        miner.commit([miner.observe({ message, service }, clock.t)!], clock.t);
        alone.miner.commit([alone.miner.observe({ message, service }, clock.t)!], clock.t);
      }
    };
    // learned at start everywhere: not new
    send(a, 'api', 'cache miss for key user:1234');
    clock.t += 15 * MIN;
    // c sees a rare template once, long before a sees it again
    send(c, 'sshd', 'error: kex_exchange_identification: Connection closed by remote host');
    // 40 minutes of a steady 4 timeouts per minute, spread over a and b
    for (let m = 0; m < 40; m++) {
      send(a, 'api', 'request timed out after 30 s on /v1/items', 2);
      send(b, 'api', 'request timed out after 45 s on /v1/users', 2);
      clock.t += MIN;
    }
    // then 40 per minute for 5 minutes, 10 on a, 10 on b and 20 on c: 10x the fleet's baseline,
    // though only 5x (under the threshold of 8) on a or b alone, and a template new everywhere on b; a sees c's old one again
    for (let m = 0; m < 5; m++) {
      send(a, 'api', 'request timed out after 30 s on /v1/items', 10);
      send(b, 'api', 'request timed out after 30 s on /v1/items', 10);
      send(c, 'api', 'request timed out after 30 s on /v1/items', 20);
      clock.t += MIN;
    }
    send(b, 'billing', 'invoice 42 could not be rendered: template missing', 3);
    send(a, 'sshd', 'error: kex_exchange_identification: Connection closed by remote host');
    for (const e of fleet.values()) await e.evaluateRound(clock.t);
    alone.e.evaluate(clock.t);

    const firing = (e: AlertEngine) =>
      e
        .alertsJSON()
        .data.alerts.filter((x) => x.state === 'firing')
        .map((x) => ({ name: x.labels.alertname, pattern: x.labels.pattern, value: Number(x.value) }));
    const everywhere = [...fleet.values()].flatMap(firing).sort((x, y) => x.name.localeCompare(y.name));
    expect(everywhere).toEqual(firing(alone.e).sort((x, y) => x.name.localeCompare(y.name)));
    expect(everywhere.map((x) => [x.name, x.pattern])).toEqual([
      ['LogPatternSpike', 'request timed out after <*> s on <*>'],
      ['NewLogPattern', 'invoice <*> could not be rendered: template missing'],
    ]);
    expect(everywhere[0].value).toBeCloseTo(10, 5);
    expect(everywhere[1].value).toBe(3);
  });
});
