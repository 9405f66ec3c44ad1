import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startZipkinServer } from '../../helpers/zipkin-server.ts';
import { anySpan, goodSpan, interleave } from '../../helpers/zipkin-fuzz.ts';
import { runOtelApp, micros } from '../../helpers/otel-app.ts';
import { decodeSpanBatch, decodeSpans, spanBatchId, stripBom, type ZipkinSpan } from '../../../shared/zipkin.ts';

/** A client/server pair as a Brave-instrumented app reports it. */
const braveSpans = [
  {
    traceId: '5af7183fb1d4cf5f',
    parentId: '6b221d5bc9e6496c',
    id: '352bff9a74ca9ad2',
    kind: 'CLIENT',
    name: 'get /inventory',
    timestamp: 1_556_604_172_355_737,
    duration: 386,
    localEndpoint: { serviceName: 'frontend', ipv4: '192.168.99.1', port: 8081 },
    remoteEndpoint: { serviceName: 'inventory', ipv4: '172.19.0.2', port: 9000 },
    annotations: [{ timestamp: 1_556_604_172_355_800, value: 'wire send' }],
    tags: { 'http.method': 'GET', 'http.path': '/inventory' },
  },
  {
    traceId: '5af7183fb1d4cf5f',
    parentId: '6b221d5bc9e6496c',
    id: '352bff9a74ca9ad2',
    kind: 'SERVER',
    name: 'get /inventory',
    timestamp: 1_556_604_172_355_900,
    duration: 200,
    localEndpoint: { serviceName: 'inventory', ipv6: '2001:db8::c001' },
    shared: true,
    debug: false,
  },
];

function good(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { traceId: '463ac35c9f6413ad48485a3953bb6124', id: 'a2fb4a1d1a96d312', name: 'op', ...overrides };
}

/** The whole body's refusal, or else the first span left out. */
function errorOf(body: unknown): { error: string; reason: string } {
  const r = decodeSpans(body);
  if ('error' in r) return r;
  if (r.dropped.length === 0) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r.dropped[0];
}

describe('decodeSpans: good input', () => {
  it('accepts Zipkin v2 spans with every field and keeps them as sent', () => {
    const r = decodeSpans(structuredClone(braveSpans));
    // debug: false is absent, as Zipkin keeps only true
    const { debug: _debug, ...server } = braveSpans[1];
    expect(r).toEqual({ spans: [braveSpans[0], server], dropped: [] });
  });

  it('accepts an empty array', () => {
    expect(decodeSpans([])).toEqual({ spans: [], dropped: [] });
  });

  it('accepts what a real OpenTelemetry application sends through its Zipkin exporter', async () => {
    const zipkin = await startZipkinServer();
    const app = await runOtelApp(`${zipkin.url}/api/v2/spans`);
    try {
      await zipkin.waitForSpans(app.spans.length);
      const r = decodeSpans(zipkin.spans);
      if ('error' in r) throw new Error(r.error);
      expect(r.spans).toHaveLength(3);
      for (const recorded of app.spans) {
        const got = r.spans.find((s) => s.id === recorded.spanContext().spanId);
        expect(got?.traceId).toBe(recorded.spanContext().traceId);
        expect(got?.timestamp).toBe(micros(recorded.startTime));
      }
    } finally {
      await app.shutdown();
      await zipkin.stop();
    }
  });
});

