/**
 * Agent → collector delivery: a bounded queue of serialized, gzip-compressed batches sent one at
 * a time over HTTP, retried with backoff and jitter (honouring Retry-After), failing over across
 * the configured collectors. A batch is acknowledged only by a 2xx; a 4xx other than 408/429 is
 * permanent (the batch is dropped, counted and logged: resending cannot fix it).
 */
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { Telemetry } from '../../shared/telemetry.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { BoundedQueue } from '../../shared/queue.ts';
import { PermanentError, RetryableError, errorMessage } from '../../shared/errors.ts';
import { httpStatusError, retryDelay, type BackoffOptions } from '../../shared/retry.ts';

const FORWARD_CODES = { retryable: 'PLUMB_ERR_FORWARD_RETRYABLE', permanent: 'PLUMB_ERR_FORWARD_PERMANENT' } as const;
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { TRACING_OFF, SPAN_FORWARD, failSpan, type SelfTracing } from '../../shared/tracing.ts';

const gzipAsync = promisify(gzip);

export interface ForwarderOptions {
  collectors: string[];
  timeoutMs: number;
  maxQueueBytes: number;
  maxQueueBatches: number;
  backoff: BackoffOptions;
  compress: boolean;
}

/** How a batch left the queue: acknowledged, refused for good by a collector, or dropped here. */
export type BatchResult = 'delivered' | 'rejected' | 'dropped';

interface Pending {
  path: string;
  id: string;
  body: Buffer;
  contentType: string;
  kind: string;
  onDone: ((result: BatchResult) => void) | undefined;
  /** Self-tracing: the span (an agent flush) each POST of this batch is a child of. */
  parent: Context;
}

export interface SendOptions {
  parent?: Context;
  /**
   * 'refuse': a full queue returns 'queue_full' without counting a drop, because the caller
   * keeps the batch and offers it again (the span batcher, whose receiver then answers 429).
   */
  whenFull?: 'drop' | 'refuse';
  /** For a Buffer body: its media type (an object body is sent as JSON). */
  contentType?: string;
}

export type SendOutcome = 'delivered' | 'rejected' | 'queue_full';

export class Forwarder {
  private readonly options: ForwarderOptions;
  private readonly log: Logger;
  private readonly tracing: SelfTracing;
  private readonly warnOnce: LogOnce;
  private readonly queue: BoundedQueue<Pending>;
  private readonly dispatcher: Agent;
  private running = false;
  private loop: Promise<void> | null = null;
  private abort = new AbortController();
  private collectorIndex = 0;
  private readonly sent: { inc: (labels: Record<string, string>, n?: number) => void };
  private readonly dropped: { inc: (labels: Record<string, string>, n?: number) => void };
  private readonly retries: { inc: (labels: Record<string, string>, n?: number) => void };
  private readonly latency: { observe: (labels: Record<string, string>, v: number) => void };

