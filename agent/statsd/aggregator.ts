/**
 * Per-interval aggregation of statsd lines, in place and bounded.
 *
 * Counters are summed (scaled by 1/sampleRate), gauges keep the last value (deltas apply to the
 * value held from earlier intervals), sets count distinct members, and timers, histograms and
 * distributions go into a DDSketch with exact count, sum, min and max. Raw samples are never
 * kept. A series is name + type + sorted, de-duplicated tags; at most `maxSeries` exist per
 * interval and the rest are dropped and counted.
 *
 * The hot path looks a line up by its raw bytes (name and tag text as sent) in a per-type cache,
 * so decoding, tag parsing and sorting happen once per series per interval, not once per line.
 */
import type { Telemetry } from '../../shared/telemetry.ts';
import { newSketch, encodeSketch, SKETCH_EXACT_SAMPLES, type Sketch } from '../../shared/sketch.ts';
import { checkTagLimits, STATSD_LIMITS } from '../../shared/statsd-limits.ts';
import type { MetricBatch, ServiceCheck, StatsdEvent, WireDistribution, WireMetric } from '../../shared/wire.ts';
import type { TapPoint } from '../../shared/tap.ts';
import {
  MetricScan,
  PARSE_ERROR_REASONS,
  TYPE_NAMES,
  decodeIdentity,
  decodeSetMember,
  forEachLine,
  lineKind,
  forEachValue,
  parseEvent,
  parseServiceCheck,
  parseLineToJson,
  scanMetric,
  type ParseErrorReason,
  type TagStyles,
  type ValueSink,
} from './parser.ts';

export interface AggregatorOptions {
  maxSeries: number;
  /** Distinct members kept per set per interval; more are counted, not stored. */
  maxSetMembers: number;
  relativeAccuracy: number;
  tagStyles: TagStyles;
  /** Events and service checks kept per interval. */
  maxEvents: number;
  /** How long a gauge's value is remembered for deltas after its last update. */
  gaugeTtlMs: number;
  /** Tags added to every series (e.g. host:web-1). */
  extraTags: string[];
  /**
   * A DogStatsD `|T` timestamp further than this from now (either way) refuses its line
   * (timestamp_out_of_range); a closer one is counted in the current interval. Default 1 minute.
   */
  maxTimestampSkewMs?: number;
}

/**
 * Samples of a timer, histogram or distribution kept exactly per series and interval, beside its
 * sketch. Up to this many the collector ranks the samples themselves (nearest rank: p90 of 0, 0,
 * 250 is 250); past it, the sketch and its relative-error guarantee take over.
 */
export const EXACT_SAMPLES = SKETCH_EXACT_SAMPLES;

const TYPE_COUNTER = 1;
const TYPE_GAUGE = 2;
const TYPE_SET = 3;

/** One series' accumulator for the current interval. Fields unused by a type stay at their initial values. */
class Series {
  readonly type: number;
  readonly name: string;
  readonly tags: string[];
  readonly key: string;
  /** A counter's sum, a gauge's value, or the weighted sum of a timer/histogram/distribution's samples. */
  value = 0;
  members: Set<string> | null = null;
  /**
   * Only once a series has more than EXACT_SAMPLES samples in the interval: below that the exact
   * samples are all there is, and the sketch is built from them when the interval is sent. Most
   * series of a large fleet get a handful of samples per interval, and a dense sketch is ~3.6 KB.
   */
  sketch: Sketch | null = null;
  /** The samples while there are at most EXACT_SAMPLES (grown on demand, released past it). */
  exact: Float64Array | null = null;
  /** Their weights (1/sampleRate), only once a sample had a weight other than 1. */
  exactWeights: Float64Array | null = null;
  /** Samples seen this interval. */
  exactCount = 0;

  constructor(type: number, name: string, tags: string[], key: string) {
    this.type = type;
    this.name = name;
    this.tags = tags;
    this.key = key;
  }
}

/** Cache entry for a raw name/tags text whose series was refused (maxSeries): don't re-decode it. */
const REFUSED = new Series(0, '', [], '');

/** The first samples' capacity; doubled up to EXACT_SAMPLES as a series gets more. */
const FIRST_EXACT = 8;

