/** The tailer's own metrics, declared once. Labels are fixed, small sets: never a path. */
import type { Counter, Gauge } from 'prom-client';
import type { Telemetry } from '../../../shared/telemetry.ts';

export type RotationKind = 'rename' | 'truncate' | 'delete' | 'reuse' | 'copy' | 'compressed';
export type RefusalReason = 'max_open_files' | 'max_files' | 'open_error';

export class TailMetrics {
  readonly filesWatched: Gauge;
  readonly openFiles: Gauge;
  readonly filesRefused: Counter<'reason'>;
  readonly filesIgnored: Counter;
  readonly bytesRead: Counter;
  readonly linesRead: Counter;
  readonly linesTruncated: Counter;
  readonly records: Counter;
  readonly malformed: Counter<'format'>;
  readonly rotations: Counter<'kind'>;
  readonly batches: Counter;
  readonly deliveryErrors: Counter;
  readonly unackedBatches: Gauge;
  readonly paused: Counter<'reason'>;
  readonly checkpointWrites: Counter;
  readonly checkpointErrors: Counter<'op'>;
  readonly checkpointEntries: Gauge;
  readonly checkpointForgotten: Counter<'reason'>;
  readonly lagBytes: Gauge;

  constructor(telemetry: Telemetry) {
    this.filesWatched = telemetry.gauge('plumb_tail_files_watched', 'Files the tailer follows (open or closed while idle).');
    this.openFiles = telemetry.gauge('plumb_tail_open_files', 'Files the tailer holds open.');
    this.filesRefused = telemetry.counter('plumb_tail_files_refused_total', 'Matching files not opened, by reason (retried on the next discovery).', ['reason']);
    // at 0 from the start, so an alert on increase() sees the first refusal
    for (const reason of ['max_files', 'max_open_files', 'open_error']) this.filesRefused.inc({ reason }, 0);
    this.filesIgnored = telemetry.counter('plumb_tail_files_ignored_total', 'Files without a checkpoint registered at their end unread because they were not modified within ignoreOlder.');
    this.bytesRead = telemetry.counter('plumb_tail_read_bytes_total', 'Bytes read from log files.');
    this.linesRead = telemetry.counter('plumb_tail_lines_total', 'Lines read from log files.');
    this.linesTruncated = telemetry.counter('plumb_tail_lines_truncated_total', 'Lines cut at maxLineBytes (kept, flagged truncated).');
    this.records = telemetry.counter('plumb_tail_records_total', 'Records handed to the consumer (after joining partial and multi-line events).');
    this.malformed = telemetry.counter('plumb_tail_malformed_total', 'Lines that did not follow their input format; kept whole and flagged.', ['format']);
    this.rotations = telemetry.counter('plumb_tail_rotations_total', 'Rotations detected, by kind: rename, truncate (copytruncate), delete, reuse (same inode, new content), copy (a truncated file finished from its copy), compressed (a file finished from its .gz rotation).', ['kind']);
    this.batches = telemetry.counter('plumb_tail_batches_total', 'Batches handed to the consumer.');
    this.deliveryErrors = telemetry.counter('plumb_tail_delivery_errors_total', 'Batches the consumer failed to take (retried).');
    this.unackedBatches = telemetry.gauge('plumb_tail_unacked_batches', 'Batches handed out and not yet acknowledged.');
    this.paused = telemetry.counter('plumb_tail_paused_total', 'Times reading paused because the consumer was behind, by reason.', ['reason']);
    this.checkpointWrites = telemetry.counter('plumb_tail_checkpoint_writes_total', 'Checkpoint files written.');
    this.checkpointErrors = telemetry.counter('plumb_tail_checkpoint_errors_total', 'Checkpoint reads or writes that failed, by operation.', ['op']);
    this.checkpointEntries = telemetry.gauge('plumb_tail_checkpoint_entries', 'Files with a checkpoint entry.');
    this.checkpointForgotten = telemetry.counter('plumb_tail_checkpoint_forgotten_total', 'Checkpoint entries dropped, by reason: expired (file gone past forgetAfter) or full (maxFiles).', ['reason']);
    this.lagBytes = telemetry.gauge('plumb_tail_lag_bytes', 'Bytes in followed files past their acknowledged offsets.');
  }
}
