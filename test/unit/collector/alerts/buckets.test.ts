import { describe, expect, it } from 'vitest';
import { TieredWindow, emptySummary, tierLayout, type Tier } from '../../../../collector/alerts/buckets.ts';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

function feed(w: TieredWindow, t: number, events: number): void {
  const b = w.bucketAt(t)!;
  b.kinds |= 1;
  b.reports++;
  b.events += events;
}

function count(w: TieredWindow, now: number, window: number): number {
  const s = emptySummary();
  w.summarize(now, window, s, false);
  return s.events;
}

const slots = (layout: Tier[]) => layout.reduce((n, t) => n + t.slots, 0);
const SLO_WINDOWS = [5 * M, 30 * M, 1 * H, 6 * H, 3 * D, 30 * D];

describe('tiered buckets', () => {
  it('keeps each window at 1/60 of its length or finer (1/10 for sketches)', () => {
    expect(tierLayout(10 * S, [5 * M])).toEqual([{ resolution: 10 * S, slots: 33 }]);
    expect(tierLayout(10 * S, [5 * M], 10)).toEqual([{ resolution: 30 * S, slots: 13 }]);
    const slo = tierLayout(10 * S, SLO_WINDOWS);
    expect(slo.map((t) => t.resolution)).toEqual([10 * S, 30 * S, M, 5 * M, H, 12 * H]);
    // A tier holds only the ages between the finer tier's window and its own.
    expect(slots(slo)).toBe(33 + 53 + 33 + 63 + 69 + 57);
    // Nesting survives another base resolution.
    expect(tierLayout(20 * S, [5 * M, 1 * H]).map((t) => t.resolution)).toEqual([20 * S, M]);
  });

  it('answers every window over four days of steady data, with memory fixed by the windows', () => {
    const windows = [5 * M, 1 * H, 6 * H, 3 * D];
    const w = new TieredWindow(tierLayout(10 * S, windows), 10 * S);
    const end = 4 * D;
    for (let t = 0; t <= end; t += 10 * S) feed(w, t, 1); // one event every 10 s
    // In 10 s buckets, (now − 5m, now] holds exactly 30 batches.
    expect(count(w, end, 5 * M)).toBe(30);
    // Longer windows end in wider buckets that count in proportion to their overlap: within one
    // event of W / 10 s, at or off bucket boundaries.
    for (const now of [end, end - 30 * S, end - 5 * M]) {
      for (const window of [1 * H, 2 * H, 6 * H, 1 * D, 3 * D]) {
        expect(Math.abs(count(w, now, window) - window / (10 * S)), `${window} at ${now}`).toBeLessThanOrEqual(1);
      }
    }
    expect(w.size).toBeLessThanOrEqual(slots(tierLayout(10 * S, windows)));
  });

  it('counts every event once while buckets move to coarser tiers', () => {
    const w = new TieredWindow(tierLayout(10 * S, SLO_WINDOWS), 10 * S);
    let total = 0;
    for (let t = 0; t < 10 * D; t += 7 * S) {
      feed(w, t, 3);
      total += 3;
    }
    expect(count(w, 10 * D, 30 * D)).toBe(total);
  });

  it('drops data older than the last tier keeps', () => {
    const w = new TieredWindow(tierLayout(10 * S, [5 * M]), 10 * S);
    for (let t = 0; t <= 10 * M; t += 10 * S) feed(w, t, 1);
    expect(w.bucketAt(4 * M)).toBeUndefined();
    expect(count(w, 10 * M, 5 * M)).toBe(30);
  });

  it('puts late data in the tier still covering its time', () => {
    const w = new TieredWindow(tierLayout(10 * S, [5 * M, 6 * H]), 10 * S);
    for (let t = 0; t <= 3 * H; t += 10 * S) feed(w, t, 1);
    feed(w, 2 * H, 100); // late: its 10 s slot was reused long ago, so it lands in a 5 min bucket
    // (1h0m30s, 3h] holds 717 steady events and the late 100, give or take one at the far edge.
    expect(Math.abs(count(w, 3 * H, 2 * H - 30 * S) - 817)).toBeLessThanOrEqual(1);
  });

  it('keeps the data a new layout can hold when the windows change', () => {
    const w = new TieredWindow(tierLayout(10 * S, [5 * M, 1 * H]), 10 * S);
    for (let t = 0; t <= 50 * M; t += 10 * S) feed(w, t, 1);
    w.resize(tierLayout(10 * S, [5 * M, 1 * D])); // 1 min buckets move into 10 min ones
    expect(count(w, 50 * M, 1 * H)).toBe(301);
    w.resize(tierLayout(10 * S, [5 * M]));
    expect(count(w, 50 * M, 5 * M)).toBe(30);
  });
});
