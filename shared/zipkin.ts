/**
 * The Zipkin v2 span model (https://zipkin.io/zipkin-api/#/default/post_spans), its decoding,
 * and the batch the agent forwards spans in. Both roles use it: the agent decodes what apps
 * post, the collector decodes what agents forward.
 *
 * Decoding accepts what Zipkin's own server accepts and normalises the way it does (its
 * V2SpanReader and Span/Endpoint builders), so a span stored through plumb equals the span
 * Zipkin would have stored from the same request:
 * - hex ids are left-padded with zeros to 16 or 32 characters, a 32-character trace id whose
 *   high half is zero becomes its 16-character low half, all-zero trace and span ids are errors;
 * - an all-zero parentId, or one equal to the span's own id, is dropped;
 * - timestamp and duration: a quoted number is read as a number; 0 or negative means absent;
 * - endpoint port: a quoted number is read; 0 or negative means absent, above 65535 is an error;
 * - endpoint addresses: either key may carry either family (an IPv4-mapped IPv6 address is
 *   stored as ipv4), IPv6 is written in its canonical form, an address that does not parse is
 *   dropped (the rest of the endpoint stays);
 * - a number where a string belongs (tag value, annotation value, name, id) is read as its
 *   decimal text; annotation timestamps may be any integer, 0 included; an empty annotation
 *   value is kept; annotations are sorted by timestamp then value, exact duplicates dropped;
 * - debug and shared are kept only when true; `shared` is dropped from CLIENT spans;
 * - empty names and endpoints mean absent; null means absent; unknown fields are dropped.
 * Where plumb accepts more than Zipkin (no client loses a span over it):
 * - upper-case hex ids are lowercased (Zipkin refuses them);
 * - fractional microseconds are rounded (Zipkin refuses them; some OpenTelemetry exporters
 *   send them);
 * - a boolean tag value becomes "true" or "false" (Zipkin's reader refuses it with "Expected a
 *   string but was BOOLEAN");
 * - a UTF-8 byte-order mark before the JSON is skipped (see stripBom; Zipkin's JSON reader skips
 *   it, its HTTP format detection does not).
 * Span and service names keep their case (Zipkin lowercases them when it stores them; span
 * metrics label by the name the application chose).
 *
 * One unusable span never costs the others: decodeSpans returns the good spans and, for each
 * dropped one, its index and reason. Only a body that is not a list (or is over the span limit)
 * is refused whole.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const ZIPKIN_SPANS_PATH = '/api/v2/spans';
/** Where agents post span batches on a collector. */
export const TRACES_PATH = '/v1/traces';

export type ZipkinKind = 'CLIENT' | 'SERVER' | 'PRODUCER' | 'CONSUMER';

export interface ZipkinEndpoint {
  serviceName?: string;
  ipv4?: string;
  ipv6?: string;
  port?: number;
}

export interface ZipkinAnnotation {
  /** Epoch microseconds. */
  timestamp: number;
  value: string;
}

export interface ZipkinSpan {
  /** 16 or 32 lower-hex characters. */
  traceId: string;
  /** 16 lower-hex characters. */
  id: string;
  parentId?: string;
  kind?: ZipkinKind;
  name?: string;
  /** Epoch microseconds of the start. */
  timestamp?: number;
  /** Microseconds. */
  duration?: number;
  localEndpoint?: ZipkinEndpoint;
  remoteEndpoint?: ZipkinEndpoint;
  annotations?: ZipkinAnnotation[];
  tags?: Record<string, string>;
  debug?: boolean;
  shared?: boolean;
}

/** What an agent posts to a collector's TRACES_PATH (JSON, usually gzip). */
export interface SpanBatch {
  /** spanBatchId(agent, seq): the same batch resent carries the same id. */
  id: string;
  agent: string;
  seq: number;
  spans: ZipkinSpan[];
}

/**
 * Span batch ids live in their own namespace (`:traces:`) so a collector that remembers metric
 * and span batch ids in one dedupe store never mistakes one for the other.
 */
export function spanBatchId(agent: string, seq: number): string {
  return `${agent}:traces:${seq}`;
}

/** Why a body or a span was refused, as a low-cardinality metric label. */
export type SpanInvalidReason =
  | 'not_json'
  | 'not_array'
  | 'too_many_spans'
  | 'not_object'
  | 'trace_id'
  | 'span_id'
  | 'parent_id'
  | 'kind'
  | 'name'
  | 'timestamp'
  | 'duration'
  | 'endpoint'
  | 'annotations'
  | 'tags'
  | 'flags'
  | 'batch';

