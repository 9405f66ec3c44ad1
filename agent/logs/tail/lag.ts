/**
 * How long a file's oldest unacknowledged byte has been there. Each discovery pass notes the
 * file's size; the byte at the acknowledged offset appeared at the first pass that saw the file
 * longer than that offset. Precise to one discovery interval; for bytes that were already there
 * when the agent first saw the file, it counts from then.
 */

/** Sizes remembered per file; past this, later growth is not noted until older bytes are acknowledged. */
const MAX_POINTS = 512;

export class LagClock {
  private readonly sizes: number[] = [];
  private readonly at: number[] = [];

  /** A pass saw the file at `size` with `offset` acknowledged. */
  note(size: number, offset: number, now: number): void {
    this.forget(offset);
    const last = this.sizes.length > 0 ? this.sizes[this.sizes.length - 1] : offset;
    if (size > last && this.sizes.length < MAX_POINTS) {
      this.sizes.push(size);
      this.at.push(now);
    }
  }

  /** Seconds the byte at `offset` has waited (0 when nothing is unacknowledged). */
  seconds(offset: number, size: number, now: number): number {
    if (size <= offset) return 0;
    this.forget(offset);
    return this.at.length > 0 ? Math.max(0, (now - this.at[0]) / 1000) : 0;
  }

  private forget(offset: number): void {
    let n = 0;
    while (n < this.sizes.length && this.sizes[n] <= offset) n++;
    if (n > 0) {
      this.sizes.splice(0, n);
      this.at.splice(0, n);
    }
  }
}
