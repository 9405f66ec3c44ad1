/**
 * OTLP spans ⇄ plumb spans. plumb carries spans in the Zipkin v2 model (shared/zipkin.ts), so an
 * OTLP span is mapped the way the OpenTelemetry specification maps spans to Zipkin
 * (specification/trace/sdk_exporters/zipkin.md and common/mapping-to-non-otlp.md):
 *
 * - ids as lower hex; a 128-bit trace id whose high half is zero becomes 64-bit, as Zipkin does;
 * - kind: SERVER, CLIENT, PRODUCER, CONSUMER kept, INTERNAL and unspecified omitted;
 * - times in whole microseconds, truncated (1234 ns is 1 µs), duration from end − start;
 * - localEndpoint.serviceName from the resource's service.name (`unknown_service` without one);
 *   remoteEndpoint for CLIENT and PRODUCER spans from peer.service, server.address, … in the
 *   specification's order;
 * - tags: span attributes (arrays and maps as JSON, booleans "true"/"false"), then the resource
 *   attributes (as OpenTelemetry's Zipkin exporter does), otel.scope.name/version and their
 *   deprecated otel.library.* aliases, otel.status_code (OK, ERROR) and `error` (the status
 *   description, "" when there is none) for ERROR, otel.dropped_*_count when non-zero;
 * - events become annotations: the event name, or `"name":{…attributes as JSON…}`;
 * - links, which Zipkin has no field for, go into the tag `otel.links` as a JSON list of
 *   {traceId, spanId[, traceState][, attributes]}, so they survive to the sinks and back out.
 *
 * spansToOtlp is the inverse used by the OTLP exporter: a span that came in through OTLP goes
 * out as the same OTLP span (less its trace state; its resource attributes other than
 * service.name travel as span attributes). What the Zipkin form holds and OTLP has no field for
 * (endpoint addresses, debug, shared, which derived tags were there) travels in the attribute
 * `plumb.zipkin`, so another plumb reading the export stores the very same span; a remote
 * service name also becomes peer.service for other back ends.
 */
import type { ZipkinAnnotation, ZipkinEndpoint, ZipkinKind, ZipkinSpan } from '../zipkin.ts';
import { isIPv4, isIPv6 } from 'node:net';
import { anyValueToString, hex, jsToAnyValue, type Int64, type KeyValue, type Resource, type Scope } from './codec.ts';

export interface OtlpSpan {
  traceId?: Uint8Array | null;
  spanId?: Uint8Array | null;
  traceState?: string | null;
  parentSpanId?: Uint8Array | null;
  name?: string | null;
  kind?: number | null;
  startTimeUnixNano?: Int64 | null;
  endTimeUnixNano?: Int64 | null;
  attributes?: KeyValue[] | null;
  droppedAttributesCount?: number | null;
  events?: { timeUnixNano?: Int64 | null; name?: string | null; attributes?: KeyValue[] | null; droppedAttributesCount?: number | null }[] | null;
  droppedEventsCount?: number | null;
  links?: { traceId?: Uint8Array | null; spanId?: Uint8Array | null; traceState?: string | null; attributes?: KeyValue[] | null }[] | null;
  droppedLinksCount?: number | null;
  status?: { message?: string | null; code?: number | null } | null;
}

export interface ExportTraceServiceRequest {
  resourceSpans?: { resource?: Resource | null; scopeSpans?: { scope?: Scope | null; spans?: OtlpSpan[] | null }[] | null }[] | null;
}

export interface SpansDecoded {
  spans: ZipkinSpan[];
  /** Spans refused (bad ids or times); the first reason is in `error`. */
  rejected: number;
  error: string;
}

