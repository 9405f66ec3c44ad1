/**
 * The Zipkin v2 span model (https://zipkin.io/zipkin-api/#/default/post_spans), its validation,
 * and the batch the agent forwards spans in. Both roles use it: the agent validates what apps
 * post, the collector validates what agents forward.
 *
 * Validation is strict where downstream stages depend on a field (ids, times, tag types) and
 * normalises the way Zipkin's own server does, so a span stored through plumb equals the span
 * Zipkin would have stored from the same request:
 * - hex ids are lowercased (Zipkin itself refuses upper case; we accept and fix it), shorter ids
 *   are left-padded with zeros to 16 or 32 characters, a 32-character trace id whose high half is
 *   zero becomes its 16-character low half, all-zero trace and span ids are errors;
 * - an all-zero parentId, or one equal to the span's own id, is dropped;
 * - timestamp, duration or endpoint port 0, empty names and empty endpoints mean absent;
 * - fractional microseconds are rounded (Zipkin refuses them; some OpenTelemetry exporters send them);
 * - `shared` is dropped from CLIENT spans;
 * - unknown fields are dropped.
 * Span and service names keep their case (Zipkin lowercases them when it stores them; span
 * metrics label by the name the application chose).
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

/** Why a body was refused, as a low-cardinality metric label. */
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

export type SpansResult = { spans: ZipkinSpan[] } | { error: string; reason: SpanInvalidReason };
export type SpanBatchResult = { batch: SpanBatch } | { error: string; reason: SpanInvalidReason };

/** Thrown inside validation only; never escapes this module. */
class Invalid {
  readonly message: string;
  readonly reason: SpanInvalidReason;
  constructor(reason: SpanInvalidReason, message: string) {
    this.reason = reason;
    this.message = message;
  }
}

/**
 * Validates a parsed Zipkin v2 JSON body (an array of spans) and returns normalised copies.
 * The whole body is refused at its first bad span, as Zipkin does; the message names the
 * span and field (`spans[3].traceId: must be 16 or 32 lower-hex characters`).
 */
export function validateSpans(body: unknown, limits: SpanLimits = DEFAULT_SPAN_LIMITS): SpansResult {
  try {
    return { spans: spansFrom(body, 'spans', limits) };
  } catch (err) {
    if (err instanceof Invalid) return { error: err.message, reason: err.reason };
    throw err;
  }
}

/** Validates a batch an agent forwarded; the spans inside get the same checks as validateSpans. */
export function validateSpanBatch(body: unknown, limits: SpanLimits = DEFAULT_SPAN_LIMITS): SpanBatchResult {
  try {
    if (!isPlainObject(body)) throw new Invalid('batch', 'body: must be a JSON object {id, agent, seq, spans}');
    const { id, agent, seq } = body;
    if (typeof id !== 'string' || id.length === 0 || id.length > 512) throw new Invalid('batch', 'id: must be a non-empty string of at most 512 characters');
    if (typeof agent !== 'string' || agent.length === 0 || agent.length > 256) throw new Invalid('batch', 'agent: must be a non-empty string of at most 256 characters');
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw new Invalid('batch', 'seq: must be a non-negative integer');
    if (body.spans === undefined) throw new Invalid('batch', 'spans: required');
    return { batch: { id, agent, seq, spans: spansFrom(body.spans, 'spans', limits) } };
  } catch (err) {
    if (err instanceof Invalid) return { error: err.message, reason: err.reason };
    throw err;
  }
}

