/**
 * Date parsing for log timestamps, with the formats of Logstash's date filter: Joda-style
 * patterns ("dd/MMM/yyyy:HH:mm:ss Z", "MMM  d HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss.SSSZZ") and the
 * keywords ISO8601, UNIX, UNIX_MS and TAI64N. Formats compile once; parse() returns epoch
 * milliseconds, or undefined when no format fits (the caller keeps the event and tags it
 * `_dateparsefailure`). parse() never throws.
 *
 * Pattern letters: y/Y/u/x year (yy: two digits, within 80 years back and 19 ahead of now),
 * M month (MMM and longer: English name, short or full), d day, D day of year, H 0–23,
 * k 1–24, K 0–11, h 1–12, a AM/PM, m minute, s second, S fraction (any number of digits,
 * kept to milliseconds), E/e day of week (read and ignored), Z offset ("+0100", "+01:00",
 * "Z"), ZZZ zone id ("Europe/Berlin"), z zone abbreviation (UTC, GMT, the US zones, CET/CEST,
 * EET/EEST, WET/WEST, JST). 'quoted' text is literal, '' is a quote. Literals match
 * regardless of case, as in Joda. A numeric field followed directly by another numeric field
 * takes exactly as many digits as its letter is repeated ("yyyyMMdd").
 *
 * Text without an offset or zone is read in the configured zone (default: the process's).
 * Formats without a year take the most recent year that puts the date no further than
 * `futureToleranceMs` after `now`, so "Dec 31 23:59:59" read on January 1st is last year's.
 */
import { PlumbError } from '../../../shared/errors.ts';
import { isValidTimeZone, localTimeZone, utcWall, zoneOffsets, type ZoneOffsets } from './timezone.ts';

export interface DateParserOptions {
  /** IANA zone for text that carries no offset or zone. Default: the process's local zone. */
  timezone?: string;
  /** How far after `now` a date without a year may fall before an earlier year is chosen. Default 1 day. */
  futureToleranceMs?: number;
}

const MAX_EPOCH_MS = 8.64e15;

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

/** Zone abbreviations Joda cannot parse but logs commonly carry; minutes east of UTC. */
const ZONE_ABBREVIATIONS: Record<string, number> = {
  utc: 0, gmt: 0, ut: 0, z: 0,
  est: -300, edt: -240, cst: -360, cdt: -300, mst: -420, mdt: -360, pst: -480, pdt: -420,
  ast: -240, adt: -180, akst: -540, akdt: -480, hst: -600,
  wet: 0, west: 60, cet: 60, cest: 120, eet: 120, eest: 180, jst: 540,
};

const F_YEAR = 0;
const F_YEAR2 = 1;
const F_MONTH = 2;
const F_DAY = 3;
const F_DOY = 4;
const F_HOUR = 5;
const F_HOUR_K = 6; // k: 1-24
const F_HOUR_KK = 7; // K: 0-11
const F_HOUR_H = 8; // h: 1-12
const F_MINUTE = 9;
const F_SECOND = 10;
const F_FRACTION = 11;
const F_DOW = 12;

type Token =
  | { k: 'lit'; text: string }
  | { k: 'num'; field: number; min: number; max: number }
  | { k: 'monthText' }
  | { k: 'dowText' }
  | { k: 'ampm' }
  | { k: 'offset' }
  | { k: 'zoneId' }
  | { k: 'zoneName' };

interface Fields {
  year: number | undefined;
  month: number;
  day: number;
  doy: number | undefined;
  hour: number;
  hour12: number | undefined;
  pm: boolean | undefined;
  minute: number;
  second: number;
  ms: number;
  offsetMin: number | undefined;
  zone: ZoneOffsets | undefined;
}

type Format = { kind: 'iso8601' } | { kind: 'unix' } | { kind: 'unixMs' } | { kind: 'tai64n' } | { kind: 'joda'; tokens: Token[]; hasYear: boolean };

export class DateParser {
  readonly formats: readonly string[];
  private readonly compiled: Format[];
  private readonly zone: ZoneOffsets;
  private readonly tolerance: number;

