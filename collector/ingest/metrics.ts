/** `POST /v1/metrics`: agent intervals into the metric store, each batch applied once. */
import type { FastifyInstance } from 'fastify';
import type { Telemetry } from '../../shared/telemetry.ts';
import { METRICS_PATH, type MetricBatch } from '../../shared/wire.ts';
import type { MetricStore } from '../metrics/store.ts';
import { RecentIds } from './dedupe.ts';
import { metricBatchSchema } from './schemas.ts';

export function registerMetricsIngest(app: FastifyInstance, store: MetricStore, options: { maxMetricsPerBatch: number; dedupeWindow: number }, telemetry: Telemetry): void {
  const recent = new RecentIds(options.dedupeWindow);
  const batches = telemetry.counter('plumb_ingest_batches_total', 'batches received from agents, by kind and outcome', ['kind', 'outcome']);
  const samples = telemetry.counter('plumb_ingest_metrics_total', 'metric samples received from agents');
  telemetry.gaugeFrom('plumb_ingest_dedupe_ids', 'batch ids remembered for replay detection', () => recent.size);
  app.post<{ Body: MetricBatch }>(METRICS_PATH, { schema: { body: metricBatchSchema(options.maxMetricsPerBatch) } }, async (request) => {
    const batch = request.body;
    if (recent.has(batch.id)) {
      batches.inc({ kind: 'metrics', outcome: 'duplicate' });
      return { accepted: 0, refused: 0, duplicate: true };
    }
    const refused = store.apply(batch);
    recent.add(batch.id);
    batches.inc({ kind: 'metrics', outcome: 'applied' });
    samples.inc(batch.metrics.length);
    return { accepted: batch.metrics.length - refused, refused, duplicate: false };
  });
}
