import { describe, expect, it } from 'vitest';
import { RateWindow } from '../../../shared/status.ts';
import { LagClock } from '../../../agent/logs/tail/lag.ts';

describe('RateWindow', () => {
  it('rates a total over the last 10 s of samples, and says how much it grew', () => {
    const w = new RateWindow(10_000);
    for (let t = 0; t <= 20_000; t += 1000) w.add(t, new Map([['x', t / 10]])); // 100 a second
    expect(w.rate('x', 20_500, 2050)).toBeCloseTo(100, 0);
    expect(w.growth('x', 20_500, 2050)).toBeGreaterThanOrEqual(1000);
    expect(w.rate('unknown', 20_500, 5)).toBe(0);
  });

  it('is 0 before there is history', () => {
    expect(new RateWindow().rate('x', Date.now(), 10)).toBe(0);
  });
});

describe('LagClock', () => {
  it('ages the oldest unacknowledged byte from the pass that first saw it', () => {
    const c = new LagClock();
    c.note(100, 100, 0); // caught up
    c.note(150, 100, 1000); // bytes 100..150 appear
    c.note(300, 100, 2000); // 150..300 appear
    expect(c.seconds(100, 300, 5000)).toBe(4);
    expect(c.seconds(200, 300, 5000)).toBe(3); // byte 200 appeared at 2000
    expect(c.seconds(300, 300, 5000)).toBe(0);
  });
});
