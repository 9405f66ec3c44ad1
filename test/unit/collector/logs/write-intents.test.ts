import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encodeGroup, forEachId, type StoredGroup } from '../../../../collector/logs/write-intents.ts';
import { LOG_EVENT_ID } from '../../../../shared/wire.ts';

const FILES = ['a'.repeat(32), 'b'.repeat(32), `${'0'.repeat(31)}1`];
const id = (file: string, offset: number) => file + offset.toString(16).padStart(12, '0');

/** The stored form as its definition reads: agent ids by file key (in order of first use) as offset deltas, others as they are. */
function reference(ids: readonly string[]): StoredGroup {
  const out: StoredGroup = { p: 'f', b: 0, a: 1 };
  const last = new Map<string, number>();
  for (const x of ids) {
    if (!LOG_EVENT_ID.test(x)) {
      (out.o ??= []).push(x);
      continue;
    }
    const key = x.slice(0, 32);
    const offset = parseInt(x.slice(32), 16);
    ((out.k ??= {})[key] ??= []).push(offset - (last.get(key) ?? 0));
    last.set(key, offset);
  }
  return out;
}

describe('write records: a group as stored', () => {
  it('holds the same bytes as its definition and gives back every id in order per file (property)', () => {
    const anId = fc.oneof(
      { weight: 10, arbitrary: fc.tuple(fc.constantFrom(...FILES), fc.nat(2 ** 40)).map(([f, o]) => id(f, o)) },
      { weight: 1, arbitrary: fc.constantFrom('custom', `${FILES[0]}00000000001`, `${FILES[1].toUpperCase()}000000000001`, `${FILES[2]}0000000000x1`) },
    );
    fc.assert(
      fc.property(fc.array(anId, { maxLength: 200 }), (ids) => {
        const stored = encodeGroup({ path: 'f', before: 0, after: 1, ids });
        expect(JSON.stringify(stored)).toBe(JSON.stringify(reference(ids)));
        const back: string[] = [];
        forEachId(stored, (x) => back.push(x));
        expect(back.sort()).toEqual([...ids].sort());
      }),
      { numRuns: 500 },
    );
  });
});
