import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkBatch } from '../../../../collector/ingest/logs.ts';
import { SeenEvents } from '../../../../collector/ingest/dedupe.ts';
import { LOG_EVENT_ID } from '../../../../shared/wire.ts';

const FILE_A = 'a'.repeat(32);
const FILE_B = 'b'.repeat(32);
const id = (file: string, offset: number) => file + offset.toString(16).padStart(12, '0');
const event = (over: Record<string, unknown> = {}) => ({ '@timestamp': '2026-11-24T10:00:00.000Z', message: 'hello', event: { id: id(FILE_A, 0) }, ...over });
const ndjson = (...events: unknown[]) => Buffer.from(events.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('\n') + '\n');

describe('checkBatch', () => {
  it('accepts one object per line, keeping each line’s bytes and id, and skipping blank lines', () => {
    const r = checkBatch(Buffer.from(`${JSON.stringify(event())}\r\n\n${JSON.stringify(event({ event: { id: 'other' } }))}`), 10);
    expect('error' in r).toBe(false);
    if ('error' in r) return;
    expect(r.ids).toEqual([id(FILE_A, 0), 'other']);
    expect(r.lines.map((l) => JSON.parse(l.toString()))).toEqual([event(), event({ event: { id: 'other' } })]);
  });

  it('reads each line as UTF-8 on its own: multi-byte text, a broken sequence at a line end, CRLF', () => {
    const good = (i: number, message: string) => Buffer.from(JSON.stringify(event({ message, event: { id: `e${i}` } })));
    const broken = Buffer.concat([Buffer.from('{"@timestamp":"2026-11-24T10:00:00Z","message":"cut '), Buffer.from([0xe2, 0x82])]);
    const body = Buffer.concat([good(1, 'caf\u00e9 \u20ac \u{1f600}'), Buffer.from('\r\n'), broken, Buffer.from('\n'), good(2, '\u65e5\u672c'), Buffer.from('\n')]);
    const r = checkBatch(body, 10);
    expect('error' in r).toBe(false);
    if ('error' in r) return;
    expect(r.ids).toEqual(['e1', 'e2']);
    expect(r.events.map((e) => e.message)).toEqual(['caf\u00e9 \u20ac \u{1f600}', '\u65e5\u672c']);
    expect(r.lines.map((l) => l.toString())).toEqual([good(1, 'caf\u00e9 \u20ac \u{1f600}').toString(), good(2, '\u65e5\u672c').toString()]);
    expect(r.errors.map((e) => [e.line, e.reason])).toEqual([[2, 'json']]);
  });

  it.each([
    ['not JSON', ndjson('{"broken"'), /line 1: not valid JSON/, 'json'],
    ['an array', ndjson('[1,2]'), /line 1: expected a JSON object/, 'not_object'],
    ['no timestamp', ndjson(event({ '@timestamp': undefined })), /line 1: "@timestamp" must be a date-time/, 'timestamp'],
    ['a bad timestamp', ndjson(event({ '@timestamp': 'yesterday' })), /"@timestamp" must be a date-time string.*"yesterday"/, 'timestamp'],
    ['a numeric message', ndjson(event({ message: 5 })), /line 1: "message" must be a string/, 'message'],
    ['no event id', ndjson('', event({ event: {} })), /line 2: "event.id" must be a non-empty string/, 'event_id'],
    ['an empty body', Buffer.from('\n\n'), /holds no events/, 'empty'],
  ])('refuses a batch holding nothing but %s, naming the line', (_name, body, message, reason) => {
    const r = checkBatch(body, 10);
    expect(r).toMatchObject({ reason });
    expect('error' in r && r.error).toMatch(message);
  });

  it('refuses a bad line on its own, naming it, and takes the others', () => {
    const r = checkBatch(ndjson(event(), '{"broken"', event({ event: { id: 'b' } }), event({ message: 5, event: { id: 'c' } })), 10);
    expect('error' in r).toBe(false);
    if ('error' in r) return;
    expect(r.ids).toEqual([id(FILE_A, 0), 'b']);
    expect(r.errors.map((e) => [e.line, e.reason])).toEqual([
      [2, 'json'],
      [4, 'message'],
    ]);
  });

  it('one bad line never changes what happens to the good lines of its batch (property)', () => {
    const good = fc.record({ message: fc.string({ maxLength: 30 }), n: fc.nat(10_000) }).map(({ message, n }) => event({ message, event: { id: `e-${n}` } }));
    const bad = fc.oneof(
      fc.constant('{"broken"'),
      fc.constant('[1]'),
      fc.string({ maxLength: 20 }).filter((t) => t.trim() !== '' && !t.includes('\n') && !t.includes('\r')).map((t) => JSON.stringify(t)),
      fc.constant(JSON.stringify(event({ '@timestamp': 'soon' }))),
      fc.constant(JSON.stringify(event({ message: null }))),
      fc.constant(JSON.stringify(event({ event: { id: '' } }))),
    );
    fc.assert(
      fc.property(fc.array(good, { minLength: 1, maxLength: 20 }), bad, fc.nat(), (goods, b, at) => {
        const alone = checkBatch(ndjson(...goods), 100);
        const lines: unknown[] = [...goods];
        const index = at % (lines.length + 1);
        lines.splice(index, 0, b);
        const mixed = checkBatch(ndjson(...lines), 100);
        if ('error' in alone || 'error' in mixed) throw new Error('a batch with good lines was refused whole');
        expect(mixed.ids).toEqual(alone.ids);
        expect(mixed.lines.map(String)).toEqual(alone.lines.map(String));
        expect(mixed.errors.map((e) => e.line)).toEqual([index + 1]);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses more events than the limit', () => {
    expect(checkBatch(ndjson(event(), event(), event()), 2)).toMatchObject({ reason: 'too_many' });
  });

  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        checkBatch(Buffer.from(bytes), 100);
      }),
    );
  });
});

