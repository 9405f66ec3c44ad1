/**
 * plumb's own traces: spans for the agent's flushes, each forward request, the collector's
 * ingest and each sink write, exported to a Zipkin server (`telemetry.tracing.zipkin`).
 *
 * Off by default, and then free: components hold the OpenTelemetry API's no-op tracer, no SDK
 * module is loaded and no header is written. On, plumb builds its own TracerProvider and W3C
 * trace-context propagator and hands them to its components. Nothing is registered globally, so
 * an instrumented application sharing the process (tests, embedding) never records plumb's spans
 * and plumb never records its spans. Without a global context manager there is no "active"
 * span: parents travel as explicit Contexts (the forwarder keeps one with each queued batch).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Type, type StaticDecode } from '@sinclair/typebox';
import {
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  defaultTextMapGetter,
  defaultTextMapSetter,
  trace,
  type Context,
  type Span,
  type TextMapPropagator,
  type Tracer,
} from '@opentelemetry/api';
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Section } from './config.ts';
import { errorMessage } from './errors.ts';
import type { Logger } from './log.ts';
import type { Telemetry } from './telemetry.ts';

export const SelfTracingSchema = Section(
  {
    zipkin: Type.Union([Type.Null(), Type.String({ pattern: '^https?://[^\\s]+$' })], {
      default: null,
      errorMessage: 'an http(s) URL like "http://zipkin:9411", or null',
      description: "Zipkin base URL for plumb's own spans (posted to {url}/api/v2/spans); null turns self-tracing off. Point it at Zipkin itself, not at a plumb agent's receiver.",
    }),
    serviceName: Type.String({ minLength: 1, default: 'plumb', description: 'Service name on plumb\'s own spans.' }),
    sampleRatio: Type.Number({ minimum: 0, maximum: 1, default: 1, description: 'Share of traces started here that are recorded; a traced request from an agent follows the agent\'s decision.' }),
  },
  { description: "plumb's own traces (agent flush, forward, collector ingest, sink writes)." },
);

export type SelfTracingConfig = StaticDecode<typeof SelfTracingSchema>;

/** Span names, fixed and documented (README, "Traces"). */
export const SPAN_AGENT_FLUSH = 'plumb.agent.flush';
export const SPAN_FORWARD = 'plumb.forward';
export const SPAN_INGEST = 'plumb.collector.ingest';
export const SPAN_SINK_WRITE = 'plumb.sink.write';

export interface SelfTracing {
  readonly enabled: boolean;
  readonly tracer: Tracer;
  /** The remote parent named by `traceparent`/`tracestate`, or ROOT_CONTEXT. */
  extract(headers: IncomingHttpHeaders): Context;
  /** Writes `traceparent` (and `tracestate`) for the span in `ctx` into `headers`. */
  inject(ctx: Context, headers: Record<string, string>): void;
  /** Exports the spans ended so far. */
  flush(): Promise<void>;
  /** Exports what is left and stops. */
  shutdown(): Promise<void>;
}

/** Self-tracing off: the API's no-op tracer (never the global one) and no propagation. */
export const TRACING_OFF: SelfTracing = Object.freeze({
  enabled: false,
  tracer: new ProxyTracerProvider().getTracer('plumb'),
  extract: () => ROOT_CONTEXT,
  inject: () => undefined,
  flush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
});

export interface SelfTracingContext {
  telemetry: Telemetry;
  log: Logger;
}

/**
 * Builds self-tracing from config: TRACING_OFF when `zipkin` is null. The SDK modules are
 * loaded only here, so a process that does not trace itself never loads them.
 */
