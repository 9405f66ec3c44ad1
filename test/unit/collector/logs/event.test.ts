import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { countEvents, normalizeTimestamp, readEventFields, splitEvents } from '../../../../collector/logs/event.ts';

const ID = '0123456789abcdef0123456789abcdef00000000abcd';

function line(o: unknown): Buffer {
  return Buffer.from(JSON.stringify(o));
}

describe('readEventFields', () => {
  it('reads event.id, @timestamp and host.name from an agent event', () => {
    const f = readEventFields(line({ '@timestamp': '2026-11-24T10:00:00.123Z', message: 'GET / 200', event: { id: ID }, host: { name: 'web-1' }, log: { file: { path: '/var/log/a.log' }, offset: 12 } }));
    expect(f).toEqual({ id: ID, timestamp: '2026-11-24T10:00:00.123Z', host: 'web-1' });
  });

  it('finds the fields wherever they are in the object and ignores nested look-alikes', () => {
    const f = readEventFields(line({ message: 'x', http: { event: { id: 'nested' }, host: { name: 'nested' } }, tags: ['a', { event: 1 }], host: { ip: '10.0.0.1', name: 'db-2' }, event: { kind: 'event', id: ID }, '@timestamp': '2026-01-02T03:04:05Z' }));
    expect(f).toEqual({ id: ID, timestamp: '2026-01-02T03:04:05Z', host: 'db-2' });
  });

  it('converts a timestamp with an offset to UTC, and refuses one that is not a time', () => {
    expect(readEventFields(line({ '@timestamp': '2026-11-24T01:30:00+02:00', event: { id: ID } })).timestamp).toBe('2026-11-23T23:30:00.000Z');
    expect(readEventFields(line({ '@timestamp': 'yesterday', event: { id: ID } })).timestamp).toBeUndefined();
    expect(normalizeTimestamp('2026-11-24T10:00:00.123456Z')).toBe('2026-11-24T10:00:00.123456Z');
  });

  it('reads escaped values through JSON.parse', () => {
    const f = readEventFields(Buffer.from('{"@timestamp":"2026-11-24T10:00:00Z","event":{"id":"a\\u0062c"},"host":{"name":"h\\"1"}}'));
    expect(f).toEqual({ id: 'abc', timestamp: '2026-11-24T10:00:00Z', host: 'h"1' });
  });

  it('gives nothing for a line that is not a JSON object', () => {
    expect(readEventFields(Buffer.from('not json'))).toEqual({ id: undefined, timestamp: undefined, host: undefined });
    expect(readEventFields(Buffer.from('[1,2]'))).toEqual({ id: undefined, timestamp: undefined, host: undefined });
  });

  it('agrees with JSON.parse on arbitrary objects', () => {
    const value = fc.jsonValue({ maxDepth: 3 });
    const event = fc.record(
      {
        '@timestamp': fc.oneof(fc.date({ min: new Date('1970-01-01'), max: new Date('2999-12-31'), noInvalidDate: true }).map((d) => d.toISOString()), fc.string()),
        event: fc.oneof(fc.record({ id: fc.string(), kind: value }, { requiredKeys: [] }), value),
        host: fc.oneof(fc.record({ name: fc.string(), ip: value }, { requiredKeys: [] }), value),
        message: fc.string(),
        extra: fc.dictionary(fc.string(), value, { maxKeys: 4 }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(event, fc.boolean(), (o, spaced) => {
        const text = spaced ? JSON.stringify(o, null, 1).replace(/\n/g, ' ') : JSON.stringify(o);
        const parsed = JSON.parse(text) as Record<string, unknown>;
        const f = readEventFields(Buffer.from(text));
        const ev = parsed.event as Record<string, unknown> | undefined;
        const host = parsed.host as Record<string, unknown> | undefined;
        const ts = parsed['@timestamp'];
        expect(f.id).toBe(ev !== null && typeof ev === 'object' && typeof ev.id === 'string' ? ev.id : undefined);
        expect(f.host).toBe(host !== null && typeof host === 'object' && typeof host.name === 'string' ? host.name : undefined);
        expect(f.timestamp).toBe(typeof ts === 'string' ? normalizeTimestamp(ts) : undefined);
      }),
      { numRuns: 500 },
    );
  });
});

describe('splitEvents', () => {
  it('keeps each line as sent and skips empty lines', () => {
    const a = '{"@timestamp":"2026-11-24T10:00:00Z","event":{"id":"a"},"message":"x"}';
    const b = '{"@timestamp":"2026-11-24T11:00:00Z","event":{"id":"b"},"host":{"name":"h"}}';
    const events = splitEvents(Buffer.from(`${a}\n\n${b}\r\n`));
    expect(events.map((e) => e.line.toString())).toEqual([a, b]);
    expect(events.map((e) => [e.id, e.timestamp, e.host])).toEqual([
      ['a', '2026-11-24T10:00:00Z', ''],
      ['b', '2026-11-24T11:00:00Z', 'h'],
    ]);
    expect(countEvents(Buffer.from(`${a}\n\n${b}\r\n`))).toBe(2);
  });

  it('dates an event without a usable @timestamp at the time of reading', () => {
    const [e] = splitEvents(Buffer.from('{"event":{"id":"a"}}\n'), [], Date.UTC(2026, 0, 2, 3, 4, 5));
    expect(e.timestamp).toBe('2026-01-02T03:04:05.000Z');
  });
});
