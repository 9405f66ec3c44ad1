/**
 * The wire decoder of OTLP trace requests (shared/otlp/traces-wire.ts) against the message-object
 * path it replaces for protobuf bodies (protobufjs decode + otlpToSpans): the same spans, field for
 * field and in the same key order, for generated requests covering every attribute value kind,
 * events, links, status, trace state, dropped counts, several resources and scopes, and fields
 * the definitions do not know; the same verdict on every truncation and on corrupted bodies,
 * where the only error thrown is UndecodableError.
 */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { decodeProtobuf, encodeRequest, UndecodableError } from '../../../shared/otlp/codec.ts';
import { otlpToSpans, type ExportTraceServiceRequest, type SpansDecoded } from '../../../shared/otlp/traces.ts';
import { decodeTraceRequest } from '../../../shared/otlp/traces-wire.ts';
import { seededRandom } from '../../helpers/random.ts';

/** The path the wire decoder replaces, with the same error class for undecodable bodies. */
function reference(body: Uint8Array): SpansDecoded {
  return otlpToSpans(decodeProtobuf<ExportTraceServiceRequest>('traces', body));
}

type Outcome = { ok: true; json: string } | { ok: false };

function outcome(decode: (b: Uint8Array) => SpansDecoded, body: Uint8Array): Outcome {
  try {
    return { ok: true, json: JSON.stringify(decode(body)) };
  } catch (err) {
    expect(err).toBeInstanceOf(UndecodableError);
    return { ok: false };
  }
}

// ---- a later version of the definitions: every message has fields this one does not know ----

const COMMON = 'opentelemetry.proto.common.v1.';
const TRACE = 'opentelemetry.proto.trace.v1.';
const EXTENDED = [
  'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest',
  `${TRACE}ResourceSpans`,
  'opentelemetry.proto.resource.v1.Resource',
  `${TRACE}ScopeSpans`,
  `${COMMON}InstrumentationScope`,
  `${TRACE}Span`,
  `${TRACE}Span.Event`,
  `${TRACE}Span.Link`,
  `${TRACE}Status`,
  `${COMMON}KeyValue`,
  `${COMMON}AnyValue`,
  `${COMMON}ArrayValue`,
  `${COMMON}KeyValueList`,
];

const future = (() => {
  const dir = join(import.meta.dirname, '..', '..', '..', 'shared', 'otlp', 'proto');
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(dir, target);
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto');
  for (const name of EXTENDED) {
    const t = root.lookupType(name);
    t.add(new protobuf.Field('futureString', 901, 'string'));
    t.add(new protobuf.Field('futureVarint', 902, 'uint64'));
    t.add(new protobuf.Field('futureFixed64', 903, 'fixed64'));
    t.add(new protobuf.Field('futureFixed32', 904, 'fixed32'));
    t.add(new protobuf.Field('futureMessage', 905, `.${COMMON}KeyValue`));
  }
  root.resolveAll();
  return root.lookupType(EXTENDED[0]);
})();

// ---- generated requests ----