export async function startSelfTracing(config: SelfTracingConfig, ctx: SelfTracingContext): Promise<SelfTracing> {
  if (config.zipkin === null) return TRACING_OFF;
  const [sdk, core, zipkin, resources] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/core'),
    import('@opentelemetry/exporter-zipkin'),
    import('@opentelemetry/resources'),
  ]);
  const base = config.zipkin.replace(/\/+$/, '');
  const url = base.endsWith('/api/v2/spans') ? base : `${base}/api/v2/spans`;
  const exporter = new CountingExporter(new zipkin.ZipkinExporter({ url, serviceName: config.serviceName }), ctx.telemetry, ctx.log);
  const provider = new sdk.TracerProvider({
    resource: resources.resourceFromAttributes({ 'service.name': config.serviceName }),
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(config.sampleRatio) }),
    // A full queue drops plumb's own spans (OpenTelemetry logs how many), never data. A short
    // export timeout keeps a stop quick when Zipkin is away.
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter, maxQueueSize: 2048, scheduledDelayMillis: 5000, exportTimeoutMillis: 5000 })],
  });
  const propagator: TextMapPropagator = new core.W3CTraceContextPropagator();
  ctx.log.info({ zipkin: url, serviceName: config.serviceName, sampleRatio: config.sampleRatio }, 'self-tracing on');
  return {
    enabled: true,
    tracer: provider.getTracer('plumb'),
    extract: (headers) => propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter),
    inject: (c, headers) => propagator.inject(c, headers, defaultTextMapSetter),
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/** Counts what the exporter sent or failed to send, in plumb_tracing_spans_total{outcome}. */
class CountingExporter implements SpanExporter {
  private readonly inner: SpanExporter;
  private readonly spans: ReturnType<Telemetry['counter']>;
  private readonly log: Logger;

  constructor(inner: SpanExporter, telemetry: Telemetry, log: Logger) {
    this.inner = inner;
    this.log = log;
    this.spans = telemetry.counter('plumb_tracing_spans_total', "plumb's own spans handed to the self-tracing Zipkin exporter, by outcome (exported, failed).", ['outcome']);
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      // ExportResultCode.SUCCESS is 0
      const ok = result.code === 0;
      this.spans.inc({ outcome: ok ? 'exported' : 'failed' }, spans.length);
      if (!ok) this.log.warn({ spans: spans.length, err: result.error ? errorMessage(result.error) : undefined }, 'self-tracing: Zipkin did not take plumb\'s own spans');
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** Marks `span` failed with the error's message. */
export function failSpan(span: Span, err: unknown): void {
  if (err instanceof Error) span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorMessage(err) });
}

// ---- server spans for fastify routes ----

interface RequestSpan {
  span: Span;
  context: Context;
}

const requestSpans = new WeakMap<FastifyRequest, RequestSpan>();

/**
 * Gives every request to one of `routes` a SERVER span named `name`, child of the trace the
 * request's `traceparent` names. Handlers get its Context from requestContext(). Installs
 * nothing when tracing is off. Call before the routes are registered.
 */
export function traceRoutes(app: FastifyInstance, tracing: SelfTracing, name: string, routes: readonly string[]): void {
  if (!tracing.enabled) return;
  const traced = new Set(routes);
  app.addHook('onRequest', (request, _reply, done) => {
    const route = request.routeOptions.url;
    if (route !== undefined && traced.has(route)) {
      const parent = tracing.extract(request.headers);
      const batchId = request.headers['x-plumb-batch-id'];
      const span = tracing.tracer.startSpan(
        name,
        {
          kind: SpanKind.SERVER,
          attributes: { 'http.request.method': request.method, 'http.route': route, ...(typeof batchId === 'string' ? { 'plumb.batch.id': batchId } : {}) },
        },
        parent,
      );
      requestSpans.set(request, { span, context: trace.setSpan(parent, span) });
    }
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    endRequestSpan(request, reply);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    endRequestSpan(request, undefined);
    done();
  });
}

function endRequestSpan(request: FastifyRequest, reply: FastifyReply | undefined): void {
  const t = requestSpans.get(request);
  if (t === undefined) return;
  requestSpans.delete(request);
  if (reply === undefined) {
    t.span.setStatus({ code: SpanStatusCode.ERROR, message: 'client closed the request' });
  } else {
    t.span.setAttribute('http.response.status_code', reply.statusCode);
    // a 4xx is the client's mistake, not a failure of this server (OpenTelemetry's HTTP conventions)
    if (reply.statusCode >= 500) t.span.setStatus({ code: SpanStatusCode.ERROR });
  }
  t.span.end();
}

/** The Context of the request's server span (ROOT_CONTEXT when it has none). */
export function requestContext(request: FastifyRequest): Context {
  return requestSpans.get(request)?.context ?? ROOT_CONTEXT;
}
