/**
 * One lane of the forwarder: a bounded memory queue in front of an optional disk spool, and a
 * sender loop that posts one batch at a time to its collector (a fixed one for a metrics lane,
 * any healthy one otherwise), retrying with backoff until the batch is acknowledged or refused
 * for good. Lanes run side by side, so a dead collector holds up only its own batches.
 *
 * With a spool the lane writes through: a batch counts as queued once its record is on disk,
 * and leaves the spool only when a collector acknowledged it (or refused it permanently).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context } from '@opentelemetry/api';
import type { Counter, Histogram } from 'prom-client';
import type { Logger, LogOnce } from '../../shared/log.ts';
import { BoundedQueue } from '../../shared/queue.ts';
import type { Spool, SpoolPosition } from '../../shared/spool.ts';
import { releaseBuffer } from '../../shared/release.ts';
import { PermanentError, RetryableError, errorMessage } from '../../shared/errors.ts';
import { httpStatusError, retryDelay, type BackoffOptions } from '../../shared/retry.ts';
import { SPAN_FORWARD, failSpan, type SelfTracing } from '../../shared/tracing.ts';
import type { Connection } from './connection.ts';
import type { CollectorHealth } from './health.ts';
import { decodeBatch, encodeBatch, type OutgoingBatch } from './record.ts';

const FORWARD_CODES = { retryable: 'PLUMB_ERR_FORWARD_RETRYABLE', permanent: 'PLUMB_ERR_FORWARD_PERMANENT' } as const;

/** How a batch left the lane: acknowledged, refused for good by a collector, or dropped here. */
export type BatchResult = 'delivered' | 'rejected' | 'dropped';
export type EnqueueOutcome = 'queued' | 'queue_full' | 'spool_full';
type DeliverOutcome = 'delivered' | 'rejected' | 'aborted';

export interface Callbacks {
  onDone: ((result: BatchResult) => void) | undefined;
  /** Self-tracing: the span (an agent flush) each POST of this batch is a child of. */
  parent: Context;
}

interface Pending extends Callbacks {
  batch: OutgoingBatch;
}

interface Taken extends Callbacks {
  batch: OutgoingBatch;
  position: SpoolPosition | null;
  /** The spool record the batch was read from (its body is a view of it), given back once acknowledged. */
  record?: Buffer;
}

export interface ForwardInstruments {
  sent: Counter<'kind'>;
  dropped: Counter<'kind' | 'reason'>;
  retries: Counter<'kind' | 'reason'>;
  latency: Histogram<'kind'>;
  /** Items of an acknowledged batch the collector refused one by one (the batch is not sent again). */
  itemsRejected: Counter<'kind' | 'reason'>;
}

/** What every lane shares: the connection (replaced when the forwarder restarts), health, limits. */
export interface LaneContext {
  connection: Connection;
  health: CollectorHealth;
  timeoutMs: number;
  backoff: BackoffOptions;
  instruments: ForwardInstruments;
  log: Logger;
  warnOnce: LogOnce;
  tracing: SelfTracing;
}

export interface LaneOptions {
  name: string;
  /** The collector this lane's batches are addressed to; null: any healthy collector. */
  target: string | null;
  maxQueueBatches: number;
  maxQueueBytes: number;
  /** Memory only when null. */
  spool: Spool | null;
  /** A lane left over from an earlier configuration: it sends what its spool holds, then ends. */
  retire?: boolean;
  /**
   * Memory-only lanes: batches posted at once (default 1). Above 1 a batch is taken off the queue
   * when its POST starts and put back in front if stopping abandons it; acknowledgements may then
   * come out of order.
   */
  concurrency?: number;
}

export class Lane {
  readonly name: string;
  readonly target: string | null;
  readonly retire: boolean;
  private readonly ctx: LaneContext;
  private readonly memory: BoundedQueue<Pending>;
  private readonly limits: { maxQueueBatches: number; maxQueueBytes: number };
  private spool: Spool | null;
  /** Spool mode: batches (and bytes) waiting for their spool write. */
  private writingBatches = 0;
  private writingBytes = 0;
  /** Spool mode: callbacks of batches queued by this process, by batch id. */
  private readonly callbacks = new Map<string, Callbacks>();
  private readonly concurrency: number;
  private running = false;
  private loop: Promise<void> | null = null;
  private abort = new AbortController();
  private readonly wakeUps = new Set<AbortController>();
  /** Taken off the memory queue by a sender loop and not yet acknowledged (concurrency > 1). */
  private takenBatches = 0;
  private takenBytes = 0;

