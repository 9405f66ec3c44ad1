/**
 * collector.limits through the HTTP door: metrics over the label and per-agent limits are
 * refused one by one while the rest of their batch applies; above maxHeapBytes ingest answers
 * 429; a log sink queue above its high-water mark answers 429 before it is full.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startCollector, stopAllInProcess } from '../helpers/processes.ts';
import { freeTcpPort } from '../helpers/ports.ts';
import { scrape, valueOf } from '../helpers/prometheus.ts';
import type { MetricBatch, WireMetric } from '../../shared/wire.ts';

afterEach(async () => {
  await stopAllInProcess();
});

let seq = 0;
function batch(metrics: WireMetric[], agent = 'host-1'): MetricBatch {
  seq++;
  return { id: `${agent}:${seq}:0`, agent, seq, start: 0, end: 0, metrics, events: [], serviceChecks: [] };
}

function postMetrics(url: string, b: MetricBatch): Promise<Response> {
  return fetch(`${url}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) });
}

describe('collector limits', () => {
  it('refuses metrics over maxLabels, maxLabelLength and maxSeriesPerAgent, applies the rest, and counts each reason', async () => {
    const { url } = await startCollector(`collector:
  listen: "127.0.0.1:0"
  limits: { maxSeriesPerAgent: 4, maxLabels: 3, maxLabelLength: 16 }
`);
    const res = await postMetrics(
      url,
      batch([
        { type: 'c', name: 'kept', tags: ['a:1', 'b:2', 'c:3'], value: 5 },
        { type: 'c', name: 'wide', tags: ['a:1', 'b:2', 'c:3', 'd:4'], value: 1 },
        { type: 'g', name: 'long_value', tags: [`path:${'x'.repeat(17)}`], value: 1 },
        { type: 'g', name: 'long_name', tags: [`${'k'.repeat(17)}:v`], value: 1 },
        { type: 'g', name: 'beyond1', tags: [], value: 1 },
        { type: 'g', name: 'beyond2', tags: [], value: 1 },
      ]),
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      accepted: 1,
      refused: 5,
      duplicate: false,
      errors: [
        { path: '/metrics/1', reason: 'too_many_labels', message: 'refused by the metric store: too_many_labels' },
        { path: '/metrics/2', reason: 'label_too_long', message: 'refused by the metric store: label_too_long' },
        { path: '/metrics/3', reason: 'label_too_long', message: 'refused by the metric store: label_too_long' },
        { path: '/metrics/4', reason: 'max_series_per_agent', message: 'refused by the metric store: max_series_per_agent' },
        { path: '/metrics/5', reason: 'max_series_per_agent', message: 'refused by the metric store: max_series_per_agent' },
      ],
      reasons: { too_many_labels: 1, label_too_long: 2, max_series_per_agent: 2 },
    });
    const m = await scrape(url);
    expect(valueOf(m, 'kept_total', { a: '1', b: '2', c: '3' })).toBe(5);
    for (const name of ['wide_total', 'long_value', 'long_name', 'beyond1', 'beyond2']) expect(m.samples.some((s) => s.name === name), name).toBe(false);
    expect(valueOf(m, 'plumb_metrics_refused_total', { reason: 'too_many_labels' })).toBe(1);
    expect(valueOf(m, 'plumb_metrics_refused_total', { reason: 'label_too_long' })).toBe(2);
    expect(valueOf(m, 'plumb_metrics_refused_total', { reason: 'max_series_per_agent' })).toBe(2);
  });

  it('answers POST /v1/* with 429 and Retry-After while the heap is above maxHeapBytes; reads stay open', async () => {
    const { url } = await startCollector(`collector:
  listen: "127.0.0.1:0"
  limits: { maxHeapBytes: 1mb, retryAfter: 2s }
`);
    const metrics = await postMetrics(url, batch([{ type: 'c', name: 'c', tags: [], value: 1 }]));
    expect(metrics.status).toBe(429);
    expect(metrics.headers.get('retry-after')).toBe('2');
    expect(((await metrics.json()) as { error: string }).error).toBe('PLUMB_ERR_INGEST_OVERLOADED');
    const logs = await fetch(`${url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: '{}\n' });
    expect(logs.status).toBe(429);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const m = await scrape(url);
    expect(valueOf(m, 'plumb_ingest_overloaded')).toBe(1);
    expect(valueOf(m, 'plumb_ingest_rejected_total', { status: '429' })).toBe(2);
    expect(m.samples.some((s) => s.name === 'c_total')).toBe(false);
  });

  it('answers 429 once a log sink queue passes its high-water mark, before it is full', async () => {
    const dead = `http://127.0.0.1:${await freeTcpPort()}`;
    const { url } = await startCollector(`collector:
  listen: "127.0.0.1:0"
  logs:
    sinks:
      elasticsearch: { node: "${dead}", flushBytes: 1kb, concurrency: 1, retryInitial: 1m, retryMax: 1m, template: { install: false } }
    queue: { maxBytes: 64kb, highWater: 0.5, retryAfter: 3s }
  # the arithmetic below counts each queued event as sent; pattern mining would add two fields
  patterns: { enabled: false }
`);
    const body = (from: number): string => {
      let text = '';
      for (let i = 0; i < 50; i++) {
        const n = from + i;
        text += `${JSON.stringify({ '@timestamp': '2024-05-01T10:00:00Z', message: `line ${n} ${'.'.repeat(150)}`, event: { id: `event-${n}` } })}\n`;
      }
      return text;
    };
    const post = (from: number): Promise<Response> => fetch(`${url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: body(from) });
    const size = Buffer.byteLength(body(0));
    expect(size).toBeGreaterThan(9000);
    // accepted while the queue holds at most half of 64kb
    let accepted = 0;
    let refused: Response | null = null;
    for (let i = 0; i < 10 && refused === null; i++) {
      const res = await post(i * 50);
      if (res.status === 200) accepted++;
      else refused = res;
    }
    expect(refused?.status).toBe(429);
    expect(refused?.headers.get('retry-after')).toBe('3');
    expect(accepted).toBe(Math.floor((64 * 1024) / 2 / (size + 12)) + 1);
    // the queue is not full: one more batch would still fit in maxBytes
    expect((accepted + 1) * (size + 12)).toBeLessThan(64 * 1024);
    const m = await scrape(url);
    expect(valueOf(m, 'plumb_ingest_backpressure_total', { kind: 'logs', reason: 'queue_high_water' })).toBe(1);
    expect(valueOf(m, 'plumb_sink_queue_refused_total', { sink: 'elasticsearch' })).toBe(50);
  });
});
