/**
 * A sink's disk queue on shared/spool.ts: each accepted batch is one spool record (its NDJSON as
 * received), appended with an fsync before the agent is acknowledged (fsync "batch"), read ahead
 * by the runner, acknowledged once delivered, read again after a restart when it was not.
 *
 * Depth in events and bytes counts what is not acknowledged; after a restart it is counted once
 * by reading the backlog through (a second of disk reading per gigabyte). Room is judged on the
 * spool's disk use (delivered records go with their segment; once all are delivered, the segment
 * being written goes too) plus the appends under way, so parallel accepts cannot overfill it.
 */
import { Spool, SPOOL_FRAME_BYTES, type SpoolFsync, type SpoolPosition } from '../../shared/spool.ts';
import type { Logger } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { countEvents } from '../logs/event.ts';
import { releaseBuffer } from '../../shared/release.ts';
import { QueueFullError, type QueuedBatch, type SinkQueue } from './queue.ts';

const MAX_SEGMENT_BYTES = 32 * 1024 * 1024;
const READ_RECORDS = 1024;
const SCAN_BYTES = 16 * 1024 * 1024;
/** Batches whose decoded fields are kept until read (the reader normally follows the writer closely). */
const MAX_DECODED = 64;
/**
 * Bytes of just-queued batches the spool keeps for the runner, which then takes them from memory
 * rather than reading and checksumming them from disk (a few batches; the reader normally
 * follows the writer closely). Those read after a restart or a rewind come from disk.
 */
const KEEP_FOR_READER_BYTES = 8 * 1024 * 1024;

interface SpoolBatch extends QueuedBatch {
  readonly position: SpoolPosition;
  /** Given back on ack: read from disk under releaseOnAck, or appended with `release` and handed over from memory. */
  readonly release?: boolean;
}

export interface SpoolQueueOptions {
  dir: string;
  /** The sink's name: the spool is "sink_<name>" in plumb_spool_* metrics. */
  sink: string;
  maxBytes: number;
  /** Fraction of maxBytes above which hasRoom() says no (default 1: only when full). */
  highWater?: number;
  fsync?: SpoolFsync;
  /**
   * The sink's runner is the last holder of what it reads (the log sinks write a batch before
   * they return): a batch read back from disk, its own copy, is given back on ack (shared/release.ts).
   */
  releaseOnAck?: boolean;
  telemetry: Telemetry;
  log: Logger;
}

export class SpoolQueue implements SinkQueue {
  readonly maxBytes: number;
  private readonly spool: Spool;
  private unackedEvents = 0;
  private unackedBytes = 0;
  /** Read and not yet acknowledged, oldest first. */
  private inflight: SpoolBatch[] = [];
  /** Disk bytes of appends under way. */
  private reserved = 0;
  /** The ingest's decoded fields of batches not read yet, by spool position; dropped when read. */
  private readonly decoded = new Map<string, { decoded: unknown; events: number }>();
  /**
   * The same, by the appended buffer, from before the append: the spool hands a batch it kept in
   * memory to the reader as soon as it is written, possibly before append() has its position.
   */
  private readonly pending = new WeakMap<Buffer, { decoded: unknown; events: number }>();
  /** Buffers appended and not read yet: what read() gets from memory rather than from disk. */
  private readonly appended = new WeakSet<Buffer>();
  /** Of those, the ones appended with `release`. */
  private readonly releasable = new WeakSet<Buffer>();
  private readonly highWaterBytes: number;
  private readonly releaseOnAck: boolean;

  private constructor(spool: Spool, maxBytes: number, highWater: number, releaseOnAck: boolean) {
    this.spool = spool;
    this.maxBytes = maxBytes;
    this.highWaterBytes = Math.floor(maxBytes * highWater);
    this.releaseOnAck = releaseOnAck;
  }

  static async open(o: SpoolQueueOptions): Promise<SpoolQueue> {
    const segmentBytes = Math.max(1024, Math.min(MAX_SEGMENT_BYTES, Math.floor(o.maxBytes / 4)));
    const spool = await Spool.open(
      {
        dir: o.dir,
        name: `sink_${o.sink}`,
        maxBytes: o.maxBytes,
        segmentBytes: Math.min(segmentBytes, o.maxBytes),
        maxRecordBytes: Math.min(o.maxBytes - SPOOL_FRAME_BYTES, 0x7fff_ffff),
        fsync: o.fsync ?? 'batch',
        keepForReaderBytes: KEEP_FOR_READER_BYTES,
      },
      { telemetry: o.telemetry, log: o.log },
    );
    const q = new SpoolQueue(spool, o.maxBytes, o.highWater ?? 1, o.releaseOnAck === true);
    try {
      await q.countBacklog();
    } catch (err) {
      await spool.close().catch(() => undefined);
      throw err;
    }
    if (q.unackedEvents > 0) o.log.info({ sink: o.sink, events: q.unackedEvents, bytes: q.unackedBytes }, 'sink queue holds items from before the restart');
    return q;
  }

