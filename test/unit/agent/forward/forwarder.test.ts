import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, appendFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import os from 'node:os';
import { Forwarder, metricsLaneName, type ForwarderOptions } from '../../../../agent/forward/forwarder.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { waitFor } from '../../../helpers/wait.ts';
import { metricValue } from '../../../helpers/metrics.ts';
import { startScriptedCollector, stopScriptedCollectors, type ScriptedAnswer } from '../../../helpers/scripted-collector.ts';

/** The scripted collector's acknowledged batches (health probes carry no batch id and are left out). */
async function collectorServer(answer: (n: number) => ScriptedAnswer = () => ({ status: 200 })) {
  const c = await startScriptedCollector(answer);
  return {
    ...c,
    get received() {
      return c.acknowledged.filter((r) => r.batchId !== 'undefined').map((r) => ({ id: r.batchId, body: JSON.parse(r.text) as unknown }));
    },
  };
}

const forwarders: Forwarder[] = [];
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(os.tmpdir(), 'plumb-forward-'));
});

afterEach(async () => {
  for (const f of forwarders.splice(0)) await f.stop(100);
  await stopScriptedCollectors();
  await rm(dir, { recursive: true, force: true });
});

function forwarder(collectors: string[], over: Partial<ForwarderOptions> = {}, telemetry = new Telemetry()) {
  const f = new Forwarder(
    {
      collectors,
      timeoutMs: 2000,
      maxQueueBytes: 1 << 20,
      maxQueueBatches: 100,
      backoff: { initialMs: 10, maxMs: 50 },
      compress: true,
      healthCheckIntervalMs: 50,
      ...over,
    },
    { telemetry, log: silentLogger() },
  );
  forwarders.push(f);
  return { f, telemetry };
}

function spoolOptions(over: Partial<NonNullable<ForwarderOptions['spool']>> = {}): ForwarderOptions['spool'] {
  return { dir: join(dir, 'spool'), maxBytes: 8 << 20, segmentBytes: 1 << 20, fsync: 'batch', ...over };
}

const metric = (t: Telemetry, name: string, labels: Record<string, string> = {}) => metricValue(t.registry, name, labels);

