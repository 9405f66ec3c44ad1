/**
 * The OTLP decoders on requests built with the official definitions: what each metric type
 * becomes (and how the collector's store exposes it), cumulative-to-delta with resets and undo,
 * Prometheus names, OTLP/JSON ids, log event ids, and the span mapping's inverse.
 */
import { describe, expect, it } from 'vitest';
import { decodeJson, decodeProtobuf, encodeRequest, UndecodableError } from '../../../shared/otlp/codec.ts';
import { OtlpMetricsDecoder, type ExportMetricsServiceRequest } from '../../../shared/otlp/metrics.ts';
import { prometheusName } from '../../../shared/otlp/prom-names.ts';
import { otlpToEvents, eventsToOtlp, type ExportLogsServiceRequest } from '../../../shared/otlp/logs.ts';
import { otlpToSpans, spansToOtlp, type ExportTraceServiceRequest } from '../../../shared/otlp/traces.ts';
import { MetricStore } from '../../../collector/metrics/store.ts';
import type { WireDistribution, WireMetric } from '../../../shared/wire.ts';

const NOW = 1_800_000_000_000;
const LATER = `${BigInt(NOW + 1000) * 1_000_000n}`;
const EARLIER = `${BigInt(NOW - 1000) * 1_000_000n}`;

function decoder(): OtlpMetricsDecoder {
  return new OtlpMetricsDecoder({ resourceLabels: ['service.name'], relativeAccuracy: 0.01, maxStreams: 1000, streamTtlMs: 3_600_000 }, NOW);
}

/** A request through protobuf bytes, as a client would send it. */
function metricsRequest(metrics: Record<string, unknown>[], resource: Record<string, string> = { 'service.name': 'api' }): ExportMetricsServiceRequest {
  const body = encodeRequest('metrics', {
    resourceMetrics: [{ resource: { attributes: Object.entries(resource).map(([key, v]) => ({ key, value: { stringValue: v } })) }, scopeMetrics: [{ scope: { name: 's' }, metrics }] }],
  });
  return decodeProtobuf('metrics', body);
}

function sum(value: number, start: string, temporality = 2, monotonic = true): Record<string, unknown> {
  return { name: 'jobs.done', unit: '{job}', sum: { aggregationTemporality: temporality, isMonotonic: monotonic, dataPoints: [{ asInt: value, startTimeUnixNano: start, timeUnixNano: LATER }] } };
}

function store(): MetricStore {
  return new MetricStore({ quantiles: [0.5, 0.99], windowMs: 60_000, seriesTtlMs: 600_000, mappings: [], maxSeries: 10_000, maxSetMembers: 100, relativeAccuracy: 0.01, maxEvents: 10 });
}

function apply(s: MetricStore, metrics: WireMetric[]): void {
  s.apply({ id: String(Math.random()), agent: 'a', seq: 1, start: NOW, end: NOW, metrics, events: [], serviceChecks: [] }, NOW);
}

