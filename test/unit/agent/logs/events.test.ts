import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EventBuilder, IsoTime, packRecords, TAG_DATE_FAILURE, TAG_GROK_FAILURE, TAG_GROK_TIMEOUT, type ParseTask, type ParserSetup } from '../../../../agent/logs/events.ts';
import { eventId } from '../../../../agent/logs/tail/identity.ts';
import { NO_TAGS, type TailRecord } from '../../../../agent/logs/tail/record.ts';

const FILE_ID = '0123456789abcdef0123456789abcdef';
const NOW = Date.parse('2026-11-24T12:00:00.000Z');

function record(text: string, offset: number, extra: Partial<TailRecord> = {}): TailRecord {
  return {
    fileId: FILE_ID,
    path: '/var/log/app/app.log',
    input: 0,
    offset,
    endOffset: offset + Buffer.byteLength(text) + 1,
    text,
    truncated: false,
    stream: undefined,
    time: undefined,
    k8s: undefined,
    json: undefined,
    tags: NO_TAGS,
    fields: {},
    ...extra,
  };
}

type InputSetup = ParserSetup['inputs'][number];
function builder(inputs: Partial<InputSetup>[]): EventBuilder {
  return new EventBuilder({ inputs: inputs.map((i) => ({ definitions: {}, fields: {}, ...i })), patternsDirs: [], hostName: 'web-1' });
}