export const SPAN_INVALID_REASONS: readonly SpanInvalidReason[] = [
  'not_json',
  'not_array',
  'too_many_spans',
  'not_object',
  'trace_id',
  'span_id',
  'parent_id',
  'kind',
  'name',
  'timestamp',
  'duration',
  'endpoint',
  'annotations',
  'tags',
  'flags',
  'batch',
];

export interface SpanLimits {
  /** Most spans one body may carry. */
  maxSpans: number;
}

export const DEFAULT_SPAN_LIMITS: SpanLimits = { maxSpans: 50_000 };

/** A span left out of a body: where it was, why (a metric label) and what (for a log line). */
export interface DroppedSpan {
  index: number;
  reason: SpanInvalidReason;
  error: string;
}

export type SpansResult = { spans: ZipkinSpan[]; dropped: DroppedSpan[] } | { error: string; reason: SpanInvalidReason };
export type SpanBatchResult = { batch: SpanBatch; dropped: DroppedSpan[] } | { error: string; reason: SpanInvalidReason };

/** Thrown inside decoding only; never escapes this module. */
class Invalid {
  readonly message: string;
  readonly reason: SpanInvalidReason;
  constructor(reason: SpanInvalidReason, message: string) {
    this.reason = reason;
    this.message = message;
  }
}

/** The text of a JSON body with a leading UTF-8 byte-order mark (EF BB BF) left out. */
export function stripBom(body: Buffer): Buffer {
  return body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? body.subarray(3) : body;
}

/**
 * Decodes a parsed Zipkin v2 JSON body (an array of spans) into normalised copies. A span that
 * cannot be used is left out and listed in `dropped` with a message naming it and the field
 * (`spans[3].traceId: must be 16 or 32 lower-hex characters`); the others are kept.
 */
export function decodeSpans(body: unknown, limits: SpanLimits = DEFAULT_SPAN_LIMITS): SpansResult {
  try {
    return spansFrom(body, 'spans', limits);
  } catch (err) {
    if (err instanceof Invalid) return { error: err.message, reason: err.reason };
    throw err;
  }
}

/** Decodes a batch an agent forwarded; the spans inside are decoded as decodeSpans does. */
export function decodeSpanBatch(body: unknown, limits: SpanLimits = DEFAULT_SPAN_LIMITS): SpanBatchResult {
  try {
    if (!isPlainObject(body)) throw new Invalid('batch', 'body: must be a JSON object {id, agent, seq, spans}');
    const { id, agent, seq } = body;
    if (typeof id !== 'string' || id.length === 0 || id.length > 512) throw new Invalid('batch', 'id: must be a non-empty string of at most 512 characters');
    if (typeof agent !== 'string' || agent.length === 0 || agent.length > 256) throw new Invalid('batch', 'agent: must be a non-empty string of at most 256 characters');
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw new Invalid('batch', 'seq: must be a non-negative integer');
    if (body.spans === undefined) throw new Invalid('batch', 'spans: required');
    const { spans, dropped } = spansFrom(body.spans, 'spans', limits);
    return { batch: { id, agent, seq, spans }, dropped };
  } catch (err) {
    if (err instanceof Invalid) return { error: err.message, reason: err.reason };
    throw err;
  }
}

function spansFrom(body: unknown, path: string, limits: SpanLimits): { spans: ZipkinSpan[]; dropped: DroppedSpan[] } {
  if (!Array.isArray(body)) throw new Invalid('not_array', `${path}: must be a JSON array of Zipkin v2 spans`);
  if (body.length > limits.maxSpans) throw new Invalid('too_many_spans', `${path}: ${body.length} spans in one body, at most ${limits.maxSpans} allowed; send smaller batches`);
  const spans: ZipkinSpan[] = [];
  const dropped: DroppedSpan[] = [];
  for (let i = 0; i < body.length; i++) {
    try {
      spans.push(spanFrom(body[i], `${path}[${i}]`));
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      dropped.push({ index: i, reason: err.reason, error: err.message });
    }
  }
  return { spans, dropped };
}

