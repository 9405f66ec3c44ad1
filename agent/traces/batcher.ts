/**
 * Groups accepted spans into batches for the forwarder, held as the bytes that will be sent: each
 * span is serialized once, when it is accepted (its size is needed then anyway), and a sealed
 * batch is one Buffer of the SpanBatch JSON. Objects of a parsed request live only as long as the
 * request; what waits for the collector is text, several times smaller than the object graph.
 * A batch is sealed when it reaches
 * maxBatchSpans or maxBatchBytes, or when its oldest span has waited flushInterval. Sealed
 * batches wait in a bounded queue the forwarder drains. When the queue is full, offer()
 * refuses the whole request (the receiver answers 429) rather than take part of it: a client
 * retrying a request must not produce duplicates of the half we kept.
 *
 * Batch ids are spanBatchId(agent, seq). seq starts at the wall clock in microseconds unless the
 * caller passes firstSeq, so ids stay unique across restarts without a state file (a restart
 * would need more than a million batches a second to catch up with its predecessor's numbers).
 */
import type { TapPoint } from '../../shared/tap.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { Type, type StaticDecode } from '@sinclair/typebox';
import type { Counter } from 'prom-client';
import { Section, Size, Duration } from '../../shared/config.ts';
import { errorMessage } from '../../shared/errors.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { BoundedQueue } from '../../shared/queue.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { spanBatchId, type SpanBatch, type ZipkinSpan } from '../../shared/zipkin.ts';

/** A sealed batch: the JSON of a SpanBatch, ready for the forwarder. */
export class SealedSpanBatch {
  readonly id: string;
  readonly agent: string;
  readonly seq: number;
  /** Spans in the batch. */
  readonly count: number;
  /** `{"id":…,"agent":…,"seq":…,"spans":[…]}`, exactly JSON.stringify of the SpanBatch. */
  readonly body: Buffer;

  constructor(id: string, agent: string, seq: number, spans: readonly string[]) {
    this.id = id;
    this.agent = agent;
    this.seq = seq;
    this.count = spans.length;
    this.body = Buffer.from(`{"id":${JSON.stringify(id)},"agent":${JSON.stringify(agent)},"seq":${seq},"spans":[${spans.join(',')}]}`);
  }

  /** The spans, decoded again (tests and diagnostics; the forwarder sends `body`). */
  get spans(): ZipkinSpan[] {
    return (JSON.parse(this.body.toString('utf8')) as SpanBatch).spans;
  }

  toJSON(): SpanBatch {
    return JSON.parse(this.body.toString('utf8')) as SpanBatch;
  }
}

export const SpanBatcherSchema = Section(
  {
    maxBatchSpans: Type.Integer({ minimum: 1, default: 1000, description: 'Spans per batch sent to the collector.' }),
    maxBatchBytes: Size('1mb', { description: 'Largest batch (JSON, before compression).' }),
    flushInterval: Duration('1s', { description: 'Longest a span waits for its batch to fill.' }),
    maxQueuedBatches: Type.Integer({ minimum: 1, default: 200, description: 'Sealed batches waiting for the forwarder; when full the receiver answers 429.' }),
    maxQueuedBytes: Size('16mb', { description: 'Bytes of sealed batches waiting for the forwarder (JSON, before compression): about 40 full batches, 0.8 s of spans at 50k/s; beyond it the receiver answers 429.' }),
  },
  { description: 'Batching of received spans for the forwarder.' },
);

export type SpanBatcherConfig = StaticDecode<typeof SpanBatcherSchema>;

export interface SpanBatcherContext {
  telemetry: Telemetry;
  log: Logger;
  /** This agent's id; batch ids are derived from it. */
  agent: string;
  /** First sequence number (default: wall clock in microseconds). */
  firstSeq?: number;
}

interface OpenBatch {
  /** Each span's JSON. */
  spans: string[];
  bytes: number;
  openedAt: number;
}

/** JSON framing per batch beyond the spans: {"id":…,"agent":…,"seq":…,"spans":[…]}. */
const BATCH_OVERHEAD_BYTES = 128;

