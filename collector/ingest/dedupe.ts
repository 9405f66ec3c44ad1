/**
 * Replay detection: windows of recently accepted batch or event ids, and `DurableIds`, which
 * keeps such a window in a journal (shared/journal.ts) so a restarted collector still knows them.
 */
import { Journal, type JournalOptions } from '../../shared/journal.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { errorMessage } from '../../shared/errors.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { LOG_EVENT_FILE_CHARS, logEventOffset } from '../../shared/wire.ts';

/** A bounded set of ids that can be written to and read back from snapshot chunks. */
export interface IdWindow {
  readonly size: number;
  has(id: string): boolean;
  add(id: string): void;
  snapshot(): Buffer[];
  restore(chunks: readonly Buffer[]): void;
}

function noop(): void {}

/** Ids per snapshot chunk. */
const CHUNK_IDS = 50_000;

/** Remembers the last N batch ids so a resent batch is acknowledged without being applied twice. */
export class RecentIds implements IdWindow {
  private readonly ids = new Set<string>();
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.ids.size;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Records an id; the oldest is forgotten once the window is full. */
  add(id: string): void {
    if (this.capacity === 0) return;
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
  }

  /** The ids oldest first, as JSON arrays. */
  snapshot(): Buffer[] {
    const chunks: Buffer[] = [];
    let part: string[] = [];
    for (const id of this.ids) {
      part.push(id);
      if (part.length >= CHUNK_IDS) {
        chunks.push(Buffer.from(JSON.stringify(part)));
        part = [];
      }
    }
    if (part.length > 0) chunks.push(Buffer.from(JSON.stringify(part)));
    return chunks;
  }

  restore(chunks: readonly Buffer[]): void {
    for (const c of chunks) for (const id of JSON.parse(c.toString('utf8')) as string[]) this.add(id);
  }
}

/** What the trace and log ingest need for replays: a lookup, and recording accepted ids. */
export interface ReplayIds {
  has(id: string): boolean;
  /** has() knows the ids as soon as this is called; resolves once they are journaled. */
  record(ids: readonly string[]): Promise<void>;
}

export interface DurableIdsContext {
  telemetry: Telemetry;
  log: Logger;
}

/**
 * An id window whose additions are journaled. The ingest calls record() after the sinks took a
 * batch and before it answers 2xx, so an acknowledged batch's ids survive a kill -9.
 */
export class DurableIds implements ReplayIds {
  readonly window: IdWindow;
  private readonly journal: Journal;
  private readonly logOnce: LogOnce;

  private constructor(window: IdWindow, journal: Journal, log: Logger) {
    this.window = window;
    this.journal = journal;
    this.logOnce = new LogOnce(log);
  }

  /** Restores the window from `options.dir` before returning. */
  static async open(window: IdWindow, options: JournalOptions, ctx: DurableIdsContext): Promise<DurableIds> {
    const journal = await Journal.open(
      options,
      {
        restore: (chunks) => window.restore(chunks),
        replay: (record) => {
          for (const id of JSON.parse(record.toString('utf8')) as string[]) window.add(id);
        },
        snapshot: () => window.snapshot(),
      },
      ctx,
    );
    return new DurableIds(window, journal, ctx.log);
  }

  has(id: string): boolean {
    return this.window.has(id);
  }

  /**
   * Adds the ids at once (a copy of the batch arriving meanwhile is a duplicate) and resolves
   * once they are journaled. If the journal cannot take them they stay in memory (the batch is
   * delivered; only a crash before the next checkpoint forgets them) and the failure is logged.
   * A checkpoint taken before the record is written already holds the ids; replaying the record
   * adds them again, which changes nothing.
   */
  async record(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    for (const id of ids) this.window.add(id);
    try {
      await this.journal.append(Buffer.from(JSON.stringify(ids)), noop);
    } catch (err) {
      this.logOnce.warn('journal', { journal: this.journal.name, err: errorMessage(err) }, 'ids could not be journaled; they are kept in memory and written with the next checkpoint');
    }
  }

  /** Writes a last snapshot (on a graceful stop) and closes the journal. */
  close(options: { checkpoint?: boolean } = {}): Promise<void> {
    return this.journal.close(options);
  }
}

/**
 * Event ids accepted recently, bounded by `capacity` ids. Agent ids (a file id and an offset)
 * are kept per file as sorted offsets — 8 bytes each, and a replay is found by binary search;
 * other ids are kept as they are. The files touched longest ago are forgotten first.
 */