/** Keeps sample `n` of a timer/histogram/distribution exactly (n < EXACT_SAMPLES). */
function keepExact(s: Series, n: number, value: number, w: number): void {
  let exact = s.exact;
  if (exact === null) {
    exact = s.exact = new Float64Array(FIRST_EXACT);
  } else if (n === exact.length) {
    const grown = new Float64Array(n * 2);
    grown.set(exact);
    exact = s.exact = grown;
    if (s.exactWeights !== null) {
      const weights = new Float64Array(n * 2);
      weights.set(s.exactWeights);
      s.exactWeights = weights;
    }
  }
  exact[n] = value;
  let weights = s.exactWeights;
  if (weights === null) {
    if (w === 1) return;
    weights = s.exactWeights = new Float64Array(exact.length);
    weights.fill(1, 0, n);
  }
  weights[n] = w;
}

/** A sketch of the exact samples, accepted in arrival order: the same bins, count and sum as one fed live. */
function sketchOfExact(s: Series, relativeAccuracy: number): Sketch {
  const sketch = newSketch(relativeAccuracy);
  const exact = s.exact as Float64Array;
  const weights = s.exactWeights;
  const n = Math.min(s.exactCount, EXACT_SAMPLES);
  for (let i = 0; i < n; i++) sketch.accept(exact[i], weights === null ? 1 : weights[i]);
  return sketch;
}

/**
 * The raw-bytes cache: a line's name and tag bytes, exactly as sent, hashed (FNV-1a) and compared
 * byte for byte, so the hot path makes no string at all for a series it has already seen. Flat:
 * the bytes of every entry in one arena, the entries in typed arrays, an open-addressing table of
 * entry numbers; per entry only its Series reference is a JS object.
 */
class RawCache {
  /** Entry count; entries are numbered 0..size-1. */
  size = 0;
  private bytes = Buffer.allocUnsafe(64 * 1024);
  private used = 0;
  private start = new Int32Array(1024);
  private nameLen = new Int32Array(1024);
  /** -1: the line had no tags section. */
  private tagsLen = new Int32Array(1024);
  private hashes = new Int32Array(1024);
  private types = new Uint8Array(1024);
  private series: Series[] = [];
  /** Entry number + 1 per slot, 0 when free; linear probing, at most half full. */
  private table = new Int32Array(2048);

  /** The series of the raw text under `scan`, or undefined. */
  find(hash: number, scan: MetricScan): Series | undefined {
    const table = this.table;
    const mask = table.length - 1;
    const buf = scan.buf;
    const type = scan.type;
    const nameStart = scan.nameStart;
    const nameLen = scan.nameEnd - nameStart;
    const tagsStart = scan.tagsStart;
    const tagsLen = tagsStart >= 0 ? scan.tagsEnd - tagsStart : -1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const e = table[i] - 1;
      if (e < 0) return undefined;
      if (this.hashes[e] !== hash || this.types[e] !== type || this.nameLen[e] !== nameLen || this.tagsLen[e] !== tagsLen) continue;
      const bytes = this.bytes;
      const at = this.start[e];
      let same = true;
      for (let k = 0; k < nameLen; k++) {
        if (bytes[at + k] !== buf[nameStart + k]) {
          same = false;
          break;
        }
      }
      if (same && tagsLen > 0) {
        const tagsAt = at + nameLen;
        for (let k = 0; k < tagsLen; k++) {
          if (bytes[tagsAt + k] !== buf[tagsStart + k]) {
            same = false;
            break;
          }
        }
      }
      if (same) return this.series[e];
    }
  }

  add(hash: number, scan: MetricScan, series: Series): void {
    const e = this.size;
    if (e === this.start.length) this.growEntries();
    if ((e + 1) * 2 > this.table.length) this.rehash(this.table.length * 2);
    const nameLen = scan.nameEnd - scan.nameStart;
    const tagsLen = scan.tagsStart >= 0 ? scan.tagsEnd - scan.tagsStart : -1;
    const need = nameLen + Math.max(0, tagsLen);
    if (this.used + need > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.used + need));
      this.bytes.copy(grown, 0, 0, this.used);
      this.bytes = grown;
    }
    const at = this.used;
    scan.buf.copy(this.bytes, at, scan.nameStart, scan.nameEnd);
    if (tagsLen > 0) scan.buf.copy(this.bytes, at + nameLen, scan.tagsStart, scan.tagsEnd);
    this.used = at + need;
    this.start[e] = at;
    this.nameLen[e] = nameLen;
    this.tagsLen[e] = tagsLen;
    this.hashes[e] = hash;
    this.types[e] = scan.type;
    this.series.push(series);
    this.size = e + 1;
    this.place(e, hash);
  }

  /** Forgets every entry; keeps the arrays when the last interval filled at least a quarter of them. */
  clear(): void {
    const small = this.size * 4 < this.start.length && this.start.length > 1024;
    this.size = 0;
    this.used = 0;
    this.series = [];
    if (small) {
      this.bytes = Buffer.allocUnsafe(64 * 1024);
      this.start = new Int32Array(1024);
      this.nameLen = new Int32Array(1024);
      this.tagsLen = new Int32Array(1024);
      this.hashes = new Int32Array(1024);
      this.types = new Uint8Array(1024);
      this.table = new Int32Array(2048);
    } else {
      this.table.fill(0);
    }
  }

  private place(e: number, hash: number): void {
    const table = this.table;
    const mask = table.length - 1;
    let i = hash & mask;
    while (table[i] !== 0) i = (i + 1) & mask;
    table[i] = e + 1;
  }

  private rehash(slots: number): void {
    this.table = new Int32Array(slots);
    for (let e = 0; e < this.size; e++) this.place(e, this.hashes[e]);
  }

  private growEntries(): void {
    const n = this.start.length * 2;
    const grow = <T extends Int32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.start = grow(this.start, (k) => new Int32Array(k));
    this.nameLen = grow(this.nameLen, (k) => new Int32Array(k));
    this.tagsLen = grow(this.tagsLen, (k) => new Int32Array(k));
    this.hashes = grow(this.hashes, (k) => new Int32Array(k));
    this.types = grow(this.types, (k) => new Uint8Array(k));
  }
}

