/**
 * The file tailer: follows the files the inputs' globs match, through renames, truncations,
 * deletions and inode reuse, and hands their lines to a consumer in batches.
 *
 * One loop does everything that touches files (discovery, reads, closes), so no two steps race
 * on a descriptor. Each pass reads at most one chunk per file, so a busy file cannot starve a
 * quiet one. The loop awaits the consumer (`next`) before reading further and stops reading
 * while `maxUnackedBatches` batches wait for acknowledgement: a slow consumer slows the reads,
 * nothing piles up in memory. Offsets reach the checkpoint only through `ack`.
 *
 * Records still being assembled when `stop` is called are not handed out; they were never
 * acknowledged, so the next start reads them again.
 */
import { mkdir, open, readdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../../shared/log.ts';
import { LogOnce } from '../../../shared/log.ts';
import { PlumbError, errorMessage } from '../../../shared/errors.ts';
import { backoffDelay } from '../../../shared/retry.ts';
import type { Telemetry } from '../../../shared/telemetry.ts';
import { ConfigError } from '../../../shared/config.ts';
import { tailConfigErrors, type LogInput, type TailerOptions } from './config.ts';
import { CheckpointStore, type AckMark, type AckTrack, type CheckpointEntry } from './checkpoint.ts';
import { GzipSource, gzipStatedSize, type Source } from './compressed.ts';
import { Discovery, isCompressed, type Candidate } from './discovery.ts';
import { codecFor, lastLineEnd, UTF8 } from './encoding.ts';
import { TailedFile, type FileSettings, type ReadCounts, type RecordSink } from './file.ts';
import { compareFingerprint, fingerprintOf, hashBytes, inodeKey, readPrefix, type Inode } from './identity.ts';
import { TailMetrics } from './metrics.ts';
import type { TailBatch, TailConsumer, TailRecord } from './record.ts';
import { bornAgain, judgeOpen, judgeReopen, movedAwayKind } from './rotation.ts';
import { LagClock } from './lag.ts';
import type { FileStatus } from '../../../shared/status.ts';

/** One followed file as the status model shows it (how its events parsed is the pipeline's to add). */
export type TailedFileStatus = Omit<FileStatus, 'parsed' | 'failed'>;

export interface TailerConfig {
  inputs: readonly LogInput[];
  options: TailerOptions;
  /** The agent's data directory; the checkpoint file is kept there. */
  dataDir: string;
  /** Mixed into file ids so that two hosts' files never share event ids (the agent's host name). */
  idSeed?: string;
}

export interface TailerDeps {
  telemetry: Telemetry;
  log: Logger;
  /** Receives every batch; the tailer reads no further until it settles. A rejection is retried. */
  next: TailConsumer;
}

type Marks = [AckTrack, AckMark][];

/**
 * A file's identity whose unread bytes may be in another file: the copy copytruncate made
 * before truncating it, the `.gz` logrotate made of it, or the name it was renamed to outside
 * the globs. Whatever file holds them is read from `from` under this identity (same file id,
 * same offsets), so its lines get the event ids they would have had in the original.
 */
interface Lineage {
  entry: CheckpointEntry;
  /** The track batches already handed out commit through (a live truncation), else a new one. */
  track: AckTrack | undefined;
  /** First byte not yet handed out. */
  from: number;
  input: number;
  /** From a truncation: its copy is read even when it holds nothing new, so no glob reads it as a new file. */
  truncated: boolean;
}

/** A file closed while some of what it handed out was unacknowledged: reopened, it continues there. */
interface Parked {
  track: AckTrack;
  offset: number;
}

/** Files looked at when searching a directory for where a file's bytes went. */
const MAX_RELATED_FILES = 32;
/** Checkpointed files no glob matches any more, searched for per discovery pass. */
const LOST_SEARCHES_PER_PASS = 16;
const GZIP_SUFFIX = '.gz';
/** Identities of truncated files kept to recognise their copies. */
const MAX_RETIRED = 256;

const NOTHING: ReadCounts = Object.freeze({ bytes: 0, lines: 0, truncated: 0, malformed: 0 });
const DELIVERY_BACKOFF = { initialMs: 100, maxMs: 10_000 };

export class Tailer {
  private readonly options: TailerOptions;
  private readonly inputs: readonly LogInput[];
  private readonly dataDir: string;
  private readonly settings: FileSettings[];
  private readonly next: TailConsumer;
  private readonly log: Logger;
  private readonly once: LogOnce;
  private readonly metrics: TailMetrics;
  private readonly store: CheckpointStore;
  private readonly discovery: Discovery;
  private readonly readBuf: Buffer;
  /** A chunk read again, to tell whose bytes a read around a truncation returned. */
  private readonly verifyBuf: Buffer;
  private readonly prefixBuf: Buffer;
  private readonly tails = new Map<string, TailedFile>();
  /** Closed files whose handed-out bytes are not all acknowledged, by device:inode. */
  private readonly parked = new Map<string, Parked>();
  /** New files recognised as copies of a file still being followed, with their size then. */
  private readonly copies = new Map<string, number>();
  /**
   * Identities of truncated files whose copy was not found yet: looked for on each discovery
   * pass until `searchUntil`, and recognised in any new file that starts with their bytes.
   */
  private retired: { lineage: Lineage; searchUntil: number }[] = [];
  /** Since when a matching file has waited for a descriptor. */
  private readonly waitingSince = new Map<string, number>();
  /** Checkpointed files no glob matches that were searched for in this run. */
  private searched = new WeakSet<CheckpointEntry>();
  /**
   * Paths whose followed file was rotated away, or replaced before the file a pass saw there
   * could be opened, with the last write of that file: until a file is followed at the path
   * again, generations can be created there and rotated away unseen (see readSkippedGenerations).
   */
  private readonly vacated = new Map<string, { input: number; since: number }>();
  /**
   * Rotated files closed after rotateWait without growth, with their modification time then: a
   * writer that has not reopened yet (one starved of CPU) may still append to them, and the next
   * rotation compress them. Looked for on each pass until `until` (closeInactive after the close).
   */
  private readonly closedRotated = new Map<CheckpointEntry, { until: number; mtimeMs: number }>();

  // The batch being filled.
  private records: TailRecord[] = [];
  private bytes = 0;
  private readonly contributors = new Map<AckTrack, TailedFile>();
  private readonly sealed = new Map<AckTrack, number>();

  /**
   * Batches closed and not yet handed out. One chunk can complete many batches (64 KiB of
   * short lines), so this holds at most one chunk's worth; reading waits until it is empty.
   */
  private ready: { batch: TailBatch; marks: Marks }[] = [];
  private readonly unacked = new Map<number, Marks>();
  private seq = 0;
  private running = false;
  private runId = 0;
  private loopDone: Promise<void> | undefined;
  private initialPass = true;
  private firstStart = false;
  /** Paths the last discovery pass matched: a new file at one of them replaced a file (a rotation). */
  private lastPaths = new Set<string>();
  private dirty = false;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private wakeLoop: (() => void) | undefined;
  /** The loop is waiting on the consumer, the one wait that may outlast stop's deadline. */
  private delivering = false;
  private ackWaiters: (() => void)[] = [];
  /** For the status model: when each file's unacknowledged bytes appeared, rotations by path. */
  private readonly lagClocks = new WeakMap<CheckpointEntry, LagClock>();
  private readonly rotationsAt = new Map<string, number>();
  private lastPassAt = 0;

  constructor(config: TailerConfig, deps: TailerDeps) {
    const errors = tailConfigErrors(config.inputs, config.options);
    if (errors.length > 0) throw new ConfigError('tailer', errors);
    this.options = config.options;
    this.inputs = config.inputs;
    this.dataDir = config.dataDir;
    this.next = deps.next;
    this.log = deps.log;
    this.once = new LogOnce(deps.log);
    this.metrics = new TailMetrics(deps.telemetry);
    const idSeed = config.idSeed ?? '';
    this.settings = config.inputs.map((input, i) => ({
      input: i,
      inputConfig: input,
      multilineStart: input.multiline?.start !== undefined ? new RegExp(input.multiline.start) : undefined,
      multilineCondition: input.multiline?.condition !== undefined ? new RegExp(input.multiline.condition) : undefined,
      unterminatedTimeoutMs: config.options.unterminatedTimeout,
      maxLineBytes: config.options.maxLineBytes,
      fingerprintBytes: config.options.fingerprintBytes,
      partialTimeoutMs: config.options.partialTimeout,
      idSeed,
    }));
    this.store = new CheckpointStore(config.dataDir, { maxEntries: config.options.maxFiles, forgetAfterMs: config.options.forgetAfter }, this.metrics, deps.log);
    this.discovery = new Discovery(config.inputs, config.options.maxFiles, deps.log);
    this.readBuf = Buffer.allocUnsafe(config.options.readChunkBytes);
    this.verifyBuf = Buffer.allocUnsafe(Math.max(config.options.readChunkBytes, config.options.fingerprintBytes));
    this.prefixBuf = Buffer.allocUnsafe(config.options.fingerprintBytes);
    this.metrics.lagBytes.set(0);
    this.metrics.unackedBatches.set(0);
    this.metrics.openFiles.set(0);
    this.metrics.filesWatched.set(0);
  }

  /**
   * The files followed now (or seen by the last discovery pass), with their acknowledged offset
   * and size as of that pass, for the status model.
   */
  files(now = Date.now()): TailedFileStatus[] {
    const out: TailedFileStatus[] = [];
    const inUse = (e: CheckpointEntry): boolean => this.tails.get(inodeKey(e))?.entry === e;
    for (const e of this.store.values()) {
      if (e.seenAt !== this.lastPassAt && !inUse(e)) continue;
      const size = Math.max(e.size, e.offset);
      out.push({
        path: e.path,
        id: e.fileId ?? inodeKey(e),
        offset: e.offset,
        size,
        lagBytes: size - e.offset,
        lagSeconds: Math.round((this.lagClocks.get(e)?.seconds(e.offset, size, now) ?? 0) * 10) / 10,
        rotations: this.rotationsAt.get(e.path) ?? 0,
      });
    }
    return out;
  }

  /** Counts a rotation, in total by kind and for the path it happened at. */
  private rotation(kind: string, path: string): void {
    this.metrics.rotations.inc({ kind });
    this.rotationsAt.delete(path);
    this.rotationsAt.set(path, (this.rotationsAt.get(path) ?? 0) + 1);
    // bounded like the checkpoint: the least recently rotated path goes first
    if (this.rotationsAt.size > this.options.maxFiles) this.rotationsAt.delete(this.rotationsAt.keys().next().value as string);
  }

  /** Batches handed out and not yet acknowledged. */
  get unackedBatches(): number {
    return this.unacked.size;
  }

  /** Loads the checkpoint and starts following files. Throws when the data directory is unusable. */
  async start(): Promise<void> {
    if (this.running) return;
    try {
      await mkdir(this.dataDir, { recursive: true });
    } catch (err) {
      throw new PlumbError('PLUMB_ERR_CONFIG_INVALID', `data directory ${this.dataDir}: cannot create it (${errorMessage(err)}); point the agent's data directory at a writable path`, { cause: err });
    }
    // No checkpoint file: the very first start, where startAt applies.
    this.firstStart = !(await this.store.load());
    this.runId++;
    this.running = true;
    this.initialPass = true;
    this.dirty = false;
    this.checkpointTimer = setInterval(() => void this.flushCheckpoint(), this.options.checkpointInterval);
    this.checkpointTimer.unref();
    const runId = this.runId;
    this.loopDone = this.loop(runId).catch((err: unknown) => {
      // A bug, not bad input: reported loudly; what was acknowledged is still checkpointed on stop.
      this.log.error({ err: errorMessage(err) }, 'the file tailer stopped reading after an unexpected error');
    });
    this.log.info({ inputs: this.inputs.length, checkpoint: this.store.file }, 'file tailer started');
  }

  /**
   * Stops reading, waits up to `deadlineMs` for batches already handed out to be acknowledged,
   * writes the checkpoint and closes every file. `start` may be called again afterwards.
   */
  async stop(deadlineMs = 5000): Promise<void> {
    if (!this.running) return;
    const deadline = Date.now() + deadlineMs;
    this.running = false;
    this.wake();
    clearInterval(this.checkpointTimer);
    this.checkpointTimer = undefined;
    const loopDone = this.loopDone ?? Promise.resolve();
    // File operations end promptly, so the loop is always let finish them before its files are
    // closed; only a consumer that does not return is left behind (the loop exits when it does).
    if (!(await raceDeadline(loopDone, deadline)) && !this.delivering) await loopDone;
    if (this.unacked.size > 0) {
      await raceDeadline(
        new Promise<void>((resolve) => this.ackWaiters.push(resolve)),
        deadline,
      );
    }
    this.ackWaiters = [];
    await this.store.write();
    for (const file of this.tails.values()) await file.close();
    this.tails.clear();
    this.parked.clear();
    this.copies.clear();
    this.waitingSince.clear();
    this.retired = [];
    this.searched = new WeakSet();
    this.vacated.clear();
    this.closedRotated.clear();
    this.records = [];
    this.bytes = 0;
    this.contributors.clear();
    this.sealed.clear();
    this.ready = [];
    this.unacked.clear();
    this.metrics.unackedBatches.set(0);
    this.metrics.openFiles.set(0);
    this.log.info({ checkpoint: this.store.file }, 'file tailer stopped');
  }

  /**
   * Confirms a batch (or its `seq`): its records are safely downstream. Offsets move over the
   * contiguous run of confirmed batches per file, so confirmations may come in any order.
   * Unknown or repeated confirmations are ignored.
   */
  ack(batch: TailBatch | number): void {
    const seq = typeof batch === 'number' ? batch : batch.seq;
    const marks = this.unacked.get(seq);
    if (marks === undefined) return;
    this.unacked.delete(seq);
    for (const [, mark] of marks) mark.acked = true;
    for (const [track] of marks) if (track.advance()) this.dirty = true;
    this.metrics.unackedBatches.set(this.unacked.size);
    this.wake();
    if (this.unacked.size === 0 && this.ackWaiters.length > 0) {
      const waiters = this.ackWaiters;
      this.ackWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Where files put the records they complete. */
  private readonly sink: RecordSink = { add: (file, record) => this.addRecord(file, record) };

  private addRecord(file: TailedFile, record: TailRecord): void {
    this.records.push(record);
    this.bytes += record.text.length;
    this.contributors.set(file.track, file);
    if (this.records.length >= this.options.batchMaxRecords || this.bytes >= this.options.batchMaxBytes) this.closeBatch();
  }

  /**
   * Ends the batch being filled: fixes, per file, the offset it commits once acknowledged,
   * and queues it for hand-out.
   */
  private closeBatch(): void {
    if (this.records.length === 0) return;
    const marks: Marks = [];
    for (const [track, end] of this.sealed) marks.push([track, track.mark(end)]);
    for (const [track, file] of this.contributors) marks.push([track, track.mark(file.safeOffset())]);
    this.ready.push({ batch: { seq: ++this.seq, records: this.records, bytes: this.bytes }, marks });
    this.records = [];
    this.bytes = 0;
    this.contributors.clear();
    this.sealed.clear();
  }

  private isRunning(runId: number): boolean {
    return this.running && this.runId === runId;
  }

  private async loop(runId: number): Promise<void> {
    const o = this.options;
    let nextDiscovery = 0;
    while (this.isRunning(runId)) {
      let now = Date.now();
      if (now >= nextDiscovery) {
        await this.discover(now, runId);
        if (!this.isRunning(runId)) return;
        nextDiscovery = Date.now() + o.discoverInterval;
      }
      await this.deliverReady(runId);
      if (!this.isRunning(runId)) return;
      let readAny = false;
      let bytes = 0;
      let lines = 0;
      let truncated = 0;
      now = Date.now();
      for (const file of this.tails.values()) {
        if (file.handle === undefined || now < file.nextReadAt) continue;
        try {
          const c = await this.readChecked(file, now, true);
          if (c.bytes > 0) {
            readAny = true;
            file.eofSince = 0;
            file.idleReads = 0;
            bytes += c.bytes;
            lines += c.lines;
            truncated += c.truncated;
            if (c.malformed > 0) this.malformed(file, c.malformed);
          } else {
            if (file.eofSince === 0) file.eofSince = now;
            // A quiet file is read less and less often, at most a discovery interval apart;
            // discovery wakes it as soon as it sees the file grow.
            file.nextReadAt = now + Math.min(o.pollInterval * 2 ** Math.min(file.idleReads, 16), Math.max(o.pollInterval, o.discoverInterval));
            file.idleReads++;
          }
        } catch (err) {
          if (!this.isRunning(runId)) return;
          await this.readFailed(file, err);
        }
        if (!this.isRunning(runId)) return;
        if (this.ready.length > 0) {
          await this.deliverReady(runId);
          if (!this.isRunning(runId)) return;
        }
      }
      for (const file of this.tails.values()) {
        if (file.handle === undefined) continue;
        const m = file.flushExpired(now, this.sink);
        if (m > 0) this.malformed(file, m);
      }
      this.count(bytes, lines, truncated);
      if (!readAny) {
        // Caught up: hand out what there is rather than wait for a full batch.
        this.closeBatch();
        if (this.ready.length > 0) continue;
        await this.sleep(Math.min(o.pollInterval, Math.max(0, nextDiscovery - Date.now())));
      }
    }
  }

  /**
   * Reads a chunk, noticing a truncation at once: a read at the offset of a file that became
   * shorter finds nothing, and a file truncated and written again past the offset has other
   * leading bytes. In the second case the chunk may hold the old content's bytes (truncated
   * just after the read) or the new one's (just before): the new content has them at the same
   * offset now, the old one does not. Old bytes are taken; new ones are read again from 0.
   */
  private async readChecked(file: TailedFile, now: number, again: boolean): Promise<ReadCounts> {
    const n = await file.fill(this.readBuf);
    if (file.compressed || file.readOffset === 0) return n === 0 ? NOTHING : file.take(this.readBuf, n, this.prefixBuf, now, this.sink);
    if (n === 0) {
      if (file.handle === undefined || (await file.handle.stat()).size >= file.readOffset) return NOTHING;
      await this.truncated(file, now);
      return again ? this.readChecked(file, now, false) : NOTHING;
    }
    if (!(await this.headChanged(file))) return file.take(this.readBuf, n, this.prefixBuf, now, this.sink);
    const { bytesRead } = await (file.handle as Source).read(this.verifyBuf, 0, n, file.readOffset);
    const fromNew = bytesRead === n && this.verifyBuf.compare(this.readBuf, 0, n, 0, n) === 0;
    const old = fromNew ? NOTHING : await file.take(this.readBuf, n, this.prefixBuf, now, this.sink);
    await this.truncated(file, now);
    if (!again) return old;
    const next = await this.readChecked(file, now, false);
    return { bytes: old.bytes + next.bytes, lines: old.lines + next.lines, truncated: old.truncated + next.truncated, malformed: old.malformed + next.malformed };
  }

  private malformed(file: TailedFile, n: number): void {
    this.metrics.malformed.inc({ format: file.format }, n);
    this.once.warn(`malformed:${file.format}`, { path: file.path, format: file.format, lines: n }, 'lines that do not follow the input format; they are kept as text and tagged');
  }

  private count(bytes: number, lines: number, truncated: number): void {
    if (bytes > 0) this.metrics.bytesRead.inc(bytes);
    if (lines > 0) this.metrics.linesRead.inc(lines);
    if (truncated > 0) this.metrics.linesTruncated.inc(truncated);
  }

  /**
   * Hands closed batches to the consumer in order, waiting while `maxUnackedBatches` are
   * unacknowledged, and retrying a batch while the consumer rejects it and we run.
   */
  private async deliverReady(runId: number): Promise<void> {
    let paused = false;
    while (this.ready.length > 0 && this.isRunning(runId)) {
      if (this.unacked.size >= this.options.maxUnackedBatches) {
        if (!paused) this.metrics.paused.inc({ reason: 'unacked' });
        paused = true;
        await this.sleep(this.options.pollInterval);
        continue;
      }
      const { batch, marks } = this.ready.shift() as { batch: TailBatch; marks: Marks };
      this.unacked.set(batch.seq, marks);
      this.metrics.unackedBatches.set(this.unacked.size);
      this.metrics.batches.inc();
      this.metrics.records.inc(batch.records.length);
      if (!(await this.deliver(batch, runId))) {
        // Never handed over: nothing to wait for; its lines are read again on the next start.
        this.unacked.delete(batch.seq);
        this.metrics.unackedBatches.set(this.unacked.size);
      }
    }
  }

  private async deliver(batch: TailBatch, runId: number): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.delivering = true;
        await this.next(batch);
        return true;
      } catch (err) {
        this.delivering = false;
        this.metrics.deliveryErrors.inc();
        this.once.warn('deliver', { err: errorMessage(err), attempt }, 'the log consumer refused a batch; retrying');
        if (!this.isRunning(runId)) return false;
        await this.sleep(backoffDelay(attempt, DELIVERY_BACKOFF));
        if (!this.isRunning(runId)) return false;
      } finally {
        this.delivering = false;
      }
    }
  }

  /** Fixes what the batch being filled may commit for this file, before its state changes. */
  private seal(file: TailedFile): void {
    if (this.contributors.get(file.track) !== file) return;
    this.contributors.delete(file.track);
    this.sealed.set(file.track, file.safeOffset());
  }

  private async discover(now: number, runId: number): Promise<void> {
    const initial = this.initialPass;
    const found = await this.discovery.scan();
    if (!this.isRunning(runId)) return;
    if (this.discovery.overflow > 0) {
      this.metrics.filesRefused.inc({ reason: 'max_files' }, this.discovery.overflow);
      this.once.warn('max-files', { maxFiles: this.options.maxFiles, over: this.discovery.overflow }, 'more files match than maxFiles; the rest are not followed');
    }
    let rotatedOpen = 0;
    for (const file of [...this.tails.values()]) {
      if (this.tails.get(file.key) !== file) continue;
      const c = found.get(file.key);
      if (c !== undefined) {
        if (c.path !== file.path) {
          if (!file.rotated) this.rotation('rename', file.path);
          file.path = c.path;
          file.entry.path = c.path;
          this.dirty = true;
        }
        file.rotated = false;
        file.entry.seenAt = now;
      } else if (!file.rotated) {
        file.rotated = true;
        file.nextReadAt = 0;
        const st = await file.handle?.stat().catch(() => undefined);
        this.rotation(movedAwayKind(st?.nlink ?? 0), file.path);
        if (st !== undefined && !file.finite && !file.compressed) {
          this.vacate(file.path, file.settings.input, st.mtimeMs);
          await this.readSkippedGenerations(file.path, file.settings.input, st.mtimeMs, now, found);
        }
      }
      if (!file.compressed) await this.checkContent(file, now);
      if (!this.isRunning(runId)) return;
      if (file.rotated || file.finite) {
        // Grown since its last read (a writer that paused longer than rotateWait before its
        // reopen): read on, it is not finished, and its last line is not cut by a flush.
        if (!file.compressed && file.entry.size > file.readOffset) file.eofSince = 0;
        if (file.eofSince > 0 && now - file.eofSince >= this.options.rotateWait) await this.closeFile(file, true, now);
        else rotatedOpen++;
      } else if (file.eofSince > 0 && now - file.eofSince >= this.options.closeInactive && file.idle()) {
        await this.closeFile(file, false, now);
      }
    }
    await this.findLost(found, now);
    if (!this.isRunning(runId)) return;
    // Before new files are opened: a copy is read as the rest of its original, not as a new file.
    for (const r of [...this.retired]) {
      if (now <= r.searchUntil && (await this.continueElsewhere(r.lineage, now, found))) this.retired.splice(this.retired.indexOf(r), 1);
    }
    const waiting: Candidate[] = [];
    for (const c of found.values()) {
      const key = inodeKey(c);
      if (this.tails.has(key)) continue;
      // A copy of a file still being followed holds nothing new; looked at again when it grows.
      if (this.copies.get(key) === c.size) continue;
      const entry = this.store.get(key);
      if (entry !== undefined) {
        entry.seenAt = now;
        entry.size = c.size;
        this.searched.delete(entry);
        if (entry.path !== c.path) {
          entry.path = c.path;
          this.dirty = true;
        }
        // Nothing new since the last byte handed out: no need to hold it open.
        if (c.size === this.resumeOffset(key, entry)) continue;
      } else {
        const inp = this.inputs[c.input];
        // Not modified for ignoreOlder: registered at its end, read from there when it changes.
        if (inp.ignoreOlder > 0 && now - c.mtimeMs > inp.ignoreOlder) {
          await this.registerAtEnd(c, now);
          this.metrics.filesIgnored.inc();
          continue;
        }
        if (initial && this.firstStart && inp.startAt === 'end') {
          await this.registerAtEnd(c, now);
          continue;
        }
      }
      if (!this.waitingSince.has(key)) this.waitingSince.set(key, now);
      waiting.push(c);
    }
    waiting.sort((a, b) => (this.waitingSince.get(inodeKey(a)) ?? now) - (this.waitingSince.get(inodeKey(b)) ?? now));
    await this.makeRoom(waiting.length, now);
    for (let i = 0; i < waiting.length; i++) {
      if (this.tails.size >= this.options.maxOpenFiles) {
        this.metrics.filesRefused.inc({ reason: 'max_open_files' }, waiting.length - i);
        this.once.warn('max-open-files', { maxOpenFiles: this.options.maxOpenFiles, waiting: waiting.length - i }, 'more files have lines to read than maxOpenFiles; descriptors are shared in turns');
        break;
      }
      const c = waiting[i];
      await this.openFile(c, this.store.get(inodeKey(c)), now, found, initial);
      if (!this.isRunning(runId)) return;
    }
    await this.searchVacated(now, found);
    this.initialPass = false;
    this.lastPaths = new Set([...found.values()].map((c) => c.path));
    for (const key of this.waitingSince.keys()) if (this.tails.has(key) || !found.has(key)) this.waitingSince.delete(key);
    for (const key of this.copies.keys()) if (!found.has(key) || this.tails.has(key)) this.copies.delete(key);
    for (const [key, p] of this.parked) {
      if (this.store.get(key) !== p.track.entry || (p.track.outstanding === 0 && p.track.entry.offset >= p.offset)) this.parked.delete(key);
    }
    const inUse = (e: CheckpointEntry): boolean => this.tails.get(inodeKey(e))?.entry === e;
    this.store.forgetExpired(now, inUse);
    let lag = 0;
    for (const e of this.store.values()) {
      if (e.seenAt !== now && !inUse(e)) continue;
      lag += Math.max(0, e.size - e.offset);
      let clock = this.lagClocks.get(e);
      if (clock === undefined) this.lagClocks.set(e, (clock = new LagClock()));
      clock.note(e.size, e.offset, now);
    }
    this.metrics.lagBytes.set(lag);
    this.lastPassAt = now;
    this.metrics.filesWatched.set(found.size + rotatedOpen);
    this.metrics.openFiles.set(this.tails.size);
  }

  /** Where a closed file continues: after what it handed out (acknowledged or not). */
  private resumeOffset(key: string, entry: CheckpointEntry): number {
    const p = this.parked.get(key);
    return p !== undefined && p.track.entry === entry ? p.offset : entry.offset;
  }

  /**
   * More files have lines to read than there are descriptors: files at their end give theirs
   * up first (oldest first), then files that held one for a discovery interval (longest held
   * first). Every waiting file is served in turn, so each makes progress within
   * ⌈files / maxOpenFiles⌉ discovery intervals. A closed file resumes after what it handed out.
   */
  private async makeRoom(waiting: number, now: number): Promise<void> {
    let excess = waiting - (this.options.maxOpenFiles - this.tails.size);
    if (excess <= 0) return;
    const idle: TailedFile[] = [];
    const busy: TailedFile[] = [];
    for (const f of this.tails.values()) {
      // Rotated files and copies cannot be found again by their path: they keep theirs.
      if (f.rotated || f.finite) continue;
      if (f.eofSince > 0) idle.push(f);
      else if (now - f.openedAt >= this.options.discoverInterval) busy.push(f);
    }
    idle.sort((a, b) => a.eofSince - b.eofSince);
    busy.sort((a, b) => a.openedAt - b.openedAt);
    for (const f of idle.concat(busy)) {
      if (excess <= 0) break;
      await this.closeFile(f, false, now);
      excess--;
    }
  }

  /** Opens a matching file, deciding from its checkpoint entry (if any) where to start. */
  private async openFile(c: Candidate, entry: CheckpointEntry | undefined, now: number, found: Map<string, Candidate>, initial: boolean): Promise<void> {
    let handle;
    try {
      handle = await open(c.path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      this.metrics.filesRefused.inc({ reason: 'open_error' });
      this.once.warn(`open:${code}`, { path: c.path, code, err: errorMessage(err) }, 'cannot open a log file; retrying on the next discovery');
      return;
    }
    try {
      const st = await handle.stat({ bigint: true });
      const inode: Inode = { dev: st.dev.toString(), ino: st.ino.toString(), birthtimeMs: Number(st.birthtimeMs) };
      const key = inodeKey(inode);
      // The path was replaced between the directory scan and the open (by a file that may have
      // been given the same, freed, inode): the next scan sees the new file. The one scanned was
      // rotated away unread: its lines are looked for once a file is followed here.
      if (key !== inodeKey(c) || bornAgain(c.birthtimeMs, inode.birthtimeMs)) {
        // Whole milliseconds: the scanned file was never read, so its own later copy (renamed, or
        // compressed with its time carried over to the millisecond) must count as written since;
        // the rotations are compared as whole milliseconds too.
        this.vacate(c.path, c.input, Math.floor(c.mtimeMs));
        await handle.close();
        return;
      }
      const size = Number(st.size);
      const available = await readPrefix(handle, this.prefixBuf);
      let use: CheckpointEntry;
      let offset = 0;
      let track: AckTrack | undefined;
      let lineage: Lineage | undefined;
      if (entry !== undefined) {
        const parked = this.parked.get(key);
        const p = parked !== undefined && parked.track.entry === entry ? parked : undefined;
        this.parked.delete(key);
        const from = p?.offset ?? entry.offset;
        const verdict = judgeReopen({ ...entry, offset: from }, compareFingerprint(entry.fp, this.prefixBuf, available), size, inode.birthtimeMs);
        if (verdict.action === 'resume') {
          use = entry;
          offset = verdict.offset;
          track = p?.track;
        } else {
          this.rotation(verdict.kind, c.path);
          // What was not read of the old content may be in a copy or a compressed rotation.
          lineage = { entry, track: p?.track, from, input: entry.input ?? c.input, truncated: verdict.kind === 'truncate' };
          use = newEntry(inode, c.path, verdict.generation, 0, now);
        }
      } else {
        const retired = this.retiredMatch(c, this.prefixBuf, available);
        if (retired !== undefined) {
          await handle.close();
          if (await this.continueElsewhere(retired.lineage, now, found)) this.retired.splice(this.retired.indexOf(retired), 1);
          return;
        }
        if (await this.copyOfLive(c, this.prefixBuf, available, found)) {
          this.copies.set(key, c.size);
          await handle.close();
          return;
        }
        use = newEntry(inode, c.path, 0, 0, now);
        if (this.newFromEnd(c, initial)) {
          offset = await this.endOfLastLine(handle, c.input, size, available);
          use.offset = offset;
        }
      }
      if (available > use.fp.len) use.fp = fingerprintOf(this.prefixBuf, available, this.options.fingerprintBytes);
      use.size = size;
      use.seenAt = now;
      use.input = c.input;
      if (!this.store.set(use, (e) => this.tails.get(inodeKey(e))?.entry === e)) {
        this.metrics.filesRefused.inc({ reason: 'max_files' });
        await handle.close();
        return;
      }
      const file = new TailedFile(key, inode, handle, c.path, use, offset, this.settings[c.input], track);
      file.checkedSize = size;
      file.openedAt = now;
      this.tails.set(file.key, file);
      this.copies.delete(key);
      this.dirty = true;
      if (lineage !== undefined) await this.lookForCopy(lineage, now, found);
    } catch (err) {
      if (!this.tails.has(inodeKey(c))) await handle.close().catch(() => undefined);
      this.metrics.filesRefused.inc({ reason: 'open_error' });
      this.once.warn(`open:${(err as NodeJS.ErrnoException).code}`, { path: c.path, err: errorMessage(err) }, 'cannot read a log file; retrying on the next discovery');
    }
  }

  /**
   * A new file whose leading bytes are those of a file in the same directory that is still
   * followed: a copy (copytruncate's, before the truncation). Its lines are read through the
   * original; if the original is then truncated, the copy is read from where the original
   * stopped (`continueElsewhere`). A short fingerprint only counts when the new file is no
   * longer than the original, so two files that merely start alike are not confused for long.
   */
  private async copyOfLive(c: Candidate, prefix: Buffer, available: number, found: Map<string, Candidate>): Promise<boolean> {
    const dir = path.dirname(c.path);
    const key = inodeKey(c);
    const hashes = new Map<number, string>();
    for (const e of this.store.values()) {
      if (e.fp.len === 0) continue;
      const k = inodeKey(e);
      if (k === key || (!this.tails.has(k) && !found.has(k)) || path.dirname(e.path) !== dir) continue;
      if (e.fp.len > available) {
        // Shorter than the fingerprint: a copy still being written (logrotate copies while the
        // directory is scanned) if all it holds so far is the start of a followed file.
        if (await this.startsLike(this.tails.get(k), prefix, available)) return true;
        continue;
      }
      if (e.fp.len < this.options.fingerprintBytes && c.size > e.size) continue;
      let h = hashes.get(e.fp.len);
      if (h === undefined) {
        h = hashBytes(prefix, e.fp.len);
        hashes.set(e.fp.len, h);
      }
      if (h === e.fp.hash) return true;
    }
    return false;
  }

  /** Whether the open file `f` starts with `prefix[0, n)` (n > 0). */
  private async startsLike(f: TailedFile | undefined, prefix: Buffer, n: number): Promise<boolean> {
    if (n === 0 || f?.handle === undefined || f.compressed) return false;
    const got = await readPrefix(f.handle, this.verifyBuf.subarray(0, n)).catch(() => 0);
    return got === n && this.verifyBuf.compare(prefix, 0, n, 0, n) === 0;
  }

  /**
   * Checkpointed files that no glob matches any more and that are not open: renamed out of the
   * globs, compressed, or copied and deleted while the agent was down or the file was closed.
   * Each is searched for once per run (again if it is matched and lost again); rotated files
   * closed while they could still grow, on every pass for closeInactive (watchClosed).
   */
  private async findLost(found: Map<string, Candidate>, now: number): Promise<void> {
    let budget = LOST_SEARCHES_PER_PASS;
    const dirs = new Map<string, string[] | undefined>();
    for (const e of [...this.store.values()]) {
      if (budget <= 0) break;
      const key = inodeKey(e);
      if (found.has(key) || this.tails.has(key) || this.searched.has(e)) continue;
      this.searched.add(e);
      // Which input framed it is needed to read it; checkpoints from before that was kept have no answer.
      if (e.input === undefined || e.input >= this.settings.length || e.fp.len === 0) continue;
      budget--;
      await this.continueElsewhere({ entry: e, track: this.parked.get(key)?.track, from: this.resumeOffset(key, e), input: e.input, truncated: false }, now, found, dirs);
    }
    // Rotated files closed while they could still grow: those looked at longest ago first.
    budget = LOST_SEARCHES_PER_PASS;
    for (const [e, closed] of [...this.closedRotated]) {
      if (budget <= 0) break;
      const key = inodeKey(e);
      if (now > closed.until || this.store.get(key) !== e || e.input === undefined || e.input >= this.settings.length) {
        this.closedRotated.delete(e);
        continue;
      }
      // Matched by a glob (read when it grows) or open again.
      if (found.has(key) || this.tails.has(key)) continue;
      budget--;
      this.closedRotated.delete(e);
      this.closedRotated.set(e, closed);
      await this.continueElsewhere({ entry: e, track: this.parked.get(key)?.track, from: this.resumeOffset(key, e), input: e.input, truncated: false }, now, found, dirs, closed.mtimeMs);
    }
  }

  /**
   * Looks in the directory of `l`'s file for the file that now holds its bytes: its copy, its
   * `.gz`, or itself under another name (names starting with the file's name or its stem, as
   * logrotate's numbered and dated rotations are). A candidate must match the fingerprint of
   * the known file; plain files are preferred to compressed ones, newer to older. The one found
   * is read from `l.from` under `l`'s identity. With `modifiedAfter` (a file closed while it
   * could still grow), only files written since are looked at. Returns whether one was found.
   */
  private async continueElsewhere(l: Lineage, now: number, found: Map<string, Candidate> | undefined, dirs?: Map<string, string[] | undefined>, modifiedAfter?: number): Promise<boolean> {
    if (l.entry.fp.len === 0 || l.input >= this.settings.length) return false;
    const dir = path.dirname(l.entry.path);
    const base = path.basename(l.entry.path);
    let names = dirs?.get(dir);
    if (names === undefined) {
      names = await readdir(dir).catch(() => undefined);
      dirs?.set(dir, names);
      if (names === undefined) return false;
    }
    const stem = nameStem(base);
    const candidates: { file: string; gz: boolean; inode: Inode; size: number; mtimeMs: number }[] = [];
    for (const name of names) {
      if (!relatedName(name, base, stem)) continue;
      const gz = name.toLowerCase().endsWith(GZIP_SUFFIX);
      if (!gz && isCompressed(name)) continue;
      const file = path.join(dir, name);
      const st = await stat(file, { bigint: true }).catch(() => undefined);
      if (st === undefined || !st.isFile()) continue;
      if (modifiedAfter !== undefined && Number(st.mtimeMs) <= modifiedAfter) continue;
      const inode: Inode = { dev: st.dev.toString(), ino: st.ino.toString(), birthtimeMs: Number(st.birthtimeMs) };
      const key = inodeKey(inode);
      if (this.tails.has(key)) continue;
      candidates.push({ file, gz, inode, size: Number(st.size), mtimeMs: Number(st.mtimeMs) });
    }
    candidates.sort((a, b) => Number(a.gz) - Number(b.gz) || b.mtimeMs - a.mtimeMs);
    for (const c of candidates.slice(0, MAX_RELATED_FILES)) {
      let size = c.size;
      if (c.gz) {
        const stated = await gzipStatedSize(c.file);
        if (stated === undefined) continue;
        // The trailer states the size modulo 4 GiB: past that, it says nothing.
        size = c.size < 2 ** 32 / 16 ? stated : Infinity;
      }
      const key = inodeKey(c.inode);
      // Nothing left to read, and nothing would read it as a new file: leave it.
      if (size <= l.from && !l.truncated && !found?.has(key)) continue;
      let source: Source | undefined;
      try {
        let opened: string;
        if (c.gz) {
          const gz = await GzipSource.open(c.file);
          source = gz;
          opened = inodeKey(gz);
        } else {
          const fh = await open(c.file, 'r');
          source = fh;
          const st = await fh.stat({ bigint: true });
          opened = inodeKey({ dev: st.dev.toString(), ino: st.ino.toString() });
        }
        // Renamed between the listing and the open (the next rotation shifting names): not this one.
        if (opened !== key) {
          await source.close();
          continue;
        }
        const available = await readPrefix(source, this.prefixBuf);
        // A file the checkpoint knows as itself is not a copy; an entry whose fingerprint it does
        // not match is of a deleted file whose inode was handed out again.
        const known = this.store.get(key);
        const itself = known !== undefined && known !== l.entry && compareFingerprint(known.fp, this.prefixBuf, available) === 'same';
        if (itself || compareFingerprint(l.entry.fp, this.prefixBuf, available) !== 'same') {
          await source.close();
          continue;
        }
      } catch (err) {
        await source?.close();
        this.once.warn(`rotated:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`, { path: c.file, err: errorMessage(err) }, 'cannot read a rotated copy of a log file');
        continue;
      }
      this.adopt(l, source, c, size, now, found);
      // Other rotations made since hold contents of the file that were truncated before any read
      // saw them (the reader was more than one rotation behind): read them as the new files they are.
      if (l.truncated) {
        const rotation = rotationName(base);
        // Rotations made since this content was first seen, other than its own copy.
        const since = l.entry.since ?? Infinity;
        for (const o of candidates) {
          if (o !== c && o.mtimeMs >= since && rotation.test(path.basename(o.file))) await this.openUnseen(o, l.input, now, found);
        }
      }
      return true;
    }
    return false;
  }

  /** Notes that no file may be followed at `filePath` from now on; `since` is the last write of the one that was. */
  private vacate(filePath: string, input: number, since: number): void {
    const v = this.vacated.get(filePath);
    this.vacated.delete(filePath);
    this.vacated.set(filePath, { input, since: Math.min(since, v?.since ?? Infinity) });
    // bounded like the checkpoint: the path vacated longest ago goes first
    if (this.vacated.size > this.options.maxFiles) this.vacated.delete(this.vacated.keys().next().value as string);
  }

  /**
   * A file is followed again at a vacated path: every generation created there since the file
   * before it was last written, and rotated away before a pass followed it, is now among the
   * path's rotations (the one followed now was created after them). The open that lost a race
   * with a rotation, and a pass that found the path empty, are how they were missed.
   */
  private async searchVacated(now: number, found: Map<string, Candidate>): Promise<void> {
    if (this.vacated.size === 0) return;
    for (const file of [...this.tails.values()]) {
      if (file.rotated || file.finite) continue;
      const v = this.vacated.get(file.path);
      if (v === undefined) continue;
      this.vacated.delete(file.path);
      await this.readSkippedGenerations(file.path, v.input, v.since, now, found);
    }
  }

  /**
   * A file followed at `filePath` was rotated away: files of the path created and rotated away
   * since, before any discovery pass saw them there (two rotations between two passes, on a
   * busy machine), hold lines no read has seen. They are the rotations of its name (app.log.1,
   * app.log.2.gz, app.log-20260101) modified at or after `since` (that file's last write) that
   * no checkpoint knows: read whole, as the new files they were. Older rotations (from before
   * the agent followed the path) were modified before it, and are left alone. Plain files are
   * looked at before compressed ones, so a `.gz` still being written next to its plain file is
   * recognised as that file's content.
   */
  private async readSkippedGenerations(filePath: string, input: number, since: number, now: number, found: Map<string, Candidate>): Promise<void> {
    const dir = path.dirname(filePath);
    const names = await readdir(dir).catch(() => undefined);
    if (names === undefined) return;
    const rotation = rotationName(path.basename(filePath));
    const unseen: { file: string; gz: boolean; inode: Inode; size: number }[] = [];
    for (const name of names) {
      if (!rotation.test(name)) continue;
      const full = path.join(dir, name);
      const st = await stat(full, { bigint: true }).catch(() => undefined);
      if (st === undefined || !st.isFile() || Number(st.mtimeMs) < since) continue;
      const inode: Inode = { dev: st.dev.toString(), ino: st.ino.toString(), birthtimeMs: Number(st.birthtimeMs) };
      const key = inodeKey(inode);
      if (this.tails.has(key)) continue;
      // Known, unless its inode was freed and handed to a later file (told by its birth time).
      const known = this.store.get(key);
      if (known !== undefined && !bornAgain(known.birthtimeMs, inode.birthtimeMs)) continue;
      unseen.push({ file: full, gz: name.toLowerCase().endsWith(GZIP_SUFFIX), inode, size: Number(st.size) });
    }
    unseen.sort((a, b) => Number(a.gz) - Number(b.gz));
    for (const c of unseen) await this.openUnseen(c, input, now, found);
  }

  /** A rotated copy holding a content of a file that was never read: read whole, under its own identity. */
  private async openUnseen(c: { file: string; gz: boolean; inode: Inode; size: number }, input: number, now: number, found: Map<string, Candidate> | undefined): Promise<void> {
    const key = inodeKey(c.inode);
    if (this.tails.has(key)) return;
    let source: Source | undefined;
    try {
      let opened: string;
      if (c.gz) {
        const gz = await GzipSource.open(c.file);
        source = gz;
        opened = inodeKey(gz);
      } else {
        const fh = await open(c.file, 'r');
        source = fh;
        const st = await fh.stat({ bigint: true });
        opened = inodeKey({ dev: st.dev.toString(), ino: st.ino.toString() });
      }
      if (opened !== key) {
        await source.close();
        return;
      }
      const available = await readPrefix(source, this.prefixBuf);
      // A rotation of a content the checkpoint knows (a copy read already, now compressed) is not unseen.
      if (this.knownContent(c.file, this.prefixBuf, available)) {
        await source.close();
        return;
      }
      const entry = newEntry(c.inode, c.file, 0, 0, now);
      entry.fp = fingerprintOf(this.prefixBuf, available, this.options.fingerprintBytes);
      entry.size = c.gz ? 0 : c.size;
      entry.input = input;
      if (!this.store.set(entry, (e) => this.tails.get(inodeKey(e))?.entry === e)) {
        await source.close();
        return;
      }
      const file = new TailedFile(key, c.inode, source, c.file, entry, 0, this.settings[input]);
      file.finite = true;
      file.compressed = c.gz;
      file.rotated = found?.has(key) !== true;
      file.openedAt = now;
      this.tails.set(key, file);
      this.copies.delete(key);
      this.dirty = true;
      this.metrics.rotations.inc({ kind: c.gz ? 'compressed' : 'copy' });
    } catch (err) {
      await source?.close();
      this.once.warn(`rotated:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`, { path: c.file, err: errorMessage(err) }, 'cannot read a rotated copy of a log file');
    }
  }

  /** Reads `c` as the continuation of `l`'s file: the checkpoint entry moves to it, ids stay. */
  private adopt(l: Lineage, source: Source, c: { file: string; gz: boolean; inode: Inode }, size: number, now: number, found: Map<string, Candidate> | undefined): void {
    const e = l.entry;
    const oldKey = inodeKey(e);
    const key = inodeKey(c.inode);
    const same = oldKey === key;
    if (!same) {
      if (this.store.get(oldKey) === e) this.store.delete(oldKey);
      e.dev = c.inode.dev;
      e.ino = c.inode.ino;
      e.birthtimeMs = c.inode.birthtimeMs;
    }
    e.path = c.file;
    e.seenAt = now;
    e.size = Number.isFinite(size) ? size : e.size;
    e.input = l.input;
    // A copy ends where it was made; the file itself under another name may still grow.
    if (!c.gz && Number.isFinite(size) && !same) {
      e.end = size;
      if (e.offset > size) e.offset = size;
    }
    this.store.set(e, () => true);
    const from = c.gz ? l.from : Math.min(l.from, size);
    const file = new TailedFile(key, c.inode, source, c.file, e, from, this.settings[l.input], l.track?.entry === e ? l.track : undefined);
    file.finite = true;
    file.compressed = c.gz;
    file.rotated = found?.has(key) !== true;
    file.openedAt = now;
    file.checkedSize = size;
    this.tails.set(key, file);
    this.copies.delete(key);
    this.waitingSince.delete(key);
    this.dirty = true;
    this.metrics.rotations.inc({ kind: c.gz ? 'compressed' : same ? 'rename' : 'copy' });
  }

  /**
   * A truncation (copytruncate, or a file emptied in place): what was handed out stays
   * committed to the old identity, whose unread rest is looked for in a copy; the file itself
   * is read again from 0 as a new generation, so no event id repeats.
   */
  private async truncated(file: TailedFile, now: number): Promise<void> {
    this.rotation('truncate', file.path);
    this.seal(file);
    const lineage: Lineage = { entry: file.entry, track: file.track, from: file.safeOffset(), input: file.settings.input, truncated: true };
    // The new content's fingerprint is taken from the bytes read from 0 (TailedFile), not from a
    // look now: the file may be truncated again before that read.
    const entry = newEntry(file.inode, file.path, file.entry.generation + 1, 0, now);
    entry.input = file.settings.input;
    this.store.set(entry, () => true);
    file.restart(entry, 0);
    file.checkedSize = -1;
    this.dirty = true;
    await this.lookForCopy(lineage, now, undefined);
  }

  /**
   * After a truncation: the copy is normally there already (copytruncate copies first), but a
   * rotation shifting names as we look can hide it; it is looked for again on the discovery
   * passes within rotateWait, before any new file is opened.
   */
  private async lookForCopy(l: Lineage, now: number, found: Map<string, Candidate> | undefined): Promise<void> {
    if (await this.continueElsewhere(l, now, found)) return;
    if (l.entry.fp.len === 0) return;
    this.retired.push({ lineage: l, searchUntil: now + Math.max(this.options.rotateWait, 2 * this.options.discoverInterval) });
    if (this.retired.length > MAX_RETIRED) this.retired.shift();
  }

  /** Whether a file in `file`'s directory that the checkpoint knows starts with these bytes. */
  private knownContent(file: string, prefix: Buffer, available: number): boolean {
    const dir = path.dirname(file);
    for (const e of this.store.values()) {
      if (e.fp.len > 0 && path.dirname(e.path) === dir && compareFingerprint(e.fp, prefix, available) === 'same') return true;
    }
    for (const r of this.retired) if (r.lineage.entry.fp.len > 0 && compareFingerprint(r.lineage.entry.fp, prefix, available) === 'same') return true;
    return false;
  }

  /** A truncated file's identity whose leading bytes the new file `c` starts with: its copy. */
  private retiredMatch(c: Candidate, prefix: Buffer, available: number): { lineage: Lineage; searchUntil: number } | undefined {
    const dir = path.dirname(c.path);
    for (const r of this.retired) {
      const fp = r.lineage.entry.fp;
      if (fp.len > 0 && fp.len <= available && path.dirname(r.lineage.entry.path) === dir && hashBytes(prefix, fp.len) === fp.hash) return r;
    }
    return undefined;
  }

  /**
   * Before a read: are the file's leading bytes still those it was fingerprinted with? A file
   * truncated and written again past the read position is caught here, before its new bytes
   * are read as if they continued the old ones.
   */
  private async headChanged(file: TailedFile): Promise<boolean> {
    const handle = file.handle;
    if (handle === undefined || file.compressed || file.readOffset === 0) return false;
    const fp = file.entry.fp;
    // A complete fingerprint only needs its own bytes; a short one grows with the file.
    const full = fp.len >= this.options.fingerprintBytes || file.growsFingerprint;
    const available = await readPrefix(handle, full ? this.prefixBuf.subarray(0, fp.len) : this.prefixBuf);
    if (compareFingerprint(fp, this.prefixBuf, available) !== 'same') return true;
    if (!full && available > fp.len) {
      file.entry.fp = fingerprintOf(this.prefixBuf, available, this.options.fingerprintBytes);
      this.dirty = true;
    }
    return false;
  }

  /**
   * startAt "end" for a file that exists at the first start: records a checkpoint entry after
   * its last complete line, without keeping it open.
   */
  private async registerAtEnd(c: Candidate, now: number): Promise<void> {
    let handle;
    try {
      handle = await open(c.path, 'r');
    } catch {
      return;
    }
    try {
      const st = await handle.stat({ bigint: true });
      const inode: Inode = { dev: st.dev.toString(), ino: st.ino.toString(), birthtimeMs: Number(st.birthtimeMs) };
      if (inodeKey(inode) !== inodeKey(c)) return;
      const size = Number(st.size);
      const available = await readPrefix(handle, this.prefixBuf);
      const offset = await this.endOfLastLine(handle, c.input, size, available);
      const entry = newEntry(inode, c.path, 0, offset, now);
      entry.fp = fingerprintOf(this.prefixBuf, available, this.options.fingerprintBytes);
      entry.size = size;
      entry.input = c.input;
      if (this.store.set(entry, (e) => this.tails.get(inodeKey(e))?.entry === e)) this.dirty = true;
      else this.metrics.filesRefused.inc({ reason: 'max_files' });
    } catch (err) {
      this.once.warn('register-at-end', { path: c.path, err: errorMessage(err) }, 'cannot read a log file; retrying on the next discovery');
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  /**
   * Where a file read "from the end" starts: after its last complete line, so a line being
   * written is read whole (`available` leading bytes are in prefixBuf, for the byte order mark).
   */
  private async endOfLastLine(handle: FileHandle, input: number, size: number, available: number): Promise<number> {
    const tailLen = Math.min(size, this.readBuf.length);
    const { bytesRead } = await handle.read(this.readBuf, 0, tailLen, size - tailLen);
    const codec = codecFor(this.inputs[input].encoding, this.prefixBuf.subarray(0, available)) ?? UTF8;
    const lineEnd = lastLineEnd(codec, this.readBuf, bytesRead, size - tailLen);
    // No line end in the last chunk: one line longer than a chunk is being written, or the file
    // has no newlines at all; either way what is there now is not read.
    const offset = lineEnd >= 0 ? size - tailLen + lineEnd : size;
    return codec.unit === 2 ? offset - (offset & 1) : offset;
  }

  /**
   * newFilesStartAt "end" applies to a file that appeared after the first start, unless a
   * followed file had its path (the fresh file of a rotation, or of a delete and recreate):
   * reading that from its end would drop the lines written since the rotation.
   */
  private newFromEnd(c: Candidate, initial: boolean): boolean {
    if (initial && this.firstStart) return false;
    if (this.inputs[c.input].newFilesStartAt !== 'end') return false;
    if (this.lastPaths.has(c.path)) return false;
    for (const e of this.store.values()) if (e.path === c.path) return false;
    return true;
  }

  /** An open file's size and leading bytes: truncated or rewritten in place means start over. */
  private async checkContent(file: TailedFile, now: number): Promise<void> {
    const handle = file.handle;
    if (handle === undefined) return;
    let size;
    try {
      size = (await handle.stat()).size;
    } catch {
      return;
    }
    file.entry.size = size;
    if (size > file.readOffset) file.nextReadAt = 0;
    if (size === file.checkedSize && size >= file.readOffset) return;
    file.checkedSize = size;
    const available = await readPrefix(handle, this.prefixBuf).catch(() => 0);
    const prefix = compareFingerprint(file.entry.fp, this.prefixBuf, available);
    if (judgeOpen(file.readOffset, size, prefix) === 'truncate') {
      await this.truncated(file, now);
      file.checkedSize = size;
    } else if (available > file.entry.fp.len && file.entry.fp.len < this.options.fingerprintBytes) {
      file.entry.fp = fingerprintOf(this.prefixBuf, available, this.options.fingerprintBytes);
      this.dirty = true;
    }
  }

  /** Closes a file; a rotated one first hands out everything it held, unterminated last line included. */
  private async closeFile(file: TailedFile, flush: boolean, now: number): Promise<void> {
    if (flush) {
      await file.flushAll(this.prefixBuf, now, this.sink).catch((err: unknown) => {
        this.once.warn('flush', { path: file.path, err: errorMessage(err) }, 'cannot read the first bytes of a rotated file; its unterminated last line is dropped');
      });
    } else if (file.idle() && file.track.outstanding === 0 && this.contributors.get(file.track) !== file && !this.sealed.has(file.track)) {
      // Everything read is either acknowledged or produced no record (blank lines): settle it,
      // so the file is not reopened just to skip them again.
      if (file.entry.offset < file.readOffset) {
        file.entry.offset = file.readOffset;
        this.dirty = true;
      }
    }
    this.seal(file);
    if (flush) await this.watchClosed(file, now);
    // Handed out but not yet acknowledged: reopened, the file continues after it, not at the checkpoint.
    const safe = file.safeOffset();
    if (safe > file.entry.offset) this.parked.set(file.key, { track: file.track, offset: safe });
    await file.close();
    this.tails.delete(file.key);
  }

  /**
   * A rotated file closed after rotateWait without growth may still be written: a writer starved
   * of CPU appends to it before it handles the signal to reopen. While it still has a name, it is
   * looked for on each pass (findLost) for closeInactive: grown, it is read on from where it
   * stopped, under its name or from the `.gz` a rotation made of it.
   */
  private async watchClosed(file: TailedFile, now: number): Promise<void> {
    this.closedRotated.delete(file.entry);
    if (file.compressed) return;
    const st = await file.handle?.stat().catch(() => undefined);
    if (st === undefined || st.nlink === 0) return;
    this.closedRotated.set(file.entry, { until: now + this.options.closeInactive, mtimeMs: st.mtimeMs });
    // bounded like the checkpoint: the file looked at longest ago goes first
    if (this.closedRotated.size > this.options.maxFiles) this.closedRotated.delete(this.closedRotated.keys().next().value as CheckpointEntry);
  }

  private async readFailed(file: TailedFile, err: unknown): Promise<void> {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
    this.metrics.filesRefused.inc({ reason: 'open_error' });
    this.once.warn(`read:${code}`, { path: file.path, code, err: errorMessage(err) }, 'cannot read a log file; it is reopened at its checkpoint on the next discovery');
    this.seal(file);
    await file.close();
    this.tails.delete(file.key);
  }

  private async flushCheckpoint(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    if (!(await this.store.write())) this.dirty = true;
  }

  /** Waits `ms`, or less when woken (an ack arrived, or stop). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        if (this.wakeLoop === done) this.wakeLoop = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeLoop = done;
    });
  }

  private wake(): void {
    this.wakeLoop?.();
  }
}

/** A file's name without its last extension ("app" for "app.log"), or the name when it has none. */
function nameStem(base: string): string {
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

/** Names a rotation of `base` can have: app.log.1, app.log-20260101, app.log.1.gz, app-20260101.log. */
function relatedName(name: string, base: string, stem: string): boolean {
  if (name.startsWith(base)) return true;
  if (stem === base || !name.startsWith(stem)) return false;
  const sep = name.charCodeAt(stem.length);
  return sep === 0x2e || sep === 0x2d || sep === 0x5f;
}

/** logrotate's names for rotations of `base`: base.1, base-20260101, base.1.gz, base-2026-01-01-12.gz. */
function rotationName(base: string): RegExp {
  return new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[.-][0-9][0-9._-]*(\\.gz)?$`);
}

function newEntry(inode: Inode, filePath: string, generation: number, offset: number, now: number): CheckpointEntry {
  return { dev: inode.dev, ino: inode.ino, birthtimeMs: inode.birthtimeMs, fileId: undefined, generation, fp: { len: 0, hash: '' }, offset, path: filePath, seenAt: now, size: 0, since: now };
}

/** Waits for `p` until `deadline`; true when it settled in time. */
async function raceDeadline(p: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
    }),
  ]);
  clearTimeout(timer);
  return settled;
}