describe('decodeSpans: normalisation as Zipkin does it', () => {
  const cases: [string, Record<string, unknown>, Partial<ZipkinSpan> | ((s: ZipkinSpan) => void)][] = [
    ['lowercases hex ids', { traceId: '463AC35C9F6413AD', id: 'A2FB4A1D1A96D312', parentId: 'ABCDEF0123456789' }, { traceId: '463ac35c9f6413ad', id: 'a2fb4a1d1a96d312', parentId: 'abcdef0123456789' }],
    ['left-pads short ids', { traceId: 'abc', id: '1', parentId: 'ff' }, { traceId: '0000000000000abc', id: '0000000000000001', parentId: '00000000000000ff' }],
    ['pads a trace id between 16 and 32 characters to 32', { traceId: '1463ac35c9f6413ad' }, { traceId: `${'0'.repeat(15)}1463ac35c9f6413ad` }],
    ['drops a zero high half of a 128-bit trace id', { traceId: '000000000000000048485a3953bb6124' }, { traceId: '48485a3953bb6124' }],
    ['drops an all-zero parentId', { parentId: '0000000000000000' }, (s) => expect(s).not.toHaveProperty('parentId')],
    ['drops a parentId equal to the id', { parentId: 'a2fb4a1d1a96d312' }, (s) => expect(s).not.toHaveProperty('parentId')],
    ['treats timestamp and duration 0 as absent', { timestamp: 0, duration: 0 }, (s) => (expect(s).not.toHaveProperty('timestamp'), expect(s).not.toHaveProperty('duration'))],
    ['rounds fractional microseconds', { timestamp: 1_600_000_000_123_456.25, duration: 12.6 }, { timestamp: 1_600_000_000_123_456, duration: 13 }],
    ['drops empty names and endpoints', { name: '', localEndpoint: { serviceName: '', port: 0 } }, (s) => (expect(s).not.toHaveProperty('name'), expect(s).not.toHaveProperty('localEndpoint'))],
    ['drops shared from client spans', { kind: 'CLIENT', shared: true }, (s) => expect(s).not.toHaveProperty('shared')],
    ['drops unknown fields', { extra: { deep: 1 }, localEndpoint: { serviceName: 'a', zone: 'x' } }, (s) => (expect(s).not.toHaveProperty('extra'), expect(s.localEndpoint).toEqual({ serviceName: 'a' }))],
    ['treats null optional fields as absent', { parentId: null, kind: null, name: null, tags: null, annotations: null, debug: null }, (s) => expect(Object.keys(s).sort()).toEqual(['id', 'traceId'])],
    ['keeps a "__proto__" tag as a tag', JSON.parse('{"tags":{"__proto__":"x","a":"b"}}') as Record<string, unknown>, (s) => expect(Object.entries(s.tags ?? {})).toEqual([['__proto__', 'x'], ['a', 'b']])],
    ['keeps the case of span and service names', { name: 'GET /Orders', localEndpoint: { serviceName: 'Checkout' } }, { name: 'GET /Orders', localEndpoint: { serviceName: 'Checkout' } }],
  ];
  it.each(cases)('%s', (_title, overrides, expected) => {
    const r = decodeSpans([good(overrides)]);
    if ('error' in r) throw new Error(r.error);
    const span = r.spans[0];
    if (typeof expected === 'function') expected(span);
    else expect(span).toMatchObject(expected);
  });
});

