/**
 * Spans into Elasticsearch, in an index of their own (`collector.traces.elasticsearch`), through
 * the same machinery as log events: a disk queue drained by the Elasticsearch sink (bulk `create`
 * with `_id` = `<traceId>-<spanId>`, so a resent batch never duplicates a span), with its own
 * data directory `<collector.dataDir>/spans/` and the sink name `elasticsearch_spans` in
 * `plumb_sink_*` metrics and `GET /api/v1/sinks`.
 *
 * A span becomes an ECS-style document:
 *   { "@timestamp", "message": <span name>, "event": { "id", "duration": <ns> },
 *     "trace": { "id" }, "span": { "id", "name", "kind", "annotations"? }, "parent": { "id" }?,
 *     "service": { "name" }, "destination": { "service": { "name" } }?, "labels": { … } }
 * Zipkin tags go to `labels` with dots in their keys turned into underscores (`http.method` →
 * `http_method`): Elasticsearch would read dotted keys as object paths, and `http` and
 * `http.method` as two tags would then clash.
 */
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { join } from 'node:path';
import type { Context } from '@opentelemetry/api';
import { RetryableError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import type { SelfTracing } from '../../shared/tracing.ts';
import type { ZipkinSpan } from '../../shared/zipkin.ts';
import { CollectorLogsSchema, ElasticsearchSinkSchema, checkLogsConfig, type CollectorLogsConfig } from '../logs/config.ts';
import { LogRouter } from '../logs/router.ts';
import { ElasticsearchSink } from '../logs/elasticsearch.ts';
import type { DurableSpanSink } from '../ingest/traces.ts';

/** The log sink's Elasticsearch settings, with span defaults for the index and its template. */
export const SpanIndexSchema = Type.Optional(
  Type.Object(
    {
      ...ElasticsearchSinkSchema.properties,
      index: Type.String({ minLength: 1, default: 'plumb-spans-%{+yyyy.MM.dd}', description: "Index name; %{+yyyy.MM.dd} is the span's start in UTC." }),
      template: Type.Object(
        {
          ...ElasticsearchSinkSchema.properties.template.properties,
          name: Type.String({ minLength: 1, default: 'plumb-spans', description: 'Name of the index template.' }),
        },
        { additionalProperties: false, default: {} },
      ),
    },
    { additionalProperties: false, description: 'Also write spans to Elasticsearch, in their own index; absent: spans are not indexed.' },
  ),
);

export type SpanIndexConfig = NonNullable<StaticDecode<typeof SpanIndexSchema>>;

/** A span sink's log router configuration: queue defaults, no sink of its own (the caller gives it one). */
export function spanQueueLogsConfig(): CollectorLogsConfig {
  return Value.Decode(CollectorLogsSchema, Value.Default(CollectorLogsSchema, { sinks: {} }));
}

/** The span index as a log router configuration: its Elasticsearch sink alone, queue defaults. */
export function spanIndexLogsConfig(config: SpanIndexConfig): CollectorLogsConfig {
  const logs = spanQueueLogsConfig();
  logs.sinks = { elasticsearch: config };
  return logs;
}

/** Configuration errors of the span index, named under `path` (collector.traces.elasticsearch). */
export function checkSpanIndexConfig(config: SpanIndexConfig, path: string): string[] {
  return checkLogsConfig(spanIndexLogsConfig(config), '@').map((e) => e.replace('@.sinks.elasticsearch', path).replace(/^@\.queue/, 'collector.logs.queue'));
}

/** Where the span sinks (index, OTLP export) keep their queues and dead-letter files. */
export function spanIndexDir(dataDir: string): string {
  return join(dataDir, 'spans');
}

/**
 * Spans stored durably for one sink: each write goes to the sink's disk queue (a log router with
 * that sink alone) as one NDJSON line per span, and the sink runner drains it. The span index
 * (Elasticsearch documents) and the OTLP span export (collector/traces/otlp.ts) are two of these.
 */
export class SpanIndex implements DurableSpanSink {
  private readonly router: LogRouter;
  private readonly line: (span: ZipkinSpan) => string;
  private readonly what: string;

  constructor(router: LogRouter, line: (span: ZipkinSpan) => string, what: string) {
    this.router = router;
    this.line = line;
    this.what = what;
  }

  static async create(config: SpanIndexConfig, ctx: { telemetry: Telemetry; log: Logger; dataDir: string; tracing?: SelfTracing }): Promise<SpanIndex> {
    const logs = spanIndexLogsConfig(config);
    const log = ctx.log.child({ component: 'span-index' });
    const sink = new ElasticsearchSink(config, { log, name: 'elasticsearch_spans' });
    const router = await LogRouter.create(logs, { ...ctx, dataDir: spanIndexDir(ctx.dataDir), log }, { sinks: [sink] });
    return new SpanIndex(router, (s) => JSON.stringify(spanDocument(s)), 'the Elasticsearch span queue');
  }

  /** Names the queue in a 429's message. */
  get description(): string {
    return this.what;
  }

  start(): void {
    this.router.start();
  }

  stop(deadline?: number): Promise<void> {
    return this.router.stop(deadline);
  }

  status(): ReturnType<LogRouter['status']> {
    return this.router.status();
  }

  /**
   * Stores the spans in the disk queue; false when the queue is full (the ingest answers 429 and
   * the agent sends the batch again).
   */
  async write(spans: readonly ZipkinSpan[], _parent?: Context): Promise<boolean> {
    let text = '';
    for (const s of spans) text += this.line(s) + '\n';
    try {
      await this.router.accept({ id: '', ndjson: Buffer.from(text), count: spans.length });
      return true;
    } catch (err) {
      if (err instanceof RetryableError) return false;
      throw err;
    }
  }
}

/** Several durable span sinks as one, written in order: a batch one refuses is refused (resent later; each keeps a span once per id or at least once). */
export function durableSpanSinks(sinks: readonly (DurableSpanSink | null)[]): DurableSpanSink | null {
  const list = sinks.filter((s): s is DurableSpanSink => s !== null);
  if (list.length <= 1) return list[0] ?? null;
  return {
    async write(spans, parent) {
      for (const s of list) if (!(await s.write(spans, parent))) return false;
      return true;
    },
  };
}

/** The Elasticsearch document of a span (see the header). */
export function spanDocument(s: ZipkinSpan): Record<string, unknown> {
  const startMs = s.timestamp !== undefined ? s.timestamp / 1000 : Date.now();
  const doc: Record<string, unknown> = {
    '@timestamp': new Date(Math.floor(startMs)).toISOString(),
    message: s.name ?? '',
    event: { id: `${s.traceId}-${s.id}`, ...(s.duration !== undefined ? { duration: s.duration * 1000 } : {}) },
    trace: { id: s.traceId },
    span: { id: s.id, ...(s.name !== undefined ? { name: s.name } : {}), ...(s.kind !== undefined ? { kind: s.kind } : {}) },
  };
  if (s.parentId !== undefined) doc.parent = { id: s.parentId };
  if (s.localEndpoint?.serviceName !== undefined) doc.service = { name: s.localEndpoint.serviceName };
  if (s.remoteEndpoint?.serviceName !== undefined) doc.destination = { service: { name: s.remoteEndpoint.serviceName } };
  if (s.annotations !== undefined && s.annotations.length > 0) (doc.span as Record<string, unknown>).annotations = s.annotations.map((a) => a.value);
  if (s.tags !== undefined) {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.tags)) labels[k.replace(/\./g, '_')] = v;
    doc.labels = labels;
  }
  return doc;
}
