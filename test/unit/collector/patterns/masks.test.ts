import { describe, expect, it } from 'vitest';
import { DEFAULT_MASKS, MessageMasker } from '../../../../collector/patterns/masks.ts';
import { DATASETS, loadSample } from '../../../../bench/patterns/accuracy.ts';
import { accessLine } from '../../../../bench/access-log.ts';
import { seededRandom } from '../../../helpers/random.ts';

/** What the masks mean: each replaces its matches in the whole message, in order, then a split on whitespace. */
function reference(masks: readonly RegExp[], message: string): string[] {
  let text = message;
  for (const mask of masks) text = text.replace(mask, '<*>');
  const tokens = text.split(/\s+/);
  if (tokens.length > 0 && tokens[0] === '') tokens.shift();
  if (tokens.length > 0 && tokens[tokens.length - 1] === '') tokens.pop();
  return tokens;
}

const PIECES = [
  ...'0123456789abcdefxABCDEF_-/.:,+@%TZ'.split(''),
  ' ', ' ', ' ', '  ', '\t', '\u00a0', '\u2003', '\ufeff', 'é', '<*>', '0x1f', '12345', '-7', '1.5',
  'Mon ', 'Fri ', 'Jun ', 'Dec ', '17 ', '07:07:00', ' 2005', '2026-11-24', 'T10:00:00', ' 10:00:00.123Z', '+02:00',
  '10.0.0.7', ':8080', '/var/log/', 'blk_', 'job_2008', 'deadbeef-dead-beef-dead-beefdeadbeef', 'word', 'ssh2',
];

function randomMessage(next: () => number): string {
  const n = 1 + Math.floor(next() * 24);
  let s = '';
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)];
  return s;
}

const masksets: [string, RegExp[]][] = [
  ['the built-in masks', [...DEFAULT_MASKS]],
  ['deployment masks before the built-in ones', [/user\d+/g, /req-[a-z]+ [a-z]+/g, ...DEFAULT_MASKS]],
  ['a subset out of order (no integer shortcut)', [DEFAULT_MASKS[8], DEFAULT_MASKS[2], DEFAULT_MASKS[6]]],
  ['none', []],
];

describe('MessageMasker gives the tokens of applying every mask to the whole message', () => {
  for (const [name, masks] of masksets) {
    it(`${name}: generated messages, the loghub samples and access log lines, twice (remembered tokens)`, () => {
      const next = seededRandom(0x9e3779b9);
      const messages = [
        ...Array.from({ length: 6000 }, () => randomMessage(next)),
        ...DATASETS.flatMap((d) => loadSample(d).messages),
        ...Array.from({ length: 3000 }, (_, i) => accessLine(i * 7919).trimEnd()),
        '', '   ', '\t\u00a0', ' lead and trail ', '-', '--5', '-12345', '12345678901234567890', `long ${'7'.repeat(100)} ${'a/'.repeat(50)}`,
      ];
      const masker = new MessageMasker(masks);
      for (let round = 0; round < 2; round++) {
        for (const m of messages) expect(masker.tokenize(m), JSON.stringify(m)).toEqual(reference(masks, m));
      }
    });
  }

  it('dates next to every kind of separator: the built-in date masks are tried only where a time follows whitespace or a T, and find the same', () => {
    const next = seededRandom(0x85ebca6b);
    const DATE_PIECES = ['Mon', 'Sun', 'Jan', 'Dec', '7', '17', '2005', '2026-11-24', '07:07:00', '10:00:00.5', '12:3', ':00', '1:2:3', 'Z', '+0200', '-02:00', 'T', 'x', '/', '[', ':'];
    const SEPARATORS = [' ', ' ', '  ', '\t', '\u00a0', '\u2003', '\ufeff', '\n', 'T', ':', '', '-', '/'];
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
    const masker = new MessageMasker(DEFAULT_MASKS);
    // the two date forms with any separator where they have one, among other pieces
    const syslogDate = (): string => `${pick(['Mon', 'Sun', 'Mo'])}${pick(SEPARATORS)}${pick(['Jan', 'Dec', 'Ja'])}${pick(SEPARATORS)}${pick(['7', '17', '170'])}${pick(SEPARATORS)}${pick(['07:07:00', '7:07:00', '07:07'])}${pick(['', ' 2005', '\t2005'])}`;
    const isoDate = (): string => `${pick(['2026-11-24', '226-11-24', '2026-1-24'])}${pick(SEPARATORS)}${pick(['10:00:00', '10:00:00.5', '10:00:0'])}${pick(['', 'Z', '+02:00', '-0200'])}`;
    for (let i = 0; i < 20_000; i++) {
      let m = '';
      for (let k = 1 + Math.floor(next() * 8); k > 0; k--) m += (next() < 0.3 ? (next() < 0.5 ? syslogDate() : isoDate()) : pick(DATE_PIECES)) + pick(SEPARATORS);
      expect(masker.tokenize(m), JSON.stringify(m)).toEqual(reference(DEFAULT_MASKS, m));
    }
  });

  it('masks the same token the same way after other tokens took its slot', () => {
    const masker = new MessageMasker(DEFAULT_MASKS);
    const line = 'GET /index.html HTTP/1.1 from host-7 id 0x1f';
    expect(masker.tokenize(line)).toEqual(['GET', '/index.html', 'HTTP/<*>', 'from', 'host-<*>', 'id', '<*>']);
    // more distinct tokens than the memory has slots
    for (let i = 0; i < 20_000; i++) masker.tokenize(`t${i}-x v${i}/w`);
    expect(masker.tokenize(line)).toEqual(['GET', '/index.html', 'HTTP/<*>', 'from', 'host-<*>', 'id', '<*>']);
  });
});
