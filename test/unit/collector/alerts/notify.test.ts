import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { harness, sample, type Harness } from './harness.ts';
import { waitFor } from '../../../helpers/wait.ts';

const RULES = `
rules:
  - alert: QueueDeep
    metric: queue.depth
    aggregate: max
    window: 1m
    op: ">"
    threshold: 10
    labels: { severity: page }
    annotations: { summary: "{{ $labels.queue }} holds {{ $value }}" }
`;

interface Received {
  path: string;
  body: unknown;
}

/** A local HTTP receiver; `answer` decides each response (return undefined to never answer). */
async function receiver(answer: (n: number) => number | undefined = () => 200): Promise<{ url: string; got: Received[]; server: Server; hung: ServerResponse[] }> {
  const got: Received[] = [];
  const hung: ServerResponse[] = [];
  let n = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      got.push({ path: req.url ?? '', body: JSON.parse(text) });
      const status = answer(n++);
      if (status === undefined) hung.push(res);
      else res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got, server, hung };
}

const servers: Server[] = [];
const engines: Harness[] = [];
afterEach(async () => {
  for (const h of engines.splice(0)) await h.engine.stop(100);
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

function depth(h: Harness, value: number, queue = 'jobs'): void {
  h.engine.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: { queue }, type: 'g', value }, h.clock.t);
}

async function started(config: Record<string, unknown>): Promise<Harness> {
  const h = harness(RULES, { config: { delivery: { backoffInitial: '5ms', backoffMax: '20ms', maxAttempts: 3, timeout: '2s' }, ...config } });
  await h.engine.start();
  engines.push(h);
  return h;
}

describe('webhook notifications', () => {
  it('posts firing and resolved alerts to a JSON webhook (Alertmanager webhook shape) and to Slack', async () => {
    const r = await receiver();
    servers.push(r.server);
    const h = await started({ externalUrl: 'http://collector:9102', webhooks: [{ url: `${r.url}/json`, kind: 'json' }, { url: `${r.url}/slack`, kind: 'slack' }] });
    depth(h, 42);
    h.engine.evaluate(0);
    h.clock.t = 15_000;
    depth(h, 1);
    h.clock.t = 75_000; // the 42 has left the 1m window
    depth(h, 1);
    h.engine.evaluate(75_000);
    await waitFor(() => r.got.length === 4, { what: '4 deliveries' });

    const json = r.got.filter((g) => g.path === '/json').map((g) => g.body as Record<string, unknown>);
    expect(json.map((b) => b.status)).toEqual(['firing', 'resolved']);
    expect(json[0]).toMatchObject({
      version: '4',
      receiver: 'plumb',
      groupLabels: { alertname: 'QueueDeep' },
      commonLabels: { alertname: 'QueueDeep', queue: 'jobs', severity: 'page' },
      externalURL: 'http://collector:9102',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'QueueDeep', queue: 'jobs', severity: 'page' },
          annotations: { summary: 'jobs holds 42' },
          startsAt: new Date(0).toISOString(),
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: 'http://collector:9102/api/v1/rules#QueueDeep',
          value: 42,
        },
      ],
    });
    expect((json[1].alerts as { endsAt: string }[])[0].endsAt).toBe(new Date(75_000).toISOString());

    const slack = r.got.filter((g) => g.path === '/slack').map((g) => g.body);
    expect(slack).toEqual([{ text: '[FIRING] QueueDeep (queue=jobs severity=page) — jobs holds 42' }, { text: '[RESOLVED] QueueDeep (queue=jobs severity=page) — jobs holds 42' }]);
    // The receiver records a request before the engine has read its answer and counted it.
    const sent = async (kind: string) => sample(await h.telemetry.metrics(), `plumb_alerts_notifications_sent_total{kind="${kind}"}`);
    await waitFor(async () => (await sent('json')) === 2 && (await sent('slack')) === 2, { what: 'both deliveries of each kind counted' });
    expect(await sent('json')).toBe(2);
    expect(await sent('slack')).toBe(2);
  });

  it('retries 5xx answers with backoff and counts each failed attempt', async () => {
    const r = await receiver((n) => (n < 2 ? 503 : 200));
    servers.push(r.server);
    const h = await started({ webhooks: [{ url: r.url, kind: 'json' }] });
    depth(h, 42);
    h.engine.evaluate(0);
    await waitFor(() => r.got.length === 3, { what: 'delivery' });
    await h.engine.deliveryIdle();
    const text = await h.telemetry.metrics();
    expect(sample(text, 'plumb_alerts_notification_errors_total{kind="json",error_type="http_5xx"}')).toBe(2);
    expect(sample(text, 'plumb_alerts_notifications_sent_total{kind="json"}')).toBe(1);
    expect(r.got.map((g) => (g.body as { status: string }).status)).toEqual(['firing', 'firing', 'firing']);
  });

  it('does not retry a 4xx answer, and drops and counts the notification', async () => {
    const r = await receiver(() => 400);
    servers.push(r.server);
    const h = await started({ webhooks: [{ url: r.url, kind: 'slack' }] });
    depth(h, 42);
    h.engine.evaluate(0);
    await waitFor(() => r.got.length === 1, { what: 'one attempt' });
    await h.engine.deliveryIdle();
    const text = await h.telemetry.metrics();
    expect(r.got).toHaveLength(1);
    expect(sample(text, 'plumb_alerts_notifications_dropped_total{kind="slack",reason="failed"}')).toBe(1);
    expect(sample(text, 'plumb_alerts_notification_errors_total{kind="slack",error_type="http_4xx"}')).toBe(1);
  });

  it('keeps evaluating while a receiver hangs; the bounded queue drops and counts the overflow', async () => {
    const r = await receiver(() => undefined);
    servers.push(r.server);
    const h = await started({ webhooks: [{ url: r.url, kind: 'json' }], delivery: { queueSize: 2, timeout: '1h', maxAttempts: 1 } });
    // Each evaluation flips the alert: firing, resolved, firing, … — one notification each.
    for (let i = 0; i < 8; i++) {
      h.clock.t = i * 61_000;
      depth(h, i % 2 === 0 ? 42 : 1, 'q');
      h.engine.evaluate(h.clock.t);
    }
    expect(h.engine.alertsJSON().data.alerts).toHaveLength(0); // the eighth evaluation ran and resolved it
    await waitFor(() => r.got.length === 1, { what: 'the first request to hang' });
    const text = await h.telemetry.metrics();
    // Evaluation is synchronous, so all eight arrive before the sender runs: two fit (the first is
    // now in flight and still counts until delivered), six are refused.
    expect(sample(text, 'plumb_alerts_notification_queue_length{kind="json"}')).toBe(2);
    expect(sample(text, 'plumb_alerts_notifications_dropped_total{kind="json",reason="queue_full"}')).toBe(6);
  });
});

