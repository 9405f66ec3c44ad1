/**
 * Fault: the collector cannot be reached for so long that the agent's metrics spool fills up.
 * The agent (spool limit 8 kb, shared by its metrics and traces lanes) forwards to a collector
 * that is not running. statsd counters arrive one line per step, and the scenario waits after
 * each step until the agent has accounted for it, so every step is one interval, one batch,
 * with a counter name and value of its own (`faults.spool_full.s<k>`, value k), and whether
 * that batch was spooled or dropped is seen step by step on the agent's /metrics
 * (`plumb_spool_records` against `plumb_forward_dropped_total{reason="spool_full"}`). Once a
 * few batches were dropped, the collector starts; the spool drains, then a few more steps are
 * sent with the collector up.
 *
 * Asserts: the collector holds exactly the steps that were spooled or sent after it came back,
 * each with its own value once (delivered + dropped == sent, in batches and in value); the drop
 * counter and the spool's own refusal counter match the dropped steps; the agent answered every
 * /healthz probe throughout and is still the first process.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { agentRole, collectorRole, counterSteps, counterTally, faultRun, freeUdpPort, metricsLaneName, report, samplesByName, since, waitFor, waitReady, watchHealth, type FaultRun } from './harness.ts';

/** Batches to see dropped before the collector comes back. */
const DROPS = 5;
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
    const dropped = (): Promise<number> => agent.counter('plumb_forward_dropped_total', { kind: 'metrics', reason: 'spool_full' });

    // While the collector is down: each step is either in the spool or dropped, nothing delivered.
    const droppedSteps = new Set<number>();
    let droppedSoFar = 0;
    const down = await counterSteps(
      statsdPort,
      { from: 1, to: MAX_STEPS },
      step,
      async (k) => {
        const [s, d] = [await spooled(), await dropped()];
        if (s + d !== k) return false;
        if (d > droppedSoFar) droppedSteps.add(k);
        droppedSoFar = d;
        return true;
      },
      { until: async () => droppedSteps.size >= DROPS },
    );
    const spooledWhileDown = await spooled();
    const refusedFull = await agent.counter('plumb_spool_refused_total', { spool, reason: 'full' });

    // The collector comes back: the spool drains.
    await collector.start();
    const back = performance.now();
    const expectedDown = new Map<string, number>();
    for (let k = 1; k <= down.steps; k++) if (!droppedSteps.has(k)) expectedDown.set(exposed(step(k).name), step(k).value);
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
    const expected = new Map([...expectedDown, ...[...up.sent].map(([n, v]) => [exposed(n), v] as const)]);
    const got = await samplesByName(collector, 'faults_spool_full_');
    const batchesSent = down.steps + up.steps;
    const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
    const droppedValue = [...droppedSteps].reduce((a, k) => a + step(k).value, 0);
    const dropCount = await dropped();
    const values = counterTally(sum(sent) - droppedValue, sum(got));
    report({
      scenario: 'spool-full',
      sent: batchesSent,
      delivered: got.size,
      lost: [...expected.keys()].filter((n) => !got.has(n)).length,
      duplicated: [...got].filter(([n, v]) => v > (sent.get(n) ?? 0)).length,
      recoveryMs: since(back, drained),
      notes: { dropped: dropCount, spooledWhileDown, valueSent: sum(sent), valueDropped: droppedValue, valueDelivered: sum(got), healthProbes: probes },
    });

    const output = `agent output:\n${agent.output().slice(-3000)}`;
    expect(droppedSteps.size).toBeGreaterThanOrEqual(DROPS);
    expect(spooledWhileDown).toBeGreaterThan(0);
    // Exactly the spooled and the later steps, each once with its own value.
    expect(Object.fromEntries(got), output).toEqual(Object.fromEntries(expected));
    expect(values).toMatchObject({ lost: 0, duplicated: 0 });
    // delivered + dropped == sent, in batches and in value
    expect(got.size + dropCount).toBe(batchesSent);
    expect(sum(got) + droppedValue).toBe(sum(sent));
    expect(spooledWhileDown + dropCount).toBe(down.steps);
    expect(dropCount).toBe(droppedSteps.size);
    expect(refusedFull).toBe(dropCount);
    expect(await agent.counter('plumb_forward_batches_total', { kind: 'metrics' })).toBe(got.size);
    // Healthy throughout, and never restarted.
    expect(failures).toEqual([]);
    expect(agent.running).toBe(true);
    expect(agent.processes).toHaveLength(1);
  }, 90_000);
});