function spansFrom(body: unknown, path: string, limits: SpanLimits): ZipkinSpan[] {
  if (!Array.isArray(body)) throw new Invalid('not_array', `${path}: must be a JSON array of Zipkin v2 spans`);
  if (body.length > limits.maxSpans) throw new Invalid('too_many_spans', `${path}: ${body.length} spans in one body, at most ${limits.maxSpans} allowed; send smaller batches`);
  const out = new Array<ZipkinSpan>(body.length);
  for (let i = 0; i < body.length; i++) out[i] = spanFrom(body[i], `${path}[${i}]`);
  return out;
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

  const name = raw.name;
  if (name !== undefined && name !== null) {
    if (typeof name !== 'string') throw new Invalid('name', `${at}.name: must be a string`);
    if (name !== '') span.name = name;
  }

  const timestamp = micros(raw.timestamp, `${at}.timestamp`, 'timestamp');
  if (timestamp !== undefined) span.timestamp = timestamp;
  const duration = micros(raw.duration, `${at}.duration`, 'duration');
  if (duration !== undefined) span.duration = duration;

  const local = endpointFrom(raw.localEndpoint, `${at}.localEndpoint`);
  if (local) span.localEndpoint = local;
  const remote = endpointFrom(raw.remoteEndpoint, `${at}.remoteEndpoint`);
  if (remote) span.remoteEndpoint = remote;

  const annotations = raw.annotations;
  if (annotations !== undefined && annotations !== null) {
    if (!Array.isArray(annotations)) throw new Invalid('annotations', `${at}.annotations: must be an array of {timestamp, value}`);
    if (annotations.length > 0) {
      const list = new Array<ZipkinAnnotation>(annotations.length);
      for (let j = 0; j < annotations.length; j++) list[j] = annotationFrom(annotations[j], `${at}.annotations[${j}]`);
      span.annotations = list;
    }
  }

  const tags = raw.tags;
  if (tags !== undefined && tags !== null) {
    if (!isPlainObject(tags)) throw new Invalid('tags', `${at}.tags: must be an object of string values`);
    let copy: Record<string, string> | undefined;
    for (const key of Object.keys(tags)) {
      const v = tags[key];
      // Zipkin's tags are string→string; a number or boolean here means the client is not a Zipkin v2 client
      if (typeof v !== 'string') throw new Invalid('tags', `${at}.tags[${JSON.stringify(key)}]: must be a string (got ${v === null ? 'null' : typeof v})`);
      copy ??= {};
      // a "__proto__" key must stay a tag, not become the object's prototype
      if (key === '__proto__') Object.defineProperty(copy, key, { value: v, enumerable: true, writable: true, configurable: true });
      else copy[key] = v;
    }
    if (copy) span.tags = copy;
  }

  const debug = flag(raw.debug, `${at}.debug`);
  if (debug !== undefined) span.debug = debug;
  const shared = flag(raw.shared, `${at}.shared`);
  // shared describes the server half of an RPC; Zipkin drops it from client spans
  if (shared !== undefined && kind !== 'CLIENT') span.shared = shared;
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

/** A 1..max character hex string, lowercased and left-padded to 16. */
function hexId(v: unknown, max: number, at: string, reason: SpanInvalidReason, expected: string): string {
  if (v === undefined || v === null) throw new Invalid(reason, `${at}: required; ${expected}`);
  if (typeof v !== 'string' || v.length === 0 || v.length > max || !isHex(v)) {
    throw new Invalid(reason, `${at}: ${expected} (got ${short(v)})`);
  }
  const lower = v.toLowerCase();
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

/**
 * Microseconds: a non-negative number; 0 and null mean absent. Fractions are rounded to the
 * nearest microsecond: Zipkin refuses them, but some OpenTelemetry exporters send them (the
 * specification once asked for "decimal accuracy"), and downstream stages want integers.
 */
function micros(v: unknown, at: string, reason: 'timestamp' | 'duration'): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !(v >= 0 && v <= Number.MAX_SAFE_INTEGER)) {
    throw new Invalid(reason, `${at}: must be a non-negative integer number of microseconds (got ${short(v)})`);
  }
  const n = Math.round(v);
  return n === 0 ? undefined : n;
}

function endpointFrom(v: unknown, at: string): ZipkinEndpoint | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isPlainObject(v)) throw new Invalid('endpoint', `${at}: must be an object {serviceName, ipv4, ipv6, port}`);
  const out: ZipkinEndpoint = {};
  let empty = true;
  const { serviceName, ipv4, ipv6, port } = v;
  if (serviceName !== undefined && serviceName !== null) {
    if (typeof serviceName !== 'string') throw new Invalid('endpoint', `${at}.serviceName: must be a string`);
    if (serviceName !== '') {
      out.serviceName = serviceName;
      empty = false;
    }
  }
  if (ipv4 !== undefined && ipv4 !== null && ipv4 !== '') {
    if (typeof ipv4 !== 'string' || !isIPv4(ipv4)) throw new Invalid('endpoint', `${at}.ipv4: must be an IPv4 address like 10.1.2.3 (got ${short(ipv4)})`);
    out.ipv4 = ipv4;
    empty = false;
  }
  if (ipv6 !== undefined && ipv6 !== null && ipv6 !== '') {
    if (typeof ipv6 !== 'string' || !isIPv6(ipv6)) throw new Invalid('endpoint', `${at}.ipv6: must be an IPv6 address like 2001:db8::c001 (got ${short(ipv6)})`);
    out.ipv6 = ipv6;
    empty = false;
  }
  if (port !== undefined && port !== null) {
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
      throw new Invalid('endpoint', `${at}.port: must be an integer from 0 to 65535 (got ${short(port)})`);
    }
    if (port !== 0) {
      out.port = port;
      empty = false;
    }
  }
  return empty ? undefined : out;
}

function annotationFrom(v: unknown, at: string): ZipkinAnnotation {
  if (!isPlainObject(v)) throw new Invalid('annotations', `${at}: must be an object {timestamp, value}`);
  const { timestamp, value } = v;
  const micros = typeof timestamp === 'number' && timestamp <= Number.MAX_SAFE_INTEGER ? Math.round(timestamp) : NaN;
  if (!(micros > 0)) {
    throw new Invalid('annotations', `${at}.timestamp: must be a positive integer number of epoch microseconds (got ${short(timestamp)})`);
  }
  if (typeof value !== 'string' || value === '') throw new Invalid('annotations', `${at}.value: must be a non-empty string`);
  return { timestamp: micros, value };
}

function flag(v: unknown, at: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
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