describe('forwarder', () => {
  it('delivers gzip batches in order and reports each acknowledged', async () => {
    const c = await collectorServer();
    const { f } = forwarder([c.url]);
    await f.start();
    const acked: string[] = [];
    for (let i = 1; i <= 5; i++) await f.send('metrics', '/v1/metrics', `b${i}`, { n: i }, (r) => r === 'delivered' && acked.push(`b${i}`));
    await waitFor(() => acked.length === 5);
    expect(c.received.map((r) => r.id)).toEqual(['b1', 'b2', 'b3', 'b4', 'b5']);
    expect(c.received[2].body).toEqual({ n: 3 });
  });

  it('retries 429 and 5xx until accepted, without losing or reordering', async () => {
    const c = await collectorServer((n) => (n < 3 ? { status: n === 0 ? 429 : 503, headers: { 'retry-after': '0' } } : { status: 200 }));
    const { f, telemetry } = forwarder([c.url], { healthCheckIntervalMs: 60_000 });
    await f.start();
    await f.send('metrics', '/v1/metrics', 'only', { x: 1 });
    await waitFor(() => c.received.length === 1);
    expect(c.requests()).toBe(4);
    expect(await metric(telemetry, 'plumb_forward_retries_total', { kind: 'metrics', reason: 'status' })).toBe(3);
  });

  it('drops a batch the collector refuses permanently, counts it, and goes on', async () => {
    const c = await collectorServer((n) => ({ status: n === 0 ? 400 : 200 }));
    const { f, telemetry } = forwarder([c.url]);
    await f.start();
    const outcome: boolean[] = [];
    await f.send('metrics', '/v1/metrics', 'bad', {}, (r) => outcome.push(r === 'delivered'));
    await f.send('metrics', '/v1/metrics', 'good', {}, (r) => outcome.push(r === 'delivered'));
    await waitFor(() => outcome.length === 2);
    expect(outcome).toEqual([false, true]);
    expect(await metric(telemetry, 'plumb_forward_dropped_total', { kind: 'metrics', reason: 'rejected' })).toBe(1);
  });

  it('sends traces and logs to a collector that is up when another is down, and marks the dead one down', async () => {
    const down = await collectorServer();
    await down.close();
    const up = await collectorServer();
    const { f, telemetry } = forwarder([down.url, up.url], { healthCheckIntervalMs: 60_000 });
    await f.start();
    for (let i = 0; i < 4; i++) await f.send('traces', '/v1/traces', `t${i}`, { i });
    await f.send('logs', '/v1/logs', 'l0', Buffer.from('{"message":"x"}\n'), undefined, { contentType: 'application/x-ndjson' });
    await waitFor(() => up.received.length === 5);
    expect(up.received.map((r) => r.id).sort()).toEqual(['l0', 't0', 't1', 't2', 't3']);
    expect(await metric(telemetry, 'plumb_forward_collector_up', { collector: down.url })).toBe(0);
    expect(await metric(telemetry, 'plumb_forward_collector_up', { collector: up.url })).toBe(1);
    expect(f.shardTargets()).toEqual([up.url]);
  });

  it('keeps a metrics batch for the collector it is addressed to, and delivers it once a probe finds that collector up again', async () => {
    let broken = true;
    const a = await collectorServer(() => ({ status: broken ? 503 : 200 }));
    const b = await collectorServer();
    const { f, telemetry } = forwarder([a.url, b.url], { backoff: { initialMs: 60_000, maxMs: 60_000 } });
    await f.start();
    await f.send('metrics', '/v1/metrics', 'for-a', { to: 'a' }, undefined, { collector: a.url });
    await waitFor(async () => (await metric(telemetry, 'plumb_forward_collector_up', { collector: a.url })) === 0, { what: 'a marked down' });
    // while a is down, b's lane is not held up
    await f.send('metrics', '/v1/metrics', 'for-b', { to: 'b' }, undefined, { collector: b.url });
    await waitFor(() => b.received.length === 1);
    broken = false;
    // the retry wait is a minute: only the probe's wake-up can deliver it this soon
    await waitFor(() => a.received.length === 1, { what: 'the batch delivered to a' });
    expect(a.received[0].id).toBe('for-a');
    expect(b.received.map((r) => r.id)).toEqual(['for-b']);
    expect(await metric(telemetry, 'plumb_forward_collector_up', { collector: a.url })).toBe(1);
  });

  it('lanes send side by side: a collector that never answers holds up only its own lane', async () => {
    const hang = await collectorServer(() => 'hang');
    const ok = await collectorServer();
    const { f } = forwarder([hang.url, ok.url], { timeoutMs: 30_000 });
    await f.start();
    await f.send('metrics', '/v1/metrics', 'stuck', {}, undefined, { collector: hang.url });
    await waitFor(() => hang.requests() === 1);
    for (let i = 0; i < 3; i++) await f.send('metrics', '/v1/metrics', `m${i}`, {}, undefined, { collector: ok.url });
    await waitFor(() => ok.received.length === 3);
  });

  it('refuses and counts batches past its memory queue limit instead of growing', async () => {
    const { f, telemetry } = forwarder(['http://127.0.0.1:9'], { maxQueueBatches: 2 });
    // not started: nothing drains
    const outcomes = [];
    for (let i = 0; i < 4; i++) outcomes.push(await f.send('metrics', '/v1/metrics', `b${i}`, {}));
    expect(outcomes).toEqual(['queued', 'queued', 'queue_full', 'queue_full']);
    expect(f.queuedBatches).toBe(2);
    expect(await metric(telemetry, 'plumb_forward_dropped_total', { kind: 'metrics', reason: 'queue_full' })).toBe(2);
    expect(await metric(telemetry, 'plumb_forward_lane_queue_batches', { lane: metricsLaneName('http://127.0.0.1:9') })).toBe(2);
  });

  it('gives back a log body the caller releases once its gzip is queued, and delivers the gzip; keeps a body it sends as it is or refuses', async () => {
    const lines = (tag: string) => Buffer.from(Array.from({ length: 5000 }, (_, i) => `{"message":"${tag} ${i}"}\n`).join(''));
    const c = await collectorServer();
    const { f } = forwarder([c.url]);
    await f.start();
    const body = lines('a');
    const text = body.toString();
    let done = '';
    expect(await f.send('logs', '/v1/logs', 'l1', body, (r) => (done = r), { contentType: 'application/x-ndjson', whenFull: 'refuse', release: true })).toBe('queued');
    expect(body.length).toBe(0);
    await waitFor(() => done === 'delivered');
    expect(c.acknowledged.find((r) => r.batchId === 'l1')?.text).toBe(text);

    const plain = forwarder(['http://127.0.0.1:9'], { compress: false, maxQueueBatches: 1 }).f;
    const kept = lines('b');
    expect(await plain.send('logs', '/v1/logs', 'l2', kept, undefined, { contentType: 'application/x-ndjson', whenFull: 'refuse', release: true })).toBe('queued');
    expect(kept.toString()).toBe(lines('b').toString());
    const gzipped = forwarder(['http://127.0.0.1:9'], { maxQueueBatches: 1 }).f;
    await gzipped.send('logs', '/v1/logs', 'l3', lines('c'), undefined, { whenFull: 'refuse', release: true });
    const refused = lines('d');
    expect(await gzipped.send('logs', '/v1/logs', 'l4', refused, undefined, { whenFull: 'refuse', release: true })).toBe('queue_full');
    expect(refused.toString()).toBe(lines('d').toString());
  });

  it('counts only memory-held batches as dropped at shutdown when the spool is off', async () => {
    const c = await collectorServer();
    await c.close();
    const { f, telemetry } = forwarder([c.url]);
    await f.start();
    await f.send('metrics', '/v1/metrics', 'lost', {});
    await f.send('logs', '/v1/logs', 'reread', Buffer.from('x\n'));
    await f.stop(50);
    expect(await metric(telemetry, 'plumb_forward_dropped_total', { kind: 'metrics', reason: 'shutdown' })).toBe(1);
    // logs are read again from their files: not lost
    expect(await metric(telemetry, 'plumb_forward_dropped_total', { kind: 'logs', reason: 'shutdown' })).toBe(0);
  });
});

