/**
 * The log router with its real disk queues against real servers: the Elasticsearch test server
 * (the _bulk contract), s3rver (the S3 protocol), and files on disk. What an operator relies on:
 * every accepted event arrives in every sink exactly once, however long a sink is away; refused
 * events are in the dead-letter file with their reason; one sink's trouble does not hold back
 * the others; a full queue answers 429; a restart loses nothing.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RetryableError } from '../../shared/errors.ts';
import { silentLogger } from '../../shared/log.ts';
import { Telemetry } from '../../shared/telemetry.ts';
import { CollectorLogsSchema } from '../../collector/logs/config.ts';
import { LogRouter, type AcceptedLogBatch } from '../../collector/logs/router.ts';
import { startEsServer, type EsTestServer } from '../helpers/es-server.ts';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';
import { metricValue } from '../helpers/metrics.ts';
import { waitFor } from '../helpers/wait.ts';

let dataDir: string;
const cleanup: (() => Promise<unknown>)[] = [];
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'plumb-logs-sinks-'));
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await rm(dataDir, { recursive: true, force: true });
});

async function es(options: Parameters<typeof startEsServer>[0] = {}): Promise<EsTestServer> {
  const s = await startEsServer(options);
  cleanup.push(() => s.stop());
  return s;
}

async function s3(): Promise<S3TestServer> {
  const s = await startS3Server();
  cleanup.push(() => s.destroy());
  return s;
}

function esConfig(server: { url: string }, extra: Record<string, unknown> = {}) {
  return { node: server.url, retryInitial: '20ms', retryMax: '200ms', flushInterval: '50ms', timeout: '5s', ...extra };
}

function s3Config(server: S3TestServer, prefix: string) {
  return {
    bucket: server.bucket,
    prefix,
    endpoint: server.url,
    forcePathStyle: true,
    credentials: { ...server.credentials },
    rollover: { bytes: '256kb', interval: '100ms' },
    maxAttempts: 1,
    timeout: '5s',
    retryInitial: '20ms',
    retryMax: '200ms',
  };
}

async function router(logs: Record<string, unknown>) {
  const telemetry = new Telemetry();
  const config = Value.Decode(CollectorLogsSchema, Value.Default(CollectorLogsSchema, structuredClone(logs)));
  const r = await LogRouter.create(config, { telemetry, log: silentLogger(), dataDir });
  cleanup.push(() => r.stop(Date.now() + 2000));
  const metric = (name: string, labels: Record<string, string>) => metricValue(telemetry.registry, name, labels);
  return { r, telemetry, metric };
}

const run = randomBytes(3).toString('hex');

/** `n` batches of `size` events, ids unique per test run. */
function batches(n: number, size: number, tag = 'e'): AcceptedLogBatch[] {
  return Array.from({ length: n }, (_, b) => {
    let text = '';
    for (let i = 0; i < size; i++) {
      const k = b * size + i;
      text += JSON.stringify({ '@timestamp': `2026-11-24T${String(10 + (k % 3)).padStart(2, '0')}:00:00.000Z`, message: `GET /item/${k} 200`, event: { id: `${run}${tag}${k}` }, host: { name: `web-${k % 2}` }, log: { file: { path: '/var/log/app.log' }, offset: k * 100 } }) + '\n';
    }
    return { id: `${tag}-batch-${b}`, ndjson: Buffer.from(text), count: size };
  });
}

async function fileLines(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.name.endsWith('.ndjson')) out.push(...(await readFile(p, 'utf8')).split('\n').filter(Boolean));
    }
  };
  await walk(dir);
  return out;
}

async function s3Events(server: S3TestServer, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for (const key of await server.keys(prefix)) for (const l of (await server.text(key)).split('\n').filter(Boolean)) ids.push(JSON.parse(l).event.id);
  return ids;
}

