/**
 * The OTLP span sink (collector.traces.otlp): spans as OTLP/HTTP protobuf, gzip, to another
 * plumb, an OpenTelemetry Collector, Tempo, Jaeger or a vendor. Like the span index, spans wait
 * in a disk queue of their own (<collector.dataDir>/spans/log-sinks/otlp_spans/) drained by the shared sink runner
 * (retry with backoff honouring Retry-After, dead letters, counters under the sink name
 * `otlp_spans`). Spans are mapped by spansToOtlp (shared/otlp/traces.ts): what came in through
 * OTLP goes out as the span it was, and another plumb reading the export stores the same span.
 */
import type { Logger } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import type { SelfTracing } from '../../shared/tracing.ts';
import type { ZipkinSpan } from '../../shared/zipkin.ts';
import type { OtlpExportConfig } from '../../shared/otlp/config.ts';
import { spansToOtlp } from '../../shared/otlp/traces.ts';
import { LogRouter } from '../logs/router.ts';
import { OtlpSinkBase } from '../sinks/otlp.ts';
import type { LogEvent } from '../logs/event.ts';
import type { LogSink } from '../logs/sink.ts';
import { SpanIndex, spanIndexDir, spanQueueLogsConfig } from './span-index.ts';

export class OtlpSpanSink extends OtlpSinkBase<LogEvent> implements LogSink {
  readonly name = 'otlp_spans' as const;

  constructor(config: OtlpExportConfig) {
    super(config, 'traces');
  }

  protected request(items: readonly LogEvent[]): object {
    return spansToOtlp(items.map((e) => JSON.parse(e.line.toString('utf8')) as ZipkinSpan));
  }
}

/** The OTLP span export: its disk queue and runner, written to like the span index. */
export async function createOtlpSpanExport(config: OtlpExportConfig, ctx: { telemetry: Telemetry; log: Logger; dataDir: string; tracing?: SelfTracing }): Promise<SpanIndex> {
  const log = ctx.log.child({ component: 'otlp-spans' });
  const router = await LogRouter.create(spanQueueLogsConfig(), { ...ctx, dataDir: spanIndexDir(ctx.dataDir), log }, { sinks: [new OtlpSpanSink(config)] });
  return new SpanIndex(router, (s) => JSON.stringify(s), 'the OTLP span queue');
}
