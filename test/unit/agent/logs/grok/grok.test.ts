import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileGrok, GrokPatternError, PatternLibrary } from '../../../../../agent/logs/grok/index.ts';

describe('grok captures', () => {
  it('names fields after %{SYNTAX:name}; %{SYNTAX} alone produces no field', () => {
    const g = compileGrok({ patterns: '%{WORD:verb} %{NOTSPACE} %{INT:status}' });
    expect(g.matchLine('GET /index.html 200')).toEqual({ verb: 'GET', status: '200' });
  });

  it('converts :int and :float like Logstash and leaves other suffixes as strings', () => {
    const g = compileGrok({ patterns: '%{NUMBER:a:int} %{NUMBER:b:float} %{NUMBER:c:string} %{NUMBER:d:int:extra} %{NUMBER:e}' });
    expect(g.matchLine('12.7 0.25 3 -4 5')).toEqual({ a: 12, b: 0.25, c: '3', d: -4, e: '5' });
  });

  it('nests [a][b] names', () => {
    const g = compileGrok({ patterns: '%{IP:[client][ip]}:%{POSINT:[client][port]:int} %{WORD:[http][method]} %{WORD:[plain]}' });
    expect(g.matchLine('10.1.2.3:5050 POST x')).toEqual({ client: { ip: '10.1.2.3', port: 5050 }, http: { method: 'POST' }, plain: 'x' });
    expect(g.fieldNames).toEqual(['client.ip', 'client.port', 'http.method', 'plain']);
  });

  it('collects a name captured twice into an array of the non-empty values', () => {
    const g = compileGrok({ patterns: '%{WORD:tag} (?:%{INT:tag}|-) %{WORD:tag}' });
    expect(g.matchLine('a 1 b')).toEqual({ tag: ['a', '1', 'b'] });
    expect(g.matchLine('a - b')).toEqual({ tag: ['a', 'b'] });
    const once = compileGrok({ patterns: '(?:%{INT:n}|%{WORD:n})' });
    expect(once.matchLine('abc')).toEqual({ n: 'abc' });
  });

  it('keeps captures from earlier iterations of a repeated group, as Oniguruma does', () => {
    const g = compileGrok({ patterns: '^%{WORD:w}(?: (?:a=%{INT:a}|b=%{INT:b}))*$' });
    expect(g.matchLine('x a=1 b=2')).toEqual({ w: 'x', a: '1', b: '2' });
    expect(g.matchLine('x b=2 a=1 a=3')).toEqual({ w: 'x', a: '3', b: '2' });
    expect(g.matchLine('x')).toEqual({ w: 'x' });
  });

  it('takes Oniguruma named groups (?<name>…) as fields', () => {
    const g = compileGrok({ patterns: '(?<queue_id>[0-9A-F]{10,11}): %{GREEDYDATA:rest}' });
    expect(g.matchLine('BEF25A72965: message-id=<x@y>')).toEqual({ queue_id: 'BEF25A72965', rest: 'message-id=<x@y>' });
  });

  it('leaves out captures that did not take part or matched nothing, unless asked to keep empty ones', () => {
    const expr = 'a(?<x>b)?c%{DATA:empty}$';
    expect(compileGrok({ patterns: expr }).matchLine('ac')).toEqual({});
    expect(compileGrok({ patterns: expr, keepEmptyCaptures: true }).matchLine('ac')).toEqual({ empty: '' });
  });

  it('matches anywhere in the line, like Logstash (unanchored)', () => {
    const g = compileGrok({ patterns: '%{INT:n}' });
    expect(g.matchLine('abc 42 def')).toEqual({ n: '42' });
    expect(compileGrok({ patterns: '^%{INT:n}' }).matchLine('abc 42')).toBeNull();
  });

  it('tries several expressions in order; the first that matches wins', () => {
    const g = compileGrok({ patterns: ['^%{INT:num}$', '^%{WORD:word}$', '%{GREEDYDATA:rest}'] });
    expect(g.matchLine('42')).toEqual({ num: '42' });
    expect(g.matchLine('abc')).toEqual({ word: 'abc' });
    expect(g.matchLine('a b')).toEqual({ rest: 'a b' });
    expect(g.matchIndex('abc')).toBe(1);
    expect(compileGrok({ patterns: ['^x$', '^y$'] }).matchLine('z')).toBeNull();
  });

  it('takes inline definitions, %{NAME:field=expr} and (?m) for multi-line events', () => {
    const g = compileGrok({ patterns: '%{QUEUE:q} %{FLAG:f=[A-Z]{2}}', definitions: { QUEUE: '[0-9A-F]{4}' } });
    expect(g.matchLine('BEEF XY')).toEqual({ q: 'BEEF', f: 'XY' });
    const m = compileGrok({ patterns: '(?m)^%{WORD:first}.*^%{WORD:last}$' });
    expect(m.matchLine('one\ntwo\nthree')).toEqual({ first: 'one', last: 'three' });
  });

  it('reuses one compiled expression for every line', () => {
    const g = compileGrok({ patterns: '%{IP:ip}' });
    const re = g.regexes[0];
    g.matchLine('1.2.3.4');
    g.matchLine('nothing');
    expect(g.regexes[0]).toBe(re);
    expect(g.matchLine('5.6.7.8')).toEqual({ ip: '5.6.7.8' });
  });
});

