/**
 * The trace building blocks put together the way the roles wire them: an OpenTelemetry app posts
 * to the agent's receiver, the batcher seals SpanBatches, a batch crosses the wire as JSON, the
 * collector validates it, derives span metrics and exports the spans to Zipkin.
 */
import { describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { decodeSpanBatch, type SpanBatch } from '../../../../shared/zipkin.ts';
import { startZipkinReceiver, ZipkinReceiverSchema } from '../../../../agent/traces/receiver.ts';
import { SpanBatcher, SpanBatcherSchema } from '../../../../agent/traces/batcher.ts';
import { SpanMetrics, SpanMetricsSchema } from '../../../../collector/traces/spanmetrics.ts';
import { ZipkinExporter, ZipkinExporterSchema } from '../../../../collector/traces/zipkin-exporter.ts';
import { startZipkinServer } from '../../../helpers/zipkin-server.ts';
import { runOtelApp } from '../../../helpers/otel-app.ts';
import { waitFor } from '../../../helpers/wait.ts';

function decode<T extends Parameters<typeof Value.Default>[0]>(schema: T, value: Record<string, unknown>) {
  return Value.Decode(schema, Value.Default(schema, value));
}

describe('span path: app → receiver → batcher → collector → span metrics + Zipkin', () => {
  it('delivers every span to Zipkin once and counts it in span metrics', async () => {
    const log = silentLogger();
    const agentTelemetry = new Telemetry();
    const collectorTelemetry = new Telemetry();
    const zipkin = await startZipkinServer();
    const exporter = new ZipkinExporter(decode(ZipkinExporterSchema, { url: zipkin.url }), { telemetry: collectorTelemetry, log });
    const metrics = new SpanMetrics(decode(SpanMetricsSchema, {}), { telemetry: collectorTelemetry, log });
    exporter.start();

    // the collector side of POST /v1/traces
    const seen = new Set<string>();
    const ingest = (body: unknown): boolean => {
      const r = decodeSpanBatch(body);
      if ('error' in r) throw new Error(r.error);
      if (seen.has(r.batch.id)) return true;
      if (!exporter.write(r.batch.spans)) return false;
      seen.add(r.batch.id);
      metrics.observe(r.batch.spans);
      return true;
    };

    const batcher = new SpanBatcher(decode(SpanBatcherSchema, { flushInterval: '20ms' }), { telemetry: agentTelemetry, log, agent: 'host-1' });
    batcher.start();
    const receiver = await startZipkinReceiver(decode(ZipkinReceiverSchema, { listen: '127.0.0.1:0' }), { telemetry: agentTelemetry, log }, batcher.onSpans);
    const abort = new AbortController();
    const forwarding = batcher.forwardTo((batch: SpanBatch) => ingest(JSON.parse(JSON.stringify(batch))), abort.signal, 10);

    const app = await runOtelApp(`http://${receiver.address}/api/v2/spans`, 'checkout');
    try {
      await zipkin.waitForSpans(app.spans.length);
      expect(zipkin.spans.map((s) => s.id).sort()).toEqual(app.spans.map((s) => s.spanContext().spanId).sort());
      const text = metrics.renderSpanMetrics();
      expect(text).toContain('traces_spanmetrics_calls_total{service="checkout",span_name="GET /orders/:id",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_OK"} 1');
      expect(text).toContain('traces_spanmetrics_calls_total{service="checkout",span_name="SELECT orders",span_kind="SPAN_KIND_CLIENT",status_code="STATUS_CODE_UNSET"} 1');
      expect(text).toContain('traces_spanmetrics_calls_total{service="checkout",span_name="render invoice",span_kind="SPAN_KIND_INTERNAL",status_code="STATUS_CODE_ERROR"} 1');
    } finally {
      await app.shutdown();
      await receiver.stop();
      batcher.stop();
      await waitFor(() => batcher.queued === 0, { what: 'batcher drained' });
      abort.abort();
      await forwarding;
      await exporter.stop(Date.now() + 2000);
      await zipkin.stop();
    }
  });
});
