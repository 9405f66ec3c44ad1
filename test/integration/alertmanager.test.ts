/**
 * The alert engine against a real Prometheus Alertmanager (Debian's prometheus-alertmanager),
 * started on free ports with clustering off and its storage in a temporary directory. An alert
 * that fires in plumb must show up in Alertmanager's API as active and reach Alertmanager's own
 * receiver; when it resolves in plumb, Alertmanager must drop it from its active alerts and
 * notify its receiver of the resolution.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadConfig } from '../../shared/config.ts';
import { silentLogger } from '../../shared/log.ts';
import { Telemetry } from '../../shared/telemetry.ts';
import { AlertsConfigSchema } from '../../collector/alerts/config.ts';
import { AlertEngine } from '../../collector/alerts/engine.ts';

function findBinary(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

const BINARY = findBinary('prometheus-alertmanager') ?? findBinary('alertmanager');
const TITLE = BINARY
  ? 'Alertmanager receives plumb alerts'
  : 'Alertmanager receives plumb alerts — SKIPPED: no prometheus-alertmanager (or alertmanager) binary on PATH; install the Debian package prometheus-alertmanager';

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  status: { state: string };
}

interface AmNotification {
  status: string;
  alerts: { status: string; labels: Record<string, string> }[];
}

describe.skipIf(!BINARY)(TITLE, () => {
  let dir: string;
  let am: ChildProcess;
  let amOutput = '';
  let amUrl: string;
  let receiver: Server;
  const notifications: AmNotification[] = [];
  let engine: AlertEngine;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'plumb-am-'));
    // Alertmanager's own receiver: a webhook back into this test.
    receiver = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        notifications.push(JSON.parse(body) as AmNotification);
        res.end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
    writeFileSync(
      join(dir, 'alertmanager.yml'),
      YAML.stringify({
        route: { receiver: 'test', group_by: ['alertname'], group_wait: '0s', group_interval: '1s', repeat_interval: '1h' },
        receivers: [{ name: 'test', webhook_configs: [{ url: receiverUrl, send_resolved: true }] }],
      }),
    );
    const port = await freePort();
    amUrl = `http://127.0.0.1:${port}`;
    am = spawn(
      BINARY!,
      [`--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    am.stdout!.on('data', (c: Buffer) => (amOutput += c.toString()));
    am.stderr!.on('data', (c: Buffer) => (amOutput += c.toString()));
    await waitFor(`Alertmanager on ${amUrl} to be ready`, async () => {
      if (am.exitCode !== null) throw new Error(`Alertmanager exited with ${am.exitCode}: ${amOutput}`);
      const res = await fetch(`${amUrl}/-/ready`);
      return res.ok ? true : undefined;
    });

    const config = loadConfig(AlertsConfigSchema, {
      text: YAML.stringify({ alertmanager: { urls: [amUrl] }, externalUrl: 'http://plumb-collector:9102', delivery: { backoffInitial: '50ms', backoffMax: '500ms' } }),
    });
    engine = new AlertEngine({ config, telemetry: new Telemetry(), log: silentLogger() });
    const loaded = engine.loadRulesText(`
rules:
  - alert: QueueDeep
    metric: queue.depth
    aggregate: last
    window: 1m
    op: ">"
    threshold: 10
    labels: { severity: page }
    annotations: { summary: "queue {{ $labels.queue }} holds {{ $value }} items" }
`);
    expect(loaded.errors).toEqual([]);
    await engine.start();
  });

  afterAll(async () => {
    await engine?.stop(1000);
    if (am && am.exitCode === null) {
      const exited = new Promise((resolve) => am.once('exit', resolve));
      am.kill('SIGTERM');
      await exited;
    }
    await new Promise((resolve) => receiver?.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const activeAlerts = async (): Promise<AmAlert[]> => {
    const res = await fetch(`${amUrl}/api/v2/alerts`);
    return ((await res.json()) as AmAlert[]).filter((a) => a.labels.alertname === 'QueueDeep');
  };

  it('lists the alert as active while it fires, then drops it and notifies the resolution', async () => {
    const firedAt = Date.now();
    engine.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: { queue: 'mail' }, type: 'g', value: 42 }, firedAt);
    engine.evaluate(firedAt);

    const [alert] = await waitFor('the alert in Alertmanager', async () => {
      const alerts = await activeAlerts();
      return alerts.length > 0 ? alerts : undefined;
    });
    expect(alert.status.state).toBe('active');
    expect(alert.labels).toEqual({ alertname: 'QueueDeep', queue: 'mail', severity: 'page' });
    expect(alert.annotations).toEqual({ summary: 'queue mail holds 42 items' });
    expect(alert.generatorURL).toBe('http://plumb-collector:9102/api/v1/rules#QueueDeep');
    expect(Date.parse(alert.startsAt)).toBe(firedAt);
    // Valid for four resend intervals unless re-sent: Alertmanager expires it if plumb falls silent.
    expect(Date.parse(alert.endsAt)).toBe(firedAt + 4 * 60_000);
    await waitFor('Alertmanager to notify its receiver of the firing alert', async () =>
      notifications.some((n) => n.alerts.some((a) => a.status === 'firing' && a.labels.queue === 'mail')) ? true : undefined,
    );

    const resolvedAt = Date.now();
    engine.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: { queue: 'mail' }, type: 'g', value: 3 }, resolvedAt);
    engine.evaluate(resolvedAt);
    await waitFor('the alert to leave the active list', async () => ((await activeAlerts()).length === 0 ? true : undefined));
    await waitFor('Alertmanager to notify its receiver of the resolution', async () =>
      notifications.some((n) => n.status === 'resolved' && n.alerts.some((a) => a.status === 'resolved' && a.labels.queue === 'mail')) ? true : undefined,
    );
  });
});
