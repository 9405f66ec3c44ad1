/**
 * statsd / DogStatsD line parsing, working on the datagram's bytes.
 *
 * One scanner serves two callers: the aggregator's hot path, which only needs byte offsets and
 * numbers (the series is looked up by its raw bytes and tags are decoded only for a series not
 * seen yet this interval), and `plumb statsd-parse`, which needs every field as JSON.
 *
 * Line forms:
 *   name:value[:value…]|type[|@rate][|#tag,k:v][|T<unix>][|c:<container>][|<unknown>]
 *   _e{<title bytes>,<text bytes>}:title|text[|d:ts][|h:host][|k:key][|p:prio][|s:src][|t:alert][|#tags]
 *   _sc|name|status[|d:ts][|h:host][|#tags][|m:message]
 * Tags in the name, normalized to k:v: InfluxDB `name,k=v`, Librato `name#k=v`, SignalFX `name[k=v]`.
 */
import { isUtf8 } from 'node:buffer';
import type { MetricType, ServiceCheck, StatsdEvent } from '../../shared/wire.ts';
import { STATSD_LIMITS, checkSeriesLimits, checkTagLimits } from '../../shared/statsd-limits.ts';

export type ParseErrorReason =
  | 'no_value'
  | 'no_type'
  | 'bad_type'
  | 'bad_value'
  | 'bad_sample_rate'
  | 'empty_name'
  | 'invalid_utf8'
  | 'bad_tags'
  | 'bad_timestamp'
  | 'bad_event'
  | 'bad_service_check'
  | 'too_long'
  | 'name_too_long'
  | 'tag_too_long'
  | 'too_many_tags'
  | 'member_too_long'
  | 'field_too_long'
  | 'negative_counter'
  | 'non_finite'
  | 'timestamp_out_of_range';

export const PARSE_ERROR_REASONS: readonly ParseErrorReason[] = [
  'no_value',
  'no_type',
  'bad_type',
  'bad_value',
  'bad_sample_rate',
  'empty_name',
  'invalid_utf8',
  'bad_tags',
  'bad_timestamp',
  'bad_event',
  'bad_service_check',
  'too_long',
  'name_too_long',
  'tag_too_long',
  'too_many_tags',
  'member_too_long',
  'field_too_long',
  'negative_counter',
  'non_finite',
  'timestamp_out_of_range',
];

const REASON_TEXT: Record<ParseErrorReason, string> = {
  no_value: 'no ":" separating the name from the value',
  no_type: 'no "|type" after the value',
  bad_type: 'unknown metric type (expected c, g, s, ms, h or d)',
  bad_value: 'the value is not a finite number',
  bad_sample_rate: 'sample rate must be a number in (0, 1]',
  empty_name: 'the metric name is empty',
  invalid_utf8: 'the line is not valid UTF-8',
  bad_tags: 'a tag is malformed',
  bad_timestamp: 'the |T timestamp is not a Unix time in seconds',
  bad_event: 'malformed event (_e{title_len,text_len}:title|text…)',
  bad_service_check: 'malformed service check (_sc|name|status…)',
  too_long: 'the line is longer than the limit',
  name_too_long: `the name is longer than ${STATSD_LIMITS.maxNameLength} characters`,
  tag_too_long: `a tag is longer than ${STATSD_LIMITS.maxTagLength} characters`,
  too_many_tags: `more than ${STATSD_LIMITS.maxTags} tags`,
  member_too_long: `the set member is longer than ${STATSD_LIMITS.maxSetMemberLength} characters`,
  field_too_long: 'an event or service check field is longer than its limit',
  negative_counter: 'a counter increment is negative (a Prometheus counter never decreases)',
  non_finite: 'the value, scaled by the sample rate or added to the interval, is not a finite number',
  timestamp_out_of_range: 'the |T timestamp is further from now than agent.statsd.maxTimestampSkew',
};

export function describeParseError(reason: ParseErrorReason): string {
  return REASON_TEXT[reason];
}

/** Which tag styles besides DogStatsD's `|#` are recognised in metric names. */
export interface TagStyles {
  influx: boolean;
  librato: boolean;
  signalfx: boolean;
}

export const ALL_TAG_STYLES: TagStyles = { influx: true, librato: true, signalfx: true };

