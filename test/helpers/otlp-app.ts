/**
 * An application instrumented with the real OpenTelemetry JS SDK and its OTLP exporters
 * (http/protobuf, http/json or gRPC, the packages of the same release as sdk-node): traces,
 * metrics of every instrument kind, and logs, sent to one OTLP endpoint. Providers are used
 * directly (nothing global is registered), so several "hosts" can run in one test process.
 */
import { ROOT_CONTEXT, SeverityNumber, SpanKind, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import { AggregationType, MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { LoggerProvider, SimpleLogRecordProcessor, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPMetricExporter as JsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPLogExporter as ProtoLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as JsonLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as GrpcLogExporter } from '@opentelemetry/exporter-logs-otlp-grpc';
import { ZipkinExporter } from '@opentelemetry/exporter-zipkin';
import { Metadata } from '@grpc/grpc-js';

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';

export interface OtlpAppOptions {
  protocol: OtlpProtocol;
  /** http://host:port of OTLP/HTTP, or host:port of OTLP/gRPC. */
  endpoint: string;
  serviceName: string;
  instanceId: string;
  /** Extra resource attributes (they go to target_info). */
  resource?: Attributes;
  /** Sent with every export (HTTP headers, gRPC metadata), e.g. authorization. */
  headers?: Record<string, string>;
  /** Also send every span to this Zipkin URL with OpenTelemetry's own Zipkin exporter (the reference). */
  zipkinReference?: string;
}

export interface OtlpApp {
  tracer: ReturnType<TracerProvider['getTracer']>;
  meter: ReturnType<MeterProvider['getMeter']>;
  logger: ReturnType<LoggerProvider['getLogger']>;
  /** What the SDK recorded. */
  spans(): ReadableSpan[];
  /** Exports metrics now (cumulative temporality, the SDK's default). */
  flushMetrics(): Promise<void>;
  shutdown(): Promise<void>;
}

function exporters(o: OtlpAppOptions): { spans: SpanExporter; metrics: PushMetricExporter; logs: LogRecordExporter } {
  const headers = o.headers ?? {};
  if (o.protocol === 'grpc') {
    const url = `http://${o.endpoint}`;
    const metadata = new Metadata();
    for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
    return { spans: new GrpcTraceExporter({ url, metadata }), metrics: new GrpcMetricExporter({ url, metadata }), logs: new GrpcLogExporter({ url, metadata }) };
  }
  if (o.protocol === 'http/json') {
    return {
      spans: new JsonTraceExporter({ url: `${o.endpoint}/v1/traces`, headers }),
      metrics: new JsonMetricExporter({ url: `${o.endpoint}/v1/metrics`, headers }),
      logs: new JsonLogExporter({ url: `${o.endpoint}/v1/logs`, headers }),
    };
  }
  return {
    spans: new ProtoTraceExporter({ url: `${o.endpoint}/v1/traces`, compression: 'gzip' as never, headers }),
    metrics: new ProtoMetricExporter({ url: `${o.endpoint}/v1/metrics`, compression: 'gzip' as never, headers }),
    logs: new ProtoLogExporter({ url: `${o.endpoint}/v1/logs`, compression: 'gzip' as never, headers }),
  };
}

export function startOtlpApp(o: OtlpAppOptions): OtlpApp {
  const resource = resourceFromAttributes({ 'service.name': o.serviceName, 'service.instance.id': o.instanceId, ...(o.resource ?? {}) });
  const ex = exporters(o);
  const memory = new InMemorySpanExporter();
  const spanProcessors = [new SimpleSpanProcessor({ exporter: ex.spans }), new SimpleSpanProcessor({ exporter: memory })];
  if (o.zipkinReference) spanProcessors.push(new SimpleSpanProcessor({ exporter: new ZipkinExporter({ url: o.zipkinReference }) }));
  const tracerProvider = new TracerProvider({ resource, spanProcessors });
  const reader = new PeriodicExportingMetricReader({ exporter: ex.metrics, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({
    resource,
    readers: [reader],
    views: [
      { instrumentName: 'app.request.size', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM, options: { maxSize: 160 } } },
      { instrumentName: 'app.request.duration', aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: [10, 50, 100, 500] } } },
    ],
  });
  const loggerProvider = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: ex.logs })] });
  return {
    tracer: tracerProvider.getTracer('plumb-otlp-test', '1.2.3'),
    meter: meterProvider.getMeter('plumb-otlp-test', '1.2.3'),
    logger: loggerProvider.getLogger('plumb-otlp-test', '1.2.3'),
    spans: () => [...memory.getFinishedSpans()],
    flushMetrics: () => reader.forceFlush(),
    shutdown: async () => {
      await tracerProvider.forceFlush();
      await loggerProvider.forceFlush();
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown(), loggerProvider.shutdown()]);
    },
  };
}

/**
 * One request's worth of work: a SERVER span with a CLIENT child (two events, one with
 * attributes, a link) and a failing INTERNAL child; a log record inside the server span.
 */
export async function handleRequest(app: OtlpApp, i: number): Promise<void> {
  const { tracer, logger } = app;
  await new Promise<void>((resolve) => {
    tracer.startActiveSpan('GET /orders/:id', { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'GET', 'http.response.status_code': 200, 'app.cached': false, 'app.request': i } }, (server) => {
      const db = tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql', 'db.rows': i + 3, 'server.address': 'orders-db' } });
      db.addEvent('query sent');
      db.addEvent('rows read', { rows: i + 3 });
      db.end();
      const render = tracer.startSpan('render invoice', { links: [{ context: db.spanContext(), attributes: { why: 'follows' } }] });
      render.setStatus({ code: SpanStatusCode.ERROR, message: 'template missing' });
      render.end();
      logger.emit({
        severityNumber: SeverityNumber.WARN,
        severityText: 'WARN',
        body: `order ${i} served without invoice`,
        attributes: { 'order.id': i, 'app.region': 'eu' },
        context: trace.setSpan(ROOT_CONTEXT, server),
      });
      server.setStatus({ code: SpanStatusCode.OK });
      server.end();
      resolve();
    });
  });
}
