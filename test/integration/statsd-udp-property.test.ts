/**
 * Property through the UDP door: one bad line in a datagram never changes what happens to the
 * good lines beside it. Each run sends the good lines under one prefix, and the same lines with
 * one bad line among them under another, to the agent's UDP socket; after a flush, the
 * collector shows the same series with the same values under both prefixes.
 */
import dgram from 'node:dgram';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Aggregator } from '../../agent/statsd/aggregator.ts';
import { startAgent, startCollector, stopAllInProcess, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { scrape, scrapeText, valueOf } from '../helpers/prometheus.ts';
import { badLine, goodLine } from '../helpers/statsd-lines.ts';
import { waitFor } from '../helpers/wait.ts';

let collector: CollectorUnderTest;
let agent: AgentUnderTest;
let socket: dgram.Socket;

beforeAll(async () => {
  collector = await startCollector('collector: { listen: "127.0.0.1:0" }');
  agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
`);
  socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.connect(agent.statsdPort, '127.0.0.1', () => resolve()));
});

afterAll(async () => {
  await new Promise<void>((resolve) => (socket ? socket.close(() => resolve()) : resolve()));
  await stopAllInProcess();
});

/** Whether `line` alone is refused (a random string may well be a valid line). */
function badAlone(line: string): boolean {
  const agg = new Aggregator({ maxSeries: 100, maxSetMembers: 100, relativeAccuracy: 0.01, tagStyles: { influx: true, librato: true, signalfx: true }, maxEvents: 10, gaugeTtlMs: 3_600_000, extraTags: [] });
  agg.ingest(Buffer.from(line));
  return agg.stats.parseErrors.reduce((a, b) => a + b, 0) === 1;
}

/** The collector's samples of names under `prefix`, the prefix taken off, sorted. */
function under(text: string, prefix: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length))
    .sort();
}

describe('statsd UDP door: one bad line in a datagram', () => {
  it('never changes what happens to the good lines beside it', async () => {
    let run = 0;
    let datagrams = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(goodLine, { minLength: 1, maxLength: 15 }), badLine, fc.nat(), async (good, bad, at) => {
        fc.pre(!bad.includes('\n') && !bad.includes('\r') && badAlone(bad));
        run++;
        const a = `pa${run}.`;
        const b = `pb${run}.`;
        const withBad = good.map((l) => b + l);
        withBad.splice(at % (withBad.length + 1), 0, bad);
        for (const d of [good.map((l) => a + l).join('\n'), withBad.join('\n')]) {
          await new Promise<void>((resolve, reject) => socket.send(Buffer.from(d), (err) => (err ? reject(err) : resolve())));
        }
        datagrams += 2;
        await waitFor(async () => valueOf(await scrape(agent.url), 'plumb_statsd_datagrams_total') === datagrams, { what: `${datagrams} datagrams` });
        await agent.agent.flush();
        const text = await waitFor(
          async () => {
            const t = await scrapeText(collector.url);
            return under(t, `pa${run}_`).length > 0 && under(t, `pb${run}_`).length > 0 ? t : false;
          },
          { what: `run ${run} at the collector` },
        );
        expect(under(text, `pb${run}_`)).toEqual(under(text, `pa${run}_`));
      }),
      { numRuns: 15 },
    );
  });
});