const COLON = 0x3a;
const PIPE = 0x7c;
const HASH = 0x23;
const AT = 0x40;
const COMMA = 0x2c;
const LBRACKET = 0x5b;
const NEWLINE = 0x0a;
const CR = 0x0d;

const TYPE_COUNTER = 1;
const TYPE_GAUGE = 2;
const TYPE_SET = 3;
const TYPE_TIMER = 4;
const TYPE_HISTOGRAM = 5;
const TYPE_DISTRIBUTION = 6;

export const TYPE_NAMES: readonly (MetricType | '')[] = ['', 'c', 'g', 's', 'ms', 'h', 'd'];

/**
 * The result of scanning one metric line: offsets into the buffer plus parsed numbers. One
 * instance is reused for every line (stable shape, no per-line allocation on the hot path).
 */
export class MetricScan {
  buf: Buffer = Buffer.alloc(0);
  nameStart = 0;
  nameEnd = 0;
  valueStart = 0;
  valueEnd = 0;
  /** 1..6, see TYPE_NAMES */
  type = 0;
  sampleRate = 1;
  /** Offsets of the DogStatsD tag list after `|#`, or -1. */
  tagsStart = -1;
  tagsEnd = -1;
  timestamp = -1;
  containerStart = -1;
  containerEnd = -1;
  /** Whether the name contains characters that may introduce name-embedded tags. */
  nameHasTagChars = false;
}

/** Classify a line without parsing: metric, event, service check, or nothing (empty). */
export function lineKind(buf: Buffer, start: number, end: number): 'metric' | 'event' | 'serviceCheck' | 'empty' {
  if (start >= end) return 'empty';
  if (buf[start] === 0x5f /* _ */ && end - start > 3) {
    if (buf[start + 1] === 0x65 /* e */ && buf[start + 2] === 0x7b /* { */) return 'event';
    if (buf[start + 1] === 0x73 /* s */ && buf[start + 2] === 0x63 /* c */ && buf[start + 3] === PIPE) return 'serviceCheck';
  }
  return 'metric';
}

/**
 * Scans `buf[start, end)` as a metric line into `out`. Returns null on success or the reason it
 * failed. Values are checked here (so a bad value fails the line) but not stored: the caller
 * reads them with `forEachValue` to avoid an array per line.
 */
