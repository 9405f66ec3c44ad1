import { describe, expect, it } from 'vitest';
import { RegexTranslationError, translateOniguruma } from '../../../../../agent/logs/grok/oniguruma.ts';

function compile(pattern: string): RegExp {
  return new RegExp(translateOniguruma(pattern).source, 'u');
}

function match(pattern: string, text: string): string | null {
  const m = compile(pattern).exec(text);
  return m === null ? null : m[0];
}

describe('Oniguruma translation', () => {
  it('atomic groups do not give back what they matched', () => {
    // Oniguruma: (?>a+) takes every "a", so the following "a" can never match.
    expect(match('(?>a+)a', 'aaaa')).toBeNull();
    expect(match('(?>a+)b', 'aaab')).toBe('aaab');
    expect(match('(?>foo|foobar)bar', 'foobar')).toBe('foobar');
  });

  it('possessive quantifiers behave atomically and {n,m}+ stays a nested repeat', () => {
    expect(match('a*+a', 'aaa')).toBeNull();
    expect(match('a++b', 'aab')).toBe('aab');
    expect(match('x?+x', 'x')).toBeNull();
    expect(match('(?:ab){1,2}+c', 'ababababc')).toBe('ababababc');
  });

  it('a digit after an emulated atomic group is not read as part of its backreference', () => {
    expect(match('(?>a)0', 'a0')).toBe('a0');
    expect(match('(x)\\1 0', 'xx 0')).toBe('xx 0');
  });

  it('translates \\h, \\H, \\A, \\z and \\Z', () => {
    expect(match('\\h+', 'zz0aF9q')).toBe('0aF9');
    expect(match('\\H+', '0aZZ')).toBe('ZZ');
    expect(match('\\Afoo', 'foo bar')).toBe('foo');
    expect(match('\\Abar', 'foo bar')).toBeNull();
    expect(match('bar\\z', 'foo bar')).toBe('bar');
    expect(match('bar\\z', 'foo bar\n')).toBeNull();
    expect(match('bar\\Z', 'foo bar\n')).toBe('bar');
  });

  it('POSIX brackets are Unicode-aware, alone or nested in a class', () => {
    expect(match('[[:alpha:]]+', '12 Grüße 34')).toBe('Grüße');
    expect(match('[[[:alnum:]]_-]+', '/ab_ä-1/')).toBe('ab_ä-1');
    expect(match('[[:space:]]+', 'a \t b')).toBe(' \t ');
    expect(match('[[:^digit:]]+', '12ab34')).toBe('ab');
    expect(match('[[:xdigit:]]+', 'xx0fAz')).toBe('0fA');
  });

  it('(?m) makes the dot match newlines; without it the dot stops only at \\n', () => {
    expect(match('a.+z', 'a\nz')).toBeNull();
    expect(match('(?m)a.+z', 'a\nz')).toBe('a\nz');
    expect(match('a.b', 'a\rb')).toBe('a\rb');
  });

  it('(?i) applies to the rest of the group, alternatives included, as in Oniguruma', () => {
    expect(match('a(?i)b|c', 'aB')).toBe('aB');
    expect(match('a(?i)b|c', 'c')).toBeNull();
    expect(match('a(?i)b|c', 'aC')).toBe('aC');
    expect(match('(?i:x)y', 'XY')).toBeNull();
    expect(match('(?i:x)y', 'Xy')).toBe('Xy');
  });

  it('(?x) ignores whitespace and comments', () => {
    expect(match('(?x) a b  # comment\n c', 'abc')).toBe('abc');
  });

  it('stacked quantifiers such as .?* are accepted', () => {
    expect(match('a.?*z', 'abcz')).toBe('abcz');
  });

  it('named groups are listed and unnamed ones stop capturing when names are used', () => {
    const t = translateOniguruma('(?<a>x)(y)(?<b>z)(?<a>w)');
    expect(t.captures).toEqual([
      { index: 1, name: 'a' },
      { index: 2, name: 'b' },
      { index: 3, name: 'a' },
    ]);
    const plain = translateOniguruma('(x)(y)');
    expect(plain.captures.map((c) => c.index)).toEqual([1, 2]);
  });

  it('describes repeated groups that hold captures so their earlier iterations can be recovered', () => {
    const t = translateOniguruma('(?: (?:h=(?<h>\\w+)|p=(?<p>\\d+)))*!');
    expect(t.repeats).toHaveLength(1);
    const m = new RegExp(t.source, 'u').exec(' h=x p=1!')!;
    expect(m[t.repeats[0].span]).toBe(' h=x p=1');
    const body = new RegExp(t.repeats[0].source, 'uy');
    expect(body.exec(' h=x')![t.repeats[0].pairs[0][0]]).toBe('x');
    expect(t.repeats[0].pairs.map((p) => p[1])).toEqual(t.captures.map((c) => c.index));
    expect(translateOniguruma('(?<a>x)+').repeats).toHaveLength(1);
    expect(translateOniguruma('(?:x)+').repeats).toHaveLength(0);
  });

  it('resolves named and numbered backreferences after renumbering', () => {
    expect(match('(?>q)(?<w>ab)-\\k<w>', 'qab-ab')).toBe('qab-ab');
    expect(match('(?>q)(a)(b)\\2', 'qabb')).toBe('qabb');
  });

  it('escapes that the u flag rejects are re-emitted as literals', () => {
    expect(match('\\"\\-\\ \\#', '"- #')).toBe('"- #');
    expect(match('a{ b}', 'a{ b}')).toBe('a{ b}');
    expect(match('x{,2}', 'xxx')).toBe('xx');
    expect(match('[\\-\\]a]+', 'a]-a')).toBe('a]-a');
  });

  it('supports class intersection', () => {
    expect(match('[a-z&&[^aeiou]]+', 'aabcde')).toBe('bcd');
  });

  it('keeps lookbehind working and reports line anchors', () => {
    expect(match('(?<![0-9])\\d+', 'a12')).toBe('12');
    expect(translateOniguruma('^a').lineAnchors).toBe(true);
    expect(translateOniguruma('\\Aa').lineAnchors).toBe(false);
  });

  it('rejects what JavaScript cannot express, saying what and where', () => {
    const bad = ['\\g<x>', '(?~abc)', '(?(1)a|b)', 'a\\Kb', '\\X', '(a', 'a)', '*a', '[a', 'b{3,1}', '(?<x>a)\\1', '\\k<nope>(?<x>a)'];
    for (const p of bad) {
      expect(() => translateOniguruma(p), p).toThrow(RegexTranslationError);
    }
    expect(() => translateOniguruma('ab\\g<x>')).toThrow(/subexpression calls.*offset 2/);
  });
});