describe('decodeSpans: bad input is refused with what and where', () => {
  const cases: [string, unknown, string, string][] = [
    ['a JSON object instead of an array', { spans: [] }, 'not_array', 'spans: must be a JSON array of Zipkin v2 spans'],
    ['a string', 'hello', 'not_array', 'must be a JSON array'],
    ['a span that is not an object', [good(), 42], 'not_object', 'spans[1]: must be a JSON object'],
    ['a missing traceId', [{ id: 'a2fb4a1d1a96d312' }], 'trace_id', 'spans[0].traceId: required; must be 16 or 32 lower-hex characters'],
    ['a traceId of 33 characters', [good({ traceId: '1'.repeat(33) })], 'trace_id', 'spans[0].traceId: must be 16 or 32 lower-hex characters'],
    ['a traceId with non-hex characters', [good(), good(), good(), good({ traceId: 'zzzzzzzzzzzzzzzz' })], 'trace_id', 'spans[3].traceId: must be 16 or 32 lower-hex characters (got "zzzzzzzzzzzzzzzz")'],
    ['an all-zero traceId', [good({ traceId: '00000000000000000000000000000000' })], 'trace_id', 'spans[0].traceId: must not be all zeros'],
    ['a missing id', [{ traceId: '463ac35c9f6413ad' }], 'span_id', 'spans[0].id: required'],
    ['an id of 17 characters', [good({ id: 'a2fb4a1d1a96d3121' })], 'span_id', 'spans[0].id: must be 16 lower-hex characters'],
    ['an all-zero id', [good({ id: '0000000000000000' })], 'span_id', 'spans[0].id: must not be all zeros'],
    ['a parentId of 32 characters', [good({ parentId: 'a'.repeat(32) })], 'parent_id', 'spans[0].parentId: must be 16 lower-hex characters'],
    ['an unknown kind', [good({ kind: 'INTERNAL' })], 'kind', 'spans[0].kind: must be one of CLIENT, SERVER, PRODUCER, CONSUMER (got "INTERNAL")'],
    ['a duration of NaN-ish string', [good({ duration: 'NaN' })], 'duration', 'spans[0].duration: must be an integer number of microseconds'],
    ['a boolean name', [good({ name: true })], 'name', 'spans[0].name: must be a string'],
    ['a tag value that is an object', [good({ tags: { a: { b: 1 } } })], 'tags', 'spans[0].tags["a"]: must be a string (got object)'],
    ['an empty parentId', [good({ parentId: '' })], 'parent_id', 'spans[0].parentId: must be 16 lower-hex characters'],
    ['an endpoint that is a string', [good({ localEndpoint: 'frontend' })], 'endpoint', 'spans[0].localEndpoint: must be an object'],
    ['a port out of range', [good({ localEndpoint: { port: 70000 } })], 'endpoint', 'spans[0].localEndpoint.port: must be an integer up to 65535 (got 70000)'],
    ['annotations that are not an array', [good({ annotations: {} })], 'annotations', 'spans[0].annotations: must be an array'],
    ['an annotation without a value', [good({ annotations: [{ timestamp: 1 }] })], 'annotations', 'spans[0].annotations[0].value: required'],
    ['an annotation without a timestamp', [good({ annotations: [{ value: 'ws' }] })], 'annotations', 'spans[0].annotations[0].timestamp: required'],
    ['tags as an array', [good({ tags: ['a'] })], 'tags', 'spans[0].tags: must be an object of string values'],
    ['a null tag value', [good({ tags: { a: null } })], 'tags', 'spans[0].tags["a"]: must be a string (got null)'],
    ['debug as a string', [good({ debug: 'true' })], 'flags', 'spans[0].debug: must be true or false'],
  ];
  it.each(cases)('%s', (_title, body, reason, message) => {
    const r = errorOf(body);
    expect(r.reason).toBe(reason);
    expect(r.error).toContain(message);
  });

  it('refuses a huge body by span count, saying the limit', () => {
    const many = Array.from({ length: 11 }, () => good());
    const r = decodeSpans(many, { maxSpans: 10 });
    expect(r).toEqual({ reason: 'too_many_spans', error: 'spans: 11 spans in one body, at most 10 allowed; send smaller batches' });
  });

  it('keeps error messages short when the bad value is huge', () => {
    const r = errorOf([good({ traceId: 'x'.repeat(1_000_000) })]);
    expect(r.error.length).toBeLessThan(200);
  });

  it('never throws, whatever JSON it is given', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = decodeSpans(v);
        expect('spans' in r || 'error' in r).toBe(true);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.array(fc.dictionary(fc.constantFrom('traceId', 'id', 'parentId', 'kind', 'name', 'timestamp', 'duration', 'tags', 'localEndpoint', 'annotations', 'shared'), fc.jsonValue())), (v) => {
        const r = decodeSpans(v);
        expect('spans' in r || 'error' in r).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('normalising is idempotent', () => {
    const hex = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: min, maxLength: max }).filter((s) => /[1-9a-fA-F]/.test(s));
    fc.assert(
      fc.property(
        fc.record({ traceId: hex(1, 32), id: hex(1, 16), parentId: fc.option(hex(1, 16), { nil: undefined }), duration: fc.option(fc.nat(), { nil: undefined }), kind: fc.option(fc.constantFrom('CLIENT', 'SERVER'), { nil: undefined }), shared: fc.option(fc.boolean(), { nil: undefined }) }),
        (span) => {
          const once = decodeSpans([span]);
          if ('error' in once) throw new Error(once.error);
          expect(decodeSpans(structuredClone(once.spans))).toEqual(once);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('decodeSpanBatch', () => {
  it('accepts a batch and validates its spans', () => {
    const batch = { id: spanBatchId('host-1', 7), agent: 'host-1', seq: 7, spans: [good({ traceId: 'ABC' })] };
    const r = decodeSpanBatch(batch);
    if ('error' in r) throw new Error(r.error);
    expect(r.batch.id).toBe('host-1:traces:7');
    expect(r.batch.spans[0].traceId).toBe('0000000000000abc');
  });

  it.each([
    [[], 'body: must be a JSON object'],
    [{ agent: 'a', seq: 1, spans: [] }, 'id: must be a non-empty string'],
    [{ id: 'x', seq: 1, spans: [] }, 'agent: must be a non-empty string'],
    [{ id: 'x', agent: 'a', seq: -1, spans: [] }, 'seq: must be a non-negative integer'],
    [{ id: 'x', agent: 'a', seq: 1 }, 'spans: required'],
  ])('refuses %j', (body, message) => {
    const r = decodeSpanBatch(body);
    expect('error' in r && r.error).toContain(message);
  });

  it('leaves out a span it cannot use and keeps the rest of the batch', () => {
    const r = decodeSpanBatch({ id: 'x', agent: 'a', seq: 1, spans: [good(), good({ id: 'no' }), good({ id: 'b2fb4a1d1a96d312' })] });
    if ('error' in r) throw new Error(r.error);
    expect(r.batch.spans.map((s) => s.id)).toEqual(['a2fb4a1d1a96d312', 'b2fb4a1d1a96d312']);
    expect(r.dropped).toEqual([{ index: 1, reason: 'span_id', error: 'spans[1].id: must be 16 lower-hex characters (got "no")' }]);
  });
});

/**
 * What Zipkin's own server does with each input (zipkin2.internal.V2SpanReader, Span.Builder,
 * Endpoint.Builder and their tests in zipkin/src/test/java/zipkin2/codec/SpanBytesDecoderTest),
 * so that a client that works against Zipkin works against plumb.
 */
describe('decodeSpans: Zipkin acceptance cases', () => {
  const accepted: [string, Record<string, unknown>, (s: ZipkinSpan) => void][] = [
    ['a numeric tag value becomes its text', { tags: { 'http.status_code': 200, ratio: 0.5 } }, (s) => expect(s.tags).toEqual({ 'http.status_code': '200', ratio: '0.5' })],
    ['a boolean tag value becomes "true"/"false" (plumb; Zipkin refuses it)', { tags: { error: true, cached: false } }, (s) => expect(s.tags).toEqual({ error: 'true', cached: 'false' })],
    ['an empty annotation value is kept', { annotations: [{ timestamp: 1_700_000_000_000_000, value: '' }] }, (s) => expect(s.annotations).toEqual([{ timestamp: 1_700_000_000_000_000, value: '' }])],
    ['an annotation timestamp of 0 is kept', { annotations: [{ timestamp: 0, value: 'ws' }] }, (s) => expect(s.annotations).toEqual([{ timestamp: 0, value: 'ws' }])],
    ['a numeric annotation value becomes its text', { annotations: [{ timestamp: 5, value: 42 }] }, (s) => expect(s.annotations).toEqual([{ timestamp: 5, value: '42' }])],
    ['annotations are sorted by timestamp then value, duplicates dropped', { annotations: [{ timestamp: 9, value: 'b' }, { timestamp: 3, value: 'z' }, { timestamp: 9, value: 'a' }, { timestamp: 9, value: 'b' }] }, (s) => expect(s.annotations).toEqual([{ timestamp: 3, value: 'z' }, { timestamp: 9, value: 'a' }, { timestamp: 9, value: 'b' }])],
    ['a span timestamp of -1 means absent', { timestamp: -1, duration: -5 }, (s) => (expect(s).not.toHaveProperty('timestamp'), expect(s).not.toHaveProperty('duration'))],
    ['a quoted timestamp and duration are read as numbers', { timestamp: '1700000000000001', duration: '250' }, (s) => (expect(s.timestamp).toBe(1_700_000_000_000_001), expect(s.duration).toBe(250))],
    ['a quoted annotation timestamp is read as a number', { annotations: [{ timestamp: '17', value: 'x' }] }, (s) => expect(s.annotations).toEqual([{ timestamp: 17, value: 'x' }])],
    ['an invalid IPv4 is dropped, the rest of the endpoint kept', { remoteEndpoint: { serviceName: 'db', ipv4: '300.1.1.1', port: 5432 } }, (s) => expect(s.remoteEndpoint).toEqual({ serviceName: 'db', port: 5432 })],
    ['an invalid IPv6 is dropped', { remoteEndpoint: { serviceName: 'db', ipv6: 'fe80:::1' } }, (s) => expect(s.remoteEndpoint).toEqual({ serviceName: 'db' })],
    ['an endpoint with only an invalid address is absent', { remoteEndpoint: { ipv4: 'not-an-ip' } }, (s) => expect(s).not.toHaveProperty('remoteEndpoint')],
    ['a port of -1 is dropped', { localEndpoint: { serviceName: 'web', port: -1 } }, (s) => expect(s.localEndpoint).toEqual({ serviceName: 'web' })],
    ['a quoted port is read as a number', { localEndpoint: { serviceName: 'web', port: '8080' } }, (s) => expect(s.localEndpoint).toEqual({ serviceName: 'web', port: 8080 })],
    ['an IPv4-mapped IPv6 address is stored as ipv4', { localEndpoint: { ipv6: '::ffff:10.1.2.3' } }, (s) => expect(s.localEndpoint).toEqual({ ipv4: '10.1.2.3' })],
    ['an IPv6 address is written in its canonical form', { localEndpoint: { ipv6: '2001:DB8:0:0:0:0:0:1' } }, (s) => expect(s.localEndpoint).toEqual({ ipv6: '2001:db8::1' })],
    ['an IPv6 address under ipv4 is stored as ipv6', { localEndpoint: { ipv4: '::1' } }, (s) => expect(s.localEndpoint).toEqual({ ipv6: '::1' })],
    ['a numeric name and service name become their text', { name: 404, localEndpoint: { serviceName: 7 } }, (s) => (expect(s.name).toBe('404'), expect(s.localEndpoint).toEqual({ serviceName: '7' }))],
    ['debug and shared false are absent', { kind: 'SERVER', debug: false, shared: false }, (s) => (expect(s).not.toHaveProperty('debug'), expect(s).not.toHaveProperty('shared'))],
    ['null endpoint fields are absent', { localEndpoint: { serviceName: null, ipv4: '127.0.0.1', ipv6: null, port: null } }, (s) => expect(s.localEndpoint).toEqual({ ipv4: '127.0.0.1' })],
    ['an endpoint of nulls is absent', { localEndpoint: { serviceName: null, ipv4: null, ipv6: null, port: null } }, (s) => expect(s).not.toHaveProperty('localEndpoint')],
  ];
  it.each(accepted)('%s', (_title, overrides, check) => {
    const r = decodeSpans([good(overrides)]);
    if ('error' in r) throw new Error(r.error);
    expect(r.dropped).toEqual([]);
    check(r.spans[0]);
  });

  const refused: [string, Record<string, unknown>, string][] = [
    ['a null tag value ("No value at $.tags.foo")', { tags: { foo: null } }, 'tags'],
    ['an annotation without a value ("Incomplete annotation")', { annotations: [{ timestamp: 1 }] }, 'annotations'],
    ['an annotation with a null timestamp', { annotations: [{ timestamp: null, value: 'foo' }] }, 'annotations'],
    ['a null traceId ("Expected a string but was NULL")', { traceId: null }, 'trace_id'],
    ['a null id', { id: null }, 'span_id'],
    ['a port above 65535 ("invalid port")', { localEndpoint: { port: 65536 } }, 'endpoint'],
    ['a kind Zipkin does not know', { kind: 'client' }, 'kind'],
    ['a traceId over 32 characters', { traceId: 'a'.repeat(33) }, 'trace_id'],
    ['an all-zero id', { id: '0' }, 'span_id'],
    ['debug that is not a boolean', { debug: 1 }, 'flags'],
  ];
  it.each(refused)('leaves out %s', (_title, overrides, reason) => {
    const r = decodeSpans([good({ id: '1' }), good(overrides)]);
    if ('error' in r) throw new Error(r.error);
    expect(r.spans.map((s) => s.id)).toEqual(['0000000000000001']);
    expect(r.dropped).toHaveLength(1);
    expect(r.dropped[0]).toMatchObject({ index: 1, reason });
  });

  it('skips a UTF-8 byte-order mark before the JSON', () => {
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify([good()]))]);
    const r = decodeSpans(JSON.parse(stripBom(body).toString('utf8')));
    expect('spans' in r && r.spans).toHaveLength(1);
    expect(stripBom(Buffer.from('[]')).toString()).toBe('[]');
  });
});

describe('decodeSpans: one bad span never changes what happens to the good ones', () => {
  it('decodes the good spans of a list the same way whatever is mixed in between them', () => {
    fc.assert(
      fc.property(fc.array(goodSpan, { minLength: 1, maxLength: 5 }), fc.array(anySpan, { maxLength: 5 }), fc.nat(), (goods, others, seed) => {
        const alone = decodeSpans(structuredClone(goods));
        if ('error' in alone) throw new Error(alone.error);
        const { mixed, goodAt } = interleave(goods, others, seed);
        const r = decodeSpans(mixed);
        if ('error' in r) throw new Error(r.error);
        const droppedAt = new Set(r.dropped.map((d) => d.index));
        for (const i of goodAt) expect(droppedAt.has(i)).toBe(false);
        expect(r.spans.length + r.dropped.length).toBe(mixed.length);
        // r.spans[n] came from the n-th item of mixed that was not dropped
        const keptAt = mixed.map((_m, j) => j).filter((j) => !droppedAt.has(j));
        expect(r.spans.filter((_s, n) => goodAt.includes(keptAt[n]))).toEqual(alone.spans);
      }),
      { numRuns: 300 },
    );
  });
});