describe('SeenEvents', () => {
  it('recognises agent ids by file and offset, in any order, and other ids as they are', () => {
    const seen = new SeenEvents(1000);
    for (const o of [0, 120, 60, 300, 240]) seen.add(id(FILE_A, o));
    seen.add(id(FILE_B, 60));
    seen.add('custom-1');
    for (const o of [0, 60, 120, 240, 300]) expect(seen.has(id(FILE_A, o))).toBe(true);
    expect(seen.has(id(FILE_A, 180))).toBe(false);
    expect(seen.has(id(FILE_B, 60))).toBe(true);
    expect(seen.has(id(FILE_B, 0))).toBe(false);
    expect(seen.has('custom-1')).toBe(true);
    expect(seen.has('custom-2')).toBe(false);
    seen.add(id(FILE_A, 60));
    expect(seen.size).toBe(7);
  });

  it('stays within its capacity, forgetting the files touched longest ago and their oldest offsets first', () => {
    const seen = new SeenEvents(100);
    for (let o = 0; o < 80; o++) seen.add(id(FILE_A, o * 10));
    for (let o = 0; o < 80; o++) seen.add(id(FILE_B, o * 10));
    expect(seen.size).toBeLessThanOrEqual(100);
    expect(seen.has(id(FILE_B, 790))).toBe(true);
    expect(seen.has(id(FILE_B, 0))).toBe(true);
    expect(seen.has(id(FILE_A, 0))).toBe(false);
  });

  it('matches a plain set of ids while within capacity (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(FILE_A, FILE_B), fc.nat(5000)), { maxLength: 300 }), fc.array(fc.tuple(fc.constantFrom(FILE_A, FILE_B), fc.nat(5000)), { maxLength: 50 }), (adds, probes) => {
        const seen = new SeenEvents(10_000);
        const model = new Set<string>();
        for (const [f, o] of adds) {
          seen.add(id(f, o));
          model.add(id(f, o));
        }
        expect(seen.size).toBe(model.size);
        for (const [f, o] of [...adds, ...probes]) expect(seen.has(id(f, o))).toBe(model.has(id(f, o)));
      }),
    );
  });

  it('answers, evicts and snapshots as a plain model of its rules does, whatever the order of ids (property)', () => {
    // the model: per file key its offsets ascending, files in the order last touched, other ids as a set
    class Model {
      files = new Map<string, number[]>();
      other = new Set<string>();
      total = 0;
      readonly capacity: number;
      constructor(capacity: number) {
        this.capacity = capacity;
      }
      has(id: string): boolean {
        if (!LOG_EVENT_ID.test(id)) return this.other.has(id);
        return this.files.get(id.slice(0, 32))?.includes(parseInt(id.slice(32), 16)) ?? false;
      }
      add(id: string): void {
        if (!LOG_EVENT_ID.test(id)) {
          if (this.other.has(id)) return;
          this.other.add(id);
          this.total++;
        } else {
          const key = id.slice(0, 32);
          const offset = parseInt(id.slice(32), 16);
          const f = this.files.get(key) ?? [];
          this.files.delete(key);
          this.files.set(key, f);
          if (!f.includes(offset)) {
            f.push(offset);
            f.sort((a, b) => a - b);
            this.total++;
          }
        }
        while (this.total > this.capacity) {
          const oldest = [...this.files][0];
          if (this.other.size > 0 && (oldest === undefined || this.other.size * 2 > this.total)) {
            this.other.delete([...this.other][0]);
            this.total--;
            continue;
          }
          const [key, f] = oldest;
          const drop = Math.max(1, Math.min(f.length, this.total - this.capacity, Math.ceil(f.length / 2)));
          f.splice(0, drop);
          this.total -= drop;
          if (f.length === 0) this.files.delete(key);
        }
      }
    }
    const FILE_C = 'c'.repeat(31) + '0';
    const anId = fc.oneof(
      { weight: 8, arbitrary: fc.tuple(fc.constantFrom(FILE_A, FILE_B, FILE_C), fc.nat(200)).map(([f, o]) => id(f, o)) },
      { weight: 1, arbitrary: fc.constantFrom('custom-1', 'custom-2', `${FILE_A.toUpperCase()}000000000001`, `${FILE_A}00000000001`, `${FILE_B}00000000000g`) },
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.array(fc.tuple(fc.boolean(), anId), { maxLength: 300 }), (capacity, ops) => {
        const seen = new SeenEvents(capacity);
        const model = new Model(capacity);
        for (const [add, x] of ops) {
          if (add) {
            seen.add(x);
            model.add(x);
          } else {
            expect(seen.has(x)).toBe(model.has(x));
          }
        }
        expect(seen.size).toBe(model.total);
        // the same files in the same order with the same offsets, and the same other ids
        const again = new SeenEvents(capacity);
        again.restore(seen.snapshot());
        for (const [f, offsets] of model.files) for (const o of offsets) expect(again.has(id(f, o))).toBe(true);
        const chunks = seen.snapshot();
        expect(chunks.filter((c) => c[0] === 0x46).map((c) => c.toString('latin1', 1, 33))).toEqual([...model.files.keys()]);
        expect(chunks.filter((c) => c[0] === 0x46).map((c) => (c.length - 33) / 8)).toEqual([...model.files.values()].map((f) => f.length));
        for (const o of model.other) expect(seen.has(o)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('remembers nothing with a capacity of 0', () => {
    const seen = new SeenEvents(0);
    seen.add(id(FILE_A, 1));
    expect(seen.has(id(FILE_A, 1))).toBe(false);
  });
});
