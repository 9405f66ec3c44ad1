/**
 * The OTLP log sink (collector.logs.sinks.otlp): log events as OTLP/HTTP protobuf, gzip, through
 * the sink runner like every other sink (disk queue, retry with backoff honouring Retry-After,
 * dead letters, counters). Events that came in through OTLP go out as the records they were
 * (shared/otlp/logs.ts); tailed log events as records whose body is the message.
 *
 * partial_success: see partialSuccess below.
 */
import type { Span } from '@opentelemetry/api';
import { eventsToOtlp } from '../../shared/otlp/logs.ts';
import { OtlpExporter, type ExportAnswer } from '../../shared/otlp/export.ts';
import type { SinkItem, SinkWriteResult } from '../sinks/sink.ts';
import type { OtlpExportConfig } from '../../shared/otlp/config.ts';
import type { LogEvent } from './event.ts';
import type { LogSink, WriteResult } from './sink.ts';

/**
 * What an OTLP answer means for the items sent: partial_success says how many were refused, not
 * which; that many (the last ones) go to the dead-letter file with the server's reason, the rest
 * are delivered. Every OTLP sink (logs, spans, metrics) reads its answers through here.
 */
export function partialSuccess<T extends SinkItem>(items: readonly T[], answer: ExportAnswer, endpoint: string): SinkWriteResult<T> {
  const rejected = Math.min(answer.rejected, items.length);
  return {
    delivered: items.length - rejected,
    duplicate: 0,
    rejected: items.slice(items.length - rejected).map((event) => ({ event, status: 200, reason: `partial_success: ${answer.message || 'refused by the server'}`, target: endpoint })),
    retry: [],
  };
}

export class OtlpLogSink implements LogSink {
  readonly name = 'otlp' as const;
  readonly batch: { maxBytes: number; maxWaitMs: number };
  readonly backoff: { initialMs: number; maxMs: number };
  private readonly exporter: OtlpExporter;
  private readonly endpoint: string;

  constructor(config: OtlpExportConfig) {
    this.batch = { maxBytes: config.flushBytes, maxWaitMs: config.flushInterval };
    this.backoff = { initialMs: config.retryInitial, maxMs: config.retryMax };
    this.exporter = new OtlpExporter(config, 'logs');
    this.endpoint = config.endpoint;
  }

  get secrets(): readonly string[] {
    return this.exporter.secrets;
  }

  async open(): Promise<void> {
    // nothing to prepare: OTLP has no health endpoint; the first write tells
  }

  async write(items: readonly LogEvent[], signal: AbortSignal, span: Span): Promise<WriteResult> {
    const events = items.map((e) => JSON.parse(e.line.toString('utf8')) as Record<string, unknown>);
    const answer = await this.exporter.send('logs', eventsToOtlp(events), signal);
    span.setAttribute('plumb.otlp.rejected', answer.rejected);
    return partialSuccess(items, answer, this.endpoint);
  }

  close(): Promise<void> {
    return this.exporter.close();
  }
}
