/**
 * The alert engine against a real Prometheus Alertmanager (Debian's prometheus-alertmanager),
 * started on free ports with clustering off and its storage in a temporary directory. An alert
 * that fires in plumb must show up in Alertmanager's API as active and reach Alertmanager's own
 * receiver; when it resolves in plumb, Alertmanager must drop it from its active alerts and
 * notify its receiver of the resolution.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadConfig } from '../../shared/config.ts';
import { silentLogger } from '../../shared/log.ts';
import { Telemetry } from '../../shared/telemetry.ts';
import { AlertsConfigSchema } from '../../collector/alerts/config.ts';
import { AlertEngine } from '../../collector/alerts/engine.ts';
import { findBinary } from '../helpers/prometheus.ts';
import { freeTcpPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const BINARY = findBinary('prometheus-alertmanager') ?? findBinary('alertmanager');
const TITLE = BINARY
  ? 'Alertmanager receives plumb alerts'
  : 'Alertmanager receives plumb alerts — SKIPPED: no prometheus-alertmanager (or alertmanager) binary on PATH; install the Debian package prometheus-alertmanager';

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
    const port = await freeTcpPort();
    amUrl = `http://127.0.0.1:${port}`;
    am = spawn(
      BINARY!,
      [`--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    am.stdout!.on('data', (c: Buffer) => (amOutput += c.toString()));
    am.stderr!.on('data', (c: Buffer) => (amOutput += c.toString()));
    await waitFor(
      async () => {
        if (am.exitCode !== null) throw new Error(`Alertmanager exited with ${am.exitCode}: ${amOutput}`);
        return (await fetch(`${amUrl}/-/ready`)).ok;
      },
      { what: `Alertmanager on ${amUrl} to be ready`, timeoutMs: 20_000 },
    );

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

    const [alert] = await waitFor(
      async () => {
        const alerts = await activeAlerts();
        return alerts.length > 0 ? alerts : undefined;
      },
      { what: 'the alert in Alertmanager', timeoutMs: 20_000 },
    );
    expect(alert.status.state).toBe('active');
    expect(alert.labels).toEqual({ alertname: 'QueueDeep', queue: 'mail', severity: 'page' });
    expect(alert.annotations).toEqual({ summary: 'queue mail holds 42 items' });
    expect(alert.generatorURL).toBe('http://plumb-collector:9102/api/v1/rules#QueueDeep');
    expect(Date.parse(alert.startsAt)).toBe(firedAt);
    // Valid for four resend intervals unless re-sent: Alertmanager expires it if plumb falls silent.
    expect(Date.parse(alert.endsAt)).toBe(firedAt + 4 * 60_000);
    await waitFor(() => notifications.some((n) => n.alerts.some((a) => a.status === 'firing' && a.labels.queue === 'mail')), {
      what: 'Alertmanager to notify its receiver of the firing alert',
      timeoutMs: 20_000,
    });

    const resolvedAt = Date.now();
    engine.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: { queue: 'mail' }, type: 'g', value: 3 }, resolvedAt);
    engine.evaluate(resolvedAt);
    await waitFor(async () => (await activeAlerts()).length === 0, { what: 'the alert to leave the active list', timeoutMs: 20_000 });
    await waitFor(() => notifications.some((n) => n.status === 'resolved' && n.alerts.some((a) => a.status === 'resolved' && a.labels.queue === 'mail')), {
      what: 'Alertmanager to notify its receiver of the resolution',
      timeoutMs: 20_000,
    });
  });
});
