/**
 * The one sink runner every store goes through (log files, Elasticsearch, S3, remote_write,
 * Graphite, …). It drains one sink's disk queue into the sink: gathers queued batches into a
 * write (up to the sink's batch bytes, or what arrived within its batch wait), decodes them into
 * the sink's items, writes, retries with backoff what must go again (honouring the peer's
 * Retry-After), sends what the sink refused for good to the dead-letter file, and only then
 * acknowledges the queue. A sink that is down keeps its items queued; the other sinks' runners
 * do not wait for it.
 *
 * stop(deadline) stops waiting for more, writes what is queued until the deadline, then aborts
 * the write in flight: whatever is not acknowledged stays in the queue for the next start.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_CONTEXT, SpanKind, type Span } from '@opentelemetry/api';
import { PermanentError, errorMessage } from '../../shared/errors.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { retryDelay, backoffDelay } from '../../shared/retry.ts';
import { SPAN_SINK_WRITE, TRACING_OFF, failSpan, type SelfTracing } from '../../shared/tracing.ts';
import type { DeadLetterFile } from './dead-letter.ts';
import { retryReason, type RetryReason, type SinkMetrics } from './metrics.ts';
import type { QueuedBatch, SinkQueue } from './queue.ts';
import type { ItemDecoder, RejectedItem, Sink, SinkItem, SinkWriteResult } from './sink.ts';

/** Batches up to this size are read ahead while the previous one is written. */
const READ_AHEAD_MAX_BYTES = 32 * 1024 * 1024;

export type SinkState = 'starting' | 'ready' | 'retrying' | 'unavailable' | 'stopped';

/** One sink as the status API shows it. Never holds secrets. */
export interface SinkStatus {
  name: string;
  state: SinkState;
  queue: { events: number; bytes: number; maxBytes: number };
  delivered: number;
  duplicate: number;
  deadLettered: number;
  retries: number;
  refused: number;
  lastError: { message: string; at: string } | null;
  deadLetterFile: string;
}

export interface SinkRunnerOptions<T extends SinkItem> {
  sink: Sink<T>;
  /** Turns a queued batch's NDJSON into the sink's items. */
  decode: ItemDecoder<T>;
  queue: SinkQueue;
  deadLetter: DeadLetterFile;
  metrics: SinkMetrics;
  log: Logger;
  tracing?: SelfTracing;
}

interface Gathered<T> {
  events: T[];
  last: QueuedBatch;
}

export class SinkRunner<T extends SinkItem = SinkItem> {
  readonly sink: Sink<T>;
  private readonly decode: ItemDecoder<T>;
  readonly queue: SinkQueue;
  private readonly deadLetter: DeadLetterFile;
  private readonly metrics: SinkMetrics;
  private readonly log: Logger;
  private readonly logOnce: LogOnce;
  private readonly tracing: SelfTracing;
  private readonly secrets: readonly string[];
  private loop: Promise<void> | undefined;
  /** Cuts short a wait for data or for a batch to fill, so the loop sees `stopping`. */
  private wake = new AbortController();
  /** Aborts the write in flight and every wait: the stop deadline passed. */
  private abort = new AbortController();
  private stopping = false;
  private opened = false;
  private state: SinkState = 'stopped';
  private lastError: { message: string; at: string } | null = null;
  private readonly counts = { delivered: 0, duplicate: 0, deadLettered: 0, retries: 0, refused: 0 };

  constructor(options: SinkRunnerOptions<T>) {
    this.sink = options.sink;
    this.decode = options.decode;
    this.queue = options.queue;
    this.deadLetter = options.deadLetter;
    this.metrics = options.metrics;
    this.log = options.log.child({ sink: options.sink.name });
    this.logOnce = new LogOnce(this.log);
    this.tracing = options.tracing ?? TRACING_OFF;
    this.secrets = (options.sink.secrets ?? []).filter((s) => s.length >= 4);
    this.metrics.init(this.sink.name);
    this.updateDepth();
  }

  get name(): string {
    return this.sink.name;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.wake = new AbortController();
    this.abort = new AbortController();
    this.state = 'starting';
    this.loop = this.run().catch((err: unknown) => {
      if (!this.abort.signal.aborted) this.log.error({ err: this.redact(errorMessage(err)) }, 'sink runner stopped on an unexpected error; items stay queued');
    });
  }

