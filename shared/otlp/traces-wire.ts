/**
 * OTLP/protobuf trace requests straight from their bytes to plumb spans, in one pass: no message
 * objects, no Long (a fixed64 time is read as two uint32 halves and becomes microseconds
 * exactly), ids go to hex from the buffer, a resource's tags are built once and merged into each
 * of its spans. The mapping is the one of otlpToSpans (traces.ts), sharing its code from the
 * point where a span's attributes are tags; test/unit/shared/otlp-traces-wire.test.ts checks
 * both give the same spans.
 *
 * Field numbers and wire types are not written here: they are read at load time from the
 * protobufjs types built from the official definitions (codec.ts), which must have each field
 * this decoder relies on with the expected type, or loading fails. The decoder behaves as
 * protobufjs' generated decoder does: fields in any order, the last value of a scalar wins,
 * a message field seen twice is merged, a known field with another wire type is skipped as
 * unknown, unknown fields are skipped by wire type (groups included), strings must be valid
 * UTF-8, nesting is limited to protobufjs' recursion limit. A body it cannot decode (truncated
 * varint, length past the end of its message, invalid wire type, invalid UTF-8) throws
 * UndecodableError, answered 400 / INVALID_ARGUMENT.
 */
import { isUtf8 } from 'node:buffer';
import protobuf from 'protobufjs';
import type { ZipkinAnnotation, ZipkinSpan } from '../zipkin.ts';
import { otlpType, UndecodableError } from './codec.ts';
import { annotationValue, finishSpan, KINDS, linkObject, microsOf, reject, remoteEndpoint, SERVICE_NAME, setTag, UNKNOWN_SERVICE, ZIPKIN_FIELDS, zipkinFields, type SpansDecoded, type ZipkinFields } from './traces.ts';

// ---- field tags, from the definitions ----

type FieldKind = 'message' | 'enum' | 'string' | 'bytes' | 'fixed64' | 'fixed32' | 'double' | 'uint32' | 'int32' | 'int64' | 'bool';

const WIRE_TYPE: Record<FieldKind, number> = { message: 2, string: 2, bytes: 2, enum: 0, uint32: 0, int32: 0, int64: 0, bool: 0, fixed64: 1, double: 1, fixed32: 5 };

function kindOf(f: protobuf.Field): string {
  f.resolve();
  if (f.resolvedType instanceof protobuf.Type) return 'message';
  if (f.resolvedType instanceof protobuf.Enum) return 'enum';
  return f.type;
}

/**
 * The tag (field number << 3 | wire type) of a field, checked against what the decoder expects:
 * its kind, whether it repeats, and for a message field the message's full name.
 */
function tagOf(type: protobuf.Type, name: string, kind: FieldKind, repeated: boolean, message?: string): number {
  const f = type.fields[name] as protobuf.Field | undefined;
  const where = `${type.fullName.slice(1)}.${name}`;
  if (f === undefined) throw new Error(`OTLP definitions: ${where} is missing; the trace decoder (shared/otlp/traces-wire.ts) needs it`);
  const actual = kindOf(f);
  if (actual !== kind || f.repeated !== repeated || f.map) throw new Error(`OTLP definitions: ${where} is ${f.repeated ? 'repeated ' : ''}${actual}; the trace decoder expects ${repeated ? 'repeated ' : ''}${kind}`);
  if (message !== undefined && (f.resolvedType as protobuf.Type).fullName.slice(1) !== message) throw new Error(`OTLP definitions: ${where} is a ${(f.resolvedType as protobuf.Type).fullName.slice(1)}; the trace decoder expects ${message}`);
  return ((f.id << 3) | WIRE_TYPE[kind]) >>> 0;
}

