import { describe, expect, it } from 'vitest';
import { RELEASE_MIN_BYTES, releaseBuffer } from '../../../shared/release.ts';

describe('releaseBuffer', () => {
  it('gives back a large buffer that owns its memory: it and its views read as empty from then on', () => {
    const buf = Buffer.concat([Buffer.alloc(RELEASE_MIN_BYTES, 1), Buffer.alloc(10, 2)]);
    const view = buf.subarray(5, 50);
    const before = process.memoryUsage().arrayBuffers;
    expect(releaseBuffer(buf)).toBe(true);
    expect(process.memoryUsage().arrayBuffers).toBeLessThanOrEqual(before - RELEASE_MIN_BYTES);
    expect([buf.length, view.length]).toEqual([0, 0]);
    // once only
    expect(releaseBuffer(buf)).toBe(false);
  });

  it('leaves alone a slice of a larger allocation, a buffer from the pool and a small buffer', () => {
    const big = Buffer.alloc(4 * RELEASE_MIN_BYTES, 7);
    const slice = big.subarray(0, 2 * RELEASE_MIN_BYTES);
    const pooled = Buffer.from('from the pool');
    const small = Buffer.alloc(1024);
    for (const b of [slice, pooled, small]) expect(releaseBuffer(b)).toBe(false);
    expect([big.length, slice.length, pooled.toString(), small.length]).toEqual([4 * RELEASE_MIN_BYTES, 2 * RELEASE_MIN_BYTES, 'from the pool', 1024]);
  });
});
