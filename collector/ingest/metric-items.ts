/**
 * Per-item checks of a metric batch, without coercion: `null`, `true` or `"5"` where a number
 * belongs are refused, not read as 0, 1 or 5. A bad item is reported by its JSON pointer and a
 * reason code (as Elasticsearch's bulk API reports each failed item) and the rest of the batch
 * applies.
 */
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import type { TSchema } from '@sinclair/typebox';
import type { MetricBatch, ServiceCheck, StatsdEvent, WireMetric } from '../../shared/wire.ts';
import { CounterSchema, DistributionSchema, EventSchema, GaugeSchema, HistogramSchema, ServiceCheckSchema, SetSchema, SummarySchema } from './schemas.ts';

/** One refused item: where it is in the request, a reason code, and what is wrong. */
export interface ItemError {
  path: string;
  reason: string;
  message: string;
}

const compile = <T extends TSchema>(s: T): TypeCheck<T> => TypeCompiler.Compile(s);
const counter = compile(CounterSchema);
const gauge = compile(GaugeSchema);
const set = compile(SetSchema);
const distribution = compile(DistributionSchema);
const event = compile(EventSchema);
const serviceCheck = compile(ServiceCheckSchema);
const histogram = compile(HistogramSchema);
const summary = compile(SummarySchema);

const BY_TYPE: Record<string, TypeCheck<TSchema>> = { c: counter, g: gauge, s: set, ms: distribution, h: distribution, d: distribution, hist: histogram, sum: summary };

/** The envelope fastify checked; its items are still unknown. */
export interface UncheckedBatch extends Omit<MetricBatch, 'metrics' | 'events' | 'serviceChecks'> {
  metrics: unknown[];
  events: unknown[];
  serviceChecks: unknown[];
}

export interface CheckedBatch {
  /** The batch with only its good items (each rebuilt from its known fields). */
  batch: MetricBatch;
  /** For each metric kept, its index in the request. */
  metricIndex: number[];
  errors: ItemError[];
}

export function checkBatchItems(body: UncheckedBatch): CheckedBatch {
  const errors: ItemError[] = [];
  const metrics: WireMetric[] = [];
  const metricIndex: number[] = [];
  for (let i = 0; i < body.metrics.length; i++) {
    const m = body.metrics[i];
    const type = typeof m === 'object' && m !== null ? (m as { type?: unknown }).type : undefined;
    const check = typeof type === 'string' && Object.hasOwn(BY_TYPE, type) ? BY_TYPE[type] : undefined;
    if (check === undefined) {
      errors.push({ path: `/metrics/${i}/type`, reason: 'unknown_type', message: 'type must be one of c, g, s, ms, h, d, hist, sum' });
      continue;
    }
    const e = check.Check(m) ? null : check.Errors(m).First();
    if (e) {
      errors.push(itemError(`/metrics/${i}`, e));
      continue;
    }
    metrics.push(cleanMetric(m as WireMetric));
    metricIndex.push(i);
  }
  const events: StatsdEvent[] = [];
  for (let i = 0; i < body.events.length; i++) {
    const e = body.events[i];
    const err = event.Check(e) ? null : event.Errors(e).First();
    if (err) errors.push(itemError(`/events/${i}`, err));
    else events.push(cleanEvent(e as StatsdEvent));
  }
  const serviceChecks: ServiceCheck[] = [];
  for (let i = 0; i < body.serviceChecks.length; i++) {
    const c = body.serviceChecks[i];
    const err = serviceCheck.Check(c) ? null : serviceCheck.Errors(c).First();
    if (err) errors.push(itemError(`/serviceChecks/${i}`, err));
    else serviceChecks.push(cleanServiceCheck(c as ServiceCheck));
  }
  const { id, agent, seq, start, end } = body;
  return { batch: { id, agent, seq, start, end, metrics, events, serviceChecks }, metricIndex, errors };
}

/** A low-cardinality reason: the agent's parse-error names where the limit is the same one. */
function itemError(prefix: string, e: ValueError): ItemError {
  const path = `${prefix}${e.path}`;
  return { path, reason: reasonOf(e), message: e.message };
}

function reasonOf(e: ValueError): string {
  const p = e.path;
  // A nullable text field fails as a union: a string over its string member's limit is too long.
  if (e.type === ValueErrorType.Union && typeof e.value === 'string') {
    const text = ((e.schema.anyOf ?? []) as { type?: string; maxLength?: number }[]).find((m) => m.type === 'string');
    if (text?.maxLength !== undefined && e.value.length > text.maxLength) return 'field_too_long';
  }
  switch (e.type) {
    case ValueErrorType.StringMaxLength:
      if (p === '/name') return 'name_too_long';
      if (p.startsWith('/tags/')) return 'tag_too_long';
      if (p.startsWith('/members/')) return 'member_too_long';
      return 'field_too_long';
    case ValueErrorType.ArrayMaxItems:
      return p === '/tags' ? 'too_many_tags' : 'too_many_items';
    case ValueErrorType.NumberMinimum:
      return p === '/value' ? 'negative_counter' : 'out_of_range';
    case ValueErrorType.NumberExclusiveMinimum:
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.IntegerMaximum:
      return 'out_of_range';
    case ValueErrorType.ObjectRequiredProperty:
      return 'missing_field';
    case ValueErrorType.StringMinLength:
      return p === '/name' ? 'empty_name' : 'empty_field';
    case ValueErrorType.Literal:
      return 'unknown_type';
    default:
      return 'wrong_type';
  }
}

function cleanMetric(m: WireMetric): WireMetric {
  switch (m.type) {
    case 'c':
    case 'g':
      return { type: m.type, name: m.name, tags: m.tags, value: m.value };
    case 's':
      return { type: 's', name: m.name, tags: m.tags, members: m.members };
    case 'hist':
      return { type: 'hist', name: m.name, tags: m.tags, bounds: m.bounds, counts: m.counts, count: m.count, sum: m.sum };
    case 'sum':
      return { type: 'sum', name: m.name, tags: m.tags, quantiles: m.quantiles, count: m.count, sum: m.sum };
    default: {
      const { type, name, tags, sketch, count, sum, min, max, samples, weights } = m;
      const out: WireMetric = { type, name, tags, sketch, count, sum, min, max };
      if (samples !== undefined) out.samples = samples;
      if (weights !== undefined) out.weights = weights;
      return out;
    }
  }
}

function cleanEvent(e: StatsdEvent): StatsdEvent {
  const { title, text, timestamp, hostname, aggregationKey, priority, sourceType, alertType, tags } = e;
  return { title, text, timestamp, hostname, aggregationKey, priority, sourceType, alertType, tags };
}

function cleanServiceCheck(c: ServiceCheck): ServiceCheck {
  const { name, status, timestamp, hostname, tags, message } = c;
  return { name, status, timestamp, hostname, tags, message };
}