  constructor(options: LaneOptions, ctx: LaneContext) {
    this.name = options.name;
    this.target = options.target;
    this.retire = options.retire ?? false;
    this.ctx = ctx;
    this.spool = options.spool;
    this.concurrency = Math.max(1, options.concurrency ?? 1);
    this.memory = new BoundedQueue({ maxItems: options.maxQueueBatches, maxBytes: options.maxQueueBytes });
    this.limits = { maxQueueBatches: options.maxQueueBatches, maxQueueBytes: options.maxQueueBytes };
  }

  /** Batches held in memory (spool mode: waiting for their spool write). */
  get memoryBatches(): number {
    return this.memory.length + this.writingBatches + this.takenBatches;
  }

  get memoryBytes(): number {
    return this.memory.bytes + this.writingBytes + this.takenBytes;
  }

  /** Batches not yet acknowledged: in memory and in the spool. */
  get batches(): number {
    return this.memoryBatches + (this.spool?.records ?? 0);
  }

  get bytes(): number {
    return this.memoryBytes + (this.spool?.bytes ?? 0);
  }

  get spooled(): number {
    return this.spool?.records ?? 0;
  }

  /** What bounds this lane: its spool's bytes when it has one, else its memory queue. */
  get bound(): { depth: number; bound: number; unit: 'batches' | 'bytes' } {
    if (this.spool !== null) return { depth: this.bytes, bound: this.spool.maxBytes, unit: 'bytes' };
    const batches = this.memory.length / this.limits.maxQueueBatches;
    const bytes = this.limits.maxQueueBytes > 0 ? this.memory.bytes / this.limits.maxQueueBytes : 0;
    return bytes > batches
      ? { depth: this.memory.bytes, bound: this.limits.maxQueueBytes, unit: 'bytes' }
      : { depth: this.memory.length, bound: this.limits.maxQueueBatches, unit: 'batches' };
  }

  get hasSpool(): boolean {
    return this.spool !== null;
  }

  /**
   * Nothing more can happen without a collector coming back: everything is on disk and the
   * collectors this lane may use are down.
   */
  get stuck(): boolean {
    if (this.spool === null || this.memoryBatches > 0) return false;
    const h = this.ctx.health;
    return this.target !== null ? !h.isUp(this.target) : h.collectors.every((c) => !h.isUp(c));
  }

  /** Queues a batch; a refusal is counted as a drop unless `refuse` (the caller keeps the batch). */
  async enqueue(batch: OutgoingBatch, callbacks: Callbacks, refuse: boolean): Promise<EnqueueOutcome> {
    const bytes = batch.body.length;
    const spool = this.spool;
    if (spool === null) {
      if (this.memory.push({ batch, ...callbacks }, bytes)) return 'queued';
      return this.refused(batch, callbacks, refuse, 'queue_full');
    }
    if (this.writingBatches >= this.memory.maxItems || (this.writingBatches > 0 && this.writingBytes + bytes > this.memory.maxBytes)) {
      return this.refused(batch, callbacks, refuse, 'queue_full');
    }
    this.writingBatches++;
    this.writingBytes += bytes;
    if (callbacks.onDone !== undefined || callbacks.parent !== ROOT_CONTEXT) this.callbacks.set(batch.id, callbacks);
    let ok = false;
    const record = encodeBatch(batch);
    try {
      ok = await spool.append([record]);
    } catch (err) {
      this.ctx.log.error({ lane: this.name, err: errorMessage(err) }, 'writing a batch to the spool failed');
    } finally {
      this.writingBatches--;
      this.writingBytes -= bytes;
      // on disk now (or refused): the sender reads it back from there
      if (!spool.keeps(record)) releaseBuffer(record);
    }
    if (ok) return 'queued';
    this.callbacks.delete(batch.id);
    return this.refused(batch, callbacks, refuse, 'spool_full');
  }

  private refused(batch: OutgoingBatch, callbacks: Callbacks, refuse: boolean, reason: 'queue_full' | 'spool_full'): EnqueueOutcome {
    if (refuse) return reason;
    this.ctx.instruments.dropped.inc({ kind: batch.kind, reason });
    this.ctx.warnOnce.warn(
      `${reason}:${this.name}`,
      { lane: this.name, kind: batch.kind, queued: this.memoryBatches, spooled: this.spooled },
      reason === 'queue_full' ? 'forward queue is full; dropping the newest batch' : 'forward spool is full; dropping the newest batch',
    );
    callbacks.onDone?.('dropped');
    return reason;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.abort = new AbortController();
    this.loop = this.spool === null && this.concurrency > 1 ? Promise.all(Array.from({ length: this.concurrency }, () => this.runTaking())).then(() => undefined) : this.run();
  }