  constructor(formats: string | readonly string[], options: DateParserOptions = {}) {
    const list = typeof formats === 'string' ? [formats] : [...formats];
    if (list.length === 0) throw new PlumbError('PLUMB_ERR_CONFIG_INVALID', 'date: at least one format is needed');
    const zoneId = options.timezone ?? localTimeZone();
    if (!isValidTimeZone(zoneId)) {
      throw new PlumbError('PLUMB_ERR_CONFIG_INVALID', `date: unknown time zone "${zoneId}" (use an IANA name such as "Europe/Berlin" or "UTC")`);
    }
    this.formats = list;
    this.zone = zoneOffsets(zoneId);
    this.tolerance = options.futureToleranceMs ?? 86_400_000;
    this.compiled = list.map(compileFormat);
  }

  /** Epoch milliseconds of the first format that reads all of `text`, or undefined. */
  parse(text: string, now: number = Date.now()): number | undefined {
    for (let i = 0; i < this.compiled.length; i++) {
      const f = this.compiled[i];
      let r: number | undefined;
      switch (f.kind) {
        case 'iso8601':
          r = this.parseIso(text);
          break;
        case 'unix':
          r = parseUnix(text);
          break;
        case 'unixMs':
          r = parseUnixMs(text);
          break;
        case 'tai64n':
          r = parseTai64n(text);
          break;
        default:
          r = this.parseJoda(f.tokens, f.hasYear, text, now);
      }
      if (r !== undefined && Number.isFinite(r) && Math.abs(r) <= MAX_EPOCH_MS) return r;
    }
    return undefined;
  }

  private parseIso(text: string): number | undefined {
    const m = ISO8601.exec(text);
    if (m === null) return undefined;
    const year = Number(m[1]);
    const month = Number(m[2] ?? 1);
    const day = Number(m[3] ?? 1);
    const hour = Number(m[4] ?? 0);
    const minute = Number(m[5] ?? 0);
    const second = Number(m[6] ?? 0);
    const ms = m[7] === undefined ? 0 : fractionToMs(m[7]);
    if (!validDate(year, month, day) || hour > 24 || minute > 59 || second > 60) return undefined;
    const wall = utcWall(year, month, day, hour, minute, second, ms);
    const z = m[8];
    if (z === undefined) return this.zone.toUtc(wall);
    if (z === 'Z' || z === 'z') return wall;
    const off = parseOffsetText(z);
    return off === undefined ? undefined : wall - off * 60_000;
  }

