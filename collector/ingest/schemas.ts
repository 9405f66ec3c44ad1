/**
 * JSON schemas for what agents post. The envelope of a metric batch is checked by fastify (once,
 * compiled); its items are checked one by one (metric-items.ts), so one bad item is refused
 * alone and the rest of its batch applies. Item limits come from shared/statsd-limits.ts, the
 * same definition the agent's statsd parser enforces.
 */
import { Type } from '@sinclair/typebox';
import { STATSD_LIMITS } from '../../shared/statsd-limits.ts';
import { SKETCH_EXACT_SAMPLES } from '../../shared/sketch.ts';

const Name = Type.String({ minLength: 1, maxLength: STATSD_LIMITS.maxNameLength });
const Tags = Type.Array(Type.String({ maxLength: STATSD_LIMITS.maxTagLength }), { maxItems: STATSD_LIMITS.maxTags });
const Field = Type.String({ maxLength: STATSD_LIMITS.maxFieldLength });

export const CounterSchema = Type.Object({ type: Type.Literal('c'), name: Name, tags: Tags, value: Type.Number({ minimum: 0 }) });
export const GaugeSchema = Type.Object({ type: Type.Literal('g'), name: Name, tags: Tags, value: Type.Number() });
export const SetSchema = Type.Object({
  type: Type.Literal('s'),
  name: Name,
  tags: Tags,
  members: Type.Array(Type.String({ maxLength: STATSD_LIMITS.maxSetMemberLength })),
});
export const DistributionSchema = Type.Object({
  type: Type.Union([Type.Literal('ms'), Type.Literal('h'), Type.Literal('d')]),
  name: Name,
  tags: Tags,
  sketch: Type.String({ maxLength: 1_000_000 }),
  count: Type.Number({ minimum: 0 }),
  sum: Type.Number(),
  min: Type.Number(),
  max: Type.Number(),
  samples: Type.Optional(Type.Array(Type.Number(), { maxItems: SKETCH_EXACT_SAMPLES })),
  weights: Type.Optional(Type.Array(Type.Number({ exclusiveMinimum: 0 }), { maxItems: SKETCH_EXACT_SAMPLES })),
});

/** OTLP explicit-bucket histograms and summaries (no statsd form). */
export const HistogramSchema = Type.Object({
  type: Type.Literal('hist'),
  name: Name,
  tags: Tags,
  bounds: Type.Array(Type.Number(), { maxItems: 4096 }),
  counts: Type.Array(Type.Number({ minimum: 0 }), { minItems: 1, maxItems: 4097 }),
  count: Type.Number({ minimum: 0 }),
  sum: Type.Number(),
});
export const SummarySchema = Type.Object({
  type: Type.Literal('sum'),
  name: Name,
  tags: Tags,
  quantiles: Type.Array(Type.Tuple([Type.Number({ minimum: 0, maximum: 1 }), Type.Number()]), { maxItems: 1024 }),
  count: Type.Number({ minimum: 0 }),
  sum: Type.Number(),
});

const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(t: T) => Type.Union([t, Type.Null()]);

export const EventSchema = Type.Object({
  title: Type.String({ maxLength: STATSD_LIMITS.maxEventTitleLength }),
  text: Type.String({ maxLength: STATSD_LIMITS.maxEventTextLength }),
  timestamp: Nullable(Type.Integer()),
  hostname: Nullable(Field),
  aggregationKey: Nullable(Field),
  priority: Nullable(Field),
  sourceType: Nullable(Field),
  alertType: Nullable(Field),
  tags: Tags,
});

export const ServiceCheckSchema = Type.Object({
  name: Name,
  status: Type.Integer({ minimum: 0, maximum: 3 }),
  timestamp: Nullable(Type.Integer()),
  hostname: Nullable(Field),
  tags: Tags,
  message: Nullable(Type.String({ maxLength: STATSD_LIMITS.maxEventTextLength })),
});

/** The envelope: items are any JSON here and checked one by one after. */
export function metricBatchSchema(maxMetrics: number) {
  return Type.Object({
    id: Type.String({ minLength: 1, maxLength: 512 }),
    agent: Type.String({ minLength: 1, maxLength: 512 }),
    seq: Type.Integer({ minimum: 0 }),
    start: Type.Number(),
    end: Type.Number(),
    metrics: Type.Array(Type.Unknown(), { maxItems: maxMetrics }),
    events: Type.Array(Type.Unknown(), { maxItems: 10_000 }),
    serviceChecks: Type.Array(Type.Unknown(), { maxItems: 10_000 }),
  });
}
