/**
 * Character encodings of log files, converted to JavaScript strings (UTF-8 downstream) when a
 * line is decoded. Offsets stay file bytes: lines are found in the raw bytes, so a checkpoint
 * means the same thing whatever the encoding. UTF-8 and latin1 end lines with the byte 0x0a;
 * UTF-16 with the code unit U+000A, found only at even offsets (after the byte order mark), so a
 * character whose byte happens to be 0x0a (U+0A00–U+0AFF, U+xx0A) does not end a line.
 */
import type { LogEncoding } from './config.ts';

export interface Codec {
  readonly name: 'utf-8' | 'latin1' | 'utf-16le' | 'utf-16be';
  /** Bytes per code unit: 1 (a line ends at the byte 0x0a) or 2 (UTF-16). */
  readonly unit: 1 | 2;
  readonly bigEndian: boolean;
  /** The text of `buf[start, end)`; a trailing half code unit is left out. */
  decode(buf: Buffer, start: number, end: number): string;
  /** The largest end ≤ `end` that does not split a character begun at or after `start`. */
  cut(buf: Buffer, start: number, end: number): number;
}

export const UTF8: Codec = {
  name: 'utf-8',
  unit: 1,
  bigEndian: false,
  decode: (buf, start, end) => buf.toString('utf8', start, end),
  cut: utf8Cut,
};

const LATIN1: Codec = {
  name: 'latin1',
  unit: 1,
  bigEndian: false,
  decode: (buf, start, end) => buf.toString('latin1', start, end),
  cut: (_buf, _start, end) => end,
};

const UTF16LE: Codec = {
  name: 'utf-16le',
  unit: 2,
  bigEndian: false,
  decode: (buf, start, end) => buf.toString('utf16le', start, end - ((end - start) & 1)),
  cut: (buf, start, end) => utf16Cut(buf, start, end, false),
};

const UTF16BE: Codec = {
  name: 'utf-16be',
  unit: 2,
  bigEndian: true,
  decode: (buf, start, end) => {
    const len = (end - start) & ~1;
    // Node decodes only little-endian UTF-16: swap a copy (the read buffer is reused).
    const copy = Buffer.from(buf.subarray(start, start + len));
    return copy.swap16().toString('utf16le');
  },
  cut: (buf, start, end) => utf16Cut(buf, start, end, true),
};

/**
 * The codec for `encoding`; for "utf-16", by the byte order mark in the file's first bytes
 * (`head`), little-endian without one (as Windows writes it). Undefined while fewer than two
 * bytes are known for "utf-16".
 */
export function codecFor(encoding: LogEncoding, head: Buffer | undefined): Codec | undefined {
  switch (encoding) {
    case 'utf-8':
      return UTF8;
    case 'latin1':
      return LATIN1;
    case 'utf-16le':
      return UTF16LE;
    case 'utf-16be':
      return UTF16BE;
    case 'utf-16':
      if (head === undefined || head.length < 2) return undefined;
      return head[0] === 0xfe && head[1] === 0xff ? UTF16BE : UTF16LE;
  }
}

/**
 * Where the line that ends `buf[0, n)`'s last complete line ends, as an index into `buf`
 * (`base` is the file offset of `buf[0]`), or -1 when `buf` holds no line end.
 */
export function lastLineEnd(codec: Codec, buf: Buffer, n: number, base: number): number {
  if (codec.unit === 1) {
    const nl = buf.subarray(0, n).lastIndexOf(0x0a);
    return nl < 0 ? -1 : nl + 1;
  }
  for (let i = n - 2; i >= 0; i--) {
    if ((base + i) % 2 === 0 && isNewline16(buf, i, codec.bigEndian)) return i + 2;
  }
  return -1;
}

/** Whether `buf[i, i+2)` is U+000A. */
export function isNewline16(buf: Buffer, i: number, bigEndian: boolean): boolean {
  return bigEndian ? buf[i] === 0 && buf[i + 1] === 0x0a : buf[i] === 0x0a && buf[i + 1] === 0;
}

/** Whether `buf[i, i+2)` is U+000D. */
export function isReturn16(buf: Buffer, i: number, bigEndian: boolean): boolean {
  return bigEndian ? buf[i] === 0 && buf[i + 1] === 0x0d : buf[i] === 0x0d && buf[i + 1] === 0;
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

/** The largest end ≤ `end` on a code unit boundary that does not split a surrogate pair. */
function utf16Cut(buf: Buffer, start: number, end: number, bigEndian: boolean): number {
  let e = end - ((end - start) & 1);
  if (e - start >= 2) {
    const hi = bigEndian ? buf[e - 2] : buf[e - 1];
    // A high surrogate (D800–DBFF) as the last unit: its pair is past the cut.
    if (hi >= 0xd8 && hi <= 0xdb) e -= 2;
  }
  return e;
}