/** Parses records the way a parser thread does: packed, then built; returns the events. */
function parse(b: EventBuilder, records: TailRecord[], patch: Partial<ParseTask> = {}): Record<string, unknown>[] {
  const { task } = packRecords(records, NOW);
  const result = b.parse({ ...task, ...patch });
  const text = Buffer.from(result.ndjson).toString('utf8');
  expect(text.endsWith('\n')).toBe(true);
  const lines = text.slice(0, -1).split('\n');
  expect(lines).toHaveLength(records.length);
  expect(result.events).toBe(records.length);
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

const APACHE = '198.51.100.7 - alice [24/Nov/2026:10:15:02 +0100] "GET /cart?id=7 HTTP/1.1" 404 512 "https://shop.example/" "curl/8.5.0"';

describe('EventBuilder', () => {
  it('turns a matched line into an ECS-style event with the captures at the top level', () => {
    const b = builder([{ pattern: '%{COMBINEDAPACHELOG}', timestamp: { field: 'timestamp', format: 'dd/MMM/yyyy:HH:mm:ss Z' } }]);
    const [ev] = parse(b, [record(APACHE, 4096)]);
    expect(ev).toMatchObject({
      '@timestamp': '2026-11-24T09:15:02.000Z',
      message: APACHE,
      clientip: '198.51.100.7',
      auth: 'alice',
      verb: 'GET',
      request: '/cart?id=7',
      response: '404',
      bytes: '512',
      host: { name: 'web-1' },
      log: { file: { path: '/var/log/app/app.log' }, offset: 4096 },
      event: { id: eventId(FILE_ID, 4096) },
    });
    expect(ev.tags).toBeUndefined();
  });

  it('keeps a line nothing matched, tagged _grokparsefailure, timed at reading', () => {
    const b = builder([{ pattern: '%{COMBINEDAPACHELOG}' }]);
    const [ev] = parse(b, [record('not an access log line', 0)]);
    expect(ev).toMatchObject({ '@timestamp': new Date(NOW).toISOString(), message: 'not an access log line', tags: [TAG_GROK_FAILURE] });
  });

  it('tries several patterns in order and converts typed captures', () => {
    const b = builder([{ pattern: ['%{INT:code:int} %{WORD:word}', '%{NUMBER:ratio:float}%'] }]);
    const [a, c] = parse(b, [record('42 hello', 0), record('12.5%', 9)]);
    expect(a).toMatchObject({ code: 42, word: 'hello' });
    expect(c).toMatchObject({ ratio: 12.5 });
  });

  it('nests [a][b] names and uses inline definitions', () => {
    const b = builder([{ pattern: '%{PID_TAG:[process][pid]:int} %{GREEDYDATA:[rest]}', definitions: { PID_TAG: '\\d+' } }]);
    const [ev] = parse(b, [record('1234 the rest', 0)]);
    expect(ev).toMatchObject({ process: { pid: 1234 }, rest: 'the rest' });
  });

  it('lets a captured message replace the line, keeping the line in event.original', () => {
    const b = builder([{ pattern: '%{LOGLEVEL:level} %{GREEDYDATA:message}' }]);
    const [ev] = parse(b, [record('ERROR disk full', 0)]);
    expect(ev).toMatchObject({ message: 'disk full', level: 'ERROR', event: { id: eventId(FILE_ID, 0), original: 'ERROR disk full' } });
  });

  it('gives static fields the last word and never lets parsed fields replace plumb’s own', () => {
    const b = builder([{ pattern: '%{WORD:service} %{WORD:[host][name]} %{WORD:[event][id]}', fields: { service: 'checkout', env: 'prod' } }]);
    const [ev] = parse(b, [record('spoof evil fakeid', 10)]);
    expect(ev).toMatchObject({ service: 'checkout', env: 'prod', host: { name: 'web-1' }, event: { id: eventId(FILE_ID, 10) } });
  });

  it('tags an event whose timestamp field does not parse, and keeps it', () => {
    const b = builder([{ pattern: '%{NOTSPACE:ts} %{GREEDYDATA:msg}', timestamp: { field: 'ts', format: 'ISO8601' } }]);
    const [good, bad] = parse(b, [record('2026-11-24T08:00:00Z started', 0), record('yesterday started', 30)]);
    expect(good['@timestamp']).toBe('2026-11-24T08:00:00.000Z');
    expect(good.tags).toBeUndefined();
    expect(bad).toMatchObject({ '@timestamp': new Date(NOW).toISOString(), tags: [TAG_DATE_FAILURE], ts: 'yesterday' });
  });

  it('syslog days 1-9 written with two spaces ("Jul  1"): every line of a month dated by the list of formats, none failing', () => {
    // Loghub's Linux sample has this shape: "Jun  9 06:06:20 combo syslogd 1.4.1: restart."
    const b = builder([{ pattern: '%{SYSLOGLINE}', timestamp: { field: 'timestamp', format: ['MMM  d HH:mm:ss', 'MMM dd HH:mm:ss'], timezone: 'UTC' } }]);
    const records: TailRecord[] = [];
    const expected: string[] = [];
    let offset = 0;
    for (const [month, name] of [[6, 'Jul'], [8, 'Sep']] as const) {
      for (let day = 1; day <= 30; day++) {
        const text = `${name} ${String(day).padStart(2, ' ')} 04:0${day % 10}:1${day % 6} combo sshd(pam_unix)[${1000 + day}]: session opened for user n${day}`;
        records.push(record(text, offset));
        offset += text.length + 1;
        expected.push(new Date(Date.UTC(2026, month, day, 4, day % 10, 10 + (day % 6))).toISOString());
      }
    }
    const events = parse(b, records);
    expect(events.filter((e) => Array.isArray(e.tags))).toEqual([]);
    expect(events.map((e) => e['@timestamp'])).toEqual(expected);
    expect(events[0]).toMatchObject({ timestamp: 'Jul  1 04:01:11', logsource: 'combo', program: 'sshd(pam_unix)', pid: '1001' });
    // One format alone misses one of the two forms: the case the list is for.
    const single = builder([{ pattern: '%{SYSLOGLINE}', timestamp: { field: 'timestamp', format: 'MMM dd HH:mm:ss', timezone: 'UTC' } }]);
    expect(parse(single, records).filter((e) => Array.isArray(e.tags) && e.tags.includes(TAG_DATE_FAILURE))).toHaveLength(18);
  });

  it('uses the container runtime’s time and Kubernetes names for cri records, and flags truncation', () => {
    const b = builder([{}]);
    const [ev] = parse(b, [
      record('panic: oops', 0, {
        stream: 'stderr',
        time: '2026-11-24T07:59:59.123456789Z',
        k8s: { pod: 'api-7d9', namespace: 'shop', container: 'api', containerId: 'c'.repeat(64) },
        truncated: true,
      }),
    ]);
    expect(ev).toMatchObject({
      '@timestamp': '2026-11-24T07:59:59.123Z',
      message: 'panic: oops',
      stream: 'stderr',
      kubernetes: { pod: { name: 'api-7d9' }, namespace: 'shop', container: { name: 'api' } },
      container: { id: 'c'.repeat(64) },
      log: { flags: ['truncated'] },
    });
    expect(ev.tags).toBeUndefined();
  });

  it('merges a json line’s fields, its own @timestamp and tags, and keeps plumb’s keys', () => {
    const b = builder([{}]);
    const obj = { '@timestamp': '2026-11-24T06:00:00.5Z', message: 'user logged in', level: 'info', log: { level: 'info' }, tags: ['auth'], user: { id: 7 } };
    const line = JSON.stringify(obj);
    const [ev] = parse(b, [record(line, 0, { json: obj })]);
    expect(ev).toMatchObject({
      '@timestamp': '2026-11-24T06:00:00.500Z',
      message: 'user logged in',
      level: 'info',
      user: { id: 7 },
      log: { level: 'info', offset: 0, file: { path: '/var/log/app/app.log' } },
      tags: ['auth'],
      event: { original: line },
    });
  });

  it('keeps the problems the tailer found as tags', () => {
    const b = builder([{}]);
    const [ev] = parse(b, [record('{not json', 0, { tags: ['json_invalid'] })]);
    expect(ev).toMatchObject({ message: '{not json', tags: ['json_invalid'] });
  });

  it('marks every record of a task parsed after a timeout with _grokparsetimeout, without fields', () => {
    const b = builder([{ pattern: '%{WORD:w}' }]);
    const [ev] = parse(b, [record('hello', 0)], { timedOut: true });
    expect(ev).toMatchObject({ message: 'hello', tags: [TAG_GROK_TIMEOUT] });
    expect(ev.w).toBeUndefined();
  });

  it('carries multi-byte text and many records through one packed buffer unchanged', () => {
    const texts = ['grüße 👋', '', 'plain', '日本語のログ', 'x'.repeat(5000)];
    const b = builder([{}]);
    const events = parse(b, texts.map((t, i) => record(t, i * 10_000)));
    expect(events.map((e) => e.message)).toEqual(texts);
    expect(events.map((e) => (e.log as { offset: number }).offset)).toEqual([0, 10_000, 20_000, 30_000, 40_000]);
  });

  it('keeps each record’s file and offset when a task mixes files, and text wider than ASCII past any first guess of its size', () => {
    const files = [
      { fileId: 'a'.repeat(32), path: '/var/log/a.log' },
      { fileId: 'b'.repeat(32), path: '/var/log/b.log' },
      // the same file under the name it was rotated to, and the same path under another id: its successor
      { fileId: 'a'.repeat(32), path: '/var/log/a.log.1' },
      { fileId: 'c'.repeat(32), path: '/var/log/a.log' },
    ];
    const order = [0, 0, 1, 0, 2, 2, 3, 1, 0, 3];
    // three UTF-8 bytes per UTF-16 unit, then four per two, then one: the packed bytes outgrow the text's length
    const texts = order.map((f, i) => (i % 3 === 0 ? '日本語'.repeat(400 + i) : i % 3 === 1 ? `🙂 ${f}`.repeat(300) : `plain ${i}`));
    const records = order.map((f, i) => record(texts[i], 1000 * i, files[f]));
    const events = parse(builder([{}]), records);
    expect(events.map((e) => e.message)).toEqual(texts);
    expect(events.map((e) => (e.log as { file: { path: string } }).file.path)).toEqual(order.map((f) => files[f].path));
    expect(events.map((e) => (e.event as { id: string }).id)).toEqual(order.map((f, i) => eventId(files[f].fileId, 1000 * i)));
  });

  it('never throws and always yields one valid JSON line per record, whatever the text', () => {
    const b = builder([{ pattern: ['%{COMBINEDAPACHELOG}', '%{SYSLOGLINE}'], timestamp: { field: 'timestamp', format: 'dd/MMM/yyyy:HH:mm:ss Z' } }]);
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 300 }), { minLength: 1, maxLength: 20 }), (texts) => {
        const events = parse(b, texts.map((t, i) => record(t.replace(/\n/g, ' '), i * 1000)));
        expect(events.map((e) => e.message)).toEqual(texts.map((t) => t.replace(/\n/g, ' ')));
      }),
      { numRuns: 200 },
    );
  });
});

