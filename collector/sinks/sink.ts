/**
 * The contract between a sink and the runner that drains its queue (runner.ts). Every store is a
 * sink: log files, Elasticsearch, S3, Prometheus remote_write, Graphite. A sink holds only its
 * protocol — a push function and its batch and backoff settings; the runner gathers items from
 * the sink's disk queue into batches, retries with backoff, writes refused items to the
 * dead-letter file, counts, traces and acknowledges the queue once a batch is settled.
 */
import type { Span } from '@opentelemetry/api';
import type { BackoffOptions } from '../../shared/retry.ts';
import type { RetryReason } from './metrics.ts';

/** One queued item as the runner hands it to a sink: at least its NDJSON line (what a dead letter keeps). */
export interface SinkItem {
  /** The item's JSON, without the newline. */
  readonly line: Buffer;
}

/** Splits the NDJSON of one queued batch into items, appending to `out`. */
export type ItemDecoder<T extends SinkItem> = (ndjson: Buffer, out: T[], decoded?: unknown) => void;

/** An item the sink refused for good, and why (written to the dead-letter file). */
export interface RejectedItem<T extends SinkItem = SinkItem> {
  event: T;
  /** The status the peer answered for this item, if any. */
  status?: number;
  /** "mapper_parsing_exception: failed to parse field [x]…" — what an operator needs to fix it. */
  reason: string;
  /** Where it was going (an index, an object key, a URL). */
  target?: string;
}

/**
 * What became of a batch. Every item is in exactly one of: delivered, duplicate (the sink
 * already held it: a replay), rejected, retry (to be written again after a backoff).
 */
export interface SinkWriteResult<T extends SinkItem = SinkItem> {
  delivered: number;
  duplicate: number;
  rejected: RejectedItem<T>[];
  retry: T[];
  /** Why the `retry` items must go again. */
  retryReason?: RetryReason;
  /** What went wrong with the `retry` items (the first one's error), for the status API. */
  retryMessage?: string;
  /** The peer asked for this pause before the retry. */
  retryAfterMs?: number;
}

export interface Sink<T extends SinkItem = SinkItem> {
  /** The sink's name in metrics (`sink` label), status and its queue directory. */
  readonly name: string;
  /** How much the runner gathers for one write: whichever limit is reached first. */
  readonly batch: { maxBytes: number; maxWaitMs: number };
  readonly backoff: BackoffOptions;
  /**
   * Checks the destination and prepares it (a health check, an index template, a connection).
   * Throws an error that says what is wrong (unreachable, credentials); the runner logs it, keeps
   * the items queued and tries again with backoff.
   */
  open(signal: AbortSignal): Promise<void>;
  /**
   * Writes the items. Throws a RetryableError (or any non-PermanentError) when nothing can be
   * said about the items (the request failed); a PermanentError when the whole batch is refused
   * for good (it goes to the dead-letter file). Resolves only once what it calls delivered has
   * been accepted by the destination.
   */
  write(items: readonly T[], signal: AbortSignal, span: Span): Promise<SinkWriteResult<T>>;
  /** Releases connections and files. The runner does not call write after this. */
  close(): Promise<void>;
  /** Text that must never appear in an error shown to users (passwords, keys, tokens). */
  readonly secrets?: readonly string[];
}

export const DELIVERED_ALL = <T extends SinkItem>(n: number): SinkWriteResult<T> => ({ delivered: n, duplicate: 0, rejected: [], retry: [] });
