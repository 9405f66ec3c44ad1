import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { PlumbError } from '../../../../shared/errors.ts';
import type { ZipkinSpan } from '../../../../shared/zipkin.ts';
import { startZipkinReceiver, ZipkinReceiverSchema, type ZipkinReceiver, type ZipkinReceiverConfig } from '../../../../agent/traces/receiver.ts';
import { SpanBatcher, SpanBatcherSchema } from '../../../../agent/traces/batcher.ts';
import { runOtelApp, micros, ZIPKIN_KIND } from '../../../helpers/otel-app.ts';
import { waitFor } from '../../../helpers/wait.ts';
import { metricValue } from '../../../helpers/metrics.ts';
import fc from 'fast-check';
import { decodeSpans } from '../../../../shared/zipkin.ts';
import { anySpan, goodSpan, interleave } from '../../../helpers/zipkin-fuzz.ts';

function receiverConfig(overrides: Record<string, unknown> = {}): ZipkinReceiverConfig {
  return Value.Decode(ZipkinReceiverSchema, Value.Default(ZipkinReceiverSchema, { listen: '127.0.0.1:0', ...overrides }));
}

const span = { traceId: '463ac35c9f6413ad48485a3953bb6124', id: 'a2fb4a1d1a96d312', name: 'get /', kind: 'SERVER', timestamp: 1_700_000_000_000_000, duration: 1500, localEndpoint: { serviceName: 'web' }, tags: { 'http.method': 'GET' } };

let receiver: ZipkinReceiver | undefined;
afterEach(async () => {
  await receiver?.stop();
  receiver = undefined;
});

async function start(overrides: Record<string, unknown> = {}, onSpans: (s: ZipkinSpan[]) => boolean = () => true) {
  const telemetry = new Telemetry();
  receiver = await startZipkinReceiver(receiverConfig(overrides), { telemetry, log: silentLogger() }, onSpans);
  return { telemetry, url: `http://${receiver.address}/api/v2/spans` };
}

function post(url: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  return fetch(url, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), headers });
}

