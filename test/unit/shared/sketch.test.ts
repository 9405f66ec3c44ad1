import { describe, expect, it } from 'vitest';
import { newSketch, mergeSketch, quantile, encodeSketch, decodeSketch, countAtOrBelow } from '../../../shared/sketch.ts';

describe('sketch wrapper', () => {
  it('keeps negative values when merging into a non-empty sketch', () => {
    const a = newSketch();
    const b = newSketch();
    for (let i = 1; i <= 100; i++) a.accept(i);
    for (let i = 1; i <= 100; i++) b.accept(-i);
    mergeSketch(a, b);
    expect(a.count).toBe(200);
    // the lowest quarter are the negative values
    expect(quantile(a, 0.1)).toBeLessThan(-70);
    expect(quantile(a, 0.1)).toBeGreaterThan(-90);
  });

  it('round-trips through the wire form with statistics restored', () => {
    const s = newSketch();
    for (let i = 0; i < 1000; i++) s.accept(i * 1.5);
    const back = decodeSketch(encodeSketch(s), { count: s.count, sum: s.sum, min: s.min, max: s.max });
    // the mapping is rebuilt from gamma, so values may differ in the last few bits
    for (const q of [0.5, 0.9, 0.99]) expect(Math.abs(quantile(back, q) / quantile(s, q) - 1)).toBeLessThan(1e-9);
    expect([back.count, back.sum, back.min, back.max]).toEqual([s.count, s.sum, s.min, s.max]);
  });

  it('refuses bytes whose counts disagree with the batch', () => {
    const s = newSketch();
    s.accept(1);
    expect(() => decodeSketch(encodeSketch(s), { count: 5, sum: 1, min: 1, max: 1 })).toThrow(/holds 1/);
    expect(() => decodeSketch('not base64 protobuf!!', { count: 1, sum: 1, min: 1, max: 1 })).toThrow();
  });

  it('counts values at or below a bound to within a bin', () => {
    const s = newSketch();
    for (let i = 1; i <= 1000; i++) s.accept(i);
    expect(Math.abs(countAtOrBelow(s, 100) - 100)).toBeLessThanOrEqual(2);
    expect(countAtOrBelow(s, 0.5)).toBe(0);
    expect(countAtOrBelow(s, 5000)).toBe(1000);
  });
});