describe('grok over a chunk of lines', () => {
  it('splits on \\n, drops a \\r before it, keeps a last unterminated line and reports byte offsets', () => {
    const g = compileGrok({ patterns: '^%{WORD:w} %{INT:n:int}$' });
    const text = 'ä 1\r\nfoo 2\nnot a match\n\nbar 3';
    const chunk = Buffer.from(text, 'utf8');
    const r = g.matchChunk(chunk);
    expect(r.lines).toEqual(['ä 1', 'foo 2', 'not a match', '', 'bar 3']);
    expect(r.fields).toEqual([null, { w: 'foo', n: 2 }, null, null, { w: 'bar', n: 3 }]);
    expect(r.matched).toBe(2);
    expect(r.offsets).toEqual([0, 6, 12, 24, 25]);
    for (let i = 0; i < r.lines.length; i++) {
      expect(chunk.subarray(r.offsets[i]).toString('utf8').startsWith(r.lines[i])).toBe(true);
    }
  });

  it('honours start and end and accepts a plain Uint8Array', () => {
    const g = compileGrok({ patterns: '%{INT:n}' });
    const bytes = new Uint8Array(Buffer.from('1\n2\n3\n'));
    const r = g.matchChunk(bytes, 2, 4);
    expect(r.lines).toEqual(['2']);
    expect(r.offsets).toEqual([2]);
    expect(r.fields).toEqual([{ n: '2' }]);
  });
});

