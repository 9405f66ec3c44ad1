/**
 * Arbitraries for property tests of the Zipkin decoder and the doors that use it: good spans,
 * anything at all in a span's place, and a deterministic interleaving of the two.
 */
import fc from 'fast-check';

const hex = (length: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length }).filter((s) => /[1-9a-f]/.test(s));

/** A span any Zipkin server takes. */
export const goodSpan = fc.record({
  traceId: hex(16),
  id: hex(16),
  name: fc.string({ maxLength: 8 }),
  timestamp: fc.integer({ min: 1, max: 2 ** 52 }),
  tags: fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
});

const FIELDS = ['traceId', 'id', 'parentId', 'kind', 'name', 'timestamp', 'duration', 'tags', 'localEndpoint', 'remoteEndpoint', 'annotations', 'debug', 'shared'] as const;

/** Any JSON value, or a good span with one field replaced by any JSON value. */
export const anySpan: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue(),
  fc.tuple(goodSpan, fc.constantFrom(...FIELDS), fc.jsonValue()).map(([s, k, v]) => ({ ...s, [k]: v })),
);

/** goods and others interleaved in an order drawn from seed; goodAt lists where the goods went. */
export function interleave(goods: readonly unknown[], others: readonly unknown[], seed: number): { mixed: unknown[]; goodAt: number[] } {
  const mixed: unknown[] = [];
  const goodAt: number[] = [];
  let g = 0;
  let o = 0;
  let k = seed;
  while (g < goods.length || o < others.length) {
    const takeGood = o >= others.length || (g < goods.length && (k & 1) === 0);
    k = Math.floor(k / 2) + 7;
    if (takeGood) {
      goodAt.push(mixed.length);
      mixed.push(structuredClone(goods[g++]));
    } else {
      mixed.push(structuredClone(others[o++]));
    }
  }
  return { mixed, goodAt };
}
