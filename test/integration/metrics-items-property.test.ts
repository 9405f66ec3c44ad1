/**
 * Property through the collector's HTTP door: one bad item in a POST /v1/metrics batch never
 * changes what happens to the good items of the batch. Two collectors get the same good items,
 * one of them with a bad item put anywhere among them; both answer 200, the second names the bad
 * item's path, and both expose the same application series.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, stopAllInProcess, type CollectorUnderTest } from '../helpers/processes.ts';
import { scrapeText } from '../helpers/prometheus.ts';
import { badItem, goodItem } from '../helpers/metric-items.ts';

let clean: CollectorUnderTest;
let dirty: CollectorUnderTest;

beforeAll(async () => {
  clean = await startCollector('collector: { listen: "127.0.0.1:0" }');
  dirty = await startCollector('collector: { listen: "127.0.0.1:0" }');
});

afterAll(async () => {
  await stopAllInProcess();
});

async function post(c: CollectorUnderTest, id: string, metrics: unknown[]): Promise<{ status: number; body: { accepted: number; errors?: { path: string }[] } }> {
  const res = await fetch(`${c.url}/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id, agent: 'prop', seq: 1, start: 0, end: 1, metrics, events: [], serviceChecks: [] }),
  });
  return { status: res.status, body: (await res.json()) as { accepted: number; errors?: { path: string }[] } };
}

/** The application's series (plumb's own change with every request). */
async function appSeries(c: CollectorUnderTest): Promise<string> {
  const text = await scrapeText(c.url);
  return text
    .split('\n')
    .filter((l) => l !== '' && !/^(# (HELP|TYPE) )?plumb_/.test(l) && !/^(# (HELP|TYPE) )?(nodejs|process)_/.test(l))
    .join('\n');
}

describe('POST /v1/metrics: one bad item in a batch', () => {
  it('never changes what happens to the good items beside it', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(goodItem, { minLength: 1, maxLength: 10 }), badItem, fc.nat(), async (good, bad, at) => {
        run++;
        const items: unknown[] = [...good];
        const index = at % (items.length + 1);
        items.splice(index, 0, bad);
        const a = await post(clean, `run-${run}`, good);
        const b = await post(dirty, `run-${run}`, items);
        expect(a.status).toBe(200);
        expect(b.status).toBe(200);
        expect(b.body.accepted).toBe(a.body.accepted);
        expect(b.body.errors?.map((e) => e.path.split('/').slice(0, 3).join('/'))).toEqual([`/metrics/${index}`]);
        expect(await appSeries(dirty)).toBe(await appSeries(clean));
      }),
      { numRuns: 40 },
    );
  });
});
