import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../../shared/config.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { AlertEngine } from '../../../../collector/alerts/engine.ts';
import { parseRules } from '../../../../collector/alerts/rules.ts';
import { alertsConfig, harness, sample, states } from './harness.ts';

const OPTIONS = { resolution: 10_000 };

function errorsOf(text: string): string[] {
  const r = parseRules(text, OPTIONS);
  expect(r.rules).toEqual([]);
  return r.errors;
}

describe('rule file validation', () => {
  it('reports every mistake at once, each naming the rule, the line of the key (or of the rule when the key is missing) and the key', () => {
    const errors = errorsOf(`
rules:
  - alert: BadWindow
    metric: http.requests
    aggregate: rate
    window: 5 minutes
    op: ">"
    threshold: 1
  - alert: BadEverything
    metric: http.request.duration
    where: { service: "=~(api", "bad-label": x }
    aggregate: median
    window: 1s
    op: "=>"
    treshold: 300
    for: soon
    labels: { alertname: Other, severity: page }
    annotations: { summary: "p99 is {{ $val }}" }
  - alert: NoSource
    aggregate: avg
    window: 1m
    op: ">"
    threshold: 1
  - alert: LogAvg
    logs: { where: { level: ERROR }, match: "(" }
    aggregate: avg
    window: 1m
    op: ">"
    threshold: 1
  - slo: checkout
    objective: 150
    good: { metric: ok }
    bad: { metric: failed }
    alerts:
      - { severity: page, long: 100d, short: 5m, burnRate: 14.4 }
  - slo: checkout
    objective: 99
    period: 30d
    latency: { metric: http.request.duration, threshold: fast }
  - metric: orphan
`);
    const expected = [
      'rule "BadWindow" (rules[0], line 6): window: expected a duration like "30s", "5m" or "1h" (got "5 minutes")',
      'rule "BadEverything" (rules[1], line 15): treshold: unknown key (did you mean "threshold"?)',
      'rule "BadEverything" (rules[1], line 11): where.bad-label: not a valid label name',
      'rule "BadEverything" (rules[1], line 11): where.service: invalid regular expression "(api"',
      'rule "BadEverything" (rules[1], line 12): aggregate: expected one of avg, min, max, sum, count, rate, increase, last or a percentile like p50, p99, p999 (got "median")',
      'rule "BadEverything" (rules[1], line 13): window: must be at least 10s, the bucket resolution (got "1s")',
      'rule "BadEverything" (rules[1], line 14): op: expected one of > >= < <= == != (got "=>")',
      'rule "BadEverything" (rules[1], line 9): threshold: missing',
      'rule "BadEverything" (rules[1], line 16): for: expected a duration like "30s", "5m" or "1h" (got "soon")',
      'rule "BadEverything" (rules[1], line 17): labels.alertname: the alert name comes from "alert:"',
      'rule "BadEverything" (rules[1], line 18): annotations.summary: unsupported template "{{ $val }}"',
      'rule "NoSource" (rules[2], line 19): metric: missing: name the data with "metric:", "ratio:", "logs:" or "patterns:"',
      'rule "LogAvg" (rules[3], line 25): logs.match: invalid regular expression',
      'rule "LogAvg" (rules[3], line 26): aggregate: a logs rule counts events: use count, rate or increase (got "avg")',
      'rule "checkout" (rules[4], line 31): objective: expected a percentage between 0 and 100',
      'rule "checkout" (rules[4], line 30): period: missing',
      'rule "checkout" (rules[4], line 33): bad: give "good" or "bad", not both',
      'rule "checkout" (rules[4], line 30): total: missing',
      'rule "checkout" (rules[4], line 35): alerts[0].long: must be at most 90d',
      'rule "checkout" (rules[5], line 39): latency.threshold: expected a number',
      'rules[6], line 40: each rule needs "alert: <name>"',
    ];
    for (const e of expected) expect(errors.some((line) => line.startsWith(e)), `missing: ${e}\nin:\n${errors.join('\n')}`).toBe(true);
    expect(errors).toHaveLength(expected.length);
  });

  it('names duplicate SLOs and the other occurrence', () => {
    const errors = errorsOf(`
rules:
  - { slo: a, objective: 99, period: 30d, good: { metric: ok }, total: { metric: all } }
  - { slo: a, objective: 99.9, period: 30d, good: { metric: ok }, total: { metric: all } }
`);
    expect(errors).toEqual(['rule "a" (rules[1], line 4): slo: duplicate SLO name (also rules[0]); SLO names label their metrics and must be unique']);
  });

  it('reports YAML syntax errors with their position', () => {
    const errors = errorsOf('rules:\n  - alert: X\n    metric: [unclosed\n');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^YAML: .*line 4|^YAML: .*at line/);
  });

  it('accepts an empty file and a file with no rules', () => {
    expect(parseRules('', OPTIONS)).toEqual({ rules: [], errors: [] });
    expect(parseRules('rules: []', OPTIONS)).toEqual({ rules: [], errors: [] });
  });

  it('accepts the example rule file shipped in config/rules', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile(new URL('../../../../config/rules/example.yaml', import.meta.url), 'utf8');
    const r = parseRules(text, OPTIONS);
    expect(r.errors).toEqual([]);
    expect(r.rules.map((x) => x.name)).toEqual(['ApiLatencyHigh', 'ApiErrorRatio', 'PanicsInLogs', 'QueueBacklog', 'HeartbeatMissing', 'checkout-availability', 'api-latency']);
  });
});

