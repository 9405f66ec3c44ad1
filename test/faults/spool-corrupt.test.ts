/**
 * Fault: a spool segment is damaged on disk between two runs of the agent. With the collector
 * not running, the agent spools eight metrics batches — one statsd counter per interval
 * (`faults.spool_corrupt.s<k>`, value k), so each record's content is known — in 1 kb segment
 * files, and is stopped. The scenario reads the segment files (framing of shared/spool.ts,
 * records of agent/forward/record.ts, gzip JSON bodies), finds the record holding a given step
 * and damages it:
 *
 * - bytes in the middle of one record's payload are flipped (its checksum no longer matches);
 * - the last record of the newest segment is cut off half-way (a torn tail, as a kill during a
 *   write leaves it).
 *
 * Then the collector and the agent start. The agent must start once (no crash loop), skip and
 * count the damaged stretch (`plumb_spool_corrupt_total{reason="checksum"|"torn"}`), and deliver
 * every other batch exactly once: the collector's counters are exactly what was sent minus the
 * destroyed record's content.
 */
import { readFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { agentRole, collectorRole, counterSteps, counterTally, faultRun, freeUdpPort, metricsLaneName, report, samplesByName, since, spoolDir, spooledBatches, waitFor, waitReady, watchHealth, type FaultRun, type SpooledBatch } from './harness.ts';
import type { MetricBatch } from '../../shared/wire.ts';

const STEPS = 8;

let run: FaultRun;
afterEach(async () => {
  await run?.cleanup();
});

const step = (k: number): { name: string; value: number } => ({ name: `faults.spool_corrupt.s${k}`, value: k });
const exposed = (name: string): string => `${name.replace(/\./g, '_')}_total`;

/** The counters a spooled metrics batch carries, by their name at the collector. */
function countersOf(record: SpooledBatch): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of (record.body as MetricBatch).metrics) if (m.type === 'c') out.set(exposed(m.name), (out.get(exposed(m.name)) ?? 0) + m.value);
  return out;
}

/**
 * Spools STEPS batches with the collector down, stops the agent, lets `damage` work on the
 * segment files, starts the collector and the agent again, and waits for delivery.
 */
async function damagedSpool(scenario: string, reason: 'checksum' | 'torn', damage: (records: SpooledBatch[]) => Promise<SpooledBatch>): Promise<void> {
  run = faultRun(scenario);
  const collector = await collectorRole(run, { start: false });
  const statsdPort = await freeUdpPort();
  const agent = await agentRole(run, {
    collectors: [collector.url],
    statsdPort,
    config: {
      statsd: { flushInterval: '100ms' },
      forward: { healthCheckInterval: '200ms', spool: { maxBytes: '1mb', segmentBytes: '1kb' } },
    },
  });
  await waitReady(agent);
  const lane = metricsLaneName(collector.url);
  const spool = `forward_${lane}`;
  const spooled = (): Promise<number> => agent.counter('plumb_spool_records', { spool });
  const { sent } = await counterSteps(statsdPort, { from: 1, to: STEPS }, step, async (k) => (await spooled()) === k);
  expect((await agent.stop()).code).toBe(0);

  const records = await spooledBatches(spoolDir(agent, lane));
  expect(records.map((r) => [...countersOf(r).keys()])).toEqual(Array.from({ length: STEPS }, (_, i) => [exposed(step(i + 1).name)]));
  const segments = new Set(records.map((r) => r.file)).size;
  const destroyed = await damage(records);
  const destroyedValue = [...countersOf(destroyed).values()].reduce((a, b) => a + b, 0);
  expect((await spooledBatches(spoolDir(agent, lane))).map((r) => r.batch.id)).toEqual(records.filter((r) => r !== destroyed).map((r) => r.batch.id));

  await collector.start();
  await agent.start();
  const started = performance.now();
  const health = watchHealth(agent.url);
  const expected = new Map([...sent].map(([n, v]) => [exposed(n), v]));
  for (const n of countersOf(destroyed).keys()) expected.delete(n);
  const delivered = await waitFor(
    async () => {
      const got = await samplesByName(collector, 'faults_spool_corrupt_');
      return (await spooled()) === 0 && [...expected].every(([n, v]) => (got.get(n) ?? 0) >= v) ? performance.now() : false;
    },
    { what: 'every undamaged batch at the collector', timeoutMs: 20_000 },
  ).catch(() => performance.now());
  const { probes, failures } = await health.stop();

  const got = await samplesByName(collector, 'faults_spool_corrupt_');
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const corrupt = await agent.counter('plumb_spool_corrupt_total', { spool });
  const corruptForReason = await agent.counter('plumb_spool_corrupt_total', { spool, reason });
  const values = counterTally(sum(expected), sum(got));
  report({
    scenario,
    sent: STEPS,
    delivered: got.size,
    lost: [...expected.keys()].filter((n) => !got.has(n)).length,
    duplicated: [...got].filter(([n, v]) => v > (expected.get(n) ?? 0)).length,
    recoveryMs: since(started, delivered),
    notes: { segments, destroyed: path.basename(destroyed.file) + '@' + destroyed.offset, corrupt, valueSent: sum(new Map(sent)), valueDestroyed: destroyedValue, valueDelivered: sum(got) },
  });

  const output = `agent output:\n${agent.output().slice(-3000)}`;
  expect(segments).toBeGreaterThan(1);
  // Every other batch exactly once: collector total == sent − the destroyed record's value.
  expect(Object.fromEntries(got), output).toEqual(Object.fromEntries(expected));
  expect(values).toMatchObject({ lost: 0, duplicated: 0 });
  expect(sum(got)).toBe(sum(new Map(sent)) - destroyedValue);
  expect(corruptForReason).toBe(1);
  expect(corrupt).toBe(1);
  expect(await agent.counter('plumb_forward_batches_total', { kind: 'metrics' })).toBe(STEPS - 1);
  expect(await agent.counter('plumb_forward_dropped_total', { kind: 'metrics' })).toBe(0);
  expect(await collector.counter('plumb_ingest_batches_total', { kind: 'metrics', outcome: 'duplicate' })).toBe(0);
  // Started once and stayed up.
  expect(failures).toEqual([]);
  expect(agent.running).toBe(true);
  expect(agent.processes).toHaveLength(2);
  expect(probes).toBeGreaterThan(0);
}

describe('fault: a spool segment damaged on disk between two runs of the agent', () => {
  it('bytes flipped inside one record: that batch is skipped and counted, every other one delivered once', async () => {
    await damagedSpool('spool-corrupt', 'checksum', async (records) => {
      // A record with records before and after it in its own segment file (else the middle one).
      const inside = records.findIndex((r, i) => i > 0 && i < records.length - 1 && records[i - 1].file === r.file && records[i + 1].file === r.file);
      const victim = records[inside >= 0 ? inside : Math.floor(records.length / 2)];
      const buf = await readFile(victim.file);
      const mid = victim.payloadOffset + Math.floor(victim.payloadBytes / 2);
      for (let i = mid - 8; i < mid + 8; i++) buf[i] ^= 0xff;
      await writeFile(victim.file, buf);
      return victim;
    });
  }, 60_000);

  it('the last record torn half-way: the tail is cut and counted, every other batch delivered once', async () => {
    await damagedSpool('spool-corrupt-torn', 'torn', async (records) => {
      const victim = records[records.length - 1];
      await truncate(victim.file, victim.payloadOffset + Math.floor(victim.payloadBytes / 2));
      return victim;
    });
  }, 60_000);
});
