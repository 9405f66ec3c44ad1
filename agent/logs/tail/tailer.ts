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
import { mkdir, open } from 'node:fs/promises';
import type { Logger } from '../../../shared/log.ts';
import { LogOnce } from '../../../shared/log.ts';
import { PlumbError, errorMessage } from '../../../shared/errors.ts';
import { backoffDelay } from '../../../shared/retry.ts';
import type { Telemetry } from '../../../shared/telemetry.ts';
import { ConfigError } from '../../../shared/config.ts';
import { tailConfigErrors, type LogInput, type TailerOptions } from './config.ts';
import { CheckpointStore, type AckMark, type AckTrack, type CheckpointEntry } from './checkpoint.ts';
import { Discovery, type Candidate } from './discovery.ts';
import { TailedFile, type FileSettings, type RecordSink } from './file.ts';
import { compareFingerprint, fingerprintOf, inodeKey, readPrefix, type Inode } from './identity.ts';
import { TailMetrics } from './metrics.ts';
import type { TailBatch, TailConsumer, TailRecord } from './record.ts';
import { judgeOpen, judgeReopen, movedAwayKind } from './rotation.ts';

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
  private readonly prefixBuf: Buffer;
  private readonly tails = new Map<string, TailedFile>();

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
  private dirty = false;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private wakeLoop: (() => void) | undefined;
  /** The loop is waiting on the consumer, the one wait that may outlast stop's deadline. */
  private delivering = false;
  private ackWaiters: (() => void)[] = [];

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
      multiline: input.multiline !== undefined ? new RegExp(input.multiline.start) : undefined,
      maxLineBytes: config.options.maxLineBytes,
      fingerprintBytes: config.options.fingerprintBytes,
      partialTimeoutMs: config.options.partialTimeout,
      idSeed,
    }));
    this.store = new CheckpointStore(config.dataDir, { maxEntries: config.options.maxFiles, forgetAfterMs: config.options.forgetAfter }, this.metrics, deps.log);
    this.discovery = new Discovery(config.inputs, config.options.maxFiles, deps.log);
    this.readBuf = Buffer.allocUnsafe(config.options.readChunkBytes);
    this.prefixBuf = Buffer.allocUnsafe(config.options.fingerprintBytes);
    this.metrics.lagBytes.set(0);
    this.metrics.unackedBatches.set(0);
    this.metrics.openFiles.set(0);
    this.metrics.filesWatched.set(0);
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
    await this.store.load();
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
          const c = await file.read(this.readBuf, this.prefixBuf, now, this.sink);
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
      const c = found.get(file.key);
      if (c !== undefined) {
        if (c.path !== file.path) {
          if (!file.rotated) this.metrics.rotations.inc({ kind: 'rename' });
          file.path = c.path;
          file.entry.path = c.path;
          this.dirty = true;
        }
        file.rotated = false;
        file.entry.seenAt = now;
      } else if (!file.rotated) {
        file.rotated = true;
        file.nextReadAt = 0;
        const nlink = await file.handle
          ?.stat()
          .then((s) => s.nlink)
          .catch(() => 0);
        this.metrics.rotations.inc({ kind: movedAwayKind(nlink ?? 0) });
      }
      await this.checkContent(file);
      if (!this.isRunning(runId)) return;
      if (file.rotated) {
        if (file.eofSince > 0 && now - file.eofSince >= this.options.rotateWait) await this.closeFile(file, true, now);
        else rotatedOpen++;
      } else if (file.eofSince > 0 && now - file.eofSince >= this.options.closeInactive && file.idle()) {
        await this.closeFile(file, false, now);
      }
    }
    for (const c of found.values()) {
      if (this.tails.has(inodeKey(c))) continue;
      const entry = this.store.get(inodeKey(c));
      if (entry !== undefined) {
        entry.seenAt = now;
        entry.size = c.size;
        if (entry.path !== c.path) {
          entry.path = c.path;
          this.dirty = true;
        }
        // Nothing new since the last acknowledged byte: no need to hold it open.
        if (c.size === entry.offset) continue;
      } else if (initial && this.inputs[c.input].startAt === 'end') {
        await this.registerAtEnd(c, now);
        continue;
      }
      if (this.tails.size >= this.options.maxOpenFiles) {
        this.metrics.filesRefused.inc({ reason: 'max_open_files' });
        this.once.warn('max-open-files', { maxOpenFiles: this.options.maxOpenFiles, path: c.path }, 'maxOpenFiles reached; matching files wait until others are closed');
        continue;
      }
      await this.openFile(c, entry, now);
      if (!this.isRunning(runId)) return;
    }
    this.initialPass = false;
    const inUse = (e: CheckpointEntry): boolean => this.tails.get(inodeKey(e))?.entry === e;
    this.store.forgetExpired(now, inUse);
    let lag = 0;
    for (const e of this.store.values()) if (e.seenAt === now || inUse(e)) lag += Math.max(0, e.size - e.offset);
    this.metrics.lagBytes.set(lag);
    this.metrics.filesWatched.set(found.size + rotatedOpen);
    this.metrics.openFiles.set(this.tails.size);
  }

  /** Opens a matching file, deciding from its checkpoint entry (if any) where to start. */
  private async openFile(c: Candidate, entry: CheckpointEntry | undefined, now: number): Promise<void> {
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
      // The path was replaced between the directory scan and the open: the next scan sees the new file.
      if (inodeKey(inode) !== inodeKey(c)) {
        await handle.close();
        return;
      }
      const size = Number(st.size);
      const available = await readPrefix(handle, this.prefixBuf);
      let use: CheckpointEntry;
      let offset = 0;
      if (entry !== undefined) {
        const verdict = judgeReopen(entry, compareFingerprint(entry.fp, this.prefixBuf, available), size, inode.birthtimeMs);
        if (verdict.action === 'resume') {
          use = entry;
          offset = verdict.offset;
        } else {
          this.metrics.rotations.inc({ kind: verdict.kind });
          use = newEntry(inode, c.path, verdict.generation, 0, now);
        }
      } else {
        use = newEntry(inode, c.path, 0, 0, now);
      }
      if (available > use.fp.len) use.fp = fingerprintOf(this.prefixBuf, available, this.options.fingerprintBytes);
      use.size = size;
      use.seenAt = now;
      if (!this.store.set(use, (e) => this.tails.get(inodeKey(e))?.entry === e)) {
        this.metrics.filesRefused.inc({ reason: 'max_files' });
        await handle.close();
        return;
      }
      const file = new TailedFile(inodeKey(inode), inode, handle, c.path, use, offset, this.settings[c.input]);
      file.checkedSize = size;
      this.tails.set(file.key, file);
      this.dirty = true;
    } catch (err) {
      await handle.close().catch(() => undefined);
      this.metrics.filesRefused.inc({ reason: 'open_error' });
      this.once.warn(`open:${(err as NodeJS.ErrnoException).code}`, { path: c.path, err: errorMessage(err) }, 'cannot read a log file; retrying on the next discovery');
    }
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
      // Start after the last newline, so a line being written is read whole.
      const tailLen = Math.min(size, this.readBuf.length);
      const { bytesRead } = await handle.read(this.readBuf, 0, tailLen, size - tailLen);
      const nl = this.readBuf.subarray(0, bytesRead).lastIndexOf(0x0a);
      const offset = nl >= 0 ? size - tailLen + nl + 1 : size;
      const entry = newEntry(inode, c.path, 0, offset, now);
      entry.fp = fingerprintOf(this.prefixBuf, available, this.options.fingerprintBytes);
      entry.size = size;
      if (this.store.set(entry, (e) => this.tails.get(inodeKey(e))?.entry === e)) this.dirty = true;
      else this.metrics.filesRefused.inc({ reason: 'max_files' });
    } catch (err) {
      this.once.warn('register-at-end', { path: c.path, err: errorMessage(err) }, 'cannot read a log file; retrying on the next discovery');
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  /** An open file's size and leading bytes: truncated or rewritten in place means start over. */
  private async checkContent(file: TailedFile): Promise<void> {
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
    let available = await readPrefix(handle, this.prefixBuf).catch(() => 0);
    const prefix = compareFingerprint(file.entry.fp, this.prefixBuf, available);
    if (judgeOpen(file.readOffset, size, prefix) === 'truncate') {
      this.metrics.rotations.inc({ kind: 'truncate' });
      this.seal(file);
      const entry = newEntry(file.inode, file.path, file.entry.generation + 1, 0, Date.now());
      available = await readPrefix(handle, this.prefixBuf).catch(() => 0);
      entry.fp = fingerprintOf(this.prefixBuf, available, this.options.fingerprintBytes);
      entry.size = size;
      this.store.set(entry, () => true);
      file.restart(entry, 0);
      this.dirty = true;
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
    await file.close();
    this.tails.delete(file.key);
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

function newEntry(inode: Inode, filePath: string, generation: number, offset: number, now: number): CheckpointEntry {
  return { dev: inode.dev, ino: inode.ino, birthtimeMs: inode.birthtimeMs, fileId: undefined, generation, fp: { len: 0, hash: '' }, offset, path: filePath, seenAt: now, size: 0 };
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