export const KINDS: (ZipkinKind | undefined)[] = [undefined, undefined, 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const KIND_NUMBERS: Record<ZipkinKind, number> = { SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 };
const SPAN_KIND_INTERNAL = 1;
const STATUS_OK = 1;
const STATUS_ERROR = 2;

export const LINKS_TAG = 'otel.links';
const STATUS_CODE_TAG = 'otel.status_code';
const ERROR_TAG = 'error';
const SCOPE_NAME_TAG = 'otel.scope.name';
const SCOPE_VERSION_TAG = 'otel.scope.version';
const LIBRARY_NAME_TAG = 'otel.library.name';
const LIBRARY_VERSION_TAG = 'otel.library.version';
const DROPPED_ATTRIBUTES_TAG = 'otel.dropped_attributes_count';
const DROPPED_EVENTS_TAG = 'otel.dropped_events_count';
const DROPPED_LINKS_TAG = 'otel.dropped_links_count';
export const SERVICE_NAME = 'service.name';
export const UNKNOWN_SERVICE = 'unknown_service';

/** Remote endpoint candidates in the specification's order; `address` ones may be IPs. */
const REMOTE_NAMES: readonly (readonly [string, 'name' | 'address', string?])[] = [
  ['peer.service', 'name'],
  ['server.address', 'name'],
  ['net.peer.name', 'name'],
  ['network.peer.address', 'address', 'network.peer.port'],
  ['server.socket.domain', 'name'],
  ['server.socket.address', 'address', 'server.socket.port'],
  ['net.sock.peer.name', 'name'],
  ['net.sock.peer.addr', 'address', 'net.sock.peer.port'],
  ['peer.hostname', 'name'],
  ['peer.address', 'address'],
  ['db.name', 'name'],
];

/** Maps every span of a request; spans with unusable ids or times are counted, not fatal. */
export function otlpToSpans(req: ExportTraceServiceRequest): SpansDecoded {
  const out: SpansDecoded = { spans: [], rejected: 0, error: '' };
  for (const rs of req.resourceSpans ?? []) {
    const resourceTags: [string, string][] = [];
    let service = UNKNOWN_SERVICE;
    for (const kv of rs.resource?.attributes ?? []) {
      const v = anyValueToString(kv.value);
      resourceTags.push([kv.key, v]);
      if (kv.key === SERVICE_NAME && v !== '') service = v;
    }
    for (const ss of rs.scopeSpans ?? []) {
      const scope = ss.scope;
      for (const s of ss.spans ?? []) {
        const span = toZipkin(s, service, resourceTags, scope, out);
        if (span !== null) out.spans.push(span);
      }
    }
  }
  return out;
}

export function reject(out: SpansDecoded, message: string): null {
  out.rejected++;
  if (out.error === '') out.error = message;
  return null;
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function toZipkin(s: OtlpSpan, service: string, resourceTags: [string, string][], scope: Scope | null | undefined, out: SpansDecoded): ZipkinSpan | null {
  const tid = s.traceId;
  if (!tid || tid.length !== 16 || isZero(tid)) return reject(out, 'span trace_id must be 16 bytes, not all zero');
  const sid = s.spanId;
  if (!sid || sid.length !== 8 || isZero(sid)) return reject(out, 'span span_id must be 8 bytes, not all zero');
  let traceId = hex(tid);
  if (traceId.startsWith('0000000000000000')) traceId = traceId.slice(16);
  const id = hex(sid);
  const span: ZipkinSpan = { traceId, id };
  const pid = s.parentSpanId;
  if (pid && pid.length > 0) {
    if (pid.length !== 8) return reject(out, 'span parent_span_id must be 8 bytes or empty');
    const p = hex(pid);
    if (!isZero(pid) && p !== id) span.parentId = p;
  }
  const kind = KINDS[s.kind ?? 0];
  if (kind !== undefined) span.kind = kind;
  if (s.name) span.name = s.name;
  const start = micros(s.startTimeUnixNano);
  if (start > 0) {
    const end = micros(s.endTimeUnixNano);
    if (end < start) return reject(out, 'span end_time_unix_nano is before its start');
    span.timestamp = start;
    // (end − start) in whole µs, truncated
    const d = Math.floor(nanosBetween(s.startTimeUnixNano, s.endTimeUnixNano) / 1000);
    if (d > 0) span.duration = d;
  }
  span.localEndpoint = { serviceName: service };

  const tags: Record<string, string> = {};
  const attrs = s.attributes ?? [];
  let fields: ZipkinFields | null = null;
  for (const kv of attrs) {
    if (kv.key === ZIPKIN_FIELDS) fields = zipkinFields(anyValueToString(kv.value));
    else setTag(tags, kv.key, anyValueToString(kv.value));
  }
  const links = s.links ?? [];
  let linkList: Record<string, unknown>[] | null = null;
  if (links.length > 0) {
    linkList = [];
    for (const l of links) linkList.push(linkObject(hex(l.traceId), hex(l.spanId), l.traceState ?? '', l.attributes && l.attributes.length > 0 ? Object.fromEntries(l.attributes.map((kv) => [kv.key, anyValueToString(kv.value)])) : null));
  }
  const status = s.status;
  finishSpan(span, tags, fields, resourceTags, scope?.name ?? '', scope?.version ?? '', status?.code ?? 0, status?.message ?? '', s.droppedAttributesCount ?? 0, s.droppedEventsCount ?? 0, s.droppedLinksCount ?? 0, linkList);

  if (fields === null && (kind === 'CLIENT' || kind === 'PRODUCER') && attrs.length > 0) {
    const byKey = new Map<string, string>();
    for (const kv of attrs) byKey.set(kv.key, anyValueToString(kv.value));
    const remote = remoteEndpoint(byKey);
    if (remote !== undefined) span.remoteEndpoint = remote;
  }

  const events = s.events ?? [];
  if (events.length > 0) {
    const annotations: ZipkinAnnotation[] = [];
    for (const e of events) {
      const t = micros(e.timeUnixNano);
      if (!(t > 0)) continue;
      const attrs = e.attributes ?? [];
      const value = annotationValue(e.name ?? '', attrs.length === 0 ? null : Object.fromEntries(attrs.map((kv) => [kv.key, anyValueToString(kv.value)])));
      if (value !== '') annotations.push({ timestamp: t, value });
    }
    if (annotations.length > 0) span.annotations = annotations;
  }
  return span;
}

/**
 * What the mapping does once a span's own attributes are its tags (both decoders share it: the
 * message-object one above and the wire decoder in traces-wire.ts): the resource's tags, scope,
 * status, dropped counts, links, the `plumb.zipkin` fields; then the tags go on the span.
 */
export function finishSpan(
  span: ZipkinSpan,
  tags: Record<string, string>,
  fields: ZipkinFields | null,
  resourceTags: readonly (readonly [string, string])[],
  scopeName: string,
  scopeVersion: string,
  code: number,
  statusMessage: string,
  droppedAttributes: number,
  droppedEvents: number,
  droppedLinks: number,
  links: Record<string, unknown>[] | null,
): void {
  // a span exported by plumb carries every tag as an attribute: the resource's are not added again
  if (fields === null) for (let i = 0; i < resourceTags.length; i++) setTag(tags, resourceTags[i][0], resourceTags[i][1]);
  if (scopeName) {
    tags[SCOPE_NAME_TAG] = scopeName;
    tags[LIBRARY_NAME_TAG] = scopeName;
  }
  if (scopeVersion) {
    tags[SCOPE_VERSION_TAG] = scopeVersion;
    tags[LIBRARY_VERSION_TAG] = scopeVersion;
  }
  if (code === STATUS_OK) {
    tags[STATUS_CODE_TAG] = 'OK';
    if (tags[ERROR_TAG] === 'false') delete tags[ERROR_TAG];
  } else if (code === STATUS_ERROR) {
    tags[STATUS_CODE_TAG] = 'ERROR';
    tags[ERROR_TAG] = statusMessage;
  } else if (tags[ERROR_TAG] === 'false' && fields === null) {
    delete tags[ERROR_TAG];
  }
  if (droppedAttributes) tags[DROPPED_ATTRIBUTES_TAG] = String(droppedAttributes);
  if (droppedEvents) tags[DROPPED_EVENTS_TAG] = String(droppedEvents);
  if (droppedLinks) tags[DROPPED_LINKS_TAG] = String(droppedLinks);
  if (links !== null) tags[LINKS_TAG] = JSON.stringify(links);
  if (fields !== null) applyZipkinFields(span, tags, fields);
  if (hasKeys(tags)) span.tags = tags;
}

/** One entry of the `otel.links` tag. */
export function linkObject(traceId: string, spanId: string, traceState: string, attributes: Record<string, string> | null): Record<string, unknown> {
  const link: Record<string, unknown> = { traceId, spanId };
  if (traceState) link.traceState = traceState;
  if (attributes !== null) link.attributes = attributes;
  return link;
}

/** An event as a Zipkin annotation's value: its name, or `"name":{…attributes…}`. */
export function annotationValue(name: string, attributes: Record<string, string> | null): string {
  return attributes === null ? name : `${JSON.stringify(name)}:${JSON.stringify(attributes)}`;
}

/**
 * What a plumb span holds that OTLP has no field for, carried by the exporter in one span
 * attribute (`plumb.zipkin`, a JSON object) so that plumb → OTLP → plumb gives the same span:
 * l: localEndpoint addresses and port; r: the remote endpoint as it was (null: none);
 * u: no local service name; d, s: debug, shared; t: which of the tags the mapping derives from OTLP fields (status, scope,
 * dropped counts, links) the span had; p: peer.service was added by the exporter. Another
 * backend sees an ordinary string attribute.
 */
export const ZIPKIN_FIELDS = 'plumb.zipkin';

export interface ZipkinFields {
  l?: ZipkinEndpoint;
  r?: ZipkinEndpoint | null;
  u?: boolean;
  d?: boolean;
  s?: boolean;
  t?: string[];
  p?: boolean;
}

export function zipkinFields(json: string): ZipkinFields | null {
  try {
    const v = JSON.parse(json) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as ZipkinFields) : null;
  } catch {
    return null;
  }
}

function endpointOf(v: unknown): ZipkinEndpoint | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  const e = v as Record<string, unknown>;
  const out: ZipkinEndpoint = {};
  if (typeof e.serviceName === 'string' && e.serviceName !== '') out.serviceName = e.serviceName;
  if (typeof e.ipv4 === 'string' && isIPv4(e.ipv4)) out.ipv4 = e.ipv4;
  if (typeof e.ipv6 === 'string' && isIPv6(e.ipv6)) out.ipv6 = e.ipv6;
  if (typeof e.port === 'number' && Number.isInteger(e.port) && e.port > 0 && e.port <= 65535) out.port = e.port;
  return Object.keys(out).length > 0 ? out : undefined;
}