describe('pattern files and libraries', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plumb-grok-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a directory of NAME expression files, comments and blanks skipped, later names winning', async () => {
    const pd = join(dir, 'ok');
    await mkdir(pd);
    await writeFile(join(pd, 'a-app'), '# my app\n\nAPP_ID [a-z]{3}-\\d+\r\nAPPLINE %{APP_ID:app_id} %{LOGLEVEL:level} %{GREEDYDATA:msg}\n');
    await writeFile(join(pd, 'b-override'), 'APP_ID [A-Z]{3}-\\d+\n');
    await writeFile(join(pd, '.hidden'), 'not a pattern file at all\n');
    const g = compileGrok({ patterns: '%{APPLINE}', patternsDir: pd });
    expect(g.matchLine('ABC-12 WARN disk almost full')).toEqual({ app_id: 'ABC-12', level: 'WARN', msg: 'disk almost full' });
    expect(g.matchLine('abc-12 WARN lower case no longer matches')).toBeNull();
  });

  it('keeps trailing spaces, which are part of an expression', () => {
    const lib = new PatternLibrary().loadText('TRAIL x \n');
    expect(lib.get('TRAIL')?.expression).toBe('x ');
  });

  it('reports a bad line with file and line number', async () => {
    const f = join(dir, 'bad-line');
    await writeFile(f, 'GOOD \\d+\nLONELY\n');
    expect(() => new PatternLibrary().loadPath(f)).toThrow(/bad-line:2.*NAME expression/);
  });

  it('rejects a bad regular expression at load, naming the pattern and where it is defined', async () => {
    const f = join(dir, 'bad-regex');
    await writeFile(f, 'FINE \\w+\nBROKEN (unclosed[\n');
    let err: unknown;
    try {
      compileGrok({ patterns: '%{FINE}', patternsDir: f });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GrokPatternError);
    expect((err as GrokPatternError).pattern).toBe('BROKEN');
    expect((err as GrokPatternError).code).toBe('PLUMB_ERR_GROK_PATTERN');
    expect((err as Error).message).toMatch(/grok pattern BROKEN \(.*bad-regex:2\) is not a valid regular expression/);
  });

  it('rejects a reference to an unknown pattern, naming both', () => {
    const lib = new PatternLibrary().define('OUTER', '%{INNER:x} y');
    expect(() => compileGrok({ patterns: '%{OUTER}', library: lib })).toThrow(/grok pattern OUTER.*refers to unknown pattern INNER/);
    expect(() => compileGrok({ patterns: '%{NOPE:x}' })).toThrow(/refers to unknown pattern NOPE/);
  });

  it('rejects a cycle, naming it', () => {
    const lib = new PatternLibrary().define('A', 'a%{B}').define('B', 'b%{C}').define('C', 'c%{A}');
    expect(() => compileGrok({ patterns: 'x%{A}', library: lib })).toThrow(/grok pattern A refers back to itself: A -> B -> C -> A/);
    const self = new PatternLibrary().define('SELF', '%{SELF}');
    expect(() => compileGrok({ patterns: '%{SELF}', library: self })).toThrow(/SELF -> SELF/);
  });

  it('rejects references nested deeper than the limit', () => {
    const lib = new PatternLibrary().define('P0', 'x');
    for (let i = 1; i <= 70; i++) lib.define(`P${i}`, `%{P${i - 1}}`);
    expect(() => compileGrok({ patterns: '%{P70}', library: lib })).toThrow(/nest deeper than 64 levels/);
    expect(compileGrok({ patterns: '%{P50:v}', library: lib }).matchLine('x')).toEqual({ v: 'x' });
  });

  it('rejects a malformed reference and a missing patterns path', () => {
    expect(() => compileGrok({ patterns: '%{WORD:a b}' })).toThrow(/malformed pattern reference/);
    expect(() => compileGrok({ patterns: '%{WORD}', patternsDir: join(dir, 'missing') })).toThrow(GrokPatternError);
  });

  it('does not let a library passed in be changed by definitions', () => {
    const lib = new PatternLibrary().define('X', 'x');
    compileGrok({ patterns: '%{Y}', library: lib, definitions: { Y: 'y' } });
    expect(lib.has('Y')).toBe(false);
  });
});

describe('robustness', () => {
  const groks = [
    compileGrok({ patterns: '%{COMBINEDAPACHELOG}' }),
    compileGrok({ patterns: ['%{SYSLOG5424LINE}', '%{SYSLOGLINE}', '%{HTTPD_ERRORLOG}'] }),
    compileGrok({ patterns: '(?m)%{TIMESTAMP_ISO8601:[a][b]:int} %{QS:q:float} %{IP:ip} %{URI:uri}' }),
  ];

  it('no line makes matching throw (arbitrary Unicode, control characters, lone surrogates)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (line) => {
        for (const g of groks) {
          const r = g.matchLine(line);
          expect(r === null || typeof r === 'object').toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('no chunk of bytes makes chunk matching throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const r = groks[1].matchChunk(bytes);
        expect(r.lines.length).toBe(r.fields.length);
      }),
      { numRuns: 200 },
    );
  });
});