const COMMON = 'opentelemetry.proto.common.v1.';
const TRACE = 'opentelemetry.proto.trace.v1.';
const T = {
  request: otlpType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
  resourceSpans: otlpType(`${TRACE}ResourceSpans`),
  resource: otlpType('opentelemetry.proto.resource.v1.Resource'),
  scopeSpans: otlpType(`${TRACE}ScopeSpans`),
  scope: otlpType(`${COMMON}InstrumentationScope`),
  span: otlpType(`${TRACE}Span`),
  event: otlpType(`${TRACE}Span.Event`),
  link: otlpType(`${TRACE}Span.Link`),
  status: otlpType(`${TRACE}Status`),
  keyValue: otlpType(`${COMMON}KeyValue`),
  anyValue: otlpType(`${COMMON}AnyValue`),
  arrayValue: otlpType(`${COMMON}ArrayValue`),
  kvlist: otlpType(`${COMMON}KeyValueList`),
};

const REQUEST_RESOURCE_SPANS = tagOf(T.request, 'resourceSpans', 'message', true, `${TRACE}ResourceSpans`);
const RS_RESOURCE = tagOf(T.resourceSpans, 'resource', 'message', false, 'opentelemetry.proto.resource.v1.Resource');
const RS_SCOPE_SPANS = tagOf(T.resourceSpans, 'scopeSpans', 'message', true, `${TRACE}ScopeSpans`);
const RESOURCE_ATTRIBUTES = tagOf(T.resource, 'attributes', 'message', true, `${COMMON}KeyValue`);
const SS_SCOPE = tagOf(T.scopeSpans, 'scope', 'message', false, `${COMMON}InstrumentationScope`);
const SS_SPANS = tagOf(T.scopeSpans, 'spans', 'message', true, `${TRACE}Span`);
const SCOPE_NAME = tagOf(T.scope, 'name', 'string', false);
const SCOPE_VERSION = tagOf(T.scope, 'version', 'string', false);
const SPAN_TRACE_ID = tagOf(T.span, 'traceId', 'bytes', false);
const SPAN_SPAN_ID = tagOf(T.span, 'spanId', 'bytes', false);
const SPAN_PARENT_SPAN_ID = tagOf(T.span, 'parentSpanId', 'bytes', false);
const SPAN_NAME = tagOf(T.span, 'name', 'string', false);
const SPAN_KIND = tagOf(T.span, 'kind', 'enum', false);
const SPAN_START = tagOf(T.span, 'startTimeUnixNano', 'fixed64', false);
const SPAN_END = tagOf(T.span, 'endTimeUnixNano', 'fixed64', false);
const SPAN_ATTRIBUTES = tagOf(T.span, 'attributes', 'message', true, `${COMMON}KeyValue`);
const SPAN_DROPPED_ATTRIBUTES = tagOf(T.span, 'droppedAttributesCount', 'uint32', false);
const SPAN_EVENTS = tagOf(T.span, 'events', 'message', true, `${TRACE}Span.Event`);
const SPAN_DROPPED_EVENTS = tagOf(T.span, 'droppedEventsCount', 'uint32', false);
const SPAN_LINKS = tagOf(T.span, 'links', 'message', true, `${TRACE}Span.Link`);
const SPAN_DROPPED_LINKS = tagOf(T.span, 'droppedLinksCount', 'uint32', false);
const SPAN_STATUS = tagOf(T.span, 'status', 'message', false, `${TRACE}Status`);
const EVENT_TIME = tagOf(T.event, 'timeUnixNano', 'fixed64', false);
const EVENT_NAME = tagOf(T.event, 'name', 'string', false);
const EVENT_ATTRIBUTES = tagOf(T.event, 'attributes', 'message', true, `${COMMON}KeyValue`);
const LINK_TRACE_ID = tagOf(T.link, 'traceId', 'bytes', false);
const LINK_SPAN_ID = tagOf(T.link, 'spanId', 'bytes', false);
const LINK_TRACE_STATE = tagOf(T.link, 'traceState', 'string', false);
const LINK_ATTRIBUTES = tagOf(T.link, 'attributes', 'message', true, `${COMMON}KeyValue`);
const STATUS_MESSAGE = tagOf(T.status, 'message', 'string', false);
const STATUS_CODE = tagOf(T.status, 'code', 'enum', false);
const KV_KEY = tagOf(T.keyValue, 'key', 'string', false);
const KV_VALUE = tagOf(T.keyValue, 'value', 'message', false, `${COMMON}AnyValue`);
const ANY_STRING = tagOf(T.anyValue, 'stringValue', 'string', false);
const ANY_BOOL = tagOf(T.anyValue, 'boolValue', 'bool', false);
const ANY_INT = tagOf(T.anyValue, 'intValue', 'int64', false);
const ANY_DOUBLE = tagOf(T.anyValue, 'doubleValue', 'double', false);
const ANY_ARRAY = tagOf(T.anyValue, 'arrayValue', 'message', false, `${COMMON}ArrayValue`);
const ANY_KVLIST = tagOf(T.anyValue, 'kvlistValue', 'message', false, `${COMMON}KeyValueList`);
const ANY_BYTES = tagOf(T.anyValue, 'bytesValue', 'bytes', false);
const ARRAY_VALUES = tagOf(T.arrayValue, 'values', 'message', true, `${COMMON}AnyValue`);
const KVLIST_VALUES = tagOf(T.kvlist, 'values', 'message', true, `${COMMON}KeyValue`);

