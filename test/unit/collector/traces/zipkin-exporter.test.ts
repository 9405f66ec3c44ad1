import { afterEach, describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import type { ZipkinSpan } from '../../../../shared/zipkin.ts';
import { ZipkinExporter, ZipkinExporterSchema } from '../../../../collector/traces/zipkin-exporter.ts';
import { startZipkinServer, type StoredSpan, type ZipkinTestServer } from '../../../helpers/zipkin-server.ts';
import { waitFor } from '../../../helpers/wait.ts';
import { metricValue } from '../../../helpers/metrics.ts';

function makeSpans(from: number, n: number): ZipkinSpan[] {
  return Array.from({ length: n }, (_, k) => ({
    traceId: '463ac35c9f6413ad48485a3953bb6124',
    id: (from + k + 1).toString(16).padStart(16, '0'),
    name: `op-${from + k}`,
    timestamp: 1_700_000_000_000_000 + from + k,
    duration: 100,
    localEndpoint: { serviceName: 'web' },
    tags: { n: String(from + k) },
  }));
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function zipkin(options: Parameters<typeof startZipkinServer>[0] = {}): Promise<ZipkinTestServer> {
  const z = await startZipkinServer(options);
  cleanup.push(() => z.stop());
  return z;
}

function exporter(url: string, overrides: Record<string, unknown> = {}) {
  const telemetry = new Telemetry();
  const config = Value.Decode(ZipkinExporterSchema, Value.Default(ZipkinExporterSchema, { url, retryInitial: '10ms', retryMax: '50ms', ...overrides }));
  const e = new ZipkinExporter(config, { telemetry, log: silentLogger() });
  e.start();
  cleanup.push(() => e.stop(Date.now() + 200));
  const sent = () => metricValue(telemetry.registry, 'plumb_sink_events_total', { sink: 'zipkin', outcome: 'sent' });
  return { e, telemetry, sent };
}

function names(spans: StoredSpan[]): string[] {
  return spans.map((s) => s.name as string);
}

describe('ZipkinExporter', () => {
  it('has the documented defaults', () => {
    expect(Value.Decode(ZipkinExporterSchema, Value.Default(ZipkinExporterSchema, {}))).toEqual({
      url: 'http://127.0.0.1:9411',
      gzip: true,
      headers: {},
      maxBatchSpans: 1000,
      maxBatchBytes: 4 * 1024 * 1024,
      maxQueuedSpans: 100_000,
      maxQueuedBytes: 64 * 1024 * 1024,
      timeout: 10_000,
      retryInitial: 200,
      retryMax: 30_000,
    });
  });

  it('posts spans as gzip JSON to {url}/api/v2/spans, unchanged and in order', async () => {
    const z = await zipkin();
    const { e, sent } = exporter(`${z.url}/`, { headers: { Authorization: 'Bearer t' } });
    const spans = makeSpans(0, 5);
    expect(e.write(spans)).toBe(true);
    await z.waitForSpans(5);
    expect(z.spans).toEqual(spans);
    expect(z.requestHeaders[0]).toMatchObject({ 'content-type': 'application/json', 'content-encoding': 'gzip', authorization: 'Bearer t' });
    await waitFor(async () => (await sent()) === 5, { what: 'five spans counted as sent' });
  });

  it('sends uncompressed when gzip is off, and accepts a url that already names the path', async () => {
    const z = await zipkin();
    const { e } = exporter(`${z.url}/api/v2/spans`, { gzip: false });
    e.write(makeSpans(0, 1));
    await z.waitForSpans(1);
    expect(z.requestHeaders[0]['content-encoding']).toBeUndefined();
  });

  it('splits the queue into requests of at most maxBatchSpans', async () => {
    const z = await zipkin();
    const { e } = exporter(z.url, { maxBatchSpans: 10 });
    e.write(makeSpans(0, 25));
    await z.waitForSpans(25);
    expect(z.requests).toBeGreaterThanOrEqual(3);
    expect(names(z.spans)).toEqual(makeSpans(0, 25).map((s) => s.name));
  });

  it('retries 503, 429 and 408 with backoff and delivers everything once', async () => {
    const z = await zipkin();
    const { e, telemetry } = exporter(z.url);
    z.failNext(3, 503);
    e.write(makeSpans(0, 3));
    await z.waitForSpans(3);
    z.failNext(1, 429, { 'retry-after': '0' });
    e.write(makeSpans(3, 2));
    await z.waitForSpans(5);
    z.failNext(1, 408);
    e.write(makeSpans(5, 1));
    await z.waitForSpans(6);
    expect(names(z.spans)).toEqual(makeSpans(0, 6).map((s) => s.name));
    expect(await retriesOf(telemetry)).toBe(5);
  });

  it('drops and counts spans the server refuses permanently (4xx), then carries on', async () => {
    const z = await zipkin();
    const { e, telemetry, sent } = exporter(z.url);
    const rejected = () => metricValue(telemetry.registry, 'plumb_sink_events_total', { sink: 'zipkin', outcome: 'rejected' });
    z.failNext(1, 400);
    e.write(makeSpans(0, 2));
    await waitFor(async () => (await rejected()) === 2, { what: 'the refused spans counted' });
    e.write(makeSpans(2, 1));
    await z.waitForSpans(1);
    await waitFor(async () => (await sent()) === 1, { what: 'the next span sent' });
    expect(names(z.spans)).toEqual(['op-2']);
    expect(z.requests).toBe(2);
    expect(await retriesOf(telemetry)).toBe(0);
  });

  it('keeps retrying while Zipkin is down and loses nothing, duplicates nothing, once it is back', async () => {
    const store: StoredSpan[] = [];
    const first = await startZipkinServer({ store });
    const port = first.port;
    const { e, telemetry, sent } = exporter(first.url, { maxBatchSpans: 7 });
    e.write(makeSpans(0, 10));
    // acknowledged, not just stored: an answer lost to the shutdown would be resent (at-least-once)
    await waitFor(async () => (await sent()) === 10, { what: 'first spans acknowledged' });
    await first.stop();
    // down: writes queue up, sends fail and are retried
    e.write(makeSpans(10, 20));
    e.write(makeSpans(30, 20));
    const retries = () => retriesOf(telemetry);
    await waitFor(async () => (await retries()) >= 2, { what: 'failed attempts while Zipkin is down' });
    const second = await zipkin({ port, store });
    await second.waitForSpans(50);
    await waitFor(() => e.queued === 0, { what: 'queue drained' });
    const ids = store.map((s) => s.id);
    expect(new Set(ids).size).toBe(50);
    expect(ids).toHaveLength(50);
    expect(names(store)).toEqual(makeSpans(0, 50).map((s) => s.name));
    expect(await retries()).toBeGreaterThanOrEqual(2);
  });

  it('refuses writes beyond maxQueuedSpans, all or nothing, and counts them', async () => {
    // nothing listens on this url's port once the server is gone, so spans stay queued
    const z = await startZipkinServer();
    await z.stop();
    const { e, telemetry } = exporter(z.url, { maxQueuedSpans: 10, maxBatchSpans: 2 });
    expect(e.write(makeSpans(0, 6))).toBe(true);
    expect(e.write(makeSpans(6, 8))).toBe(false);
    expect(await metricValue(telemetry.registry, 'plumb_sink_events_total', { sink: 'zipkin', outcome: 'refused' })).toBe(8);
    expect(await metricValue(telemetry.registry, 'plumb_sink_queue_depth', { sink: 'zipkin' })).toBeLessThanOrEqual(6);
  });

  it('stop(deadline) drains the queue before returning', async () => {
    const z = await zipkin();
    const telemetry = new Telemetry();
    const config = Value.Decode(ZipkinExporterSchema, Value.Default(ZipkinExporterSchema, { url: z.url, maxBatchSpans: 3 }));
    const e = new ZipkinExporter(config, { telemetry, log: silentLogger() });
    e.start();
    e.write(makeSpans(0, 20));
    await e.stop(Date.now() + 10_000);
    expect(z.spans).toHaveLength(20);
    expect(e.write(makeSpans(20, 1))).toBe(false);
  });

  it('stop(deadline) gives up at the deadline when Zipkin is down, counting what it dropped', async () => {
    const z = await startZipkinServer();
    await z.stop();
    const telemetry = new Telemetry();
    const config = Value.Decode(ZipkinExporterSchema, Value.Default(ZipkinExporterSchema, { url: z.url, maxBatchSpans: 4, retryInitial: '10ms', retryMax: '20ms' }));
    const e = new ZipkinExporter(config, { telemetry, log: silentLogger() });
    e.start();
    e.write(makeSpans(0, 10));
    await e.stop(Date.now() + 100);
    expect(e.queued).toBe(0);
    expect(await metricValue(telemetry.registry, 'plumb_sink_events_total', { sink: 'zipkin', outcome: 'dropped' })).toBe(10);
  });

  it('starts again after a stop', async () => {
    const z = await zipkin();
    const telemetry = new Telemetry();
    const config = Value.Decode(ZipkinExporterSchema, Value.Default(ZipkinExporterSchema, { url: z.url }));
    const e = new ZipkinExporter(config, { telemetry, log: silentLogger() });
    e.start();
    e.write(makeSpans(0, 1));
    await e.stop(Date.now() + 5000);
    e.start();
    e.write(makeSpans(1, 1));
    await e.stop(Date.now() + 5000);
    expect(names(z.spans)).toEqual(['op-0', 'op-1']);
  });
});

/** Retries of the Zipkin sink, over every reason. */
async function retriesOf(telemetry: Telemetry): Promise<number> {
  const m = telemetry.registry.getSingleMetric('plumb_sink_retries_total');
  if (m === undefined) return 0;
  return (await m.get()).values.filter((v) => v.labels.sink === 'zipkin').reduce((n, v) => n + v.value, 0);
}