describe('Zipkin receiver over HTTP', () => {
  it('has the documented defaults', () => {
    const c = Value.Decode(ZipkinReceiverSchema, Value.Default(ZipkinReceiverSchema, {}));
    expect(c).toEqual({
      enabled: true,
      listen: '127.0.0.1:9411',
      maxBodyBytes: 5 * 1024 * 1024,
      maxBodyBytesInFlight: 16 * 1024 * 1024,
      maxSpansPerRequest: 50_000,
      retryAfter: 1000,
      headersTimeout: 10_000,
      requestTimeout: 60_000,
      keepAliveTimeout: 5000,
      maxConnections: 1024,
      maxConcurrentRequests: 256,
    });
  });

  it('accepts Zipkin v2 JSON with 202 and an empty body, and hands the spans on', async () => {
    const got: ZipkinSpan[][] = [];
    const { url, telemetry } = await start({}, (s) => (got.push(s), true));
    const res = await post(url, JSON.stringify([span, { ...span, id: 'B2FB4A1D1A96D312' }]));
    expect(res.status).toBe(202);
    expect(await res.text()).toBe('');
    expect(got).toHaveLength(1);
    expect(got[0][0]).toEqual(span);
    expect(got[0][1].id).toBe('b2fb4a1d1a96d312');
    expect(await metricValue(telemetry.registry, 'plumb_traces_spans_received_total')).toBe(2);
    expect(await metricValue(telemetry.registry, 'plumb_traces_requests_total', { outcome: 'accepted' })).toBe(1);
  });

  it('accepts a gzip body', async () => {
    const got: ZipkinSpan[] = [];
    const { url } = await start({}, (s) => (got.push(...s), true));
    const res = await post(url, gzipSync(JSON.stringify([span])), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(res.status).toBe(202);
    expect(got).toEqual([span]);
  });

  it('accepts a body without a Content-Type, as Zipkin does', async () => {
    const got: ZipkinSpan[] = [];
    const { url } = await start({}, (s) => (got.push(...s), true));
    const res = await fetch(url, { method: 'POST', body: new Blob([JSON.stringify([span])]) });
    expect(res.status).toBe(202);
    expect(got).toHaveLength(1);
  });

  it('keeps the good spans of a request when one cannot be used, and counts the one left out', async () => {
    const got: ZipkinSpan[] = [];
    const { url, telemetry } = await start({}, (s) => (got.push(...s), true));
    const res = await post(url, JSON.stringify([span, { ...span, id: '1' }, { ...span, traceId: 'xyz!' }, { ...span, id: '2' }]));
    expect(res.status).toBe(202);
    expect(got.map((s) => s.id)).toEqual(['a2fb4a1d1a96d312', '0000000000000001', '0000000000000002']);
    expect(await metricValue(telemetry.registry, 'plumb_traces_spans_dropped_total', { reason: 'trace_id' })).toBe(1);
    expect(await metricValue(telemetry.registry, 'plumb_traces_spans_received_total')).toBe(3);
  });

  it('answers 400 naming the bad field when no span of the request can be used, and counts the reason', async () => {
    let called = false;
    const { url, telemetry } = await start({}, () => (called = true));
    const res = await post(url, JSON.stringify([{ ...span, traceId: 'xyz!' }]));
    expect(res.status).toBe(400);
    expect(await res.text()).toBe('spans[0].traceId: must be 16 or 32 lower-hex characters (got "xyz!")');
    expect(called).toBe(false);
    expect(await metricValue(telemetry.registry, 'plumb_traces_invalid_total', { reason: 'trace_id' })).toBe(1);
    expect(await metricValue(telemetry.registry, 'plumb_traces_requests_total', { outcome: 'invalid' })).toBe(1);
  });

  it.each([
    ['not JSON', '{"traceId":', 'not_json', 'body is not valid JSON'],
    ['an object', '{"spans":[]}', 'not_array', 'spans: must be a JSON array'],
    ['a null tag value', JSON.stringify([{ ...span, tags: { 'http.status_code': null } }]), 'tags', 'spans[0].tags["http.status_code"]: must be a string'],
  ])('answers 400 for %s', async (_t, body, reason, message) => {
    const { url, telemetry } = await start();
    const res = await post(url, body);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain(message);
    expect(await metricValue(telemetry.registry, 'plumb_traces_invalid_total', { reason })).toBe(1);
  });

  it('accepts what Zipkin accepts: numeric and boolean tags, a BOM, timestamp -1 or quoted, a bad IPv4, port -1, an empty annotation', async () => {
    const got: ZipkinSpan[] = [];
    const { url } = await start({}, (s) => (got.push(...s), true));
    const odd = {
      ...span,
      timestamp: '1700000000000000',
      tags: { 'http.status_code': 200, error: true },
      remoteEndpoint: { serviceName: 'db', ipv4: '999.0.0.1', port: -1 },
      annotations: [{ timestamp: 0, value: '' }],
    };
    const res = await post(url, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify([odd, { ...span, id: '3', timestamp: -1 }]))]));
    expect(res.status).toBe(202);
    expect(got).toHaveLength(2);
    expect(got[0]).toMatchObject({ timestamp: 1_700_000_000_000_000, tags: { 'http.status_code': '200', error: 'true' }, remoteEndpoint: { serviceName: 'db' }, annotations: [{ timestamp: 0, value: '' }] });
    expect(got[1]).not.toHaveProperty('timestamp');
  });

  it('answers 202 for an empty body and for [] (as Zipkin does), 400 for broken gzip', async () => {
    const got: ZipkinSpan[][] = [];
    const { url } = await start({}, (s) => (got.push(s), true));
    expect((await post(url, '')).status).toBe(202);
    expect((await post(url, '[]')).status).toBe(202);
    expect(got).toEqual([]);
    const bad = await post(url, Buffer.from('not gzip at all'), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('body is not valid gzip');
  });

  it('answers 413 for a body over maxBodyBytes, compressed or not', async () => {
    const { url, telemetry } = await start({ maxBodyBytes: 2048 });
    const big = JSON.stringify(Array.from({ length: 40 }, () => span));
    const plain = await post(url, big);
    expect(plain.status).toBe(413);
    expect(await plain.text()).toContain('larger than 2048 bytes');
    // small on the wire, too large once inflated
    const zipped = gzipSync(big);
    expect(zipped.length).toBeLessThan(2048);
    const bomb = await post(url, zipped, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(bomb.status).toBe(413);
    expect(await metricValue(telemetry.registry, 'plumb_traces_requests_total', { outcome: 'too_large' })).toBe(2);
  });

  it('answers 400 for more spans than maxSpansPerRequest', async () => {
    const { url } = await start({ maxSpansPerRequest: 3 });
    const res = await post(url, JSON.stringify([span, span, span, span]));
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('at most 3 allowed');
  });

  it('answers 415 for protobuf and for unknown encodings', async () => {
    const { url, telemetry } = await start();
    const proto = await post(url, Buffer.from([0x0a, 0x01]), { 'content-type': 'application/x-protobuf' });
    expect(proto.status).toBe(415);
    expect(await proto.text()).toContain('send Zipkin v2 JSON');
    const br = await post(url, JSON.stringify([span]), { 'content-type': 'application/json', 'content-encoding': 'br' });
    expect(br.status).toBe(415);
    expect(await metricValue(telemetry.registry, 'plumb_traces_requests_total', { outcome: 'unsupported' })).toBe(2);
  });

  it('answers 429 with Retry-After when the consumer is full', async () => {
    const { url, telemetry } = await start({ retryAfter: '3s' }, () => false);
    const res = await post(url, JSON.stringify([span, span]));
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('3');
    expect(await metricValue(telemetry.registry, 'plumb_traces_spans_refused_total')).toBe(2);
  });

  it('answers 429 once the span batcher queue is full, 202 again once it drains', async () => {
    const telemetry = new Telemetry();
    const batcher = new SpanBatcher(Value.Decode(SpanBatcherSchema, Value.Default(SpanBatcherSchema, { maxBatchSpans: 2, maxQueuedBatches: 1 })), { telemetry, log: silentLogger(), agent: 'a', firstSeq: 0 });
    receiver = await startZipkinReceiver(receiverConfig(), { telemetry, log: silentLogger() }, batcher.onSpans);
    const url = `http://${receiver.address}/api/v2/spans`;
    expect((await post(url, JSON.stringify([span, span]))).status).toBe(202);
    expect((await post(url, JSON.stringify([span, span]))).status).toBe(429);
    expect(batcher.shift()?.spans).toHaveLength(2);
    expect((await post(url, JSON.stringify([span, span]))).status).toBe(202);
  });

  it('answers 404 elsewhere', async () => {
    const { url } = await start();
    expect((await fetch(url.replace('/api/v2/spans', '/api/v1/spans'), { method: 'POST', body: '[]' })).status).toBe(404);
  });

  it('fails to start with PLUMB_ERR_LISTEN when the port is taken', async () => {
    await start();
    const port = receiver!.port;
    const err = await startZipkinReceiver(receiverConfig({ listen: `127.0.0.1:${port}` }), { telemetry: new Telemetry(), log: silentLogger() }, () => true).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlumbError);
    expect((err as PlumbError).code).toBe('PLUMB_ERR_LISTEN');
    expect((err as PlumbError).message).toContain(`traces.zipkin.listen: cannot listen on 127.0.0.1:${port}`);
  });

  it('starts, stops and starts again on the same port', async () => {
    await start();
    const port = receiver!.port;
    await receiver!.stop();
    receiver = await startZipkinReceiver(receiverConfig({ listen: `127.0.0.1:${port}` }), { telemetry: new Telemetry(), log: silentLogger() }, () => true);
    expect((await post(`http://${receiver.address}/api/v2/spans`, JSON.stringify([span]))).status).toBe(202);
  });
});

