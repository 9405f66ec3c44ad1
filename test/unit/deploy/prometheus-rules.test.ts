/**
 * deploy/prometheus: every shipped alert has a `promtool test rules` case that makes it fire (and
 * the cases name no alert that does not exist); the loss alerts cover the log sinks' dead letters.
 * The cases themselves run with promtool in test/integration/deploy.test.ts, and here too when
 * promtool is installed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../helpers/processes.ts';
import { PROMTOOL } from '../../helpers/prometheus.ts';

const DIR = join(REPO_ROOT, 'deploy', 'prometheus');
const rules = YAML.parse(readFileSync(join(DIR, 'plumb-alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
const tests = YAML.parse(readFileSync(join(DIR, 'plumb-alerts.test.yml'), 'utf8')) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] };
const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));

describe('deploy/prometheus alert rules', () => {
  it('every shipped alert has a promtool case in which it fires', () => {
    const firing = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname)));
    expect(alerts.filter((a) => !firing.has(a))).toEqual([]);
    const named = new Set(tests.tests.flatMap((t) => t.alert_rule_test.map((c) => c.alertname)));
    expect([...named].filter((a) => !alerts.includes(a))).toEqual([]);
  });

  it('watches the log sinks\' dead letters, and dead letters lost to rotation', () => {
    const exprs = rules.groups.flatMap((g) => g.rules.map((r) => r.expr)).join('\n');
    expect(exprs).toMatch(/increase\(plumb_sink_dead_letter_total\[/);
    expect(exprs).toMatch(/increase\(plumb_sink_dead_letter_discarded_total\[/);
  });

  it.skipIf(PROMTOOL === null)('the cases pass under promtool test rules', () => {
    const r = spawnSync(PROMTOOL!, ['test', 'rules', 'plumb-alerts.test.yml'], { cwd: DIR, encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toMatch(/SUCCESS/);
    expect(r.status).toBe(0);
  });
});
