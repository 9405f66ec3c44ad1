/**
 * A small instrumented "application": the real OpenTelemetry NodeSDK with the real Zipkin
 * exporter, plus an in-memory exporter beside it that keeps what the SDK recorded, so tests can
 * compare what arrived over the wire with what the application produced.
 */
import { trace, SpanKind, SpanStatusCode, type HrTime } from '@opentelemetry/api';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace';

export interface OtelRun {
  /** What the SDK recorded, in the order spans ended. */
  spans: ReadableSpan[];
  shutdown(): Promise<void>;
}

/** Runs one request's worth of work (server span → client span + failing internal span). */
export async function runOtelApp(zipkinSpansUrl: string, serviceName = 'checkout'): Promise<OtelRun> {
  const memory = new InMemorySpanExporter();
  const sdk = new NodeSDK({
    serviceName,
    autoDetectResources: false,
    resourceDetectors: [],
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
    spanProcessors: [
      new SimpleSpanProcessor({ exporter: new ZipkinExporter({ url: zipkinSpansUrl, serviceName }) }),
      new SimpleSpanProcessor({ exporter: memory }),
    ],
  });
  sdk.start();
  const tracer = trace.getTracer('plumb-test-app');
  await tracer.startActiveSpan('GET /orders/:id', { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'GET', 'http.response.status_code': 200, 'app.cached': false } }, async (server) => {
    await tracer.startActiveSpan('SELECT orders', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql', 'db.rows': 3 } }, async (db) => {
      db.addEvent('query sent');
      await new Promise((resolve) => setImmediate(resolve));
      db.addEvent('rows read');
      db.end();
    });
    const render = tracer.startSpan('render invoice');
    render.setStatus({ code: SpanStatusCode.ERROR, message: 'template missing' });
    render.end();
    server.setStatus({ code: SpanStatusCode.OK });
    server.end();
  });
  const provider = trace.getTracerProvider() as unknown as { getDelegate(): { forceFlush(): Promise<void> } };
  await provider.getDelegate().forceFlush();
  const spans = [...memory.getFinishedSpans()];
  return {
    spans,
    async shutdown() {
      await sdk.shutdown();
      trace.disable();
    },
  };
}

export function micros(t: HrTime): number {
  return Math.round(t[0] * 1e6 + t[1] / 1e3);
}

export const ZIPKIN_KIND: Record<number, string | undefined> = {
  [SpanKind.INTERNAL]: undefined,
  [SpanKind.SERVER]: 'SERVER',
  [SpanKind.CLIENT]: 'CLIENT',
  [SpanKind.PRODUCER]: 'PRODUCER',
  [SpanKind.CONSUMER]: 'CONSUMER',
};