function applyZipkinFields(span: ZipkinSpan, tags: Record<string, string>, f: ZipkinFields): void {
  const local: ZipkinEndpoint = { ...(f.u === true ? {} : span.localEndpoint), ...endpointOf(f.l) };
  if (Object.keys(local).length > 0) span.localEndpoint = local;
  else delete span.localEndpoint;
  const remote = endpointOf(f.r);
  if (remote !== undefined) span.remoteEndpoint = remote;
  if (f.d === true) span.debug = true;
  if (f.s === true) span.shared = true;
  const kept = new Set(Array.isArray(f.t) ? f.t : []);
  for (const key of RESERVED_TAGS) if (!kept.has(key)) delete tags[key];
  if (f.p === true) delete tags['peer.service'];
}

/** Whether an object has any key, without building the list of them. */
function hasKeys(o: Record<string, string>): boolean {
  for (const _ in o) return true;
  return false;
}

export function setTag(tags: Record<string, string>, key: string, value: string): void {
  // a "__proto__" key must stay a tag, not become the object's prototype
  if (key === '__proto__') Object.defineProperty(tags, key, { value, enumerable: true, writable: true, configurable: true });
  else tags[key] = value;
}

function nanos(v: Int64 | null | undefined): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === 'number') return BigInt(Math.round(v));
  return BigInt(v.toString());
}

