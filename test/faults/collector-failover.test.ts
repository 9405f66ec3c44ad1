/**
 * Fault: one of two collectors is killed with SIGKILL while an agent shards statsd series across
 * both. One agent, both collectors configured, a 200 ms flush interval. Each round is one
 * datagram of 40 counter increments (`faults.failover.c00` … `c39`, known values) and one
 * datagram holding a whole known distribution of 1000 timer values
 * (`faults.failover.latency:v1:v2:…|d`): a datagram is parsed at once, so every interval holds
 * whole copies of the distribution, and so does every collector's share of it.
 *
 * The collector that owns the timer series (rendezvous) is killed a few rounds in; rounds go on.
 * Then the killed collector is started again on its data directory and port, so the batches that
 * were already addressed to it (waiting in its spool lane at the agent) drain into it.
 *
 * What is covered:
 * - Before the kill each series is on exactly the collector rendezvous hashing picks.
 * - After the kill, new intervals of the killed collector's series land on the survivor.
 * - At the end, each counter summed over both collectors' /metrics equals what was sent: nothing
 *   lost, nothing counted twice (a batch the dead collector had applied is never re-routed, and
 *   its replay after the restart is dropped by id).
 * - The timer: `_count` and `_sum` over both collectors equal what was sent, and on each collector
 *   exposing it the p99 is within 1% of the true p99 of what that collector holds (whole copies of
 *   the distribution, so the true value is known exactly). The summary window
 *   (`collector.metrics.window`) is 10 minutes, longer than the scenario, so it holds everything.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { scrape, samplesOf, type Exposition } from '../helpers/prometheus.ts';
import { ownerOf } from '../../agent/forward/shard.ts';
import { agentRole, collectorRole, counterTally, faultRun, freeUdpPort, metricsLaneName, report, since, sumOf, waitFor, waitReady, type FaultRun, type Role } from './harness.ts';

const SERIES = 40;
const counterName = (i: number): string => `faults.failover.c${String(i).padStart(2, '0')}`;
const counterValue = (i: number): number => (i % 7) + 1;
const TIMER = 'faults.failover.latency';
/** A skewed latency-like distribution of integers: 1 … 9802, denser at the bottom. */
const DIST = Array.from({ length: 1000 }, (_, i) => 1 + Math.floor((i * i) / 100));
const SORTED = [...DIST].sort((a, b) => a - b);
const DIST_SUM = DIST.reduce((a, b) => a + b, 0);
/** Sent in a fixed shuffled order (a sketch does not care; the datagram is just not sorted). */
const SHUFFLED = DIST.map((v, i) => ({ v, k: (i * 7919) % DIST.length })).sort((a, b) => a.k - b.k).map((e) => e.v);
const Q = 0.99;
const MIN_ROUNDS = 6;

/**
 * The q-quantile of `copies` whole copies of DIST, as DDSketch ranks it: the value at index
 * floor(q × (n − 1)) of the sorted values. The sketch answers within its relative accuracy (1%) of it.
 */
function trueQuantile(copies: number, q: number): number {
  const index = Math.floor(q * (copies * DIST.length - 1));
  return SORTED[Math.floor(index / copies)];
}

let run: FaultRun;
afterEach(async () => {
  await run?.cleanup();
});