describe('log sinks end to end', () => {
  it('with no sink configured, writes the events to files under <dataDir>/logs', async () => {
    const { r } = await router({});
    expect(r.sinks).toEqual(['file']);
    r.start();
    for (const b of batches(4, 25)) await r.accept(b);
    await waitFor(async () => (await fileLines(join(dataDir, 'logs'))).length === 100);
    const hours = await readdir(join(dataDir, 'logs', '2026', '11', '24'));
    expect(hours.sort()).toEqual(['10', '11', '12']);
  });

  it('delivers every event to files, Elasticsearch and S3, once each', async () => {
    const search = await es();
    const archive = await s3();
    const prefix = `all-${run}/`;
    const { r, metric } = await router({ sinks: { file: { flushInterval: '50ms' }, elasticsearch: esConfig(search), s3: s3Config(archive, prefix) } });
    r.start();
    for (const b of batches(10, 50)) await r.accept(b);
    await waitFor(() => r.status().every((s) => s.queue.events === 0 && s.delivered === 500), { timeoutMs: 20_000, what: 'every sink to deliver 500 events' });
    expect(search.count()).toBe(500);
    expect(new Set(search.docs().map((d) => d.id)).size).toBe(500);
    expect(search.docs().every((d) => d.index.startsWith('plumb-logs-2026.11.24'))).toBe(true);
    const archived = await s3Events(archive, prefix);
    expect(archived).toHaveLength(500);
    expect(new Set(archived).size).toBe(500);
    expect(await fileLines(join(dataDir, 'logs'))).toHaveLength(500);
    for (const sink of ['file', 'elasticsearch', 's3']) {
      expect(await metric('plumb_sink_events_total', { sink, outcome: 'delivered' })).toBe(500);
      expect(await metric('plumb_sink_queue_events', { sink })).toBe(0);
    }
  });

  it('keeps the events while Elasticsearch is down, without holding back the file sink, and delivers them all when it is back', async () => {
    let search = await es();
    const port = search.port;
    const store = search.store;
    await search.stop();
    const { r, metric } = await router({ sinks: { file: { flushInterval: '50ms' }, elasticsearch: esConfig(search) } });
    r.start();
    for (const b of batches(8, 40)) await r.accept(b);
    await waitFor(async () => (await fileLines(join(dataDir, 'logs'))).length === 320, { what: 'the file sink to write everything while Elasticsearch is down' });
    const down = r.status().find((s) => s.name === 'elasticsearch')!;
    expect(down.queue.events).toBe(320);
    expect(down.state).toBe('unavailable');
    expect(down.lastError?.message).toMatch(/cannot reach elasticsearch/);
    expect(await metric('plumb_sink_queue_events', { sink: 'elasticsearch' })).toBe(320);

    search = await es({ port, store });
    await waitFor(() => r.status().find((s) => s.name === 'elasticsearch')!.queue.events === 0, { timeoutMs: 20_000 });
    expect(search.count()).toBe(320);
    const delivered = await metric('plumb_sink_events_total', { sink: 'elasticsearch', outcome: 'delivered' });
    const duplicate = await metric('plumb_sink_events_total', { sink: 'elasticsearch', outcome: 'duplicate' });
    expect(delivered + duplicate).toBe(320);
    expect(delivered).toBe(320);
  });

  it('retries through bulk failures and throttled items, with exact counts', async () => {
    const search = await es();
    const { r, metric } = await router({ sinks: { elasticsearch: esConfig(search) } });
    search.failNextBulk(3, 503);
    search.throttleNextItems(30);
    r.start();
    for (const b of batches(5, 40)) await r.accept(b);
    await waitFor(() => r.status()[0].queue.events === 0, { timeoutMs: 20_000 });
    expect(search.count()).toBe(200);
    expect(await metric('plumb_sink_events_total', { sink: 'elasticsearch', outcome: 'delivered' })).toBe(200);
    expect(await metric('plumb_sink_retries_total', { sink: 'elasticsearch', reason: 'server_error' })).toBe(3);
    expect(await metric('plumb_sink_retries_total', { sink: 'elasticsearch', reason: 'item_throttled' })).toBeGreaterThanOrEqual(1);
  });

  it('puts the events Elasticsearch refuses in the dead-letter file with their reason, and delivers the rest', async () => {
    const search = await es({ numericField: 'status' });
    const { r, metric } = await router({ sinks: { elasticsearch: esConfig(search) } });
    r.start();
    let text = '';
    for (let i = 0; i < 30; i++) text += JSON.stringify({ '@timestamp': '2026-11-24T10:00:00Z', message: `m${i}`, status: i % 10 === 3 ? `bad-${i}` : 200, event: { id: `${run}dl${i}` } }) + '\n';
    await r.accept({ id: 'dl', ndjson: Buffer.from(text), count: 30 });
    await waitFor(() => r.status()[0].queue.events === 0);
    expect(search.count()).toBe(27);
    const status = r.status()[0];
    expect(status.deadLettered).toBe(3);
    const lines = (await readFile(status.deadLetterFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(status.deadLetterFile).toBe(join(dataDir, 'log-sinks', 'elasticsearch', 'dead-letter.ndjson'));
    expect(lines.map((l) => l.event.event.id).sort()).toEqual([`${run}dl13`, `${run}dl23`, `${run}dl3`]);
    expect(lines.every((l) => l.status === 400 && /^mapper_parsing_exception: failed to parse field \[status\] of type \[long\]/.test(l.reason) && l.target === 'plumb-logs-2026.11.24')).toBe(true);
    expect(await metric('plumb_sink_dead_letter_total', { sink: 'elasticsearch' })).toBe(3);
    expect(await metric('plumb_sink_events_total', { sink: 'elasticsearch', outcome: 'dead_letter' })).toBe(3);
  });

  it('answers 429 with Retry-After when a sink queue is full, and takes batches again once it drained', async () => {
    let search = await es();
    const port = search.port;
    const store = search.store;
    await search.stop();
    const all = batches(8, 40, 'full');
    // room for the first four batches (and the queue's 12 bytes of framing each), not for a fifth
    const room = all.slice(0, 4).reduce((n, b) => n + b.ndjson.length + 12, 0) + 100;
    const { r, metric } = await router({ sinks: { elasticsearch: esConfig(search) }, queue: { maxBytes: room, retryAfter: '3s' } });
    r.start();
    let accepted = 0;
    let refusal: unknown;
    for (const b of all) {
      try {
        await r.accept(b);
        accepted++;
      } catch (err) {
        refusal = err;
        break;
      }
    }
    expect(accepted).toBe(4);
    expect(refusal).toBeInstanceOf(RetryableError);
    expect(refusal).toMatchObject({ status: 429, retryAfterMs: 3000 });
    expect(await metric('plumb_sink_queue_refused_total', { sink: 'elasticsearch' })).toBe(40);

    search = await es({ port, store });
    await waitFor(() => r.status()[0].queue.events === 0, { timeoutMs: 20_000 });
    // the sender retries what was refused
    for (const b of all.slice(accepted)) await waitFor(() => r.accept(b).then(() => true), { timeoutMs: 20_000 });
    await waitFor(() => search.count() === 320, { timeoutMs: 20_000 });
  });

  it('keeps queued events across a restart and delivers them after it', async () => {
    let search = await es();
    const port = search.port;
    const store = search.store;
    await search.stop();
    const logs = { sinks: { elasticsearch: esConfig(search) } };
    const first = await router(logs);
    first.r.start();
    for (const b of batches(3, 30, 'rs')) await first.r.accept(b);
    await first.r.stop(Date.now() + 200);

    search = await es({ port, store });
    const second = await router(logs);
    expect(second.r.status()[0].queue.events).toBe(90);
    second.r.start();
    await waitFor(() => search.count() === 90, { timeoutMs: 20_000 });
    await waitFor(() => second.r.status()[0].queue.events === 0);
  });

  it('archives to S3 through an outage: every event once, in objects that a retry overwrites', async () => {
    const archive = await s3();
    const prefix = `outage-${run}/`;
    const { r } = await router({ sinks: { s3: s3Config(archive, prefix) } });
    r.start();
    const all = batches(6, 50, 's3');
    for (const b of all.slice(0, 3)) await r.accept(b);
    await waitFor(() => r.status()[0].queue.events === 0, { timeoutMs: 20_000 });
    await archive.stop();
    for (const b of all.slice(3)) await r.accept(b);
    await waitFor(() => (r.status()[0].lastError?.message ?? '').includes('failed'), { timeoutMs: 20_000 });
    expect(r.status()[0].queue.events).toBe(150);
    await archive.start();
    await waitFor(() => r.status()[0].queue.events === 0, { timeoutMs: 20_000 });
    const ids = await s3Events(archive, prefix);
    expect(ids).toHaveLength(300);
    expect(new Set(ids).size).toBe(300);
    for (const key of await archive.keys(prefix)) expect(key).toMatch(new RegExp(`^${prefix}2026/11/24/1[012]/web-[01]/[^/]+\\.ndjson\\.gz$`));
  });
});