/**
 * Whole microseconds of a uint64 nanosecond count, exactly, without BigInt: 2^32 ns is
 * 4 294 967 µs + 296 ns, so high·2^32 + low = (high·4 294 967) µs + (high·296 + low) ns, and both
 * parts stay far below 2^53.
 */
function micros(v: Int64 | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return Math.floor(v / 1000);
  return microsOf(v.high >>> 0, v.low >>> 0);
}

/** micros() of a uint64 given as its two unsigned 32-bit halves. */
export function microsOf(high: number, low: number): number {
  if (high === 0) return Math.floor(low / 1000);
  return high * 4294967 + Math.floor((high * 296 + low) / 1000);
}
/** end − start in nanoseconds (exact below 2^53 ns, about 104 days). */
function nanosBetween(start: Int64 | null | undefined, end: Int64 | null | undefined): number {
  if (typeof start !== 'object' || start === null || typeof end !== 'object' || end === null) return Number(nanos(end) - nanos(start));
  return ((end.high >>> 0) - (start.high >>> 0)) * 4294967296 + ((end.low >>> 0) - (start.low >>> 0));
}

/** The remote endpoint of a CLIENT or PRODUCER span from its attributes (by key, the last value of each). */
export function remoteEndpoint(byKey: ReadonlyMap<string, string>): ZipkinEndpoint | undefined {
  for (const [key, kind, portKey] of REMOTE_NAMES) {
    const v = byKey.get(key);
    if (v === undefined || v === '') continue;
    const ep: ZipkinEndpoint = {};
    if (kind === 'address' && isIPv4(v)) ep.ipv4 = v;
    else if (kind === 'address' && isIPv6(v)) ep.ipv6 = v;
    else ep.serviceName = v;
    const port = portKey === undefined ? NaN : Number(byKey.get(portKey));
    if (Number.isInteger(port) && port > 0 && port <= 65535) ep.port = port;
    return ep;
  }
  return undefined;
}

