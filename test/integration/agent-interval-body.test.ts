/**
 * What an agent posts for an interval, written straight from its series (the usual path), is the
 * same body, byte for byte after the batch's own id, sequence and times, as the one built from
 * wire objects (the path taken while someone taps the aggregator), for each of three collectors
 * the interval is sharded to: every metric type, two intervals (gauge deltas, a set that got no
 * member), events and service checks. And it is what the collectors acknowledge.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EndedInterval } from '../../agent/statsd/aggregator.ts';
import { startAgent, stopAllInProcess, type AgentUnderTest } from '../helpers/processes.ts';
import { startScriptedCollector, stopScriptedCollectors, type ScriptedCollector } from '../helpers/scripted-collector.ts';
import { waitFor } from '../helpers/wait.ts';
import type { MetricBatch } from '../../shared/wire.ts';

afterEach(async () => {
  await stopAllInProcess();
  await stopScriptedCollectors();
});

function lines(round: number): string {
  const out: string[] = [];
  for (let i = 0; i < 60; i++) {
    const tags = `#host:web-${i % 5},path:/x/"y"\\${i % 3}`;
    out.push(`c.${i}:${i + 1}|c|${tags}`, `c.${i}:2|c|@0.5|${tags}`, `g.${i}:${i / 4}|g`, `g.${i}:+${round + 1}|g`);
    if (round === 0 || i % 2 === 0) out.push(`s.${i}:m${i}|s|${tags}`, `s.${i}:ü "q"|s|${tags}`);
    const n = i % 5 === 0 ? 80 : 1 + (i % 6);
    for (let k = 0; k < n; k++) out.push(`t.${i}:${(k * 13 + i) % 500}|ms|${k % 2 === 0 ? '@0.25|' : ''}${tags}`, `h.${i}:${k / 3}|h`, `d.${i}:${k * 1000}|d|#u:µs`);
  }
  out.push(`_e{6,4}:deploy|v${round}.0|d:1700000000|#svc:api`, `_e{5,2}:other|ok|d:1700000001`, `_sc|db.up|0|#svc:db`, `_sc|cache.up|1|m:slow`);
  return out.join('\n');
}

async function agentFor(collectors: ScriptedCollector[]): Promise<AgentUnderTest> {
  return startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { enabled: false }
  forward: { collectors: ${JSON.stringify(collectors.map((c) => c.url))}, healthCheckInterval: 100ms, retryInitial: 50ms, retryMax: 200ms }
`);
}

/** Two intervals through `agent`; the bodies each collector acknowledged for them. */
async function twoIntervals(agent: AgentUnderTest, collectors: ScriptedCollector[]): Promise<string[][]> {
  const before = collectors.map((c) => c.acknowledged.length);
  for (const round of [0, 1]) {
    const text = lines(round);
    for (let at = 0; at < text.length; ) {
      let end = text.indexOf('\n', at + 1200);
      if (end < 0) end = text.length;
      agent.agent.aggregator.ingest(Buffer.from(text.slice(at, end)));
      at = end + 1;
    }
    await agent.agent.flush();
  }
  await waitFor(() => agent.agent.forwarder.queuedBatches === 0, { what: 'every batch acknowledged' });
  return collectors.map((c, i) => c.acknowledged.slice(before[i]).map((r) => r.text));
}

/** The body without what differs between two agents and two runs: id, agent, seq, start, end. */
function content(body: string): string {
  const b = JSON.parse(body) as MetricBatch;
  expect(body.startsWith(`{"id":${JSON.stringify(b.id)},"agent":${JSON.stringify(b.agent)},"seq":${b.seq},"start":${b.start},"end":${b.end},"metrics":[`)).toBe(true);
  return body.slice(body.indexOf(',"metrics":['));
}

describe('the body of a metric interval', () => {
  it('is the same written from the series as built from wire objects, for each collector', async () => {
    const collectors = await Promise.all([0, 1, 2].map(() => startScriptedCollector()));
    const encode = vi.spyOn(EndedInterval.prototype, 'encode');
    const toWire = vi.spyOn(EndedInterval.prototype, 'toWire');
    const streamed = await twoIntervals(await agentFor(collectors), collectors);
    expect([encode.mock.calls.length, toWire.mock.calls.length]).toEqual([2, 0]);

    const tapped = await agentFor(collectors);
    const tap = tapped.agent.taps.tap('aggregator', {});
    let built: string[][];
    try {
      built = await twoIntervals(tapped, collectors);
    } finally {
      tapped.agent.taps.release(tap);
    }
    expect([encode.mock.calls.length, toWire.mock.calls.length]).toEqual([2, 2]);
    vi.restoreAllMocks();

    for (let c = 0; c < collectors.length; c++) {
      expect(streamed[c]).toHaveLength(2);
      for (let k = 0; k < 2; k++) {
        const [a, b] = [content(streamed[c][k]), content(built[c][k])];
        let at = 0;
        while (at < a.length && a[at] === b[at]) at++;
        expect(a === b ? '' : `collector ${c} interval ${k} from ${at}: ${a.slice(at - 80, at + 80)} | ${b.slice(at - 80, at + 80)}`).toBe('');
      }
      const metrics = streamed[c].map((b) => (JSON.parse(b) as MetricBatch).metrics.length);
      expect(Math.min(...metrics)).toBeGreaterThan(20);
    }
    const all = streamed.flat().map((b) => JSON.parse(b) as MetricBatch);
    // every collector got a share, all types are there, ids are the agent's and distinct
    expect(new Set(all.flatMap((b) => b.metrics.map((m) => m.type)))).toEqual(new Set(['c', 'g', 's', 'ms', 'h', 'd']));
    expect(all.flatMap((b) => b.events.map((e) => e.title)).sort()).toEqual(['deploy', 'deploy', 'other', 'other']);
    expect(all.flatMap((b) => b.serviceChecks.map((s) => s.name)).sort()).toEqual(['cache.up', 'cache.up', 'db.up', 'db.up']);
    expect(new Set(all.map((b) => b.id)).size).toBe(all.length);
    // the second interval has the sets that got no member, once, empty
    const empty = all.flatMap((b) => b.metrics.filter((m) => m.type === 's' && m.members.length === 0));
    expect(empty).toHaveLength(30);
  });
});
