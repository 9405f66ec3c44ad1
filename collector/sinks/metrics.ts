/**
 * The sinks' own metrics (every store: logs, remote_write, Graphite), declared once. Labels are low-cardinality: the sink name, an
 * outcome, a retry reason code — never error text.
 *
 * | metric | labels | meaning |
 * |---|---|---|
 * | plumb_sink_events_total | sink, outcome = delivered, duplicate, dead_letter | events by fate |
 * | plumb_sink_queue_events | sink | events waiting in the sink's disk queue |
 * | plumb_sink_queue_bytes | sink | bytes waiting in the sink's disk queue |
 * | plumb_sink_queue_refused_total | sink | events refused because the queue was full (answered 429) |
 * | plumb_sink_retries_total | sink, reason | retried writes (see RetryReason) |
 * | plumb_sink_dead_letter_total | sink | events written to the dead-letter file |
 * | plumb_sink_dead_letter_discarded_total | sink | dead-letter events removed when the older file was rotated away |
 * | plumb_sink_write_seconds | sink | duration of one write to the sink (histogram) |
 */
import type { Counter, Gauge, Histogram } from 'prom-client';
import { PermanentError, RetryableError } from '../../shared/errors.ts';
import type { Telemetry } from '../../shared/telemetry.ts';

export type SinkOutcome = 'delivered' | 'duplicate' | 'dead_letter';

/**
 * Why a write is retried: the whole request failed because the peer was unreachable or timed
 * out (unavailable), asked us to slow down (throttled), failed itself (server_error), refused our
 * credentials (auth); or the request went through but some items must be sent again
 * (item_throttled, item_server_error).
 */
export type RetryReason = 'unavailable' | 'throttled' | 'server_error' | 'auth' | 'item_throttled' | 'item_server_error' | 'other';

export class SinkMetrics {
  readonly events: Counter<'sink' | 'outcome'>;
  readonly queueEvents: Gauge<'sink'>;
  readonly queueBytes: Gauge<'sink'>;
  readonly refused: Counter<'sink'>;
  readonly retries: Counter<'sink' | 'reason'>;
  readonly deadLetter: Counter<'sink'>;
  readonly deadLetterDiscarded: Counter<'sink'>;
  readonly writeSeconds: Histogram<'sink'>;

  constructor(t: Telemetry) {
    this.events = t.counter('plumb_sink_events_total', 'Events handled by sinks, by outcome (delivered, duplicate, dead_letter; the Zipkin sink: sent, rejected, dropped, refused).', ['sink', 'outcome']);
    this.queueEvents = t.gauge('plumb_sink_queue_events', 'Events (log events, metric samples) waiting in a sink\'s disk queue.', ['sink']);
    this.queueBytes = t.gauge('plumb_sink_queue_bytes', 'Bytes waiting in a sink queue.', ['sink']);
    this.refused = t.counter('plumb_sink_queue_refused_total', 'Events refused because a sink queue was full (the sender was answered 429 and keeps them).', ['sink']);
    this.retries = t.counter('plumb_sink_retries_total', 'Sink writes retried, by reason (unavailable, throttled, server_error, auth, item_throttled, item_server_error, other).', ['sink', 'reason']);
    this.deadLetter = t.counter('plumb_sink_dead_letter_total', 'Events a sink refused permanently, written to its dead-letter file with the reason.', ['sink']);
    this.deadLetterDiscarded = t.counter('plumb_sink_dead_letter_discarded_total', 'Dead-letter events removed when the older dead-letter file was rotated away.', ['sink']);
    this.writeSeconds = t.histogram('plumb_sink_write_seconds', 'Duration of one write (request, upload, file append) to a sink.', ['sink'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]);
  }

  retry(sink: string, reason: RetryReason, n = 1): void {
    this.retries.inc({ sink, reason }, n);
  }

  /** Makes every series of a sink visible at 0 before anything happened. */
  init(sink: string): void {
    for (const outcome of ['delivered', 'duplicate', 'dead_letter'] as const) this.events.inc({ sink, outcome }, 0);
    this.refused.inc({ sink }, 0);
    this.deadLetter.inc({ sink }, 0);
    this.deadLetterDiscarded.inc({ sink }, 0);
    this.queueEvents.set({ sink }, 0);
    this.queueBytes.set({ sink }, 0);
  }
}

/** The retry reason of an error a whole write failed with. */
export function retryReason(err: unknown): RetryReason {
  if (err instanceof RetryableError || err instanceof PermanentError) {
    const s = err.status;
    if (s === undefined) return 'unavailable';
    if (s === 429) return 'throttled';
    if (s === 401 || s === 403) return 'auth';
    if (s >= 500) return 'server_error';
    if (s === 408) return 'unavailable';
    return 'other';
  }
  return 'unavailable';
}