export class SpanBatcher {
  private readonly config: SpanBatcherConfig;
  private readonly agent: string;
  private readonly log: Logger;
  private readonly logOnce: LogOnce;
  private readonly queue: BoundedQueue<SealedSpanBatch>;
  private open: OpenBatch = { spans: [], bytes: 0, openedAt: 0 };
  /** A batch sealed at stop() when the queue had no room; handed out after the queue empties. */
  private overflow: SealedSpanBatch[] = [];
  private seq: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly sealed: Counter;
  private readonly refused: Counter;

  /** The receiver's consumer: `startZipkinReceiver(config, ctx, batcher.onSpans)`. */
  readonly onSpans: (spans: ZipkinSpan[]) => boolean;
  /** The live tap of spans offered (shared/tap.ts); set by the agent. */
  tap: TapPoint | null = null;

  constructor(config: SpanBatcherConfig, ctx: SpanBatcherContext) {
    this.config = config;
    this.agent = ctx.agent;
    this.log = ctx.log.child({ component: 'span-batcher' });
    this.logOnce = new LogOnce(this.log);
    this.queue = new BoundedQueue<SealedSpanBatch>({ maxItems: config.maxQueuedBatches, maxBytes: config.maxQueuedBytes });
    this.seq = ctx.firstSeq ?? Date.now() * 1000;
    const t = ctx.telemetry;
    t.gaugeFrom('plumb_traces_batch_queue_depth', 'Span batches waiting for the forwarder.', () => this.queued);
    t.gaugeFrom('plumb_traces_batch_queue_bytes', 'Bytes of span batches waiting for the forwarder.', () => this.queue.bytes);
    this.sealed = t.counter('plumb_traces_batches_total', 'Span batches sealed for the forwarder.');
    this.refused = t.counter('plumb_traces_batcher_refused_spans_total', 'Spans refused because the span batch queue was full (the client was told 429).');
    this.onSpans = (spans) => this.offer(spans);
  }

  /** Starts the timer that seals batches older than flushInterval. */
  start(): void {
    if (this.timer) return;
    this.stopped = false;
    const tick = Math.max(10, Math.min(this.config.flushInterval, 1000) / 2);
    this.timer = setInterval(() => this.sealIfDue(), tick);
    this.timer.unref();
  }

  /** Seals the open batch and stops the timer; what is queued stays available to shift(). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopped = true;
    if (this.open.spans.length > 0) {
      const batch = this.seal();
      if (!this.queue.push(batch, batch.body.length)) this.overflow.push(batch);
      this.open = { spans: [], bytes: 0, openedAt: 0 };
    }
  }

  /**
   * Takes all the spans or none. False means the queue is full (or the batcher is stopped) and
   * nothing was kept: the receiver answers 429 and the client retries.
   */
  offer(spans: ZipkinSpan[]): boolean {
    if (spans.length === 0) return true;
    if (this.tap !== null && this.tap.active) this.tap.publish(spans);
    if (this.stopped) {
      this.refused.inc(spans.length);
      return false;
    }
    const texts = new Array<string>(spans.length);
    const sizes = new Array<number>(spans.length);
    for (let i = 0; i < spans.length; i++) {
      texts[i] = JSON.stringify(spans[i]);
      sizes[i] = Buffer.byteLength(texts[i]) + 1;
    }
    if (!this.fits(sizes)) {
      this.refused.inc(spans.length);
      return false;
    }
    const now = Date.now();
    for (let i = 0; i < spans.length; i++) {
      if (this.open.spans.length > 0 && (this.open.spans.length >= this.config.maxBatchSpans || this.open.bytes + sizes[i] > this.config.maxBatchBytes)) {
        this.pushOpen();
      }
      if (this.open.spans.length === 0) this.open.openedAt = now;
      this.open.spans.push(texts[i]);
      this.open.bytes += sizes[i];
    }
    if (this.open.spans.length >= this.config.maxBatchSpans) this.pushOpen();
    return true;
  }

  /** Seals the open batch now (tests, shutdown). False when the queue had no room. */
  flush(): boolean {
    if (this.open.spans.length === 0) return true;
    if (this.queue.length >= this.queue.maxItems || (this.queue.length > 0 && this.queue.bytes + this.open.bytes + BATCH_OVERHEAD_BYTES > this.queue.maxBytes)) return false;
    this.pushOpen();
    return true;
  }