/** The NDJSON lines of a parsed task, as text. */
function ndjsonLines(b: EventBuilder, task: ParseTask): string[] {
  const text = Buffer.from(b.parse(task).ndjson).toString('utf8');
  return text.slice(0, -1).split('\n');
}

/**
 * Each record's event as the general path writes it (object + JSON.stringify), from its text as
 * the thread gets it: the task's UTF-8 decoded, cut by the UTF-16 lengths.
 */
function generalLines(b: EventBuilder, records: TailRecord[], now: number): string[] {
  const iso = new Date(now).toISOString();
  const { task } = packRecords(records, now);
  const text = Buffer.from(task.text).toString('utf8');
  const texts: string[] = [];
  for (let i = 0, pos = 0; i < task.lengths.length; pos += task.lengths[i++]) texts.push(text.slice(pos, pos + task.lengths[i]));
  return records.map((r, i) => b.event(r.input, texts[i], r.offset, r.fileId, r.path, r.truncated, r.stream !== undefined || r.tags.length > 0 ? { stream: r.stream, time: r.time, k8s: r.k8s, json: r.json, tags: r.tags } : null, iso, false).json);
}

describe('EventBuilder: grok lines written as text', () => {
  // Text with what JSON must escape: quotes, backslashes, control characters, lone surrogates, non-ASCII.
  const nasty = fc.string({ unit: fc.oneof(fc.constantFrom('"', '\\', '\t', '\u0001', '\u007f', '\u2028', '\ud800', '\udfff', 'é', '日', '👋', '/', ' ', '-'), fc.string({ unit: 'grapheme-ascii', maxLength: 3 })), maxLength: 40 });
  const word = fc.stringMatching(/^[A-Za-z0-9_]{1,8}$/);
  const stamp = fc.oneof(
    fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2040, 0, 1) }).map((ms) => {
      const d = new Date(ms);
      const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
      const p2 = (n: number): string => String(n).padStart(2, '0');
      return `${p2(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} +0000`;
    }),
    fc.constant('24/Nov/2026:10:15:02 +0100'),
    fc.constant('31/Feb/2026:10:15:02 +0000'),
  );
  const apache = fc.tuple(word, fc.option(word), stamp, word, nasty, fc.integer({ min: 100, max: 599 }), fc.option(fc.integer({ min: 0, max: 1e9 })), nasty, nasty).map(
    ([ip, user, ts, verb, req, status, bytes, ref, agent]) => `${ip} - ${user ?? '-'} [${ts}] "${verb} ${req.replace(/[\s"]/g, '_') || '/'} HTTP/1.1" ${status} ${bytes ?? '-'} "${ref.replace(/"/g, '\\"')}" "${agent.replace(/"/g, '\\"')}"`,
  );
  const path = fc.oneof(fc.constant('/var/log/app/app.log'), nasty.map((s) => `/var/log/${s}.log`));
  const recordArb = fc.record({
    text: fc.oneof(apache, apache, nasty, fc.tuple(apache, nasty).map(([a, b]) => `${a}\n${b}`), fc.constant('')),
    offset: fc.integer({ min: 0, max: 2 ** 52 }),
    path,
    truncated: fc.boolean(),
    tags: fc.oneof(fc.constant(NO_TAGS), fc.constant(['_utf8error'] as readonly string[])),
  });

  function check(b: EventBuilder, reference: EventBuilder, gen: fc.Arbitrary<{ text: string; offset: number; path: string; truncated: boolean; tags: readonly string[] }[]>, input = 0): void {
    fc.assert(
      fc.property(gen, (rs) => {
        const records = rs.map((r, i) => record(r.text, r.offset, { path: r.path, fileId: `${FILE_ID.slice(0, 31)}${i % 3}`, truncated: r.truncated, tags: r.tags, input }));
        const { task } = packRecords(records, NOW);
        expect(ndjsonLines(b, task)).toEqual(generalLines(reference, records, NOW));
      }),
      { numRuns: 300 },
    );
  }

  it('writes the same bytes as the event object through JSON.stringify for COMBINEDAPACHELOG with a date (property)', () => {
    const setup = { pattern: '%{COMBINEDAPACHELOG}', timestamp: { field: 'timestamp', format: 'dd/MMM/yyyy:HH:mm:ss Z' } };
    check(builder([setup]), builder([setup]), fc.array(recordArb, { minLength: 1, maxLength: 30 }));
  });

  it('writes the same bytes with typed, nested, repeated and missing captures, static fields and a nested timestamp (property)', () => {
    const setup = {
      pattern: ['^%{WORD:[a][b]}(?: %{INT:n:int})?(?: %{NUMBER:f:float})? %{WORD:w} %{WORD:w}(?: \\[%{DATA:[t][ts]}\\])?', '%{GREEDYDATA:rest}x$'],
      timestamp: { field: '[t][ts]', format: 'ISO8601' },
      fields: { env: 'prod "blue"', 'service.name': 'shop ✓' },
    };
    const line = fc.tuple(word, fc.option(fc.integer({ min: -1e6, max: 1e6 })), fc.option(fc.double({ noNaN: true, min: -1e6, max: 1e6 })), word, word, fc.option(fc.oneof(fc.constant('2026-11-24T10:15:02.123Z'), fc.constant('not a date'), nasty)), nasty).map(
      ([a, n, f, w1, w2, ts, tail]) => [a, n, f?.toString(), w1, w2].filter((x) => x !== null && x !== undefined).join(' ') + (ts === null ? '' : ` [${ts.replace(/]/g, '')}]`) + (tail.length % 2 === 0 ? '' : `\n${tail}x`),
    );
    const rec = fc.record({ text: fc.oneof(line, nasty), offset: fc.nat(), path, truncated: fc.boolean(), tags: fc.constant(NO_TAGS) });
    check(builder([setup]), builder([setup]), fc.array(rec, { minLength: 1, maxLength: 20 }));
  });

  it('keeps the general path for a captured message, plumb’s own keys, index-like names and static fields over captures', () => {
    const cases: Partial<InputSetup>[] = [
      { pattern: '%{WORD:verb} %{GREEDYDATA:message}' },
      { pattern: '%{WORD:host} %{GREEDYDATA:rest}' },
      { pattern: '%{WORD:[log][level]} %{GREEDYDATA:rest}' },
      { pattern: '%{WORD:0} %{GREEDYDATA:rest}' },
      { pattern: '%{WORD:tags} %{GREEDYDATA:rest}' },
      { pattern: '%{WORD:verb} %{GREEDYDATA:rest}', fields: { verb: 'static' } },
      { pattern: '%{WORD:verb} %{GREEDYDATA:rest}', fields: { 7: 'index' } },
    ];
    for (const c of cases) {
      const records = [record('GET /x y', 0), record('nothing', 10)];
      const { task } = packRecords(records, NOW);
      expect(ndjsonLines(builder([c]), task)).toEqual(generalLines(builder([c]), records, NOW));
    }
  });
});

describe('IsoTime', () => {
  it('formats as toISOString does, whatever the order of the times (property)', () => {
    const iso = new IsoTime();
    const ms = fc.oneof(fc.integer({ min: 0, max: 4e12 }), fc.integer({ min: -1e13, max: 3e14 }), fc.double({ min: -1e13, max: 3e14, noNaN: true }), fc.constantFrom(0, 999, 1000, Date.UTC(10000, 0, 1) - 1, Date.UTC(10000, 0, 1)));
    fc.assert(
      fc.property(fc.array(ms, { maxLength: 20 }), (times) => {
        for (const t of times) {
          expect(iso.format(t)).toBe(new Date(t).toISOString());
          expect(iso.format(t + 1)).toBe(new Date(t + 1).toISOString());
        }
      }),
    );
  });
});