describe('reloading a broken rule file', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  const GOOD = `
rules:
  - alert: QueueDeep
    metric: queue.depth
    aggregate: max
    window: 1m
    op: ">"
    threshold: 10
`;

  it('keeps the previous rules evaluating and their alerts firing, and says why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plumb-rules-'));
    dirs.push(dir);
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, GOOD);
    const telemetry = new Telemetry();
    let now = 0;
    const engine = new AlertEngine({ config: alertsConfig({ rulesFile: file, watch: false }), telemetry, log: silentLogger(), now: () => now });
    expect(await engine.reload()).toEqual({ ok: true, errors: [], rules: 1 });
    engine.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: {}, type: 'g', value: 50 }, 0);
    engine.evaluate(0);
    expect(states(engine)).toEqual(['firing']);

    writeFileSync(file, GOOD.replace('window: 1m', 'window: forever').replace('op: ">"', 'op: bigger'));
    const r = await engine.reload();
    expect(r.ok).toBe(false);
    expect(r.rules).toBe(1);
    expect(r.errors).toEqual([
      'rule "QueueDeep" (rules[0], line 6): window: expected a duration like "30s", "5m" or "1h" (got "forever")',
      'rule "QueueDeep" (rules[0], line 7): op: expected one of > >= < <= == != (got "bigger")',
    ]);

    now = 15_000;
    engine.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: {}, type: 'g', value: 60 }, now);
    engine.evaluate(now);
    expect(engine.alertsJSON().data.alerts.map((a) => [a.state, a.value])).toEqual([['firing', '60']]);
    const data = engine.rulesJSON().data as { lastReload: { ok: boolean; errors: string[] } };
    expect(data.lastReload.ok).toBe(false);
    expect(data.lastReload.errors).toEqual(r.errors);
    const text = await telemetry.metrics();
    expect(sample(text, 'plumb_alerts_last_reload_successful')).toBe(0);
    expect(sample(text, 'plumb_alerts_reloads_total{result="failure"}')).toBe(1);

    writeFileSync(file, GOOD.replace('threshold: 10', 'threshold: 100'));
    expect((await engine.reload()).ok).toBe(true);
    engine.evaluate(now);
    expect(states(engine)).toEqual([]);
    expect(sample(await telemetry.metrics(), 'plumb_alerts_last_reload_successful')).toBe(1);
  });

  it('refuses to start on a broken rule file, listing every error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plumb-rules-'));
    dirs.push(dir);
    const file = join(dir, 'rules.yaml');
    writeFileSync(file, 'rules:\n  - alert: X\n    metric: m\n');
    const engine = new AlertEngine({ config: alertsConfig({ rulesFile: file, watch: false }), telemetry: new Telemetry(), log: silentLogger() });
    const err = await engine.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).errors.map((e) => e.split(': ')[1])).toEqual(['aggregate', 'window', 'op', 'threshold']);
    expect((err as ConfigError).message).toContain(file);
    await engine.stop();
  });

  it('reports an unreadable rule file and keeps the rules it had', async () => {
    const h = harness(GOOD, { config: { rulesFile: '/nonexistent/plumb/rules.yaml', watch: false } });
    const r = await h.engine.reload();
    expect(r.ok).toBe(false);
    expect(r.errors[0]).toMatch(/^cannot read the rule file/);
    expect(r.rules).toBe(1);
  });
});
