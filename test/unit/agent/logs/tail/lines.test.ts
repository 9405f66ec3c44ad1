import { describe, expect, it } from 'vitest';
import { LineSplitter, utf8Cut } from '../../../../../agent/logs/tail/lines.ts';
import { codecFor, type Codec } from '../../../../../agent/logs/tail/encoding.ts';

type Line = [text: string, offset: number, end: number, truncated: boolean];

/** Feeds `text` to a splitter in chunks of `size` bytes through one reused buffer, as the tailer does. */
function split(text: string | Buffer, size: number, max = 1024, codec?: Codec): { lines: Line[]; splitter: LineSplitter; offset: number } {
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  const splitter = new LineSplitter(max);
  if (codec !== undefined) splitter.codec = codec;
  const lines: Line[] = [];
  const buf = Buffer.alloc(size);
  let offset = 0;
  while (offset < bytes.length) {
    const n = bytes.copy(buf, 0, offset, offset + size);
    // Stale bytes past n must never be read.
    buf.fill(0x0a, n);
    splitter.push(buf, n, offset, (t, o, e, tr) => lines.push([t, o, e, tr]));
    offset += n;
  }
  return { lines, splitter, offset };
}

describe('LineSplitter', () => {
  it('gives the same lines and offsets whatever the chunk size', () => {
    const text = 'alpha\nbeta\r\n\ngamma delta\nlast';
    const expected: Line[] = [
      ['alpha', 0, 6, false],
      ['beta', 6, 12, false],
      ['', 12, 13, false],
      ['gamma delta', 13, 25, false],
    ];
    for (const size of [1, 2, 3, 5, 7, 64]) {
      const { lines, splitter } = split(text, size);
      expect(lines, `chunk size ${size}`).toEqual(expected);
      expect(splitter.pendingStart).toBe(25);
    }
  });

  it('keeps an unterminated line until its newline arrives, or until flushed', () => {
    const { lines, splitter, offset } = split('one\ntw', 4);
    expect(lines.map((l) => l[0])).toEqual(['one']);
    const flushed: Line[] = [];
    expect(splitter.flush(offset, (t, o, e, tr) => flushed.push([t, o, e, tr]))).toBe(true);
    expect(flushed).toEqual([['tw', 4, 6, false]]);
    expect(splitter.pendingStart).toBe(-1);
    expect(splitter.flush(offset, () => undefined)).toBe(false);
  });

  it('cuts lines longer than the limit, keeps the rest of the stream aligned, and flags them', () => {
    const long = 'x'.repeat(50);
    for (const size of [4, 16, 1000]) {
      const { lines } = split(`a\n${long}\nb\n`, size, 10);
      expect(lines, `chunk size ${size}`).toEqual([
        ['a', 0, 2, false],
        ['x'.repeat(10), 2, 53, true],
        ['b', 53, 55, false],
      ]);
    }
  });

  it('never cuts a multi-byte character in half', () => {
    const line = 'ab' + 'é'.repeat(10); // é is 2 bytes
    for (const size of [3, 100]) {
      const { lines } = split(`${line}\n`, size, 5);
      expect(lines[0][0]).toBe('abé');
      expect(lines[0][3]).toBe(true);
    }
  });

  it('handles many lines in one chunk and lines spanning many chunks', () => {
    const many = Array.from({ length: 1000 }, (_, i) => `line ${i}`).join('\n') + '\n';
    expect(split(many, 65536).lines.length).toBe(1000);
    const spanning = 'y'.repeat(700) + '\n';
    expect(split(spanning, 10, 1024).lines).toEqual([['y'.repeat(700), 0, 701, false]]);
  });
});

describe('utf8Cut', () => {
  it('backs off to the start of a character that does not fit', () => {
    const b = Buffer.from('a€b'); // € is 3 bytes: e2 82 ac
    expect(utf8Cut(b, 0, 1)).toBe(1);
    expect(utf8Cut(b, 0, 2)).toBe(1);
    expect(utf8Cut(b, 0, 3)).toBe(1);
    expect(utf8Cut(b, 0, 4)).toBe(4);
    expect(utf8Cut(b, 0, 5)).toBe(5);
  });
});

describe('LineSplitter: UTF-16', () => {
  // U+010A and U+0A0A have a 0x0a byte; U+1F600 is a surrogate pair.
  const lines = ['Ċ ਊ', '😀 pair', '', 'crlf', 'last'];
  const text = lines.slice(0, 4).join('\n') + '\r\n' + lines[4] + '\n';
  for (const be of [false, true]) {
    it(`${be ? 'big' : 'little'}-endian: the same lines and offsets whatever the chunk size, odd ones included`, () => {
      const le = Buffer.from(text, 'utf16le');
      const bytes = be ? Buffer.from(le).swap16() : le;
      const codec = codecFor(be ? 'utf-16be' : 'utf-16le', undefined) as Codec;
      const want = split(bytes, bytes.length, 1024, codec).lines;
      expect(want.map((l) => l[0])).toEqual(lines);
      expect(want[1][1]).toBe(Buffer.byteLength('Ċ ਊ\n', 'utf16le'));
      for (let size = 1; size <= 9; size++) expect(split(bytes, size, 1024, codec).lines).toEqual(want);
    });
  }

  it('cuts a long line on a code unit boundary, never inside a surrogate pair', () => {
    const codec = codecFor('utf-16le', undefined) as Codec;
    const bytes = Buffer.from('ab😀cd\nz\n', 'utf16le');
    // 6 bytes: "ab" and the pair's first half; the cut drops the half.
    for (const size of [1, 3, 64]) {
      expect(split(bytes, size, 6, codec).lines).toEqual([
        ['ab', 0, 14, true],
        ['z', 14, 18, false],
      ]);
    }
  });
});

