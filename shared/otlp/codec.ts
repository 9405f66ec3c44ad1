/**
 * OTLP messages, decoded and encoded with the official protobuf definitions: the .proto files of
 * opentelemetry-proto v1.11.0 (proto/, Apache-2.0, unchanged) loaded by protobufjs. Both roles
 * use it: agents and collectors receive OTLP, collectors export it.
 *
 * OTLP/JSON is the protobuf JSON mapping with two exceptions the specification makes: trace and
 * span ids are hex strings, not base64, and enums are integers. A JSON body is turned into the
 * same message objects as a protobuf body (ids rewritten to bytes first), so everything after
 * this module sees one shape.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';

export type Signal = 'traces' | 'metrics' | 'logs';

export const OTLP_PATHS: Record<Signal, string> = { traces: '/v1/traces', metrics: '/v1/metrics', logs: '/v1/logs' };

const REQUEST_TYPES: Record<Signal, string> = {
  traces: 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest',
  metrics: 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest',
  logs: 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest',
};
const RESPONSE_TYPES: Record<Signal, string> = {
  traces: 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse',
  metrics: 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse',
  logs: 'opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse',
};
/** gRPC method paths of the three services. */
export const GRPC_METHODS: Record<Signal, string> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};
/** The field of a partial success that counts rejected items. */
export const REJECTED_FIELD: Record<Signal, string> = { traces: 'rejectedSpans', metrics: 'rejectedDataPoints', logs: 'rejectedLogRecords' };

/** A 64-bit integer as protobufjs decodes it: a Long when the long package is present, else a number. */
export type Int64 = number | { toString(): string; toNumber(): number; low: number; high: number };

export interface KeyValue {
  key: string;
  value?: AnyValue | null;
}

export interface AnyValue {
  stringValue?: string | null;
  boolValue?: boolean | null;
  intValue?: Int64 | null;
  doubleValue?: number | null;
  arrayValue?: { values?: AnyValue[] | null } | null;
  kvlistValue?: { values?: KeyValue[] | null } | null;
  bytesValue?: Uint8Array | null;
}

export interface Resource {
  attributes?: KeyValue[] | null;
  droppedAttributesCount?: number | null;
}

export interface Scope {
  name?: string | null;
  version?: string | null;
  attributes?: KeyValue[] | null;
}

/** Where the .proto files are: beside this module, or in the source tree for a compiled build. */
function protoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'proto'), join(here, '..', '..', '..', 'shared', 'otlp', 'proto')];
  for (const c of candidates) if (existsSync(join(c, 'opentelemetry'))) return c;
  throw new Error(`OTLP protobuf definitions not found (looked in ${candidates.join(', ')})`);
}

let root: protobuf.Root | null = null;

/**
 * Decoding a oneof member (each AnyValue: every attribute of every span) runs protobufjs' oneof
 * setter, which `delete`s each other member of the oneof from the message whether it is there or
 * not. Each `delete` is a call into the runtime that also turns the message into a slow
 * dictionary object: it was a sixth of the decode time of a span. This setter deletes only
 * members the message really holds, which is the same result. Installed before the types are
 * built, since each type takes its setter then.
 */
function cheapOneofSetter(): void {
  const util = protobuf.util as unknown as { oneOfSetter: (fieldNames: string[]) => (this: Record<string, unknown>, name: string) => void };
  util.oneOfSetter = function oneOfSetter(fieldNames: string[]) {
    return function setOneOf(this: Record<string, unknown>, name: string): void {
      for (let i = 0; i < fieldNames.length; i++) {
        const f = fieldNames[i];
        if (f !== name && Object.prototype.hasOwnProperty.call(this, f)) delete this[f];
      }
    };
  };
}

function loadRoot(): protobuf.Root {
  if (root !== null) return root;
  cheapOneofSetter();
  const dir = protoDir();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => join(dir, target);
  r.loadSync([
    'opentelemetry/proto/collector/trace/v1/trace_service.proto',
    'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
    'opentelemetry/proto/collector/logs/v1/logs_service.proto',
  ]);
  r.resolveAll();
  root = r;
  return r;
}

const types = new Map<string, protobuf.Type>();

export function otlpType(name: string): protobuf.Type {
  let t = types.get(name);
  if (t === undefined) {
    t = loadRoot().lookupType(name);
    types.set(name, t);
  }
  return t;
}

export function requestType(signal: Signal): protobuf.Type {
  return otlpType(REQUEST_TYPES[signal]);
}

export function responseType(signal: Signal): protobuf.Type {
  return otlpType(RESPONSE_TYPES[signal]);
}

/** Thrown for a body that is not an OTLP request of the signal (answered 400 / INVALID_ARGUMENT). */
export class UndecodableError extends Error {
  override readonly name = 'UndecodableError';
}

/** Decodes a protobuf request body. */
export function decodeProtobuf<T>(signal: Signal, body: Uint8Array): T {
  try {
    // a Buffer gets protobufjs' BufferReader: native string and bytes reads
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return requestType(signal).decode(buf) as unknown as T;
  } catch (err) {
    throw new UndecodableError(`not a protobuf ${REQUEST_TYPES[signal].split('.').pop()} (${(err as Error).message})`);
  }
}