// ---- plumb spans → OTLP (the exporter) ----

const RESERVED_TAGS = new Set([STATUS_CODE_TAG, SCOPE_NAME_TAG, SCOPE_VERSION_TAG, LIBRARY_NAME_TAG, LIBRARY_VERSION_TAG, DROPPED_ATTRIBUTES_TAG, DROPPED_EVENTS_TAG, DROPPED_LINKS_TAG, LINKS_TAG]);

/**
 * Groups spans by service and scope into one ExportTraceServiceRequest (plain objects for
 * codec.encodeRequest). Ids are Buffers, times decimal strings of nanoseconds.
 */
export function spansToOtlp(spans: readonly ZipkinSpan[]): Record<string, unknown> {
  const byResource = new Map<string, Map<string, { scope: Record<string, unknown>; spans: Record<string, unknown>[] }>>();
  for (const z of spans) {
    const tags = z.tags ?? {};
    const service = z.localEndpoint?.serviceName ?? UNKNOWN_SERVICE;
    const scopeName = tags[SCOPE_NAME_TAG] ?? tags[LIBRARY_NAME_TAG] ?? '';
    const scopeVersion = tags[SCOPE_VERSION_TAG] ?? tags[LIBRARY_VERSION_TAG] ?? '';
    let scopes = byResource.get(service);
    if (scopes === undefined) byResource.set(service, (scopes = new Map()));
    const scopeKey = `${scopeName}\u0000${scopeVersion}`;
    let group = scopes.get(scopeKey);
    if (group === undefined) {
      const scope: Record<string, unknown> = {};
      if (scopeName !== '') scope.name = scopeName;
      if (scopeVersion !== '') scope.version = scopeVersion;
      scopes.set(scopeKey, (group = { scope, spans: [] }));
    }
    group.spans.push(spanToOtlp(z));
  }
  const resourceSpans: Record<string, unknown>[] = [];
  for (const [service, scopes] of byResource) {
    resourceSpans.push({
      resource: { attributes: [{ key: SERVICE_NAME, value: { stringValue: service } }] },
      scopeSpans: [...scopes.values()].map((g) => ({ scope: g.scope, spans: g.spans })),
    });
  }
  return { resourceSpans };
}

function idBytes(hexId: string, bytes: number): Buffer {
  return Buffer.from(hexId.padStart(bytes * 2, '0'), 'hex');
}

