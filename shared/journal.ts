/**
 * Durable in-memory state: a snapshot plus a write-ahead log (WAL) of the changes made since.
 * The collector keeps its counters and the batch ids it has seen this way, so a kill -9 loses
 * nothing it acknowledged and a replayed batch is still recognised after a restart.
 *
 * Layout of `<dir>`:
 *   `<20-digit n>.wal`  changes, one spool frame each (shared/spool.ts framing: magic, length, CRC);
 *   `snapshot`          the state when WAL file `walStart` began: a header frame (JSON
 *                       {version, walStart, chunks}) then the state's chunks, one frame each;
 *   `snapshot.tmp`      a snapshot being written (deleted at open: its checkpoint never finished).
 *
 * Changes go through append(record, apply): the record is written (and synced under the 'batch'
 * policy), then `apply` runs, in commit order, before the promise resolves. Appends that arrive
 * while a write is under way wait and are written and synced together with the next one (group
 * commit). Because `apply` runs inside the commit loop, the moment between two groups is a clean
 * cut: every record written so far is applied and nothing else is. A checkpoint takes the
 * snapshot there (synchronously, through the handler), starts a new WAL file for the records
 * after it, writes the snapshot (tmp, fsync, rename, directory fsync) while appends go on, and
 * only then deletes the WAL files the snapshot covers. Whatever the moment of a crash:
 *   - mid-append: the last frame is torn or missing; it was never acknowledged. Open skips a
 *     damaged stretch (counted in plumb_journal_corrupt_total) and reads on;
 *   - mid-checkpoint before the rename: the previous snapshot and every WAL file since are intact;
 *   - after the rename: the new snapshot names its first WAL file; older ones are leftovers.
 * Open restores the snapshot, replays the WAL files from `walStart` on, and checkpoints at once
 * when it replayed anything, so the next start reads a snapshot and an empty log.
 */
import { open, mkdir, readdir, readFile, rename, unlink, stat, type FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PlumbError, errorMessage, type ErrorCode } from './errors.ts';
import { LogOnce, type Logger } from './log.ts';
import { errCode, frameHeader, scanFrames, syncDir, writeFully, SPOOL_FRAME_BYTES } from './spool.ts';
import type { Telemetry } from './telemetry.ts';
import type { Counter, Gauge, Histogram } from 'prom-client';

/** The journal directory cannot be created or read. */
export const PLUMB_ERR_JOURNAL_DIR = 'PLUMB_ERR_JOURNAL_DIR' satisfies ErrorCode;
/** A WAL write or sync failed: the record was not applied. */
export const PLUMB_ERR_JOURNAL_IO = 'PLUMB_ERR_JOURNAL_IO' satisfies ErrorCode;

export type JournalFsync = 'batch' | 'interval' | 'never';

export interface JournalOptions {
  dir: string;
  /** Label value of the journal's metrics, e.g. "metrics". */
  name: string;
  /** 'batch': each group of appends is synced before it is applied (survives power loss); 'interval': synced every fsyncIntervalMs (survives a crash of the process); 'never'. */
  fsync: JournalFsync;
  fsyncIntervalMs?: number;
  /** A checkpoint is taken once the WAL files hold this many bytes… */
  checkpointBytes: number;
  /** …or this long after the last one, when anything was appended since. */
  checkpointIntervalMs: number;
  /** Appends are refused (PLUMB_ERR_JOURNAL_IO) while the WAL files hold this much, i.e. checkpoints keep failing. Default 4 × checkpointBytes. */
  maxWalBytes?: number;
}

/** What the journal keeps durable: the owner of the in-memory state. */
export interface JournalHandler {
  /** At open, with the chunks of the latest snapshot (none when there is none yet). */
  restore(chunks: Buffer[]): void;
  /** At open, each record appended after that snapshot, in order. */
  replay(record: Buffer): void;
  /** The whole state now, as chunks of any size; called between commit groups, so it must not yield. */
  snapshot(): Buffer[];
}

export interface JournalContext {
  telemetry: Telemetry;
  log: Logger;
}

interface Pending {
  record: Buffer;
  apply: () => unknown;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
}

const WAL_NAME = /^(\d{20})\.wal$/;
const SNAPSHOT = 'snapshot';
const SNAPSHOT_TMP = 'snapshot.tmp';
const SNAPSHOT_VERSION = 1;

function walName(id: number): string {
  return `${String(id).padStart(20, '0')}.wal`;
}

interface SnapshotHeader {
  version: number;
  walStart: number;
  chunks: number;
}