  constructor(options: ForwarderOptions, ctx: { telemetry: Telemetry; log: Logger; tracing?: SelfTracing }) {
    if (options.collectors.length === 0) throw new Error('agent.forward.collectors: at least one collector URL is needed');
    this.options = options;
    this.log = ctx.log;
    this.tracing = ctx.tracing ?? TRACING_OFF;
    this.warnOnce = new LogOnce(ctx.log);
    this.queue = new BoundedQueue({ maxItems: options.maxQueueBatches, maxBytes: options.maxQueueBytes });
    this.dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 4 });
    const t = ctx.telemetry;
    this.sent = t.counter('plumb_forward_batches_total', 'batches acknowledged by a collector', ['kind']);
    this.dropped = t.counter('plumb_forward_dropped_total', 'batches dropped by the forwarder, by reason', ['kind', 'reason']);
    this.retries = t.counter('plumb_forward_retries_total', 'failed sends that will be retried, by reason', ['kind', 'reason']);
    this.latency = t.histogram('plumb_forward_request_seconds', 'collector request latency', ['kind'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
    t.gaugeFrom('plumb_forward_queue_batches', 'batches waiting to be sent', () => this.queue.length);
    t.gaugeFrom('plumb_forward_queue_bytes', 'compressed bytes waiting to be sent', () => this.queue.bytes);
  }

  get queuedBatches(): number {
    return this.queue.length;
  }

  /**
   * Serializes (an object as JSON; a Buffer is sent as it is) and queues a batch. Resolves to
   * 'queue_full' (counted) when it does not fit; `onDone` says how the batch left the queue.
   * `options.parent` makes each POST of the batch a child span of that Context (self-tracing).
   */
  async send(kind: string, path: string, id: string, body: unknown, onDone?: (result: BatchResult) => void, options: SendOptions = {}): Promise<SendOutcome | 'queued'> {
    const refuse = options.whenFull === 'refuse';
    if (refuse && this.queue.length >= this.queue.maxItems) return 'queue_full';
    const raw = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const contentType = Buffer.isBuffer(body) ? (options.contentType ?? 'application/octet-stream') : 'application/json';
    const payload = this.options.compress ? await gzipAsync(raw) : raw;
    if (!this.queue.push({ path, id, body: payload, contentType, kind, onDone, parent: options.parent ?? ROOT_CONTEXT }, payload.length)) {
      if (refuse) return 'queue_full';
      this.dropped.inc({ kind, reason: 'queue_full' });
      this.warnOnce.warn(`queue_full:${kind}`, { kind, queued: this.queue.length, bytes: this.queue.bytes }, 'forward queue is full; dropping the newest batch');
      onDone?.('dropped');
      return 'queue_full';
    }
    return 'queued';
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.loop = this.run();
  }

  /** Stops after the queue drains or the deadline passes; what is left is counted as dropped. */
  async stop(deadlineMs = 5000): Promise<void> {
    if (!this.running) return;
    const deadline = Date.now() + deadlineMs;
    while (this.queue.length > 0 && Date.now() < deadline) await sleep(20);
    this.running = false;
    this.abort.abort();
    await this.loop;
    let left = 0;
    for (let p = this.queue.shift(); p; p = this.queue.shift()) {
      left++;
      this.dropped.inc({ kind: p.kind, reason: 'shutdown' });
      p.onDone?.('dropped');
    }
    if (left > 0) this.log.warn({ batches: left }, 'forwarder stopped with undelivered batches');
    await this.dispatcher.close();
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (this.running) {
      await this.queue.waitForItem(this.abort.signal);
      const item = this.queue.peek();
      if (!item || !this.running) continue;
      try {
        await this.post(item);
        this.queue.shift();
        this.sent.inc({ kind: item.kind });
        attempt = 0;
        item.onDone?.('delivered');
      } catch (err) {
        if (err instanceof PermanentError) {
          this.queue.shift();
          this.dropped.inc({ kind: item.kind, reason: 'rejected' });
          this.warnOnce.warn(`rejected:${item.kind}`, { kind: item.kind, batch: item.id, error: err.message }, 'collector rejected a batch permanently; dropped');
          attempt = 0;
          item.onDone?.('rejected');
          continue;
        }
        const reason = err instanceof RetryableError ? 'status' : 'network';
        this.retries.inc({ kind: item.kind, reason });
        this.warnOnce.warn(`retry:${item.kind}:${reason}`, { kind: item.kind, batch: item.id, error: errorMessage(err) }, 'send to collector failed; will retry');
        // Try the next collector on the next attempt.
        this.collectorIndex = (this.collectorIndex + 1) % this.options.collectors.length;
        const delay = retryDelay(err, attempt++, this.options.backoff);
        try {
          await sleep(delay, undefined, { signal: this.abort.signal });
        } catch {
          // aborted: stop() is draining
        }
      }
    }
  }

  private async post(item: Pending): Promise<void> {
    const base = this.options.collectors[this.collectorIndex];
    const url = new URL(item.path, base);
    const span = this.tracing.tracer.startSpan(
      SPAN_FORWARD,
      { kind: SpanKind.CLIENT, attributes: { 'plumb.kind': item.kind, 'plumb.batch.id': item.id, 'http.request.method': 'POST', 'url.full': url.href } },
      item.parent,
    );
    try {
      await this.postTraced(item, base, url, span);
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  private async postTraced(item: Pending, base: string, url: URL, span: Span): Promise<void> {
    const started = performance.now();
    const headers: Record<string, string> = { 'content-type': item.contentType, 'x-plumb-batch-id': item.id };
    if (this.options.compress) headers['content-encoding'] = 'gzip';
    this.tracing.inject(trace.setSpan(item.parent, span), headers);
    const res = await request(url, {
      method: 'POST',
      body: item.body,
      headers,
      dispatcher: this.dispatcher,
      headersTimeout: this.options.timeoutMs,
      bodyTimeout: this.options.timeoutMs,
    });
    const text = await res.body.text();
    this.latency.observe({ kind: item.kind }, (performance.now() - started) / 1000);
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 200 && res.statusCode < 300) return;
    span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${res.statusCode}` });
    const detail = `${base}${item.path} answered ${res.statusCode}: ${text.slice(0, 300)}`;
    throw httpStatusError(res.statusCode, detail, res.headers['retry-after'], FORWARD_CODES);
  }
}