export function scanMetric(buf: Buffer, start: number, end: number, out: MetricScan, styles: TagStyles): ParseErrorReason | null {
  out.buf = buf;
  out.tagsStart = -1;
  out.tagsEnd = -1;
  out.timestamp = -1;
  out.containerStart = -1;
  out.containerEnd = -1;
  out.sampleRate = 1;
  out.nameHasTagChars = false;

  // The name ends at the first ':' — except inside SignalFX brackets, where ':' is not expected
  // either, so a plain search is enough.
  let colon = -1;
  let hasTagChars = false;
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c === COLON) {
      colon = i;
      break;
    }
    if (c === PIPE) return 'no_value';
    if (c === COMMA || c === HASH || c === LBRACKET) hasTagChars = true;
  }
  if (colon < 0) return 'no_value';
  if (colon === start) return 'empty_name';
  out.nameStart = start;
  out.nameEnd = colon;
  out.nameHasTagChars = hasTagChars && (styles.influx || styles.librato || styles.signalfx);

  const pipe = buf.indexOf(PIPE, colon + 1);
  if (pipe < 0 || pipe >= end) return 'no_type';
  out.valueStart = colon + 1;
  out.valueEnd = pipe;

  // Type: up to the next '|' or end of line.
  let typeEnd = buf.indexOf(PIPE, pipe + 1);
  if (typeEnd < 0 || typeEnd > end) typeEnd = end;
  const typeLen = typeEnd - pipe - 1;
  const t0 = buf[pipe + 1];
  let type = 0;
  if (typeLen === 1) {
    if (t0 === 0x63) type = TYPE_COUNTER;
    else if (t0 === 0x67) type = TYPE_GAUGE;
    else if (t0 === 0x73) type = TYPE_SET;
    else if (t0 === 0x68) type = TYPE_HISTOGRAM;
    else if (t0 === 0x64) type = TYPE_DISTRIBUTION;
  } else if (typeLen === 2 && t0 === 0x6d && buf[pipe + 2] === 0x73) {
    type = TYPE_TIMER;
  }
  if (type === 0) return typeLen === 0 ? 'no_type' : 'bad_type';
  out.type = type;

  // Optional sections, in any order; unknown ones are ignored.
  let pos = typeEnd;
  while (pos < end) {
    const secStart = pos + 1;
    let secEnd = buf.indexOf(PIPE, secStart);
    if (secEnd < 0 || secEnd > end) secEnd = end;
    const c = buf[secStart];
    if (c === AT) {
      const rate = parseNumber(buf, secStart + 1, secEnd);
      // a rate so small that 1/rate overflows would scale every value to Infinity
      if (!(rate > 0 && rate <= 1) || 1 / rate === Infinity) return 'bad_sample_rate';
      out.sampleRate = rate;
    } else if (c === HASH) {
      out.tagsStart = secStart + 1;
      out.tagsEnd = secEnd;
    } else if (c === 0x54 /* T */) {
      const ts = parseNumber(buf, secStart + 1, secEnd);
      if (!(ts >= 0) || !Number.isInteger(ts)) return 'bad_timestamp';
      out.timestamp = ts;
    } else if (c === 0x63 /* c */ && buf[secStart + 1] === COLON) {
      out.containerStart = secStart + 2;
      out.containerEnd = secEnd;
    }
    pos = secEnd;
  }

  // Validate the values now so a bad value fails the whole line.
  if (type === TYPE_SET) {
    if (out.valueEnd === out.valueStart) return 'bad_value';
  } else {
    let vs = out.valueStart;
    while (true) {
      let ve = buf.indexOf(COLON, vs);
      if (ve < 0 || ve > out.valueEnd) ve = out.valueEnd;
      let s = vs;
      if (type === TYPE_GAUGE && (buf[s] === 0x2b || buf[s] === 0x2d)) s++;
      const v = parseNumber(buf, s, ve);
      if (Number.isNaN(v)) return 'bad_value';
      // statsd_exporter's rule: a counter only goes up
      if (v < 0 && type === TYPE_COUNTER) return 'negative_counter';
      if (ve >= out.valueEnd) break;
      vs = ve + 1;
    }
  }
  return null;
}

/** Receives the values of a scanned numeric line. */
export interface ValueSink {
  accept(value: number, delta: boolean): void;
}

/**
 * Hands each value of a scanned numeric line to `sink` (a method call, not a per-line closure).
 * For gauges a leading sign means a delta (statsd convention: "-3" lowers the gauge, it does not
 * set it to -3).
 */
export function forEachValue(scan: MetricScan, sink: ValueSink): void {
  const buf = scan.buf;
  let vs = scan.valueStart;
  const gauge = scan.type === TYPE_GAUGE;
  while (true) {
    let ve = buf.indexOf(COLON, vs);
    if (ve < 0 || ve > scan.valueEnd) ve = scan.valueEnd;
    const first = buf[vs];
    if (gauge && (first === 0x2b || first === 0x2d)) {
      const v = parseNumber(buf, vs + 1, ve);
      sink.accept(first === 0x2d ? -v : v, true);
    } else {
      sink.accept(parseNumber(buf, vs, ve), false);
    }
    if (ve >= scan.valueEnd) return;
    vs = ve + 1;
  }
}

/** A set member as text, or null when its bytes are not valid UTF-8. */
export function decodeSetMember(scan: MetricScan): string | null {
  const bytes = scan.buf.subarray(scan.valueStart, scan.valueEnd);
  if (!isAscii(bytes) && !isUtf8(bytes)) return null;
  return bytes.toString('utf8');
}

const DIGIT_0 = 0x30;

/**
 * Parses a decimal number from bytes. Accepts what statsd clients send (optional sign, digits,
 * fraction, exponent); rejects hex, "NaN", "Infinity", empty text and anything else with NaN.
 */
