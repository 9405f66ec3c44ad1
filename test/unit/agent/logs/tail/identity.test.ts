import { describe, expect, it } from 'vitest';
import { compareFingerprint, computeFileId, eventId, fingerprintOf, idPrefixLength } from '../../../../../agent/logs/tail/identity.ts';

const inode = { dev: '2049', ino: '131077', birthtimeMs: 1_700_000_000_123.5 };

describe('fingerprints', () => {
  it('recognise the same leading bytes, and tell changed or shorter heads apart', () => {
    const content = Buffer.from('2024-01-01 first line\nsecond line\n');
    const fp = fingerprintOf(content, content.length, 16);
    expect(fp.len).toBe(16);
    expect(compareFingerprint(fp, content, content.length)).toBe('same');
    expect(compareFingerprint(fp, Buffer.from('2024-01-01 first line, but longer'), 33)).toBe('same');
    expect(compareFingerprint(fp, Buffer.from('2024-01-02 other line\n'), 22)).toBe('different');
    expect(compareFingerprint(fp, content, 10)).toBe('shorter');
    expect(compareFingerprint({ len: 0, hash: '' }, content, 0)).toBe('same');
  });
});

describe('file ids', () => {
  it('name a file by its first line, so any later look at the file gives the same id', () => {
    const early = Buffer.from('first line\nsec');
    const later = Buffer.from('first line\nsecond line\nthird');
    const a = computeFileId('host', inode, early, idPrefixLength(early, early.length, 1024, false) as number);
    const b = computeFileId('host', inode, later, idPrefixLength(later, later.length, 1024, false) as number);
    expect(a).toBe(b);
    expect(a).toMatch(/^[0-9a-f]{32}$/);
  });

  it('wait for a first newline (or the full fingerprint size) unless forced', () => {
    expect(idPrefixLength(Buffer.from('no newline yet'), 14, 1024, false)).toBeUndefined();
    expect(idPrefixLength(Buffer.from('no newline yet'), 14, 1024, true)).toBe(14);
    expect(idPrefixLength(Buffer.from('x'.repeat(20)), 20, 16, false)).toBe(16);
  });

  it('differ by inode, birth time, host seed, content and truncation generation', () => {
    const head = Buffer.from('line\n');
    const base = computeFileId('host', inode, head, 5);
    expect(computeFileId('host', { ...inode, ino: '131078' }, head, 5)).not.toBe(base);
    expect(computeFileId('host', { ...inode, birthtimeMs: 1 }, head, 5)).not.toBe(base);
    expect(computeFileId('other-host', inode, head, 5)).not.toBe(base);
    expect(computeFileId('host', inode, Buffer.from('lime\n'), 5)).not.toBe(base);
    const gen1 = computeFileId('host', inode, head, 5, 1);
    const gen2 = computeFileId('host', inode, head, 5, 2);
    expect(new Set([base, gen1, gen2]).size).toBe(3);
  });
});

describe('eventId', () => {
  it('is the file id and the offset, fixed width, stable', () => {
    expect(eventId('ab'.repeat(16), 255)).toBe(`${'ab'.repeat(16)}0000000000ff`);
    expect(eventId('ab'.repeat(16), 255)).toBe(eventId('ab'.repeat(16), 255));
    expect(eventId('ab'.repeat(16), 2 ** 40)).toHaveLength(44);
  });
});
