/**
 * OTLP log records ⇄ plumb log events (NDJSON lines, shared/wire.ts LOGS_PATH), ECS-style so the
 * Elasticsearch mapping and Kibana's log → trace link work as for tailed logs:
 *
 *   { "@timestamp",                 time_unix_nano (observed time when 0), RFC 3339 in ns
 *     "message",                    the body: a string as is, anything else as JSON
 *     "body"?,                      a structured body (map or list) as JSON
 *     "log": { "level" }?,          severity_text
 *     "event": { "id", "created", "severity"? },   observed time, severity_number
 *     "trace": { "id" }?, "span": { "id" }?,       hex, as ECS and Kibana expect
 *     "service": { "name" }?, "host": { "name" }?, from the resource
 *     "attributes"?, "resource": { "attributes" }?, "scope": { "name", "version" }?,
 *     "otel": { "flags"?, "dropped_attributes_count"?, "event_name"? } }
 *
 * Event id (exactly once on retry): `otlp-` + 32 hex digits of a SHA-256 over the record's
 * resource, scope and every field of the record, + `-` + the how-many-th identical record of
 * the request it is. An OTLP client that sends a request again (after a timeout, a 429/503 or a
 * lost response) sends the same records, so they get the same ids, and the collector's window
 * of recent ids and the sinks' ids (Elasticsearch _id, the file sink's write records) keep one
 * copy. What it does not promise: two records identical in every field — both timestamps to the
 * nanosecond included — sent in different requests are taken as one.
 */
import { createHash } from 'node:crypto';
import { anyValueKind, anyValueToJs, attributesToObject, hex, int64ToString, jsToAnyValue, type Int64, type KeyValue, type Resource, type Scope } from './codec.ts';

export interface OtlpLogRecord {
  timeUnixNano?: Int64 | null;
  observedTimeUnixNano?: Int64 | null;
  severityNumber?: number | null;
  severityText?: string | null;
  body?: KeyValue['value'];
  attributes?: KeyValue[] | null;
  droppedAttributesCount?: number | null;
  flags?: number | null;
  traceId?: Uint8Array | null;
  spanId?: Uint8Array | null;
  eventName?: string | null;
}

export interface ExportLogsServiceRequest {
  resourceLogs?: { resource?: Resource | null; scopeLogs?: { scope?: Scope | null; logRecords?: OtlpLogRecord[] | null }[] | null }[] | null;
}

export interface LogsDecoded {
  /** One NDJSON line per accepted record, each ending in '\n'. */
  ndjson: Buffer;
  ids: string[];
  count: number;
  rejected: number;
  error: string;
}

const EPOCH_NANOS_MAX = 253402300799999999999n; // 9999-12-31T23:59:59.999999999Z

/** Decimal nanoseconds since the epoch → RFC 3339 UTC with nanoseconds, or '' when out of range. */
export function nanosToIso(nanos: string): string {
  const n = BigInt(nanos);
  if (n <= 0n || n > EPOCH_NANOS_MAX) return '';
  const ms = Number(n / 1_000_000n);
  const frac = (n % 1_000_000_000n).toString().padStart(9, '0');
  return `${new Date(ms).toISOString().slice(0, 19)}.${frac}Z`;
}

/**
 * Maps every record; `hostName` is the host of the agent that received them, used when the
 * resource names none. Records with a malformed trace or span id are refused (counted).
 */