function rawHash(scan: MetricScan): number {
  const buf = scan.buf;
  let h = 0x811c9dc5 ^ scan.type;
  for (let i = scan.nameStart; i < scan.nameEnd; i++) h = Math.imul(h ^ buf[i], 16777619);
  if (scan.tagsStart >= 0) {
    h = Math.imul(h ^ 0x7c, 16777619);
    for (let i = scan.tagsStart; i < scan.tagsEnd; i++) h = Math.imul(h ^ buf[i], 16777619);
  }
  // keep it a small integer
  return h & 0x3fffffff;
}

export interface AggregatorStats {
  lines: number;
  datagrams: number;
  bytes: number;
  parseErrors: number[];
  droppedMaxSeries: number;
  droppedSetMembers: number;
  droppedEvents: number;
  events: number;
  serviceChecks: number;
}

export class Aggregator implements ValueSink {
  private options: AggregatorOptions;
  private readonly scan = new MetricScan();
  private readonly why: ParseErrorReason[] = [];
  /** Raw name/tag bytes → series, valid for the current interval. */
  private rawCache = new RawCache();
  private series = new Map<string, Series>();
  /** Distinct tag sets of the interval (see tagSet). */
  private tagSets = new Map<string, string[]>();
  /** Sets of the last interval, reported with no members in the next one if it gets none. */
  private readonly recentSets = new Map<string, { name: string; tags: string[]; at: number }>();
  /** Gauge values remembered across intervals so deltas have a base. */
  private readonly gaugeValues = new Map<string, { value: number; at: number }>();
  private events: StatsdEvent[] = [];
  private serviceChecks: ServiceCheck[] = [];
  private intervalStart = Date.now();
  readonly stats: AggregatorStats = {
    lines: 0,
    datagrams: 0,
    bytes: 0,
    parseErrors: PARSE_ERROR_REASONS.map(() => 0),
    droppedMaxSeries: 0,
    droppedSetMembers: 0,
    droppedEvents: 0,
    events: 0,
    serviceChecks: 0,
  };
  /** The last parse error seen, for one log line per flush. */
  lastError: { reason: ParseErrorReason; line: string } | null = null;
  private current: Series | null = null;
  private currentWeight = 1;

  private maxSkewMs: number;

  constructor(options: AggregatorOptions, telemetry?: Telemetry) {
    this.options = options;
    this.maxSkewMs = options.maxTimestampSkewMs ?? 60_000;
    if (telemetry) registerAggregatorMetrics(telemetry, this);
  }

  /**
   * New limits and tags from a config reload, best right after a flush. Series already counted
   * this interval keep their identity; lines from now on are named with the new tags.
   */
  reconfigure(options: AggregatorOptions): void {
    this.options = options;
    this.maxSkewMs = options.maxTimestampSkewMs ?? 60_000;
    this.rawCache.clear();
  }

