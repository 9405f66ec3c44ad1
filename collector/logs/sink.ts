/**
 * Log sinks: the generic sink contract (../sinks/sink.ts) over log events. The runner, queue,
 * dead-letter file and metrics every sink shares are in ../sinks/.
 */
import type { LogEvent } from './event.ts';
import type { RejectedItem, Sink, SinkWriteResult } from '../sinks/sink.ts';

/** The log sink's name in metrics, status and its queue directory; `elasticsearch_spans` and `otlp_spans` are span sinks. */
export type SinkName = 'file' | 'elasticsearch' | 's3' | 'otlp' | 'elasticsearch_spans' | 'otlp_spans';

/** A log event the sink refused for good, and why. */
export type RejectedEvent = RejectedItem<LogEvent>;

/** What became of a batch of log events. */
export type WriteResult = SinkWriteResult<LogEvent>;

export interface LogSink extends Sink<LogEvent> {
  readonly name: SinkName;
}

export const DELIVERED_ALL = (n: number): WriteResult => ({ delivered: n, duplicate: 0, rejected: [], retry: [] });