export function parseNumber(buf: Buffer, start: number, end: number): number {
  if (start >= end) return NaN;
  let i = start;
  let neg = false;
  const s0 = buf[i];
  if (s0 === 0x2d) {
    neg = true;
    i++;
  } else if (s0 === 0x2b) {
    i++;
  }
  let int = 0;
  let digits = 0;
  while (i < end) {
    const d = buf[i] - DIGIT_0;
    if (d < 0 || d > 9) break;
    int = int * 10 + d;
    digits++;
    i++;
  }
  if (i === end) {
    if (digits > 0 && digits < 16) return neg ? -int : int;
  } else if (buf[i] === 0x2e /* . */) {
    // "123.45" → 12345 / 100: both exact, and IEEE division rounds correctly, so this equals
    // what Number("123.45") gives, without making a string.
    i++;
    let scale = 1;
    while (i < end) {
      const d = buf[i] - DIGIT_0;
      if (d < 0 || d > 9) break;
      int = int * 10 + d;
      scale *= 10;
      digits++;
      i++;
    }
    if (i === end && digits > 0 && digits < 16) return (neg ? -int : int) / scale;
  }
  // Exponents and long numbers take the slow, exact path.
  return parseNumberSlow(buf, start, end);
}

const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function parseNumberSlow(buf: Buffer, start: number, end: number): number {
  if (end - start > 64) return NaN;
  const text = buf.toString('latin1', start, end);
  if (!NUMBER_RE.test(text)) return NaN;
  const v = Number(text);
  return Number.isFinite(v) ? v : NaN;
}

/** The name and tags of a scanned line, decoded and normalized: tags sorted, de-duplicated, `k:v`. */
export interface SeriesIdentity {
  name: string;
  tags: string[];
}

/**
 * Decodes the name and tags of a scanned metric (UTF-8 checked), pulling InfluxDB, Librato and
 * SignalFX name-embedded tags into the tag list. Returns null when the bytes are not valid
 * UTF-8 or a tag is malformed; `reasonOut[0]` says which.
 */
export function decodeIdentity(scan: MetricScan, styles: TagStyles, reasonOut: ParseErrorReason[]): SeriesIdentity | null {
  const buf = scan.buf;
  const nameBytes = buf.subarray(scan.nameStart, scan.nameEnd);
  if (!isAscii(nameBytes) && !isUtf8(nameBytes)) {
    reasonOut[0] = 'invalid_utf8';
    return null;
  }
  let name = nameBytes.toString('utf8');
  const tags: string[] = [];
  if (scan.nameHasTagChars) {
    const split = splitNameTags(name, styles, tags);
    if (split === null) {
      reasonOut[0] = 'bad_tags';
      return null;
    }
    name = split;
  }
  if (name.length === 0) {
    reasonOut[0] = 'empty_name';
    return null;
  }
  if (name.length > STATSD_LIMITS.maxNameLength) {
    reasonOut[0] = 'name_too_long';
    return null;
  }
  if (scan.tagsStart >= 0) {
    const tagBytes = buf.subarray(scan.tagsStart, scan.tagsEnd);
    if (!isAscii(tagBytes) && !isUtf8(tagBytes)) {
      reasonOut[0] = 'invalid_utf8';
      return null;
    }
    if (!pushDogTags(tagBytes.toString('utf8'), tags)) {
      reasonOut[0] = 'bad_tags';
      return null;
    }
  }
  const normalized = normalizeTags(tags);
  const breach = checkTagLimits(normalized);
  if (breach !== null) {
    reasonOut[0] = breach;
    return null;
  }
  return { name, tags: normalized };
}

function isAscii(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] > 0x7f) return false;
  return true;
}

/** `a:b,flag,c:d:e` → ["a:b","flag","c:d:e"]. Empty entries (",,") are skipped. */
function pushDogTags(text: string, into: string[]): boolean {
  let start = 0;
  while (start <= text.length) {
    let comma = text.indexOf(',', start);
    if (comma < 0) comma = text.length;
    const tag = text.slice(start, comma).trim();
    if (tag.length > 0) {
      if (tag.charCodeAt(0) === COLON) return false; // ":value" has no key
      into.push(tag);
    }
    start = comma + 1;
  }
  return true;
}

/**
 * Extracts name-embedded tags. Returns the bare metric name, or null when the tag syntax is
 * broken (an unclosed SignalFX bracket, a `k=v` pair without a key).
 */