  get seriesCount(): number {
    return this.series.size;
  }

  /** Feeds one datagram (or a chunk of complete lines) of `buf[start, end)`. */
  ingest(buf: Buffer, start = 0, end = buf.length): void {
    this.stats.datagrams++;
    this.stats.bytes += end - start;
    this.lineBuf = buf;
    forEachLine(buf, start, end, this.onLine);
    // don't pin the datagram's memory until the next one arrives
    this.lineBuf = EMPTY;
    this.scan.buf = EMPTY;
  }

  /** The live tap of statsd lines (shared/tap.ts); set by the agent. */
  tap: TapPoint | null = null;

  /** Only while someone taps: the line as `plumb statsd-parse` shows it. */
  private tapLine(buf: Buffer, start: number, end: number): void {
    const line = buf.subarray(start, end);
    const parsed = parseLineToJson(line);
    // one metric per line (the usual case) is shown flat, so a filter says name == "x"
    const metrics = parsed.metrics;
    const flat = Array.isArray(metrics) && metrics.length === 1 ? { ok: true, ...(metrics[0] as Record<string, unknown>) } : parsed;
    (this.tap as TapPoint).publishOne({ line: line.toString('utf8'), ...flat });
  }

  private lineBuf: Buffer = EMPTY;
  private readonly onLine = (start: number, end: number): void => this.ingestLine(this.lineBuf, start, end);

  ingestLine(buf: Buffer, start: number, end: number): void {
    if (this.tap !== null && this.tap.active) this.tapLine(buf, start, end);
    const kind = lineKind(buf, start, end);
    if (kind !== 'metric') {
      if (kind === 'event') this.ingestEvent(buf, start, end);
      else if (kind === 'serviceCheck') this.ingestServiceCheck(buf, start, end);
      return;
    }
    const scan = this.scan;
    const reason = scanMetric(buf, start, end, scan, this.options.tagStyles);
    if (reason !== null) {
      this.parseError(reason, buf, start, end);
      return;
    }
    // Samples are counted in the interval they arrive in, so one stamped far off is refused.
    if (scan.timestamp >= 0 && Math.abs(scan.timestamp * 1000 - Date.now()) > this.maxSkewMs) {
      this.parseError('timestamp_out_of_range', buf, start, end);
      return;
    }
    const type = scan.type;
    const hash = rawHash(scan);
    let series = this.rawCache.find(hash, scan);
    if (series === undefined) {
      series = this.resolveSeries(hash, buf, start, end);
      if (series === undefined) return;
    }
    if (series === REFUSED) {
      this.stats.droppedMaxSeries++;
      return;
    }
    this.stats.lines++;
    this.current = series;
    this.currentWeight = 1 / scan.sampleRate;
    if (type === TYPE_SET) {
      this.addSetMember(series);
    } else {
      forEachValue(scan, this);
      if (this.valueRefused) {
        this.valueRefused = false;
        this.stats.lines--;
        this.parseError('non_finite', buf, start, end);
      }
    }
  }

  /** Called by forEachValueInto for every numeric value of the current line. */
  accept(value: number, delta: boolean): void {
    const s = this.current as Series;
    const t = s.type;
    if (t === TYPE_COUNTER) {
      const next = s.value + value * this.currentWeight;
      // 1e308 twice: refuse the value rather than send Infinity (JSON null, read as 0)
      if (!Number.isFinite(next)) return this.nonFinite();
      s.value = next;
    } else if (t === TYPE_GAUGE) {
      if (delta) {
        if (s.members === null) {
          // first delta this interval: start from the value remembered from earlier intervals
          s.value = this.gaugeValues.get(s.key)?.value ?? s.value;
        }
        if (!Number.isFinite(s.value + value)) return this.nonFinite();
        s.value += value;
      } else {
        s.value = value;
      }
      s.members = GAUGE_SET; // marks "has a value this interval"
    } else {
      const w = this.currentWeight;
      const sum = s.value + value * w;
      if (!Number.isFinite(sum)) return this.nonFinite();
      s.value = sum;
      const n = s.exactCount;
      if (n < EXACT_SAMPLES) {
        keepExact(s, n, value, w);
      } else {
        let sketch = s.sketch;
        if (sketch === null) {
          // past the exact samples: from here on the sketch holds them, and they are not sent
          sketch = s.sketch = sketchOfExact(s, this.options.relativeAccuracy);
          s.exact = null;
          s.exactWeights = null;
        }
        sketch.accept(value, w);
      }
      s.exactCount = n + 1;
    }
  }

