/** A programmable LogSink for tests of the runner and the router. */
import { PermanentError, RetryableError } from '../../../../shared/errors.ts';
import type { LogEvent } from '../../../../collector/logs/event.ts';
import type { LogSink, SinkName, WriteResult } from '../../../../collector/logs/sink.ts';

export class FakeSink implements LogSink {
  readonly name: SinkName;
  batch = { maxBytes: 1 << 20, maxWaitMs: 5 };
  readonly backoff = { initialMs: 1, maxMs: 5 };
  readonly secrets = ['s3cr3t-key'];
  /** Ids written, in order, each once (a duplicate is not added again). */
  readonly stored: string[] = [];
  private readonly have = new Set<string>();
  /** Sizes (events) of each write call. */
  readonly writes: number[] = [];
  /** The next N writes throw a RetryableError (the destination is down). */
  failWrites = 0;
  /** The next N opens throw. */
  failOpens = 0;
  /** Ids refused for good, with the reason. */
  readonly reject = new Map<string, string>();
  /** Ids answered "try again" this many more times. */
  readonly throttle = new Map<string, number>();
  /** Throw a PermanentError for the whole batch. */
  refuseAll: string | undefined;
  /** Writes wait for this before answering. */
  gate: Promise<void> | undefined;
  opened = 0;
  closed = 0;

  constructor(name: SinkName = 'file') {
    this.name = name;
  }

  async open(): Promise<void> {
    if (this.failOpens > 0) {
      this.failOpens--;
      throw new RetryableError('PLUMB_ERR_SINK_RETRYABLE', 'cannot reach https://elastic:s3cr3t-key@es.example:9200 (401 security_exception)', { status: 401 });
    }
    this.opened++;
  }

  async write(events: readonly LogEvent[], signal: AbortSignal): Promise<WriteResult> {
    this.writes.push(events.length);
    if (this.gate) await Promise.race([this.gate, new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true }))]);
    if (this.failWrites > 0) {
      this.failWrites--;
      throw new RetryableError('PLUMB_ERR_SINK_RETRYABLE', 'connect ECONNREFUSED 127.0.0.1:9200');
    }
    if (this.refuseAll !== undefined) throw new PermanentError('PLUMB_ERR_SINK_PERMANENT', this.refuseAll, { status: 413 });
    const result: WriteResult = { delivered: 0, duplicate: 0, rejected: [], retry: [] };
    for (const e of events) {
      const reason = this.reject.get(e.id);
      const left = this.throttle.get(e.id) ?? 0;
      if (reason !== undefined) {
        result.rejected.push({ event: e, status: 400, reason, target: 'plumb-logs-x' });
      } else if (left > 0) {
        this.throttle.set(e.id, left - 1);
        result.retry.push(e);
        result.retryReason = 'item_throttled';
      } else if (this.have.has(e.id)) {
        result.duplicate++;
      } else {
        this.have.add(e.id);
        this.stored.push(e.id);
        result.delivered++;
      }
    }
    return result;
  }

  async close(): Promise<void> {
    this.closed++;
  }
}

/** NDJSON of events with ids `${prefix}${i}` for i in [from, from + n). */
export function ndjson(prefix: string, from: number, n: number, extra = ''): Buffer {
  let s = '';
  for (let i = from; i < from + n; i++) s += `{"@timestamp":"2026-11-24T10:00:00.000Z","message":"line ${i}${extra}","event":{"id":"${prefix}${i}"},"host":{"name":"web-1"}}\n`;
  return Buffer.from(s);
}