/** Members of AnyValue's oneof that the mapping has no value for (stringValueStrindex): the value reads as empty. */
const ANY_OTHER_MEMBERS = new Set<number>();
{
  const oneof = T.anyValue.oneofs.value as protobuf.OneOf | undefined;
  if (oneof === undefined) throw new Error('OTLP definitions: opentelemetry.proto.common.v1.AnyValue has no oneof value; the trace decoder needs it');
  const mapped = new Set([ANY_STRING, ANY_BOOL, ANY_INT, ANY_DOUBLE, ANY_ARRAY, ANY_KVLIST, ANY_BYTES]);
  for (const f of oneof.fieldsArray) {
    const tag = ((f.id << 3) | WIRE_TYPE[kindOf(f) as FieldKind]) >>> 0;
    if (!mapped.has(tag)) ANY_OTHER_MEMBERS.add(tag);
  }
}

const MAX_DEPTH = (protobuf.util as unknown as { recursionLimit?: number }).recursionLimit ?? 100;

// ---- the reader ----

/** A position in the body and the end of the message being read (reads never pass it). */
interface Wire {
  buf: Buffer & SliceBuffer;
  pos: number;
  end: number;
  /** High 32 bits of the last varint read. */
  hi: number;
}

function fail(r: Wire, what: string): never {
  throw new UndecodableError(`not a protobuf ExportTraceServiceRequest (${what} at byte ${r.pos})`);
}

/** A varint's low 32 bits (unsigned); its high 32 bits go to r.hi. At most 10 bytes. */
function varint(r: Wire): number {
  const buf = r.buf;
  const end = r.end;
  let pos = r.pos;
  if (pos < end) {
    const b = buf[pos];
    if (b < 0x80) {
      r.pos = pos + 1;
      r.hi = 0;
      return b;
    }
  }
  let lo = 0;
  let b: number;
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) fail(r, 'truncated varint');
    b = buf[pos++];
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) {
      r.pos = pos;
      r.hi = 0;
      return lo >>> 0;
    }
  }
  if (pos >= end) fail(r, 'truncated varint');
  b = buf[pos++];
  lo |= (b & 0x0f) << 28;
  let hi = (b & 0x7f) >> 4;
  if (b < 0x80) {
    r.pos = pos;
    r.hi = hi;
    return lo >>> 0;
  }
  for (let shift = 3; shift < 32; shift += 7) {
    if (pos >= end) fail(r, 'truncated varint');
    b = buf[pos++];
    hi |= (b & 0x7f) << shift;
    if (b < 0x80) {
      r.pos = pos;
      r.hi = hi >>> 0;
      return lo >>> 0;
    }
  }
  return fail(r, 'varint longer than 10 bytes');
}

/** The length of a length-delimited field (its low 32 bits, as protobufjs reads it); its bytes must lie inside the current message. */
function length(r: Wire): number {
  const n = varint(r);
  if (n > r.end - r.pos) fail(r, `length ${n} past the end of its message`);
  return n;
}

function fixed32(r: Wire): number {
  const p = r.pos;
  if (r.end - p < 4) fail(r, 'truncated fixed32');
  const buf = r.buf;
  r.pos = p + 4;
  return (buf[p] | (buf[p + 1] << 8) | (buf[p + 2] << 16) | (buf[p + 3] << 24)) >>> 0;
}

