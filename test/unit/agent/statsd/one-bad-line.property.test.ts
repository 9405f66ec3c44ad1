/**
 * Property: one bad line in a datagram never changes what happens to the good lines of the same
 * datagram. A datagram of good lines is aggregated with and without one bad line put anywhere
 * in it; every series of the good lines must come out the same, and the bad line is counted as
 * exactly one parse error. Bad lines are arbitrary text, text near the protocol, and lines over
 * the shared limits, non-finite values, negative counters, timestamps out of range.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Aggregator, type AggregatorOptions } from '../../../../agent/statsd/aggregator.ts';
import { badLine, goodLine } from '../../../helpers/statsd-lines.ts';
import type { WireMetric } from '../../../../shared/wire.ts';

const options: AggregatorOptions = {
  maxSeries: 10_000,
  maxSetMembers: 1000,
  relativeAccuracy: 0.01,
  tagStyles: { influx: true, librato: true, signalfx: true },
  maxEvents: 100,
  gaugeTtlMs: 3_600_000,
  extraTags: ['host:h1'],
  maxTimestampSkewMs: 60_000,
};

/** The interval's series by key. */
function seriesOf(metrics: WireMetric[]): Map<string, WireMetric> {
  const out = new Map<string, WireMetric>();
  for (const m of metrics) out.set(`${m.type}|${m.name}|${m.tags.join(',')}`, m);
  return out;
}

function aggregate(datagram: string): { metrics: Map<string, WireMetric>; errors: number } {
  const agg = new Aggregator(options);
  agg.ingest(Buffer.from(datagram));
  return { metrics: seriesOf(agg.flush().metrics), errors: agg.stats.parseErrors.reduce((a, b) => a + b, 0) };
}

describe('statsd: one bad line in a datagram', () => {
  it('never changes what happens to the good lines beside it', () => {
    fc.assert(
      fc.property(fc.array(goodLine, { minLength: 1, maxLength: 30 }), badLine, fc.nat(), (good, bad, at) => {
        fc.pre(!bad.includes('\n') && !bad.includes('\r'));
        const alone = aggregate(bad);
        // only lines that are bad on their own (a random string may well be a valid line)
        fc.pre(alone.errors === 1);
        const base = aggregate(good.join('\n'));
        expect(base.errors).toBe(0);
        const lines = [...good];
        lines.splice(at % (lines.length + 1), 0, bad);
        const withBad = aggregate(lines.join('\n'));
        expect(withBad.errors).toBe(1);
        for (const [key, m] of base.metrics) expect(withBad.metrics.get(key), key).toEqual(m);
        // the bad line adds nothing with a value
        for (const [key, m] of withBad.metrics) {
          if (base.metrics.has(key)) continue;
          if (m.type === 'c') expect(m.value, key).toBe(0);
          else if (m.type === 's') expect(m.members, key).toEqual([]);
          else throw new Error(`the bad line ${JSON.stringify(bad)} made series ${key}`);
        }
      }),
      { numRuns: 400 },
    );
  });
});
