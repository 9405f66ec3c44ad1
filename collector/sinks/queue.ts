/**
 * What a sink runner needs from its disk queue: accepted batches (NDJSON) in order, read ahead
 * of what is acknowledged, acknowledged once delivered, and everything not acknowledged read
 * again after a restart. The disk implementation is in spool-queue.ts.
 */

/** One accepted batch as stored in the queue. */
export interface QueuedBatch {
  /** NDJSON, '\n'-terminated lines. */
  readonly data: Buffer;
  /** Events (lines) in `data`. */
  readonly events: number;
  /**
   * What the ingest already read of the batch's events, handed to the decoder so it need not
   * read the lines again; absent after a restart, a rewind, or past the queue's bound on them.
   */
  readonly decoded?: unknown;
}

export interface SinkQueue {
  /** Bytes and events stored and not yet acknowledged. */
  readonly bytes: number;
  readonly events: number;
  readonly maxBytes: number;
  /** Whether `bytes` more would fit now (false also while the queue is above its high-water mark). */
  hasRoom(bytes: number): boolean;
  /** Whether the queue holds more than its high-water mark (collector.logs.queue.highWater). */
  aboveHighWater?(): boolean;
  /**
   * Stores a batch durably; resolves once it would survive a crash. `release`: the queue is the
   * last holder of `data`, so once the batch is acknowledged its memory may be given back at
   * once (shared/release.ts); the caller must not read it after the append.
   */
  append(data: Buffer, events: number, decoded?: unknown, release?: boolean): Promise<void>;
  /**
   * The next batches not read yet, oldest first, up to about `maxBytes` (at least one when any is
   * waiting); empty when none is.
   */
  read(maxBytes: number): Promise<QueuedBatch[]>;
  /** Acknowledges every batch read so far up to and including `through`: they are gone for good. */
  ack(through: QueuedBatch): Promise<void>;
  /** Reading starts again after the last acknowledged batch. */
  rewind(): Promise<void>;
  /** Resolves when something is waiting to be read, or `signal` aborts. */
  waitForData(signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** The queue had no room for a batch (it filled up between the check and the append). */
export class QueueFullError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueFullError';
  }
}
