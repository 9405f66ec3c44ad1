/**
 * Log pattern mining on the collector. Every log event accepted from an agent goes through one
 * Drain tree (drain.ts), under its source; the event gets `pattern_id` (the first 16 hex digits
 * of the SHA-256 of the template text, so the same template has the same id on every collector
 * and after every restart) and `pattern` (the template) before it reaches the sinks.
 *
 * Why the collector and not the agent: it sees every host's lines of a source, so templates
 * generalise from all of them at once and one table answers `GET /api/v1/patterns`, the
 * `plumb_log_pattern_events_total` series and the pattern alert rules; agents stay light.
 *
 * Bounded: at most `maxPatterns` templates over all sources (least recently seen forgotten and
 * counted), a message is mined up to `maxMessageBytes`, and the metric has at most
 * `metricSeries` label sets (further events counted under source="_overflow").
 * The table is saved to <dataDir>/patterns.json every `saveInterval` and at stop.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Counter } from 'prom-client';
import type { Telemetry } from '../../shared/telemetry.ts';
import type { Logger } from '../../shared/log.ts';
import { errorMessage } from '../../shared/errors.ts';
import { Drain, type Cluster } from './drain.ts';
import { DEFAULT_MASKS } from './masks.ts';
import type { PatternsConfig } from './config.ts';

/** Minutes of per-pattern counts kept for rate rules (window + baseline must fit). */
export const RATE_MINUTES = 72;
const MINUTE = 60_000;
const EXAMPLE_CHARS = 512;
const OVERFLOW = '_overflow';
const UNKNOWN_SOURCE = 'unknown';

export interface PatternStats {
  id: string;
  count: number;
  firstSeen: number;
  lastSeen: number;
  example: string;
  /** Events per minute, a ring indexed by minute number % RATE_MINUTES. */
  minutes: Uint32Array;
  /** The minute number each ring slot holds. */
  minuteOf: Float64Array;
  /** `,"pattern_id":…,"pattern":…`, made once per template (annotateLine splices it into lines). */
  annotation: Buffer;
}

export interface PatternView {
  id: string;
  source: string;
  template: string;
  count: number;
  first_seen: string;
  last_seen: string;
  example: string;
}

export interface Observed {
  id: string;
  template: string;
  source: string;
  /** The pattern's numbers; commit() counts the event in them. */
  stats: PatternStats;
  /** `,"pattern_id":…,"pattern":…` as spliced into the event's line (annotateLine). */
  annotation?: Buffer;
}

interface Tally {
  o: Observed;
  n: number;
  /** The same pattern under another id (its template changed within the batch). */
  next: Tally | null;
}

/** The id of a template: stable across restarts and collectors. */
export function patternId(template: string): string {
  return createHash('sha256').update(template).digest('hex').slice(0, 16);
}

interface SavedPattern {
  source: string;
  template: string;
  count: number;
  firstSeen: number;
  lastSeen: number;
  example: string;
}

export class PatternMiner {
  private readonly config: PatternsConfig;
  private readonly drain: Drain;
  private readonly sourcePaths: string[][];
  private readonly messagePath: string[];
  private readonly file: string;
  private readonly log: Logger;
  private readonly events: Counter<'source' | 'pattern_id'>;
  private readonly series = new Set<string>();
  private readonly evictions: Counter;
  private saveTimer: NodeJS.Timeout | null = null;
  private dirty = false;
  /** When mining began without a saved table (templates first seen before this are not "new"). */
  learningSince = 0;

  constructor(config: PatternsConfig, ctx: { telemetry: Telemetry; log: Logger; dataDir: string }) {
    this.config = config;
    this.log = ctx.log;
    this.file = join(ctx.dataDir, 'patterns.json');
    const masks = [...config.masks.map((m) => new RegExp(m, 'g')), ...DEFAULT_MASKS];
    this.drain = new Drain({ depth: config.depth, similarity: config.similarity, maxChildren: config.maxChildren, maxClusters: config.maxPatterns, maxLeafClusters: config.maxLeafPatterns, masks });
    this.sourcePaths = config.sourceFields.map((f) => f.split('.'));
    this.messagePath = config.field.split('.');
    const t = ctx.telemetry;
    this.events = t.counter('plumb_log_pattern_events_total', `log events by source and pattern; at most collector.patterns.metricSeries label sets, further ones under source="${OVERFLOW}"`, ['source', 'pattern_id']);
    this.evictions = t.counter('plumb_log_pattern_evictions_total', 'templates forgotten to stay within collector.patterns.maxPatterns');
    t.gaugeFrom('plumb_log_patterns', 'templates the collector holds over all sources', () => this.drain.size);
  }

