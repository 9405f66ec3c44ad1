/**
 * A large /metrics page goes out in pieces as the socket takes them rather than as one string
 * built first. Through the collector's HTTP door: the body is the store's exposition followed
 * by the rest (self-metrics), sent chunked, and promtool reads it. What a page shows when
 * batches land between two pieces is tested on the store (store-render-chunks.test.ts): loopback
 * socket buffers here hold megabytes, so a test over HTTP cannot make that happen reliably.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector, stopAllInProcess, type CollectorUnderTest } from '../helpers/processes.ts';
import { parseExposition, PROMTOOL, promtoolCheckMetrics } from '../helpers/prometheus.ts';
import { counter, MetricPoster } from '../helpers/metric-poster.ts';

const SERIES = 20_000;

let collector: CollectorUnderTest;

beforeAll(async () => {
  collector = await startCollector('collector:\n  listen: "127.0.0.1:0"\n');
  for (let b = 0; b < 4; b++) {
    const poster = new MetricPoster(`agent-${b}`);
    const metrics = [];
    for (let i = 0; i < SERIES / 4; i++) {
      const n = b * (SERIES / 4) + i;
      metrics.push(counter(`scrape.requests.m${n % 20}`, n, [`host:h${Math.floor(n / 20)}`, 'env:test']));
    }
    expect(await poster.post(collector.url, poster.batch(metrics))).toBe(true);
  }
});

afterAll(async () => {
  await stopAllInProcess();
});

describe('/metrics of many series', () => {
  it('streams the store exposition, then the self-metrics, chunked', async () => {
    const res = await fetch(`${collector.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.headers.get('transfer-encoding')).toBe('chunked');
    const text = await res.text();
    expect(text.startsWith(collector.collector.store.render())).toBe(true);
    const page = parseExposition(text);
    expect(page.samples.filter((s) => s.name === 'scrape_requests_m7_total')).toHaveLength(SERIES / 20);
    expect(page.samples.find((s) => s.name === 'plumb_metrics_series')?.value).toBe(SERIES);
    if (PROMTOOL !== null) {
      const checked = await promtoolCheckMetrics(text);
      expect(checked.code, checked.output).toBe(0);
    }
  });
});