function checkAvailable(r: Wire, n: number, what: string): void {
  if (r.end - r.pos < n) fail(r, `truncated ${what}`);
}

/** A field tag: a varint of at most 5 bytes that fits 32 bits, as protobufjs requires. */
function tag(r: Wire): number {
  const buf = r.buf;
  let pos = r.pos;
  let t = 0;
  for (let shift = 0; ; shift += 7) {
    if (pos >= r.end) fail(r, 'truncated tag');
    const b = buf[pos++];
    if (shift === 28) {
      if (b > 0x0f) fail(r, 'invalid tag encoding');
      t |= b << 28;
      break;
    }
    t |= (b & 0x7f) << shift;
    if (b < 0x80) break;
  }
  r.pos = pos;
  t >>>= 0;
  if (t >>> 3 === 0) fail(r, 'field number 0');
  return t;
}

/** Skips a field by its wire type (a group up to its matching end tag). */
function skip(r: Wire, t: number, depth: number): void {
  switch (t & 7) {
    case 0: {
      // as protobufjs skips a varint: any number of bytes, to the first without continuation bit
      const buf = r.buf;
      let pos = r.pos;
      do if (pos >= r.end) fail(r, 'truncated varint');
      while (buf[pos++] & 0x80);
      r.pos = pos;
      return;
    }
    case 1:
      checkAvailable(r, 8, 'fixed64');
      r.pos += 8;
      return;
    case 2: {
      const n = length(r); // before r.pos is read: length() moves it
      r.pos += n;
      return;
    }
    case 3: {
      if (depth > MAX_DEPTH) fail(r, 'messages nested too deep');
      for (;;) {
        const inner = tag(r);
        if ((inner & 7) === 4) {
          if (inner >>> 3 !== t >>> 3) fail(r, 'invalid end group tag');
          return;
        }
        skip(r, inner, depth + 1);
      }
    }
    case 5:
      checkAvailable(r, 4, 'fixed32');
      r.pos += 4;
      return;
    default:
      fail(r, `invalid wire type ${t & 7}`);
  }
}

/**
 * Nested message kinds and string fields of each type, by tag, for fields the mapping does not use
 * but protobufjs would still have decoded: they are checked the same way (UTF-8 of strings,
 * structure of messages), so a body is refused here exactly when it was refused there.
 */
const checked = new Map<protobuf.Type, Map<number, protobuf.Type | 'string'>>();

function checkedFields(type: protobuf.Type): Map<number, protobuf.Type | 'string'> {
  let m = checked.get(type);
  if (m === undefined) {
    m = new Map();
    for (const f of type.fieldsArray) {
      const kind = kindOf(f);
      if (kind === 'message') m.set(((f.id << 3) | 2) >>> 0, f.resolvedType as protobuf.Type);
      else if (kind === 'string') m.set(((f.id << 3) | 2) >>> 0, 'string');
    }
    checked.set(type, m);
  }
  return m;
}

/** A field the mapping does not use: a string or message of the definitions is checked, anything else skipped. */
function other(r: Wire, type: protobuf.Type, t: number, depth: number): void {
  const kind = checkedFields(type).get(t);
  if (kind === undefined) skip(r, t, depth);
  else if (kind === 'string') string(r);
  else {
    const n = length(r);
    const saved = r.end;
    r.end = r.pos + n;
    checkMessage(r, kind, depth + 1);
    r.end = saved;
  }
}

function checkMessage(r: Wire, type: protobuf.Type, depth: number): void {
  if (depth > MAX_DEPTH) fail(r, 'messages nested too deep');
  while (r.pos < r.end) other(r, type, tag(r), depth);
}

/** Enters a length-delimited message: returns the end of the enclosing one, to give back to leave(). */
function enter(r: Wire): number {
  const n = length(r);
  const saved = r.end;
  r.end = r.pos + n;
  return saved;
}

// ---- values ----

/**
 * Short ASCII strings seen lately, by a hash of their bytes. Attribute keys and most values
 * (methods, routes, service and host names) repeat from span to span: a hit costs a comparison
 * instead of a new string from a native call.
 */
