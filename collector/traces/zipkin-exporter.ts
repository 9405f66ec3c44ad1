/**
 * Sends spans to a Zipkin-compatible server (`POST {url}/api/v2/spans`, JSON, gzip by default):
 * Zipkin itself, Jaeger's or Tempo's Zipkin receivers, or another plumb agent.
 *
 * write() queues spans (bounded by spans and bytes; when full it refuses and the caller answers
 * its own client 429). One sender takes up to maxBatchSpans from the queue per request, so
 * batches form by themselves while a request is in flight. A failed request is retried with
 * backoff until it succeeds: 5xx, 408, 429 and network errors are retryable, any other 4xx is
 * permanent and its spans are counted as rejected. stop(deadline) stops taking spans, keeps
 * sending until the queue is empty or the deadline passes, and counts what it had to drop.
 * Spans are sent in the order written; a request is resent only when it did not succeed, so a
 * span is duplicated only if the server stored it and the answer was lost.
 */
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { Type, type StaticDecode } from '@sinclair/typebox';
import type { Counter, Gauge } from 'prom-client';
import { Agent, request } from 'undici';
import { Section, Size, Duration } from '../../shared/config.ts';
import { PermanentError, RetryableError, errorMessage } from '../../shared/errors.ts';
import { retryReason } from '../sinks/metrics.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { BoundedQueue } from '../../shared/queue.ts';
import { httpStatusError, retry, SINK_CODES } from '../../shared/retry.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { ZIPKIN_SPANS_PATH, type ZipkinSpan } from '../../shared/zipkin.ts';
import { ROOT_CONTEXT, SpanKind, trace, type Context, type Link } from '@opentelemetry/api';
import { TRACING_OFF, SPAN_SINK_WRITE, failSpan, type SelfTracing } from '../../shared/tracing.ts';

const gzipAsync = promisify(gzip);

export const ZipkinExporterSchema = Section(
  {
    url: Type.String({
      default: 'http://127.0.0.1:9411',
      pattern: '^https?://[^\\s]+$',
      errorMessage: 'an http(s) URL like "http://zipkin:9411"',
      description: 'Zipkin base URL; spans are posted to {url}/api/v2/spans.',
    }),
    gzip: Type.Boolean({ default: true, description: 'Compress request bodies.' }),
    headers: Type.Record(Type.String(), Type.String(), { default: {}, description: 'Extra request headers (Authorization, tenant ids).' }),
    maxBatchSpans: Type.Integer({ minimum: 1, default: 1000, description: 'Most spans per request.' }),
    maxBatchBytes: Size('4mb', { description: 'Largest request body before compression.' }),
    maxQueuedSpans: Type.Integer({ minimum: 1, default: 100_000, description: 'Spans waiting to be sent; when full, write() refuses.' }),
    maxQueuedBytes: Size('64mb', { description: 'Bytes (JSON) of spans waiting to be sent.' }),
    timeout: Duration('10s', { description: 'Longest wait for one request.' }),
    retryInitial: Duration('200ms', { description: 'First retry delay; doubles per attempt, with jitter.' }),
    retryMax: Duration('30s', { description: 'Longest retry delay.' }),
  },
  { description: 'Zipkin span sink.' },
);

export type ZipkinExporterConfig = StaticDecode<typeof ZipkinExporterSchema>;

export interface ZipkinExporterContext {
  telemetry: Telemetry;
  log: Logger;
  /** plumb's own traces; off when absent. */
  tracing?: SelfTracing;
}

type Outcome = 'sent' | 'rejected' | 'dropped' | 'refused';

interface QueuedSpan {
  json: string;
  bytes: number;
  /** Self-tracing: set on the first span of each write, the Context of whoever wrote it. */
  parent: Context | undefined;
}

const SINK = 'zipkin';

export class ZipkinExporter {
  private readonly config: ZipkinExporterConfig;
  private readonly endpoint: string;
  private readonly headers: Record<string, string>;
  private readonly log: Logger;
  private readonly logOnce: LogOnce;
  private readonly tracing: SelfTracing;
  private readonly queue: BoundedQueue<QueuedSpan>;
  private readonly events: Counter<'sink' | 'outcome'>;
  private readonly retries: Counter<'sink' | 'reason'>;
  private readonly depth: Gauge<'sink'>;
  private readonly depthBytes: Gauge<'sink'>;
  private dispatcher: Agent | undefined;
  private loop: Promise<void> | undefined;
  /** Aborts the wait for new spans so the loop sees `stopping`. */
  private wake = new AbortController();
  /** Aborts in-flight requests and retries when the stop deadline passes. */
  private abort = new AbortController();
  private stopping = false;

