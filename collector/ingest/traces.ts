/**
 * `POST /v1/traces`: span batches from agents. Each batch is validated again (an agent is a
 * client like any other), applied once (a resent batch id is acknowledged without being applied
 * again), written to the Zipkin sink when one is configured and counted in span metrics.
 *
 * Answers: 200 `{accepted, dropped, duplicate}`: a span that cannot be used is left out and
 * counted (plumb_ingest_spans_dropped_total{reason}), the others apply; 400 when the batch itself
 * is not valid (the message names the field); 429 + Retry-After when the Zipkin sink's queue is full (nothing was applied, the agent
 * retries the same batch later).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import type { Context } from '@opentelemetry/api';
import type { Telemetry } from '../../shared/telemetry.ts';
import { requestContext, type SelfTracing } from '../../shared/tracing.ts';
import { TRACES_PATH, decodeSpanBatch, type SpanLimits, type ZipkinSpan } from '../../shared/zipkin.ts';
import type { ReplayIds } from './dedupe.ts';
import type { TapPoint } from '../../shared/tap.ts';

/** Where accepted spans go: all or none; false means "full, ask the agent to retry". A promise while the sink is being replaced (config reload). */
export interface SpanSink {
  write(spans: readonly ZipkinSpan[], parent?: Context): boolean | Promise<boolean>;
}

/** A durable store of spans (the Elasticsearch span index): resolves false when its queue is full. */
export interface DurableSpanSink {
  write(spans: readonly ZipkinSpan[], parent?: Context): Promise<boolean>;
}

export interface TracesIngestOptions {
  /** Batch ids applied recently (a DurableIds over RecentIds in the collector). */
  recent: ReplayIds;
  sink: SpanSink | null;
  /** Written first: a batch it cannot take is refused before anything else sees it. */
  index: DurableSpanSink | null;
  spanMetrics: { observe(spans: readonly ZipkinSpan[]): void } | null;
  maxSpansPerBatch: number;
  retryAfterMs: number;
  telemetry: Telemetry;
  tracing: SelfTracing;
  /** The live tap of accepted spans (shared/tap.ts). */
  tap?: TapPoint;
}

/**
 * Registers the route in its own scope, taking JSON only (another media type gets 415). Its
 * parser keeps a `__proto__` key as data (a span tag may be called that; decodeSpanBatch
 * copies it safely) where fastify's default parser would refuse the whole body.
 */
export async function tracesIngestPlugin(app: FastifyInstance, options: TracesIngestOptions): Promise<void> {
  const handler = new TracesIngest(options);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, parseJson);
  app.post(TRACES_PATH, (request, reply) => handler.handle(request, reply));
}

function parseJson(_request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void): void {
  try {
    // JSON.parse makes "__proto__" an own property, never the prototype
    done(null, JSON.parse(body.toString('utf8')));
  } catch (err) {
    const e = new Error(`the body is not valid JSON (${(err as Error).message})`) as Error & { statusCode: number; code: string };
    e.statusCode = 400;
    e.code = 'PLUMB_ERR_INGEST_BODY';
    done(e);
  }
}

class TracesIngest {
  private readonly options: TracesIngestOptions;
  private readonly limits: SpanLimits;
  private readonly retryAfterSeconds: string;
  private readonly batches: Counter<'kind' | 'outcome'>;
  private readonly spans: Counter;
  private readonly invalid: Counter<'reason'>;
  private readonly droppedSpans: Counter<'reason'>;
  private readonly backpressure: Counter<'kind' | 'reason'>;

  constructor(options: TracesIngestOptions) {
    this.options = options;
    this.limits = { maxSpans: options.maxSpansPerBatch };
    this.retryAfterSeconds = String(Math.max(1, Math.ceil(options.retryAfterMs / 1000)));
    const t = options.telemetry;
    this.batches = t.counter('plumb_ingest_batches_total', 'batches received from agents, by kind and outcome', ['kind', 'outcome']);
    this.spans = t.counter('plumb_ingest_spans_total', 'spans received from agents and applied');
    this.invalid = t.counter('plumb_ingest_invalid_spans_total', 'span batches refused as invalid, by reason', ['reason']);
    this.droppedSpans = t.counter('plumb_ingest_spans_dropped_total', 'spans left out of an applied batch because they could not be used, by reason', ['reason']);
    this.backpressure = t.counter('plumb_ingest_backpressure_total', 'batches answered 429 because a queue was full or above its high-water mark, by kind and reason', ['kind', 'reason']);
  }

  async handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const result = decodeSpanBatch(request.body, this.limits);
    if ('error' in result) {
      this.batches.inc({ kind: 'traces', outcome: 'invalid' });
      this.invalid.inc({ reason: result.reason });
      reply.code(400).send({ error: 'PLUMB_ERR_INGEST_BODY', message: result.error });
      return;
    }
    const { batch, dropped } = result;
    const { recent, sink, index, spanMetrics, tracing } = this.options;
    if (recent.has(batch.id)) {
      this.batches.inc({ kind: 'traces', outcome: 'duplicate' });
      reply.send({ accepted: 0, dropped: 0, duplicate: true });
      return;
    }
    const parent = tracing.enabled ? requestContext(request) : undefined;
    // A resend after a refusal further down writes the same span ids again: the index keeps one.
    if (index !== null && !(await index.write(batch.spans, parent))) {
      this.batches.inc({ kind: 'traces', outcome: 'refused' });
      this.backpressure.inc({ kind: 'traces', reason: 'queue_full' });
      reply
        .code(429)
        .header('retry-after', this.retryAfterSeconds)
        .send({ error: 'PLUMB_ERR_SINK_RETRYABLE', message: 'a span sink queue (Elasticsearch, OTLP) is full (collector.logs.queue.maxBytes); retry later' });
      return;
    }
    if (sink !== null && !(await sink.write(batch.spans, parent))) {
      this.batches.inc({ kind: 'traces', outcome: 'refused' });
      this.backpressure.inc({ kind: 'traces', reason: 'zipkin_queue_full' });
      reply
        .code(429)
        .header('retry-after', this.retryAfterSeconds)
        .send({ error: 'PLUMB_ERR_SINK_RETRYABLE', message: 'the Zipkin sink queue is full (collector.traces.zipkin.maxQueuedSpans); retry later' });
      return;
    }
    spanMetrics?.observe(batch.spans);
    const tap = this.options.tap;
    if (tap?.active === true) tap.publish(batch.spans);
    // Journaled after the sinks took the spans and before the 2xx: a crash between the two sends
    // the batch to the sinks again after the agent retries (the span index keeps one per span id).
    await recent.record([batch.id]);
    this.batches.inc({ kind: 'traces', outcome: 'applied' });
    this.spans.inc(batch.spans.length);
    for (const d of dropped) this.droppedSpans.inc({ reason: d.reason });
    reply.send({ accepted: batch.spans.length, dropped: dropped.length, duplicate: false });
  }
}
