import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startZipkinServer } from '../../helpers/zipkin-server.ts';
import { runOtelApp, micros } from '../../helpers/otel-app.ts';
import { spanBatchId, validateSpanBatch, validateSpans, type ZipkinSpan } from '../../../shared/zipkin.ts';

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

function errorOf(body: unknown): { error: string; reason: string } {
  const r = validateSpans(body);
  if (!('error' in r)) throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r;
}

describe('validateSpans: good input', () => {
  it('accepts Zipkin v2 spans with every field and keeps them as sent', () => {
    const r = validateSpans(structuredClone(braveSpans));
    expect(r).toEqual({ spans: braveSpans });
  });

  it('accepts an empty array', () => {
    expect(validateSpans([])).toEqual({ spans: [] });
  });

  it('accepts what a real OpenTelemetry application sends through its Zipkin exporter', async () => {
    const zipkin = await startZipkinServer();
    const app = await runOtelApp(`${zipkin.url}/api/v2/spans`);
    try {
      await zipkin.waitForSpans(app.spans.length);
      const r = validateSpans(zipkin.spans);
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

describe('validateSpans: normalisation as Zipkin does it', () => {
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
    const r = validateSpans([good(overrides)]);
    if ('error' in r) throw new Error(r.error);
    const span = r.spans[0];
    if (typeof expected === 'function') expected(span);
    else expect(span).toMatchObject(expected);
  });
});

describe('validateSpans: bad input is refused with what and where', () => {
  const cases: [string, unknown, string, string][] = [
    ['a JSON object instead of an array', { spans: [] }, 'not_array', 'spans: must be a JSON array of Zipkin v2 spans'],
    ['a string', 'hello', 'not_array', 'must be a JSON array'],
    ['a span that is not an object', [good(), 42], 'not_object', 'spans[1]: must be a JSON object'],
    ['a missing traceId', [{ id: 'a2fb4a1d1a96d312' }], 'trace_id', 'spans[0].traceId: required; must be 16 or 32 lower-hex characters'],
    ['a traceId of 33 characters', [good({ traceId: '1'.repeat(33) })], 'trace_id', 'spans[0].traceId: must be 16 or 32 lower-hex characters'],
    ['a traceId with non-hex characters', [good(), good(), good(), good({ traceId: 'zzzzzzzzzzzzzzzz' })], 'trace_id', 'spans[3].traceId: must be 16 or 32 lower-hex characters (got "zzzzzzzzzzzzzzzz")'],
    ['a numeric traceId', [good({ traceId: 1234 })], 'trace_id', 'spans[0].traceId: must be 16 or 32'],
    ['an all-zero traceId', [good({ traceId: '00000000000000000000000000000000' })], 'trace_id', 'spans[0].traceId: must not be all zeros'],
    ['a missing id', [{ traceId: '463ac35c9f6413ad' }], 'span_id', 'spans[0].id: required'],
    ['an id of 17 characters', [good({ id: 'a2fb4a1d1a96d3121' })], 'span_id', 'spans[0].id: must be 16 lower-hex characters'],
    ['an all-zero id', [good({ id: '0000000000000000' })], 'span_id', 'spans[0].id: must not be all zeros'],
    ['a parentId of 32 characters', [good({ parentId: 'a'.repeat(32) })], 'parent_id', 'spans[0].parentId: must be 16 lower-hex characters'],
    ['an unknown kind', [good({ kind: 'INTERNAL' })], 'kind', 'spans[0].kind: must be one of CLIENT, SERVER, PRODUCER, CONSUMER (got "INTERNAL")'],
    ['a numeric name', [good({ name: 7 })], 'name', 'spans[0].name: must be a string'],
    ['a negative timestamp', [good({ timestamp: -1 })], 'timestamp', 'spans[0].timestamp: must be a non-negative integer number of microseconds (got -1)'],
    ['a timestamp as a string', [good({ timestamp: '1700000000000000' })], 'timestamp', 'spans[0].timestamp: must be a non-negative'],
    ['a duration of NaN-ish string', [good({ duration: 'NaN' })], 'duration', 'spans[0].duration: must be a non-negative'],
    ['an endpoint that is a string', [good({ localEndpoint: 'frontend' })], 'endpoint', 'spans[0].localEndpoint: must be an object'],
    ['a bad ipv4', [good({ remoteEndpoint: { ipv4: '300.1.1.1' } })], 'endpoint', 'spans[0].remoteEndpoint.ipv4: must be an IPv4 address'],
    ['a bad ipv6', [good({ remoteEndpoint: { ipv6: 'fe80:::1' } })], 'endpoint', 'spans[0].remoteEndpoint.ipv6: must be an IPv6 address'],
    ['a port out of range', [good({ localEndpoint: { port: 70000 } })], 'endpoint', 'spans[0].localEndpoint.port: must be an integer from 0 to 65535 (got 70000)'],
    ['annotations that are not an array', [good({ annotations: {} })], 'annotations', 'spans[0].annotations: must be an array'],
    ['an annotation without a value', [good({ annotations: [{ timestamp: 1 }] })], 'annotations', 'spans[0].annotations[0].value: must be a non-empty string'],
    ['an annotation without a timestamp', [good({ annotations: [{ value: 'ws' }] })], 'annotations', 'spans[0].annotations[0].timestamp: must be a positive integer'],
    ['tags as an array', [good({ tags: ['a'] })], 'tags', 'spans[0].tags: must be an object of string values'],
    ['a numeric tag value', [good({ tags: { 'http.status_code': 200 } })], 'tags', 'spans[0].tags["http.status_code"]: must be a string (got number)'],
    ['a boolean tag value', [good({ tags: { error: true } })], 'tags', 'spans[0].tags["error"]: must be a string (got boolean)'],
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
    const r = validateSpans(many, { maxSpans: 10 });
    expect(r).toEqual({ reason: 'too_many_spans', error: 'spans: 11 spans in one body, at most 10 allowed; send smaller batches' });
  });

  it('keeps error messages short when the bad value is huge', () => {
    const r = errorOf([good({ traceId: 'x'.repeat(1_000_000) })]);
    expect(r.error.length).toBeLessThan(200);
  });

  it('never throws, whatever JSON it is given', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = validateSpans(v);
        expect('spans' in r || 'error' in r).toBe(true);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.array(fc.dictionary(fc.constantFrom('traceId', 'id', 'parentId', 'kind', 'name', 'timestamp', 'duration', 'tags', 'localEndpoint', 'annotations', 'shared'), fc.jsonValue())), (v) => {
        const r = validateSpans(v);
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
          const once = validateSpans([span]);
          if ('error' in once) throw new Error(once.error);
          expect(validateSpans(structuredClone(once.spans))).toEqual(once);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('validateSpanBatch', () => {
  it('accepts a batch and validates its spans', () => {
    const batch = { id: spanBatchId('host-1', 7), agent: 'host-1', seq: 7, spans: [good({ traceId: 'ABC' })] };
    const r = validateSpanBatch(batch);
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
    [{ id: 'x', agent: 'a', seq: 1, spans: [good({ id: 'no' })] }, 'spans[0].id: must be 16 lower-hex characters'],
  ])('refuses %j', (body, message) => {
    const r = validateSpanBatch(body);
    expect('error' in r && r.error).toContain(message);
  });
});
