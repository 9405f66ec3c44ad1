/**
 * The OTLP log sink (collector.logs.sinks.otlp): log events as OTLP/HTTP protobuf, gzip, through
 * the sink runner like every other sink (disk queue, retry with backoff honouring Retry-After,
 * dead letters, counters). Events that came in through OTLP go out as the records they were
 * (shared/otlp/logs.ts); tailed log events as records whose body is the message.
 *
 * partial_success: see collector/sinks/otlp.ts.
 */
import { eventsToOtlp } from '../../shared/otlp/logs.ts';
import { OtlpSinkBase } from '../sinks/otlp.ts';
import type { OtlpExportConfig } from '../../shared/otlp/config.ts';
import type { LogEvent } from './event.ts';
import type { LogSink } from './sink.ts';

export class OtlpLogSink extends OtlpSinkBase<LogEvent> implements LogSink {
  readonly name = 'otlp' as const;

  constructor(config: OtlpExportConfig) {
    super(config, 'logs');
  }

  protected request(items: readonly LogEvent[]): object {
    return eventsToOtlp(items.map((e) => JSON.parse(e.line.toString('utf8')) as Record<string, unknown>));
  }
}