function splitNameTags(name: string, styles: TagStyles, tags: string[]): string | null {
  let bare = name;
  if (styles.signalfx) {
    const open = bare.indexOf('[');
    if (open >= 0) {
      const close = bare.indexOf(']', open);
      if (close < 0) return null;
      if (!pushKeyValuePairs(bare.slice(open + 1, close), tags)) return null;
      bare = bare.slice(0, open) + bare.slice(close + 1);
    }
  }
  if (styles.influx) {
    const comma = bare.indexOf(',');
    if (comma >= 0) {
      if (!pushKeyValuePairs(bare.slice(comma + 1), tags)) return null;
      bare = bare.slice(0, comma);
    }
  }
  if (styles.librato) {
    const hash = bare.indexOf('#');
    if (hash >= 0) {
      if (!pushKeyValuePairs(bare.slice(hash + 1), tags)) return null;
      bare = bare.slice(0, hash);
    }
  }
  return bare;
}

function pushKeyValuePairs(text: string, tags: string[]): boolean {
  for (const pair of text.split(',')) {
    if (pair.length === 0) continue;
    const eq = pair.indexOf('=');
    if (eq === 0) return false;
    tags.push(eq < 0 ? pair : `${pair.slice(0, eq)}:${pair.slice(eq + 1)}`);
  }
  return true;
}

/** Sorted and de-duplicated, so tag order and repeats never create a new series. */
export function normalizeTags(tags: string[]): string[] {
  if (tags.length < 2) return tags;
  tags.sort();
  let w = 1;
  for (let r = 1; r < tags.length; r++) if (tags[r] !== tags[w - 1]) tags[w++] = tags[r];
  tags.length = w;
  return tags;
}

/** Parses `_e{…}` event lines. Lengths are UTF-8 byte counts, per the DogStatsD protocol. */
export function parseEvent(buf: Buffer, start: number, end: number): StatsdEvent | ParseErrorReason {
  const line = buf.subarray(start, end);
  if (!isUtf8(line)) return 'invalid_utf8';
  const close = line.indexOf(0x7d /* } */);
  if (close < 0) return 'bad_event';
  const header = line.toString('latin1', 3, close);
  const m = /^(\d+),(\d+)$/.exec(header);
  if (!m || line[close + 1] !== COLON) return 'bad_event';
  const titleLen = Number(m[1]);
  const textLen = Number(m[2]);
  const titleStart = close + 2;
  const textStart = titleStart + titleLen + 1;
  if (titleLen === 0 || textStart + textLen > line.length || line[titleStart + titleLen] !== PIPE) return 'bad_event';
  const after = textStart + textLen;
  if (after < line.length && line[after] !== PIPE) return 'bad_event';
  const event: StatsdEvent = {
    title: line.toString('utf8', titleStart, titleStart + titleLen).replace(/\\n/g, '\n'),
    text: line.toString('utf8', textStart, after).replace(/\\n/g, '\n'),
    timestamp: null,
    hostname: null,
    aggregationKey: null,
    priority: null,
    sourceType: null,
    alertType: null,
    tags: [],
  };
  if (after < line.length) {
    for (const section of line.toString('utf8', after + 1).split('|')) {
      const key = section.slice(0, 2);
      const value = section.slice(2);
      if (section.startsWith('#')) {
        if (!pushDogTags(section.slice(1), event.tags)) return 'bad_tags';
      } else if (key === 'd:') {
        const ts = Number(value);
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(ts)) return 'bad_timestamp';
        event.timestamp = ts;
      } else if (key === 'h:') event.hostname = value;
      else if (key === 'k:') event.aggregationKey = value;
      else if (key === 'p:') {
        if (value !== 'normal' && value !== 'low') return 'bad_event';
        event.priority = value;
      } else if (key === 's:') event.sourceType = value;
      else if (key === 't:') {
        if (!['error', 'warning', 'info', 'success'].includes(value)) return 'bad_event';
        event.alertType = value;
      }
      // unknown sections are ignored, as the DogStatsD server does
    }
  }
  event.tags = normalizeTags(event.tags);
  return checkEventLimits(event);
}

/** The event itself, or the limit it breaks (the collector's schema holds the same limits). */
function checkEventLimits(e: StatsdEvent): StatsdEvent | ParseErrorReason {
  if (e.title.length > STATSD_LIMITS.maxEventTitleLength || e.text.length > STATSD_LIMITS.maxEventTextLength) return 'field_too_long';
  for (const f of [e.hostname, e.aggregationKey, e.sourceType]) if (f !== null && f.length > STATSD_LIMITS.maxFieldLength) return 'field_too_long';
  return checkTagLimits(e.tags) ?? e;
}