function parseHeader(buf: Buffer): SnapshotHeader | null {
  try {
    const h = JSON.parse(buf.toString('utf8')) as Partial<SnapshotHeader>;
    return h.version === SNAPSHOT_VERSION && Number.isSafeInteger(h.walStart) && Number.isSafeInteger(h.chunks) ? (h as SnapshotHeader) : null;
  } catch {
    return null;
  }
}

export interface JournalStats {
  /** Bytes of WAL files on disk. */
  walBytes: number;
  snapshotBytes: number;
  /** Records replayed at open. */
  replayed: number;
  /** Damaged stretches skipped at open (WAL and snapshot). */
  corrupt: number;
  checkpoints: number;
  /** Writes of a group of appends (each synced once under 'batch'). */
  commits: number;
}

export class Journal {
  readonly name: string;
  readonly dir: string;
  private readonly options: JournalOptions;
  private readonly handler: JournalHandler;
  private readonly log: Logger;
  private readonly logOnce: LogOnce;
  private readonly maxWalBytes: number;

  private pending: Pending[] = [];
  private running: Promise<void> | null = null;
  private walId = 0;
  private walFh: FileHandle | null = null;
  private walEnd = 0;
  /** WAL files on disk: id → bytes. */
  private readonly walFiles = new Map<number, number>();
  private dirty = false;
  private checkpointWanted = false;
  private checkpointWaiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private snapshotWrite: Promise<void> | null = null;
  private appendedSinceCut = 0;
  private timer: NodeJS.Timeout | undefined;
  private syncTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly stats: JournalStats = { walBytes: 0, snapshotBytes: 0, replayed: 0, corrupt: 0, checkpoints: 0, commits: 0 };

  private readonly walBytesGauge: Gauge;
  private readonly snapshotBytesGauge: Gauge;
  private readonly replayedGauge: Gauge;
  private readonly corruptCounter: Counter<'journal' | 'reason'>;
  private readonly checkpointSeconds: Histogram;
  private readonly checkpointsOk: Counter;
  private readonly checkpointsFailed: Counter;

  private constructor(options: JournalOptions, dir: string, handler: JournalHandler, ctx: JournalContext) {
    this.name = options.name;
    this.dir = dir;
    this.options = options;
    this.handler = handler;
    this.maxWalBytes = options.maxWalBytes ?? options.checkpointBytes * 4;
    this.log = ctx.log.child({ component: 'journal', journal: options.name });
    this.logOnce = new LogOnce(this.log);
    const t = ctx.telemetry;
    const j = { journal: options.name };
    const bytes = t.gauge('plumb_journal_bytes', 'Bytes of a state journal on disk, by file (wal, snapshot).', ['journal', 'file']);
    this.walBytesGauge = bytes.labels({ ...j, file: 'wal' }) as unknown as Gauge;
    this.snapshotBytesGauge = bytes.labels({ ...j, file: 'snapshot' }) as unknown as Gauge;
    this.replayedGauge = t.gauge('plumb_journal_replayed_records', 'WAL records replayed into the state when the journal was last opened.', ['journal']).labels(j) as unknown as Gauge;
    this.corruptCounter = t.counter('plumb_journal_corrupt_total', 'Damaged stretches of journal files skipped at open, by reason (torn: an unfinished last record; checksum; length; snapshot: in the snapshot file).', ['journal', 'reason']);
    this.corruptCounter.inc({ ...j, reason: 'torn' }, 0);
    this.checkpointSeconds = t.histogram('plumb_journal_checkpoint_duration_seconds', 'Time to take a snapshot of the state and write it to disk.', ['journal'], [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30]).labels(j) as unknown as Histogram;
    const checkpoints = t.counter('plumb_journal_checkpoints_total', 'Checkpoints, by outcome (ok, failed).', ['journal', 'outcome']);
    this.checkpointsOk = checkpoints.labels({ ...j, outcome: 'ok' }) as unknown as Counter;
    this.checkpointsFailed = checkpoints.labels({ ...j, outcome: 'failed' }) as unknown as Counter;
    this.checkpointsFailed.inc(0);
    this.publish();
  }

  private publish(): void {
    this.walBytesGauge.set(this.stats.walBytes);
    this.snapshotBytesGauge.set(this.stats.snapshotBytes);
    this.replayedGauge.set(this.stats.replayed);
  }