  /** A value refused by accept(): counted once per line (see ingestLine). */
  private nonFinite(): void {
    this.valueRefused = true;
  }
  private valueRefused = false;

  private addSetMember(series: Series): void {
    const member = decodeSetMember(this.scan);
    if (member === null) {
      this.stats.lines--;
      this.parseError('invalid_utf8', this.scan.buf, this.scan.nameStart, this.scan.valueEnd);
      return;
    }
    if (member.length > STATSD_LIMITS.maxSetMemberLength) {
      this.stats.lines--;
      this.parseError('member_too_long', this.scan.buf, this.scan.nameStart, this.scan.valueEnd);
      return;
    }
    const members = series.members as Set<string>;
    if (members.size >= this.options.maxSetMembers && !members.has(member)) {
      this.stats.droppedSetMembers++;
      return;
    }
    members.add(member);
  }

  /**
   * One array per distinct tag set in the interval, shared by every series that has it (a host's
   * tags on each of its metrics), holding interned strings; read-only from here on.
   */
  private tagSet(joined: string, tags: string[]): string[] {
    let shared = this.tagSets.get(joined);
    if (shared === undefined) {
      shared = tags.map(interned);
      this.tagSets.set(interned(joined), shared);
    }
    return shared;
  }

  /** Slow path: first sighting of this raw text this interval. */
  private resolveSeries(hash: number, buf: Buffer, start: number, end: number): Series | undefined {
    const scan = this.scan;
    const identity = decodeIdentity(scan, this.options.tagStyles, this.why);
    if (identity === null) {
      this.parseError(this.why[0], buf, start, end);
      return undefined;
    }
    const tags = this.options.extraTags.length > 0 ? mergeTags(identity.tags, this.options.extraTags) : identity.tags;
    // The agent's own tags count towards the collector's limits too.
    const breach = this.options.extraTags.length > 0 ? checkTagLimits(tags) : null;
    if (breach !== null) {
      this.parseError(breach, buf, start, end);
      return undefined;
    }
    const type = scan.type;
    const joined = tags.join(',');
    const key = `${TYPE_NAMES[type]}|${identity.name}|${joined}`;
    let series = this.series.get(key);
    if (series === undefined) {
      if (this.series.size >= this.options.maxSeries) {
        series = REFUSED;
      } else {
        series = new Series(type, interned(identity.name), this.tagSet(joined, tags), interned(key));
        if (type === TYPE_SET) series.members = new Set();
        this.series.set(key, series);
      }
    }
    // The raw cache is bounded too: past twice the series limit, lines just take the slow path.
    if (this.rawCache.size < this.options.maxSeries * 2) this.rawCache.add(hash, scan, series);
    return series;
  }

  private parseError(reason: ParseErrorReason, buf: Buffer, start: number, end: number): void {
    this.stats.parseErrors[PARSE_ERROR_REASONS.indexOf(reason)]++;
    if (this.lastError === null) this.lastError = { reason, line: buf.toString('utf8', start, Math.min(end, start + 200)) };
  }

  private ingestEvent(buf: Buffer, start: number, end: number): void {
    const e = parseEvent(buf, start, end);
    if (typeof e === 'string') return this.parseError(e, buf, start, end);
    this.stats.events++;
    if (this.events.length >= this.options.maxEvents) {
      this.stats.droppedEvents++;
      return;
    }
    if (this.options.extraTags.length > 0) {
      e.tags = mergeTags(e.tags, this.options.extraTags);
      const breach = checkTagLimits(e.tags);
      if (breach !== null) return this.parseError(breach, buf, start, end);
    }
    // An event without a date happened when it arrived.
    e.timestamp ??= Math.floor(Date.now() / 1000);
    this.events.push(e);
  }

  private ingestServiceCheck(buf: Buffer, start: number, end: number): void {
    const c = parseServiceCheck(buf, start, end);
    if (typeof c === 'string') return this.parseError(c, buf, start, end);
    this.stats.serviceChecks++;
    if (this.serviceChecks.length >= this.options.maxEvents) {
      this.stats.droppedEvents++;
      return;
    }
    if (this.options.extraTags.length > 0) {
      c.tags = mergeTags(c.tags, this.options.extraTags);
      const breach = checkTagLimits(c.tags);
      if (breach !== null) return this.parseError(breach, buf, start, end);
    }
    this.serviceChecks.push(c);
  }