  /** Loads the saved table and starts saving it on an interval. */
  start(now = Date.now()): void {
    this.load(now);
    if (this.config.saveInterval > 0) {
      this.saveTimer = setInterval(() => this.save(), this.config.saveInterval);
      this.saveTimer.unref();
    }
  }

  stop(): void {
    if (this.saveTimer) clearInterval(this.saveTimer);
    this.saveTimer = null;
    this.save();
  }

  /**
   * Finds (or learns) the template of one event; null when it has no text to mine. The event is
   * counted only by commit(), once the sinks have it: a batch refused with 429 and sent again is
   * counted once.
   */
  observe(event: Record<string, unknown>, now: number): Observed | null {
    const text = readPath(event, this.messagePath);
    if (typeof text !== 'string') return null;
    const source = this.sourceOf(event);
    const message = text.length > this.config.maxMessageBytes ? text.slice(0, this.config.maxMessageBytes) : text;
    const r = this.drain.add(source, message);
    const c = r.cluster;
    let stats = c.meta as PatternStats | undefined;
    if (stats === undefined) {
      stats = newStats(c.template, now, message);
      c.meta = stats;
    } else if (r.changed) {
      renamed(stats, c.template);
    }
    if (r.evicted !== null) this.evictions.inc();
    this.dirty = true;
    return { id: stats.id, template: c.template, source, stats, annotation: stats.annotation };
  }

  /** Counts events observe() classified, once they are accepted. */
  commit(observed: readonly Observed[], now: number): void {
    if (observed.length === 0) return;
    // tallied per pattern and id, then counted once each (a batch repeats a few patterns)
    const tallies = new Map<PatternStats, Tally>();
    const order: Tally[] = [];
    for (const o of observed) {
      let t = tallies.get(o.stats);
      if (t === undefined) {
        t = { o, n: 0, next: null };
        tallies.set(o.stats, t);
        order.push(t);
      }
      // the template, and so the id, may have changed within the batch
      while (t.o.id !== o.id) {
        if (t.next === null) {
          t.next = { o, n: 0, next: null };
          order.push(t.next);
        }
        t = t.next;
      }
      t.n++;
    }
    for (const t of order) {
      const stats = t.o.stats;
      stats.count += t.n;
      stats.lastSeen = now;
      countMinute(stats, now, t.n);
      this.count(t.o.source, t.o.id, t.n);
    }
    this.dirty = true;
  }

  private count(source: string, id: string, n: number): void {
    const key = `${source}\u0000${id}`;
    if (this.series.has(key)) {
      this.events.inc({ source, pattern_id: id }, n);
    } else if (this.series.size < this.config.metricSeries) {
      this.series.add(key);
      this.events.inc({ source, pattern_id: id }, n);
    } else {
      this.events.inc({ source: OVERFLOW, pattern_id: OVERFLOW }, n);
    }
  }

  private sourceOf(event: Record<string, unknown>): string {
    for (const path of this.sourcePaths) {
      const v = readPath(event, path);
      if (typeof v === 'string' && v !== '') return v;
    }
    return UNKNOWN_SOURCE;
  }

  /** Every template with its numbers, most frequent first (or most recent with sort "last_seen"). */
  list(options: { source?: string; limit?: number; sort?: 'count' | 'last_seen' } = {}): { total: number; patterns: PatternView[] } {
    const all: { c: Cluster; s: PatternStats }[] = [];
    for (const c of this.drain.clusters()) {
      if (options.source !== undefined && c.source !== options.source) continue;
      all.push({ c, s: c.meta as PatternStats });
    }
    if (options.sort === 'last_seen') all.sort((a, b) => b.s.lastSeen - a.s.lastSeen);
    else all.sort((a, b) => b.s.count - a.s.count);
    const limit = options.limit ?? all.length;
    return {
      total: all.length,
      patterns: all.slice(0, limit).map(({ c, s }) => ({
        id: s.id,
        source: c.source,
        template: c.template,
        count: s.count,
        first_seen: new Date(s.firstSeen).toISOString(),
        last_seen: new Date(s.lastSeen).toISOString(),
        example: s.example,
      })),
    };
  }

  /** Each template with its stats, for the alert rules. */
  *entries(): IterableIterator<{ source: string; template: string; stats: PatternStats }> {
    for (const c of this.drain.clusters()) yield { source: c.source, template: c.template, stats: c.meta as PatternStats };
  }

  get size(): number {
    return this.drain.size;
  }

