/**
 * Splits the bytes of one file into lines. Chunks come from a read buffer that is reused, so
 * only the unterminated tail between chunks is copied, into a per-file buffer that never grows
 * past `maxLineBytes`. A line longer than that keeps its first `maxLineBytes` bytes (cut on a
 * character boundary) and is flagged truncated; the rest up to its newline is skipped. A line is
 * only handed out once its newline has been read: the last line of a live file may still be
 * being written.
 */

/** Receives one line: its text without the newline (and without a trailing \r), where it starts, and the offset after its newline. */
export type LineSink = (text: string, offset: number, end: number, truncated: boolean) => void;

const INITIAL_PARTIAL = 256;
/** A held-tail buffer grown past this for one long line is released once that line is out. */
const KEEP_PARTIAL = 16 * 1024;

export class LineSplitter {
  private readonly maxLineBytes: number;
  private partial: Buffer | undefined;
  private partialLen = 0;
  private partialStart = -1;
  private overflow = false;

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes;
  }

  /** File offset where the unterminated line held here starts, or -1 when none is held. */
  get pendingStart(): number {
    return this.partialStart;
  }

  /**
   * Splits `chunk[0, n)`, which starts at file offset `offset`, handing each complete line to
   * `sink`. Returns the number of lines and how many of them were truncated.
   */
  push(chunk: Buffer, n: number, offset: number, sink: LineSink): { lines: number; truncated: number } {
    const view = chunk.subarray(0, n);
    const max = this.maxLineBytes;
    let pos = 0;
    let lines = 0;
    let truncated = 0;
    while (pos < n) {
      const nl = view.indexOf(0x0a, pos);
      if (nl === -1) {
        this.append(view, pos, n, offset + pos);
        break;
      }
      lines++;
      if (this.partialStart < 0) {
        if (nl - pos > max) {
          truncated++;
          sink(view.toString('utf8', pos, utf8Cut(view, pos, pos + max)), offset + pos, offset + nl + 1, true);
        } else {
          sink(decodeLine(view, pos, nl), offset + pos, offset + nl + 1, false);
        }
      } else {
        this.append(view, pos, nl, offset + pos);
        const buf = this.partial as Buffer;
        const over = this.overflow;
        if (over) truncated++;
        const text = over ? buf.toString('utf8', 0, utf8Cut(buf, 0, this.partialLen)) : decodeLine(buf, 0, this.partialLen);
        const start = this.partialStart;
        this.clear();
        sink(text, start, offset + nl + 1, over);
      }
      pos = nl + 1;
    }
    return { lines, truncated };
  }

  /**
   * Hands out the unterminated line held here as if it ended at `end` (a rotated file that
   * will not grow any more). Returns whether there was one.
   */
  flush(end: number, sink: LineSink): boolean {
    if (this.partialStart < 0) return false;
    const buf = this.partial as Buffer;
    const over = this.overflow;
    const text = over ? buf.toString('utf8', 0, utf8Cut(buf, 0, this.partialLen)) : decodeLine(buf, 0, this.partialLen);
    const start = this.partialStart;
    this.clear();
    sink(text, start, end, over);
    return true;
  }

  /** Forgets the held tail (the file is being re-read from another offset). */
  reset(): void {
    this.clear();
    this.partial = undefined;
  }

  private clear(): void {
    this.partialLen = 0;
    this.partialStart = -1;
    this.overflow = false;
    if (this.partial !== undefined && this.partial.length > KEEP_PARTIAL) this.partial = undefined;
  }

  private append(src: Buffer, start: number, end: number, offset: number): void {
    if (this.partialStart < 0) this.partialStart = offset;
    const room = this.maxLineBytes - this.partialLen;
    const want = end - start;
    if (want > room) this.overflow = true;
    const take = Math.min(room, want);
    if (take <= 0) return;
    const need = this.partialLen + take;
    if (this.partial === undefined || this.partial.length < need) {
      let size = Math.max(INITIAL_PARTIAL, this.partial?.length ?? 0);
      while (size < need) size *= 2;
      const grown = Buffer.allocUnsafe(Math.min(size, this.maxLineBytes));
      if (this.partial !== undefined) this.partial.copy(grown, 0, 0, this.partialLen);
      this.partial = grown;
    }
    src.copy(this.partial, this.partialLen, start, start + take);
    this.partialLen = need;
  }
}

function decodeLine(buf: Buffer, start: number, end: number): string {
  if (end > start && buf[end - 1] === 0x0d) end--;
  return buf.toString('utf8', start, end);
}

/** The largest end ≤ `end` that does not split a UTF-8 character begun at or after `start`. */
export function utf8Cut(buf: Buffer, start: number, end: number): number {
  let i = end - 1;
  let continuation = 0;
  while (i >= start && (buf[i] & 0xc0) === 0x80 && continuation < 3) {
    i--;
    continuation++;
  }
  if (i < start) return end;
  const lead = buf[i];
  const width = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return i + width > end ? i : end;
}
