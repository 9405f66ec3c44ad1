/**
 * Replay detection: windows of recently accepted batch or event ids, and `DurableIds`, which
 * keeps such a window in a journal (shared/journal.ts) so a restarted collector still knows them.
 */
import { Journal, type JournalOptions } from '../../shared/journal.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { errorMessage } from '../../shared/errors.ts';
import type { Telemetry } from '../../shared/telemetry.ts';

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
