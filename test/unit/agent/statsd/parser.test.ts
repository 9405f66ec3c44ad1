import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseLineToJson, ALL_TAG_STYLES } from '../../../../agent/statsd/parser.ts';

const parse = (line: string | Buffer) => parseLineToJson(typeof line === 'string' ? Buffer.from(line) : line);
const metric = (line: string) => {
  const r = parse(line) as { ok: boolean; metrics?: Record<string, unknown>[]; error?: string };
  expect(r.ok, `${line}: ${r.error}`).toBe(true);
  return r.metrics![0];
};

describe('statsd line parsing', () => {
  it.each([
    ['page.views:1|c', { name: 'page.views', type: 'c', values: [1], sampleRate: 1, tags: [] }],
    ['page.views:1|c|#env:prod', { name: 'page.views', type: 'c', values: [1], tags: ['env:prod'] }],
    ['page.views:2.5|c|@0.1', { values: [2.5], sampleRate: 0.1 }],
    ['temp:-3.5e2|ms', { type: 'ms', values: [-350] }],
    ['fuel:12|g', { type: 'g', values: [12] }],
    ['req.size:512|h', { type: 'h', values: [512] }],
    ['latency:1:2:3|d', { type: 'd', values: [1, 2, 3] }],
    ['users:alice|s', { type: 's', values: ['alice'] }],
    ['users:a:b|s', { type: 's', values: ['a:b'] }],
    ['ts.metric:1|c|T1656581400', { timestamp: 1656581400 }],
    ['ctr.metric:1|c|c:abc123', { containerId: 'abc123' }],
    ['unknown.field:1|c|x:whatever|#a:b', { tags: ['a:b'] }],
    ['url:1|c|#url:http://x:8080/a', { tags: ['url:http://x:8080/a'] }],
    ['order:1|c|#b:2,a:1,b:2,flag', { tags: ['a:1', 'b:2', 'flag'] }],
    ['influx,region=eu,host=a:1|c', { name: 'influx', tags: ['host:a', 'region:eu'] }],
    ['librato#region=eu,host=a:1|c', { name: 'librato', tags: ['host:a', 'region:eu'] }],
    ['signalfx[region=eu,host=a]:1|c', { name: 'signalfx', tags: ['host:a', 'region:eu'] }],
    ['mixed,region=eu:1|c|#env:prod', { name: 'mixed', tags: ['env:prod', 'region:eu'] }],
    ['unicode.名前:1|c|#ключ:значение', { name: 'unicode.名前', tags: ['ключ:значение'] }],
  ])('%s', (line, expected) => {
    expect(metric(line)).toMatchObject(expected);
  });

  it('marks gauge deltas with a signed value', () => {
    expect(metric('fuel:+4|g')).toMatchObject({ values: [4], delta: true });
    expect(metric('fuel:-4|g')).toMatchObject({ values: [-4], delta: true });
    expect(metric('fuel:4|g')).not.toHaveProperty('delta');
  });

  it('gives the exact contract shape', () => {
    expect(parse('page.views:1|c|#env:prod')).toEqual({
      ok: true,
      metrics: [{ name: 'page.views', type: 'c', values: [1], sampleRate: 1, tags: ['env:prod'], timestamp: null, containerId: null }],
    });
  });

  it.each([
    ['no.value', 'no ":"'],
    ['a:1', 'no "|type"'],
    ['a:1|', 'no "|type"'],
    ['a:1|x', 'unknown metric type'],
    ['a:1|cc', 'unknown metric type'],
    [':1|c', 'name is empty'],
    ['a:|c', 'not a finite number'],
    ['a:abc|c', 'not a finite number'],
    ['a:0x10|c', 'not a finite number'],
    ['a:NaN|c', 'not a finite number'],
    ['a:Infinity|g', 'not a finite number'],
    ['a:1e400|c', 'not a finite number'],
    ['a:1::2|d', 'not a finite number'],
    ['a:1|c|@0', 'sample rate'],
    ['a:1|c|@1.5', 'sample rate'],
    ['a:1|c|@-0.5', 'sample rate'],
    ['a:1|c|@x', 'sample rate'],
    ['a:1|c|Tsoon', 'timestamp'],
    ['a[b=c:1|c', 'tag is malformed'],
    ['a,=v:1|c', 'tag is malformed'],
    ['a:1|c|#:v', 'tag is malformed'],
  ])('rejects %s', (line, message) => {
    const r = parse(line) as { ok: boolean; error: string };
    expect(r.ok).toBe(false);
    expect(r.error).toContain(message);
  });

  it('rejects invalid UTF-8 in names, tags and set members', () => {
    for (const bytes of [
      Buffer.concat([Buffer.from('bad'), Buffer.from([0xff, 0xfe]), Buffer.from(':1|c')]),
      Buffer.concat([Buffer.from('ok:1|c|#k:'), Buffer.from([0xc3, 0x28])]),
      Buffer.concat([Buffer.from('set:'), Buffer.from([0xe2, 0x82]), Buffer.from('|s')]),
    ]) {
      expect(parse(bytes)).toEqual({ ok: false, error: 'the line is not valid UTF-8' });
    }
  });

  it('lets tag styles be switched off', () => {
    const r = parseLineToJson(Buffer.from('influx,region=eu:1|c'), { ...ALL_TAG_STYLES, influx: false }) as { metrics: { name: string; tags: string[] }[] };
    expect(r.metrics[0]).toMatchObject({ name: 'influx,region=eu', tags: [] });
  });
});

