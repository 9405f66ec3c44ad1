/**
 * Log events as the sinks see them: one line of NDJSON, kept as the bytes the agent sent, plus
 * the three fields the sinks route by (event.id, @timestamp, host.name). Those are read by a
 * scan of the line's top level instead of JSON.parse, which would build the whole object only
 * to read three strings; a line the scan cannot read plainly (escapes in those values, an
 * unusual shape) falls back to JSON.parse.
 */

export interface LogEvent {
  /** The event's JSON object, without the newline. */
  readonly line: Buffer;
  /** event.id: deterministic, the Elasticsearch _id and part of S3 keys; '' when missing. */
  readonly id: string;
  /** @timestamp normalized to UTC "yyyy-MM-ddTHH:mm:ss(.fff)Z"; the time of reading when missing or invalid. */
  readonly timestamp: string;
  /** host.name; '' when missing. */
  readonly host: string;
}

export interface EventFields {
  id: string | undefined;
  timestamp: string | undefined;
  host: string | undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

const KEY_TIMESTAMP = Buffer.from('@timestamp');
const KEY_EVENT = Buffer.from('event');
const KEY_HOST = Buffer.from('host');
const KEY_ID = Buffer.from('id');
const KEY_NAME = Buffer.from('name');

/**
 * What the ingest read of a batch it queued, so the sink's decoder need not scan the lines
 * again: where each line ends in the batch's NDJSON (at its '\n') and the fields splitEvents
 * would read from it. Made only when every timestamp is already in the normalized form.
 */
export interface DecodedEvents {
  readonly ends: readonly number[];
  readonly ids: readonly string[];
  readonly timestamps: readonly string[];
  readonly hosts: readonly string[];
}

/** A queued batch's events: from what the ingest read when the queue still has it, else splitEvents. */
export function decodeEvents(ndjson: Buffer, out: LogEvent[], decoded?: unknown): void {
  const d = decoded as DecodedEvents | undefined;
  if (d === undefined || d.ends.length === 0 || d.ends[d.ends.length - 1] >= ndjson.length) {
    splitEvents(ndjson, out);
    return;
  }
  let start = 0;
  for (let k = 0; k < d.ends.length; k++) {
    const end = d.ends[k];
    out.push({ line: ndjson.subarray(start, end), id: d.ids[k], timestamp: d.timestamps[k], host: d.hosts[k] });
    start = end + 1;
  }
}

/** Whether `ts` is already what normalizeTimestamp would make of it. */
export function isNormalizedTimestamp(ts: string): boolean {
  return PLAIN_UTC.test(ts);
}

/** Splits NDJSON into events. Empty lines are skipped; a last line without '\n' still counts. */
export function splitEvents(ndjson: Buffer, out: LogEvent[] = [], now = Date.now()): LogEvent[] {
  let start = 0;
  const end = ndjson.length;
  let fallbackTs: string | undefined;
  while (start < end) {
    let nl = ndjson.indexOf(0x0a, start);
    if (nl < 0) nl = end;
    let lineEnd = nl;
    if (lineEnd > start && ndjson[lineEnd - 1] === 0x0d) lineEnd--;
    if (lineEnd > start) {
      const line = ndjson.subarray(start, lineEnd);
      const f = readEventFields(line);
      let ts = f.timestamp;
      if (ts === undefined) ts = fallbackTs ??= new Date(now).toISOString();
      out.push({ line, id: f.id ?? '', timestamp: ts, host: f.host ?? '' });
    }
    start = nl + 1;
  }
  return out;
}

/** Counts the events (non-empty lines) of an NDJSON buffer. */
export function countEvents(ndjson: Buffer): number {
  let n = 0;
  let start = 0;
  while (start < ndjson.length) {
    let nl = ndjson.indexOf(0x0a, start);
    if (nl < 0) nl = ndjson.length;
    if (nl > start && !(nl === start + 1 && ndjson[start] === 0x0d)) n++;
    start = nl + 1;
  }
  return n;
}

/** event.id, @timestamp (normalized) and host.name of one JSON line. */
export function readEventFields(line: Buffer): EventFields {
  const f: EventFields = { id: undefined, timestamp: undefined, host: undefined };
  if (!scanTop(line, f)) fromParsed(line, f);
  if (f.timestamp !== undefined) f.timestamp = normalizeTimestamp(f.timestamp);
  return f;
}

const PLAIN_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/;

/** UTC ISO-8601 form of a timestamp, or undefined when it is not one. */
export function normalizeTimestamp(ts: string): string | undefined {
  if (PLAIN_UTC.test(ts)) return ts;
  const ms = Date.parse(ts);
  if (Number.isNaN(ms)) return undefined;
  const d = new Date(ms);
  return d.getUTCFullYear() >= 0 && d.getUTCFullYear() <= 9999 ? d.toISOString() : undefined;
}

/**
 * Reads the wanted fields from the object's top level (and event/host one level down). False
 * when the line is not plainly readable this way and JSON.parse must decide.
 */
function scanTop(b: Buffer, f: EventFields): boolean {
  const end = b.length;
  let p = skipWs(b, 0, end);
  if (b[p] !== OPEN_OBJECT) return false;
  p = skipWs(b, p + 1, end);
  if (b[p] === CLOSE_OBJECT) return true;
  while (p < end) {
    if (b[p] !== QUOTE) return false;
    const keyEnd = stringEnd(b, p, end);
    if (keyEnd < 0) return false;
    const keyStart = p + 1;
    p = skipWs(b, keyEnd + 1, end);
    if (b[p] !== COLON) return false;
    p = skipWs(b, p + 1, end);
    if (same(b, keyStart, keyEnd, KEY_TIMESTAMP)) {
      if (b[p] !== QUOTE) return false;
      const e = stringEnd(b, p, end);
      if (e < 0) return false;
      const backslash = b.indexOf(BACKSLASH, p + 1);
      if (backslash >= 0 && backslash < e) return false;
      f.timestamp = b.toString('latin1', p + 1, e);
      p = e + 1;
    } else if (same(b, keyStart, keyEnd, KEY_EVENT) || same(b, keyStart, keyEnd, KEY_HOST)) {
      const isEvent = b[keyStart] === 0x65;
      if (b[p] === OPEN_OBJECT) {
        const r = scanInner(b, p, end, isEvent ? KEY_ID : KEY_NAME);
        if (r === undefined) return false;
        if (r.value !== undefined) {
          if (isEvent) f.id = r.value;
          else f.host = r.value;
        }
        p = r.next;
      } else {
        p = skipValue(b, p, end);
      }
    } else {
      p = skipValue(b, p, end);
    }
    if (p < 0) return false;
    p = skipWs(b, p, end);
    if (b[p] === COMMA) {
      p = skipWs(b, p + 1, end);
      continue;
    }
    if (b[p] === CLOSE_OBJECT) return f.id !== undefined && f.timestamp !== undefined;
    return false;
  }
  return false;
}

/** Scans a nested object starting at `p` ('{') for a string member `key`. */
function scanInner(b: Buffer, p: number, end: number, key: Buffer): { value: string | undefined; next: number } | undefined {
  let value: string | undefined;
  p = skipWs(b, p + 1, end);
  if (b[p] === CLOSE_OBJECT) return { value, next: p + 1 };
  while (p < end) {
    if (b[p] !== QUOTE) return undefined;
    const keyEnd = stringEnd(b, p, end);
    if (keyEnd < 0) return undefined;
    const keyStart = p + 1;
    p = skipWs(b, keyEnd + 1, end);
    if (b[p] !== COLON) return undefined;
    p = skipWs(b, p + 1, end);
    if (same(b, keyStart, keyEnd, key) && b[p] === QUOTE) {
      const e = stringEnd(b, p, end);
      if (e < 0) return undefined;
      const raw = b.subarray(p + 1, e);
      if (raw.includes(BACKSLASH)) return undefined;
      value = raw.toString('utf8');
      p = e + 1;
    } else {
      p = skipValue(b, p, end);
      if (p < 0) return undefined;
    }
    p = skipWs(b, p, end);
    if (b[p] === COMMA) {
      p = skipWs(b, p + 1, end);
      continue;
    }
    if (b[p] === CLOSE_OBJECT) return { value, next: p + 1 };
    return undefined;
  }
  return undefined;
}

function same(b: Buffer, start: number, end: number, key: Buffer): boolean {
  if (end - start !== key.length) return false;
  for (let i = 0; i < key.length; i++) if (b[start + i] !== key[i]) return false;
  return true;
}

function skipWs(b: Buffer, p: number, end: number): number {
  while (p < end) {
    const c = b[p];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
    p++;
  }
  return p;
}

/** Index of the quote closing the string that opens at `p`, or -1. */
function stringEnd(b: Buffer, p: number, end: number): number {
  p++;
  while (p < end) {
    const c = b[p];
    if (c === BACKSLASH) p += 2;
    else if (c === QUOTE) return p;
    else p++;
  }
  return -1;
}

/** Index just past the JSON value starting at `p`, or -1. */
function skipValue(b: Buffer, p: number, end: number): number {
  const c = b[p];
  if (c === QUOTE) {
    const e = stringEnd(b, p, end);
    return e < 0 ? -1 : e + 1;
  }
  if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
    let depth = 0;
    while (p < end) {
      const d = b[p];
      if (d === QUOTE) {
        const e = stringEnd(b, p, end);
        if (e < 0) return -1;
        p = e + 1;
        continue;
      }
      if (d === OPEN_OBJECT || d === OPEN_ARRAY) depth++;
      else if (d === CLOSE_OBJECT || d === CLOSE_ARRAY) {
        depth--;
        if (depth === 0) return p + 1;
      }
      p++;
    }
    return -1;
  }
  const start = p;
  while (p < end) {
    const d = b[p];
    if (d === COMMA || d === CLOSE_OBJECT || d === CLOSE_ARRAY || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d) break;
    p++;
  }
  return p > start ? p : -1;
}

function fromParsed(line: Buffer, f: EventFields): void {
  f.id = f.timestamp = f.host = undefined;
  let o: unknown;
  try {
    o = JSON.parse(line.toString('utf8'));
  } catch {
    return;
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) return;
  const obj = o as Record<string, unknown>;
  const ts = obj['@timestamp'];
  if (typeof ts === 'string') f.timestamp = ts;
  const ev = obj.event;
  if (ev !== null && typeof ev === 'object' && typeof (ev as Record<string, unknown>).id === 'string') f.id = (ev as Record<string, string>).id;
  const host = obj.host;
  if (host !== null && typeof host === 'object' && typeof (host as Record<string, unknown>).name === 'string') f.host = (host as Record<string, string>).name;
}
