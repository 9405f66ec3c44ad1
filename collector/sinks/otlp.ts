/**
 * What every OTLP sink (logs, spans, metrics) shares: the exporter (shared/otlp/export.ts) with
 * its endpoint, headers, TLS and timeout, the batch and backoff settings the runner reads, and how
 * an answer settles a batch. A subclass only turns its queued items into a request.
 */
import type { Span } from '@opentelemetry/api';
import type { OtlpExportConfig } from '../../shared/otlp/config.ts';
import type { Signal } from '../../shared/otlp/codec.ts';
import { OtlpExporter, type ExportAnswer } from '../../shared/otlp/export.ts';
import type { SinkItem, SinkWriteResult } from './sink.ts';

/**
 * What an OTLP answer means for the items sent: partial_success says how many were refused, not
 * which; that many (the last ones) go to the dead-letter file with the server's reason, the rest
 * are delivered.
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

export abstract class OtlpSinkBase<T extends SinkItem> {
  readonly batch: { maxBytes: number; maxWaitMs: number };
  readonly backoff: { initialMs: number; maxMs: number };
  private readonly exporter: OtlpExporter;
  private readonly signal: Signal;
  private readonly endpoint: string;

  constructor(config: OtlpExportConfig, signal: Signal) {
    this.batch = { maxBytes: config.flushBytes, maxWaitMs: config.flushInterval };
    this.backoff = { initialMs: config.retryInitial, maxMs: config.retryMax };
    this.exporter = new OtlpExporter(config, signal);
    this.signal = signal;
    this.endpoint = config.endpoint;
  }

  get secrets(): readonly string[] {
    return this.exporter.secrets;
  }

  async open(): Promise<void> {
    // OTLP has no health endpoint; the first write tells
  }

  /** The export request (plain objects shaped like the messages) for these items. */
  protected abstract request(items: readonly T[]): object;

  async write(items: readonly T[], abort: AbortSignal, span: Span): Promise<SinkWriteResult<T>> {
    const answer = await this.exporter.send(this.signal, this.request(items), abort);
    span.setAttribute('plumb.otlp.rejected', answer.rejected);
    return partialSuccess(items, answer, this.endpoint);
  }

  close(): Promise<void> {
    return this.exporter.close();
  }
}