  save(): void {
    if (!this.dirty) return;
    const saved: SavedPattern[] = [];
    for (const c of this.drain.clusters()) {
      const s = c.meta as PatternStats;
      saved.push({ source: c.source, template: c.template, count: s.count, firstSeen: s.firstSeen, lastSeen: s.lastSeen, example: s.example });
    }
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      const tmp = `${this.file}.tmp`;
      writeFileSync(tmp, JSON.stringify({ version: 1, learningSince: this.learningSince, patterns: saved }));
      renameSync(tmp, this.file);
      this.dirty = false;
    } catch (err) {
      this.log.warn({ err: errorMessage(err), file: this.file }, 'could not save the log patterns; they are kept in memory and saved again later');
    }
  }

  private load(now: number): void {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      this.learningSince = now;
      return;
    }
    try {
      const doc = JSON.parse(text) as { learningSince?: number; patterns?: SavedPattern[] };
      this.learningSince = typeof doc.learningSince === 'number' ? doc.learningSince : now;
      // least recently seen first, so the LRU order is what it was
      for (const p of doc.patterns ?? []) {
        const { cluster } = this.drain.restore(p.source, p.template, p.count);
        const stats = newStats(p.template, p.firstSeen, p.example);
        stats.count = p.count;
        stats.lastSeen = p.lastSeen;
        cluster.meta = stats;
      }
      this.log.info({ patterns: this.drain.size, file: this.file }, 'log patterns loaded');
    } catch (err) {
      this.learningSince = now;
      this.log.warn({ err: errorMessage(err), file: this.file }, 'the saved log patterns could not be read; learning them anew');
    }
  }
}

function newStats(template: string, now: number, message: string): PatternStats {
  const id = patternId(template);
  return {
    id,
    annotation: annotationOf(id, template),
    count: 0,
    firstSeen: now,
    lastSeen: now,
    example: message.length > EXAMPLE_CHARS ? message.slice(0, EXAMPLE_CHARS) : message,
    minutes: new Uint32Array(RATE_MINUTES),
    minuteOf: new Float64Array(RATE_MINUTES).fill(-1),
  };
}

/** The template of a pattern changed: so do its id and annotation. */
function renamed(s: PatternStats, template: string): void {
  s.id = patternId(template);
  s.annotation = annotationOf(s.id, template);
}

function annotationOf(id: string, template: string): Buffer {
  return Buffer.from(`,"pattern_id":"${id}","pattern":${JSON.stringify(template)}`);
}

function countMinute(s: PatternStats, now: number, n: number): void {
  const minute = Math.floor(now / MINUTE);
  const slot = minute % RATE_MINUTES;
  if (s.minuteOf[slot] !== minute) {
    s.minuteOf[slot] = minute;
    s.minutes[slot] = 0;
  }
  s.minutes[slot] += n;
}

/** Events of a pattern in the whole minutes [from, to) (Unix ms, floored to minutes). */
export function eventsBetween(s: Pick<PatternStats, 'minutes' | 'minuteOf'>, from: number, to: number): number {
  let n = 0;
  const first = Math.floor(from / MINUTE);
  const last = Math.floor(to / MINUTE);
  for (let m = Math.max(first, last - RATE_MINUTES + 1); m < last; m++) {
    const slot = m % RATE_MINUTES;
    if (s.minuteOf[slot] === m) n += s.minutes[slot];
  }
  return n;
}

function readPath(event: Record<string, unknown>, path: string[]): unknown {
  let v: unknown = event;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/**
 * The event's JSON line with `pattern_id` and `pattern` added. Spliced in before the closing
 * brace (the line is the agent's bytes, already checked to be one JSON object); an event that
 * already has either key is written anew with them replaced.
 */
export function annotateLine(line: Buffer, event: Record<string, unknown>, o: Observed): Buffer {
  const parts: Buffer[] = [];
  pushAnnotated(parts, line, event, o);
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/**
 * annotateLine's bytes as pieces pushed onto `parts` (the caller concatenates a whole batch
 * once): the line up to its closing brace, the pattern's annotation, the rest.
 */
export function pushAnnotated(parts: Buffer[], line: Buffer, event: Record<string, unknown>, o: Observed): void {
  if ('pattern_id' in event || 'pattern' in event) {
    parts.push(Buffer.from(JSON.stringify({ ...event, pattern_id: o.id, pattern: o.template })));
    return;
  }
  let end = line.length - 1;
  while (end > 0 && line[end] !== 0x7d) end--;
  const extra = o.annotation ?? annotationOf(o.id, o.template);
  if (end === line.length - 1) parts.push(line.subarray(0, end), extra, CLOSE_BRACE);
  else parts.push(line.subarray(0, end), extra, line.subarray(end));
}

const CLOSE_BRACE = Buffer.from('}');
