import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, startCollector, stopAllInProcess, runPlumb } from '../helpers/processes.ts';
import { PROMTOOL, promtoolCheckMetrics, scrape, valueOf } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';
import { MetricPoster, gauge } from '../helpers/metric-poster.ts';

afterEach(async () => {
  await stopAllInProcess();
});

function send(port: number, text: string): Promise<void> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve, reject) => socket.send(text, port, '127.0.0.1', (err) => (socket.close(), err ? reject(err) : resolve())));
}

const RULES = `
rules:
  - alert: QueueTooDeep
    metric: jobs.queue.depth
    where: { queue: "=~mail.*" }
    aggregate: last
    window: 1m
    op: ">"
    threshold: 100
    labels: { severity: page }
    annotations: { summary: "queue {{ $labels.queue }} holds {{ $value }}" }
`;

async function setup(rules: string) {
  const dir = await mkdtemp(join(tmpdir(), 'plumb-alerts-'));
  const rulesFile = join(dir, 'rules.yaml');
  await writeFile(rulesFile, rules);
  const { collector, url } = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  alerts: { rulesFile: ${JSON.stringify(rulesFile)}, evaluationInterval: 100ms, watch: false }
`);
  const agent = await startAgent(`
agent:
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  http: { listen: "127.0.0.1:0" }
  forward: { collectors: ["${url}"] }
  host: { enabled: false }
`);
  return { collector, url, agent, rulesFile };
}

async function alerts(url: string): Promise<{ labels: Record<string, string>; state: string; annotations: Record<string, string> }[]> {
  const body = (await (await fetch(`${url}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string>; state: string; annotations: Record<string, string> }[] } };
  return body.data.alerts;
}

describe('alerts in the collector', () => {
  it('fires on statsd data that crossed a threshold and resolves when it comes back', async () => {
    const { url, agent } = await setup(RULES);
    const flushAfter = async (text: string, lines: number) => {
      const before = agent.agent.aggregator.stats.lines;
      await send(agent.statsdPort, text);
      await waitFor(() => agent.agent.aggregator.stats.lines >= before + lines, { what: 'agent received the lines' });
      await agent.agent.flush();
    };
    await flushAfter('jobs.queue.depth:250|g|#queue:mail-out\njobs.queue.depth:500|g|#queue:billing', 2);
    const firing = await waitFor(async () => (await alerts(url)).find((a) => a.state === 'firing'), { what: 'an alert firing' });
    expect(firing.labels).toMatchObject({ alertname: 'QueueTooDeep', queue: 'mail-out', severity: 'page' });
    expect(firing.annotations.summary).toBe('queue mail-out holds 250');
    // the billing queue does not match the regex matcher
    expect((await alerts(url)).some((a) => a.labels.queue === 'billing')).toBe(false);

    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toMatch(/^ALERTS\{[^}]*alertname="QueueTooDeep"[^}]*alertstate="firing"[^}]*\} 1$/m);
    if (PROMTOOL !== null) expect(await promtoolCheckMetrics(text)).toMatchObject({ code: 0 });

    await flushAfter('jobs.queue.depth:3|g|#queue:mail-out', 1);
    await waitFor(async () => !(await alerts(url)).some((a) => a.state === 'firing'), { what: 'the alert resolved' });
  });

  it('counts log events the agent tailed and fires a log rule once the pattern spikes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plumb-alerts-logs-'));
    const rulesFile = join(dir, 'rules.yaml');
    await writeFile(
      rulesFile,
      `
rules:
  - alert: PanicsInLogs
    logs: { where: { level: "ERROR" }, match: "panic" }
    aggregate: count
    window: 1m
    op: ">="
    threshold: 5
    labels: { severity: page }
`,
    );
    const { url } = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  alerts: { rulesFile: ${JSON.stringify(rulesFile)}, evaluationInterval: 100ms, watch: false }
`);
    const logFile = join(dir, 'app.log');
    await writeFile(logFile, 'INFO all good\nERROR panic: nil map\nWARN panic averted\n');
    await startAgent(`
agent:
  statsd: { enabled: false }
  http: { listen: "127.0.0.1:0" }
  forward: { collectors: ["${url}"] }
  host: { enabled: false }
  grok: { workers: 1 }
  tail: { discoverInterval: 50ms, pollInterval: 20ms }
  logs:
    - path: ${JSON.stringify(logFile)}
      pattern: "%{LOGLEVEL:level} %{GREEDYDATA:msg}"