  /** Spans waiting to be sent. */
  queueDepth(): number {
    return this.queue.length;
  }

  constructor(config: ZipkinExporterConfig, ctx: ZipkinExporterContext) {
    this.config = config;
    const base = config.url.replace(/\/+$/, '');
    this.endpoint = base.endsWith(ZIPKIN_SPANS_PATH) ? base : `${base}${ZIPKIN_SPANS_PATH}`;
    this.headers = { ...lowercaseKeys(config.headers), 'content-type': 'application/json' };
    if (config.gzip) this.headers['content-encoding'] = 'gzip';
    this.log = ctx.log.child({ component: 'zipkin-exporter' });
    this.logOnce = new LogOnce(this.log);
    this.tracing = ctx.tracing ?? TRACING_OFF;
    this.queue = new BoundedQueue<QueuedSpan>({ maxItems: config.maxQueuedSpans, maxBytes: config.maxQueuedBytes });
    const t = ctx.telemetry;
    this.events = t.counter('plumb_sink_events_total', 'Events handled by sinks, by outcome (sent, rejected, dropped, refused).', ['sink', 'outcome']);
    // at 0 from the start, so an alert on increase() sees the first loss
    for (const outcome of ['sent', 'rejected', 'dropped', 'refused'] as const) this.events.inc({ sink: SINK, outcome }, 0);
    this.retries = t.counter('plumb_sink_retries_total', 'Sink writes retried, by reason (unavailable, throttled, server_error, auth, item_throttled, item_server_error, other).', ['sink', 'reason']);
    this.depth = t.gauge('plumb_sink_queue_depth', 'Events waiting in a sink queue.', ['sink']);
    this.depthBytes = t.gauge('plumb_sink_queue_bytes', 'Bytes waiting in a sink queue.', ['sink']);
  }

