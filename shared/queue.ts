/**
 * A bounded FIFO measured in items and bytes. When full it refuses (returns false) and the
 * caller decides: block upstream, answer 429, or drop and count. It never grows past its limits.
 */
export class BoundedQueue<T> {
  private items: { value: T; bytes: number }[] = [];
  private head = 0;
  private totalBytes = 0;
  private waiters: (() => void)[] = [];
  readonly maxItems: number;
  readonly maxBytes: number;

  constructor(limits: { maxItems: number; maxBytes?: number }) {
    this.maxItems = limits.maxItems;
    this.maxBytes = limits.maxBytes ?? Infinity;
  }

  get length(): number {
    return this.items.length - this.head;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Adds the item if it fits; false means the queue is full and nothing was added. */
  push(value: T, bytes = 0): boolean {
    if (this.length >= this.maxItems || (this.length > 0 && this.totalBytes + bytes > this.maxBytes)) return false;
    this.items.push({ value, bytes });
    this.totalBytes += bytes;
    const w = this.waiters;
    if (w.length > 0) {
      this.waiters = [];
      for (const wake of w) wake();
    }
    return true;
  }

  /** Puts an item back at the front (a failed send that will be retried first). Ignores limits. */
  unshift(value: T, bytes = 0): void {
    if (this.head > 0) {
      this.head--;
      this.items[this.head] = { value, bytes };
    } else {
      this.items.unshift({ value, bytes });
    }
    this.totalBytes += bytes;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const entry = this.items[this.head];
    this.items[this.head] = undefined as never;
    this.head++;
    this.totalBytes -= entry.bytes;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return entry.value;
  }

  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head].value : undefined;
  }

  /** Resolves when an item is available (immediately if one is). */
  async waitForItem(signal?: AbortSignal): Promise<void> {
    if (this.length > 0) return;
    await new Promise<void>((resolve) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.push(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }
}