describe('events and service checks', () => {
  it('parses an event with every field, lengths in UTF-8 bytes', () => {
    const title = 'Déploiement';
    const text = 'v2 → prod\\nsecond line';
    const line = `_e{${Buffer.byteLength(title)},${Buffer.byteLength(text)}}:${title}|${text}|d:1700000000|h:web-1|k:deploy|p:low|s:jenkins|t:success|#env:prod,team:a`;
    expect(parse(line)).toEqual({
      ok: true,
      event: {
        title,
        text: 'v2 → prod\nsecond line',
        timestamp: 1700000000,
        hostname: 'web-1',
        aggregationKey: 'deploy',
        priority: 'low',
        sourceType: 'jenkins',
        alertType: 'success',
        tags: ['env:prod', 'team:a'],
      },
    });
  });

  it('gives null for absent event fields', () => {
    expect(parse('_e{2,3}:hi|you')).toEqual({
      ok: true,
      event: { title: 'hi', text: 'you', timestamp: null, hostname: null, aggregationKey: null, priority: null, sourceType: null, alertType: null, tags: [] },
    });
  });

  it.each(['_e{5,3}:hi|you', '_e{2,30}:hi|you', '_e{x,3}:hi|you', '_e{2,3}hi|you', '_e{2,3}:hi|you|t:panic', '_e{0,3}:|you'])('rejects event %s', (line) => {
    expect(parse(line)).toMatchObject({ ok: false });
  });

  it('parses service checks, message last and allowed to hold pipes', () => {
    expect(parse('_sc|db.up|2|d:1700000000|h:db-1|#env:prod|m:connection refused | retrying')).toEqual({
      ok: true,
      serviceCheck: { name: 'db.up', status: 2, timestamp: 1700000000, hostname: 'db-1', tags: ['env:prod'], message: 'connection refused | retrying' },
    });
    expect(parse('_sc|ok|0')).toEqual({ ok: true, serviceCheck: { name: 'ok', status: 0, timestamp: null, hostname: null, tags: [], message: null } });
  });

  it.each(['_sc|db|5', '_sc||0', '_sc|db', '_sc|db|ok'])('rejects service check %s', (line) => {
    expect(parse(line)).toMatchObject({ ok: false });
  });
});

describe('robustness', () => {
  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const r = parseLineToJson(Buffer.from(bytes));
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws on statsd-shaped text', () => {
    const piece = fc.constantFrom('a', 'b.c', ':', '|', '#', ',', '=', '[', ']', '@', '0.5', '1', '-', '+', 'c', 'ms', 'g', 's', 'd', 'h', 'T', '_e{', '}', '_sc', 'é', '\u0000', ' ');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (parts) => {
        const r = parseLineToJson(Buffer.from(parts.join('')));
        expect(typeof r.ok).toBe('boolean');
        if (r.ok && 'metrics' in r) {
          for (const v of (r.metrics as { values: unknown[] }[])[0].values) expect(typeof v === 'string' || Number.isFinite(v)).toBe(true);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
