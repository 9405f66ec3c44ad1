/**
 * Alert rules over OTLP histograms and summaries: a latency SLO over an OTLP explicit-bucket
 * histogram counts good requests from the buckets (exact at a bound), a quantile threshold rule
 * reads the histogram's buckets, and a summary's quantiles and running count feed threshold and
 * rate rules.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCollector, stopAllInProcess, type CollectorUnderTest } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import { histogramAndSummaryRequest } from '../helpers/otlp-metrics.ts';

const RULES = `
rules:
  - slo: api-latency
    objective: 90
    period: 1h
    latency: { metric: http_server_duration_milliseconds, threshold: 50 }
    alerts:
      - { severity: page, long: 1m, short: 30s, burnRate: 1 }
  - alert: ApiP99Slow
    metric: http_server_duration_milliseconds
    aggregate: p99
    window: 1m
    op: ">"
    threshold: 100
  - alert: RpcP99Slow
    metric: rpc_latency_seconds
    where: { quantile: "0.99" }
    aggregate: max
    window: 1m
    op: ">"
    threshold: 1
  - alert: RpcCalls
    metric: rpc_latency_seconds_count
    aggregate: increase
    window: 1m
    op: ">="
    threshold: 15
`;

// 10 requests each time: 6 at most 50 ms (good), 3 up to 250 ms, 1 slower; the summary's count and sum are running totals
function request(i: number): Uint8Array {
  return histogramAndSummaryRequest({
    service: 'api',
    histogram: { count: 10, sum: 900, bucketCounts: [2, 4, 3, 1], explicitBounds: [10, 50, 250] },
    summary: { count: 10 * i, sum: 4 * i, quantiles: [[0.5, 0.2], [0.99, 1.5]] },
  });
}

describe('alert rules over OTLP histograms and summaries', () => {
  let c: CollectorUnderTest;

  afterAll(async () => {
    await stopAllInProcess();
  });

  it('evaluate the SLO, quantile and summary rules from the OTLP data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plumb-alerts-otlp-'));
    const rulesFile = join(dir, 'rules.yaml');
    await writeFile(rulesFile, RULES);
    c = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  alerts: { rulesFile: ${JSON.stringify(rulesFile)}, evaluationInterval: 100ms, watch: false }
  otlp: { enabled: true, http: { listen: "127.0.0.1:0" }, grpc: { enabled: false } }
`);
    for (let i = 1; i <= 3; i++) {
      const res = await fetch(`http://${c.collector.otlpAddresses.http}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: Buffer.from(request(i)) });
      expect(res.status).toBe(200);
    }
    type RulesBody = { data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } };
    const firing = await waitFor(async () => {
      const body = (await (await fetch(`${c.url}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } };
      const names = body.data.alerts.filter((a) => a.state === 'firing').map((a) => a.labels.alertname).sort();
      return names.length >= 4 ? names : null;
    }, { timeoutMs: 10_000, what: 'the four alerts firing' }).catch(async () => {
      const rules = (await (await fetch(`${c.url}/api/v1/rules`)).json()) as RulesBody;
      throw new Error(`not firing; rules: ${JSON.stringify(rules.data.groups.flatMap((g) => g.rules).map((r) => [r.name, r.health, r.lastError]))}`);
    });
    expect(firing).toEqual(['ApiP99Slow', 'RpcCalls', 'RpcP99Slow', 'SLOErrorBudgetBurn']);
    const metrics = await (await fetch(`${c.url}/metrics`)).text();
    // 18 good of 30 at a bound of the buckets: bad share 0.4 against a 10 % budget, exactly
    const burn = /plumb_slo_burn_rate\{slo="api-latency",window="1m"\} (\S+)/.exec(metrics);
    expect(Number(burn?.[1])).toBeCloseTo(4, 9);
  });
});
