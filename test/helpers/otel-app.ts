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

/**
 * Runs `requests` requests' worth of work (a SERVER span with a CLIENT child carrying two events,
 * and an INTERNAL child that fails); each span goes to every Zipkin URL given.
 */
export async function runOtelApp(zipkinSpansUrls: string | string[], serviceName = 'checkout', requests = 1): Promise<OtelRun> {
  const memory = new InMemorySpanExporter();
  const urls = typeof zipkinSpansUrls === 'string' ? [zipkinSpansUrls] : zipkinSpansUrls;
  const sdk = new NodeSDK({
    serviceName,
    autoDetectResources: false,
    resourceDetectors: [],
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
    spanProcessors: [...urls.map((url) => new SimpleSpanProcessor({ exporter: new ZipkinExporter({ url, serviceName }) })), new SimpleSpanProcessor({ exporter: memory })],
  });
  sdk.start();
  const shutdown = async (): Promise<void> => {
    await sdk.shutdown();
    trace.disable();
  };
  try {
    const tracer = trace.getTracer('plumb-test-app');
    for (let i = 0; i < requests; i++) {
      const attributes = { 'http.request.method': 'GET', 'http.response.status_code': 200, 'app.cached': false, 'app.request': i };
      await tracer.startActiveSpan('GET /orders/:id', { kind: SpanKind.SERVER, attributes }, async (server) => {
        await tracer.startActiveSpan('SELECT orders', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql', 'db.rows': i + 3 } }, async (db) => {
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
    }
    const provider = trace.getTracerProvider() as unknown as { getDelegate(): { forceFlush(): Promise<void> } };
    await provider.getDelegate().forceFlush();
  } catch (err) {
    await shutdown();
    throw err;
  }
  return { spans: [...memory.getFinishedSpans()], shutdown };
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