  get events(): number {
    return this.unackedEvents;
  }

  get bytes(): number {
    return this.unackedBytes;
  }

  /**
   * A batch is taken while what waits for the sink is at or below the high-water mark and the
   * batch fits in maxBytes of disk. The mark is judged on unacknowledged bytes, not on disk use:
   * delivered records stay on disk until an append rolls their segment, and judging on disk use
   * could refuse every append, and so that roll, for good.
   */
  hasRoom(bytes: number): boolean {
    return !this.aboveHighWater() && this.spool.bytes + this.reserved + bytes + SPOOL_FRAME_BYTES <= this.maxBytes;
  }

  aboveHighWater(): boolean {
    return this.unackedBytes + this.reserved > this.highWaterBytes;
  }

  async append(data: Buffer, events: number, decoded?: unknown, release = false): Promise<void> {
    // read before the append: the reader may take, deliver and release the batch before it returns
    const bytes = data.length;
    const size = bytes + SPOOL_FRAME_BYTES;
    this.reserved += size;
    let ok: boolean;
    const positions: SpoolPosition[] | undefined = decoded !== undefined && this.decoded.size < MAX_DECODED ? [] : undefined;
    const entry = decoded === undefined ? undefined : { decoded, events };
    if (entry !== undefined) this.pending.set(data, entry);
    this.appended.add(data);
    if (release) this.releasable.add(data);
    try {
      ok = await this.spool.append([data], positions);
    } finally {
      this.reserved -= size;
    }
    if (!ok) {
      this.pending.delete(data);
      this.appended.delete(data);
      this.releasable.delete(data);
      throw new QueueFullError(`the disk queue of sink ${this.spool.name} is full (${this.spool.bytes} of ${this.maxBytes} bytes) or the disk is`);
    }
    // not when the reader took the batch already (from memory, before this continued)
    if (entry !== undefined && this.pending.has(data) && positions !== undefined && positions.length === 1) this.decoded.set(positionKey(positions[0]), entry);
    this.unackedEvents += events;
    this.unackedBytes += bytes;
    // Not kept for the reader (who reads it back from disk) and not read yet: nobody holds it.
    if (this.releasable.has(data) && !this.spool.keeps(data)) {
      this.appended.delete(data);
      this.releasable.delete(data);
      releaseBuffer(data);
    }
  }

  async read(maxBytes: number): Promise<QueuedBatch[]> {
    const records = await this.spool.read({ maxRecords: READ_RECORDS, maxBytes });
    const out: SpoolBatch[] = new Array(records.length);
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      let known = this.pending.get(r.data);
      if (known !== undefined) this.pending.delete(r.data);
      if (this.decoded.size > 0) {
        known ??= this.decoded.get(positionKey(r.position));
        this.decoded.delete(positionKey(r.position));
      }
      const release = this.appended.delete(r.data) ? this.releasable.delete(r.data) : this.releaseOnAck;
      if (known !== undefined) {
        out[i] = { data: r.data, events: known.events, decoded: known.decoded, position: r.position, release };
      } else {
        out[i] = { data: r.data, events: countEvents(r.data), position: r.position, release };
      }
    }
    for (const b of out) this.inflight.push(b);
    return out;
  }

  async ack(through: QueuedBatch): Promise<void> {
    const b = through as SpoolBatch;
    await this.spool.ack(b.position);
    const i = this.inflight.indexOf(b);
    for (const done of this.inflight.splice(0, i + 1)) {
      this.unackedEvents -= done.events;
      this.unackedBytes -= done.data.length;
      // delivered, and nothing else holds it: given back now rather than at a major GC
      if (done.release === true) releaseBuffer(done.data);
    }
  }

  async rewind(): Promise<void> {
    this.inflight = [];
    this.spool.rewind();
  }

  waitForData(signal: AbortSignal): Promise<void> {
    return this.spool.waitForData(signal);
  }

  close(): Promise<void> {
    this.decoded.clear();
    return this.spool.close();
  }

  /** Counts what a previous run left unacknowledged, then puts the reader back at its start. */
  private async countBacklog(): Promise<void> {
    if (this.spool.records === 0) return;
    for (;;) {
      const records = await this.spool.read({ maxRecords: READ_RECORDS, maxBytes: SCAN_BYTES });
      if (records.length === 0) break;
      for (const r of records) {
        this.unackedEvents += countEvents(r.data);
        this.unackedBytes += r.data.length;
      }
    }
    this.spool.rewind();
  }
}

function positionKey(p: SpoolPosition): string {
  return `${p.segment}:${p.offset}`;
}