  private parseJoda(tokens: Token[], hasYear: boolean, text: string, now: number): number | undefined {
    const f: Fields = {
      year: undefined, month: 1, day: 1, doy: undefined, hour: 0, hour12: undefined, pm: undefined,
      minute: 0, second: 0, ms: 0, offsetMin: undefined, zone: undefined,
    };
    let pos = 0;
    const len = text.length;
    for (let t = 0; t < tokens.length; t++) {
      const tok = tokens[t];
      switch (tok.k) {
        case 'lit': {
          const n = tok.text.length;
          if (pos + n > len) return undefined;
          for (let i = 0; i < n; i++) {
            const a = text.charCodeAt(pos + i);
            const b = tok.text.charCodeAt(i);
            if (a !== b && lowerAscii(a) !== b) return undefined;
          }
          pos += n;
          break;
        }
        case 'num': {
          let value = 0;
          let digits = 0;
          let sign = 1;
          if (tok.field === F_YEAR && (text.charCodeAt(pos) === 0x2d || text.charCodeAt(pos) === 0x2b) && tok.max > 4) {
            if (text.charCodeAt(pos) === 0x2d) sign = -1;
            pos++;
          }
          const start = pos;
          while (digits < tok.max && pos < len) {
            const c = text.charCodeAt(pos);
            if (c < 0x30 || c > 0x39) break;
            value = value * 10 + (c - 0x30);
            digits++;
            pos++;
          }
          if (digits < tok.min) return undefined;
          if (!assignNumber(f, tok.field, value * sign, digits, text, start, now)) return undefined;
          break;
        }
        case 'monthText': {
          const found = matchName(text, pos, MONTHS);
          if (found === undefined) return undefined;
          f.month = found.index + 1;
          pos = found.end;
          break;
        }
        case 'dowText': {
          const found = matchName(text, pos, DAYS);
          if (found === undefined) return undefined;
          pos = found.end;
          break;
        }
        case 'ampm': {
          const two = text.slice(pos, pos + 2).toLowerCase();
          if (two !== 'am' && two !== 'pm') return undefined;
          f.pm = two === 'pm';
          pos += 2;
          break;
        }
        case 'offset': {
          const c = text.charCodeAt(pos);
          if (c === 0x5a || c === 0x7a) {
            f.offsetMin = 0;
            pos++;
            break;
          }
          const m = OFFSET.exec(text.slice(pos, pos + 6));
          if (m === null) return undefined;
          const off = parseOffsetText(m[0]);
          if (off === undefined) return undefined;
          f.offsetMin = off;
          pos += m[0].length;
          break;
        }
        case 'zoneId': {
          let end = pos;
          while (end < len && ZONE_ID_CHAR.test(text[end])) end++;
          const id = text.slice(pos, end);
          if (id === '') return undefined;
          if (id === 'Z' || id === 'z') f.offsetMin = 0;
          else if (isValidTimeZone(id)) f.zone = zoneOffsets(id);
          else return undefined;
          pos = end;
          break;
        }
        case 'zoneName': {
          let end = pos;
          while (end < len && isAsciiLetter(text.charCodeAt(end))) end++;
          const off = ZONE_ABBREVIATIONS[text.slice(pos, end).toLowerCase()];
          if (off === undefined) return undefined;
          f.offsetMin = off;
          pos = end;
          break;
        }
      }
    }
    if (pos !== len) return undefined;
    // h and K take AM/PM into account; H and k are already 24-hour.
    if (f.hour12 !== undefined) f.hour = (f.hour12 % 12) + (f.pm ? 12 : 0);
    if (f.hour > 24 || f.minute > 59 || f.second > 60) return undefined;
    if (hasYear) return this.toEpoch(f, f.year!);
    return this.guessYear(f, now);
  }

  private toEpoch(f: Fields, year: number): number | undefined {
    let month = f.month;
    let day = f.day;
    if (f.doy !== undefined) {
      const leap = isLeap(year);
      if (f.doy < 1 || f.doy > (leap ? 366 : 365)) return undefined;
      const d = new Date(utcWall(year, 1, f.doy, 0, 0, 0, 0));
      month = d.getUTCMonth() + 1;
      day = d.getUTCDate();
    }
    if (!validDate(year, month, day)) return undefined;
    const wall = utcWall(year, month, day, f.hour, f.minute, f.second, f.ms);
    if (f.offsetMin !== undefined) return wall - f.offsetMin * 60_000;
    return (f.zone ?? this.zone).toUtc(wall);
  }

  /** The latest year (from next year back) whose date is at most `tolerance` after now. */
  private guessYear(f: Fields, now: number): number | undefined {
    const zoneOffset = f.offsetMin !== undefined ? f.offsetMin * 60_000 : (f.zone ?? this.zone).offsetAt(now);
    const nowYear = new Date(now + zoneOffset).getUTCFullYear();
    for (let year = nowYear + 1; year >= nowYear - 8; year--) {
      const t = this.toEpoch(f, year);
      if (t !== undefined && t - now <= this.tolerance) return t;
    }
    return undefined;
  }
}

/** Compiles date formats once (see DateParser). Throws PlumbError for a bad format or zone. */
export function compileDateParser(formats: string | readonly string[], options: DateParserOptions = {}): DateParser {
  return new DateParser(formats, options);
}