const INTERNED_MAX = 32;

/** Buffer's own slice-to-string methods (what toString calls once it has checked its arguments; protobufjs reads strings with utf8Slice too). */
interface SliceBuffer {
  latin1Slice(start: number, end: number): string;
  utf8Slice(start: number, end: number): string;
}
if (typeof (Buffer.prototype as unknown as Partial<SliceBuffer>).latin1Slice !== 'function' || typeof (Buffer.prototype as unknown as Partial<SliceBuffer>).utf8Slice !== 'function') throw new Error('this Node.js has no Buffer latin1Slice/utf8Slice, which the OTLP trace decoder uses');
const interned: string[] = new Array<string>(1024).fill('');

function string(r: Wire): string {
  const n = length(r);
  const s = r.pos;
  const e = s + n;
  r.pos = e;
  if (n === 0) return '';
  const buf = r.buf;
  let slot = -1;
  if (n <= INTERNED_MAX) {
    // the slot from the length and a few bytes; a hit compares every byte (and so is ASCII)
    const h = Math.imul(n ^ (buf[s] << 8) ^ (buf[e - 1] << 16) ^ (buf[s + (n >> 1)] << 24) ^ buf[e - 2 + (n === 1 ? 1 : 0)], 0x9e3779b1);
    slot = h >>> 22;
    const known = interned[slot];
    if (known.length === n) {
      let i = 0;
      while (i < n && known.charCodeAt(i) === buf[s + i]) i++;
      if (i === n) return known;
    }
  }
  for (let i = s; i < e; i++) if (buf[i] > 0x7f) return utf8(r, s, e);
  const str = buf.latin1Slice(s, e);
  if (slot >= 0) interned[slot] = str;
  return str;
}

function utf8(r: Wire, s: number, e: number): string {
  if (!isUtf8(r.buf.subarray(s, e))) {
    r.pos = s;
    fail(r, 'invalid UTF-8 in a string');
  }
  return r.buf.utf8Slice(s, e);
}

/** int64 as anyValueToJs gives it: a number when exact, else its decimal string. */
function int64(r: Wire): number | string {
  const lo = varint(r);
  const hi = r.hi;
  const n = (hi | 0) * 4294967296 + lo;
  return Number.isSafeInteger(n) ? n : BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
}

function double(r: Wire): number {
  checkAvailable(r, 8, 'double');
  const v = r.buf.readDoubleLE(r.pos);
  r.pos += 8;
  return v;
}

/**
 * An AnyValue as anyValueToJs gives it (null when empty). `prev` is the value of an earlier
 * occurrence of the same field, merged into as protobufjs merges: the last member set wins,
 * and an array or key-value list set twice in a row is extended.
 */
function anyValue(r: Wire, prev: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) fail(r, 'messages nested too deep');
  let v = prev;
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === ANY_STRING) v = string(r);
    else if (t === ANY_INT) v = int64(r);
    else if (t === ANY_BOOL) v = varint(r) !== 0;
    else if (t === ANY_DOUBLE) v = double(r);
    else if (t === ANY_ARRAY) {
      const saved = enter(r);
      v = arrayValue(r, Array.isArray(v) ? (v as unknown[]) : [], depth + 1);
      r.end = saved;
    } else if (t === ANY_KVLIST) {
      const saved = enter(r);
      v = kvlist(r, v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {}, depth + 1);
      r.end = saved;
    } else if (t === ANY_BYTES) {
      const n = length(r);
      v = r.buf.toString('base64', r.pos, r.pos + n);
      r.pos += n;
    } else if (ANY_OTHER_MEMBERS.has(t)) {
      other(r, T.anyValue, t, depth);
      v = null;
    } else other(r, T.anyValue, t, depth);
  }
  return v;
}

function arrayValue(r: Wire, into: unknown[], depth: number): unknown[] {
  if (depth > MAX_DEPTH) fail(r, 'messages nested too deep');
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === ARRAY_VALUES) {
      const saved = enter(r);
      into.push(anyValue(r, null, depth + 1));
      r.end = saved;
    } else other(r, T.arrayValue, t, depth);
  }
  return into;
}

