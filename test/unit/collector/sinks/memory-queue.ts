/** An in-memory SinkQueue for tests of the runner's logic (the disk queue has its own tests). */
import type { QueuedBatch, SinkQueue } from '../../../../collector/sinks/queue.ts';

interface Entry extends QueuedBatch {
  seq: number;
}

export class MemoryQueue implements SinkQueue {
  readonly maxBytes: number;
  private entries: Entry[] = [];
  private acked = 0;
  private readPos = 0;
  private seq = 0;
  private waiters = new Set<() => void>();
  closed = false;
  /** Makes the next appends fail (a broken disk). */
  failAppends = false;

  constructor(maxBytes = 1 << 30) {
    this.maxBytes = maxBytes;
  }

  get bytes(): number {
    return this.entries.reduce((n, e) => n + e.data.length, 0);
  }

  get events(): number {
    return this.entries.reduce((n, e) => n + e.events, 0);
  }

  hasRoom(bytes: number): boolean {
    return this.bytes + bytes <= this.maxBytes;
  }

  async append(data: Buffer, events: number): Promise<void> {
    if (this.failAppends) throw new Error('EIO: simulated');
    this.entries.push({ data, events, seq: ++this.seq });
    for (const w of [...this.waiters]) w();
  }

  async read(maxBytes: number): Promise<QueuedBatch[]> {
    const out: Entry[] = [];
    let bytes = 0;
    while (this.readPos < this.entries.length) {
      const e = this.entries[this.readPos];
      if (out.length > 0 && bytes + e.data.length > maxBytes) break;
      out.push(e);
      bytes += e.data.length;
      this.readPos++;
    }
    return out;
  }

  async ack(through: QueuedBatch): Promise<void> {
    const i = this.entries.indexOf(through as Entry);
    if (i < 0) throw new Error('ack of an unknown batch');
    this.acked += i + 1;
    this.entries = this.entries.slice(i + 1);
    this.readPos = Math.max(0, this.readPos - (i + 1));
  }

  async rewind(): Promise<void> {
    this.readPos = 0;
  }

  waitForData(signal: AbortSignal): Promise<void> {
    if (this.readPos < this.entries.length || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Batches acknowledged so far. */
  get ackedBatches(): number {
    return this.acked;
  }
}
