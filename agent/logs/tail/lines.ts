/**
 * Splits the bytes of one file into lines. Chunks come from a read buffer that is reused, so
 * only the unterminated tail between chunks is copied, into a per-file buffer that never grows
 * past `maxLineBytes`. A line longer than that keeps its first `maxLineBytes` bytes (cut on a
 * character boundary) and is flagged truncated; the rest up to its newline is skipped. A line is
 * only handed out once its newline has been read: the last line of a live file may still be
 * being written. Lines are found in the raw bytes and decoded by the file's codec (encoding.ts):
 * a character split across two reads is decoded once its line is whole.
 */
import { isNewline16, isReturn16, UTF8, utf8Cut, type Codec } from './encoding.ts';

export { utf8Cut };

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
  /** The last byte pushed: the first half of a UTF-16 newline split across two reads. */
  private lastByte = -1;
  private current: Codec = UTF8;
  /** Node's name for a one-byte codec's decoding, called directly on the hot path. */
  private byteEncoding: 'utf8' | 'latin1' = 'utf8';

  /** How the file's bytes are decoded; set before the first push. */
  get codec(): Codec {
    return this.current;
  }

  set codec(codec: Codec) {
    this.current = codec;
    this.byteEncoding = codec.name === 'latin1' ? 'latin1' : 'utf8';
  }

  constructor(maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes;
  }

  /** Whether the line held here is whole characters (a writer may be halfway through one). */
  get pendingComplete(): boolean {
    if (this.partialStart < 0) return false;
    const buf = this.partial as Buffer;
    if (this.overflow) return this.codec.unit === 1 || (this.partialLen & 1) === 0;
    return this.codec.cut(buf, 0, this.partialLen) === this.partialLen;
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
    if (this.codec.unit === 2) return this.pushWide(chunk, n, offset, sink);
    const view = chunk.subarray(0, n);
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
      if (this.line(view, pos, nl, 1, offset, sink)) truncated++;
      pos = nl + 1;
    }
    return { lines, truncated };
  }

  /**
   * UTF-16: a line ends at U+000A on an even file offset (a file starts at 0, and its byte order
   * mark is one code unit). The newline's two bytes may come in two reads.
   */
  private pushWide(chunk: Buffer, n: number, offset: number, sink: LineSink): { lines: number; truncated: number } {
    const view = chunk.subarray(0, n);
    const be = this.codec.bigEndian;
    let pos = 0;
    let lines = 0;
    let truncated = 0;
    if (n === 0) return { lines, truncated };
    // The first byte of a newline ended the previous read (it is the held line's last byte).
    if (this.partialStart >= 0 && ((offset - 1) & 1) === 0 && this.lastByte === (be ? 0 : 0x0a) && view[0] === (be ? 0x0a : 0)) {
      lines++;
      if (!this.overflow) this.partialLen--;
      if (this.emitHeld(offset + 1, sink)) truncated++;
      pos = 1;
    }
    let from = pos;
    while (pos < n) {
      let nl = -1;
      while (from < n) {
        const i = view.indexOf(0x0a, from);
        if (i < 0) break;
        // Little-endian: 0a 00 at an even offset; big-endian: 00 0a, its 0a at an odd one.
        const start = be ? i - 1 : i;
        if (((offset + start) & 1) !== 0 || start < pos || start + 2 > n || !isNewline16(view, start, be)) {
          from = i + 1;
          continue;
        }
        nl = start;
        break;
      }
      if (nl === -1) {
        this.append(view, pos, n, offset + pos);
        break;
      }
      lines++;
      if (this.line(view, pos, nl, 2, offset, sink)) truncated++;
      pos = nl + 2;
      from = pos;
    }
    this.lastByte = view[n - 1];
    return { lines, truncated };
  }

  /**
   * Hands out the line whose last bytes are `view[pos, nl)`, ended by a newline of `nlBytes`
   * bytes (`view[0]` is at file offset `offset`). Returns whether it was cut at maxLineBytes.
   */
  private line(view: Buffer, pos: number, nl: number, nlBytes: number, offset: number, sink: LineSink): boolean {
    const end = offset + nl + nlBytes;
    if (this.partialStart >= 0) {
      this.append(view, pos, nl, offset + pos);
      return this.emitHeld(end, sink);
    }
    const codec = this.codec;
    if (nl - pos > this.maxLineBytes) {
      sink(codec.decode(view, pos, codec.cut(view, pos, pos + this.maxLineBytes)), offset + pos, end, true);
      return true;
    }
    sink(this.decodeLine(view, pos, nl), offset + pos, end, false);
    return false;
  }

  /** Hands out the held line as ending at `end`; returns whether it was cut. */
  private emitHeld(end: number, sink: LineSink): boolean {
    const buf = this.partial as Buffer;
    const over = this.overflow;
    const text = over ? this.codec.decode(buf, 0, this.codec.cut(buf, 0, this.partialLen)) : this.decodeLine(buf, 0, this.partialLen);
    const start = this.partialStart;
    this.clear();
    sink(text, start, end, over);
    return over;
  }

  private decodeLine(buf: Buffer, start: number, end: number): string {
    if (this.codec.unit === 2) {
      if (end - start >= 2 && isReturn16(buf, end - 2, this.codec.bigEndian)) end -= 2;
      return this.current.decode(buf, start, end);
    }
    if (end > start && buf[end - 1] === 0x0d) end--;
    return buf.toString(this.byteEncoding, start, end);
  }

  /**
   * Hands out the unterminated line held here as if it ended at `end` (a rotated file that
   * will not grow any more). Returns whether there was one.
   */
  flush(end: number, sink: LineSink): boolean {
    if (this.partialStart < 0) return false;
    this.emitHeld(end, sink);
    return true;
  }

  /** Forgets the held tail (the file is being re-read from another offset). */
  reset(): void {
    this.clear();
    this.partial = undefined;
    this.lastByte = -1;
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
