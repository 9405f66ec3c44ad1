/**
 * Scale-up without a series exposed twice: two collectors of a fleet (members file) take counters,
 * then a third joins the file. The two re-read the list and hand the series the newcomer now owns
 * to it, through the same handoff as a graceful stop, and stop exposing them once it acknowledged.
 * What must hold: every series exposed by exactly one collector, its owner among the three, and
 * each counter's sum over the collectors exactly what was sent, before and after more traffic.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startCollector, stopAllInProcess, tempDataDir, type CollectorUnderTest } from '../helpers/processes.ts';
import { freeTcpPorts } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { sumOf } from '../faults/harness.ts';
import { scrape } from '../helpers/prometheus.ts';
import { ownerOf, seriesKey } from '../../shared/membership.ts';
import type { MetricBatch } from '../../shared/wire.ts';

afterEach(async () => {
  await stopAllInProcess();
});

const SERIES = Array.from({ length: 40 }, (_, i) => `up.c${i}`);

function batch(id: string, k: number): MetricBatch {
  return { id, agent: 'agent-1', seq: k, start: 0, end: 0, metrics: SERIES.map((name, i) => ({ type: 'c' as const, name, tags: [], value: i + 1 })), events: [], serviceChecks: [] };
}

async function post(url: string, b: MetricBatch): Promise<number> {
  const res = await fetch(`${url}/v1/metrics`, { method: 'POST', body: gzipSync(JSON.stringify(b)), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
  return res.status;
}

/** Per series, the value each collector exposes (0: not exposed). */
async function exposed(cs: CollectorUnderTest[]): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  const scrapes = await Promise.all(cs.map((c) => scrape(c.url)));
  for (const s of SERIES) out.set(s, scrapes.map((e) => sumOf(e, `${s.replace('.', '_')}_total`)));
  return out;
}

describe('fleet scale-up', () => {
  it('a third collector joins: each series ends up on exactly one collector, counted exactly', async () => {
    const ports = await freeTcpPorts(3);
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const dir = tempDataDir();
    const membersFile = path.join(dir, 'members');
    await writeFile(membersFile, `${urls[0]}\n${urls[1]}\n`);
    const yaml = (i: number): string =>
      `collector: { listen: "127.0.0.1:${ports[i]}", fleet: { membersFile: "${membersFile}", interval: 100ms, token: fleet-secret, timeout: 2s, handoffTimeout: 2s } }`;
    const [a, b] = await Promise.all([startCollector(yaml(0)), startCollector(yaml(1))]);

    // traffic through both, each routing by the two-member list
    let sent = 0;
    for (let k = 0; k < 6; k++) {
      expect(await post([a, b][k % 2].url, batch(`agent-1@1:${k}:0`, k))).toBe(200);
      sent++;
    }
    const before = await exposed([a, b]);
    for (const s of SERIES) expect(before.get(s)?.filter((v) => v !== 0).length, s).toBe(1);

    // the third starts (it is not listed yet: it owns nothing), then the file names it
    const c = await startCollector(yaml(2));
    await writeFile(membersFile, `${urls.join('\n')}\n`);
    const onC = SERIES.filter((s) => ownerOf(seriesKey({ name: s, tags: [] }), urls) === urls[2]);
    expect(onC.length).toBeGreaterThan(3);

    const all = [a, b, c];
    const settled = async (perSeries: number): Promise<boolean> => {
      const e = await exposed(all);
      return SERIES.every((s, i) => {
        const v = e.get(s) ?? [];
        const owner = urls.indexOf(ownerOf(seriesKey({ name: s, tags: [] }), urls));
        return v.filter((x) => x !== 0).length === 1 && v[owner] === perSeries * (i + 1);
      });
    };
    await waitFor(() => settled(sent), { timeoutMs: 15_000, intervalMs: 100, what: 'every series on its owner among three, exactly once' });

    // more traffic, through each collector: still one collector per series, still exact
    for (let k = 6; k < 12; k++) {
      expect(await post(all[k % 3].url, batch(`agent-1@1:${k}:0`, k))).toBe(200);
      sent++;
    }
    await waitFor(() => settled(sent), { timeoutMs: 15_000, intervalMs: 100, what: 'exact counts after the scale-up' });
    const e = await exposed(all);
    for (const [i, s] of SERIES.entries()) expect((e.get(s) ?? []).reduce((x, y) => x + y, 0), s).toBe(sent * (i + 1));

    // counted in the handoff metrics, on both sides
    let seriesSent = 0;
    for (const x of [a, b]) seriesSent += sumOf(await scrape(x.url), 'plumb_fleet_handoff_series_sent_total');
    expect(seriesSent).toBe(onC.length);
    expect(sumOf(await scrape(c.url), 'plumb_fleet_handoff_series_received_total')).toBe(onC.length);
  }, 60_000);
});
