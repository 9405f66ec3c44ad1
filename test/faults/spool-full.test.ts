/**
 * Fault: the collector cannot be reached for so long that the agent's metrics spool fills up.
 * The agent (spool limit 8 kb, shared by its metrics and traces lanes) forwards to a collector
 * that is not running. statsd counters arrive one line per step, and the scenario waits after
 * each step until the agent has accounted for it, so every step is one interval, one batch,
 * with a counter name and value of its own (`faults.spool_full.s<k>`, value k), and whether
 * that batch was spooled or, the spool being full, merged into the interval waiting for room is
 * seen step by step on the agent's /metrics (`plumb_spool_records` against
 * `plumb_forward_intervals_merged_total`). Once a few intervals were merged, the collector starts;
 * the spool drains, then a few more steps are sent with the collector up (the first of them
 * carries the merged intervals).
 *
 * Asserts: the collector holds every step, each with its own value once: nothing dropped
 * (`plumb_forward_dropped_total` stays 0); the spool's own refusal counter matches the merged
 * steps; the agent answered every /healthz probe throughout and is still the first process.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { agentRole, collectorRole, counterSteps, counterTally, faultRun, freeUdpPort, metricsLaneName, report, samplesByName, since, waitFor, waitReady, watchHealth, type FaultRun } from './harness.ts';

/** Intervals to see merged before the collector comes back. */
const MERGES = 5;
/** Steps sent once the collector is back. */
const AFTER = 5;
const MAX_STEPS = 200;

let run: FaultRun;
afterEach(async () => {
  await run?.cleanup();
});

const step = (k: number): { name: string; value: number } => ({ name: `faults.spool_full.s${k}`, value: k });
const exposed = (name: string): string => `${name.replace(/\./g, '_')}_total`;

describe('fault: the collector is unreachable until the agent\'s spool is full', () => {
  it('the overflow is dropped and counted, the agent stays healthy, the spooled batches arrive once', async () => {
    run = faultRun('spool-full');
    const collector = await collectorRole(run, { start: false });
    const statsdPort = await freeUdpPort();
    const agent = await agentRole(run, {
      collectors: [collector.url],
      statsdPort,
      config: {
        statsd: { flushInterval: '100ms' },
        forward: { healthCheckInterval: '200ms', spool: { maxBytes: '8kb' } },
      },
    });
    await waitReady(agent);
    const health = watchHealth(agent.url);
    const spool = `forward_${metricsLaneName(collector.url)}`;
    const spooled = (): Promise<number> => agent.counter('plumb_spool_records', { spool });
    const merged = (): Promise<number> => agent.counter('plumb_forward_intervals_merged_total');
    const dropped = (): Promise<number> => agent.counter('plumb_forward_dropped_total', { kind: 'metrics', reason: 'spool_full' });

    // While the collector is down: each step is either in the spool or merged, nothing delivered.
    const mergedSteps = new Set<number>();
    let mergedSoFar = 0;
    const down = await counterSteps(
      statsdPort,
      { from: 1, to: MAX_STEPS },
      step,
      async (k) => {
        const [s, m] = [await spooled(), await merged()];
        if (s + m !== k) return false;
        if (m > mergedSoFar) mergedSteps.add(k);
        mergedSoFar = m;
        return true;
      },
      { until: async () => mergedSteps.size >= MERGES },
    );
    const spooledWhileDown = await spooled();
    const refusedFull = await agent.counter('plumb_spool_refused_total', { spool, reason: 'full' });

    // The collector comes back: the spool drains.
    await collector.start();
    const back = performance.now();
    const expectedDown = new Map<string, number>();
    for (let k = 1; k <= down.steps; k++) if (!mergedSteps.has(k)) expectedDown.set(exposed(step(k).name), step(k).value);
    const drained = await waitFor(
      async () => {
        const got = await samplesByName(collector, 'faults_spool_full_');
        return (await spooled()) === 0 && [...expectedDown].every(([name, v]) => (got.get(name) ?? 0) >= v) ? performance.now() : false;
      },
      { what: 'the spooled batches at the collector', timeoutMs: 20_000 },
    ).catch(() => performance.now());

    // And delivery goes on.
    const first = down.steps + 1;
    const up = await counterSteps(statsdPort, { from: first, to: first + AFTER - 1 }, step, async (k) => (await collector.counter(exposed(step(k).name))) > 0, { timeoutMs: 15_000 });

    const { probes, failures } = await health.stop();
    const sent = new Map([...[...down.sent].map(([n, v]) => [exposed(n), v] as const), ...[...up.sent].map(([n, v]) => [exposed(n), v] as const)]);
    // every step: the merged ones arrive with the first step after the collector is back
    const expected = sent;
    const got = await samplesByName(collector, 'faults_spool_full_');
    const batchesSent = spooledWhileDown + up.steps;
    const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
    const mergedValue = [...mergedSteps].reduce((a, k) => a + step(k).value, 0);
    const dropCount = await dropped();
    const values = counterTally(sum(sent), sum(got));
    report({
      scenario: 'spool-full',
      sent: batchesSent,
      delivered: got.size,
      lost: [...expected.keys()].filter((n) => !got.has(n)).length,
      duplicated: [...got].filter(([n, v]) => v > (sent.get(n) ?? 0)).length,
      recoveryMs: since(back, drained),
      notes: { merged: mergedSteps.size, dropped: dropCount, spooledWhileDown, valueSent: sum(sent), valueMerged: mergedValue, valueDelivered: sum(got), healthProbes: probes },
    });

    const output = `agent output:\n${agent.output().slice(-3000)}`;
    expect(mergedSteps.size).toBeGreaterThanOrEqual(MERGES);
    expect(spooledWhileDown).toBeGreaterThan(0);
    // Every step, each once with its own value: the merged ones too.
    expect(Object.fromEntries(got), output).toEqual(Object.fromEntries(expected));
    expect(values).toMatchObject({ lost: 0, duplicated: 0 });
    expect(dropCount).toBe(0);
    expect(spooledWhileDown + mergedSteps.size).toBe(down.steps);
    // each merged step was an append the full spool refused (empty intervals try the merged one again)
    expect(refusedFull).toBeGreaterThanOrEqual(mergedSteps.size);
    // the merged steps travelled in one batch once there was room: with the next step, or alone
    const batches = await agent.counter('plumb_forward_batches_total', { kind: 'metrics' });
    expect(batches).toBeGreaterThanOrEqual(batchesSent);
    expect(batches).toBeLessThanOrEqual(batchesSent + 1);
    // Healthy throughout, and never restarted.
    expect(failures).toEqual([]);
    expect(agent.running).toBe(true);
    expect(agent.processes).toHaveLength(1);
  }, 90_000);
});
