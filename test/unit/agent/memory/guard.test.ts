import { describe, expect, it } from 'vitest';
import { MemoryGuard } from '../../../../agent/memory/guard.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { metricValue } from '../../../helpers/metrics.ts';

const MiB = 1 << 20;

function guard(budgetMiB: number) {
  let rss = 0;
  const telemetry = new Telemetry();
  const g = new MemoryGuard({ budgetBytes: budgetMiB * MiB, checkIntervalMs: 3_600_000 }, { telemetry, log: silentLogger(), rss: () => rss });
  const at = (mib: number): string[] => {
    rss = mib * MiB;
    g.check();
    return g.actions;
  };
  const shed = (action: string) => metricValue(telemetry.registry, 'plumb_agent_memory_shed_total', { action });
  return { g, at, telemetry, shed };
}

describe('MemoryGuard', () => {
  it('sheds in order as RSS rises (files, then spans, then metric intervals) and eases in reverse with 5 % hysteresis', async () => {
    const { g, at, shed, telemetry } = guard(100);
    expect(at(50)).toEqual([]);
    expect(at(80)).toEqual(['stop_reading']);
    expect(at(89)).toEqual(['stop_reading']);
    expect(at(90)).toEqual(['stop_reading', 'refuse_spans']);
    expect(at(95)).toEqual(['stop_reading', 'refuse_spans', 'merge_intervals']);
    expect(await metricValue(telemetry.registry, 'plumb_agent_memory_shed_level')).toBe(3);
    // down: a step ends 5 % of the budget below its threshold
    expect(at(91)).toEqual(['stop_reading', 'refuse_spans', 'merge_intervals']);
    expect(at(89.9)).toEqual(['stop_reading', 'refuse_spans']);
    expect(at(85)).toEqual(['stop_reading', 'refuse_spans']);
    expect(at(84.9)).toEqual(['stop_reading']);
    expect(at(74.9)).toEqual([]);
    expect(await metricValue(telemetry.registry, 'plumb_agent_memory_shed_level')).toBe(0);
    expect(await metricValue(telemetry.registry, 'plumb_agent_memory_rss_bytes')).toBe(74.9 * MiB);
    // a jump straight past every threshold starts each step, in order, once
    expect(at(200)).toEqual(['stop_reading', 'refuse_spans', 'merge_intervals']);
    expect([await shed('stop_reading'), await shed('refuse_spans'), await shed('merge_intervals')]).toEqual([2, 2, 2]);
    g.stop();
    expect(g.actions).toEqual([]);
  });

  it('counts what it refuses and holds file reading until RSS falls', async () => {
    const { g, at, telemetry } = guard(100);
    expect(g.refuseSpans(5)).toBe(false);
    expect(g.refuseOtlp()).toBe(false);
    expect(g.mergeInterval()).toBe(false);
    at(96);
    expect(g.refuseSpans(5)).toBe(true);
    expect(g.refuseOtlp()).toBe(true);
    expect(g.mergeInterval()).toBe(true);
    const refused = (door: string) => metricValue(telemetry.registry, 'plumb_agent_memory_refused_total', { door });
    expect([await refused('spans'), await refused('otlp'), await refused('intervals')]).toEqual([5, 1, 1]);
    let read = false;
    const waiting = g.whenReadingAllowed().then(() => (read = true));
    at(80);
    await Promise.resolve();
    expect(read).toBe(false);
    at(74);
    await waiting;
    expect(read).toBe(true);
    await g.whenReadingAllowed();
  });

  it('is off with budget 0, and a stopped guard lets every waiter go', async () => {
    const { g, at } = guard(0);
    expect(g.enabled).toBe(false);
    expect(at(10_000)).toEqual([]);
    const on = guard(10);
    on.at(20);
    const waiting = on.g.whenReadingAllowed();
    on.g.stop();
    await waiting;
    on.g.setBudget(1000 * MiB);
    expect(on.g.actions).toEqual([]);
    on.g.setBudget(15 * MiB);
    expect(on.g.actions).toEqual(['stop_reading', 'refuse_spans', 'merge_intervals']);
    on.g.stop();
  });
});