function spanToOtlp(z: ZipkinSpan): Record<string, unknown> {
  const tags = z.tags ?? {};
  const start = BigInt(z.timestamp ?? 0) * 1000n;
  const end = start + BigInt(z.duration ?? 0) * 1000n;
  const out: Record<string, unknown> = {
    traceId: idBytes(z.traceId, 16),
    spanId: idBytes(z.id, 8),
    name: z.name ?? '',
    kind: z.kind ? KIND_NUMBERS[z.kind] : SPAN_KIND_INTERNAL,
    startTimeUnixNano: start.toString(),
    endTimeUnixNano: end.toString(),
  };
  if (z.parentId) out.parentSpanId = idBytes(z.parentId, 8);
  const attributes: KeyValue[] = [];
  const code = tags[STATUS_CODE_TAG];
  const fields: ZipkinFields = {};
  for (const key of Object.keys(tags)) {
    if (RESERVED_TAGS.has(key)) {
      (fields.t ??= []).push(key);
      continue;
    }
    if (key === ERROR_TAG && code === 'ERROR') continue;
    attributes.push({ key, value: { stringValue: tags[key] } });
  }
  // Zipkin → OTLP: peer.service from the remote endpoint, unless the tags it was derived from are there
  const remote = z.remoteEndpoint;
  if (remote?.serviceName && tags['peer.service'] === undefined && !REMOTE_NAMES.some(([key]) => tags[key] === remote.serviceName)) {
    attributes.push({ key: 'peer.service', value: { stringValue: remote.serviceName } });
    fields.p = true;
  }
  const local = z.localEndpoint;
  if (local && (local.ipv4 !== undefined || local.ipv6 !== undefined || local.port !== undefined)) fields.l = { ipv4: local.ipv4, ipv6: local.ipv6, port: local.port };
  if (!local?.serviceName) fields.u = true;
  fields.r = remote ?? null;
  if (z.debug) fields.d = true;
  if (z.shared) fields.s = true;
  attributes.push({ key: ZIPKIN_FIELDS, value: { stringValue: JSON.stringify(fields) } });
  out.attributes = attributes;
  if (code === 'OK') out.status = { code: STATUS_OK };
  else if (code === 'ERROR') out.status = { code: STATUS_ERROR, message: tags[ERROR_TAG] ?? '' };
  if (tags[DROPPED_ATTRIBUTES_TAG]) out.droppedAttributesCount = Number(tags[DROPPED_ATTRIBUTES_TAG]);
  if (tags[DROPPED_EVENTS_TAG]) out.droppedEventsCount = Number(tags[DROPPED_EVENTS_TAG]);
  if (tags[DROPPED_LINKS_TAG]) out.droppedLinksCount = Number(tags[DROPPED_LINKS_TAG]);
  if (z.annotations && z.annotations.length > 0) out.events = z.annotations.map(annotationToEvent);
  const links = tags[LINKS_TAG];
  if (links !== undefined) out.links = linksFromTag(links);
  return out;
}

/** `"name":{…}` back into a named event with string attributes; any other value is the name. */
function annotationToEvent(a: ZipkinAnnotation): Record<string, unknown> {
  const event: Record<string, unknown> = { timeUnixNano: (BigInt(a.timestamp) * 1000n).toString(), name: a.value };
  if (a.value.startsWith('"') && a.value.endsWith('}')) {
    try {
      const parsed = JSON.parse(`{${a.value}}`) as Record<string, unknown>;
      const keys = Object.keys(parsed);
      const attrs = parsed[keys[0]];
      // only what the receiving mapping writes back the same way: `"name":{"k":"v",…}`
      if (keys.length === 1 && attrs !== null && typeof attrs === 'object' && !Array.isArray(attrs) && Object.values(attrs).every((v) => typeof v === 'string') && `${JSON.stringify(keys[0])}:${JSON.stringify(attrs)}` === a.value) {
        event.name = keys[0];
        event.attributes = Object.entries(attrs).map(([key, v]) => ({ key, value: jsToAnyValue(String(v)) }));
      }
    } catch {
      // an annotation that only looks like one: it stays the event's name
    }
  }
  return event;
}

function linksFromTag(value: string): Record<string, unknown>[] {
  try {
    const list = JSON.parse(value) as { traceId?: string; spanId?: string; traceState?: string; attributes?: Record<string, string> }[];
    if (!Array.isArray(list)) return [];
    return list.map((l) => {
      const link: Record<string, unknown> = { traceId: Buffer.from(String(l.traceId ?? ''), 'hex'), spanId: Buffer.from(String(l.spanId ?? ''), 'hex') };
      if (l.traceState) link.traceState = l.traceState;
      if (l.attributes) link.attributes = Object.entries(l.attributes).map(([key, v]) => ({ key, value: { stringValue: String(v) } }));
      return link;
    });
  } catch {
    return [];
  }
}