  /** Adds a service check produced inside the agent (its own HTTP/TCP checks). */
  addServiceCheck(c: ServiceCheck): void {
    this.stats.serviceChecks++;
    if (this.serviceChecks.length >= this.options.maxEvents) {
      this.stats.droppedEvents++;
      return;
    }
    this.serviceChecks.push(this.options.extraTags.length > 0 ? { ...c, tags: mergeTags(c.tags, this.options.extraTags) } : c);
  }

  /** Adds an already-decoded sample (host metrics, checks) through the same series limits. */
  addSample(name: string, type: 'c' | 'g', value: number, tags: string[]): void {
    const t = type === 'c' ? TYPE_COUNTER : TYPE_GAUGE;
    const all = mergeTags([...tags].sort(), this.options.extraTags);
    const key = `${type}|${name}|${all.join(',')}`;
    let s = this.series.get(key);
    if (s === undefined) {
      if (this.series.size >= this.options.maxSeries) {
        this.stats.droppedMaxSeries++;
        return;
      }
      s = new Series(t, name, all, key);
      this.series.set(key, s);
    }
    this.current = s;
    this.currentWeight = 1;
    this.accept(value, false);
  }

  /** Ends the interval: returns its contents and starts a new one. */
  flush(now = Date.now()): Omit<MetricBatch, 'id' | 'agent' | 'seq'> {
    const { series, rest } = this.endInterval(now);
    const metrics: WireMetric[] = [];
    const accuracy = this.options.relativeAccuracy;
    for (const s of series) pushWire(metrics, s, accuracy);
    return { ...rest, metrics };
  }

  /**
   * Like flush(), but encodes the ended interval in slices, yielding to the event loop between
   * them, so a large interval does not stall the socket while the kernel buffer fills. Lines
   * arriving meanwhile already count towards the new interval.
   */
  async flushAsync(now = Date.now(), slice = 2000): Promise<Omit<MetricBatch, 'id' | 'agent' | 'seq'>> {
    return this.end(now).toWire(slice);
  }

  /**
   * Ends the interval and starts a new one; the ended one is encoded later, by whoever sends it
   * (EndedInterval.encode, or toWire for the paths that need its metrics as objects).
   */
  end(now = Date.now()): EndedInterval {
    const { series, rest } = this.endInterval(now);
    return new EndedInterval(series, rest, this.options.relativeAccuracy);
  }

  private endInterval(now: number): { series: Series[]; rest: Omit<MetricBatch, 'id' | 'agent' | 'seq' | 'metrics'> } {
    const series = [...this.series.values()];
    for (const s of series) {
      if (s.type === TYPE_GAUGE && s.members !== null) this.gaugeValues.set(s.key, { value: s.value, at: now });
      else if (s.type === TYPE_SET) this.recentSets.set(s.key, { name: s.name, tags: s.tags, at: now });
    }
    this.expireGauges(now);
    // A set that got no member this interval has 0 unique members, not the count it had before:
    // it is sent once with none (the collector then holds 0 for this agent until it comes back).
    for (const [key, r] of this.recentSets) {
      if (r.at === now) continue;
      this.recentSets.delete(key);
      if (series.length < this.options.maxSeries) series.push(new Series(TYPE_SET, r.name, r.tags, key));
    }
    const rest = { start: this.intervalStart, end: now, events: this.events, serviceChecks: this.serviceChecks };
    this.series = new Map();
    this.tagSets = new Map();
    this.rawCache.clear();
    this.events = [];
    this.serviceChecks = [];
    this.intervalStart = now;
    this.lastError = null;
    return { series, rest };
  }