describe('OTLP metrics', () => {
  it('turns cumulative monotonic sums into deltas, with resets on a new start time or a drop', () => {
    const d = decoder();
    const values = (req: ExportMetricsServiceRequest) => d.decode(req, NOW).metrics.map((m) => (m.type === 'c' ? m.value : NaN));
    expect(values(metricsRequest([sum(5, LATER)]))).toEqual([5]); // started after the decoder: counts in full
    expect(values(metricsRequest([sum(8, LATER)]))).toEqual([3]);
    expect(values(metricsRequest([sum(2, LATER)]))).toEqual([2]); // dropped: a reset
    expect(values(metricsRequest([sum(4, `${BigInt(LATER) + 5n}`)]))).toEqual([4]); // new start time
    const old = decoder();
    const first = old.decode(metricsRequest([sum(100, EARLIER)]), NOW);
    expect(first.metrics).toEqual([]); // began before the decoder: only the baseline
    expect(first.baselines).toBe(1);
    expect(old.decode(metricsRequest([sum(130, EARLIER)]), NOW).metrics.map((m) => (m as { value: number }).value)).toEqual([30]);
  });

  it('puts the state back when the request was not taken', () => {
    const d = decoder();
    d.decode(metricsRequest([sum(5, LATER)]), NOW);
    const refused = d.decode(metricsRequest([sum(9, LATER)]), NOW);
    expect((refused.metrics[0] as { value: number }).value).toBe(4);
    refused.undo();
    expect((d.decode(metricsRequest([sum(9, LATER)]), NOW).metrics[0] as { value: number }).value).toBe(4);
  });

  it('maps gauges, non-monotonic sums, delta sums and names the Prometheus way', () => {
    const d = decoder();
    const out = d.decode(
      metricsRequest([
        { name: 'cpu.utilization', unit: '1', gauge: { dataPoints: [{ asDouble: 0.25, attributes: [{ key: 'cpu', value: { intValue: 3 } }] }] } },
        sum(7, LATER, 2, false),
        { ...sum(2, LATER, 1, true), name: 'http.server.requests' },
        { name: 'queue.size', unit: 'By', sum: { aggregationTemporality: 1, isMonotonic: false, dataPoints: [{ asInt: 5 }] } },
        { name: 'queue.size', unit: 'By', sum: { aggregationTemporality: 1, isMonotonic: false, dataPoints: [{ asInt: -2 }] } },
      ]),
      NOW,
    );
    expect(out.metrics).toEqual([
      { type: 'g', name: 'cpu_utilization_ratio', tags: ['service_name:api', 'cpu:3'], value: 0.25 },
      { type: 'g', name: 'jobs_done', tags: ['service_name:api'], value: 7 },
      { type: 'c', name: 'http_server_requests', tags: ['service_name:api'], value: 2 },
      { type: 'g', name: 'queue_size_bytes', tags: ['service_name:api'], value: 5 },
      { type: 'g', name: 'queue_size_bytes', tags: ['service_name:api'], value: 3 },
    ]);
    expect(prometheusName('http.server.duration', 'ms', 'histogram')).toBe('http_server_duration_milliseconds');
    expect(prometheusName('net.io', 'By/s', 'counter')).toBe('net_io_bytes_per_second');
    expect(prometheusName('requests_total', '{request}', 'counter')).toBe('requests');
  });

  it('keeps explicit-bucket histograms as histograms, cumulative to delta, and the store exposes _bucket series', () => {
    const d = decoder();
    const hist = (counts: number[], sumV: number) => ({
      name: 'rpc.duration',
      unit: 's',
      histogram: { aggregationTemporality: 2, dataPoints: [{ startTimeUnixNano: LATER, count: counts.reduce((a, b) => a + b, 0), sum: sumV, explicitBounds: [0.1, 1], bucketCounts: counts }] },
    });
    const a = d.decode(metricsRequest([hist([1, 2, 0], 1.5)]), NOW).metrics;
    const b = d.decode(metricsRequest([hist([1, 5, 1], 9)]), NOW).metrics;
    expect(b).toEqual([{ type: 'hist', name: 'rpc_duration_seconds', tags: ['service_name:api'], bounds: [0.1, 1], counts: [0, 3, 1], count: 4, sum: 7.5 }]);
    const s = store();
    apply(s, [...a, ...b]);
    const text = s.render(NOW);
    expect(text).toContain('rpc_duration_seconds_bucket{service_name="api",le="0.1"} 1');
    expect(text).toContain('rpc_duration_seconds_bucket{service_name="api",le="1"} 6');
    expect(text).toContain('rpc_duration_seconds_bucket{service_name="api",le="+Inf"} 7');
    expect(text).toContain('rpc_duration_seconds_sum{service_name="api"} 9');
    // other bounds for the same family are refused, not merged wrongly
    apply(s, [{ type: 'hist', name: 'rpc_duration_seconds', tags: ['service_name:web'], bounds: [5], counts: [1, 0], count: 1, sum: 1 }]);
    expect(s.refused.bucket_mismatch).toBe(1);
  });

  it('merges exponential histograms into a sketch within the stated bound, and cumulative ones by bucket difference', () => {
    const d = decoder();
    // scale 3: base 2^(1/8); 1000 values 1..1000 bucketed the way an SDK does
    const scale = 3;
    const counts = new Map<number, number>();
    for (let v = 1; v <= 1000; v++) {
      const i = Math.ceil(Math.log2(v) * 2 ** scale) - 1;
      counts.set(i, (counts.get(i) ?? 0) + 1);
    }
    const offset = Math.min(...counts.keys());
    const size = Math.max(...counts.keys()) - offset + 1;
    const bucketCounts = Array.from({ length: size }, (_, k) => counts.get(offset + k) ?? 0);
    const point = (mult: number) => ({
      name: 'payload',
      unit: 'By',
      exponentialHistogram: { aggregationTemporality: 2, dataPoints: [{ startTimeUnixNano: LATER, count: 1000 * mult, sum: 500500 * mult, scale, zeroCount: 0, positive: { offset, bucketCounts: bucketCounts.map((c) => c * mult) }, min: 1, max: 1000 }] },
    });
    d.decode(metricsRequest([point(1)]), NOW);
    const delta = d.decode(metricsRequest([point(3)]), NOW).metrics[0] as WireDistribution;
    expect(delta.count).toBe(2000);
    expect(delta.sum).toBe(1001000);
    const s = store();
    apply(s, [delta]);
    const bound = 1.01 * 2 ** (2 ** -(scale + 1)) - 1;
    const text = s.render(NOW);
    const p50 = Number(/payload_bytes\{service_name="api",quantile="0.5"\} (\S+)/.exec(text)![1]);
    const p99 = Number(/payload_bytes\{service_name="api",quantile="0.99"\} (\S+)/.exec(text)![1]);
    expect(Math.abs(p50 - 500) / 500).toBeLessThanOrEqual(bound);
    expect(Math.abs(p99 - 990) / 990).toBeLessThanOrEqual(bound);
  });

  it('exposes summaries with their own quantiles, count and sum', () => {
    const d = decoder();
    const out = d.decode(
      metricsRequest([{ name: 'gc.pause', unit: 'ms', summary: { dataPoints: [{ count: 10, sum: 55, quantileValues: [{ quantile: 0.5, value: 4 }, { quantile: 0.99, value: 12 }] }] } }]),
      NOW,
    ).metrics;
    const s = store();
    apply(s, out);
    const text = s.render(NOW);
    expect(text).toContain('# TYPE gc_pause_milliseconds summary');
    expect(text).toContain('gc_pause_milliseconds{service_name="api",quantile="0.99"} 12');
    expect(text).toContain('gc_pause_milliseconds_count{service_name="api"} 10');
    // the journal's snapshot keeps them
    const again = store();
    again.restore(s.snapshot());
    expect(again.render(NOW)).toBe(text);
  });

  it('refuses points it cannot use and counts them, and moves resource attributes to target_info', () => {
    const d = decoder();
    const out = d.decode(
      metricsRequest(
        [
          { name: '', gauge: { dataPoints: [{ asDouble: 1 }] } },
          { name: 'h', histogram: { aggregationTemporality: 1, dataPoints: [{ count: 1, explicitBounds: [1, 2], bucketCounts: [1] }] } },
          { name: 'ok', gauge: { dataPoints: [{ asDouble: 1 }, { asDouble: 2, flags: 1 }] } },
        ],
        { 'service.name': 'api', 'cloud.region': 'eu-1' },
      ),
      NOW,
    );
    expect(out.rejected).toBe(2);
    expect(out.error).toMatch(/name/);
    expect(out.metrics).toEqual([
      { type: 'g', name: 'ok', tags: ['service_name:api'], value: 1 },
      { type: 'g', name: 'target_info', tags: ['service_name:api', 'cloud_region:eu-1'], value: 1 },
    ]);
  });
});

