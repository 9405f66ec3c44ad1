import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { AlertEngine } from '../../../../collector/alerts/engine.ts';
import { parseRules } from '../../../../collector/alerts/rules.ts';
import { PatternMiner } from '../../../../collector/patterns/miner.ts';
import { PatternsSchema } from '../../../../collector/patterns/config.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { alertsConfig, Clock } from './harness.ts';

const MIN = 60_000;
const T0 = Date.UTC(2026, 0, 1, 0, 0);

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'plumb-pattern-rules-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function setup(rules: string) {
  const clock = new Clock(T0);
  const telemetry = new Telemetry();
  const miner = new PatternMiner(Value.Decode(PatternsSchema, Value.Default(PatternsSchema, { saveInterval: 0 })), { telemetry, log: silentLogger(), dataDir: dir });
  miner.start(T0);
  const engine = new AlertEngine({ config: alertsConfig(), telemetry, log: silentLogger(), now: clock.now, patterns: miner });
  const r = engine.loadRulesText(rules);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  const send = (service: string, message: string, n = 1): void => {
    for (let i = 0; i < n; i++) {
      const o = miner.observe({ message, service }, clock.t)!;
      miner.commit([o], clock.t);
    }
  };
  const firing = (name: string) =>
    engine
      .alertsJSON()
      .data.alerts.filter((a) => a.labels.alertname === name && a.state === 'firing')
      .map((a) => ({ source: a.labels.source, pattern: a.labels.pattern, value: Number(a.value) }));
  return { clock, engine, send, firing, miner };
}

describe('alert rules on log patterns', () => {
  it('newPattern: fires for a template first seen within the window, not for those learned at start, and resolves after', () => {
    const { clock, engine, send, firing } = setup(`
rules:
  - alert: NewLogPattern
    patterns: { new: true, where: { source: sshd } }
    window: 10m
`);
    // learned while the miner had no history: not "new"
    send('sshd', 'Accepted password for alice from 10.0.0.1 port 22 ssh2', 5);
    engine.evaluate(clock.t);
    expect(firing('NewLogPattern')).toEqual([]);

    clock.t += 15 * MIN;
    send('sshd', 'Accepted password for bob from 10.0.0.2 port 22 ssh2');
    send('sshd', 'error: kex_exchange_identification: Connection closed by remote host', 3);
    send('cron', 'job backup failed with code 3');
    engine.evaluate(clock.t);
    expect(firing('NewLogPattern')).toEqual([{ source: 'sshd', pattern: 'error: kex_exchange_identification: Connection closed by remote host', value: 3 }]);

    clock.t += 11 * MIN;
    engine.evaluate(clock.t);
    expect(firing('NewLogPattern')).toEqual([]);
  });

  it('spike: fires when a pattern runs above its own baseline rate by the threshold factor', () => {
    const { clock, engine, send, firing } = setup(`
rules:
  - alert: LogPatternSpike
    patterns: { spike: { baseline: 30m, minEvents: 20 } }
    window: 5m
    threshold: 4
`);
    // 40 minutes of a steady 2 per minute for two patterns
    for (let m = 0; m < 40; m++) {
      send('api', 'request timed out after 30 s on /v1/items', 2);
      send('api', 'cache miss for key user:1234', 2);
      clock.t += MIN;
    }
    engine.evaluate(clock.t);
    expect(firing('LogPatternSpike')).toEqual([]);
    // then timeouts at 20 per minute for 5 minutes: 10x their baseline
    for (let m = 0; m < 5; m++) {
      send('api', 'request timed out after 30 s on /v1/items', 20);
      send('api', 'cache miss for key user:1234', 2);
      clock.t += MIN;
    }
    engine.evaluate(clock.t);
    const f = firing('LogPatternSpike');
    expect(f.map((a) => a.pattern)).toEqual(['request timed out after <*> s on <*>']);
    expect(f[0].value).toBeCloseTo(10, 5);
  });

  it('reports mistakes in a patterns rule by key', () => {
    const r = parseRules(
      `
rules:
  - alert: A
    patterns: { new: true, spike: {} }
    window: 5m
  - alert: B
    patterns: { spike: { baseline: 2h, minEvents: 0 }, where: { host: x } }
    window: 5m
    aggregate: rate
`,
      { resolution: 10_000 },
    );
    expect(r.errors.join('\n')).toMatch(/rule "A".*patterns: give exactly one of "new" and "spike"/);
    expect(r.errors.join('\n')).toMatch(/rule "B".*patterns.spike.baseline/);
    expect(r.errors.join('\n')).toMatch(/rule "B".*patterns.spike.minEvents/);
    expect(r.errors.join('\n')).toMatch(/rule "B".*patterns.where: patterns have the labels source and pattern_id/);
    expect(r.errors.join('\n')).toMatch(/rule "B".*aggregate: a patterns rule has no aggregate/);
  });
});
