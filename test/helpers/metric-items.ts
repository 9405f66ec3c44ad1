/** fast-check generators of metric batch items, good and bad, for the per-item ingest properties. */
import fc from 'fast-check';
import { newSketch, encodeSketch } from '../../shared/sketch.ts';
import { STATSD_LIMITS } from '../../shared/statsd-limits.ts';
import { checkBatchItems } from '../../collector/ingest/metric-items.ts';

const name = fc.constantFrom('jobs', 'lat', 'queue.depth', 'users', 'hits');
const tags = fc.subarray(['env:prod', 'az:1', 'svc:api']);

function distribution(values: number[]): Record<string, unknown> {
  const s = newSketch();
  for (const v of values) s.accept(v);
  return { sketch: encodeSketch(s), count: s.count, sum: s.sum, min: s.min, max: s.max, samples: values };
}

/** Items an agent sends; names carry the type so no two types share a name (that is another refusal). */
export const goodItem: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.record({ n: name, t: tags, v: fc.integer({ min: 0, max: 1e6 }) }).map(({ n, t, v }) => ({ type: 'c', name: `${n}.c`, tags: t, value: v })),
  fc.record({ n: name, t: tags, v: fc.double({ min: -1e9, max: 1e9, noNaN: true }) }).map(({ n, t, v }) => ({ type: 'g', name: `${n}.g`, tags: t, value: v })),
  fc.record({ n: name, t: tags, m: fc.subarray(['a', 'b', 'c']) }).map(({ n, t, m }) => ({ type: 's', name: `${n}.s`, tags: t, members: m })),
  fc
    .record({ n: name, t: tags, v: fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1, maxLength: 20 }) })
    .map(({ n, t, v }) => ({ type: 'ms', name: `${n}.ms`, tags: t, ...distribution(v) })),
);

const badValue = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, '5', '', [], {}, -1, 'x'.repeat(STATSD_LIMITS.maxTagLength + 1)),
  fc.anything(),
);

/** A good item with one field replaced, removed, or the whole item replaced by anything. */
export const badItem: fc.Arbitrary<unknown> = fc
  .oneof(
    fc.record({ item: goodItem, key: fc.constantFrom('type', 'name', 'tags', 'value', 'members', 'sketch', 'count', 'sum', 'samples'), value: badValue }).map(({ item, key, value }) => ({
      ...item,
      [key]: value,
    })),
    fc.record({ item: goodItem, key: fc.constantFrom('type', 'name', 'tags', 'value', 'members', 'count') }).map(({ item, key }) => {
      const copy = { ...item };
      delete copy[key];
      return copy;
    }),
    fc.record({ item: goodItem, tag: fc.constantFrom('k:' + 'v'.repeat(STATSD_LIMITS.maxTagLength), 'n'.repeat(STATSD_LIMITS.maxTagLength + 1)) }).map(({ item, tag }) => ({
      ...item,
      tags: [tag],
    })),
    fc.record({ item: goodItem }).map(({ item }) => ({ ...item, tags: Array.from({ length: STATSD_LIMITS.maxTags + 1 }, (_, i) => `k${i}:v`) })),
    fc.record({ item: goodItem }).map(({ item }) => ({ ...item, name: 'n'.repeat(STATSD_LIMITS.maxNameLength + 1) })),
    fc.anything(),
  )
  .filter((item) => isBad(item));

/** Whether the collector's item checks refuse `item` on its own. */
export function isBad(item: unknown): boolean {
  return checkBatchItems({ id: 'x', agent: 'x', seq: 0, start: 0, end: 0, metrics: [item], events: [], serviceChecks: [] }).errors.length === 1;
}