  /** Resolves when the sender loop has ended (a retiring lane ends by itself once empty). */
  async finished(): Promise<void> {
    await this.loop;
  }

  /** Ends the sender loop (a request in flight is abandoned: it stays queued). */
  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await this.loop;
    this.loop = null;
  }

  /** After stop(): takes what is left in memory (spool mode: nothing, it is all on disk). */
  takeMemory(): Pending[] {
    const left: Pending[] = [];
    for (let p = this.memory.shift(); p; p = this.memory.shift()) left.push(p);
    this.callbacks.clear();
    return left;
  }

  /** After stop(): hands back the spool for closing. */
  detachSpool(): Spool | null {
    const s = this.spool;
    this.spool = null;
    return s;
  }

  /** Cuts a retry wait short (the lane's collector came back). */
  wake(): void {
    for (const w of this.wakeUps) w.abort();
  }

  /** Whether the loop ended because a retiring lane has nothing left. */
  get retired(): boolean {
    return this.retire && this.spool !== null && this.spool.records === 0 && this.writingBatches === 0;
  }

  private async run(): Promise<void> {
    while (this.running && !this.retired) {
      const next = await this.take();
      if (next === null) continue;
      const outcome = await this.deliver(next);
      if (outcome === 'aborted') {
        // Stopping: the batch is still at the head of the queue (or unacknowledged in the spool).
        this.spool?.rewind();
        break;
      }
      await this.complete(next, outcome);
    }
  }

  /**
   * One of `concurrency` sender loops of a memory-only lane: each takes the next batch off the
   * queue, so several POSTs are under way at once (a collector's sync of one batch to disk
   * overlaps the next one's parsing). An abandoned batch goes back to the front of the queue.
   */
  private async runTaking(): Promise<void> {
    while (this.running) {
      await this.memory.waitForItem(this.abort.signal);
      if (!this.running) break;
      const p = this.memory.shift();
      if (p === undefined) continue;
      const item: Taken = { ...p, position: null };
      const bytes = p.batch.body.length;
      this.takenBatches++;
      this.takenBytes += bytes;
      const outcome = await this.deliver(item);
      this.takenBatches--;
      this.takenBytes -= bytes;
      if (outcome === 'aborted') {
        this.memory.unshift(p, bytes);
        break;
      }
      this.finish(item, outcome);
    }
  }

  private async take(): Promise<Taken | null> {
    const spool = this.spool;
    if (spool === null) {
      await this.memory.waitForItem(this.abort.signal);
      const p = this.memory.peek();
      return p === undefined || !this.running ? null : { ...p, position: null };
    }
    await spool.waitForData(this.abort.signal);
    if (!this.running) return null;
    const [record] = await spool.read({ maxRecords: 1, maxBytes: Infinity });
    if (record === undefined) return null;
    const batch = decodeBatch(record.data);
    if ('error' in batch) {
      // Not a batch this agent can send (written by another version, or damaged past the CRC).
      this.ctx.instruments.dropped.inc({ kind: 'unknown', reason: 'invalid' });
      this.ctx.warnOnce.warn(`invalid:${this.name}`, { lane: this.name, error: batch.error }, 'skipped a spooled record that is not a forwardable batch');
      await this.ack(record.position);
      return null;
    }
    const cb = this.callbacks.get(batch.id);
    return { batch, onDone: cb?.onDone, parent: cb?.parent ?? ROOT_CONTEXT, position: record.position, record: record.data };
  }

  private async deliver(item: Taken): Promise<DeliverOutcome> {
    const { health, instruments, backoff, warnOnce } = this.ctx;
    const kind = item.batch.kind;
    for (let attempt = 0; ; ) {
      if (!this.running) return 'aborted';
      const collector = this.target ?? health.pick();
      try {
        await this.post(collector, item);
        return 'delivered';
      } catch (err) {
        if (this.abort.signal.aborted) return 'aborted';
        if (err instanceof PermanentError) {
          warnOnce.warn(`rejected:${kind}`, { kind, batch: item.batch.id, collector, error: err.message }, 'collector rejected a batch permanently; dropped');
          return 'rejected';
        }
        const status = err instanceof RetryableError ? err.status : undefined;
        const reason = status !== undefined ? 'status' : 'network';
        // A collector asking to slow down (429) or timing a request out (408) is still up.
        if (status !== 429 && status !== 408) health.markDown(collector, status !== undefined ? `HTTP ${status}` : 'network');
        instruments.retries.inc({ kind, reason });
        warnOnce.warn(`retry:${this.name}:${reason}`, { lane: this.name, kind, batch: item.batch.id, collector, error: errorMessage(err) }, 'send to collector failed; will retry');
        await this.pause(retryDelay(err, attempt++, backoff));
      }
    }
  }

  private async pause(ms: number): Promise<void> {
    const wake = new AbortController();
    this.wakeUps.add(wake);
    try {
      await sleep(ms, undefined, { signal: AbortSignal.any([this.abort.signal, wake.signal]) });
    } catch {
      // woken early: stopping, or the collector came back
    } finally {
      this.wakeUps.delete(wake);
    }
  }

  /** Counts how a batch taken off the memory queue left the lane, and tells its sender. */
  private finish(item: Taken, outcome: 'delivered' | 'rejected'): void {
    const kind = item.batch.kind;
    if (outcome === 'delivered') this.ctx.instruments.sent.inc({ kind });
    else this.ctx.instruments.dropped.inc({ kind, reason: 'rejected' });
    item.onDone?.(outcome);
  }

  private async complete(item: Taken, outcome: 'delivered' | 'rejected'): Promise<void> {
    const kind = item.batch.kind;
    if (outcome === 'delivered') this.ctx.instruments.sent.inc({ kind });
    else this.ctx.instruments.dropped.inc({ kind, reason: 'rejected' });
    if (item.position === null) this.memory.shift();
    else {
      this.callbacks.delete(item.batch.id);
      await this.ack(item.position);
      // a record read back from disk is this lane's alone: its memory goes now, not at a major GC
      if (item.record !== undefined && this.spool !== null && !this.spool.keeps(item.record)) releaseBuffer(item.record);
    }
    item.onDone?.(outcome);
  }

  private async ack(position: SpoolPosition): Promise<void> {
    try {
      await this.spool?.ack(position);
    } catch (err) {
      // The record is sent again after a restart; the collector recognises the replay by its id.
      this.ctx.warnOnce.warn(`ack:${this.name}`, { lane: this.name, error: errorMessage(err) }, 'acknowledging a spooled batch failed');
    }
  }

  /** A collector that refused some items of a batch it applied says so in `reasons` (reason → count). */
  private countRejectedItems(kind: string, text: string): void {
    if (!text.includes('"reasons"')) return;
    let reasons: unknown;
    try {
      reasons = (JSON.parse(text) as { reasons?: unknown }).reasons;
    } catch {
      return;
    }
    if (typeof reasons !== 'object' || reasons === null) return;
    let total = 0;
    for (const [reason, n] of Object.entries(reasons)) {
      if (typeof n !== 'number' || !(n > 0) || !/^[a-z_]{1,40}$/.test(reason)) continue;
      this.ctx.instruments.itemsRejected.inc({ kind, reason }, n);
      total += n;
    }
    if (total > 0) this.ctx.warnOnce.warn(`items:${kind}`, { lane: this.name, kind, items: total, response: text.slice(0, 300) }, 'the collector refused some items of a batch and applied the rest (counted in plumb_forward_items_rejected_total)');
  }

  private async post(collector: string, item: Taken): Promise<void> {
    const { batch } = item;
    const url = new URL(batch.path, collector);
    const tracer = this.ctx.tracing.tracer;
    const span = tracer.startSpan(
      SPAN_FORWARD,
      { kind: SpanKind.CLIENT, attributes: { 'plumb.kind': batch.kind, 'plumb.batch.id': batch.id, 'http.request.method': 'POST', 'url.full': url.href } },
      item.parent,
    );
    const started = performance.now();
    try {
      const headers: Record<string, string> = { 'content-type': batch.contentType, 'x-plumb-batch-id': batch.id };
      if (batch.gzip) headers['content-encoding'] = 'gzip';
      this.ctx.tracing.inject(trace.setSpan(item.parent, span), headers);
      const res = await this.ctx.connection.post(url, batch.body, headers, this.ctx.timeoutMs, this.abort.signal);
      this.ctx.instruments.latency.observe({ kind: batch.kind }, (performance.now() - started) / 1000);
      span.setAttribute('http.response.status_code', res.status);
      if (res.status >= 200 && res.status < 300) {
        this.countRejectedItems(batch.kind, res.text);
        return;
      }
      span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${res.status}` });
      throw httpStatusError(res.status, `${collector}${batch.path} answered ${res.status}: ${res.text.slice(0, 300)}`, res.retryAfter, FORWARD_CODES);
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  }
}
