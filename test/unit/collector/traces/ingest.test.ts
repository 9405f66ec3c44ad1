/**
 * The collector's `POST /v1/traces` through its HTTP door: validation, replays, the Zipkin sink
 * (including a full sink answered with 429), span metrics on /metrics, and draining on stop.
 */
import { gzipSync } from 'node:zlib';
import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPlumbConfig } from '../../../../cli/config.ts';
import { tempDataDir } from '../../../helpers/processes.ts';
import { PlumbCollector } from '../../../../collector/collector.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { ConfigError } from '../../../../shared/config.ts';
import { spanBatchId, type SpanBatch, type ZipkinSpan } from '../../../../shared/zipkin.ts';
import { startZipkinServer, type ZipkinTestServer } from '../../../helpers/zipkin-server.ts';
import { PROMTOOL, promtoolCheckMetrics } from '../../../helpers/prometheus.ts';
import { waitFor } from '../../../helpers/wait.ts';
import { metricValue } from '../../../helpers/metrics.ts';
import fc from 'fast-check';
import { decodeSpans } from '../../../../shared/zipkin.ts';
import { anySpan, goodSpan, interleave } from '../../../helpers/zipkin-fuzz.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (let c = cleanup.pop(); c; c = cleanup.pop()) await c();
});

async function zipkinServer(): Promise<ZipkinTestServer> {
  const z = await startZipkinServer();
  cleanup.push(() => z.stop());
  return z;
}

async function collector(tracesYaml: string): Promise<{ collector: PlumbCollector; telemetry: Telemetry; url: string }> {
  const config = loadPlumbConfig({ text: `collector:\n  listen: "127.0.0.1:0"\n  traces:\n${tracesYaml}`, env: {} });
  const dataDir = (config.collector.dataDir = tempDataDir());
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  const telemetry = new Telemetry();
  const c = new PlumbCollector(config.collector, { telemetry, log: silentLogger() });
  cleanup.push(() => c.stop(2000));
  await c.start();
  return { collector: c, telemetry, url: c.url };
}

let nextSpan = 1;
function span(overrides: Partial<ZipkinSpan> = {}): ZipkinSpan {
  const id = (nextSpan++).toString(16).padStart(16, '0');
  return { traceId: '5af7183fb1d4cf5f5af7183fb1d4cf5f', id, name: 'get /cart', kind: 'SERVER', timestamp: 1_700_000_000_000_000, duration: 2500, localEndpoint: { serviceName: 'cart' }, ...overrides };
}

let nextSeq = 1;
function batch(spans: ZipkinSpan[], seq = nextSeq++): SpanBatch {
  return { id: spanBatchId('host-a@1', seq), agent: 'host-a@1', seq, spans };
}

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  return fetch(`${url}/v1/traces`, { method: 'POST', body: raw, headers: { 'content-type': 'application/json', ...headers } });
}