  /** Opens `dir` (creating it), restores the snapshot and replays the WAL into `handler`. */
  static async open(options: JournalOptions, handler: JournalHandler, ctx: JournalContext): Promise<Journal> {
    const dir = resolve(options.dir);
    try {
      await mkdir(dir, { recursive: true });
      if (!(await stat(dir)).isDirectory()) throw new Error('not a directory');
    } catch (err) {
      throw new PlumbError(PLUMB_ERR_JOURNAL_DIR, `journal "${options.name}": ${dir} cannot be created (${errCode(err)}); make it a directory writable by the user plumb runs as, or set collector.dataDir`, { cause: err });
    }
    const j = new Journal(options, dir, handler, ctx);
    await j.load();
    j.startTimers();
    return j;
  }

  get statistics(): Readonly<JournalStats> {
    return this.stats;
  }

  /**
   * Makes `record` durable (per the fsync policy), then runs `apply` and resolves with its
   * result. Records are applied in the order they are written; a failed write rejects with
   * PLUMB_ERR_JOURNAL_IO and `apply` does not run.
   */
  append<T>(record: Buffer, apply: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new PlumbError(PLUMB_ERR_JOURNAL_IO, `journal "${this.name}" is closed`));
    if (this.stats.walBytes + record.length > this.maxWalBytes) {
      this.logOnce.warn('full', { journal: this.name, walBytes: this.stats.walBytes, maxWalBytes: this.maxWalBytes }, 'journal: the WAL is at its limit because checkpoints fail; appends are refused');
      return Promise.reject(new PlumbError(PLUMB_ERR_JOURNAL_IO, `journal "${this.name}": the WAL holds ${this.stats.walBytes} bytes and checkpoints are failing; see the log`));
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ record, apply, resolve: resolve as (v: unknown) => void, reject });
      this.kick();
    });
  }

  /** Takes a checkpoint at the next point between two groups and resolves once it is on disk. */
  checkpoint(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.checkpointWaiters.push({ resolve, reject });
      this.checkpointWanted = true;
      this.kick();
    });
  }

  /** Stops taking appends, writes what is queued, checkpoints when asked, closes the WAL. */
  async close(options: { checkpoint?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    clearInterval(this.timer);
    clearInterval(this.syncTimer);
    if (options.checkpoint && (this.appendedSinceCut > 0 || this.pending.length > 0)) {
      await this.checkpoint().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'journal: the checkpoint at stop failed; the next start replays the WAL'));
    }
    this.closed = true;
    while (this.running) await this.running;
    await this.snapshotWrite;
    if (this.walFh) {
      if (this.options.fsync !== 'never') await this.walFh.datasync().catch(() => undefined);
      await this.walFh.close().catch(() => undefined);
      this.walFh = null;
    }
  }

  // ---- open ----

  private async load(): Promise<void> {
    await unlink(join(this.dir, SNAPSHOT_TMP)).then(
      () => this.log.info('journal: removed a snapshot whose checkpoint did not finish; the previous snapshot and the WAL are used'),
      () => undefined,
    );
    const walStart = await this.readSnapshot();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      throw new PlumbError(PLUMB_ERR_JOURNAL_DIR, `journal "${this.name}": ${this.dir} cannot be read (${errCode(err)})`, { cause: err });
    }
    const ids = names
      .map((n) => WAL_NAME.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    let replayed = 0;
    for (const id of ids) {
      const path = join(this.dir, walName(id));
      if (id < walStart) {
        // covered by the snapshot; left by a checkpoint that stopped before deleting it
        await unlink(path).catch(() => undefined);
        continue;
      }
      let buf: Buffer;
      try {
        buf = await readFile(path);
      } catch (err) {
        throw new PlumbError(PLUMB_ERR_JOURNAL_DIR, `journal "${this.name}": ${path} cannot be read (${errCode(err)})`, { cause: err });
      }
      const scan = scanFrames(buf);
      for (const p of scan.problems) this.corrupt(p.reason, { file: path, offset: p.offset, skippedBytes: p.bytes });
      for (const record of scan.payloads) {
        this.handler.replay(record);
        replayed++;
      }
      this.walFiles.set(id, buf.length);
    }
    this.stats.replayed = replayed;
    this.walId = Math.max(walStart - 1, ids.at(-1) ?? 0);
    this.recount();
    if (replayed > 0) this.log.info({ records: replayed, files: this.walFiles.size }, 'journal: replayed the WAL into the restored state');
    await this.openNextWal();
    // Fold what was replayed (and any damaged file) into a fresh snapshot now.
    if (this.walFiles.size > 1) {
      await this.checkpoint().catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'journal: the checkpoint after replay failed; the WAL is kept and replayed again next time'));
    }
  }

  /** Restores the snapshot; returns the first WAL file after it (0: replay every WAL file). */
  private async readSnapshot(): Promise<number> {
    const path = join(this.dir, SNAPSHOT);
    let buf: Buffer;
    try {
      buf = await readFile(path);
    } catch (err) {
      if (errCode(err) === 'ENOENT') {
        this.handler.restore([]);
        return 0;
      }
      throw new PlumbError(PLUMB_ERR_JOURNAL_DIR, `journal "${this.name}": ${path} cannot be read (${errCode(err)})`, { cause: err });
    }
    this.stats.snapshotBytes = buf.length;
    const scan = scanFrames(buf);
    for (const p of scan.problems) this.corrupt('snapshot', { file: path, offset: p.offset, skippedBytes: p.bytes });
    const header = scan.problems[0]?.offset !== 0 && scan.payloads.length > 0 ? parseHeader(scan.payloads[0]) : null;
    if (header === null) {
      this.log.error({ file: path }, 'journal: the snapshot has no readable header; starting from the WAL alone (state from before it is lost)');
      this.handler.restore([]);
      return 0;
    }
    const chunks = scan.payloads.slice(1);
    if (chunks.length !== header.chunks) this.log.error({ file: path, chunks: chunks.length, expected: header.chunks }, 'journal: the snapshot is damaged; restoring the chunks that are intact');
    this.handler.restore(chunks);
    return header.walStart;
  }

  private corrupt(reason: string, context: Record<string, unknown>): void {
    this.stats.corrupt++;
    this.corruptCounter.inc({ journal: this.name, reason });
    this.logOnce.warn(`corrupt_${reason}`, { journal: this.name, reason, ...context }, 'journal: skipped a damaged stretch (counted in plumb_journal_corrupt_total)');
  }

  private startTimers(): void {
    this.timer = setInterval(() => {
      if (this.appendedSinceCut > 0 && !this.snapshotWrite) {
        this.checkpointWanted = true;
        this.kick();
      }
    }, this.options.checkpointIntervalMs);
    this.timer.unref();
    if (this.options.fsync === 'interval') {
      this.syncTimer = setInterval(() => {
        if (!this.dirty || !this.walFh) return;
        this.dirty = false;
        this.walFh.datasync().catch((err: unknown) => this.logOnce.warn('sync', { journal: this.name, code: errCode(err) }, 'journal: sync failed'));
      }, this.options.fsyncIntervalMs ?? 1000);
      this.syncTimer.unref();
    }
  }

  // ---- the commit loop ----

  private kick(): void {
    if (this.running) return;
    this.running = this.run().finally(() => {
      this.running = null;
      // an append that arrived as the loop ended
      if (this.pending.length > 0 || (this.checkpointWanted && !this.snapshotWrite)) this.kick();
    });
  }

  private async run(): Promise<void> {
    for (;;) {
      if (this.checkpointWanted && !this.snapshotWrite) await this.cut();
      if (this.pending.length === 0) return;
      const group = this.pending;
      this.pending = [];
      await this.commit(group);
      if (this.stats.walBytes >= this.options.checkpointBytes && !this.snapshotWrite) this.checkpointWanted = true;
    }
  }

  private async commit(group: Pending[]): Promise<void> {
    const bufs: Buffer[] = [];
    let bytes = 0;
    for (const p of group) {
      bufs.push(frameHeader(p.record), p.record);
      bytes += SPOOL_FRAME_BYTES + p.record.length;
    }
    const fh = this.walFh;
    try {
      if (fh === null) throw new Error('no WAL file open');
      await writeFully(fh, bufs, this.walEnd);
      if (this.options.fsync === 'batch') await fh.datasync();
    } catch (err) {
      await this.undo(fh);
      const e = new PlumbError(PLUMB_ERR_JOURNAL_IO, `journal "${this.name}": writing ${join(this.dir, walName(this.walId))} failed (${errCode(err)}); check the disk and the permissions of ${this.dir}`, { cause: err });
      this.logOnce.warn('write', { journal: this.name, code: errCode(err) }, 'journal: a write failed; the records were refused');
      for (const p of group) p.reject(e);
      return;
    }
    this.walEnd += bytes;
    this.stats.commits++;
    this.walFiles.set(this.walId, this.walEnd);
    this.stats.walBytes += bytes;
    this.dirty = true;
    this.appendedSinceCut += group.length;
    this.publish();
    for (const p of group) {
      try {
        p.resolve(p.apply());
      } catch (err) {
        p.reject(err);
      }
    }
  }

  /** After a failed write: cut the file back to its last good end, or move on to a new file. */
  private async undo(fh: FileHandle | null): Promise<void> {
    if (fh !== null) {
      try {
        await fh.truncate(this.walEnd);
        return;
      } catch {
        await fh.close().catch(() => undefined);
      }
    }
    this.walFh = null;
    await this.openNextWal().catch(() => undefined);
  }

  private async openNextWal(): Promise<void> {
    const id = this.walId + 1;
    const path = join(this.dir, walName(id));
    try {
      const fh = await open(path, 'w');
      if (this.options.fsync === 'batch') await syncDir(this.dir);
      const old = this.walFh;
      this.walFh = fh;
      this.walId = id;
      this.walEnd = 0;
      this.walFiles.set(id, 0);
      if (old) {
        if (this.options.fsync !== 'never') await old.datasync().catch(() => undefined);
        await old.close().catch(() => undefined);
      }
    } catch (err) {
      throw new PlumbError(PLUMB_ERR_JOURNAL_DIR, `journal "${this.name}": ${path} cannot be created (${errCode(err)}); check the disk and the permissions of ${this.dir}`, { cause: err });
    }
  }

  /**
   * Between two groups: the state holds exactly the records written so far. Snapshot it, move
   * the WAL to a new file, and write the snapshot in the background while appends go on.
   */
  private async cut(): Promise<void> {
    this.checkpointWanted = false;
    const waiters = this.checkpointWaiters;
    this.checkpointWaiters = [];
    const started = performance.now();
    let chunks: Buffer[];
    try {
      chunks = this.handler.snapshot();
      await this.openNextWal();
    } catch (err) {
      this.checkpointFailed(err, waiters);
      return;
    }
    this.appendedSinceCut = 0;
    const walStart = this.walId;
    this.snapshotWrite = this.writeSnapshot(chunks, walStart)
      .then(
        () => {
          this.stats.checkpoints++;
          this.checkpointsOk.inc();
          this.checkpointSeconds.observe((performance.now() - started) / 1000);
          for (const w of waiters) w.resolve();
        },
        (err: unknown) => this.checkpointFailed(err, waiters),
      )
      .finally(() => {
        this.snapshotWrite = null;
        if (this.checkpointWanted && !this.closed) this.kick();
      });
  }

  private checkpointFailed(err: unknown, waiters: { reject: (err: unknown) => void }[]): void {
    this.checkpointsFailed.inc();
    this.logOnce.warn('checkpoint', { journal: this.name, err: errorMessage(err) }, 'journal: a checkpoint failed; the WAL keeps growing until one succeeds');
    for (const w of waiters) w.reject(err);
  }

  private async writeSnapshot(chunks: Buffer[], walStart: number): Promise<void> {
    const header = Buffer.from(JSON.stringify({ version: SNAPSHOT_VERSION, walStart, chunks: chunks.length }));
    const tmp = join(this.dir, SNAPSHOT_TMP);
    const fh = await open(tmp, 'w');
    let size = 0;
    try {
      // in slices, so a large state is not copied into one buffer
      let bufs: Buffer[] = [frameHeader(header), header];
      let sliceBytes = SPOOL_FRAME_BYTES + header.length;
      for (const c of chunks) {
        bufs.push(frameHeader(c), c);
        sliceBytes += SPOOL_FRAME_BYTES + c.length;
        if (sliceBytes >= 4 * 1024 * 1024) {
          await writeFully(fh, bufs, size);
          size += sliceBytes;
          bufs = [];
          sliceBytes = 0;
        }
      }
      if (bufs.length > 0) await writeFully(fh, bufs, size);
      size += sliceBytes;
      if (this.options.fsync !== 'never') await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.dir, SNAPSHOT));
    if (this.options.fsync !== 'never') await syncDir(this.dir);
    this.stats.snapshotBytes = size;
    // Only now are the WAL files before walStart no longer needed.
    for (const id of [...this.walFiles.keys()]) {
      if (id >= walStart) continue;
      await unlink(join(this.dir, walName(id))).catch((err: unknown) => {
        if (errCode(err) !== 'ENOENT') this.logOnce.warn('delete', { journal: this.name, code: errCode(err) }, 'journal: an old WAL file could not be deleted');
      });
      this.walFiles.delete(id);
    }
    this.recount();
  }

  private recount(): void {
    let total = 0;
    for (const b of this.walFiles.values()) total += b;
    this.stats.walBytes = total;
    this.publish();
  }
}
