import { afterEach, describe, expect, it } from 'vitest';
import { Forwarder, type ForwarderOptions } from '../../../../agent/forward/forwarder.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { waitFor } from '../../../helpers/wait.ts';
import { startScriptedCollector, stopScriptedCollectors, type ScriptedAnswer } from '../../../helpers/scripted-collector.ts';

/** The scripted collector's acknowledged JSON bodies, with their batch ids. */
async function collectorServer(answer: (n: number) => ScriptedAnswer) {
  const c = await startScriptedCollector(answer);
  return {
    ...c,
    get received() {
      return c.acknowledged.map((r) => ({ id: r.batchId, body: JSON.parse(r.text) as unknown }));
    },
  };
}

const forwarders: Forwarder[] = [];
afterEach(async () => {
  for (const f of forwarders.splice(0)) await f.stop(100);
  await stopScriptedCollectors();
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
    await down.close();
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
