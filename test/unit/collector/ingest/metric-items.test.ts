/**
 * Per-item checks of a metric batch. Property: one bad item anywhere in a batch never changes
 * what happens to the good items beside it: the store shows exactly what it shows for the good
 * items alone, and the bad one is reported by its index.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkBatchItems, type UncheckedBatch } from '../../../../collector/ingest/metric-items.ts';
import { MetricStore } from '../../../../collector/metrics/store.ts';
import { badItem, goodItem } from '../../../helpers/metric-items.ts';
import { STATSD_LIMITS } from '../../../../shared/statsd-limits.ts';

function envelope(metrics: unknown[]): UncheckedBatch {
  return { id: 'b', agent: 'a', seq: 1, start: 0, end: 1, metrics, events: [], serviceChecks: [] };
}

function newStore(): MetricStore {
  return new MetricStore({ quantiles: [0.5, 0.9, 0.99], windowMs: 60_000, seriesTtlMs: 600_000, mappings: [], maxSeries: 10_000, maxSetMembers: 100, relativeAccuracy: 0.01, maxEvents: 10 });
}

function exposition(items: unknown[]): { text: string; errors: { path: string; reason: string }[] } {
  const store = newStore();
  const checked = checkBatchItems(envelope(items));
  store.apply(checked.batch, 1_000_000);
  return { text: store.render(1_000_000), errors: checked.errors };
}

describe('metric batch items', () => {
  it('refuses null, true and "5" as values instead of reading them as numbers', () => {
    const { batch, errors } = checkBatchItems(
      envelope([
        { type: 'c', name: 'a', tags: [], value: null },
        { type: 'g', name: 'b', tags: [], value: true },
        { type: 'g', name: 'c', tags: [], value: '5' },
        { type: 'c', name: 'd', tags: [], value: -1 },
        { type: 'x', name: 'e', tags: [], value: 1 },
        { type: 'g', name: 'ok', tags: [], value: 5 },
      ]),
    );
    expect(batch.metrics).toEqual([{ type: 'g', name: 'ok', tags: [], value: 5 }]);
    expect(errors.map((e) => `${e.path} ${e.reason}`)).toEqual([
      '/metrics/0/value wrong_type',
      '/metrics/1/value wrong_type',
      '/metrics/2/value wrong_type',
      '/metrics/3/value negative_counter',
      '/metrics/4/type unknown_type',
    ]);
  });

  it('one bad item never changes what happens to the good items of its batch', () => {
    fc.assert(
      fc.property(fc.array(goodItem, { maxLength: 20 }), badItem, fc.nat(), (good, bad, at) => {
        const base = exposition(good);
        expect(base.errors).toEqual([]);
        const items: unknown[] = [...good];
        const index = at % (items.length + 1);
        items.splice(index, 0, bad);
        const withBad = exposition(items);
        expect(withBad.text).toBe(base.text);
        expect(withBad.errors).toHaveLength(1);
        expect(withBad.errors[0].path).toMatch(new RegExp(`^/metrics/${index}(/|$)`));
      }),
      { numRuns: 500 },
    );
  });
  it('refuses one over-long event or service check field, keeping the other events and checks of the batch', () => {
    const long = (n: number) => 'x'.repeat(n + 1);
    const event = (over: Record<string, unknown>) => ({ title: 'deploy', text: 'done', timestamp: null, hostname: null, aggregationKey: null, priority: null, sourceType: null, alertType: null, tags: [], ...over });
    const check = (over: Record<string, unknown>) => ({ name: 'db.up', status: 0, timestamp: null, hostname: null, tags: [], message: null, ...over });
    const { batch, errors } = checkBatchItems({
      ...envelope([]),
      events: [
        event({ title: long(STATSD_LIMITS.maxEventTitleLength) }),
        event({ text: long(STATSD_LIMITS.maxEventTextLength) }),
        event({ hostname: long(STATSD_LIMITS.maxFieldLength) }),
        event({ tags: Array.from({ length: STATSD_LIMITS.maxTags + 1 }, (_, i) => `t:${i}`) }),
        event({ title: 'kept' }),
      ],
      serviceChecks: [
        check({ name: long(STATSD_LIMITS.maxNameLength) }),
        check({ message: long(STATSD_LIMITS.maxEventTextLength) }),
        check({ tags: [long(STATSD_LIMITS.maxTagLength)] }),
        check({ name: 'kept.check' }),
      ],
    });
    expect(batch.events.map((e) => e.title)).toEqual(['kept']);
    expect(batch.serviceChecks.map((c) => c.name)).toEqual(['kept.check']);
    expect(errors.map((e) => `${e.path} ${e.reason}`)).toEqual([
      '/events/0/title field_too_long',
      '/events/1/text field_too_long',
      '/events/2/hostname field_too_long',
      '/events/3/tags too_many_tags',
      '/serviceChecks/0/name name_too_long',
      '/serviceChecks/1/message field_too_long',
      '/serviceChecks/2/tags/0 tag_too_long',
    ]);
  });
});
