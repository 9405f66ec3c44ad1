import { describe, expect, it } from 'vitest';
import { MultilineAssembler } from '../../../../../agent/logs/tail/multiline.ts';
import type { Piece, Stream } from '../../../../../agent/logs/tail/formats.ts';

function feed(lines: string[], rules: Partial<{ maxBytes: number; maxLines: number; timeoutMs: number }> = {}, stream?: (i: number) => Stream | undefined) {
  const m = new MultilineAssembler({ start: /^\d{4}-/, maxBytes: 1000, maxLines: 100, timeoutMs: 1000, ...rules });
  const out: Piece[] = [];
  let offset = 0;
  lines.forEach((text, i) => {
    const end = offset + Buffer.byteLength(text) + 1;
    m.push({ text, offset, end, truncated: false, stream: stream?.(i), time: undefined, malformed: false }, 0, (p) => out.push(p));
    offset = end;
  });
  return { m, out };
}

describe('MultilineAssembler', () => {
  it('joins continuation lines to the event before them, emitting it when the next one starts', () => {
    const { m, out } = feed(['2024-01-01 a', ' at x', ' at y', '2024-01-02 b', '2024-01-03 c', ' more']);
    expect(out.map((p) => [p.text, p.offset, p.end])).toEqual([
      ['2024-01-01 a\n at x\n at y', 0, 25],
      ['2024-01-02 b', 25, 38],
    ]);
    expect(m.pendingStart()).toBe(38);
    const rest: Piece[] = [];
    m.flushAll((p) => rest.push(p));
    expect(rest.map((p) => p.text)).toEqual(['2024-01-03 c\n more']);
  });

  it('starts an event with a continuation line when nothing is pending', () => {
    const { m } = feed(['orphan', 'still orphan']);
    const out: Piece[] = [];
    m.flushAll((p) => out.push(p));
    expect(out.map((p) => p.text)).toEqual(['orphan\nstill orphan']);
  });

  it('limits events by lines and bytes, dropping the excess and flagging the event', () => {
    const byLines = feed(['2024-01-01 a', '1', '2', '3', '2024-01-02'], { maxLines: 2 });
    // maxLines counts continuation lines: the first line and two more are kept.
    expect(byLines.out[0]).toMatchObject({ text: '2024-01-01 a\n1\n2', truncated: true, end: 19 });
    const exact = feed(['2024-01-01 a', '1', '2', '2024-01-02'], { maxLines: 2 });
    expect(exact.out[0]).toMatchObject({ text: '2024-01-01 a\n1\n2', truncated: false });
    const byBytes = feed(['2024-01-01 a', 'bcdefgh', '2024-01-02'], { maxBytes: 15 });
    expect(byBytes.out[0]).toMatchObject({ text: '2024-01-01 a\nbc', truncated: true });
  });

  it('emits an event once no line came for the timeout', () => {
    const { m } = feed(['2024-01-01 a', ' b']);
    const out: Piece[] = [];
    m.flushExpired(999, (p) => out.push(p));
    expect(out).toEqual([]);
    m.flushExpired(1000, (p) => out.push(p));
    expect(out.map((p) => p.text)).toEqual(['2024-01-01 a\n b']);
  });

  it('keeps the streams of a container apart', () => {
    const { m, out } = feed(['2024-01-01 out', '2024-01-01 err', ' err more', ' out more', '2024-01-02 out'], {}, (i) => (i === 1 || i === 2 ? 'stderr' : 'stdout'));
    expect(out.map((p) => p.text)).toEqual(['2024-01-01 out\n out more']);
    expect(m.pendingStart()).toBe(15);
  });
});