function kvlist(r: Wire, into: Record<string, unknown>, depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH) fail(r, 'messages nested too deep');
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === KVLIST_VALUES) {
      const saved = enter(r);
      const value = keyValue(r, depth + 1);
      r.end = saved;
      const key = kvKey;
      // a "__proto__" key must stay a key, not become the object's prototype
      if (key === '__proto__') Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
      else into[key] = value;
    } else other(r, T.kvlist, t, depth);
  }
  return into;
}

/** The key of the KeyValue keyValue() read last (set after any nested reads). */
let kvKey = '';

/** A KeyValue: returns its value as anyValueToJs gives it, its key in kvKey. */
function keyValue(r: Wire, depth: number): unknown {
  if (depth > MAX_DEPTH) fail(r, 'messages nested too deep');
  let key = '';
  let value: unknown = null;
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === KV_KEY) key = string(r);
    else if (t === KV_VALUE) {
      const saved = enter(r);
      value = anyValue(r, value, depth + 1);
      r.end = saved;
    } else other(r, T.keyValue, t, depth);
  }
  kvKey = key;
  return value;
}

/** An attribute value as a tag, as anyValueToString writes it. */
function tagValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** Attributes of an event or link as a tag object (null when there are none). */
function attributesInto(r: Wire, into: Record<string, string> | null, depth: number): Record<string, string> {
  const saved = enter(r);
  const value = tagValue(keyValue(r, depth));
  r.end = saved;
  const out = into ?? {};
  setTag(out, kvKey, value);
  return out;
}

// ---- requests, resources, scopes, spans ----

/** Decodes a request body into spans; throws UndecodableError when it is not one. */
export function decodeTraceRequest(body: Uint8Array): SpansDecoded {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const r: Wire = { buf: buf as Buffer & SliceBuffer, pos: 0, end: buf.length, hi: 0 };
  const out: SpansDecoded = { spans: [], rejected: 0, error: '' };
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === REQUEST_RESOURCE_SPANS) {
      const saved = enter(r);
      resourceSpans(r, out);
      r.end = saved;
    } else other(r, T.request, t, 0);
  }
  return out;
}

/** One resource's tags and service name, shared by all its spans. */
interface ResourceInfo {
  tags: [string, string][];
  service: string;
}

function resourceSpans(r: Wire, out: SpansDecoded): void {
  // the resource may come after its spans: read it first
  const start = r.pos;
  const res: ResourceInfo = { tags: [], service: UNKNOWN_SERVICE };
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === RS_RESOURCE) {
      const saved = enter(r);
      resource(r, res);
      r.end = saved;
    } else skip(r, t, 1);
  }
  r.pos = start;
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === RS_SCOPE_SPANS) {
      const saved = enter(r);
      scopeSpans(r, res, out);
      r.end = saved;
    } else if (t === RS_RESOURCE) skip(r, t, 1);
    else other(r, T.resourceSpans, t, 1);
  }
}

function resource(r: Wire, res: ResourceInfo): void {
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === RESOURCE_ATTRIBUTES) {
      const saved = enter(r);
      const v = tagValue(keyValue(r, 3));
      r.end = saved;
      res.tags.push([kvKey, v]);
      if (kvKey === SERVICE_NAME && v !== '') res.service = v;
    } else other(r, T.resource, t, 2);
  }
}

function scopeSpans(r: Wire, res: ResourceInfo, out: SpansDecoded): void {
  const start = r.pos;
  let name = '';
  let version = '';
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === SS_SCOPE) {
      const saved = enter(r);
      while (r.pos < r.end) {
        const st = tag(r);
        if (st === SCOPE_NAME) name = string(r);
        else if (st === SCOPE_VERSION) version = string(r);
        else other(r, T.scope, st, 3);
      }
      r.end = saved;
    } else skip(r, t, 2);
  }
  r.pos = start;
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === SS_SPANS) {
      const saved = enter(r);
      const span = spanOf(r, res, name, version, out);
      r.end = saved;
      if (span !== null) out.spans.push(span);
    } else if (t === SS_SCOPE) skip(r, t, 2);
    else other(r, T.scopeSpans, t, 2);
  }
}

