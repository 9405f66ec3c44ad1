/**
 * Forwarding between collectors is exactly once without a queue of its own: every part of an
 * agent batch carries `<batch id>><owner>`, the agent is answered only when every part is placed,
 * and its retry — to the same collector or, through a load balancer, to another — produces the
 * same part ids, which each owner's dedupe recognises.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { startCollector, stopAllInProcess, tempDataDir, type CollectorUnderTest } from '../helpers/processes.ts';
import { freeTcpPorts } from '../helpers/ports.ts';
import { sumOf } from '../faults/harness.ts';
import { scrape } from '../helpers/prometheus.ts';
import { ownerOf, seriesKey } from '../../shared/membership.ts';
import type { MetricBatch } from '../../shared/wire.ts';

afterEach(async () => {
  await stopAllInProcess();
});

const SERIES = Array.from({ length: 30 }, (_, i) => `fwd.c${i}`);

function batch(id: string): MetricBatch {
  return { id, agent: 'agent-1', seq: 1, start: 0, end: 0, metrics: SERIES.map((name, i) => ({ type: 'c' as const, name, tags: [], value: i + 1 })), events: [], serviceChecks: [] };
}

async function post(url: string, b: MetricBatch): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/v1/metrics`, { method: 'POST', body: gzipSync(JSON.stringify(b)), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function totals(cs: CollectorUnderTest[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const c of cs) {
    const e = await scrape(c.url);
    for (const s of SERIES) {
      const v = sumOf(e, `${s.replace('.', '_')}_total`);
      if (v !== 0) out.set(s, (out.get(s) ?? 0) + v);
    }
  }
  return out;
}

describe('forwarding between collectors', () => {
  it('a batch retried while an owner is down, then through another collector, counts once', async () => {
    const ports = await freeTcpPorts(2);
    const urls = ports.map((p) => `http://127.0.0.1:${p}`);
    const dirs = [tempDataDir(), tempDataDir()];
    const yaml = (i: number): string => `collector: { listen: "127.0.0.1:${ports[i]}", dataDir: "${dirs[i]}", fleet: { members: ${JSON.stringify(urls)}, interval: 100ms, token: fleet-secret, timeout: 2s, handoffTimeout: 1s } }`;
    const a = await startCollector(yaml(0));
    let b = await startCollector(yaml(1));
    const onB = SERIES.filter((s) => ownerOf(seriesKey({ name: s, tags: [] }), urls) === urls[1]);
    expect(onB.length).toBeGreaterThan(3);
    expect(onB.length).toBeLessThan(SERIES.length - 3);

    // b is down: a applies its own part, cannot place b's, and asks the agent to retry
    await b.collector.stop(2000);
    const x = batch('agent-1@1:7:0');
    expect((await post(a.url, x)).status).toBe(503);
    expect((await post(a.url, x)).status).toBe(503); // the retry: a's part is recognised, b's still cannot be placed
    expect(sumOf(await scrape(a.url), 'plumb_fleet_forward_failures_total')).toBeGreaterThanOrEqual(2);

    // b is back on its port and data dir; the agent's next retry reaches b through the balancer
    b = await startCollector(yaml(1));
    const viaB = await post(b.url, x);
    expect(viaB.status).toBe(200);
    // and a retry that reaches a once more changes nothing
    const again = await post(a.url, x);
    expect(again).toMatchObject({ status: 200, body: { duplicate: true } });

    const t = await totals([a, b]);
    for (const [i, s] of SERIES.entries()) expect(t.get(s), s).toBe(i + 1);
    // each series on its owner only
    const eA = await scrape(a.url);
    for (const s of onB) expect(sumOf(eA, `${s.replace('.', '_')}_total`)).toBe(0);
    expect(sumOf(await scrape(a.url), 'plumb_fleet_received_series_total')).toBe(0);

    // the internal door wants the fleet's secret, not nothing and not an agent token
    for (const auth of [undefined, 'Bearer wrong']) {
      const res = await fetch(`${a.url}/internal/v1/metrics`, { method: 'POST', body: JSON.stringify(x), headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) } });
      expect(res.status).toBe(401);
    }
  });
});
