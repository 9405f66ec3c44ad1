import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import type { ZipkinSpan } from '../../../../shared/zipkin.ts';
import { DEFAULT_LATENCY_BUCKETS_SECONDS, SpanMetrics, SpanMetricsSchema, spanKindLabel, spanStatusCode } from '../../../../collector/traces/spanmetrics.ts';
import { metricValue } from '../../../helpers/metrics.ts';

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));

function make(overrides: Record<string, unknown> = {}, now?: () => number) {
  const telemetry = new Telemetry();
  const config = Value.Decode(SpanMetricsSchema, Value.Default(SpanMetricsSchema, overrides));
  return { m: new SpanMetrics(config, { telemetry, log: silentLogger(), now }), telemetry };
}

let nextId = 1;
function span(fields: Partial<ZipkinSpan> & { service?: string }): ZipkinSpan {
  const { service, ...rest } = fields;
  return { traceId: 'aaaaaaaaaaaaaaaa', id: (nextId++).toString(16).padStart(16, '0'), ...(service ? { localEndpoint: { serviceName: service } } : {}), ...rest };
}

/** Samples of the exposition as { 'name{labels}': value }. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const SERVER_LABELS = 'service="web",span_name="GET /",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"';

describe('span status and kind labels', () => {
  it.each<[string, Partial<ZipkinSpan>, string]>([
    ['no tags', {}, 'STATUS_CODE_UNSET'],
    ['otel.status_code OK', { tags: { 'otel.status_code': 'OK' } }, 'STATUS_CODE_OK'],
    ['otel.status_code ERROR', { tags: { 'otel.status_code': 'ERROR', error: 'boom' } }, 'STATUS_CODE_ERROR'],
    ['OK wins over an error tag', { tags: { 'otel.status_code': 'OK', error: 'x' } }, 'STATUS_CODE_OK'],
    ['a Zipkin error tag', { tags: { error: '' } }, 'STATUS_CODE_ERROR'],
    ['a 500 on a server span', { kind: 'SERVER', tags: { 'http.status_code': '503' } }, 'STATUS_CODE_ERROR'],
    ['a 404 on a server span', { kind: 'SERVER', tags: { 'http.status_code': '404' } }, 'STATUS_CODE_UNSET'],
    ['a 404 on a client span', { kind: 'CLIENT', tags: { 'http.response.status_code': '404' } }, 'STATUS_CODE_ERROR'],
    ['a 200', { kind: 'CLIENT', tags: { 'http.status_code': '200' } }, 'STATUS_CODE_UNSET'],
    ['a non-numeric status', { tags: { 'http.status_code': 'n/a' } }, 'STATUS_CODE_UNSET'],
  ])('%s → %s', (_t, fields, want) => {
    expect(spanStatusCode(span(fields))).toBe(want);
  });

  it('maps kinds to OpenTelemetry names, no kind being INTERNAL', () => {
    expect([undefined, 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'].map((k) => spanKindLabel(k as ZipkinSpan['kind']))).toEqual([
      'SPAN_KIND_INTERNAL',
      'SPAN_KIND_SERVER',
      'SPAN_KIND_CLIENT',
      'SPAN_KIND_PRODUCER',
      'SPAN_KIND_CONSUMER',
    ]);
  });
});

describe('SpanMetrics', () => {
  it('has the documented defaults (Tempo buckets, in seconds)', () => {
    const c = Value.Decode(SpanMetricsSchema, Value.Default(SpanMetricsSchema, {}));
    expect(c).toEqual({ enabled: true, maxSeries: 10_000, buckets: DEFAULT_LATENCY_BUCKETS_SECONDS, staleAfter: 900_000, maxLabelLength: 256 });
    expect(DEFAULT_LATENCY_BUCKETS_SECONDS[0]).toBe(0.002);
    expect(DEFAULT_LATENCY_BUCKETS_SECONDS.at(-1)).toBe(16.384);
  });

  it('counts calls per service, span name, kind and status', () => {
    const { m } = make();
    m.observe([
      span({ service: 'web', name: 'GET /', kind: 'SERVER', duration: 1000 }),
      span({ service: 'web', name: 'GET /', kind: 'SERVER', duration: 1000 }),
      span({ service: 'web', name: 'GET /', kind: 'SERVER', duration: 1000, tags: { error: 'boom' } }),
      span({ service: 'db', name: 'query', kind: 'CLIENT', duration: 1000 }),
      span({ name: 'render', duration: 1000 }),
    ]);
    const s = samples(m.renderSpanMetrics());
    expect(s.get(`traces_spanmetrics_calls_total{${SERVER_LABELS}}`)).toBe(2);
    expect(s.get('traces_spanmetrics_calls_total{service="web",span_name="GET /",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_ERROR"}')).toBe(1);
    expect(s.get('traces_spanmetrics_calls_total{service="db",span_name="query",span_kind="SPAN_KIND_CLIENT",status_code="STATUS_CODE_UNSET"}')).toBe(1);
    expect(s.get('traces_spanmetrics_calls_total{service="unknown_service",span_name="render",span_kind="SPAN_KIND_INTERNAL",status_code="STATUS_CODE_UNSET"}')).toBe(1);
    expect(m.seriesCount).toBe(4);
  });

  it('fills cumulative latency buckets in seconds for known durations', () => {
    const { m } = make();
    // 1 ms, 3 ms twice, 100 ms, 5 s (microseconds on the wire)
    m.observe([1_000, 3_000, 3_000, 100_000, 5_000_000].map((d) => span({ service: 'web', name: 'GET /', kind: 'SERVER', duration: d })));
    const s = samples(m.renderSpanMetrics());
    const bucket = (le: string) => s.get(`traces_spanmetrics_latency_bucket{${SERVER_LABELS},le="${le}"}`);
    expect(bucket('0.002')).toBe(1);
    expect(bucket('0.004')).toBe(3);
    expect(bucket('0.064')).toBe(3);
    expect(bucket('0.128')).toBe(4);
    expect(bucket('4.096')).toBe(4);
    expect(bucket('8.192')).toBe(5);
    expect(bucket('16.384')).toBe(5);
    expect(bucket('+Inf')).toBe(5);
    expect(s.get(`traces_spanmetrics_latency_count{${SERVER_LABELS}}`)).toBe(5);
    expect(s.get(`traces_spanmetrics_latency_sum{${SERVER_LABELS}}`)).toBeCloseTo(5.107, 9);
    // cumulative: never decreasing
    const counts = DEFAULT_LATENCY_BUCKETS_SECONDS.map((b) => bucket(String(b)) ?? -1);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]);
  });

  it('uses configured buckets', () => {
    const { m } = make({ buckets: [1, 0.5] });
    m.observe([span({ service: 'web', name: 'GET /', kind: 'SERVER', duration: 700_000 })]);
    const s = samples(m.renderSpanMetrics());
    expect(s.get(`traces_spanmetrics_latency_bucket{${SERVER_LABELS},le="0.5"}`)).toBe(0);
    expect(s.get(`traces_spanmetrics_latency_bucket{${SERVER_LABELS},le="1"}`)).toBe(1);
  });

  it('counts a span without a duration as a call but not in the latency histogram', () => {
    const { m } = make();
    m.observe([span({ service: 'web', name: 'GET /', kind: 'SERVER' }), span({ service: 'web', name: 'GET /', kind: 'SERVER', duration: 1000 })]);
    const s = samples(m.renderSpanMetrics());
    expect(s.get(`traces_spanmetrics_calls_total{${SERVER_LABELS}}`)).toBe(2);
    expect(s.get(`traces_spanmetrics_latency_count{${SERVER_LABELS}}`)).toBe(1);
  });

  it('escapes label values and cuts long ones', () => {
    const { m } = make({ maxLabelLength: 16 });
    m.observe([span({ service: 'a"b\\c\nd', name: 'x'.repeat(100) })]);
    const text = m.renderSpanMetrics();
    expect(text).toContain(`service="a\\"b\\\\c\\nd",span_name="${'x'.repeat(16)}"`);
  });

  it('stops adding series at maxSeries, counts what it left out, and frees stale series', async () => {
    let now = 1_000_000;
    const { m, telemetry } = make({ maxSeries: 2, staleAfter: '1m' }, () => now);
    m.observe([span({ name: 'a' }), span({ name: 'b' }), span({ name: 'c' }), span({ name: 'a' })]);
    expect(m.seriesCount).toBe(2);
    expect(await metricValue(telemetry.registry, 'plumb_spanmetrics_series_dropped_total')).toBe(1);
    expect(await metricValue(telemetry.registry, 'plumb_spanmetrics_series')).toBe(2);
    const s = samples(m.renderSpanMetrics());
    expect(s.get('traces_spanmetrics_calls_total{service="unknown_service",span_name="a",span_kind="SPAN_KIND_INTERNAL",status_code="STATUS_CODE_UNSET"}')).toBe(2);
    expect([...s.keys()].some((k) => k.includes('span_name="c"'))).toBe(false);
    // "a" keeps being seen, "b" goes quiet
    now += 45_000;
    m.observe([span({ name: 'a' })]);
    now += 30_000;
    m.observe([span({ name: 'c' })]);
    expect(m.seriesCount).toBe(2);
    const after = m.renderSpanMetrics();
    expect(after).toContain('span_name="c"');
    expect(after).not.toContain('span_name="b"');
  });

  it('renders HELP and TYPE once per family, and an empty set as valid exposition', () => {
    const { m } = make();
    expect(m.renderSpanMetrics()).toBe(
      [
        '# HELP traces_spanmetrics_calls_total Spans seen, by service, span name, span kind and status code.',
        '# TYPE traces_spanmetrics_calls_total counter',
        '# HELP traces_spanmetrics_latency Span durations in seconds, by service, span name, span kind and status code.',
        '# TYPE traces_spanmetrics_latency histogram',
        '',
      ].join('\n'),
    );
    m.observe([span({ service: 'a', name: 'x', duration: 5 }), span({ service: 'b', name: 'y', duration: 5 })]);
    const text = m.renderSpanMetrics();
    expect(text.match(/^# TYPE /gm)).toHaveLength(2);
  });

  it.skipIf(!PROMTOOL)('passes promtool check metrics', () => {
    const { m } = make();
    m.observe([
      span({ service: 'web', name: 'GET /orders/:id', kind: 'SERVER', duration: 2_500 }),
      span({ service: 'web', name: 'GET /orders/:id', kind: 'SERVER', duration: 80_000, tags: { 'otel.status_code': 'ERROR' } }),
      span({ service: 'db', name: 'SELECT "orders"', kind: 'CLIENT', duration: 900 }),
      span({ service: 'queue', name: 'publish', kind: 'PRODUCER' }),
    ]);
    const r = spawnSync(PROMTOOL!, ['check', 'metrics'], { input: m.renderSpanMetrics(), encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });
});