  /** Starts the sender. Start sinks before the sources that write to them. */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.wake = new AbortController();
    this.abort = new AbortController();
    this.dispatcher = new Agent({ connections: 4, headersTimeout: this.config.timeout, bodyTimeout: this.config.timeout, connectTimeout: this.config.timeout });
    this.loop = this.run();
  }

  /**
   * Queues the spans, all or none. False means the queue is full or the exporter is stopping;
   * nothing was taken and the caller should push back (429) or count the loss. The request that
   * sends them is traced as a child of `parent` (self-tracing), or linked to it when it carries
   * spans of several writes.
   */
  write(spans: readonly ZipkinSpan[], parent?: Context): boolean {
    if (spans.length === 0) return true;
    if (this.stopping || !this.loop) {
      this.count('refused', spans.length);
      return false;
    }
    const items = new Array<QueuedSpan>(spans.length);
    let total = 0;
    for (let i = 0; i < spans.length; i++) {
      const json = JSON.stringify(spans[i]);
      const bytes = Buffer.byteLength(json) + 1;
      items[i] = { json, bytes, parent: i === 0 ? parent : undefined };
      total += bytes;
    }
    const q = this.queue;
    if (q.length + items.length > q.maxItems || q.bytes + total > q.maxBytes) {
      this.count('refused', spans.length);
      if (total > q.maxBytes) {
        this.logOnce.warn('oversize', { bytes: total, maxQueuedBytes: q.maxBytes }, 'zipkin exporter refused a write larger than its whole queue; raise maxQueuedBytes');
      }
      return false;
    }
    for (const item of items) q.push(item, item.bytes);
    this.updateDepth();
    return true;
  }

  /**
   * Stops taking spans and sends what is queued until `deadline` (Unix milliseconds). What is
   * still unsent at the deadline is dropped and counted (outcome="dropped").
   */
  async stop(deadline: number): Promise<void> {
    if (!this.loop) return;
    this.stopping = true;
    this.wake.abort();
    const timer = setTimeout(() => this.abort.abort(), Math.max(0, deadline - Date.now()));
    try {
      await this.loop;
    } finally {
      clearTimeout(timer);
      this.loop = undefined;
      const left = this.queue.length;
      while (this.queue.shift() !== undefined);
      this.updateDepth();
      if (left > 0) {
        this.count('dropped', left);
        this.log.error({ dropped: left }, 'zipkin exporter stopped at its deadline with spans unsent; they are dropped');
      }
      const d = this.dispatcher;
      this.dispatcher = undefined;
      await d?.destroy().catch(() => undefined);
    }
  }

  /** Spans waiting to be sent. */
  get queued(): number {
    return this.queue.length;
  }

  private async run(): Promise<void> {
    const { maxBatchSpans, maxBatchBytes } = this.config;
    while (!this.abort.signal.aborted) {
      if (this.queue.length === 0) {
        if (this.stopping) return;
        await this.queue.waitForItem(this.wake.signal);
        continue;
      }
      const parts: string[] = [];
      const parents: Context[] = [];
      let bytes = 2;
      while (parts.length < maxBatchSpans) {
        const next = this.queue.peek();
        if (next === undefined || (parts.length > 0 && bytes + next.bytes > maxBatchBytes)) break;
        this.queue.shift();
        parts.push(next.json);
        if (next.parent !== undefined) parents.push(next.parent);
        bytes += next.bytes;
      }
      this.updateDepth();
      await this.send(`[${parts.join(',')}]`, parts.length, parents);
    }
  }

  private async send(json: string, count: number, parents: Context[]): Promise<void> {
    const span = this.startSpan(count, parents);
    try {
      const body = this.config.gzip ? await gzipAsync(json) : Buffer.from(json);
      await retry(() => this.post(body), {
        initialMs: this.config.retryInitial,
        maxMs: this.config.retryMax,
        signal: this.abort.signal,
        onRetry: (err, attempt, delayMs) => {
          this.retries.inc({ sink: SINK, reason: retryReason(err) });
          span.addEvent('retry', { attempt, delayMs, error: errorMessage(err) });
          this.logOnce.warn('retry', { attempt, delayMs, err: errorMessage(err), endpoint: this.endpoint }, 'zipkin exporter retrying a request');
        },
      });
      this.count('sent', count);
    } catch (err) {
      failSpan(span, err);
      if (err instanceof PermanentError) {
        this.count('rejected', count);
        this.logOnce.warn('rejected', { err: err.message, endpoint: this.endpoint, spans: count }, 'zipkin server refused spans permanently; they are dropped');
      } else {
        // only an abort at the stop deadline ends retry() with a retryable error
        this.count('dropped', count);
        this.log.error({ err: errorMessage(err), spans: count }, 'zipkin exporter gave up on a request at its stop deadline; spans dropped');
      }
    } finally {
      span.end();
    }
  }

  /** The sink write span: child of the first writer's Context, linked to the others. */
  private startSpan(count: number, parents: Context[]) {
    if (!this.tracing.enabled) return this.tracing.tracer.startSpan(SPAN_SINK_WRITE, {}, ROOT_CONTEXT);
    const attributes = { 'plumb.sink': SINK, 'plumb.spans': count, 'http.request.method': 'POST', 'url.full': this.endpoint };
    const links: Link[] = [];
    for (let i = 1; i < parents.length; i++) {
      const sc = trace.getSpanContext(parents[i]);
      if (sc !== undefined) links.push({ context: sc });
    }
    return this.tracing.tracer.startSpan(SPAN_SINK_WRITE, { kind: SpanKind.CLIENT, attributes, links }, parents[0] ?? ROOT_CONTEXT);
  }

  private async post(body: Buffer): Promise<void> {
    let res;
    try {
      res = await request(this.endpoint, {
        method: 'POST',
        headers: this.headers,
        body,
        dispatcher: this.dispatcher,
        signal: this.abort.signal,
      });
    } catch (err) {
      throw new RetryableError('PLUMB_ERR_SINK_RETRYABLE', `zipkin ${this.endpoint}: ${errorMessage(err)}`, { cause: err });
    }
    const status = res.statusCode;
    if (status >= 200 && status < 300) {
      await res.body.dump();
      return;
    }
    const text = (await res.body.text().catch(() => '')).slice(0, 200);
    const message = `zipkin ${this.endpoint} answered ${status}${text ? `: ${text}` : ''}`;
    throw httpStatusError(status, message, res.headers['retry-after'], SINK_CODES);
  }

  private count(outcome: Outcome, n: number): void {
    this.events.inc({ sink: SINK, outcome }, n);
  }

  private updateDepth(): void {
    this.depth.set({ sink: SINK }, this.queue.length);
    this.depthBytes.set({ sink: SINK }, this.queue.bytes);
  }
}

function lowercaseKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

