/**
 * OTLP metric requests for tests, encoded with the official definitions: one resource
 * (service.name) holding a delta explicit-bucket histogram `http.server.duration` (ms) and a
 * summary `rpc.latency` (s), as an SDK or another collector would send them.
 */
import { encodeRequest } from '../../shared/otlp/codec.ts';

export interface HistogramAndSummary {
  service: string;
  histogram: { attributes?: Record<string, string>; count: number; sum: number; bucketCounts: number[]; explicitBounds: number[] };
  summary: { count: number; sum: number; quantiles: [number, number][] };
}

export function histogramAndSummaryRequest(o: HistogramAndSummary): Uint8Array {
  const now = BigInt(Date.now()) * 1_000_000n;
  const { attributes = {}, ...h } = o.histogram;
  return encodeRequest('metrics', {
    resourceMetrics: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: o.service } }] },
        scopeMetrics: [
          {
            metrics: [
              {
                name: 'http.server.duration',
                unit: 'ms',
                histogram: {
                  aggregationTemporality: 1,
                  dataPoints: [{ attributes: Object.entries(attributes).map(([key, v]) => ({ key, value: { stringValue: v } })), startTimeUnixNano: String(now - 1_000_000_000n), timeUnixNano: String(now), ...h }],
                },
              },
              {
                name: 'rpc.latency',
                unit: 's',
                summary: { dataPoints: [{ timeUnixNano: String(now), count: o.summary.count, sum: o.summary.sum, quantileValues: o.summary.quantiles.map(([quantile, value]) => ({ quantile, value })) }] },
              },
            ],
          },
        ],
      },
    ],
  });
}