  private expireGauges(now: number): void {
    const ttl = this.options.gaugeTtlMs;
    for (const [key, g] of this.gaugeValues) if (now - g.at > ttl) this.gaugeValues.delete(key);
    // Bounded like the series: remember at most maxSeries gauges, oldest first out.
    while (this.gaugeValues.size > this.options.maxSeries) this.gaugeValues.delete(this.gaugeValues.keys().next().value as string);
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * Where EndedInterval.encode writes: `owner` picks a series' destination (a collector's index),
 * `write` appends one metric's JSON text to it and returns false when that destination wants
 * `drain` awaited before more is written.
 */
export interface MetricTextSink {
  owner(name: string, tags: string[]): number;
  write(owner: number, json: string): boolean;
  drain(owner: number): Promise<void>;
}

/**
 * An interval the aggregator has ended, not yet encoded: its series, released one by one as they
 * are encoded, so the interval's state goes while the next one fills and at no moment is the
 * interval held twice (as series and as wire objects).
 */
export class EndedInterval {
  readonly start: number;
  readonly end: number;
  readonly events: StatsdEvent[];
  readonly serviceChecks: ServiceCheck[];
  private series: (Series | null)[];
  private readonly accuracy: number;

  constructor(series: Series[], rest: Omit<MetricBatch, 'id' | 'agent' | 'seq' | 'metrics'>, relativeAccuracy: number) {
    this.series = series;
    this.start = rest.start;
    this.end = rest.end;
    this.events = rest.events;
    this.serviceChecks = rest.serviceChecks;
    this.accuracy = relativeAccuracy;
  }

  /** Series not yet encoded (some may have no metric to send: a gauge or timer with no value). */
  get seriesCount(): number {
    return this.series.length;
  }

