import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LOG_EVENT_ID, logEventOffset } from '../../../shared/wire.ts';

const HEX = '0123456789abcdef';
/** Strings near an agent id: its length ± 1, hex digits with now and then a character that is not one. */
const nearIds = fc
  .tuple(fc.integer({ min: 42, max: 46 }), fc.array(fc.constantFrom(...HEX, ...HEX, ...HEX, 'A', 'F', 'g', 'x', '-', ' ', '\n', '\u0660', '\uff10'), { minLength: 46, maxLength: 46 }))
  .map(([n, chars]) => chars.slice(0, n).join(''));
const fileKeys = fc.string({ unit: fc.constantFrom(...HEX), minLength: 32, maxLength: 32 });
const ids = fc.oneof(nearIds, fc.string(), fc.tuple(fileKeys, fc.bigInt({ min: 0n, max: 2n ** 48n - 1n })).map(([f, o]) => f + o.toString(16).padStart(12, '0')));

describe('logEventOffset', () => {
  it('decides what LOG_EVENT_ID and parseInt of the last 12 digits decide (property)', () => {
    fc.assert(
      fc.property(ids, (id) => {
        expect(logEventOffset(id)).toBe(LOG_EVENT_ID.test(id) ? parseInt(id.slice(32), 16) : -1);
      }),
      { numRuns: 2000 },
    );
  });

  it('with the file key known to be hex, looks at the offset digits alone', () => {
    fc.assert(
      fc.property(fileKeys, nearIds, (file, rest) => {
        const id = file + rest.slice(0, 12);
        expect(logEventOffset(id, true)).toBe(LOG_EVENT_ID.test(id) ? parseInt(id.slice(32), 16) : -1);
      }),
    );
  });

  it('reads the largest offset exactly', () => {
    expect(logEventOffset(`${'f'.repeat(32)}ffffffffffff`)).toBe(2 ** 48 - 1);
    expect(logEventOffset(`${'0'.repeat(32)}000000000000`)).toBe(0);
  });
});