class Gen {
  readonly r: () => number;
  constructor(seed: number) {
    this.r = seededRandom(seed); // the same requests on every run
  }
  int(n: number): number {
    return Math.floor(this.r() * n);
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  str(): string {
    return this.pick(['', 'a', 'GET /api/orders/{id}', 'db-1', 'café', 'ünïcödé ✓', '😀 emoji', 'x'.repeat(70), 'é'.repeat(40), 'false', 'true', '10.1.2.3', '::1', '8080', '"quoted"\n']);
  }
  key(): string {
    return this.pick(['http.route', 'db.system', 'error', 'peer.service', 'server.address', 'net.peer.name', 'network.peer.address', 'network.peer.port', 'db.name', 'service.name', 'app.shard', '__proto__', '', 'k', 'ключ', 'plumb.zipkin']);
  }
  nanos(): string {
    return this.pick(['0', '1', '999', '1000', '1234567', `${BigInt(Date.UTC(2026, 11, 7)) * 1_000_000n + BigInt(this.int(1e9))}`, '18446744073709551615', '9007199254740993000', `${2n ** 32n * 1000n + 123n}`]);
  }
  anyValue(depth: number): Record<string, unknown> {
    switch (this.int(depth > 2 ? 6 : 9)) {
      case 0:
        return { stringValue: this.str() };
      case 1:
        return { boolValue: this.chance(0.5) };
      case 2:
        return { intValue: this.pick(['0', '1', '-1', '42', '9007199254740991', '9007199254740992', '9007199254740993', '-9007199254740993', '9223372036854775807', '-9223372036854775808', '1234567890123456789']) };
      case 3:
        return { doubleValue: this.pick([0, -0, 1.5, -2.25, 1e21, 1e-7, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.1 + 0.2]) };
      case 4:
        return { bytesValue: this.bytes(this.int(6)) };
      case 5:
        return {};
      case 6:
      case 7:
        return { arrayValue: { values: Array.from({ length: this.int(4) }, () => this.anyValue(depth + 1)) } };
      default:
        return { kvlistValue: { values: this.attributes(depth + 1, 4) } };
    }
  }
  attributes(depth: number, max: number): Record<string, unknown>[] {
    return Array.from({ length: this.int(max + 1) }, () => {
      const key = this.key();
      if (key === 'plumb.zipkin' && depth === 0) return { key, value: { stringValue: this.pick(['{"u":true}', '{"l":{"ipv4":"10.0.0.1","port":80},"r":null,"d":true,"s":true,"t":["otel.status_code"],"p":true}', 'not json', '[1]']) } };
      if (key === 'network.peer.address' && this.chance(0.5)) return { key, value: { stringValue: this.pick(['10.1.2.3', '::1', 'host-a']) } };
      if (key === 'network.peer.port' && this.chance(0.5)) return { key, value: { intValue: this.pick([443, 0, 70000]) } };
      const kv: Record<string, unknown> = { key };
      if (this.chance(0.95)) kv.value = this.anyValue(depth);
      return kv;
    });
  }
  id(n: number): Buffer | undefined {
    const p = this.r();
    if (p < 0.03) return undefined;
    if (p < 0.05) return Buffer.alloc(n);
    if (p < 0.07) return this.bytes(n + 1);
    if (n === 16 && p < 0.2) return Buffer.concat([Buffer.alloc(8), this.bytes(8)]);
    return this.bytes(n);
  }
  unknowns(o: Record<string, unknown>): Record<string, unknown> {
    if (this.chance(0.3)) o.futureString = this.str();
    if (this.chance(0.3)) o.futureVarint = this.pick(['0', '1', '300', '18446744073709551615']);
    if (this.chance(0.3)) o.futureFixed64 = this.nanos();
    if (this.chance(0.3)) o.futureFixed32 = this.int(2 ** 32);
    if (this.chance(0.3)) o.futureMessage = { key: this.key(), value: { arrayValue: { values: [{ stringValue: 'x' }] } } };
    return o;
  }
  span(): Record<string, unknown> {
    const s: Record<string, unknown> = { traceId: this.id(16), spanId: this.id(8), name: this.chance(0.9) ? this.str() : undefined, kind: this.int(7) };
    if (this.chance(0.6)) s.parentSpanId = this.chance(0.1) ? Buffer.alloc(8) : this.chance(0.05) ? this.bytes(4) : this.bytes(8);
    if (this.chance(0.3)) s.traceState = 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE';
    if (this.chance(0.3)) s.flags = this.int(512);
    const start = this.nanos();
    s.startTimeUnixNano = start;
    const startN = BigInt(start);
    s.endTimeUnixNano = this.chance(0.05) ? this.nanos() : `${startN + BigInt(this.int(5_000_000_000)) > 2n ** 64n - 1n ? startN : startN + BigInt(this.int(5_000_000_000))}`;
    s.attributes = this.attributes(0, 8);
    if (this.chance(0.2)) s.droppedAttributesCount = this.pick([1, 7, 4294967295]);
    if (this.chance(0.4)) s.events = Array.from({ length: 1 + this.int(3) }, () => this.unknowns({ timeUnixNano: this.chance(0.9) ? this.nanos() : undefined, name: this.str(), attributes: this.chance(0.5) ? this.attributes(0, 3) : [], droppedAttributesCount: this.int(3) }));
    if (this.chance(0.2)) s.droppedEventsCount = this.int(5);
    if (this.chance(0.3)) s.links = Array.from({ length: 1 + this.int(2) }, () => this.unknowns({ traceId: this.id(16), spanId: this.id(8), traceState: this.chance(0.5) ? 'a=b' : '', attributes: this.chance(0.5) ? this.attributes(0, 3) : [], flags: this.int(3) }));
    if (this.chance(0.2)) s.droppedLinksCount = this.int(5);
    if (this.chance(0.6)) s.status = this.unknowns({ code: this.int(4), message: this.chance(0.5) ? this.str() : '' });
    return this.unknowns(s);
  }
  request(): Record<string, unknown> {
    return this.unknowns({
      resourceSpans: Array.from({ length: this.int(4) }, () =>
        this.unknowns({
          resource: this.chance(0.9) ? this.unknowns({ attributes: [...(this.chance(0.8) ? [{ key: 'service.name', value: { stringValue: this.pick(['api', 'db', '']) } }] : []), ...this.attributes(0, 4)], droppedAttributesCount: this.int(2) }) : undefined,
          scopeSpans: Array.from({ length: this.int(3) }, () =>
            this.unknowns({
              scope: this.chance(0.8) ? this.unknowns({ name: this.str(), version: this.chance(0.5) ? '1.2.3' : '', attributes: this.attributes(0, 2) }) : undefined,
              spans: Array.from({ length: this.int(6) }, () => this.span()),
              schemaUrl: this.chance(0.3) ? 'https://opentelemetry.io/schemas/1.26.0' : '',
            }),
          ),
          schemaUrl: this.chance(0.3) ? 'https://opentelemetry.io/schemas/1.26.0' : '',
        }),
      ),
    });
  }
}

function encode(req: Record<string, unknown>): Buffer {
  return Buffer.from(future.encode(future.fromObject(req)).finish());
}

/** One message of the extended definitions, encoded on its own. */
function encodeAs(type: string, message: Record<string, unknown>): Buffer {
  const t = future.root.lookupType(type);
  return Buffer.from(t.encode(t.fromObject(message)).finish());
}

/** `inner` (the bytes of a message) as the field `field` of a message of type `type`. */
function asField(type: string, field: string, inner: Buffer): Buffer {
  const id = future.root.lookupType(type).fields[field].id;
  return Buffer.from(protobuf.Writer.create().uint32(((id << 3) | 2) >>> 0).bytes(inner).finish());
}

/** A request holding one span given as bytes. */
function requestOfSpan(span: Buffer, resource: Record<string, unknown>): Buffer {
  const scopeSpans = asField(`${TRACE}ScopeSpans`, 'spans', span);
  const resourceSpans = Buffer.concat([encodeAs(`${TRACE}ResourceSpans`, { resource }), asField(`${TRACE}ResourceSpans`, 'scopeSpans', scopeSpans)]);
  return asField(EXTENDED[0], 'resourceSpans', resourceSpans);
}

describe('OTLP trace wire decoder', () => {
  it('gives the spans the message-object path gives, for generated requests with unknown fields', () => {
    const g = new Gen(18);
    let spans = 0;
    for (let i = 0; i < 400; i++) {
      const body = encode(g.request());
      const want = reference(body);
      const got = decodeTraceRequest(body);
      expect(JSON.stringify(got)).toBe(JSON.stringify(want));
      expect(got).toEqual(want);
      spans += want.spans.length + want.rejected;
    }
    expect(spans).toBeGreaterThan(1000);
  });

  it('maps what an SDK sends: every kind, status, events and links, remote endpoints', () => {
    const traceId = Buffer.from('5b8efff798038103d269b633813fc60c', 'hex');
    const body = encodeRequest('traces', {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'checkout' } }, { key: 'host.name', value: { stringValue: 'h1' } }] },
          scopeSpans: [
            {
              scope: { name: '@opentelemetry/instrumentation-http', version: '0.1.0' },
              spans: [
                {
                  traceId,
                  spanId: Buffer.from('eee19b7ec3c1b174', 'hex'),
                  parentSpanId: Buffer.from('eee19b7ec3c1b173', 'hex'),
                  name: 'GET /cart',
                  kind: 3,
                  startTimeUnixNano: '1765100000123456789',
                  endTimeUnixNano: '1765100000124000001',
                  attributes: [
                    { key: 'server.address', value: { stringValue: 'cart' } },
                    { key: 'network.peer.address', value: { stringValue: '10.0.0.7' } },
                    { key: 'retries', value: { intValue: '-3' } },
                    { key: 'big', value: { intValue: '9223372036854775807' } },
                  ],
                  events: [{ timeUnixNano: '1765100000123999999', name: 'retry', attributes: [{ key: 'n', value: { intValue: 1 } }] }],
                  links: [{ traceId, spanId: Buffer.from('0000000000000001', 'hex'), traceState: 'a=b' }],
                  status: { code: 2, message: 'boom' },
                },
              ],
            },
          ],
        },
      ],
    });
    const got = decodeTraceRequest(body);
    expect(got).toEqual(reference(body));
    expect(got.spans[0]).toMatchObject({
      traceId: '5b8efff798038103d269b633813fc60c',
      id: 'eee19b7ec3c1b174',
      parentId: 'eee19b7ec3c1b173',
      kind: 'CLIENT',
      timestamp: 1765100000123456,
      duration: 543,
      localEndpoint: { serviceName: 'checkout' },
      remoteEndpoint: { serviceName: 'cart' },
      annotations: [{ timestamp: 1765100000123999, value: '"retry":{"n":"1"}' }],
      tags: { retries: '-3', big: '9223372036854775807', 'host.name': 'h1', 'otel.status_code': 'ERROR', error: 'boom', 'otel.scope.name': '@opentelemetry/instrumentation-http' },
    });
  });

  it('merges a message sent in pieces as protobufjs does (the last scalar wins, lists grow, messages merge)', () => {
    const g = new Gen(29);
    for (let i = 0; i < 150; i++) {
      // two spans' bytes back to back are one span: ids, times, kind, status fields from the later, attributes, events and links of both
      const a = encodeAs(`${TRACE}Span`, g.span());
      const b = encodeAs(`${TRACE}Span`, g.span());
      const resource = { attributes: [{ key: 'service.name', value: { stringValue: 'api' } }] };
      const spanBody = requestOfSpan(Buffer.concat([a, b]), resource);
      expect(JSON.stringify(decodeTraceRequest(spanBody))).toBe(JSON.stringify(reference(spanBody)));
      // an attribute whose value comes in two pieces: arrays and key-value lists extend, other kinds replace
      const kv1 = encodeAs(`${COMMON}KeyValue`, { key: g.key(), value: g.anyValue(0) });
      const kv2 = encodeAs(`${COMMON}KeyValue`, { value: g.anyValue(0) });
      const kv3 = encodeAs(`${COMMON}KeyValue`, { value: g.anyValue(0) });
      const span = Buffer.concat([encodeAs(`${TRACE}Span`, { traceId: g.bytes(16), spanId: g.bytes(8), kind: 3 }), asField(`${TRACE}Span`, 'attributes', Buffer.concat([kv1, kv2, kv3]))]);
      const kvBody = requestOfSpan(span, resource);
      expect(JSON.stringify(decodeTraceRequest(kvBody))).toBe(JSON.stringify(reference(kvBody)));
      // two ResourceSpans back to back: resources merge (attributes of both), scope spans of both
      const rs = Buffer.concat([encodeAs(`${TRACE}ResourceSpans`, (g.request().resourceSpans as Record<string, unknown>[] | undefined)?.[0] ?? {}), encodeAs(`${TRACE}ResourceSpans`, (g.request().resourceSpans as Record<string, unknown>[] | undefined)?.[0] ?? {})]);
      const rsBody = asField(EXTENDED[0], 'resourceSpans', rs);
      expect(JSON.stringify(decodeTraceRequest(rsBody))).toBe(JSON.stringify(reference(rsBody)));
    }
  });

  it('skips unknown fields of every wire type, groups included, and known fields sent with another wire type', () => {
    const g = new Gen(7);
    const body = encode(g.request());
    const tail = Buffer.from([
      // field 15 as a group holding a varint and a string, then its end
      (15 << 3) | 3, 0x08, 0x96, 0x01, 0x12, 0x01, 0x61, (15 << 3) | 4,
      // field 14 as a varint of 12 bytes (protobufjs skips any length)
      (14 << 3) | 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
      // resource_spans (field 1) as a varint: not the message it should be, so unknown
      0x08, 0x05,
      // field 2 as fixed32 and fixed64
      0x15, 1, 2, 3, 4, 0x11, 1, 2, 3, 4, 5, 6, 7, 8,
    ]);
    const withTail = Buffer.concat([body, tail]);
    expect(JSON.stringify(decodeTraceRequest(withTail))).toBe(JSON.stringify(reference(withTail)));
    expect(decodeTraceRequest(withTail)).toEqual(decodeTraceRequest(body));
  });

  it('answers every truncation of a valid body as protobufjs does: an error, or the spans of what is left', () => {
    const g = new Gen(3);
    let bodies = 0;
    let errors = 0;
    for (let i = 0; i < 40 && bodies < 6; i++) {
      const req = g.request();
      const body = encode(req);
      if (body.length < 300 || body.length > 4000) continue;
      bodies++;
      for (let cut = 0; cut < body.length; cut++) {
        const part = body.subarray(0, cut);
        const want = outcome(reference, part);
        const got = outcome(decodeTraceRequest, part);
        expect(got, `cut at ${cut} of ${body.length}`).toEqual(want);
        if (!got.ok) errors++;
      }
    }
    expect(bodies).toBe(6);
    expect(errors).toBeGreaterThan(0);
  });

  it('answers corrupted bodies as protobufjs does, and only with UndecodableError', () => {
    const g = new Gen(11);
    let errors = 0;
    for (let i = 0; i < 1000; i++) {
      const body = encode(g.request());
      if (body.length === 0) continue;
      const bad = Buffer.from(body);
      for (let k = 1 + g.int(3); k > 0; k--) bad[g.int(bad.length)] = g.pick([0x00, 0x80, 0xff, 0x07, 0x0b, 0x0c, 0xc3, g.int(256)]);
      const want = outcome(reference, bad);
      const got = outcome(decodeTraceRequest, bad);
      expect(got, bad.toString('hex')).toEqual(want);
      if (!got.ok) errors++;
    }
    expect(errors).toBeGreaterThan(50);
  });

  it('refuses malformed bodies with a reason', () => {
    const cases: [string, number[]][] = [
      ['truncated varint', [0x0a, 0x80]],
      ['past the end', [0x0a, 0x05, 0x00]],
      ['invalid wire type', [0x0f]],
      ['field number 0', [0x00, 0x00]],
      // a span's kind (field 6) as an 11-byte varint
      ['varint longer than 10 bytes', [0x0a, 0x10, 0x12, 0x0e, 0x12, 0x0c, 0x30, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
      ['invalid tag encoding', [0xff, 0xff, 0xff, 0xff, 0x7f]],
      ['invalid UTF-8', [0x0a, 0x07, 0x12, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0xff]],
    ];
    for (const [reason, bytes] of cases) {
      expect(() => decodeTraceRequest(Buffer.from(bytes)), reason).toThrow(UndecodableError);
      expect(() => decodeTraceRequest(Buffer.from(bytes)), reason).toThrow(reason);
      expect(() => reference(Buffer.from(bytes)), reason).toThrow(UndecodableError);
    }
    // nesting deeper than protobufjs' recursion limit: arrays in arrays
    let any = Buffer.from([0x0a, 0x01, 0x61]); // AnyValue{string_value: "a"}
    for (let i = 0; i < 120; i++) {
      const arr = Buffer.concat([Buffer.from([0x0a]), varint(any.length), any]); // ArrayValue{values: any}
      any = Buffer.concat([Buffer.from([0x2a]), varint(arr.length), arr]); // AnyValue{array_value: arr}
    }
    const kv = Buffer.concat([Buffer.from([0x0a, 0x01, 0x6b, 0x12]), varint(any.length), any]);
    const span = Buffer.concat([Buffer.from([0x4a]), varint(kv.length), kv]);
    const ss = Buffer.concat([Buffer.from([0x12]), varint(span.length), span]);
    const rs = Buffer.concat([Buffer.from([0x12]), varint(ss.length), ss]);
    const deep = Buffer.concat([Buffer.from([0x0a]), varint(rs.length), rs]);
    expect(() => decodeTraceRequest(deep)).toThrow('nested too deep');
    expect(() => reference(deep)).toThrow(UndecodableError);
  });
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