export function otlpToEvents(req: ExportLogsServiceRequest, hostName: string, now = Date.now()): LogsDecoded {
  const lines: string[] = [];
  const ids: string[] = [];
  let rejected = 0;
  let error = '';
  const seen = new Map<string, number>();
  const nowIso = new Date(now).toISOString();
  for (const rl of req.resourceLogs ?? []) {
    const resourceAttrs = attributesToObject(rl.resource?.attributes);
    const resourceJson = JSON.stringify(resourceAttrs);
    const service = typeof resourceAttrs['service.name'] === 'string' ? (resourceAttrs['service.name'] as string) : '';
    const host = typeof resourceAttrs['host.name'] === 'string' ? (resourceAttrs['host.name'] as string) : hostName;
    for (const sl of rl.scopeLogs ?? []) {
      const scope = sl.scope;
      const scopeJson = JSON.stringify([scope?.name ?? '', scope?.version ?? '']);
      for (const r of sl.logRecords ?? []) {
        const traceId = r.traceId && r.traceId.length > 0 ? r.traceId : null;
        const spanId = r.spanId && r.spanId.length > 0 ? r.spanId : null;
        if ((traceId !== null && traceId.length !== 16) || (spanId !== null && spanId.length !== 8)) {
          rejected++;
          if (error === '') error = 'log record trace_id must be 16 bytes and span_id 8 bytes (or both empty)';
          continue;
        }
        const time = int64ToString(r.timeUnixNano);
        const observed = int64ToString(r.observedTimeUnixNano);
        const timeIso = nanosToIso(time) || nanosToIso(observed) || nowIso;
        const observedIso = nanosToIso(observed) || nowIso;
        const kind = anyValueKind(r.body);
        const bodyJs = anyValueToJs(r.body);
        const message = kind === 'string' ? (bodyJs as string) : kind === 'empty' ? '' : JSON.stringify(bodyJs);
        const attributes = attributesToObject(r.attributes);
        const doc: Record<string, unknown> = { '@timestamp': timeIso, message };
        if (kind === 'kvlist' || kind === 'array') doc.body = bodyJs;
        if (r.severityText) doc.log = { level: r.severityText };
        const event: Record<string, unknown> = { id: '', created: observedIso };
        if (r.severityNumber) event.severity = r.severityNumber;
        doc.event = event;
        if (traceId !== null) doc.trace = { id: hex(traceId) };
        if (spanId !== null) doc.span = { id: hex(spanId) };
        if (service !== '') doc.service = { name: service };
        if (host !== '') doc.host = { name: host };
        if (Object.keys(attributes).length > 0) doc.attributes = attributes;
        if (Object.keys(resourceAttrs).length > 0) doc.resource = { attributes: resourceAttrs };
        if (scope?.name || scope?.version) doc.scope = { name: scope?.name ?? '', version: scope?.version ?? '' };
        const otel: Record<string, unknown> = {};
        if (r.flags) otel.flags = r.flags;
        if (r.droppedAttributesCount) otel.dropped_attributes_count = r.droppedAttributesCount;
        if (r.eventName) otel.event_name = r.eventName;
        if (Object.keys(otel).length > 0) doc.otel = otel;

        const digest = createHash('sha256')
          .update(resourceJson)
          .update('\u0000')
          .update(scopeJson)
          .update('\u0000')
          .update(JSON.stringify([time, observed, r.severityNumber ?? 0, r.severityText ?? '', kind, bodyJs, attributes, hex(traceId), hex(spanId), r.flags ?? 0, r.eventName ?? '']))
          .digest('hex')
          .slice(0, 32);
        const n = seen.get(digest) ?? 0;
        seen.set(digest, n + 1);
        const id = `otlp-${digest}-${n}`;
        event.id = id;
        ids.push(id);
        lines.push(JSON.stringify(doc));
      }
    }
  }
  const ndjson = lines.length === 0 ? Buffer.alloc(0) : Buffer.from(`${lines.join('\n')}\n`);
  return { ndjson, ids, count: lines.length, rejected, error };
}

// ---- plumb events → OTLP (the exporter) ----