describe('OTLP/JSON', () => {
  it('reads hex ids and integer enums into the same messages as protobuf', () => {
    const json = JSON.stringify({
      resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'web' } }] }, scopeSpans: [{ spans: [{ traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', name: 'GET', kind: 2, startTimeUnixNano: '1544712660000000000', endTimeUnixNano: '1544712661000000000', status: { code: 2 } }] }] }],
    });
    const spans = otlpToSpans(decodeJson<ExportTraceServiceRequest>('traces', json)).spans;
    expect(spans).toEqual([
      {
        traceId: '5b8efff798038103d269b633813fc60c',
        id: 'eee19b7ec3c1b174',
        kind: 'SERVER',
        name: 'GET',
        timestamp: 1544712660000000,
        duration: 1000000,
        localEndpoint: { serviceName: 'web' },
        tags: { 'service.name': 'web', 'otel.status_code': 'ERROR', error: '' },
      },
    ]);
    expect(() => decodeJson('traces', '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}')).toThrow(UndecodableError);
  });

  it('round-trips spans through the exporter mapping', () => {
    const body = encodeRequest('traces', {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'web' } }] },
          scopeSpans: [
            {
              scope: { name: 'lib', version: '2' },
              spans: [
                {
                  traceId: Buffer.alloc(16, 7),
                  spanId: Buffer.alloc(8, 8),
                  parentSpanId: Buffer.alloc(8, 9),
                  name: 'call',
                  kind: 3,
                  startTimeUnixNano: '1700000000000001000',
                  endTimeUnixNano: '1700000000000501000',
                  attributes: [{ key: 'server.address', value: { stringValue: 'db' } }, { key: 'n', value: { intValue: 3 } }],
                  events: [{ timeUnixNano: '1700000000000002000', name: 'sent', attributes: [{ key: 'k', value: { stringValue: 'v' } }] }],
                  links: [{ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2) }],
                  status: { code: 1 },
                  droppedEventsCount: 2,
                },
              ],
            },
          ],
        },
      ],
    });
    const first = otlpToSpans(decodeProtobuf('traces', body)).spans;
    const again = otlpToSpans(decodeProtobuf('traces', encodeRequest('traces', spansToOtlp(first)))).spans;
    expect(again).toEqual(first);
    expect(first[0].remoteEndpoint).toEqual({ serviceName: 'db' });
  });
});