export class SeenEvents implements IdWindow {
  private readonly capacity: number;
  private readonly files = new Map<string, Offsets>();
  private readonly other = new Set<string>();
  private total = 0;
  /**
   * The file key looked up last and its offsets (undefined: not held), so the ids of a batch,
   * nearly all of one file, skip the slice and the map lookup; '' when not known.
   */
  private lastKey = '';
  private lastFile: Offsets | undefined = undefined;
  /** The file touched most recently (last in `files`), which add() need not move. */
  private newest: Offsets | undefined = undefined;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.total;
  }

  has(id: string): boolean {
    if (this.capacity === 0) return false;
    const offset = this.locate(id);
    if (offset < 0) return this.other.has(id);
    const f = this.lastFile;
    return f !== undefined && f.has(offset);
  }

  add(id: string): void {
    if (this.capacity === 0) return;
    const offset = this.locate(id);
    if (offset < 0) {
      if (this.other.has(id)) return;
      this.other.add(id);
      this.total++;
    } else {
      let f = this.lastFile;
      if (f === undefined) {
        f = new Offsets();
        this.files.set(this.lastKey, f);
        this.lastFile = f;
      } else if (f !== this.newest) {
        this.files.delete(this.lastKey);
        this.files.set(this.lastKey, f); // most recently touched last
      }
      this.newest = f;
      if (f.add(offset)) this.total++;
    }
    while (this.total > this.capacity) this.evict();
  }

  /**
   * The offset of an agent id, with its file's key in lastKey and its offsets in lastFile; -1
   * when `id` is not an agent id (lastKey and lastFile are then left as they were).
   */
  private locate(id: string): number {
    if (this.lastKey !== '' && id.startsWith(this.lastKey)) return logEventOffset(id, true);
    const offset = logEventOffset(id);
    if (offset >= 0) {
      this.lastKey = id.slice(0, LOG_EVENT_FILE_CHARS);
      this.lastFile = this.files.get(this.lastKey);
    }
    return offset;
  }

  /**
   * Snapshot chunks, least recently touched first: per file "F" + its 32-character key + the
   * offsets as f64 LE, oldest first; other ids as "O" + a JSON array.
   */
  snapshot(): Buffer[] {
    const chunks: Buffer[] = [];
    for (const [key, f] of this.files) {
      const values = f.oldestFirst();
      const buf = Buffer.allocUnsafe(33 + values.length * 8);
      buf.write('F', 0, 'latin1');
      buf.write(key, 1, 'latin1');
      for (let i = 0; i < values.length; i++) buf.writeDoubleLE(values[i], 33 + i * 8);
      chunks.push(buf);
    }
    if (this.other.size > 0) chunks.push(Buffer.from(`O${JSON.stringify([...this.other])}`));
    return chunks;
  }

  restore(chunks: readonly Buffer[]): void {
    if (this.capacity === 0) return;
    for (const c of chunks) {
      if (c[0] === 0x4f /* O */) {
        for (const id of JSON.parse(c.subarray(1).toString('utf8')) as string[]) this.add(id);
        continue;
      }
      if (c[0] !== 0x46 /* F */ || c.length < 33 || (c.length - 33) % 8 !== 0) continue;
      const key = c.toString('latin1', 1, 33);
      let f = this.files.get(key);
      if (f === undefined) f = new Offsets();
      else this.files.delete(key);
      this.files.set(key, f);
      for (let p = 33; p < c.length; p += 8) if (f.add(c.readDoubleLE(p))) this.total++;
      // the map changed behind add()'s memory of the last file
      this.lastKey = '';
      this.lastFile = this.newest = undefined;
    }
    while (this.total > this.capacity) this.evict();
  }

  private evict(): void {
    const oldestFile = this.files.entries().next();
    const otherOldest = this.other.values().next();
    if (!otherOldest.done && (oldestFile.done || this.other.size * 2 > this.total)) {
      this.other.delete(otherOldest.value);
      this.total--;
      return;
    }
    if (oldestFile.done) return;
    const [key, f] = oldestFile.value;
    // Drop the file's older half (at least one): a replay is of its latest events.
    const drop = Math.max(1, Math.min(f.length, this.total - this.capacity, Math.ceil(f.length / 2)));
    f.dropOldest(drop);
    this.total -= drop;
    if (f.length === 0) {
      this.files.delete(key);
      if (f === this.lastFile) this.lastKey = '';
      if (f === this.newest) this.newest = undefined;
    }
  }
}

/** A growing sorted list of offsets; appends in order are the common case. */
class Offsets {
  private values = new Float64Array(16);
  private start = 0;
  length = 0;

  has(v: number): boolean {
    const a = this.values;
    let lo = this.start;
    let hi = this.start + this.length - 1;
    // a fresh event is past every offset held: the common case needs no search
    if (hi < lo || v > a[hi] || v < a[lo]) return false;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid] === v) return true;
      if (a[mid] < v) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }

  /** False when already there. */
  add(v: number): boolean {
    const end = this.start + this.length;
    if (end === this.values.length) this.grow();
    const a = this.values;
    const last = this.start + this.length;
    if (this.length === 0 || a[last - 1] < v) {
      a[last] = v;
      this.length++;
      return true;
    }
    if (this.has(v)) return false;
    let i = last;
    while (i > this.start && a[i - 1] > v) {
      a[i] = a[i - 1];
      i--;
    }
    a[i] = v;
    this.length++;
    return true;
  }

  oldestFirst(): Float64Array {
    return this.values.subarray(this.start, this.start + this.length);
  }

  dropOldest(n: number): void {
    this.start += n;
    this.length -= n;
  }

  private grow(): void {
    const next = new Float64Array(Math.max(16, this.length * 2));
    next.set(this.values.subarray(this.start, this.start + this.length));
    this.values = next;
    this.start = 0;
  }
}