describe('a real OpenTelemetry application exporting to the receiver', () => {
  it('delivers its spans with ids, timing, kinds, tags and events unchanged', async () => {
    const got: ZipkinSpan[] = [];
    const { url } = await start({}, (s) => (got.push(...s), true));
    const app = await runOtelApp(url, 'checkout');
    try {
      await waitFor(() => got.length >= app.spans.length, { what: 'spans from the OpenTelemetry app' });
      expect(app.spans).toHaveLength(3);
      expect(got).toHaveLength(3);
      for (const recorded of app.spans) {
        const ctx = recorded.spanContext();
        const z = got.find((s) => s.id === ctx.spanId);
        expect(z, `span ${recorded.name}`).toBeDefined();
        if (!z) continue;
        expect(z.traceId).toBe(ctx.traceId);
        expect(z.parentId).toBe(recorded.parentSpanContext?.spanId);
        expect(z.name).toBe(recorded.name);
        expect(z.kind).toBe(ZIPKIN_KIND[recorded.kind]);
        expect(z.timestamp).toBe(micros(recorded.startTime));
        expect(z.duration).toBe(micros(recorded.duration) || undefined);
        expect(z.localEndpoint).toEqual({ serviceName: 'checkout' });
        for (const [k, v] of Object.entries(recorded.attributes)) expect(z.tags?.[k]).toBe(String(v));
        expect(z.annotations ?? []).toEqual(recorded.events.map((e) => ({ timestamp: micros(e.time), value: e.name })));
      }
      const byName = new Map(got.map((s) => [s.name, s]));
      expect(byName.get('GET /orders/:id')?.tags?.['otel.status_code']).toBe('OK');
      expect(byName.get('render invoice')?.tags).toMatchObject({ 'otel.status_code': 'ERROR', error: 'template missing' });
      expect(byName.get('SELECT orders')?.annotations?.map((a) => a.value)).toEqual(['query sent', 'rows read']);
      // one trace, parent links intact
      const root = byName.get('GET /orders/:id')!;
      expect(new Set(got.map((s) => s.traceId)).size).toBe(1);
      expect(byName.get('SELECT orders')?.parentId).toBe(root.id);
      expect(byName.get('render invoice')?.parentId).toBe(root.id);
    } finally {
      await app.shutdown();
    }
  });

  it('hands on the good spans of a request unchanged whatever bad spans come with them (property, through HTTP)', async () => {
    let got: ZipkinSpan[] = [];
    const { url } = await start({}, (s) => ((got = s), true));
    await fc.assert(
      fc.asyncProperty(fc.array(goodSpan, { minLength: 1, maxLength: 4 }), fc.array(anySpan, { maxLength: 4 }), fc.nat(), async (goods, others, seed) => {
        const alone = decodeSpans(structuredClone(goods));
        if ('error' in alone) throw new Error(alone.error);
        const { mixed, goodAt } = interleave(goods, others, seed);
        const expected = decodeSpans(structuredClone(mixed));
        if ('error' in expected) throw new Error(expected.error);
        got = [];
        const res = await post(url, JSON.stringify(mixed));
        expect(res.status).toBe(202);
        const droppedAt = new Set(expected.dropped.map((d) => d.index));
        const keptAt = mixed.map((_m, j) => j).filter((j) => !droppedAt.has(j));
        expect(got).toEqual(expected.spans);
        expect(got.filter((_s, n) => goodAt.includes(keptAt[n]))).toEqual(alone.spans);
      }),
      { numRuns: 60 },
    );
  });
});