describe('forwarder spool', () => {
  it('writes through: what a stopped forwarder could not deliver is sent after the next start, with its original ids', async () => {
    const down = await collectorServer();
    await down.close();
    const first = forwarder([down.url], { spool: spoolOptions() });
    await first.f.start();
    for (let i = 0; i < 3; i++) expect(await first.f.send('metrics', '/v1/metrics', `agent@1:${i}:0`, { i })).toBe('queued');
    await first.f.send('traces', '/v1/traces', 'spans-1', { spans: [] });
    // on disk before send() resolved
    expect(await metric(first.telemetry, 'plumb_spool_records', { spool: `forward_${metricsLaneName(down.url)}` })).toBe(3);
    expect(await metric(first.telemetry, 'plumb_spool_records', { spool: 'forward_traces' })).toBe(1);
    expect(first.f.queuedBatches).toBe(4);
    expect(await metric(first.telemetry, 'plumb_forward_queue_batches')).toBe(4);
    await first.f.stop(100);
    expect(await metric(first.telemetry, 'plumb_forward_dropped_total', { kind: 'metrics', reason: 'shutdown' })).toBe(0);

    // the same collector URL, now answering: a server that takes over the address
    const port = Number(new URL(down.url).port);
    const back = await listenOn(port);
    const second = forwarder([down.url], { spool: spoolOptions() });
    await second.f.start();
    await waitFor(() => back.ids.length === 4);
    expect(back.ids.filter((id) => id.startsWith('agent@1')).sort()).toEqual(['agent@1:0:0', 'agent@1:1:0', 'agent@1:2:0']);
    expect(back.ids).toContain('spans-1');
    await waitFor(() => second.f.queuedBatches === 0);
    await back.close();
  });

  it('gives back a body the caller releases once it is on disk, and sends what it reads back from there', async () => {
    const metrics = (n: number) => Buffer.from(JSON.stringify({ metrics: Array.from({ length: n }, (_, i) => ({ type: 'c', name: `m${i}`, tags: [], value: i })) }));
    const c = await collectorServer();
    for (const compress of [false, true]) {
      const { f } = forwarder([c.url], { compress, spool: spoolOptions({ dir: join(dir, `spool-${compress}`) }) });
      await f.start();
      // compress off: the body goes out as it is (already the JSON sent); on: it is gzipped here, and both copies are dead once on disk
      const body = metrics(3000);
      const expected = JSON.parse(body.toString()) as unknown;
      const id = `agent@1:${compress ? 1 : 0}:0`;
      expect(await f.send('metrics', '/v1/metrics', id, body, undefined, { collector: c.url, encoded: !compress, release: true })).toBe('queued');
      expect(body.length).toBe(0);
      await waitFor(() => c.received.some((r) => r.id === id));
      expect(c.received.find((r) => r.id === id)?.body).toEqual(expected);
      await waitFor(() => f.queuedBatches === 0);
    }
  });

  it('moves batches queued before start into the spool, and delivers them', async () => {
    const c = await collectorServer();
    const { f } = forwarder([c.url], { spool: spoolOptions() });
    expect(await f.send('metrics', '/v1/metrics', 'early', { early: true })).toBe('queued');
    await f.start();
    await waitFor(() => c.received.length === 1);
    expect(c.received[0]).toEqual({ id: 'early', body: { early: true } });
  });

  it('drops and counts a batch that does not fit in the spool, and keeps delivering the rest', async () => {
    let answer = 503;
    const c = await collectorServer(() => ({ status: answer }));
    // two lanes (one metrics, traces) share 64 KiB: 32 KiB each
    const { f, telemetry } = forwarder([c.url], { spool: spoolOptions({ maxBytes: 64 << 10, segmentBytes: 8 << 10 }), compress: false });
    await f.start();
    const big = { pad: 'x'.repeat(6000) };
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) outcomes.push(await f.send('metrics', '/v1/metrics', `m${i}`, big));
    expect(outcomes.slice(0, 4)).toEqual(['queued', 'queued', 'queued', 'queued']);
    expect(outcomes).toContain('spool_full');
    const full = outcomes.filter((o) => o === 'spool_full').length;
    expect(await metric(telemetry, 'plumb_forward_dropped_total', { kind: 'metrics', reason: 'spool_full' })).toBe(full);
    answer = 200;
    await waitFor(() => c.received.length === 8 - full, { what: 'the spooled batches delivered' });
    expect(await f.send('metrics', '/v1/metrics', 'after', big)).toBe('queued');
    await waitFor(() => c.received.some((r) => r.id === 'after'));
  });

  it('removes a batch a collector refuses permanently from the spool', async () => {
    const c = await collectorServer((n) => ({ status: n === 0 ? 422 : 200 }));
    const { f, telemetry } = forwarder([c.url], { spool: spoolOptions() });
    await f.start();
    await f.send('metrics', '/v1/metrics', 'refused', {});
    await f.send('metrics', '/v1/metrics', 'fine', {});
    await waitFor(() => c.received.length === 1);
    await waitFor(() => f.queuedBatches === 0);
    expect(await metric(telemetry, 'plumb_forward_dropped_total', { kind: 'metrics', reason: 'rejected' })).toBe(1);
    await f.stop(100);
    // nothing comes back after a restart
    const again = forwarder([c.url], { spool: spoolOptions() });
    await again.f.start();
    expect(again.f.queuedBatches).toBe(0);
  });

  it('skips and counts a torn record at the end of a spool segment, and sends the records before it', async () => {
    const down = await collectorServer();
    await down.close();
    const first = forwarder([down.url], { spool: spoolOptions() });
    await first.f.start();
    await first.f.send('metrics', '/v1/metrics', 'whole-1', { a: 1 });
    await first.f.send('metrics', '/v1/metrics', 'whole-2', { a: 2 });
    await first.f.stop(50);
    const laneDir = join(dir, 'spool', metricsLaneName(down.url));
    const segment = (await readdir(laneDir)).find((n) => n.endsWith('.seg'));
    // the start of a frame whose body never made it to disk (a kill -9 mid-write)
    await appendFile(join(laneDir, segment as string), Buffer.from([0x50, 0x4c, 0x53, 0x01, 0xff, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5, 6]));

    const back = await listenOn(Number(new URL(down.url).port));
    const second = forwarder([down.url], { spool: spoolOptions() });
    await second.f.start();
    expect(await metric(second.telemetry, 'plumb_spool_corrupt_total', { spool: `forward_${metricsLaneName(down.url)}`, reason: 'torn' })).toBe(1);
    await waitFor(() => back.ids.length === 2);
    expect(back.ids).toEqual(['whole-1', 'whole-2']);
    await back.close();
  });

  it('re-routes the spooled metrics of a collector no longer configured, then removes its lane', async () => {
    const gone = await collectorServer();
    await gone.close();
    const first = forwarder([gone.url], { spool: spoolOptions() });
    await first.f.start();
    await first.f.send('metrics', '/v1/metrics', 'old:7:0', { old: true });
    await first.f.stop(50);

    const now = await collectorServer();
    const second = forwarder([now.url], { spool: spoolOptions() });
    await second.f.start();
    await waitFor(() => now.received.length === 1);
    expect(now.received[0]).toEqual({ id: 'old:7:0', body: { old: true } });
    const oldDir = join(dir, 'spool', metricsLaneName(gone.url));
    await waitFor(async () => !(await stat(oldDir).then(() => true, () => false)), { what: 'the old lane removed' });
  });
});

