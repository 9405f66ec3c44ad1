/**
 * An ended interval written straight from its series as JSON text (EndedInterval.encode, what the
 * agent sends) against the wire objects of the same interval (toWire, what the tap, the memory
 * guard's merging and the collector's schema see): the same text, metric for metric, for every
 * type, and the same split between collectors.
 */
import { describe, expect, it } from 'vitest';
import { Aggregator, EXACT_SAMPLES, type AggregatorOptions, type EndedInterval } from '../../../../agent/statsd/aggregator.ts';
import { shardInterval } from '../../../../agent/forward/shard.ts';
import { aggregatorOptions } from '../../../../agent/config.ts';
import { loadPlumbConfig } from '../../../../cli/config.ts';
import { memberSeed, normalizeMember, ownerIndex, seriesKey } from '../../../../shared/membership.ts';
import type { WireDistribution } from '../../../../shared/wire.ts';

/** The agent's defaults, with room for every series of the test. */
const options = (): AggregatorOptions => ({ ...aggregatorOptions(loadPlumbConfig({ text: '', env: {} }).agent.statsd), maxSeries: 10_000 });

/** One interval's lines: every type, sample rates, deltas, odd text, few and many samples. */
function lines(round: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < 40; i++) {
    const tags = `#host:web-${i % 7},env:prod,path:/a/"b"\\c/${i % 3}`;
    out.push(`req.count.${i}:${i + 1}|c|${tags}`, `req.count.${i}:0.5|c|@0.25|${tags}`);
    out.push(`temp.${i}:${i * 1.5}|g|${tags}`, `temp.${i}:+${round}|g|${tags}`, `temp.${i}:-0.25|g`);
    out.push(`users.${i}:alice|s|${tags}`, `users.${i}:bö "b"\\|s|${tags}`, `users.${i}:${round}-${i}|s`);
    // few samples: exact, some weighted; many: only the sketch
    const n = i % 4 === 0 ? EXACT_SAMPLES + 10 : 1 + (i % 9);
    for (let k = 0; k < n; k++) {
      const v = ((k * 37 + i * 11) % 1000) / (k % 3 === 0 ? 7 : 1);
      out.push(`lat.${i}:${v}|ms|${i % 2 === 0 ? '@0.5|' : ''}${tags}`, `size.${i}:${-v}|h`, `dist.${i}:${v * 1e6}|d|#unit:µs`);
    }
  }
  out.push('no.tags:1|c', 'zero:0|ms', 'neg:-0|g');
  // a set only in the first interval: the second sends it once with no members
  if (round === 0) out.push('once.set:x|s|#k:v');
  return out;
}

function feed(agg: Aggregator, ls: string[]): void {
  for (let i = 0; i < ls.length; i += 25) agg.ingest(Buffer.from(ls.slice(i, i + 25).join('\n')));
}

/** Two aggregators fed the same lines, one interval after another. */
function twins(rounds: number): [Aggregator, Aggregator] {
  const a = new Aggregator(options());
  const b = new Aggregator(options());
  for (let r = 0; r < rounds - 1; r++) {
    feed(a, lines(r));
    feed(b, lines(r));
    a.flush(1000 * (r + 1));
    b.flush(1000 * (r + 1));
  }
  feed(a, lines(rounds - 1));
  feed(b, lines(rounds - 1));
  return [a, b];
}

async function encodeAll(ended: EndedInterval, owner: (name: string, tags: string[]) => number, owners: number, slice?: number): Promise<{ texts: string[][]; counts: number[] }> {
  const texts: string[][] = Array.from({ length: owners }, () => []);
  const counts = await ended.encode({ owner, write: (o, json) => texts[o].push(json) > 0, drain: async () => undefined }, owners, slice);
  return { texts, counts };
}

describe('an interval written as JSON from its series', () => {
  for (const rounds of [1, 2]) {
    it(`is JSON.stringify of each wire object, in order, for every type (interval ${rounds})`, async () => {
      const [a, b] = twins(rounds);
      const wire = (await a.end(5000).toWire()).metrics;
      const { texts, counts } = await encodeAll(b.end(5000), () => 0, 1, 7);
      expect(texts[0]).toEqual(wire.map((m) => JSON.stringify(m)));
      expect(counts).toEqual([wire.length]);
      const types = new Set(wire.map((m) => m.type));
      expect([...types].sort()).toEqual(['c', 'd', 'g', 'h', 'ms', 's']);
      // what the cases are meant to cover is really there
      const dist = wire.filter((m): m is WireDistribution => m.type === 'ms');
      expect(dist.some((m) => m.samples === undefined)).toBe(true);
      expect(dist.some((m) => m.weights !== undefined)).toBe(true);
      expect(dist.some((m) => m.samples !== undefined && m.weights === undefined)).toBe(true);
      const sets = wire.filter((m) => m.type === 's');
      if (rounds === 2) expect(sets.find((m) => m.name === 'once.set')).toEqual({ type: 's', name: 'once.set', tags: ['k:v'], members: [] });
      // and it reads back as the same objects
      expect(texts[0].map((t) => JSON.parse(t) as unknown)).toEqual(JSON.parse(JSON.stringify(wire)));
    });
  }

  it('splits between collectors as shardInterval splits the wire objects', async () => {
    const collectors = ['http://c1:9102', 'http://c2:9102', 'http://c3:9102'];
    const seeds = collectors.map((c) => memberSeed(normalizeMember(c)));
    const [a, b] = twins(2);
    const wire = await a.end(5000).toWire();
    const parts = shardInterval(wire, collectors);
    const { texts, counts } = await encodeAll(b.end(5000), (name, tags) => ownerIndex(seriesKey({ name, tags }), seeds), collectors.length);
    expect(texts).toEqual(parts.map((p) => p.metrics.map((m) => JSON.stringify(m))));
    expect(counts).toEqual(parts.map((p) => p.metrics.length));
    expect(counts.every((n) => n > 20)).toBe(true);
  });

  it('releases the series as it writes them, and lines arriving meanwhile count in the next interval', async () => {
    const agg = new Aggregator(options());
    feed(agg, lines(0));
    const ended = agg.end(1000);
    const n = ended.seriesCount;
    const writing = encodeAll(ended, () => 0, 1, 5);
    feed(agg, ['late:1|c']);
    const { counts } = await writing;
    expect(counts[0]).toBeGreaterThan(0);
    expect(counts[0]).toBeLessThanOrEqual(n);
    expect(ended.seriesCount).toBe(0);
    expect((await agg.end(2000).toWire()).metrics.filter((m) => m.type === 'c')).toEqual([{ type: 'c', name: 'late', tags: [], value: 1 }]);
  });
});
