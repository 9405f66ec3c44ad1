/**
 * Acknowledged read positions, kept in one JSON file in the agent's data directory.
 *
 * An entry's `offset` only moves when the consumer acknowledges records (`AckTrack`), so after
 * a crash reading resumes at the first byte nobody confirmed: at-least-once, with replays
 * recognisable by their event ids. The file is replaced atomically (write a temporary file,
 * fsync it, rename it over the old one, fsync the directory), so a crash leaves either the old
 * or the new checkpoint, never a torn one.
 */
import { open, readFile, rename, mkdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../../shared/log.ts';
import { LogOnce } from '../../../shared/log.ts';
import { errorMessage } from '../../../shared/errors.ts';
import { inodeKey, type Fingerprint } from './identity.ts';
import type { TailMetrics } from './metrics.ts';

export const CHECKPOINT_FILE = 'tail-checkpoints.json';
const FORMAT_VERSION = 1;

export interface CheckpointEntry {
  dev: string;
  ino: string;
  birthtimeMs: number;
  /** Set once the first record of the file was emitted. */
  fileId: string | undefined;
  /** Truncations seen on this inode; part of the file id. */
  generation: number;
  fp: Fingerprint;
  /** First byte not acknowledged. */
  offset: number;
  /** Where the file was last seen. */
  path: string;
  /** When discovery last saw the file (Unix ms). */
  seenAt: number;
  /** Size at the last look, for the lag metric. */
  size: number;
  /** Index of the input that matched the file: how a copy or rotation found elsewhere is framed. */
  input?: number;
  /** When this content (this generation) was first seen (Unix ms): rotations made later are of it or of later contents. */
  since?: number;
  /**
   * A copy read in place of a truncated file holds only this many bytes: what the original
   * handed out past it (read before the truncation) commits the copy up to here, not beyond.
   */
  end?: number;
}

export class CheckpointStore {
  readonly file: string;
  private readonly maxEntries: number;
  private readonly forgetAfterMs: number;
  private readonly metrics: TailMetrics;
  private readonly log: Logger;
  private readonly once: LogOnce;
  private readonly entries = new Map<string, CheckpointEntry>();
  /** The last write started or queued; `queued` is one that has not taken its snapshot yet. */
  private chain: Promise<boolean> = Promise.resolve(true);
  private queued: Promise<boolean> | undefined;

  constructor(dataDir: string, limits: { maxEntries: number; forgetAfterMs: number }, metrics: TailMetrics, log: Logger) {
    this.file = path.join(dataDir, CHECKPOINT_FILE);
    this.maxEntries = limits.maxEntries;
    this.forgetAfterMs = limits.forgetAfterMs;
    this.metrics = metrics;
    this.log = log;
    this.once = new LogOnce(log);
    metrics.checkpointEntries.set(0);
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Reads the checkpoint file. Returns false when there was none (a first start). An
   * unreadable file is moved aside (`.corrupt`), logged and counted, and counts as present:
   * the agent ran here before, so files without an entry are not "existing at first start".
   */
  async load(): Promise<boolean> {
    this.entries.clear();
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      this.metrics.checkpointErrors.inc({ op: 'read' });
      this.log.error({ file: this.file, err: errorMessage(err) }, 'cannot read the tail checkpoint; files are read from their start and replays are deduplicated by event id');
      return true;
    }
    try {
      const doc = JSON.parse(text) as { version?: unknown; files?: unknown };
      if (doc.version !== FORMAT_VERSION || !Array.isArray(doc.files)) throw new Error(`unknown checkpoint format (version ${String(doc.version)})`);
      for (const raw of doc.files as unknown[]) {
        const e = parseEntry(raw);
        if (e !== undefined && this.entries.size < this.maxEntries) this.entries.set(inodeKey(e), e);
      }
    } catch (err) {
      this.metrics.checkpointErrors.inc({ op: 'read' });
      const aside = `${this.file}.corrupt`;
      await rename(this.file, aside).catch(() => undefined);
      this.log.error({ file: this.file, movedTo: aside, err: errorMessage(err) }, 'the tail checkpoint is damaged; files are read from their start and replays are deduplicated by event id');
    }
    this.metrics.checkpointEntries.set(this.entries.size);
    return true;
  }

  get(key: string): CheckpointEntry | undefined {
    return this.entries.get(key);
  }

  /**
   * Adds or replaces an entry. When the store is full the entry seen longest ago that
   * `inUse` does not protect is forgotten (and counted); false when nothing could make room.
   */
  set(entry: CheckpointEntry, inUse: (e: CheckpointEntry) => boolean): boolean {
    const key = inodeKey(entry);
    if (!this.entries.has(key) && this.entries.size >= this.maxEntries) {
      let oldest: string | undefined;
      let oldestAt = Infinity;
      for (const [k, e] of this.entries) {
        if (e.seenAt < oldestAt && !inUse(e)) {
          oldest = k;
          oldestAt = e.seenAt;
        }
      }
      if (oldest === undefined) return false;
      this.entries.delete(oldest);
      this.metrics.checkpointForgotten.inc({ reason: 'full' });
    }
    this.entries.set(key, entry);
    this.metrics.checkpointEntries.set(this.entries.size);
    return true;
  }

  delete(key: string): void {
    this.entries.delete(key);
    this.metrics.checkpointEntries.set(this.entries.size);
  }

  values(): IterableIterator<CheckpointEntry> {
    return this.entries.values();
  }

  /** Forgets entries of files not seen for `forgetAfter` that `inUse` does not protect. */
  forgetExpired(now: number, inUse: (e: CheckpointEntry) => boolean): void {
    let forgotten = 0;
    for (const [k, e] of this.entries) {
      if (now - e.seenAt > this.forgetAfterMs && !inUse(e)) {
        this.entries.delete(k);
        forgotten++;
      }
    }
    if (forgotten > 0) {
      this.metrics.checkpointForgotten.inc({ reason: 'expired' }, forgotten);
      this.metrics.checkpointEntries.set(this.entries.size);
    }
  }

  /**
   * Writes the entries to disk atomically. Writes never overlap, and what is on disk once the
   * returned promise settles includes every change made before the call. Resolves false
   * (after logging and counting) when the write failed; the next call tries again.
   */
  write(): Promise<boolean> {
    if (this.queued !== undefined) return this.queued;
    const next = this.chain.then(() => {
      this.queued = undefined;
      return this.writeNow();
    });
    this.queued = next;
    this.chain = next;
    return next;
  }

  private async writeNow(): Promise<boolean> {
    const body = JSON.stringify({ version: FORMAT_VERSION, files: [...this.entries.values()] });
    const dir = path.dirname(this.file);
    const tmp = `${this.file}.tmp`;
    try {
      await mkdir(dir, { recursive: true });
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(body, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
      await syncDir(dir);
      this.metrics.checkpointWrites.inc();
      return true;
    } catch (err) {
      this.metrics.checkpointErrors.inc({ op: 'write' });
      this.once.warn('checkpoint-write', { file: this.file, err: errorMessage(err), code: (err as NodeJS.ErrnoException).code }, 'cannot write the tail checkpoint; will retry, and a restart before it succeeds replays lines');
      await unlink(tmp).catch(() => undefined);
      return false;
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    // Some filesystems cannot fsync a directory; the rename itself has happened.
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL' && (err as NodeJS.ErrnoException).code !== 'EISDIR') throw err;
  } finally {
    await fh.close();
  }
}

function parseEntry(raw: unknown): CheckpointEntry | undefined {
  if (raw === null || typeof raw !== 'object') return undefined;
  const r = raw as Record<string, unknown>;
  const fp = r.fp as Record<string, unknown> | undefined;
  if (
    typeof r.dev !== 'string' ||
    typeof r.ino !== 'string' ||
    typeof r.offset !== 'number' ||
    !Number.isSafeInteger(r.offset) ||
    r.offset < 0 ||
    typeof r.path !== 'string' ||
    fp === null ||
    typeof fp !== 'object' ||
    typeof fp.len !== 'number' ||
    typeof fp.hash !== 'string'
  ) {
    return undefined;
  }
  return {
    dev: r.dev,
    ino: r.ino,
    birthtimeMs: typeof r.birthtimeMs === 'number' ? r.birthtimeMs : 0,
    fileId: typeof r.fileId === 'string' ? r.fileId : undefined,
    generation: typeof r.generation === 'number' ? r.generation : 0,
    fp: { len: fp.len, hash: fp.hash },
    offset: r.offset,
    path: r.path,
    seenAt: typeof r.seenAt === 'number' ? r.seenAt : Date.now(),
    size: typeof r.size === 'number' ? r.size : r.offset,
    input: typeof r.input === 'number' && Number.isSafeInteger(r.input) && r.input >= 0 ? r.input : undefined,
    since: typeof r.since === 'number' ? r.since : undefined,
    end: typeof r.end === 'number' ? r.end : undefined,
  };
}

/** One batch's claim on a file: acknowledged, it lets the file's offset move to `end`. */
export interface AckMark {
  end: number;
  acked: boolean;
}

/**
 * Commits a file's offset as its batches are acknowledged. Batches may be acknowledged in any
 * order; the offset only moves over the contiguous run of acknowledged batches from the
 * oldest, so an unacknowledged batch keeps everything after it uncommitted.
 */
export class AckTrack {
  readonly entry: CheckpointEntry;
  private marks: AckMark[] = [];
  private head = 0;

  constructor(entry: CheckpointEntry) {
    this.entry = entry;
  }

  /** Marks handed out and not yet committed. */
  get outstanding(): number {
    return this.marks.length - this.head;
  }

  /** The offset this file will have once everything handed out is acknowledged. */
  get deliveredEnd(): number {
    return this.outstanding > 0 ? this.marks[this.marks.length - 1].end : this.entry.offset;
  }

  mark(end: number): AckMark {
    const m: AckMark = { end, acked: false };
    this.marks.push(m);
    return m;
  }

  /** Commits the acknowledged prefix; true when the offset moved. */
  advance(): boolean {
    const before = this.entry.offset;
    while (this.head < this.marks.length && this.marks[this.head].acked) {
      const end = Math.min(this.marks[this.head].end, this.entry.end ?? Infinity);
      if (end > this.entry.offset) this.entry.offset = end;
      this.head++;
    }
    if (this.head > 64 && this.head * 2 > this.marks.length) {
      this.marks = this.marks.slice(this.head);
      this.head = 0;
    }
    return this.entry.offset !== before;
  }
}