/** Parses `_sc|name|status…` lines. The message (`m:`) runs to the end of the line. */
export function parseServiceCheck(buf: Buffer, start: number, end: number): ServiceCheck | ParseErrorReason {
  const line = buf.subarray(start, end);
  if (!isUtf8(line)) return 'invalid_utf8';
  const text = line.toString('utf8');
  const parts = text.split('|');
  if (parts.length < 3 || parts[1].length === 0) return 'bad_service_check';
  const status = parts[2];
  if (!/^[0-3]$/.test(status)) return 'bad_service_check';
  const check: ServiceCheck = {
    name: parts[1],
    status: Number(status) as ServiceCheck['status'],
    timestamp: null,
    hostname: null,
    tags: [],
    message: null,
  };
  for (let i = 3; i < parts.length; i++) {
    const section = parts[i];
    if (section.startsWith('m:')) {
      check.message = parts.slice(i).join('|').slice(2).replace(/\\n/g, '\n');
      break;
    }
    if (section.startsWith('#')) {
      if (!pushDogTags(section.slice(1), check.tags)) return 'bad_tags';
    } else if (section.startsWith('d:')) {
      const v = section.slice(2);
      if (!/^\d+$/.test(v)) return 'bad_timestamp';
      check.timestamp = Number(v);
    } else if (section.startsWith('h:')) check.hostname = section.slice(2);
  }
  check.tags = normalizeTags(check.tags);
  if (check.message !== null && check.message.length > STATSD_LIMITS.maxEventTextLength) return 'field_too_long';
  if (check.hostname !== null && check.hostname.length > STATSD_LIMITS.maxFieldLength) return 'field_too_long';
  return checkSeriesLimits(check.name, check.tags) ?? check;
}

/** Iterates the lines of a datagram (or TCP chunk): `fn(start, end)` per non-empty line, CR stripped. */
export function forEachLine(buf: Buffer, start: number, end: number, fn: (start: number, end: number) => void): void {
  let pos = start;
  while (pos < end) {
    let nl = buf.indexOf(NEWLINE, pos);
    if (nl < 0 || nl > end) nl = end;
    let e = nl;
    if (e > pos && buf[e - 1] === CR) e--;
    if (e > pos) fn(pos, e);
    pos = nl + 1;
  }
}

/** One line in, the contract's JSON object out (`plumb statsd-parse`). */
export function parseLineToJson(line: Buffer, styles: TagStyles = ALL_TAG_STYLES): Record<string, unknown> {
  const kind = lineKind(line, 0, line.length);
  if (kind === 'empty') return { ok: false, error: 'empty line' };
  if (kind === 'event') {
    const e = parseEvent(line, 0, line.length);
    return typeof e === 'string' ? { ok: false, error: describeParseError(e) } : { ok: true, event: e };
  }
  if (kind === 'serviceCheck') {
    const c = parseServiceCheck(line, 0, line.length);
    return typeof c === 'string' ? { ok: false, error: describeParseError(c) } : { ok: true, serviceCheck: c };
  }
  const scan = new MetricScan();
  const reason = scanMetric(line, 0, line.length, scan, styles);
  if (reason) return { ok: false, error: describeParseError(reason) };
  const why: ParseErrorReason[] = [];
  const identity = decodeIdentity(scan, styles, why);
  if (!identity) return { ok: false, error: describeParseError(why[0]) };
  const type = TYPE_NAMES[scan.type];
  const metric: Record<string, unknown> = { name: identity.name, type, values: [] };
  if (type === 's') {
    const member = decodeSetMember(scan);
    if (member === null) return { ok: false, error: describeParseError('invalid_utf8') };
    metric.values = [member];
  } else {
    const collected = {
      values: [] as number[],
      delta: false,
      accept(v: number, d: boolean): void {
        this.values.push(v);
        if (d) this.delta = true;
      },
    };
    forEachValue(scan, collected);
    metric.values = collected.values;
    if (collected.delta) metric.delta = true;
  }
  metric.sampleRate = scan.sampleRate;
  metric.tags = identity.tags;
  metric.timestamp = scan.timestamp >= 0 ? scan.timestamp : null;
  metric.containerId = scan.containerStart >= 0 ? line.toString('utf8', scan.containerStart, scan.containerEnd) : null;
  return { ok: true, metrics: [metric] };
}
