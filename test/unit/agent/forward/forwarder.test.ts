import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { Forwarder, type ForwarderOptions } from '../../../../agent/forward/forwarder.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { waitFor } from '../../../helpers/wait.ts';

interface Received {
  id: string;
  body: unknown;
}

/** A collector stand-in whose answers the test scripts: a real HTTP server on a free port. */
async function collectorServer(answer: (n: number) => { status: number; headers?: Record<string, string> }) {
  const received: Received[] = [];
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const n = requests++;
      const { status, headers } = answer(n);
      if (status < 300) {
        const raw = Buffer.concat(chunks);
        const text = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString() : raw.toString();
        received.push({ id: String(req.headers['x-plumb-batch-id']), body: JSON.parse(text) });
      }
      res.writeHead(status, headers).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  servers.push(server);
  return { url, received, requests: () => requests };
}

const servers: http.Server[] = [];
const forwarders: Forwarder[] = [];
afterEach(async () => {
  for (const f of forwarders.splice(0)) await f.stop(100);
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

function forwarder(collectors: string[], over: Partial<ForwarderOptions> = {}) {
  const telemetry = new Telemetry();
  const f = new Forwarder(
    { collectors, timeoutMs: 2000, maxQueueBytes: 1 << 20, maxQueueBatches: 100, backoff: { initialMs: 10, maxMs: 50 }, compress: true, ...over },
    { telemetry, log: silentLogger() },
  );
  forwarders.push(f);
  return { f, telemetry };
}

describe('forwarder', () => {
  it('delivers gzip batches in order and reports each acknowledged', async () => {
    const c = await collectorServer(() => ({ status: 200 }));
    const { f } = forwarder([c.url]);
    f.start();
    const acked: string[] = [];
    for (let i = 1; i <= 5; i++) await f.send('metrics', '/v1/metrics', `b${i}`, { n: i }, (r) => r === 'delivered' && acked.push(`b${i}`));
    await waitFor(() => acked.length === 5);
    expect(c.received.map((r) => r.id)).toEqual(['b1', 'b2', 'b3', 'b4', 'b5']);
    expect(c.received[2].body).toEqual({ n: 3 });
  });

  it('retries 429 and 5xx until accepted, without losing or reordering', async () => {
    const c = await collectorServer((n) => (n < 3 ? { status: n === 0 ? 429 : 503, headers: { 'retry-after': '0' } } : { status: 200 }));
    const { f, telemetry } = forwarder([c.url]);
    f.start();
    await f.send('metrics', '/v1/metrics', 'only', { x: 1 });
    await waitFor(() => c.received.length === 1);
    expect(c.requests()).toBe(4);
    expect(await telemetry.metrics()).toMatch(/plumb_forward_retries_total\{kind="metrics",reason="status"\} 3/);
  });

  it('drops a batch the collector refuses permanently, counts it, and goes on', async () => {
    const c = await collectorServer((n) => ({ status: n === 0 ? 400 : 200 }));
    const { f, telemetry } = forwarder([c.url]);
    f.start();
    const outcome: boolean[] = [];
    await f.send('metrics', '/v1/metrics', 'bad', {}, (r) => outcome.push(r === 'delivered'));
    await f.send('metrics', '/v1/metrics', 'good', {}, (r) => outcome.push(r === 'delivered'));
    await waitFor(() => outcome.length === 2);
    expect(outcome).toEqual([false, true]);
    expect(await telemetry.metrics()).toContain('plumb_forward_dropped_total{kind="metrics",reason="rejected"} 1');
  });

  it('fails over to the next collector when one is down', async () => {
    const down = await collectorServer(() => ({ status: 200 }));
    await new Promise((r) => servers.pop()!.close(r));
    const up = await collectorServer(() => ({ status: 200 }));
    const { f } = forwarder([down.url, up.url]);
    f.start();
    await f.send('metrics', '/v1/metrics', 'x', {});
    await waitFor(() => up.received.length === 1);
  });

  it('refuses and counts batches past its queue limit instead of growing', async () => {
    const { f, telemetry } = forwarder(['http://127.0.0.1:9'], { maxQueueBatches: 2 });
    // not started: nothing drains
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await f.send('metrics', '/v1/metrics', `b${i}`, {}));
    expect(outcomes).toEqual(['queued', 'queued', 'queue_full', 'queue_full']);
    expect(f.queuedBatches).toBe(2);
    expect(await telemetry.metrics()).toContain('plumb_forward_dropped_total{kind="metrics",reason="queue_full"} 2');
  });
});
