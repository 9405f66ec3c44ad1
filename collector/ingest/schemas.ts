/** JSON schemas for what agents post; fastify compiles them once and validates every body. */
import { Type } from '@sinclair/typebox';

const Name = Type.String({ minLength: 1, maxLength: 1024 });
const Tags = Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 256 });

const Counter = Type.Object({ type: Type.Literal('c'), name: Name, tags: Tags, value: Type.Number() });
const Gauge = Type.Object({ type: Type.Literal('g'), name: Name, tags: Tags, value: Type.Number() });
const SetMetric = Type.Object({ type: Type.Literal('s'), name: Name, tags: Tags, members: Type.Array(Type.String({ maxLength: 4096 })) });
const Distribution = Type.Object({
  type: Type.Union([Type.Literal('ms'), Type.Literal('h'), Type.Literal('d')]),
  name: Name,
  tags: Tags,
  sketch: Type.String({ maxLength: 1_000_000 }),
  count: Type.Number({ minimum: 0 }),
  sum: Type.Number(),
  min: Type.Number(),
  max: Type.Number(),
});

const Histogram = Type.Object({
  type: Type.Literal('hist'),
  name: Name,
  tags: Tags,
  bounds: Type.Array(Type.Number(), { maxItems: 4096 }),
  counts: Type.Array(Type.Number({ minimum: 0 }), { minItems: 1, maxItems: 4097 }),
  count: Type.Number({ minimum: 0 }),
  sum: Type.Number(),
});
const Summary = Type.Object({
  type: Type.Literal('sum'),
  name: Name,
  tags: Tags,
  quantiles: Type.Array(Type.Tuple([Type.Number({ minimum: 0, maximum: 1 }), Type.Number()]), { maxItems: 1024 }),
  count: Type.Number({ minimum: 0 }),
  sum: Type.Number(),
});

const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(t: T) => Type.Union([t, Type.Null()]);

const Event = Type.Object({
  title: Type.String(),
  text: Type.String(),
  timestamp: Nullable(Type.Integer()),
  hostname: Nullable(Type.String()),
  aggregationKey: Nullable(Type.String()),
  priority: Nullable(Type.String()),
  sourceType: Nullable(Type.String()),
  alertType: Nullable(Type.String()),
  tags: Tags,
});

const ServiceCheck = Type.Object({
  name: Name,
  status: Type.Integer({ minimum: 0, maximum: 3 }),
  timestamp: Nullable(Type.Integer()),
  hostname: Nullable(Type.String()),
  tags: Tags,
  message: Nullable(Type.String()),
});

export function metricBatchSchema(maxMetrics: number) {
  return Type.Object({
    id: Type.String({ minLength: 1, maxLength: 512 }),
    agent: Type.String({ minLength: 1, maxLength: 512 }),
    seq: Type.Integer({ minimum: 0 }),
    start: Type.Number(),
    end: Type.Number(),
    metrics: Type.Array(Type.Union([Counter, Gauge, SetMetric, Distribution, Histogram, Summary]), { maxItems: maxMetrics }),
    events: Type.Array(Event, { maxItems: 10_000 }),
    serviceChecks: Type.Array(ServiceCheck, { maxItems: 10_000 }),
  });
}