function isoToNanos(iso: unknown): string {
  if (typeof iso !== 'string') return '0';
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(iso);
  if (m === null) {
    const ms = Date.parse(iso);
    return Number.isNaN(ms) ? '0' : (BigInt(ms) * 1_000_000n).toString();
  }
  const secs = BigInt(Date.parse(`${m[1]}Z`)) / 1000n;
  return (secs * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'))).toString();
}

function objectToAttributes(o: unknown): KeyValue[] {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return [];
  return Object.entries(o as Record<string, unknown>).map(([key, v]) => ({ key, value: jsToAnyValue(v) }));
}

/**
 * Events (parsed NDJSON objects) → one ExportLogsServiceRequest (plain objects for
 * codec.encodeRequest). An event that came in through OTLP goes out as the record it was; a
 * tailed log event becomes a record with its message as body, its @timestamp as time, and its
 * other fields as attributes (nested objects as maps).
 */
export function eventsToOtlp(events: readonly Record<string, unknown>[]): Record<string, unknown> {
  const byResource = new Map<string, { resource: KeyValue[]; scopes: Map<string, { scope: Record<string, unknown>; records: Record<string, unknown>[] }> }>();
  for (const ev of events) {
    const fromOtlp = typeof (ev.event as Record<string, unknown> | undefined)?.id === 'string' && String((ev.event as Record<string, unknown>).id).startsWith('otlp-');
    let resource: KeyValue[];
    let scope: Record<string, unknown> = {};
    const record: Record<string, unknown> = { timeUnixNano: isoToNanos(ev['@timestamp']) };
    if (fromOtlp) {
      const e = ev.event as Record<string, unknown>;
      resource = objectToAttributes((ev.resource as Record<string, unknown> | undefined)?.attributes);
      const sc = ev.scope as Record<string, unknown> | undefined;
      if (sc) scope = { name: String(sc.name ?? ''), version: String(sc.version ?? '') };
      record.observedTimeUnixNano = isoToNanos(e.created);
      if (typeof e.severity === 'number') record.severityNumber = e.severity;
      const level = (ev.log as Record<string, unknown> | undefined)?.level;
      if (typeof level === 'string') record.severityText = level;
      record.body = ev.body !== undefined ? jsToAnyValue(ev.body) : ev.message === '' ? undefined : { stringValue: String(ev.message ?? '') };
      const attrs = objectToAttributes(ev.attributes);
      if (attrs.length > 0) record.attributes = attrs;
      const otel = (ev.otel ?? {}) as Record<string, unknown>;
      if (typeof otel.flags === 'number') record.flags = otel.flags;
      if (typeof otel.dropped_attributes_count === 'number') record.droppedAttributesCount = otel.dropped_attributes_count;
      if (typeof otel.event_name === 'string') record.eventName = otel.event_name;
    } else {
      const host = (ev.host as Record<string, unknown> | undefined)?.name;
      resource = typeof host === 'string' ? [{ key: 'host.name', value: { stringValue: host } }] : [];
      record.body = { stringValue: String(ev.message ?? '') };
      const rest: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(ev)) if (k !== '@timestamp' && k !== 'message' && k !== 'trace' && k !== 'span') rest[k] = v;
      record.attributes = objectToAttributes(rest);
      const level = (ev.log as Record<string, unknown> | undefined)?.level;
      if (typeof level === 'string') record.severityText = level;
    }
    const traceId = (ev.trace as Record<string, unknown> | undefined)?.id;
    const spanId = (ev.span as Record<string, unknown> | undefined)?.id;
    if (typeof traceId === 'string' && /^[0-9a-f]{32}$/.test(traceId)) record.traceId = Buffer.from(traceId, 'hex');
    if (typeof spanId === 'string' && /^[0-9a-f]{16}$/.test(spanId)) record.spanId = Buffer.from(spanId, 'hex');
    const rkey = JSON.stringify(resource);
    let group = byResource.get(rkey);
    if (group === undefined) byResource.set(rkey, (group = { resource, scopes: new Map() }));
    const skey = JSON.stringify(scope);
    let sg = group.scopes.get(skey);
    if (sg === undefined) group.scopes.set(skey, (sg = { scope, records: [] }));
    sg.records.push(record);
  }
  return {
    resourceLogs: [...byResource.values()].map((g) => ({
      resource: { attributes: g.resource },
      scopeLogs: [...g.scopes.values()].map((s) => ({ scope: s.scope, logRecords: s.records })),
    })),
  };
}