/** The span's own attributes, in order, for the remote endpoint (reused from span to span). */
const attrKeys: string[] = [];
const attrValues: string[] = [];

/** Hex of an id in the body, or '' when it is empty. */
function hexAt(buf: Buffer, start: number, len: number): string {
  if (len === 8) return hex8(buf, start);
  if (len === 16) return hex8(buf, start) + hex8(buf, start + 8);
  return len === 0 ? '' : buf.toString('hex', start, start + len);
}

const HEX_DIGITS = [...'0123456789abcdef'].map((c) => c.charCodeAt(0));

/** 8 bytes as 16 hex digits, one flat string without a native call. */
function hex8(b: Buffer, i: number): string {
  const d = HEX_DIGITS;
  return String.fromCharCode(
    d[b[i] >> 4], d[b[i] & 15], d[b[i + 1] >> 4], d[b[i + 1] & 15], d[b[i + 2] >> 4], d[b[i + 2] & 15], d[b[i + 3] >> 4], d[b[i + 3] & 15],
    d[b[i + 4] >> 4], d[b[i + 4] & 15], d[b[i + 5] >> 4], d[b[i + 5] & 15], d[b[i + 6] >> 4], d[b[i + 6] & 15], d[b[i + 7] >> 4], d[b[i + 7] & 15],
  );
}

function zeroAt(buf: Buffer, start: number, len: number): boolean {
  for (let i = start; i < start + len; i++) if (buf[i] !== 0) return false;
  return true;
}

