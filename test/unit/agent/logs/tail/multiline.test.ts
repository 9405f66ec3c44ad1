import { describe, expect, it } from 'vitest';
import { MultilineAssembler, type MultilineRules } from '../../../../../agent/logs/tail/multiline.ts';
import type { Piece, Stream } from '../../../../../agent/logs/tail/formats.ts';

function feed(lines: string[], rules: Partial<MultilineRules> = {}, stream?: (i: number) => Stream | undefined) {
  const m = new MultilineAssembler({ mode: 'start', start: /^\d{4}-/, condition: undefined, maxBytes: 1000, maxLines: 100, timeoutMs: 1000, ...rules });
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

  /** Every event of `lines` under `rules`, the pending one flushed at the end, as text. */
  function events(lines: string[], rules: Partial<MultilineRules>): string[] {
    const { m, out } = feed(lines, rules);
    m.flushAll((p) => out.push(p));
    return out.map((p) => p.text);
  }

  it('continue-through: lines matching the condition join the event opened by a start line', () => {
    const rules: Partial<MultilineRules> = { mode: 'continue-through', start: /^[^\s]/, condition: /^\s/ };
    expect(events(['Exception in main', '  at a()', '  at b()', 'next line', '  at c()', 'last'], rules)).toEqual([
      'Exception in main\n  at a()\n  at b()',
      'next line\n  at c()',
      'last',
    ]);
    // A line matching neither start nor condition with nothing open is an event of its own.
    expect(events(['  stray', 'Boom', '  at x()'], { ...rules, start: /^Boom/ })).toEqual(['  stray', 'Boom\n  at x()']);
  });

  it('continue-past: lines matching the condition join, and so does the first one after them', () => {
    const rules: Partial<MultilineRules> = { mode: 'continue-past', start: undefined, condition: /\\$/ };
    expect(events(['alone', 'first \\', 'second \\', 'third', 'after', 'x \\', 'y'], rules)).toEqual(['alone', 'first \\\nsecond \\\nthird', 'after', 'x \\\ny']);
  });

  it('halt-before: lines join until one matches the condition, which begins the next event', () => {
    const rules: Partial<MultilineRules> = { mode: 'halt-before', start: undefined, condition: /^\d{4}-/ };
    expect(events(['2024-01-01 a', ' b', ' c', '2024-01-02 d', '2024-01-03 e', ' f'], rules)).toEqual(['2024-01-01 a\n b\n c', '2024-01-02 d', '2024-01-03 e\n f']);
  });

  it('halt-with: lines join up to and including the first that matches the condition', () => {
    const rules: Partial<MultilineRules> = { mode: 'halt-with', start: undefined, condition: /;$/ };
    expect(events(['SELECT *', 'FROM t', 'WHERE x;', 'COMMIT;', 'UPDATE t', 'SET y = 1;', 'unfinished'], rules)).toEqual([
      'SELECT *\nFROM t\nWHERE x;',
      'COMMIT;',
      'UPDATE t\nSET y = 1;',
      'unfinished',
    ]);
  });

  it('every mode emits the open event once no line came for the timeout', () => {
    const cases: [Partial<MultilineRules>, string[], string][] = [
      [{ mode: 'continue-through', start: undefined, condition: /^\s/ }, ['Boom', '  at a()'], 'Boom\n  at a()'],
      [{ mode: 'continue-past', start: undefined, condition: /\\$/ }, ['a \\'], 'a \\'],
      [{ mode: 'halt-before', start: undefined, condition: /^\d/ }, ['1 a', ' b'], '1 a\n b'],
      [{ mode: 'halt-with', start: undefined, condition: /;$/ }, ['SELECT', 'FROM t'], 'SELECT\nFROM t'],
    ];
    for (const [rules, lines, text] of cases) {
      const { m, out } = feed(lines, rules);
      expect(out).toEqual([]);
      m.flushExpired(999, (p) => out.push(p));
      expect(out).toEqual([]);
      m.flushExpired(1000, (p) => out.push(p));
      expect(out.map((p) => p.text)).toEqual([text]);
      expect(m.pendingStart()).toBe(-1);
    }
  });

  it('the limits hold in every mode: maxLines counts the lines after the first', () => {
    const { out } = feed(['BEGIN', 'a', 'b', 'c', 'END;'], { mode: 'halt-with', start: undefined, condition: /;$/, maxLines: 2 });
    expect(out[0]).toMatchObject({ text: 'BEGIN\na\nb', truncated: true, offset: 0, end: 17 });
  });
});
