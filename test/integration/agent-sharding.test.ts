/**
 * One agent, two collectors: each interval's series are split between them by rendezvous
 * hashing, so every series lives on exactly one collector. When a collector stops, the batch
 * already addressed to it waits for it, and new intervals go to the other.
 */
import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { startAgent, startCollector, stopAllInProcess, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { scrape, samplesOf, valueOf } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';
import { ownerOf } from '../../agent/forward/shard.ts';

afterEach(async () => {
  await stopAllInProcess();
});

const SERIES = Array.from({ length: 40 }, (_, i) => `shard.s${i}.count`);
const prom = (name: string) => `${name.replaceAll('.', '_')}_total`;

let linesSent = 0;

/** One line per series, counted by the agent, then one interval ended. */
async function interval(agent: AgentUnderTest): Promise<void> {
  const socket = dgram.createSocket('udp4');
  try {
    for (let i = 0; i < SERIES.length; i += 10) {
      const payload = SERIES.slice(i, i + 10)
        .map((s) => `${s}:1|c`)
        .join('\n');
      await new Promise<void>((resolve, reject) => socket.send(payload, agent.statsdPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    socket.close();
  }
  linesSent += SERIES.length;
  await waitFor(async () => valueOf(await scrape(agent.url), 'plumb_statsd_lines_total') === linesSent, { what: `${linesSent} lines counted` });
  await agent.agent.flush();
}

async function totals(c: CollectorUnderTest): Promise<Map<string, number>> {
  const e = await scrape(c.url);
  const out = new Map<string, number>();
  for (const s of SERIES) {
    const v = samplesOf(e, prom(s))[0]?.value;
    if (v !== undefined) out.set(s, v);
  }
  return out;
}

describe('sharding across collectors', () => {
  it('puts each series on exactly one collector, and moves new intervals off a collector that stopped', async () => {
    linesSent = 0;
    const a = await startCollector(`collector: { listen: "127.0.0.1:0" }`);
    const b = await startCollector(`collector: { listen: "127.0.0.1:0" }`);
    const agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { enabled: false }
  forward: { collectors: ["${a.url}", "${b.url}"], retryInitial: 50ms, retryMax: 200ms, healthCheckInterval: 100ms }
`);
    const owner = new Map(SERIES.map((s) => [s, ownerOf(`${s}`, [a.url, b.url])]));
    const onA = SERIES.filter((s) => owner.get(s) === a.url);
    const onB = SERIES.filter((s) => owner.get(s) === b.url);
    expect(onA.length).toBeGreaterThan(5);
    expect(onB.length).toBeGreaterThan(5);

    await interval(agent);
    await interval(agent);
    await waitFor(async () => (await totals(a)).size === onA.length && (await totals(b)).size === onB.length, { what: 'both collectors to have their series' });
    await waitFor(async () => [...(await totals(a)).values(), ...(await totals(b)).values()].every((v) => v === 2), { what: 'two intervals applied' });
    const ta = await totals(a);
    const tb = await totals(b);
    expect([...ta.keys()].sort()).toEqual([...onA].sort());
    expect([...tb.keys()].sort()).toEqual([...onB].sort());

    // b stops: the next interval's share for b is addressed to it and waits (b is then marked down)
    await b.collector.stop();
    await interval(agent);
    const bUrl = b.url;
    await waitFor(async () => valueOf(await scrape(agent.url), 'plumb_forward_collector_up', { collector: bUrl }) === 0, { what: 'b marked down' });
    // later intervals go to a alone
    await interval(agent);
    await interval(agent);
    await waitFor(async () => {
      const t = await totals(a);
      return onA.every((s) => t.get(s) === 5) && onB.every((s) => t.get(s) === 2);
    }, { what: "a to hold every series of the last two intervals, and b's share of them" });
    expect(valueOf(await scrape(agent.url), 'plumb_forward_queue_batches')).toBe(1);

    // b comes back on its address: the waiting batch (b's share of the third interval) reaches it,
    // never a: a's totals above already exclude it
    const b2 = await startCollector(`collector: { listen: "${new URL(bUrl).host}" }`);
    await waitFor(async () => {
      const t = await totals(b2);
      return t.size === onB.length && [...t.values()].every((v) => v === 1);
    }, { what: "b's waiting batch delivered to b" });
    await waitFor(async () => valueOf(await scrape(agent.url), 'plumb_forward_collector_up', { collector: bUrl }) === 1, { what: 'b up again' });
    expect(onB.every((s) => ta.get(s) === undefined)).toBe(true);
    const after = await totals(a);
    expect(onB.every((s) => after.get(s) === 2)).toBe(true);
  });
});
