/**
 * The remote_write sink through the metric export and the sink runner, against a local HTTP(S)
 * server that plays the store: the wire format (snappy + protobuf, headers, auth, TLS), what is
 * retried (5xx, 429 with Retry-After) and what is not (other 4xx: dead letter with the store's
 * message), per-series order across shards while requests fail, staleness markers, and the
 * queue bound.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uncompressSync } from 'snappy';
import { Value } from '@sinclair/typebox/value';
import { silentLogger } from '../../../../../shared/log.ts';
import { Telemetry } from '../../../../../shared/telemetry.ts';
import { MetricStore } from '../../../../../collector/metrics/store.ts';
import { MetricSinksSchema, type MetricSinksConfig } from '../../../../../collector/metrics/sinks/config.ts';
import { MetricSinks } from '../../../../../collector/metrics/sinks/export.ts';
import { WriteRequest } from '../../../../../collector/metrics/sinks/remote-write.proto.ts';
import { USER_AGENT } from '../../../../../collector/metrics/sinks/remote-write.ts';
import { metricValue } from '../../../../helpers/metrics.ts';
import { counter, gauge } from '../../../../helpers/metric-poster.ts';
import { waitFor } from '../../../../helpers/wait.ts';
import type { WireMetric } from '../../../../../shared/wire.ts';

interface Received {
  headers: http.IncomingHttpHeaders;
  at: number;
  /** What the store answered. */
  status: number;
  series: { labels: Record<string, string>; samples: { value: number; timestamp: number }[] }[];
}

type Answer = (req: Received, n: number) => { status: number; body?: string; headers?: Record<string, string> };

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (let c = cleanups.pop(); c; c = cleanups.pop()) await c();
});

function decode(body: Buffer): Received['series'] {
  const msg = WriteRequest.toObject(WriteRequest.decode(uncompressSync(body) as Buffer), { longs: Number }) as {
    timeseries?: { labels: { name: string; value: string }[]; samples?: { value: number; timestamp: number }[] }[];
  };
  return (msg.timeseries ?? []).map((ts) => ({ labels: Object.fromEntries(ts.labels.map((l) => [l.name, l.value])), samples: ts.samples ?? [] }));
}