  /** Writes what is queued until `deadline` (Unix ms), then leaves the rest on disk. */
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
      this.state = 'stopped';
      await this.sink.close().catch((err: unknown) => this.log.warn({ err: this.redact(errorMessage(err)) }, 'sink did not close cleanly'));
      await this.deadLetter.close().catch(() => undefined);
      this.opened = false;
      this.updateDepth();
      if (this.queue.events > 0) this.log.info({ events: this.queue.events, bytes: this.queue.bytes }, 'sink stopped with items queued; they are written after the next start');
    }
  }

  /** Counts a batch refused because this queue was full. */
  refused(events: number): void {
    this.counts.refused += events;
    this.metrics.refused.inc({ sink: this.sink.name }, events);
  }

  status(): SinkStatus {
    return {
      name: this.sink.name,
      state: this.state,
      queue: { events: this.queue.events, bytes: this.queue.bytes, maxBytes: this.queue.maxBytes },
      ...this.counts,
      lastError: this.lastError,
      deadLetterFile: this.deadLetter.file,
    };
  }

  updateDepth(): void {
    this.metrics.queueEvents.set({ sink: this.sink.name }, this.queue.events);
    this.metrics.queueBytes.set({ sink: this.sink.name }, this.queue.bytes);
  }

  private async run(): Promise<void> {
    await this.queue.rewind();
    if (!(await this.openSink())) return;
    // While a batch is being written the next one is read and split, when batches are small
    // enough to hold two (not S3's rollover-sized ones).
    const readAhead = this.sink.batch.maxBytes <= READ_AHEAD_MAX_BYTES;
    let next: Promise<Gathered<T> | undefined> | undefined;
    try {
      for (let failures = 0; !this.abort.signal.aborted; ) {
        try {
          const batch = await (next ?? this.gather());
          next = undefined;
          if (batch === undefined) return;
          if (readAhead) next = this.gather();
          // false: aborted at the deadline; nothing after the last acknowledgement is lost, only read again
          if (!(await this.deliver(batch.events))) return;
          await this.queue.ack(batch.last);
          this.updateDepth();
          failures = 0;
        } catch (err) {
          // the queue or the dead-letter file failed (a full disk): read again from the last acknowledgement
          if (next !== undefined) await next.catch(() => undefined);
          next = undefined;
          if (this.abort.signal.aborted) return;
          this.noteError(err);
          const delay = backoffDelay(failures++, this.sink.backoff);
          this.logOnce.warn('queue', { err: errorMessage(err), retryInMs: delay }, 'sink runner could not read, acknowledge or dead-letter; retrying from the last acknowledged batch');
          if (!(await this.pause(delay, false))) return;
          await this.queue.rewind().catch(() => undefined);
        }
      }
    } finally {
      // a read under way finishes before the queue may close
      if (next !== undefined) await next.catch(() => undefined);
    }
  }

  /** Opens the sink, retrying until it answers; false when stopped first. */
  private async openSink(): Promise<boolean> {
    for (let attempt = 0; !this.opened; attempt++) {
      if (this.stopping || this.abort.signal.aborted) return false;
      try {
        await this.sink.open(this.abort.signal);
        this.opened = true;
        this.state = 'ready';
        if (attempt > 0) this.log.info({ attempts: attempt + 1 }, 'sink reachable again; writing the queued items');
      } catch (err) {
        this.noteError(err);
        this.state = 'unavailable';
        const delay = backoffDelay(attempt, this.sink.backoff);
        const message = this.redact(errorMessage(err));
        if (attempt === 0) this.log.error({ err: message, retryInMs: delay }, 'sink is not usable; items stay queued on disk until it is');
        else this.logOnce.warn('open', { err: message, attempt }, 'sink still not usable');
        if (!(await this.pause(delay, true))) return false;
      }
    }
    return true;
  }

  /**
   * Reads queued batches until the sink's batch bytes are reached, or the batch wait has passed
   * since the first one, or a stop asks for what there is. Undefined: stopping and nothing queued.
   */
  private async gather(): Promise<Gathered<T> | undefined> {
    const { maxBytes, maxWaitMs } = this.sink.batch;
    const events: T[] = [];
    let last: QueuedBatch | undefined;
    let bytes = 0;
    let firstAt = 0;
    while (!this.abort.signal.aborted) {
      const batches = await this.queue.read(Math.max(1, maxBytes - bytes));
      if (batches.length > 0) {
        if (last === undefined) firstAt = Date.now();
        for (const b of batches) {
          this.decode(b.data, events, b.decoded);
          bytes += b.data.length;
        }
        last = batches[batches.length - 1];
        if (bytes >= maxBytes) break;
        continue;
      }
      if (last !== undefined && (this.stopping || Date.now() - firstAt >= maxWaitMs)) break;
      if (last === undefined && this.stopping) return undefined;
      const wait = last === undefined ? undefined : Math.max(1, maxWaitMs - (Date.now() - firstAt));
      await this.waitForData(wait);
    }
    if (last === undefined || this.abort.signal.aborted) return undefined;
    return { events, last };
  }

  private async waitForData(timeoutMs: number | undefined): Promise<void> {
    const signals = [this.wake.signal, this.abort.signal];
    if (timeoutMs !== undefined) signals.push(AbortSignal.timeout(timeoutMs));
    await this.queue.waitForData(AbortSignal.any(signals)).catch(() => undefined);
  }

  /**
   * Writes until every event is delivered, a duplicate, or dead-lettered. False when the stop
   * deadline aborted it first.
   */
  private async deliver(events: T[]): Promise<boolean> {
    if (events.length === 0) return true;
    const span = this.startSpan(events.length);
    let pending: readonly T[] = events;
    try {
      for (let attempt = 0; pending.length > 0; ) {
        if (this.abort.signal.aborted) return false;
        let result: SinkWriteResult<T>;
        const stopTimer = this.metrics.writeSeconds.startTimer({ sink: this.sink.name });
        try {
          result = await this.sink.write(pending, this.abort.signal, span);
        } catch (err) {
          stopTimer();
          if (this.abort.signal.aborted) return false;
          if (err instanceof PermanentError) {
            failSpan(span, err);
            this.noteError(err);
            await this.reject(pending.map((event) => ({ event, status: err.status, reason: errorMessage(err) })));
            return true;
          }
          this.noteError(err);
          const delay = retryDelay(err, attempt, this.sink.backoff);
          if (!(await this.retryAfter(retryReason(err), attempt++, delay, span))) return false;
          continue;
        }
        stopTimer();
        this.count(result);
        await this.reject(result.rejected);
        pending = result.retry;
        if (pending.length > 0) {
          const reason = result.retryReason ?? 'other';
          this.noteError(new Error(`${pending.length} event(s) to send again (${reason})${result.retryMessage ? `: ${result.retryMessage}` : ''}`));
          const delay = Math.max(backoffDelay(attempt, this.sink.backoff), result.retryAfterMs ?? 0);
          if (!(await this.retryAfter(reason, attempt++, delay, span))) return false;
        } else {
          attempt = 0;
          this.state = 'ready';
        }
      }
      return true;
    } finally {
      span.end();
    }
  }

  private async retryAfter(reason: RetryReason, attempt: number, delay: number, span: Span): Promise<boolean> {
    this.counts.retries++;
    this.metrics.retry(this.sink.name, reason);
    this.state = 'retrying';
    span.addEvent('retry', { attempt, delayMs: delay, reason });
    this.logOnce.warn(`retry:${reason}`, { reason, attempt, delayMs: delay, err: this.lastError?.message }, 'sink write will be retried');
    return this.pause(delay, false);
  }

  /** Sleeps; false when the deadline (or, if `wakeable`, a stop) cut it short. */
  private async pause(ms: number, wakeable: boolean): Promise<boolean> {
    const signal = wakeable ? AbortSignal.any([this.abort.signal, this.wake.signal]) : this.abort.signal;
    try {
      await sleep(ms, undefined, { signal });
      return true;
    } catch {
      return false;
    }
  }

  private async reject(rejected: readonly RejectedItem<T>[]): Promise<void> {
    if (rejected.length === 0) return;
    const redacted = rejected.map((r) => ({ ...r, reason: this.redact(r.reason) }));
    await this.deadLetter.write(redacted);
    this.counts.deadLettered += rejected.length;
    this.metrics.events.inc({ sink: this.sink.name, outcome: 'dead_letter' }, rejected.length);
    this.logOnce.warn('dead-letter', { events: rejected.length, reason: redacted[0].reason, file: this.deadLetter.file }, 'sink refused items permanently; they are in the dead-letter file');
  }

  private count(result: SinkWriteResult<T>): void {
    const sink = this.sink.name;
    if (result.delivered > 0) {
      this.counts.delivered += result.delivered;
      this.metrics.events.inc({ sink, outcome: 'delivered' }, result.delivered);
    }
    if (result.duplicate > 0) {
      this.counts.duplicate += result.duplicate;
      this.metrics.events.inc({ sink, outcome: 'duplicate' }, result.duplicate);
    }
  }

  private noteError(err: unknown): void {
    this.lastError = { message: this.redact(errorMessage(err)), at: new Date().toISOString() };
  }

  /** Removes secrets and URL credentials from text shown to users. */
  private redact(text: string): string {
    let out = text.replace(/\/\/[^/\s:@]+:[^/\s@]+@/g, '//***:***@');
    for (const s of this.secrets) out = out.split(s).join('***');
    return out;
  }

  private startSpan(events: number): Span {
    if (!this.tracing.enabled) return this.tracing.tracer.startSpan(SPAN_SINK_WRITE, {}, ROOT_CONTEXT);
    return this.tracing.tracer.startSpan(SPAN_SINK_WRITE, { kind: SpanKind.CLIENT, attributes: { 'plumb.sink': this.sink.name, 'plumb.events': events } }, ROOT_CONTEXT);
  }
}