describe('lifecycle', () => {
  it('delivers again after stop → start', async () => {
    const r = await receiver();
    servers.push(r.server);
    const h = await started({ webhooks: [{ url: r.url, kind: 'json' }] });
    depth(h, 42);
    h.engine.evaluate(0);
    await waitFor(() => r.got.length === 1, { what: 'the firing notification' });
    await h.engine.stop(1000);
    await h.engine.start();
    h.clock.t = 75_000;
    depth(h, 1);
    h.engine.evaluate(75_000);
    await waitFor(() => r.got.length === 2, { what: 'the resolved notification' });
    expect(r.got.map((g) => (g.body as { status: string }).status)).toEqual(['firing', 'resolved']);
  });
});

describe('Alertmanager notifications', () => {
  it('sends firing alerts with endsAt ahead, re-sends them every resendInterval, and sends the resolution', async () => {
    const posts: { url: string; alerts: Record<string, unknown>[] }[] = [];
    const h = harness(RULES, {
      config: { alertmanager: { urls: ['http://am-1:9093/', 'http://am-2:9093'] }, resendInterval: '1m', evaluationInterval: '15s' },
      post: async (url, body) => {
        posts.push({ url, alerts: JSON.parse(body) as Record<string, unknown>[] });
      },
    });
    await h.engine.start();
    engines.push(h);
    for (let t = 0; t <= 120_000; t += 15_000) {
      h.clock.t = t;
      depth(h, 42);
      h.engine.evaluate(t);
    }
    h.clock.t = 195_000;
    depth(h, 1);
    h.engine.evaluate(195_000);
    await h.engine.deliveryIdle();

    expect(new Set(posts.map((p) => p.url))).toEqual(new Set(['http://am-1:9093/api/v2/alerts', 'http://am-2:9093/api/v2/alerts']));
    const toFirst = posts.filter((p) => p.url.startsWith('http://am-1'));
    // Sent at 0, re-sent at 60 s and 120 s while firing; endsAt = now + 4 × max(resend, evaluation).
    expect(toFirst.map((p) => p.alerts[0].endsAt)).toEqual([240_000, 300_000, 360_000, 195_000].map((ms) => new Date(ms).toISOString()));
    expect(toFirst[0].alerts[0]).toEqual({
      labels: { alertname: 'QueueDeep', queue: 'jobs', severity: 'page' },
      annotations: { summary: 'jobs holds 42' },
      startsAt: new Date(0).toISOString(),
      endsAt: new Date(240_000).toISOString(),
      generatorURL: 'http://localhost:9102/api/v1/rules#QueueDeep',
    });
  });

  it('resolves the alerts of a rule removed by a reload', async () => {
    const posts: Record<string, unknown>[][] = [];
    const h = harness(RULES, { config: { alertmanager: { urls: ['http://am:9093'] } }, post: async (_u, body) => void posts.push(JSON.parse(body)) });
    await h.engine.start();
    engines.push(h);
    depth(h, 42);
    h.engine.evaluate(0);
    h.clock.t = 5_000;
    expect(h.engine.loadRulesText('rules: []').ok).toBe(true);
    await h.engine.deliveryIdle();
    expect(posts.map((p) => p[0].endsAt)).toEqual([new Date(240_000).toISOString(), new Date(5_000).toISOString()]);
  });
});
