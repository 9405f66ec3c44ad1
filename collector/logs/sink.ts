/**
 * The contract between a log sink and the runner that drains its queue. A sink holds only its
 * protocol: the runner gathers events from the sink's disk queue into batches, retries with
 * backoff, writes refused events to the dead-letter file, counts, traces and acknowledges the
 * queue once a batch is settled.
 */
import type { Span } from '@opentelemetry/api';
import type { BackoffOptions } from '../../shared/retry.ts';
import type { LogEvent } from './event.ts';
import type { RetryReason } from './metrics.ts';

/** The sink's name in metrics, status and its queue directory; `elasticsearch_spans` is the span index. */
export type SinkName = 'file' | 'elasticsearch' | 's3' | 'elasticsearch_spans';

/** An event the sink refused for good, and why (written to the dead-letter file). */
export interface RejectedEvent {
  event: LogEvent;
  /** The status the peer answered for this event, if any. */
  status?: number;
  /** "mapper_parsing_exception: failed to parse field [x]…" — what an operator needs to fix it. */
  reason: string;
  /** Where it was going (an index, an object key). */
  target?: string;
}

/**
 * What became of a batch. Every event is in exactly one of: delivered, duplicate (the sink
 * already held it: a replay), rejected, retry (to be written again after a backoff).
 */
export interface WriteResult {
  delivered: number;
  duplicate: number;
  rejected: RejectedEvent[];
  retry: LogEvent[];
  /** Why the `retry` events must go again. */
  retryReason?: RetryReason;
  /** What went wrong with the `retry` events (the first item's error), for the status API. */
  retryMessage?: string;
  /** The peer asked for this pause before the retry. */
  retryAfterMs?: number;
}

export interface LogSink {
  readonly name: SinkName;
  /** How much the runner gathers for one write: whichever limit is reached first. */
  readonly batch: { maxBytes: number; maxWaitMs: number };
  readonly backoff: BackoffOptions;
  /**
   * Checks the destination and prepares it (a health check, an index template). Throws an
   * error that says what is wrong (unreachable, credentials); the runner logs it, keeps the
   * events queued and tries again with backoff.
   */
  open(signal: AbortSignal): Promise<void>;
  /**
   * Writes the events. Throws a RetryableError (or any non-PermanentError) when nothing can be
   * said about the events (the request failed); a PermanentError when the whole batch is
   * refused for good (it goes to the dead-letter file). Resolves only once what it calls
   * delivered is durable at the destination.
   */
  write(events: readonly LogEvent[], signal: AbortSignal, span: Span): Promise<WriteResult>;
  /** Releases connections and files. The runner does not call write after this. */
  close(): Promise<void>;
  /** Text that must never appear in an error shown to users (passwords, keys). */
  readonly secrets?: readonly string[];
}

export const DELIVERED_ALL = (n: number): WriteResult => ({ delivered: n, duplicate: 0, rejected: [], retry: [] });