describe('POST /v1/traces', () => {
  it('exports a batch to Zipkin once, counts it in span metrics once, and acknowledges a replay', async () => {
    const zipkin = await zipkinServer();
    const { url, telemetry } = await collector(`    zipkin: { url: "${zipkin.url}" }\n`);
    const b = batch([span(), span({ tags: { 'http.response.status_code': '503' } })]);

    const first = await post(url, b);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ accepted: 2, dropped: 0, duplicate: false });
    // the replay comes gzip-compressed, as the forwarder sends it
    const again = await fetch(`${url}/v1/traces`, { method: 'POST', body: new Uint8Array(gzipSync(JSON.stringify(b))), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ accepted: 0, dropped: 0, duplicate: true });

    await zipkin.waitForSpans(2);
    expect(zipkin.spans.map((s) => s.id)).toEqual(b.spans.map((s) => s.id));
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toContain('traces_spanmetrics_calls_total{service="cart",span_name="get /cart",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 1');
    expect(text).toContain('traces_spanmetrics_calls_total{service="cart",span_name="get /cart",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"} 1');
    expect(await metricValue(telemetry.registry, 'plumb_ingest_batches_total', { kind: 'traces', outcome: 'applied' })).toBe(1);
    expect(await metricValue(telemetry.registry, 'plumb_ingest_batches_total', { kind: 'traces', outcome: 'duplicate' })).toBe(1);
    expect(await metricValue(telemetry.registry, 'plumb_ingest_spans_total')).toBe(2);
    expect(zipkin.spans).toHaveLength(2);
  });

  it('applies the good spans of a batch and counts the one it cannot use', async () => {
    const zipkin = await zipkinServer();
    const { url, telemetry } = await collector(`    zipkin: { url: "${zipkin.url}", gzip: false }\n`);
    const good = [span(), span()];
    const res = await post(url, batch([good[0], span({ id: 'not-hex' }), good[1]]));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 2, dropped: 1, duplicate: false });
    await zipkin.waitForSpans(2);
    expect(zipkin.spans.map((s) => s.id).sort()).toEqual(good.map((s) => s.id).sort());
    expect(await metricValue(telemetry.registry, 'plumb_ingest_spans_dropped_total', { reason: 'span_id' })).toBe(1);
  });

  it('applies every good span of a batch whatever bad spans come with it (property, through HTTP)', async () => {
    const { url, telemetry } = await collector('    spanMetrics: { enabled: true }\n');
    let applied = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(goodSpan, { minLength: 1, maxLength: 4 }), fc.array(anySpan, { maxLength: 4 }), fc.nat(), async (goods, others, seed) => {
        const { mixed } = interleave(goods, others, seed);
        const expected = decodeSpans(structuredClone(mixed));
        if ('error' in expected) throw new Error(expected.error);
        const res = await post(url, { ...batch([]), spans: mixed });
        expect(res.status).toBe(200);
        expect(await res.json()).toEqual({ accepted: expected.spans.length, dropped: expected.dropped.length, duplicate: false });
        expect(expected.spans.length).toBeGreaterThanOrEqual(goods.length);
        applied += expected.spans.length;
      }),
      { numRuns: 40 },
    );
    expect(await metricValue(telemetry.registry, 'plumb_ingest_spans_total')).toBe(applied);
  });

  it('answers 400 naming the field for a bad batch or bad JSON, and 415 for another media type', async () => {
    const { url, telemetry } = await collector('    spanMetrics: { enabled: true }\n');
    const bad = await post(url, { id: 'x', agent: 'a', seq: -1, spans: [span()] });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'PLUMB_ERR_INGEST_BODY', message: 'seq: must be a non-negative integer' });

    const noSpans = await post(url, { id: 'x', agent: 'a', seq: 1 });
    expect(noSpans.status).toBe(400);
    expect((await noSpans.json()).message).toBe('spans: required');

    const notJson = await post(url, '{"id": ');
    expect(notJson.status).toBe(400);
    expect((await notJson.json()).error).toBe('PLUMB_ERR_INGEST_BODY');

    const text = await fetch(`${url}/v1/traces`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
    expect(text.status).toBe(415);

    expect(await metricValue(telemetry.registry, 'plumb_ingest_invalid_spans_total', { reason: 'batch' })).toBe(2);
    expect(await metricValue(telemetry.registry, 'plumb_ingest_batches_total', { kind: 'traces', outcome: 'applied' })).toBe(0);
  });

  it('keeps a "__proto__" tag as a tag', async () => {
    const zipkin = await zipkinServer();
    const { url } = await collector(`    zipkin: { url: "${zipkin.url}", gzip: false }\n`);
    const res = await post(url, `{"id":"b-1","agent":"a","seq":1,"spans":[{"traceId":"00000000000000aa","id":"00000000000000bb","tags":{"__proto__":"x","ok":"y"}}]}`);
    expect(res.status).toBe(200);
    await zipkin.waitForSpans(1);
    expect(Object.entries(zipkin.spans[0].tags as object)).toEqual([
      ['__proto__', 'x'],
      ['ok', 'y'],
    ]);
  });

  it('answers 429 with Retry-After when the Zipkin sink is full, and takes the same batch once it drains', async () => {
    const zipkin = await zipkinServer();
    zipkin.failNext(1_000_000, 503);
    const { url, telemetry } = await collector(`    zipkin: { url: "${zipkin.url}", maxQueuedSpans: 2, maxBatchSpans: 1, retryInitial: 20ms, retryMax: 50ms }\n    retryAfter: 3s\n`);
    // one span goes in flight (and keeps failing), one waits: the queue holds 1 of 2
    expect((await post(url, batch([span(), span()]))).status).toBe(200);
    await waitFor(() => zipkin.requests > 0, { what: 'the first send attempt' });
    const held = batch([span(), span()]);
    const full = await post(url, held);
    expect(full.status).toBe(429);
    expect(full.headers.get('retry-after')).toBe('3');
    expect((await full.json()).error).toBe('PLUMB_ERR_SINK_RETRYABLE');
    expect(await metricValue(telemetry.registry, 'plumb_ingest_batches_total', { kind: 'traces', outcome: 'refused' })).toBe(1);

    zipkin.failNext(0);
    await zipkin.waitForSpans(2);
    const retried = await post(url, held);
    expect(retried.status).toBe(200);
    expect(await retried.json()).toEqual({ accepted: 2, dropped: 0, duplicate: false });
    await zipkin.waitForSpans(4);
    expect(new Set(zipkin.spans.map((s) => s.id)).size).toBe(4);
  });

  it('drains the Zipkin sink on stop after the listener closed', async () => {
    const zipkin = await zipkinServer();
    const { collector: c, url } = await collector(`    zipkin: { url: "${zipkin.url}", maxBatchSpans: 10 }\n`);
    const spans = Array.from({ length: 50 }, () => span());
    expect((await post(url, batch(spans))).status).toBe(200);
    await c.stop(5000);
    expect(zipkin.spans).toHaveLength(50);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('appends span metrics to a promtool-valid /metrics, and leaves them out when disabled', async () => {
    const on = await collector('    spanMetrics: { enabled: true }\n');
    await post(on.url, batch([span({ name: 'say "hi"\n', localEndpoint: { serviceName: 'a\\b' } }), span({ kind: 'CLIENT', tags: { error: '' } }), span({ duration: undefined })]));
    const text = await (await fetch(`${on.url}/metrics`)).text();
    expect(text).toContain('traces_spanmetrics_calls_total{service="a\\\\b",span_name="say \\"hi\\"\\n",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 1');
    expect(text).toContain('traces_spanmetrics_latency_count{service="cart",span_name="get /cart",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 0');
    if (PROMTOOL !== null) {
      const check = await promtoolCheckMetrics(text);
      expect(check.code, check.output).toBe(0);
    }
    const off = await collector('    spanMetrics: { enabled: false }\n');
    expect((await post(off.url, batch([span()]))).status).toBe(200);
    expect(await (await fetch(`${off.url}/metrics`)).text()).not.toContain('traces_spanmetrics');
  });
});

describe('collector.traces config', () => {
  it('has no Zipkin sink unless configured, and then needs its url', () => {
    const defaults = loadPlumbConfig({ text: '{}', env: {} }).collector.traces;
    expect(defaults.zipkin).toBeUndefined();
    expect(defaults.spanMetrics.enabled).toBe(true);
    expect(defaults.maxSpansPerBatch).toBe(50_000);
    const configured = loadPlumbConfig({ text: '{}', env: { PLUMB_COLLECTOR__TRACES__ZIPKIN: '{url: "http://zipkin:9411"}' } }).collector.traces.zipkin;
    expect(configured).toMatchObject({ url: 'http://zipkin:9411', gzip: true, maxQueuedSpans: 100_000 });
    let err: unknown;
    try {
      loadPlumbConfig({ text: 'collector: { traces: { zipkin: { gzip: false } } }', env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).errors.join('\n')).toMatch(/^collector\.traces\.zipkin\.url: /m);
  });
});