const ISO8601 = /^(\d{4})(?:-?(\d{2})(?:-?(\d{2})(?:[Tt ](\d{2})(?::?(\d{2})(?::?(\d{2})(?:[.,](\d{1,9}))?)?)?)?)?)?\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?$/;
const OFFSET = /^[+-]\d{2}(?::?\d{2})?/;
const ZONE_ID_CHAR = /^[A-Za-z0-9_/+-]$/;
const UNIX = /^\s*([+-]?)(\d+)(?:\.(\d*))?\s*$/;
const TAI64N = /^@?([0-9a-fA-F]{16})([0-9a-fA-F]{8})$/;
const TAI64_BASE = 2n ** 62n + 10n;

function compileFormat(format: string): Format {
  switch (format) {
    case 'ISO8601':
      return { kind: 'iso8601' };
    case 'UNIX':
      return { kind: 'unix' };
    case 'UNIX_MS':
      return { kind: 'unixMs' };
    case 'TAI64N':
      return { kind: 'tai64n' };
    default:
      return compileJoda(format);
  }
}

function compileJoda(format: string): Format {
  const raw: ({ letter: string; count: number } | { lit: string })[] = [];
  let i = 0;
  while (i < format.length) {
    const c = format[i];
    if (c === "'") {
      let text = '';
      i++;
      if (format[i] === "'") {
        raw.push({ lit: "'" });
        i++;
        continue;
      }
      while (true) {
        if (i >= format.length) throw badFormat(format, 'an unterminated quote');
        if (format[i] === "'") {
          if (format[i + 1] === "'") {
            text += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        text += format[i++];
      }
      raw.push({ lit: text });
    } else if (/[A-Za-z]/.test(c)) {
      let count = 1;
      while (format[i + count] === c) count++;
      raw.push({ letter: c, count });
      i += count;
    } else {
      raw.push({ lit: c });
      i++;
    }
  }
  const tokens: Token[] = [];
  let hasYear = false;
  for (let t = 0; t < raw.length; t++) {
    const r = raw[t];
    if ('lit' in r) {
      const prev = tokens[tokens.length - 1];
      if (prev?.k === 'lit') prev.text += r.lit.toLowerCase();
      else tokens.push({ k: 'lit', text: r.lit.toLowerCase() });
      continue;
    }
    const next = raw[t + 1];
    const adjacentNumber = next !== undefined && 'letter' in next && isNumericToken(next.letter, next.count);
    const num = (field: number, maxDigits: number): Token =>
      adjacentNumber ? { k: 'num', field, min: r.count, max: r.count } : { k: 'num', field, min: 1, max: Math.max(maxDigits, r.count) };
    switch (r.letter) {
      case 'y':
      case 'Y':
      case 'u':
      case 'x':
        hasYear = true;
        tokens.push(r.count === 2 ? (adjacentNumber ? { k: 'num', field: F_YEAR2, min: 2, max: 2 } : { k: 'num', field: F_YEAR2, min: 1, max: 9 }) : num(F_YEAR, 9));
        break;
      case 'M':
        tokens.push(r.count >= 3 ? { k: 'monthText' } : num(F_MONTH, 2));
        break;
      case 'd':
        tokens.push(num(F_DAY, 2));
        break;
      case 'D':
        tokens.push(num(F_DOY, 3));
        break;
      case 'H':
        tokens.push(num(F_HOUR, 2));
        break;
      case 'k':
        tokens.push(num(F_HOUR_K, 2));
        break;
      case 'K':
        tokens.push(num(F_HOUR_KK, 2));
        break;
      case 'h':
        tokens.push(num(F_HOUR_H, 2));
        break;
      case 'm':
        tokens.push(num(F_MINUTE, 2));
        break;
      case 's':
        tokens.push(num(F_SECOND, 2));
        break;
      case 'S':
        tokens.push(num(F_FRACTION, 9));
        break;
      case 'e':
        tokens.push(num(F_DOW, 1));
        break;
      case 'E':
        tokens.push({ k: 'dowText' });
        break;
      case 'a':
        tokens.push({ k: 'ampm' });
        break;
      case 'Z':
        tokens.push(r.count >= 3 ? { k: 'zoneId' } : { k: 'offset' });
        break;
      case 'z':
        tokens.push({ k: 'zoneName' });
        break;
      default:
        throw badFormat(format, `the pattern letter "${r.letter}", which is not supported`);
    }
  }
  return { kind: 'joda', tokens, hasYear };
}

function isNumericToken(letter: string, count: number): boolean {
  if (letter === 'M') return count < 3;
  return 'yYuxdDHkKhmsSe'.includes(letter);
}

function badFormat(format: string, what: string): PlumbError {
  return new PlumbError('PLUMB_ERR_CONFIG_INVALID', `date format ${JSON.stringify(format)} has ${what}`);
}

function assignNumber(f: Fields, field: number, value: number, digits: number, text: string, start: number, now: number): boolean {
  switch (field) {
    case F_YEAR:
      f.year = value;
      return true;
    case F_YEAR2: {
      if (digits !== 2) {
        f.year = value;
        return true;
      }
      const base = new Date(now).getUTCFullYear() - 80;
      f.year = base + ((((value - base) % 100) + 100) % 100);
      return true;
    }
    case F_MONTH:
      f.month = value;
      return value >= 1 && value <= 12;
    case F_DAY:
      f.day = value;
      return value >= 1 && value <= 31;
    case F_DOY:
      f.doy = value;
      return true;
    case F_HOUR:
      f.hour = value;
      return value <= 23;
    case F_HOUR_K:
      f.hour = value === 24 ? 0 : value;
      return value >= 1 && value <= 24;
    case F_HOUR_KK:
      f.hour12 = value;
      return value <= 11;
    case F_HOUR_H:
      f.hour12 = value;
      return value >= 1 && value <= 12;
    case F_MINUTE:
      f.minute = value;
      return true;
    case F_SECOND:
      f.second = value;
      return true;
    case F_FRACTION:
      f.ms = fractionToMs(text.slice(start, start + digits));
      return true;
    default:
      return true; // day of week: read, not used
  }
}

function matchName(text: string, pos: number, names: string[]): { index: number; end: number } | undefined {
  const word = text.slice(pos, pos + 9).toLowerCase();
  for (let i = 0; i < names.length; i++) {
    if (word.startsWith(names[i])) return { index: i, end: pos + names[i].length };
  }
  const short = word.slice(0, 3);
  for (let i = 0; i < names.length; i++) {
    if (names[i].startsWith(short) && short.length === 3) return { index: i, end: pos + 3 };
  }
  return undefined;
}

/** "+01:00", "+0100", "-08" → minutes east of UTC. */
function parseOffsetText(text: string): number | undefined {
  const sign = text[0] === '-' ? -1 : 1;
  const digits = text.slice(1).replace(':', '');
  const h = Number(digits.slice(0, 2));
  const m = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
  if (h > 23 || m > 59) return undefined;
  return sign * (h * 60 + m);
}

function fractionToMs(digits: string): number {
  return Number((digits + '00').slice(0, 3));
}

function parseUnix(text: string): number | undefined {
  const m = UNIX.exec(text);
  if (m === null) return undefined;
  const ms = Number(m[2]) * 1000 + (m[3] ? fractionToMs(m[3]) : 0);
  return m[1] === '-' ? -ms : ms;
}

function parseUnixMs(text: string): number | undefined {
  const m = UNIX.exec(text);
  if (m === null) return undefined;
  const ms = Number(m[2]);
  return m[1] === '-' ? -ms : ms;
}

/** TAI64N label: 8 bytes of 2^62 + TAI seconds (TAI runs 10 s ahead here), 4 bytes of nanoseconds. */
function parseTai64n(text: string): number | undefined {
  const m = TAI64N.exec(text);
  if (m === null) return undefined;
  const seconds = BigInt(`0x${m[1]}`) - TAI64_BASE;
  const nanos = parseInt(m[2], 16);
  return Number(seconds) * 1000 + Math.floor(nanos / 1_000_000);
}

function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function validDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const dim = [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return day <= dim;
}

function lowerAscii(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 32 : c;
}

function isAsciiLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
