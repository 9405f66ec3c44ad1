/** The collector's configuration schema: every key, its default, and what it means. */
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Section, Duration, Size } from '../shared/config.ts';
import { LISTEN_PATTERN } from '../shared/address.ts';
import { MappingSchema } from './metrics/naming.ts';
import { MetricSinksSchema } from './metrics/sinks/config.ts';
import { AlertsConfigSchema } from './alerts/config.ts';
import { ZipkinExporterSchema } from './traces/zipkin-exporter.ts';
import { SpanMetricsSchema } from './traces/spanmetrics.ts';
import { CollectorLogsSchema } from './logs/config.ts';
import { SpanIndexSchema } from './traces/span-index.ts';
import { JournalSchema } from './ingest/state.ts';
import { LimitsSchema } from './ingest/limits.ts';
import { CollectorSecuritySchema } from '../shared/security.ts';
import { HttpLimitsSchema } from '../shared/http-limits.ts';
import { OtlpExportSchema, otlpSchema } from '../shared/otlp/config.ts';
import { FleetSchema } from './fleet/config.ts';
import { ConfigBundlesSchema } from './fleet/bundles.ts';
import { PatternsSchema } from './patterns/config.ts';

export const CollectorMetricsSchema = Section({
  quantiles: Type.Array(Type.Number({ minimum: 0, maximum: 1 }), { default: [0.5, 0.9, 0.95, 0.99, 0.999], minItems: 1 }),
  window: Duration('60s', { description: 'sliding window that summary quantiles cover' }),
  seriesTtl: Duration('10m', { description: 'series not updated for this long disappear from /metrics' }),
  mappings: Type.Array(MappingSchema, { default: [] }),
  maxSeries: Type.Integer({ minimum: 1, default: 1_000_000 }),
  maxSetMembers: Type.Integer({ minimum: 1, default: 100_000 }),
  relativeAccuracy: Type.Number({ exclusiveMinimum: 0, maximum: 0.1, default: 0.01 }),
  maxEvents: Type.Integer({ minimum: 0, default: 1000, description: 'recent DogStatsD events kept for GET /api/v1/events' }),
  sinks: MetricSinksSchema,
});

/** The Zipkin sink is on only when its section is present, and then `url` is required. */
const ZipkinSinkSchema = Type.Optional(
  Type.Object(
    {
      ...ZipkinExporterSchema.properties,
      url: Type.String({ pattern: '^https?://[^\\s]+$', errorMessage: 'an http(s) URL like "http://zipkin:9411"', description: 'Zipkin base URL; spans are posted to {url}/api/v2/spans.' }),
    },
    { additionalProperties: false, description: 'Export spans to a Zipkin-compatible server; absent: spans are not exported.' },
  ),
);

export const CollectorTracesSchema = Section(
  {
    zipkin: ZipkinSinkSchema,
    elasticsearch: SpanIndexSchema,
    otlp: Type.Optional(OtlpExportSchema),
    spanMetrics: SpanMetricsSchema,
    maxSpansPerBatch: Type.Integer({ minimum: 1, default: 50_000, description: 'most spans one agent batch may carry; more get 400' }),
    retryAfter: Duration('1s', { description: 'Retry-After sent with 429 when the Zipkin sink queue is full' }),
  },
  { description: 'Spans from agents (POST /v1/traces): span metrics and the Zipkin sink.' },
);

export const CollectorSchema = Section({
  listen: Type.String({ pattern: LISTEN_PATTERN, default: '127.0.0.1:9102', errorMessage: 'host:port, e.g. "127.0.0.1:9102"' }),
  ...CollectorSecuritySchema,
  http: HttpLimitsSchema,
  dataDir: Type.String({ default: './data/collector' }),
  maxBodyBytes: Size('64mb', { description: 'largest request body after decompression' }),
  maxMetricsPerBatch: Type.Integer({ minimum: 1, default: 1_000_000 }),
  dedupeWindow: Type.Integer({ minimum: 0, default: 100_000, description: 'recent batch ids remembered to drop replays' }),
  maxEventsPerBatch: Type.Integer({ minimum: 1, default: 100_000, description: 'most log events one POST /v1/logs may carry; more get 400' }),
  logDedupeWindow: Type.Integer({ minimum: 0, default: 2_000_000, description: 'recent log event ids remembered (8 bytes each for agent ids) so a replayed event reaches the sinks once' }),
  metrics: CollectorMetricsSchema,
  otlp: otlpSchema('127.0.0.1'),
  alerts: AlertsConfigSchema,
  traces: CollectorTracesSchema,
  logs: CollectorLogsSchema,
  patterns: PatternsSchema,
  journal: JournalSchema,
  limits: LimitsSchema,
  fleet: FleetSchema,
  configBundles: ConfigBundlesSchema,
});

export type CollectorConfig = StaticDecode<typeof CollectorSchema>;