function spanOf(r: Wire, res: ResourceInfo, scopeName: string, scopeVersion: string, out: SpansDecoded): ZipkinSpan | null {
  const buf = r.buf;
  let tidAt = 0;
  let tidLen = 0;
  let sidAt = 0;
  let sidLen = 0;
  let pidAt = 0;
  let pidLen = 0;
  let kindNumber = 0;
  let name = '';
  let startLo = 0;
  let startHi = 0;
  let endLo = 0;
  let endHi = 0;
  const tags: Record<string, string> = {};
  let fields: ZipkinFields | null = null;
  let attrs = 0;
  let droppedAttributes = 0;
  let droppedEvents = 0;
  let droppedLinks = 0;
  let code = 0;
  let statusMessage = '';
  let links: Record<string, unknown>[] | null = null;
  let annotations: ZipkinAnnotation[] | null = null;
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === SPAN_ATTRIBUTES) {
      const saved = enter(r);
      const value = tagValue(keyValue(r, 4));
      r.end = saved;
      const key = kvKey;
      if (key === ZIPKIN_FIELDS) fields = zipkinFields(value);
      else setTag(tags, key, value);
      attrKeys[attrs] = key;
      attrValues[attrs] = value;
      attrs++;
    } else if (t === SPAN_TRACE_ID) {
      tidLen = length(r);
      tidAt = r.pos;
      r.pos += tidLen;
    } else if (t === SPAN_SPAN_ID) {
      sidLen = length(r);
      sidAt = r.pos;
      r.pos += sidLen;
    } else if (t === SPAN_PARENT_SPAN_ID) {
      pidLen = length(r);
      pidAt = r.pos;
      r.pos += pidLen;
    } else if (t === SPAN_NAME) name = string(r);
    else if (t === SPAN_KIND) kindNumber = varint(r) | 0;
    else if (t === SPAN_START) {
      startLo = fixed32(r);
      startHi = fixed32(r);
    } else if (t === SPAN_END) {
      endLo = fixed32(r);
      endHi = fixed32(r);
    } else if (t === SPAN_STATUS) {
      const saved = enter(r);
      while (r.pos < r.end) {
        const st = tag(r);
        if (st === STATUS_CODE) code = varint(r) | 0;
        else if (st === STATUS_MESSAGE) statusMessage = string(r);
        else other(r, T.status, st, 4);
      }
      r.end = saved;
    } else if (t === SPAN_EVENTS) {
      const saved = enter(r);
      const a = event(r);
      r.end = saved;
      if (a !== null) (annotations ??= []).push(a);
    } else if (t === SPAN_LINKS) {
      const saved = enter(r);
      (links ??= []).push(link(r));
      r.end = saved;
    } else if (t === SPAN_DROPPED_ATTRIBUTES) droppedAttributes = varint(r);
    else if (t === SPAN_DROPPED_EVENTS) droppedEvents = varint(r);
    else if (t === SPAN_DROPPED_LINKS) droppedLinks = varint(r);
    else other(r, T.span, t, 3);
  }

  if (tidLen !== 16 || zeroAt(buf, tidAt, 16)) return reject(out, 'span trace_id must be 16 bytes, not all zero');
  if (sidLen !== 8 || zeroAt(buf, sidAt, 8)) return reject(out, 'span span_id must be 8 bytes, not all zero');
  // a 128-bit trace id whose high half is zero is written as 64-bit
  const traceId = zeroAt(buf, tidAt, 8) ? hex8(buf, tidAt + 8) : hexAt(buf, tidAt, 16);
  const id = hex8(buf, sidAt);
  const span: ZipkinSpan = { traceId, id };
  if (pidLen > 0) {
    if (pidLen !== 8) return reject(out, 'span parent_span_id must be 8 bytes or empty');
    const p = hexAt(buf, pidAt, 8);
    if (!zeroAt(buf, pidAt, 8) && p !== id) span.parentId = p;
  }
  const kind = KINDS[kindNumber];
  if (kind !== undefined) span.kind = kind;
  if (name) span.name = name;
  const start = microsOf(startHi, startLo);
  if (start > 0) {
    if (microsOf(endHi, endLo) < start) return reject(out, 'span end_time_unix_nano is before its start');
    span.timestamp = start;
    // (end − start) in whole µs, truncated
    const d = Math.floor(((endHi - startHi) * 4294967296 + (endLo - startLo)) / 1000);
    if (d > 0) span.duration = d;
  }
  span.localEndpoint = { serviceName: res.service };
  finishSpan(span, tags, fields, res.tags, scopeName, scopeVersion, code, statusMessage, droppedAttributes, droppedEvents, droppedLinks, links);
  if (fields === null && (kind === 'CLIENT' || kind === 'PRODUCER') && attrs > 0) {
    const byKey = new Map<string, string>();
    for (let i = 0; i < attrs; i++) byKey.set(attrKeys[i], attrValues[i]);
    const remote = remoteEndpoint(byKey);
    if (remote !== undefined) span.remoteEndpoint = remote;
  }
  if (annotations !== null) span.annotations = annotations;
  return span;
}

/** An event as an annotation; null when it has no time or its value would be empty. */
function event(r: Wire): ZipkinAnnotation | null {
  let lo = 0;
  let hi = 0;
  let name = '';
  let attributes: Record<string, string> | null = null;
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === EVENT_ATTRIBUTES) attributes = attributesInto(r, attributes, 5);
    else if (t === EVENT_TIME) {
      lo = fixed32(r);
      hi = fixed32(r);
    } else if (t === EVENT_NAME) name = string(r);
    else other(r, T.event, t, 4);
  }
  const timestamp = microsOf(hi, lo);
  if (!(timestamp > 0)) return null;
  const value = annotationValue(name, attributes);
  return value === '' ? null : { timestamp, value };
}

function link(r: Wire): Record<string, unknown> {
  const buf = r.buf;
  let traceId = '';
  let spanId = '';
  let traceState = '';
  let attributes: Record<string, string> | null = null;
  while (r.pos < r.end) {
    const t = tag(r);
    if (t === LINK_TRACE_ID) {
      const n = length(r);
      traceId = hexAt(buf, r.pos, n);
      r.pos += n;
    } else if (t === LINK_SPAN_ID) {
      const n = length(r);
      spanId = hexAt(buf, r.pos, n);
      r.pos += n;
    } else if (t === LINK_TRACE_STATE) traceState = string(r);
    else if (t === LINK_ATTRIBUTES) attributes = attributesInto(r, attributes, 5);
    else other(r, T.link, t, 4);
  }
  return linkObject(traceId, spanId, traceState, attributes);
}
