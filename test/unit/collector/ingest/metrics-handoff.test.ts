/**
 * The metrics journal keeps a fleet's handoffs durable: series merged in from another collector
 * and series handed away are both in the journal, so a kill -9 right after either (no checkpoint)
 * restarts with the same store, and a handoff sent again is recognised by its id.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricIntake } from '../../../../collector/ingest/metrics.ts';
import { MetricStore, type MetricStoreOptions } from '../../../../collector/metrics/store.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';

const storeOptions: MetricStoreOptions = { quantiles: [0.5], windowMs: 60_000, seriesTtlMs: 600_000, mappings: [], maxSeries: 1000, maxSetMembers: 1000, relativeAccuracy: 0.01, maxEvents: 10 };
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function open(dir: string): Promise<MetricIntake> {
  const ctx = { telemetry: new Telemetry(), log: silentLogger() };
  // checkpoints only when asked: what a restart finds is the journal's records
  return MetricIntake.open(new MetricStore(storeOptions), { dir, name: 'metrics', fsync: 'never', checkpointBytes: 1 << 30, checkpointIntervalMs: 3_600_000, dedupeWindow: 1000 }, ctx);
}

function counter(store: MetricStore, name: string): number | undefined {
  const line = store.render().split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

describe('fleet handoff through the metrics journal', () => {
  it('a received handoff and a handed-away series survive a restart without a checkpoint; a repeat is a duplicate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plumb-handoff-'));
    dirs.push(dir);
    const source = new MetricStore(storeOptions);
    source.apply({ id: 'x:1', agent: 'x', seq: 1, start: 0, end: 0, metrics: [{ type: 'c', name: 'moved', tags: [], value: 5 }, { type: 'c', name: 'stays', tags: [], value: 2 }], events: [], serviceChecks: [] });
    const chunks = source.exportSeries((route) => (route === 'moved' ? 'here' : undefined)).get('here')?.chunks ?? [];

    let intake = await open(dir);
    await intake.accept({ id: 'a:1', agent: 'a', seq: 1, start: 0, end: 0, metrics: [{ type: 'c', name: 'moved', tags: [], value: 1 }, { type: 'c', name: 'local', tags: [], value: 3 }], events: [], serviceChecks: [] });
    expect(await intake.acceptHandoff('handoff:b#0>here', chunks)).toEqual({ merged: 1, duplicate: false });
    expect(counter(intake.store, 'moved_total')).toBe(6);
    expect(await intake.dropSeries([['local_total', '']])).toBe(1);
    await intake.close(); // no checkpoint: as after kill -9

    intake = await open(dir);
    expect(counter(intake.store, 'moved_total')).toBe(6);
    expect(counter(intake.store, 'local_total')).toBeUndefined();
    expect(await intake.acceptHandoff('handoff:b#0>here', chunks)).toEqual({ merged: 0, duplicate: true });
    expect(counter(intake.store, 'moved_total')).toBe(6);
    await intake.close({ checkpoint: true });

    intake = await open(dir);
    expect(counter(intake.store, 'moved_total')).toBe(6);
    expect(await intake.acceptHandoff('handoff:b#0>here', chunks)).toMatchObject({ duplicate: true });
    await intake.close();
  });
});