  /** The oldest sealed batch, or undefined. */
  shift(): SealedSpanBatch | undefined {
    return this.queue.shift() ?? this.overflow.shift();
  }

  /** Puts back a batch the forwarder could not deliver, to be taken first (ignores the limits). */
  unshift(batch: SealedSpanBatch): void {
    this.queue.unshift(batch, batch.body.length);
  }

  /** Resolves when a sealed batch is available (or `signal` aborts). */
  async waitForBatch(signal?: AbortSignal): Promise<void> {
    if (this.overflow.length > 0) return;
    await this.queue.waitForItem(signal);
  }

  /** Takes every sealed batch at once (after stop(), to hand the rest to the forwarder). */
  drain(): SealedSpanBatch[] {
    const out: SealedSpanBatch[] = [];
    for (let b = this.shift(); b; b = this.shift()) out.push(b);
    return out;
  }

  /**
   * Hands sealed batches to `next`, oldest first, until `signal` aborts. When `next` refuses
   * (false, or throws) the batch stays first in line and is offered again after `retryMs`, so
   * the queue fills and the receiver answers 429: backpressure reaches the application instead
   * of batches being dropped downstream.
   */
  async forwardTo(next: (batch: SealedSpanBatch) => boolean | Promise<boolean>, signal: AbortSignal, retryMs = 200): Promise<void> {
    while (!signal.aborted) {
      await this.waitForBatch(signal);
      const batch = this.shift();
      if (!batch) continue;
      let accepted = false;
      try {
        accepted = await next(batch);
      } catch (err) {
        this.logOnce.warn('forward', { err: errorMessage(err), batch: batch.id }, 'span batch consumer failed; the batch will be offered again');
      }
      if (accepted) continue;
      this.unshift(batch);
      await sleep(retryMs, undefined, { signal }).catch(() => undefined);
    }
  }

  /** Sealed batches waiting. */
  get queued(): number {
    return this.queue.length + this.overflow.length;
  }

  /** Spans in the open, not yet sealed batch. */
  get pending(): number {
    return this.open.spans.length;
  }

  /** Would the queue take every batch this offer seals? */
  private fits(sizes: number[]): boolean {
    const { maxBatchSpans, maxBatchBytes } = this.config;
    let count = this.open.spans.length;
    let bytes = this.open.bytes;
    let newBatches = 0;
    let newBytes = 0;
    for (let i = 0; i < sizes.length; i++) {
      if (count > 0 && (count >= maxBatchSpans || bytes + sizes[i] > maxBatchBytes)) {
        newBatches++;
        newBytes += bytes + BATCH_OVERHEAD_BYTES;
        count = 0;
        bytes = 0;
      }
      count++;
      bytes += sizes[i];
    }
    if (count >= maxBatchSpans) {
      newBatches++;
      newBytes += bytes + BATCH_OVERHEAD_BYTES;
    }
    if (newBatches === 0) return true;
    if (this.queue.length + newBatches > this.queue.maxItems) return false;
    // the queue always admits one batch when empty, however large, so an oversized batch cannot wedge it
    return this.queue.length === 0 ? newBatches === 1 || this.queue.bytes + newBytes <= this.queue.maxBytes : this.queue.bytes + newBytes <= this.queue.maxBytes;
  }

  private sealIfDue(): void {
    if (this.open.spans.length === 0 || Date.now() - this.open.openedAt < this.config.flushInterval) return;
    // a full queue leaves the batch open; offers are refused until the forwarder catches up
    this.flush();
  }

  private pushOpen(): void {
    const batch = this.seal();
    this.open = { spans: [], bytes: 0, openedAt: 0 };
    if (!this.queue.push(batch, batch.body.length)) {
      // fits() checked first, so this is a logic error; keep the batch rather than lose it
      this.log.error({ id: batch.id }, 'span batch queue refused a batch it had room for');
      this.overflow.push(batch);
    }
  }

  private seal(): SealedSpanBatch {
    const seq = this.seq++;
    this.sealed.inc();
    return new SealedSpanBatch(spanBatchId(this.agent, seq), this.agent, seq, this.open.spans);
  }

}