async function store(answer: Answer = () => ({ status: 204 }), tls?: { key: Buffer; cert: Buffer }): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { headers: req.headers, at: Date.now(), status: 0, series: decode(Buffer.concat(chunks)) };
      received.push(r);
      const a = answer(r, received.length);
      r.status = a.status;
      res.writeHead(a.status, a.headers ?? {});
      res.end(a.body ?? '');
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.closeIdleConnections?.();
  const port = (server.address() as { port: number }).port;
  return { url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}/api/v1/write`, received };
}

async function exporter(sinks: unknown, seriesTtlMs = 600_000): Promise<{ store: MetricStore; sinks: MetricSinks; telemetry: Telemetry; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'plumb-rw-'));
  const telemetry = new Telemetry();
  const config = Value.Decode(MetricSinksSchema, Value.Default(MetricSinksSchema, { interval: '1h', ...(sinks as object) })) as MetricSinksConfig;
  const metricStore = new MetricStore({ quantiles: [0.5, 0.99], windowMs: 60_000, seriesTtlMs, mappings: [], maxSeries: 100_000, maxSetMembers: 100, relativeAccuracy: 0.01, maxEvents: 10 });
  const s = await MetricSinks.create(config, metricStore, { telemetry, log: silentLogger(), dataDir: dir });
  s.start();
  cleanups.push(async () => {
    await s.stop(Date.now() + 2000);
    await rm(dir, { recursive: true, force: true });
  });
  return { store: metricStore, sinks: s, telemetry, dir };
}

function apply(s: MetricStore, metrics: WireMetric[], now = Date.now()): void {
  s.apply({ id: `a:${now}`, agent: 'a', seq: 1, start: now - 1000, end: now, metrics, events: [], serviceChecks: [] }, now);
}

function bits(v: number): bigint {
  const f = new Float64Array(1);
  f[0] = v;
  return new BigUint64Array(f.buffer)[0];
}

describe('remote_write sink', () => {
  let pki: { ca: string; cert: Buffer; key: Buffer };

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plumb-rw-pki-'));
    const openssl = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=plumb test store CA']);
    writeFileSync(join(dir, 'store.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'store.key', '-out', 'store.csr', '-subj', '/CN=store']);
    openssl(['x509', '-req', '-in', 'store.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'store.pem', '-days', '2', '-extfile', 'store.ext']);
    pki = { ca: join(dir, 'ca.pem'), cert: readFileSync(join(dir, 'store.pem')), key: readFileSync(join(dir, 'store.key')) };
  }, 30_000);

  it('posts snappy protobuf with the remote_write headers, basic auth, extra headers, over TLS, stamped with the export instant', async () => {
    const st = await store(undefined, { key: pki.key, cert: pki.cert });
    const e = await exporter({ remoteWrite: [{ url: st.url, auth: { username: 'writer', password: 's3cret-pass' }, headers: { 'X-Scope-OrgID': 'team-a' }, tls: { ca: pki.ca } }] });
    apply(e.store, [counter('jobs', 3, ['queue:high']), gauge('temp', 21.5, ['Room:lab'])]);
    const at = 1_764_000_015_000;
    await e.sinks.exportAt(at);
    await waitFor(() => st.received.length === 1, { what: 'one request' });
    const r = st.received[0];
    expect(r.headers['content-encoding']).toBe('snappy');
    expect(r.headers['content-type']).toBe('application/x-protobuf');
    expect(r.headers['x-prometheus-remote-write-version']).toBe('0.1.0');
    expect(r.headers['user-agent']).toBe(USER_AGENT);
    expect(r.headers['x-scope-orgid']).toBe('team-a');
    expect(r.headers.authorization).toBe(`Basic ${Buffer.from('writer:s3cret-pass').toString('base64')}`);
    const byName = new Map(r.series.map((s) => [s.labels.__name__, s]));
    expect(byName.get('jobs_total')).toEqual({ labels: { __name__: 'jobs_total', queue: 'high' }, samples: [{ value: 3, timestamp: at }] });
    expect(byName.get('temp')).toEqual({ labels: { Room: 'lab', __name__: 'temp' }, samples: [{ value: 21.5, timestamp: at }] });
    await waitFor(async () => (await metricValue(e.telemetry.registry, 'plumb_sink_events_total', { sink: 'remote_write', outcome: 'delivered' })) === 2, { what: 'delivered counted' });
  });

  it('sends a bearer token', async () => {
    const st = await store();
    const e = await exporter({ remoteWrite: [{ url: st.url, auth: { bearerToken: 'tok-123456' } }] });
    apply(e.store, [gauge('g', 1)]);
    await e.sinks.exportAt(Date.now());
    await waitFor(() => st.received.length === 1, { what: 'one request' });
    expect(st.received[0].headers.authorization).toBe('Bearer tok-123456');
  });

  it('never retries a 4xx other than 429: the samples go to the dead-letter file with the store\'s message', async () => {
    const st = await store(() => ({ status: 400, body: 'out of order sample' }));
    const e = await exporter({ remoteWrite: [{ url: st.url, name: 'mimir', shards: 1, retryInitial: '20ms', retryMax: '50ms' }] });
    apply(e.store, [gauge('a', 1), gauge('b', 2)]);
    await e.sinks.exportAt(Date.now());
    await waitFor(async () => (await metricValue(e.telemetry.registry, 'plumb_sink_dead_letter_total', { sink: 'mimir' })) === 2, { what: 'two dead letters' });
    const lines = (await readFile(join(e.dir, 'metric-sinks', 'mimir', 'dead-letter.ndjson'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { status: number; reason: string });
    expect(lines).toHaveLength(2);
    expect(lines[0].status).toBe(400);
    expect(lines[0].reason).toContain('out of order sample');
    expect(st.received).toHaveLength(1);
    expect(await metricValue(e.telemetry.registry, 'plumb_remote_write_requests_total', { sink: 'mimir', status: '4xx' })).toBe(1);
    expect(await metricValue(e.telemetry.registry, 'plumb_sink_retries_total', { sink: 'mimir', reason: 'other' })).toBe(0);
  });

  it('retries 5xx and 429, waiting at least what Retry-After asks', async () => {
    const st = await store((_r, n) => (n === 1 ? { status: 503, body: 'ingester unavailable' } : n === 2 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    const e = await exporter({ remoteWrite: [{ url: st.url, retryInitial: '10ms', retryMax: '20ms' }] });
    apply(e.store, [gauge('a', 1)]);
    await e.sinks.exportAt(Date.now());
    await waitFor(() => st.received.length === 3, { timeoutMs: 5000, what: 'three attempts' });
    expect(st.received[2].at - st.received[1].at).toBeGreaterThanOrEqual(990);
    expect(await metricValue(e.telemetry.registry, 'plumb_sink_retries_total', { sink: 'remote_write', reason: 'server_error' })).toBe(1);
    expect(await metricValue(e.telemetry.registry, 'plumb_sink_retries_total', { sink: 'remote_write', reason: 'throttled' })).toBe(1);
    await waitFor(async () => (await metricValue(e.telemetry.registry, 'plumb_sink_events_total', { sink: 'remote_write', outcome: 'delivered' })) === 1, { what: 'delivered' });
  });

  it('keeps every series in time order across shards while requests fail at random', async () => {
    let seed = 7;
    const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const st = await store(() => (rand() < 0.3 ? { status: 500 } : { status: 204 }));
    const e = await exporter({ remoteWrite: [{ url: st.url, shards: 4, maxSamplesPerSend: 9, retryInitial: '5ms', retryMax: '10ms' }] });
    const series = 60;
    const exports = 5;
    for (let x = 0; x < exports; x++) {
      apply(e.store, Array.from({ length: series }, (_, i) => counter(`c${i}`, 1)));
      await e.sinks.exportAt(1_000_000 + x * 1000);
    }
    await waitFor(async () => (await metricValue(e.telemetry.registry, 'plumb_sink_events_total', { sink: 'remote_write', outcome: 'delivered' })) === series * exports, {
      timeoutMs: 20_000,
      what: 'every sample delivered',
    });
    const seen = new Map<string, number[]>();
    // what the store took, in the order it took it: a refused request's samples come again later
    for (const r of st.received) {
      if (r.status >= 300) continue;
      for (const ts of r.series) {
        const list = seen.get(ts.labels.__name__) ?? [];
        for (const sample of ts.samples) list.push(sample.timestamp);
        seen.set(ts.labels.__name__, list);
      }
    }
    const want = Array.from({ length: exports }, (_, x) => 1_000_000 + x * 1000);
    expect(seen.size).toBe(series);
    for (const [name, times] of seen) expect(times, name).toEqual(want);
    expect(await metricValue(e.telemetry.registry, 'plumb_remote_write_requests_total', { sink: 'remote_write', status: '5xx' })).toBeGreaterThan(0);
  }, 30_000);

  it('sends the staleness marker once for a series that left /metrics', async () => {
    const st = await store();
    const e = await exporter({ remoteWrite: [{ url: st.url }] }, 5000);
    apply(e.store, [gauge('stays', 1), gauge('goes', 2)], 1_000_000);
    await e.sinks.exportAt(1_001_000);
    apply(e.store, [gauge('stays', 3)], 1_004_000);
    await e.sinks.exportAt(1_007_000); // 'goes' was last updated 7 s before: expired
    await e.sinks.exportAt(1_008_000);
    await waitFor(() => st.received.reduce((n, r) => n + r.series.reduce((m, x) => m + x.samples.length, 0), 0) === 5, { what: 'five samples' });
    const goes = st.received.flatMap((r) => r.series).filter((x) => x.labels.__name__ === 'goes').flatMap((x) => x.samples);
    expect(goes.map((g) => g.timestamp)).toEqual([1_001_000, 1_007_000]);
    expect(goes[0].value).toBe(2);
    expect(bits(goes[1].value)).toBe(0x7ff0000000000002n);
  });

  it('refuses and counts an export its full queue cannot take while the store is down', async () => {
    const e = await exporter({ remoteWrite: [{ url: 'http://127.0.0.1:9/api/v1/write', retryInitial: '1s' }], queue: { maxBytes: '16kb' } });
    apply(e.store, Array.from({ length: 1000 }, (_, i) => gauge(`gauge_number_${i}`, i)));
    await e.sinks.exportAt(Date.now());
    const refused = await metricValue(e.telemetry.registry, 'plumb_sink_queue_refused_total', { sink: 'remote_write' });
    const queued = await metricValue(e.telemetry.registry, 'plumb_metric_export_samples_total', { sink: 'remote_write' });
    expect(refused).toBeGreaterThan(0);
    expect(refused + queued).toBe(1000);
    expect(e.sinks.status()[0].queue.bytes).toBeLessThanOrEqual(16 * 1024);
  });
});