  /** The interval as wire objects (the tap, the memory guard's merged intervals), yielding every `slice` series. */
  async toWire(slice = 2000): Promise<Omit<MetricBatch, 'id' | 'agent' | 'seq'>> {
    const metrics: WireMetric[] = [];
    const ended = this.series;
    this.series = [];
    for (let i = 0; i < ended.length; i++) {
      pushWire(metrics, ended[i] as Series, this.accuracy);
      ended[i] = null;
      if (i % slice === slice - 1) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return { start: this.start, end: this.end, events: this.events, serviceChecks: this.serviceChecks, metrics };
  }

  /**
   * Writes each series' metric as the JSON text of its wire object (what JSON.stringify gives
   * for the object toWire builds) to its owner in `sink`, in series order, releasing each series
   * as it goes and yielding every `slice` series. Returns how many metrics each owner got.
   */
  async encode(sink: MetricTextSink, owners: number, slice = 2000): Promise<number[]> {
    const counts = new Array<number>(owners).fill(0);
    const ended = this.series;
    this.series = [];
    for (let i = 0; i < ended.length; i++) {
      const s = ended[i] as Series;
      ended[i] = null;
      const json = seriesJson(s, this.accuracy);
      if (json !== null) {
        const o = owners === 1 ? 0 : sink.owner(s.name, s.tags);
        counts[o]++;
        if (!sink.write(o, json)) await sink.drain(o);
      }
      if (i % slice === slice - 1) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return counts;
  }
}

function pushWire(out: WireMetric[], s: Series, relativeAccuracy: number): void {
  if (s.type === TYPE_COUNTER) {
    out.push({ type: 'c', name: s.name, tags: s.tags, value: s.value });
  } else if (s.type === TYPE_GAUGE) {
    if (s.members !== null) out.push({ type: 'g', name: s.name, tags: s.tags, value: s.value });
  } else if (s.type === TYPE_SET) {
    out.push({ type: 's', name: s.name, tags: s.tags, members: s.members === null ? [] : [...s.members] });
  } else {
    const n = s.exactCount;
    if (n === 0) return;
    const sk = s.sketch ?? sketchOfExact(s, relativeAccuracy);
    const type = TYPE_NAMES[s.type] as 'ms' | 'h' | 'd';
    const m: WireDistribution = { type, name: s.name, tags: s.tags, sketch: encodeSketch(sk), count: sk.count, sum: sk.sum, min: sk.min, max: sk.max };
    if (n <= EXACT_SAMPLES && s.exact !== null) {
      m.samples = Array.from(s.exact.subarray(0, n));
      const weights = s.exactWeights;
      if (weights !== null && weighted(weights, n)) m.weights = Array.from(weights.subarray(0, n));
    }
    out.push(m);
  }
}
/** Whether any of the first `n` samples had a weight other than 1 (else the wire leaves weights out). */
function weighted(weights: Float64Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (weights[i] !== 1) return true;
  return false;
}

/** A number as JSON.stringify writes it (null when it has no JSON form). */
function jsonNumber(v: number): string {
  return Number.isFinite(v) ? String(v) : 'null';
}

function jsonNumbers(a: Float64Array, n: number): string {
  let text = '[';
  for (let i = 0; i < n; i++) text += (i === 0 ? '' : ',') + jsonNumber(a[i]);
  return `${text}]`;
}

/**
 * JSON.stringify of the wire object pushWire makes for `s`, written without making the object;
 * null when pushWire makes none. Keys in the same order, so the bytes are the same.
 */
function seriesJson(s: Series, relativeAccuracy: number): string | null {
  const head = `"name":${JSON.stringify(s.name)},"tags":${JSON.stringify(s.tags)}`;
  if (s.type === TYPE_COUNTER) return `{"type":"c",${head},"value":${jsonNumber(s.value)}}`;
  if (s.type === TYPE_GAUGE) return s.members === null ? null : `{"type":"g",${head},"value":${jsonNumber(s.value)}}`;
  if (s.type === TYPE_SET) {
    let members = '[';
    if (s.members !== null) {
      let first = true;
      for (const m of s.members) {
        members += (first ? '' : ',') + JSON.stringify(m);
        first = false;
      }
    }
    return `{"type":"s",${head},"members":${members}]}`;
  }
  const n = s.exactCount;
  if (n === 0) return null;
  const sk = s.sketch ?? sketchOfExact(s, relativeAccuracy);
  let text = `{"type":"${TYPE_NAMES[s.type]}",${head},"sketch":"${encodeSketch(sk)}","count":${jsonNumber(sk.count)},"sum":${jsonNumber(sk.sum)},"min":${jsonNumber(sk.min)},"max":${jsonNumber(sk.max)}`;
  if (n <= EXACT_SAMPLES && s.exact !== null) {
    text += `,"samples":${jsonNumbers(s.exact, n)}`;
    const weights = s.exactWeights;
    if (weights !== null && weighted(weights, n)) text += `,"weights":${jsonNumbers(weights, n)}`;
  }
  return `${text}}`;
}

/**
 * The string V8 keeps once in its string table: flat (a key built with a template is a tree of
 * cons strings, ~100 bytes more than its text) and shared by every series that has the same
 * name or tag. The table holds it weakly, so it goes when no series refers to it.
 */
function interned(s: string): string {
  return Object.keys({ [s]: 0 })[0];
}

/** Sentinel set marking a gauge as updated this interval (gauges never use `members` otherwise). */
const GAUGE_SET = new Set<string>();

function mergeTags(tags: string[], extra: string[]): string[] {
  const all = tags.concat(extra);
  all.sort();
  let w = all.length > 0 ? 1 : 0;
  for (let r = 1; r < all.length; r++) if (all[r] !== all[w - 1]) all[w++] = all[r];
  all.length = w;
  return all;
}

function registerAggregatorMetrics(telemetry: Telemetry, agg: Aggregator): void {
  const s = agg.stats;
  telemetry.countFrom(telemetry.counter('plumb_statsd_lines_total', 'statsd lines parsed and aggregated'), () => s.lines);
  telemetry.countFrom(telemetry.counter('plumb_statsd_datagrams_total', 'statsd datagrams (or TCP chunks) received'), () => s.datagrams);
  telemetry.countFrom(telemetry.counter('plumb_statsd_bytes_total', 'statsd payload bytes received'), () => s.bytes);
  const errors = telemetry.counter('plumb_statsd_parse_errors_total', 'statsd lines rejected, by reason', ['reason']);
  PARSE_ERROR_REASONS.forEach((reason, i) => telemetry.countFrom(errors, () => s.parseErrors[i], { reason }));
  const dropped = telemetry.counter('plumb_statsd_dropped_total', 'statsd values dropped by a limit, by reason', ['reason']);
  telemetry.countFrom(dropped, () => s.droppedMaxSeries, { reason: 'max_series' });
  telemetry.countFrom(dropped, () => s.droppedSetMembers, { reason: 'max_set_members' });
  telemetry.countFrom(dropped, () => s.droppedEvents, { reason: 'max_events' });
  const events = telemetry.counter('plumb_statsd_events_total', 'DogStatsD events and service checks received', ['kind']);
  telemetry.countFrom(events, () => s.events, { kind: 'event' });
  telemetry.countFrom(events, () => s.serviceChecks, { kind: 'service_check' });
  telemetry.gaugeFrom('plumb_statsd_series', 'series aggregated in the current interval', () => agg.seriesCount);
}
