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

describe('tiered buckets', () => {
  it('sizes tiers by the longest window: one fine ring for short horizons, four tiers for 30 days', () => {
    expect(tierLayout(10 * S, 5 * M)).toEqual([{ resolution: 10 * S, slots: 32 }]);
    expect(tierLayout(10 * S, 30 * D).map((t) => t.resolution)).toEqual([10 * S, M, 10 * M, H]);
    expect(slots(tierLayout(10 * S, 30 * D))).toBe(362 + 362 + 434 + 722);
  });

  it('answers every window over four days of steady data, with memory fixed by the horizon', () => {
    const w = new TieredWindow(tierLayout(10 * S, 3 * D));
    const end = 4 * D;
    for (let t = 0; t <= end; t += 10 * S) feed(w, t, 1); // one event every 10 s
    // Windows inside the finest tier are exact: (now − W, now] holds W / 10 s events.
    expect(count(w, end, 5 * M)).toBe(30);
    expect(count(w, end, 1 * H)).toBe(360);
    // Older parts sit in 1 min and 10 min buckets. The one cut by the window's far edge counts in
    // proportion to its overlap; here the edge falls on a bucket start, so that bucket counts whole
    // and brings the one event at exactly now − W that the window itself excludes.
    for (const window of [2 * H, 6 * H, 7 * H, 12 * H, 1 * D, 3 * D]) expect(count(w, end, window)).toBe(window / (10 * S) + 1);
    // Off a bucket boundary the share is within one event of the truth.
    expect(Math.abs(count(w, end - 5 * M, 3 * D) - 25920)).toBeLessThanOrEqual(1);
    expect(Math.abs(count(w, end - 30 * S, 6 * H) - 2160)).toBeLessThanOrEqual(1);
    expect(w.size).toBeLessThanOrEqual(slots(w.layout));
  });

  it('counts every event once while buckets move to coarser tiers', () => {
    const w = new TieredWindow(tierLayout(10 * S, 30 * D));
    let total = 0;
    for (let t = 0; t < 10 * D; t += 7 * S) {
      feed(w, t, 3);
      total += 3;
    }
    expect(count(w, 10 * D, 30 * D)).toBe(total);
  });

  it('drops data older than the last tier keeps', () => {
    const w = new TieredWindow(tierLayout(10 * S, 5 * M));
    for (let t = 0; t <= 10 * M; t += 10 * S) feed(w, t, 1);
    expect(w.bucketAt(4 * M)).toBeUndefined();
    expect(count(w, 10 * M, 5 * M)).toBe(30);
  });

  it('puts late data in the tier still covering its time', () => {
    const w = new TieredWindow(tierLayout(10 * S, 6 * H));
    for (let t = 0; t <= 3 * H; t += 10 * S) feed(w, t, 1);
    feed(w, 2 * H, 100); // late: its 10 s slot was reused long ago, so it lands in a 1 min bucket
    // (1h0m30s, 3h] holds 717 steady events and the late 100, give or take one at the far edge.
    expect(Math.abs(count(w, 3 * H, 2 * H - 30 * S) - 817)).toBeLessThanOrEqual(1);
  });

  it('keeps its data when the horizon changes', () => {
    const w = new TieredWindow(tierLayout(10 * S, 1 * H));
    for (let t = 0; t <= 50 * M; t += 10 * S) feed(w, t, 1);
    w.resize(tierLayout(10 * S, 1 * D));
    expect(count(w, 50 * M, 1 * H)).toBe(301);
    w.resize(tierLayout(10 * S, 10 * M));
    expect(count(w, 50 * M, 10 * M)).toBe(60);
  });
});