function spanFrom(raw: unknown, at: string): ZipkinSpan {
  if (!isPlainObject(raw)) throw new Invalid('not_object', `${at}: must be a JSON object`);
  const traceId = traceIdFrom(raw.traceId, `${at}.traceId`);
  const id = spanIdFrom(raw.id, `${at}.id`);
  const span: ZipkinSpan = { traceId, id };

  const parentId = raw.parentId;
  if (parentId !== undefined && parentId !== null) {
    const p = hexId(parentId, 16, `${at}.parentId`, 'parent_id', 'must be 16 lower-hex characters');
    if (!isAllZeros(p) && p !== id) span.parentId = p;
  }

  const kind = raw.kind;
  if (kind !== undefined && kind !== null) {
    if (kind !== 'CLIENT' && kind !== 'SERVER' && kind !== 'PRODUCER' && kind !== 'CONSUMER') {
      throw new Invalid('kind', `${at}.kind: must be one of CLIENT, SERVER, PRODUCER, CONSUMER (got ${short(kind)})`);
    }
    span.kind = kind;
  }

  const name = text(raw.name, `${at}.name`, 'name');
  if (name !== undefined && name !== '') span.name = name;

  const timestamp = micros(raw.timestamp, `${at}.timestamp`, 'timestamp');
  if (timestamp !== undefined && timestamp > 0) span.timestamp = timestamp;
  const duration = micros(raw.duration, `${at}.duration`, 'duration');
  if (duration !== undefined && duration > 0) span.duration = duration;

  const local = endpointFrom(raw.localEndpoint, `${at}.localEndpoint`);
  if (local) span.localEndpoint = local;
  const remote = endpointFrom(raw.remoteEndpoint, `${at}.remoteEndpoint`);
  if (remote) span.remoteEndpoint = remote;

  const annotations = raw.annotations;
  if (annotations !== undefined && annotations !== null) {
    if (!Array.isArray(annotations)) throw new Invalid('annotations', `${at}.annotations: must be an array of {timestamp, value}`);
    if (annotations.length > 0) span.annotations = sortedAnnotations(annotations, `${at}.annotations`);
  }

  const tags = raw.tags;
  if (tags !== undefined && tags !== null) {
    if (!isPlainObject(tags)) throw new Invalid('tags', `${at}.tags: must be an object of string values`);
    let copy: Record<string, string> | undefined;
    for (const key of Object.keys(tags)) {
      const v = tags[key];
      let value: string;
      if (typeof v === 'string') value = v;
      else if (typeof v === 'number' || typeof v === 'boolean') value = String(v);
      else throw new Invalid('tags', `${at}.tags[${JSON.stringify(key)}]: must be a string (got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v})`);
      copy ??= {};
      // a "__proto__" key must stay a tag, not become the object's prototype
      if (key === '__proto__') Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
      else copy[key] = value;
    }
    if (copy) span.tags = copy;
  }

  if (flag(raw.debug, `${at}.debug`)) span.debug = true;
  // shared describes the server half of an RPC; Zipkin drops it from client spans
  if (flag(raw.shared, `${at}.shared`) && kind !== 'CLIENT') span.shared = true;
  return span;
}

function traceIdFrom(v: unknown, at: string): string {
  const id = hexId(v, 32, at, 'trace_id', 'must be 16 or 32 lower-hex characters');
  if (isAllZeros(id)) throw new Invalid('trace_id', `${at}: must not be all zeros`);
  if (id.length === 16) return id;
  if (id.length < 16) return id.padStart(16, '0');
  const padded = id.padStart(32, '0');
  return padded.startsWith('0000000000000000') ? padded.slice(16) : padded;
}

function spanIdFrom(v: unknown, at: string): string {
  const id = hexId(v, 16, at, 'span_id', 'must be 16 lower-hex characters');
  if (isAllZeros(id)) throw new Invalid('span_id', `${at}: must not be all zeros`);
  return id.padStart(16, '0');
}

/** A 1..max character hex string (a JSON number is read as its digits), lowercased and left-padded to 16. */
function hexId(v: unknown, max: number, at: string, reason: SpanInvalidReason, expected: string): string {
  if (v === undefined || v === null) throw new Invalid(reason, `${at}: required; ${expected}`);
  const s = typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? String(v) : v;
  if (typeof s !== 'string' || s.length === 0 || s.length > max || !isHex(s)) {
    throw new Invalid(reason, `${at}: ${expected} (got ${short(v)})`);
  }
  const lower = s.toLowerCase();
  return lower.length < 16 ? lower.padStart(16, '0') : lower;
}

function isHex(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // 0-9, A-F, a-f
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

function isAllZeros(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== 48) return false;
  return true;
}

/** A string, or a JSON number read as its decimal text (as Zipkin's reader does); null is absent. */
function text(v: unknown, at: string, reason: SpanInvalidReason): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  throw new Invalid(reason, `${at}: must be a string (got ${short(v)})`);
}