`);
    const sample = async (name: string, labels: Record<string, string> = {}) => valueOf(await scrape(url), name, labels) ?? 0;
    await waitFor(async () => (await sample('plumb_ingest_log_events_total', { outcome: 'accepted' })) === 3, { what: 'the first three events at the collector' });
    // a few evaluation rounds with only one matching event in the window
    const rounds = await sample('plumb_alerts_evaluations_total');
    await waitFor(async () => (await sample('plumb_alerts_evaluations_total')) >= rounds + 3, { what: 'three more evaluations' });
    expect((await alerts(url)).some((a) => a.labels.alertname === 'PanicsInLogs')).toBe(false);
    await writeFile(logFile, 'ERROR panic: a\nERROR panic: b\nERROR all fine\nERROR panic: c\nERROR panic: d\n', { flag: 'a' });
    const firing = await waitFor(async () => (await alerts(url)).find((a) => a.labels.alertname === 'PanicsInLogs' && a.state === 'firing'), { what: 'the log rule firing' });
    expect(firing.labels).toMatchObject({ severity: 'page' });
  });

  it('keeps the running rules when a reload finds a broken file, and takes a good one', async () => {
    const { collector, url, rulesFile } = await setup(RULES);
    const rules = async () => ((await (await fetch(`${url}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string }[] }[] } }).data.groups.flatMap((g) => g.rules.map((r) => r.name));
    expect(await rules()).toEqual(['QueueTooDeep']);
    await writeFile(rulesFile, 'rules:\n  - alert: Broken\n    metric: x\n    aggregate: p42\n');
    await collector.reload();
    expect(await rules()).toEqual(['QueueTooDeep']);
    await writeFile(rulesFile, RULES.replace('QueueTooDeep', 'QueueDeep'));
    await collector.reload();
    expect(await rules()).toEqual(['QueueDeep']);
  });

  it('a gauge that stops goes stale for alerts at the moment it leaves /metrics (one TTL for both)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plumb-alerts-stale-'));
    const rulesFile = join(dir, 'rules.yaml');
    await writeFile(rulesFile, RULES);
    const { url } = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  metrics: { seriesTtl: 3s }
  alerts: { rulesFile: ${JSON.stringify(rulesFile)}, evaluationInterval: 100ms, resolution: 1s, watch: false }
`);
    const poster = new MetricPoster('agent');
    const posted = Date.now();
    expect(await poster.post(url, poster.batch([gauge('jobs.queue.depth', 250, ['queue:mail-out'])]))).toBe(true);
    await waitFor(async () => (await alerts(url)).some((a) => a.state === 'firing'), { what: 'the alert firing' });
    // the reading stands until the TTL, on /metrics and for the rule alike
    let metricGone: number | undefined;
    let alertGone: number | undefined;
    await waitFor(
      async () => {
        const text = await (await fetch(`${url}/metrics`)).text();
        const now = Date.now();
        if (metricGone === undefined && !/^jobs_queue_depth\{/m.test(text)) metricGone = now;
        if (alertGone === undefined && !(await alerts(url)).some((a) => a.state === 'firing')) alertGone = Date.now();
        return metricGone !== undefined && alertGone !== undefined;
      },
      { what: 'the series to leave /metrics and the alert to resolve', timeoutMs: 15_000, intervalMs: 20 },
    );
    expect(metricGone! - posted).toBeGreaterThanOrEqual(3000);
    expect(alertGone! - posted).toBeGreaterThanOrEqual(3000);
    // within an evaluation interval (plus the polling) of each other
    expect(Math.abs(alertGone! - metricGone!)).toBeLessThan(400);
  });

  it('check-config reports rule file errors with the rule name and key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plumb-alerts-'));
    await writeFile(join(dir, 'rules.yaml'), 'rules:\n  - alert: Broken\n    metric: x\n    aggregate: median\n    window: 1m\n    op: ">"\n    threshold: 1\n');
    await writeFile(join(dir, 'plumb.yaml'), `collector: { alerts: { rulesFile: ${JSON.stringify(join(dir, 'rules.yaml'))} } }\n`);
    const result = await runPlumb(['check-config', join(dir, 'plumb.yaml')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/Broken/);
    expect(result.stderr).toMatch(/aggregate/);
  });
});