function send(socket: dgram.Socket, port: number, payload: string): Promise<void> {
  return new Promise((resolve, reject) => socket.send(payload, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

function counterSamples(e: Exposition): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < SERIES; i++) {
    const s = samplesOf(e, `${counterName(i).replaceAll('.', '_')}_total`);
    if (s.length > 0) out.set(counterName(i), s.reduce((n, x) => n + x.value, 0));
  }
  return out;
}

interface TimerView {
  count: number;
  sum: number;
  p99: number;
}

function timerOf(e: Exposition): TimerView | null {
  const base = TIMER.replaceAll('.', '_');
  const count = sumOf(e, `${base}_count`);
  if (count === 0) return null;
  return { count, sum: sumOf(e, `${base}_sum`), p99: samplesOf(e, base, { quantile: String(Q) })[0]?.value ?? NaN };
}

describe('fault: kill -9 of one of two collectors while the agent shards across both', () => {
  it('series move to the survivor; every counter exact over both; p99 within 1%', async () => {
    run = faultRun('collector-failover');
    const collectorConfig = { metrics: { window: '10m' } };
    const a = await collectorRole(run, { name: 'collector-a', config: collectorConfig });
    const b = await collectorRole(run, { name: 'collector-b', config: collectorConfig });
    const urls = [a.url, b.url];
    const statsdPort = await freeUdpPort();
    const agent = await agentRole(run, { collectors: urls, statsdPort, config: { forward: { timeout: '5s', healthCheckInterval: '200ms', spool: { segmentBytes: '1mb' } } } });
    await waitReady(agent);

    // The timer's owner is the one to kill, so its series is among those that move.
    const victim: Role = ownerOf(TIMER, urls) === a.url ? a : b;
    const survivor: Role = victim === a ? b : a;
    const ownedByVictim = Array.from({ length: SERIES }, (_, i) => counterName(i)).filter((n) => ownerOf(n, urls) === victim.url);
    const victimLane = `forward_${metricsLaneName(victim.url)}`;

    const socket = dgram.createSocket('udp4');
    run.defer(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    const sent = new Map<string, number>();
    let rounds = 0;
    let lines = 0;
    const counterDatagram = Array.from({ length: SERIES }, (_, i) => `${counterName(i)}:${counterValue(i)}|c`).join('\n');
    const timerDatagram = `${TIMER}:${SHUFFLED.join(':')}|d`;
    /** One round, confirmed: the agent counted its lines before the next is sent. */
    const round = async (): Promise<void> => {
      await send(socket, statsdPort, counterDatagram);
      await send(socket, statsdPort, timerDatagram);
      lines += SERIES + 1;
      rounds++;
      for (let i = 0; i < SERIES; i++) sent.set(counterName(i), (sent.get(counterName(i)) ?? 0) + counterValue(i));
      await waitFor(async () => (await agent.counter('plumb_statsd_lines_total')) === lines, { what: `the agent to count round ${rounds}`, timeoutMs: 5000, intervalMs: 10 });
    };

    // Before the fault: rounds until both collectors show their share.
    for (let r = 0; r < MIN_ROUNDS || (await a.counter('plumb_ingest_batches_total', { kind: 'metrics', outcome: 'applied' })) === 0 || (await b.counter('plumb_ingest_batches_total', { kind: 'metrics', outcome: 'applied' })) === 0; r++) {
      if (r > 200) throw new Error('both collectors never received a batch');
      await round();
    }
    const sharded = { a: counterSamples(await scrape(a.url)), b: counterSamples(await scrape(b.url)) };
    const roundsBeforeKill = rounds;

    await victim.kill();
    const killed = performance.now();
    // Rounds go on until every series of the dead collector has landed on the survivor.
    const moved = await waitFor(
      async () => {
        await round();
        const onSurvivor = counterSamples(await scrape(survivor.url));
        const timer = timerOf(await scrape(survivor.url));
        return ownedByVictim.every((n) => (onSurvivor.get(n) ?? 0) > 0) && timer !== null ? performance.now() : false;
      },
      { what: "the killed collector's series on the survivor", timeoutMs: 20_000, intervalMs: 50 },
    );
    for (let r = 0; r < MIN_ROUNDS; r++) await round();
    const roundsAfterKill = rounds - roundsBeforeKill;
    // Everything flushed: what remains for the victim waits in its lane, the rest was delivered.
    await waitFor(async () => (await agent.counter('plumb_forward_queue_batches')) === (await agent.counter('plumb_spool_records', { spool: victimLane })), {
      what: 'every batch for the survivor delivered',
      timeoutMs: 10_000,
    });
    const flushes = await agent.counter('plumb_agent_flushes_total');
    await waitFor(async () => (await agent.counter('plumb_agent_flushes_total')) >= flushes + 2, { what: 'the last round flushed' });
    const waiting = await agent.counter('plumb_spool_records', { spool: victimLane });
    const survivorBeforeRestart = counterSamples(await scrape(survivor.url));

    await victim.start();
    const restarted = performance.now();
    const drained = await waitFor(async () => ((await agent.counter('plumb_forward_queue_batches')) === 0 ? performance.now() : false), { what: "the victim's lane drained", timeoutMs: 30_000 }).catch(() => performance.now());

    const final = { victim: await scrape(victim.url), survivor: await scrape(survivor.url) };
    const onVictim = counterSamples(final.victim);
    const onSurvivor = counterSamples(final.survivor);
    let counterSent = 0;
    let counterCounted = 0;
    const mismatches: string[] = [];
    for (const [name, value] of sent) {
      const counted = (onVictim.get(name) ?? 0) + (onSurvivor.get(name) ?? 0);
      counterSent += value;
      counterCounted += counted;
      if (counted !== value) mismatches.push(`${name}: sent ${value}, counted ${counted}`);
    }
    const counters = counterTally(counterSent, counterCounted);
    const timers = { victim: timerOf(final.victim), survivor: timerOf(final.survivor) };
    const timerChecks = Object.entries(timers)
      .filter((e): e is [string, TimerView] => e[1] !== null)
      .map(([who, t]) => {
        const copies = t.count / DIST.length;
        const expected = Number.isInteger(copies) ? trueQuantile(copies, Q) : NaN;
        return { who, copies, p99: t.p99, expected, error: Math.abs(t.p99 - expected) / expected, sumOk: t.sum === copies * DIST_SUM };
      });
    const timerCount = timerChecks.reduce((n, t) => n + t.copies, 0);
    report({
      scenario: 'collector-failover',
      sent: counterSent,
      delivered: counters.delivered,
      lost: counters.lost,
      duplicated: counters.duplicated,
      recoveryMs: since(restarted, drained),
      notes: {
        rounds,
        roundsBeforeKill,
        roundsAfterKill,
        seriesMoved: ownedByVictim.length,
        moveMs: since(killed, moved),
        waitingInLane: waiting,
        victimReplays: await victim.counter('plumb_ingest_batches_total', { kind: 'metrics', outcome: 'duplicate' }),
        timerCopies: timerCount,
        p99: timerChecks.map((t) => `${t.who}:${t.p99}/${t.expected}`).join(','),
        p99MaxError: Math.max(...timerChecks.map((t) => t.error)).toFixed(4),
      },
    });

    const output = `victim output:\n${victim.output().slice(-2000)}\nagent output:\n${agent.output().slice(-2000)}`;
    // Sharding before the fault: each series on its rendezvous owner only.
    expect(ownedByVictim.length).toBeGreaterThan(0);
    expect(ownedByVictim.length).toBeLessThan(SERIES);
    for (const [who, role] of [['a', a], ['b', b]] as const) {
      expect([...sharded[who].keys()].sort(), `series on ${role.name} before the kill`).toEqual(
        Array.from({ length: SERIES }, (_, i) => counterName(i)).filter((n) => ownerOf(n, urls) === role.url && sharded[who].has(n)),
      );
    }
    expect(sharded.a.size + sharded.b.size).toBe(SERIES);
    // After the kill the survivor held the victim's series too (new intervals).
    expect(ownedByVictim.every((n) => (survivorBeforeRestart.get(n) ?? 0) > 0)).toBe(true);
    // Exact totals over both collectors.
    expect(mismatches, output).toEqual([]);
    expect(counters).toMatchObject({ lost: 0, duplicated: 0 });
    // The timer: every value once over both, whole copies on each, p99 within 1%.
    expect(timerCount).toBe(rounds);
    expect(timerChecks.length).toBeGreaterThanOrEqual(1);
    for (const t of timerChecks) {
      expect(Number.isInteger(t.copies), `${t.who} holds whole copies of the distribution`).toBe(true);
      expect(t.sumOk).toBe(true);
      expect(t.error, `${t.who} p99 ${t.p99} against ${t.expected}`).toBeLessThanOrEqual(0.01);
    }
    expect(timers.survivor).not.toBeNull();
    expect(agent.running && survivor.running && victim.running).toBe(true);
  }, 120_000);
});