/** Decodes an OTLP/JSON request body into the same message objects as decodeProtobuf. */
export function decodeJson<T>(signal: Signal, body: Buffer | string): T {
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch (err) {
    throw new UndecodableError(`not valid JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UndecodableError('expected a JSON object');
  try {
    hexIdsToBase64(signal, parsed as Record<string, unknown>);
    return requestType(signal).fromObject(parsed as Record<string, unknown>) as unknown as T;
  } catch (err) {
    if (err instanceof UndecodableError) throw err;
    throw new UndecodableError(`not an OTLP/JSON ${REQUEST_TYPES[signal].split('.').pop()} (${(err as Error).message})`);
  }
}

/** Encodes a request (the exporters) from plain objects shaped like the messages. */
export function encodeRequest(signal: Signal, request: object): Uint8Array {
  const t = requestType(signal);
  return t.encode(t.fromObject(request as Record<string, unknown>)).finish();
}

/** The response body: empty on full success, partial_success when something was rejected. */
export function encodeResponse(signal: Signal, rejected: number, message: string, json: boolean): Uint8Array | string {
  const body: Record<string, unknown> = rejected > 0 || message !== '' ? { partialSuccess: { [REJECTED_FIELD[signal]]: rejected, errorMessage: message } } : {};
  if (json) {
    // int64 counts are strings in the protobuf JSON mapping; numbers are accepted as well, strings are canonical
    if (rejected > 0 || message !== '') (body.partialSuccess as Record<string, unknown>)[REJECTED_FIELD[signal]] = String(rejected);
    return JSON.stringify(body);
  }
  const t = responseType(signal);
  return t.encode(t.fromObject(body)).finish();
}

/** Decodes a response (the exporters read partial_success from it). */
export function decodeResponse(signal: Signal, body: Uint8Array, json: boolean): { rejected: number; message: string } {
  let msg: { partialSuccess?: Record<string, unknown> | null };
  if (json) msg = JSON.parse(Buffer.from(body).toString('utf8')) as typeof msg;
  else msg = responseType(signal).decode(body) as unknown as typeof msg;
  const ps = msg.partialSuccess;
  if (!ps) return { rejected: 0, message: '' };
  return { rejected: int64ToNumber(ps[REJECTED_FIELD[signal]] as Int64 | undefined), message: String(ps.errorMessage ?? '') };
}

/** A uint64/int64 field as a number (nanosecond timestamps lose precision below ~256 ns). */
export function int64ToNumber(v: Int64 | string | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  return v.toNumber();
}

/** A uint64 field as its exact decimal string ('0' when unset). */
export function int64ToString(v: Int64 | string | null | undefined): string {
  if (v === null || v === undefined) return '0';
  if (typeof v === 'number') return Number.isSafeInteger(v) ? String(v) : BigInt(Math.round(v)).toString();
  return v.toString();
}

/** Nanoseconds since the epoch → whole microseconds, exactly (no float rounding on the way). */
export function nanosToMicros(v: Int64 | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return Math.round(v / 1000);
  return Number(BigInt(v.toString()) / 1000n);
}

export function hex(bytes: Uint8Array | null | undefined): string {
  if (!bytes || bytes.length === 0) return '';
  // decoded from a Buffer, bytes fields are Buffers already
  if (Buffer.isBuffer(bytes)) return bytes.toString('hex');
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

const HEX_ID = /^[0-9a-fA-F]*$/;

function hexToBase64(v: unknown): unknown {
  if (typeof v !== 'string' || v === '') return v;
  if (!HEX_ID.test(v) || v.length % 2 !== 0) throw new UndecodableError(`id ${JSON.stringify(v.slice(0, 40))} is not a hex string`);
  return Buffer.from(v, 'hex').toString('base64');
}

function list(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? (v.filter((x) => x !== null && typeof x === 'object') as Record<string, unknown>[]) : [];
}

/** OTLP/JSON writes ids as hex; protobufjs' fromObject reads bytes as base64. */
function hexIdsToBase64(signal: Signal, req: Record<string, unknown>): void {
  const fix = (o: Record<string, unknown>, keys: readonly string[]): void => {
    for (const k of keys) if (k in o) o[k] = hexToBase64(o[k]);
  };
  if (signal === 'traces') {
    for (const rs of list(req.resourceSpans)) {
      for (const ss of list(rs.scopeSpans)) {
        for (const span of list(ss.spans)) {
          fix(span, ['traceId', 'spanId', 'parentSpanId']);
          for (const link of list(span.links)) fix(link, ['traceId', 'spanId']);
        }
      }
    }
  } else if (signal === 'logs') {
    for (const rl of list(req.resourceLogs)) for (const sl of list(rl.scopeLogs)) for (const r of list(sl.logRecords)) fix(r, ['traceId', 'spanId']);
  } else {
    for (const rm of list(req.resourceMetrics)) {
      for (const sm of list(rm.scopeMetrics)) {
        for (const m of list(sm.metrics)) {
          for (const kind of ['sum', 'gauge', 'histogram', 'exponentialHistogram', 'summary']) {
            const data = m[kind];
            if (data === null || typeof data !== 'object') continue;
            for (const dp of list((data as Record<string, unknown>).dataPoints)) for (const ex of list(dp.exemplars)) fix(ex, ['traceId', 'spanId']);
          }
        }
      }
    }
  }
}

/**
 * Whether a message field is set. Decoded messages carry their fields' defaults on the prototype
 * (an AnyValue holding an int still reads stringValue === ''), so only own properties count.
 */
export function has(o: object | null | undefined, key: string): boolean {
  if (o === null || o === undefined) return false;
  if (!Object.prototype.hasOwnProperty.call(o, key)) return false;
  const v = (o as Record<string, unknown>)[key];
  return v !== undefined && v !== null;
}

/** An attribute value as a plain JS value (int64 beyond 2^53 as a decimal string). */
export function anyValueToJs(v: AnyValue | null | undefined): unknown {
  switch (anyValueKind(v)) {
    case 'string':
      return v!.stringValue;
    case 'bool':
      return v!.boolValue;
    case 'int': {
      const n = int64ToNumber(v!.intValue);
      return Number.isSafeInteger(n) ? n : int64ToString(v!.intValue);
    }
    case 'double':
      return v!.doubleValue;
    case 'array':
      return (v!.arrayValue!.values ?? []).map(anyValueToJs);
    case 'kvlist':
      return attributesToObject(v!.kvlistValue!.values);
    case 'bytes':
      return Buffer.from(v!.bytesValue!).toString('base64');
    default:
      return null;
  }
}

const ONEOF_KINDS: Record<string, 'string' | 'bool' | 'int' | 'double' | 'array' | 'kvlist' | 'bytes'> = {
  stringValue: 'string',
  boolValue: 'bool',
  intValue: 'int',
  doubleValue: 'double',
  arrayValue: 'array',
  kvlistValue: 'kvlist',
  bytesValue: 'bytes',
};

/** Which oneof an AnyValue holds. */
export function anyValueKind(v: AnyValue | null | undefined): 'string' | 'bool' | 'int' | 'double' | 'array' | 'kvlist' | 'bytes' | 'empty' {
  if (!v) return 'empty';
  // decoded messages name the field set in their oneof's virtual property
  const set = (v as { value?: unknown }).value;
  if (typeof set === 'string') return ONEOF_KINDS[set] ?? 'empty';
  if (has(v, 'stringValue')) return 'string';
  if (has(v, 'boolValue')) return 'bool';
  if (has(v, 'intValue')) return 'int';
  if (has(v, 'doubleValue')) return 'double';
  if (has(v, 'arrayValue')) return 'array';
  if (has(v, 'kvlistValue')) return 'kvlist';
  if (has(v, 'bytesValue')) return 'bytes';
  return 'empty';
}

/** An attribute value as a string, the way OpenTelemetry's Zipkin exporter writes tags (arrays and maps as JSON). */
export function anyValueToString(v: AnyValue | null | undefined): string {
  if (v && (v as { value?: unknown }).value === 'stringValue') return v.stringValue as string;
  const kind = anyValueKind(v);
  if (kind === 'string') return v!.stringValue as string;
  if (kind === 'array' || kind === 'kvlist') return JSON.stringify(anyValueToJs(v));
  const js = anyValueToJs(v);
  return js === null ? '' : String(js);
}

export function attributesToObject(attrs: KeyValue[] | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!attrs) return out;
  for (const kv of attrs) {
    if (kv.key === '__proto__') Object.defineProperty(out, kv.key, { value: anyValueToJs(kv.value), enumerable: true, writable: true, configurable: true });
    else out[kv.key] = anyValueToJs(kv.value);
  }
  return out;
}

/** A plain JS value as an AnyValue (exporters). Integers stay ints, other numbers doubles. */
export function jsToAnyValue(v: unknown): AnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return Number.isInteger(v) ? { intValue: v } : { doubleValue: v };
  if (Array.isArray(v)) return { arrayValue: { values: v.map(jsToAnyValue) } };
  if (v !== null && typeof v === 'object') return { kvlistValue: { values: Object.entries(v).map(([key, x]) => ({ key, value: jsToAnyValue(x) })) } };
  return {};
}

/**
 * google.rpc.Status, the body of OTLP/HTTP error responses (google/rpc/status.proto; `details`
 * left out: plumb sends none).
 */
const STATUS_PROTO = 'syntax = "proto3"; package google.rpc; message Status { int32 code = 1; string message = 2; }';
let statusType: protobuf.Type | null = null;

/** gRPC status codes used in error bodies. */
export const GRPC_CODE = { INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, UNAUTHENTICATED: 16, UNAVAILABLE: 14, INTERNAL: 13 } as const;

export function encodeStatus(code: number, message: string, json: boolean): Uint8Array | string {
  if (json) return JSON.stringify({ code, message });
  statusType ??= protobuf.parse(STATUS_PROTO).root.lookupType('google.rpc.Status');
  return statusType.encode(statusType.fromObject({ code, message })).finish();
}
