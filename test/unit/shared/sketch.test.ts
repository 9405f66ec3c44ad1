import { describe, expect, it } from 'vitest';
import { newSketch, mergeSketch, quantile, encodeSketch, decodeSketch, countAtOrBelow, relativeAccuracyOf } from '../../../shared/sketch.ts';

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

  it('round-trips negative values, zeros, fractional weights and collapsed bins', () => {
    const s = newSketch(0.02);
    for (let i = 1; i <= 500; i++) {
      s.accept(-i * 3.3);
      s.accept(0);
      s.accept(i, 2.5); // a sample rate of 0.4
    }
    for (let e = -300; e <= 300; e += 3) s.accept(10 ** e); // wider than the bin limit: low bins collapse
    const back = decodeSketch(encodeSketch(s), { count: s.count, sum: s.sum, min: s.min, max: s.max });
    expect(back.zeroCount).toBe(500);
    expect(relativeAccuracyOf(back)).toBe(0.02);
    for (const q of [0.05, 0.3, 0.5, 0.7, 0.99]) expect(quantile(back, q)).toBe(quantile(s, q));
    // merging stays possible: both ends build the same mapping
    const merged = newSketch(0.02);
    mergeSketch(merged, back);
    expect(merged.count).toBe(s.count);
  });

  it('is much smaller than the dense protobuf form', () => {
    const s = newSketch();
    for (let i = 0; i < 1000; i++) s.accept(1 + ((i * 7919) % 5000) / 10);
    expect(Buffer.from(encodeSketch(s), 'base64').length).toBeLessThan(Buffer.from(s.toProto()).length / 2);
  });

  it('refuses bytes whose counts disagree with the batch', () => {
    const s = newSketch();
    s.accept(1);
    expect(() => decodeSketch(encodeSketch(s), { count: 5, sum: 1, min: 1, max: 1 })).toThrow(/holds 1/);
    expect(() => decodeSketch('not a sketch at all', { count: 1, sum: 1, min: 1, max: 1 })).toThrow();
    const good = encodeSketch(s);
    const truncated = Buffer.from(good, 'base64').subarray(0, 12).toString('base64');
    expect(() => decodeSketch(truncated, { count: 1, sum: 1, min: 1, max: 1 })).toThrow(/end early/);
  });

  it('counts values at or below a bound to within a bin', () => {
    const s = newSketch();
    for (let i = 1; i <= 1000; i++) s.accept(i);
    expect(Math.abs(countAtOrBelow(s, 100) - 100)).toBeLessThanOrEqual(2);
    expect(countAtOrBelow(s, 0.5)).toBe(0);
    expect(countAtOrBelow(s, 5000)).toBe(1000);
  });
});