/** A collector stand-in on a given port (one that a closed scripted collector had), recording batch ids. */
async function listenOn(port: number) {
  const http = await import('node:http');
  const ids: string[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST') ids.push(String(req.headers['x-plumb-batch-id']));
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    ids,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe('forwarder: log batches in flight at once', () => {
  it('posts up to logsInFlight log batches at once and acknowledges each once, in any order', async () => {
    const { createServer } = await import('node:http');
    const open: { id: string; done: () => void }[] = [];
    const seen: string[] = [];
    let most = 0;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url !== '/v1/logs') return res.writeHead(200).end('{}');
        const id = String(req.headers['x-plumb-batch-id']);
        seen.push(id);
        open.push({ id, done: () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}') });
        most = Math.max(most, open.length);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const { f } = forwarder([url], { logsInFlight: 3, healthCheckIntervalMs: 60_000 });
      await f.start();
      const acked: string[] = [];
      for (let i = 1; i <= 7; i++) await f.send('logs', '/v1/logs', `l${i}`, Buffer.from(`{"n":${i}}\n`), (r) => r === 'delivered' && acked.push(`l${i}`), { contentType: 'application/x-ndjson' });
      await waitFor(() => open.length === 3);
      expect(acked).toEqual([]);
      // answer the last one first: acknowledgements need not follow the order of sending
      while (acked.length < 7) {
        await waitFor(() => open.length > 0);
        open.splice(open.length - 1, 1)[0].done();
        await waitFor(() => open.length > 0 || acked.length === 7);
      }
      expect(most).toBe(3);
      expect([...acked].sort()).toEqual(['l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'l7']);
      expect([...seen].sort()).toEqual(['l1', 'l2', 'l3', 'l4', 'l5', 'l6', 'l7']);
      expect(f.queuedBatches).toBe(0);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