/** An integer given as a JSON number or a quoted number ("1700000000000000", "-1"). */
function integer(v: unknown): number | undefined {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^\s*-?\d+(\.\d+)?([eE][+-]?\d+)?\s*$/.test(v)) n = Number(v);
  else return undefined;
  if (!Number.isFinite(n) || Math.abs(n) > Number.MAX_SAFE_INTEGER) return undefined;
  // Zipkin refuses fractions; some OpenTelemetry exporters send them (the specification once asked for "decimal accuracy")
  return Math.round(n);
}

/** Microseconds as an integer; negative values are returned as they are (the caller decides). Null is absent. */
function micros(v: unknown, at: string, reason: 'timestamp' | 'duration'): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = integer(v);
  if (n === undefined) throw new Invalid(reason, `${at}: must be an integer number of microseconds (got ${short(v)})`);
  return n;
}

function endpointFrom(v: unknown, at: string): ZipkinEndpoint | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) throw new Invalid('endpoint', `${at}: must be an object {serviceName, ipv4, ipv6, port}`);
  const out: ZipkinEndpoint = {};
  let empty = true;
  const serviceName = text(v.serviceName, `${at}.serviceName`, 'endpoint');
  if (serviceName !== undefined && serviceName !== '') {
    out.serviceName = serviceName;
    empty = false;
  }
  for (const key of ['ipv4', 'ipv6'] as const) {
    const ip = text(v[key], `${at}.${key}`, 'endpoint');
    if (ip === undefined || ip === '') continue;
    // an address that does not parse is dropped, as Zipkin drops it; the endpoint stays
    const parsed = parseIp(ip);
    if (parsed === undefined) continue;
    out[parsed.family] = parsed.address;
    empty = false;
  }
  const port = v.port;
  if (port !== undefined && port !== null) {
    const n = integer(port);
    if (n === undefined || n > 65535) throw new Invalid('endpoint', `${at}.port: must be an integer up to 65535 (got ${short(port)})`);
    if (n > 0) {
      out.port = n;
      empty = false;
    }
  }
  return empty ? undefined : out;
}

/** Either family from either key: an IPv4-mapped (or -compatible) IPv6 address is IPv4; IPv6 in canonical form. */
function parseIp(ip: string): { family: 'ipv4' | 'ipv6'; address: string } | undefined {
  if (isIPv4(ip)) return { family: 'ipv4', address: ip };
  if (!isIPv6(ip) || ip.includes('%')) return undefined;
  const lower = ip.toLowerCase();
  const embedded = /^::(ffff:)?(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (embedded !== null && isIPv4(embedded[2])) return { family: 'ipv4', address: embedded[2] };
  try {
    return { family: 'ipv6', address: new URL(`http://[${ip}]/`).hostname.slice(1, -1) };
  } catch {
    return undefined;
  }
}

function sortedAnnotations(raw: unknown[], at: string): ZipkinAnnotation[] {
  const list = new Array<ZipkinAnnotation>(raw.length);
  for (let j = 0; j < raw.length; j++) list[j] = annotationFrom(raw[j], `${at}[${j}]`);
  list.sort((a, b) => a.timestamp - b.timestamp || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  let kept = 1;
  for (let j = 1; j < list.length; j++) {
    const prev = list[kept - 1];
    if (list[j].timestamp !== prev.timestamp || list[j].value !== prev.value) list[kept++] = list[j];
  }
  list.length = kept;
  return list;
}

function annotationFrom(v: unknown, at: string): ZipkinAnnotation {
  if (!isPlainObject(v)) throw new Invalid('annotations', `${at}: must be an object {timestamp, value}`);
  if (v.timestamp === undefined || v.timestamp === null) throw new Invalid('annotations', `${at}.timestamp: required, epoch microseconds`);
  const timestamp = integer(v.timestamp);
  if (timestamp === undefined) throw new Invalid('annotations', `${at}.timestamp: must be an integer number of epoch microseconds (got ${short(v.timestamp)})`);
  const value = text(v.value, `${at}.value`, 'annotations');
  if (value === undefined) throw new Invalid('annotations', `${at}.value: required, a string`);
  return { timestamp, value };
}

/** true, false or absent; only true is kept (as Zipkin keeps it). */
function flag(v: unknown, at: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw new Invalid('flags', `${at}: must be true or false (got ${short(v)})`);
  return v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A bounded rendering of a bad value for an error message. */
function short(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