describe('OTLP logs', () => {
  const request = (): ExportLogsServiceRequest =>
    decodeProtobuf(
      'logs',
      encodeRequest('logs', {
        resourceLogs: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'web' } }] },
            scopeLogs: [
              {
                scope: { name: 'app' },
                logRecords: [
                  { timeUnixNano: '1700000000123456789', observedTimeUnixNano: '1700000000200000000', severityNumber: 17, severityText: 'ERROR', body: { stringValue: 'boom' }, traceId: Buffer.alloc(16, 0xab), spanId: Buffer.alloc(8, 0xcd) },
                  { timeUnixNano: '1700000000123456789', observedTimeUnixNano: '1700000000200000000', severityNumber: 17, severityText: 'ERROR', body: { stringValue: 'boom' }, traceId: Buffer.alloc(16, 0xab), spanId: Buffer.alloc(8, 0xcd) },
                  { body: { kvlistValue: { values: [{ key: 'a', value: { intValue: 1 } }] } }, traceId: Buffer.alloc(3) },
                ],
              },
            ],
          },
        ],
      }),
    );

  it('gives records ids that a retried request repeats, and keeps identical records apart', () => {
    const a = otlpToEvents(request(), 'host-1');
    const b = otlpToEvents(request(), 'host-1');
    expect(a.ids).toEqual(b.ids);
    expect(a.ids[0].slice(0, -2)).toBe(a.ids[1].slice(0, -2));
    expect(a.ids[0]).not.toBe(a.ids[1]);
    expect(a.rejected).toBe(1);
    const ev = JSON.parse(a.ndjson.toString().split('\n')[0]) as Record<string, unknown>;
    expect(ev).toMatchObject({ '@timestamp': '2023-11-14T22:13:20.123456789Z', message: 'boom', log: { level: 'ERROR' }, event: { severity: 17, created: '2023-11-14T22:13:20.200000000Z' }, trace: { id: 'ab'.repeat(16) }, span: { id: 'cd'.repeat(8) }, service: { name: 'web' }, host: { name: 'host-1' } });
  });

  it('exports events back to the same records', () => {
    const a = otlpToEvents(request(), 'host-1');
    const events = a.ndjson.toString().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const back = otlpToEvents(decodeProtobuf('logs', encodeRequest('logs', eventsToOtlp(events))), 'host-1');
    expect(back.ndjson.toString()).toBe(a.ndjson.toString());
  });
});
