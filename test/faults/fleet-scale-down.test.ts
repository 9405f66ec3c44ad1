/**
 * Fault: a fleet of three collectors loses one by a graceful scale-down, under steady statsd and
 * log load. Two agents know one URL (a TCP round-robin proxy standing in for the Kubernetes
 * Service); the collectors read their member list from a file, as they would read the A records
 * of a headless Service.
 *
 * The scale-down goes the way Kubernetes runs it: the pod leaves the Service's endpoints and the
 * headless Service's records (the proxy stops sending it new connections, the members file loses
 * it), the other collectors re-read the list and take over its series, then it gets SIGTERM: it
 * stops accepting, hands every series it holds (cumulative counters included) to their new owners,
 * drains its file sink and exits 0.
 *
 * What must hold: every log line exactly once across the three collectors' file sinks (the one
 * that left keeps its files on its volume), and every counter exactly the number sent, summed
 * over the two collectors that remain: nothing lost, nothing counted twice.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { agentRole, awaitDelivery, collectorRole, counterTally, faultRun, fileSinkEvents, freeUdpPort, lineNumbers, report, sendCounter, waitFor, waitReady, writeLog, type FaultRun, type Role } from './harness.ts';
import { freeTcpPorts } from '../helpers/ports.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';

const LINES = 20_000;
const RATE = 4000;
const COUNTERS = 12;
const INCREMENTS = 2000;

let run: FaultRun;
afterEach(async () => {
  await run?.cleanup();
});

async function members(c: Role): Promise<string[]> {
  return ((await (await fetch(`${c.url}/api/v1/fleet`)).json()) as { members: string[] }).members;
}

describe('fault: scale-down of a fleet from three collectors to two', () => {
  it('no log line lost or duplicated, no counter counted twice', async () => {
    run = faultRun('fleet-scale-down');
    const ports = await freeTcpPorts(3);
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const membersFile = run.path('members');
    await writeFile(membersFile, `${urls.join('\n')}\n`);
    const collectors: Role[] = [];
    for (let i = 0; i < 3; i++) {
      collectors.push(
        await collectorRole(run, {
          name: `collector-${'abc'[i]}`,
          port: ports[i],
          start: false,
          logs: { sinks: { file: { flushInterval: '100ms' } } },
          config: { fleet: { membersFile, interval: '300ms', token: 'fleet-secret', handoffTimeout: '10s' } },
        }),
      );
    }
    const started = Promise.all(collectors.map((c) => c.start(90_000)));
    const [a, b, leaving] = collectors;
    const proxy = await startTcpProxy(urls);
    run.defer(() => proxy.close());

    const agents: (Role & { statsdPort: number; file: string })[] = [];
    for (let i = 0; i < 2; i++) {
      const statsdPort = await freeUdpPort();
      const file = run.path(`app-${i}.log`);
      const agent = await agentRole(run, {
        name: `agent-${i}`,
        collectors: [proxy.url],
        files: [file],
        statsdPort,
        start: false,
        config: { forward: { timeout: '5s', spool: { segmentBytes: '1mb' } } },
      });
      agents.push(Object.assign(agent, { statsdPort, file }));
    }
    await started;
    await Promise.all(agents.map((agent) => agent.start(90_000)));
    for (const agent of agents) await waitReady(agent, 60_000);

    const writers = agents.map((agent, i) => writeLog(run, { file: agent.file, count: LINES, rate: RATE, prefix: `agent${i}` }));
    const names = Array.from({ length: COUNTERS }, (_, k) => `fleet.scale.c${k}`);
    const statsd = Promise.all(agents.flatMap((agent) => names.map((n) => sendCounter(agent.statsdPort, n, { increments: INCREMENTS, perTick: 40, tickMs: 20 }))));

    // load is flowing and the collector about to leave holds series of its own
    await waitFor(async () => ((await (await fetch(`${leaving.url}/api/v1/fleet`)).json()) as { series: { held: number } }).series.held > 0, { what: 'the leaving collector to hold series', timeoutMs: 30_000 });
    const heldBefore = ((await (await fetch(`${leaving.url}/api/v1/fleet`)).json()) as { series: { held: number } }).series.held;

    // the pod leaves the endpoints and the headless Service's records…
    proxy.setBackends([a.url, b.url]);
    await writeFile(membersFile, `${a.url}\n${b.url}\n`);
    await waitFor(async () => (await members(a)).length === 2 && (await members(b)).length === 2, { what: 'the others to re-read the member list' });
    // …then gets SIGTERM
    const exit = await leaving.stop(30_000);
    expect(exit, leaving.output().slice(-3000)).toEqual({ code: 0, signal: null });
    const output = leaving.output();
    expect(output).toMatch(/series handed to their new owners/);

    const sent = await statsd;
    for (const w of writers) expect((await w.done()).written).toBe(LINES);
    // the agents received every increment (a UDP loss would not be the fleet's doing)
    for (const agent of agents) await waitFor(async () => (await agent.counter('plumb_statsd_lines_total')) === COUNTERS * INCREMENTS, { what: `${agent.name} to count every increment` });

    // logs: every line once over all three file sinks
    const read = async (): Promise<number[][]> => {
      const events = [...(await fileSinkEvents(a.dataDir)), ...(await fileSinkEvents(b.dataDir)), ...(await fileSinkEvents(leaving.dataDir))];
      return agents.map((_, i) => lineNumbers(events, `agent${i}`));
    };
    const settled = async (): Promise<boolean> => {
      for (const agent of agents) if ((await agent.counter('plumb_tail_lines_total')) < LINES || (await agent.counter('plumb_tail_unacked_batches')) > 0) return false;
      for (const c of [a, b]) if ((await c.counter('plumb_sink_queue_events', { sink: 'file' })) > 0) return false;
      return true;
    };
    const deliveries = [];
    for (let i = 0; i < agents.length; i++) deliveries.push(await awaitDelivery(LINES, async () => (await read())[i], { ready: settled, timeoutMs: 60_000, intervalMs: 250 }));

    // counters: exactly what was sent, summed over the two that remain
    // each agent sent every counter INCREMENTS times
    const expected = sent.length === 2 * COUNTERS ? 2 * INCREMENTS : NaN;
    const counted = async (name: string): Promise<number> => (await a.counter(`${name.replaceAll('.', '_')}_total`)) + (await b.counter(`${name.replaceAll('.', '_')}_total`));
    await waitFor(async () => {
      for (const n of names) if ((await counted(n)) < expected) return false;
      return (await agents[0].counter('plumb_forward_queue_batches')) === 0 && (await agents[1].counter('plumb_forward_queue_batches')) === 0;
    }, { what: 'every counter total at the remaining collectors', timeoutMs: 30_000 }).catch(() => undefined);
    const tallies = await Promise.all(names.map(async (n) => counterTally(2 * INCREMENTS, await counted(n))));

    const received = (await a.counter('plumb_fleet_handoff_series_received_total')) + (await b.counter('plumb_fleet_handoff_series_received_total'));
    const lost = deliveries.reduce((n, d) => n + d.lost, 0);
    const duplicated = deliveries.reduce((n, d) => n + d.duplicated, 0);
    report({
      scenario: 'fleet-scale-down',
      sent: 2 * LINES,
      delivered: deliveries.reduce((n, d) => n + d.delivered, 0),
      lost,
      duplicated,
      recoveryMs: 0,
      notes: {
        seriesHeldByLeaving: heldBefore,
        seriesHandedOver: received,
        counterSent: COUNTERS * 2 * INCREMENTS,
        counterCounted: tallies.reduce((n, t) => n + t.delivered + t.duplicated, 0),
        forwardedSeries: (await a.counter('plumb_fleet_forwarded_series_total')) + (await b.counter('plumb_fleet_forwarded_series_total')),
      },
    });
    const where = `a:\n${a.output().slice(-1500)}\nb:\n${b.output().slice(-1500)}\nleaving:\n${output.slice(-2000)}`;
    for (const d of deliveries) {
      expect(d, where).toMatchObject({ complete: true, lost: 0, unexpected: 0 });
      expect(d.duplicated, `duplicates ${JSON.stringify(d.examples.duplicated)}`).toBe(0);
    }
    expect(received).toBeGreaterThan(0);
    for (const t of tallies) expect(t, where).toMatchObject({ lost: 0, duplicated: 0 });
  }, 150_000);
});
