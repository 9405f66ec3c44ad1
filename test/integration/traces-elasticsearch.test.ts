/**
 * Spans into Elasticsearch (collector.traces.elasticsearch): a separate index, one document per
 * span with _id = <traceId>-<spanId>, so a batch sent again adds nothing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { startCollector, stopAllInProcess } from '../helpers/processes.ts';
import { startEsServer, type EsTestServer } from '../helpers/es-server.ts';
import { waitFor } from '../helpers/wait.ts';
import { metricValue } from '../helpers/metrics.ts';
import { spanBatchId, type SpanBatch, type ZipkinSpan } from '../../shared/zipkin.ts';

const servers: EsTestServer[] = [];
afterEach(async () => {
  await stopAllInProcess();
  for (const s of servers.splice(0)) await s.stop();
});

const TRACE = '5af7183fb1d4cf5f5af7183fb1d4cf5f';
const spans: ZipkinSpan[] = [
  { traceId: TRACE, id: '00000000000000a1', name: 'get /cart', kind: 'SERVER', timestamp: 1_764_000_000_000_000, duration: 2500, localEndpoint: { serviceName: 'cart' }, tags: { 'http.method': 'GET', 'http.status_code': '200' } },
  { traceId: TRACE, id: '00000000000000a2', parentId: '00000000000000a1', name: 'select', kind: 'CLIENT', timestamp: 1_764_000_000_000_500, duration: 900, localEndpoint: { serviceName: 'cart' }, remoteEndpoint: { serviceName: 'postgres' } },
];

function post(url: string, batch: SpanBatch): Promise<Response> {
  return fetch(`${url}/v1/traces`, { method: 'POST', body: new Uint8Array(gzipSync(JSON.stringify(batch))), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
}

describe('spans into Elasticsearch', () => {
  it('indexes each span once in its own index, ECS-style, also when a batch comes again', async () => {
    const es = await startEsServer();
    servers.push(es);
    const { url, telemetry } = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  traces:
    elasticsearch: { node: "${es.url}", flushInterval: 50ms }
`);
    expect((await post(url, { id: spanBatchId('host-a@1', 1), agent: 'host-a@1', seq: 1, spans })).status).toBe(200);
    await waitFor(() => es.count('plumb-spans-*') === 2, { what: 'two span documents' });
    const docs = es.docs('plumb-spans-*');
    expect(docs.map((d) => d.index)).toEqual(['plumb-spans-2025.11.24', 'plumb-spans-2025.11.24']);
    const server = docs.find((d) => d.id === `${TRACE}-00000000000000a1`)?.source;
    expect(server).toMatchObject({
      '@timestamp': '2025-11-24T16:00:00.000Z',
      message: 'get /cart',
      trace: { id: TRACE },
      span: { id: '00000000000000a1', name: 'get /cart', kind: 'SERVER' },
      service: { name: 'cart' },
      event: { duration: 2_500_000 },
      labels: { http_method: 'GET', http_status_code: '200' },
    });
    expect(docs.find((d) => d.id === `${TRACE}-00000000000000a2`)?.source).toMatchObject({ parent: { id: '00000000000000a1' }, destination: { service: { name: 'postgres' } } });
    expect(es.count('plumb-logs-*')).toBe(0);

    // the same spans in a new batch (an agent that restarted): acknowledged, still two documents
    expect((await post(url, { id: spanBatchId('host-a@2', 1), agent: 'host-a@2', seq: 1, spans })).status).toBe(200);
    await waitFor(async () => (await metricValue(telemetry.registry, 'plumb_sink_events_total', { sink: 'elasticsearch_spans', outcome: 'duplicate' })) === 2, { what: 'the resent spans recognised' });
    expect(es.count('plumb-spans-*')).toBe(2);
    const sinks = (await (await fetch(`${url}/api/v1/sinks`)).json()) as { spans: { name: string; delivered: number }[] };
    expect(sinks.spans).toMatchObject([{ name: 'elasticsearch_spans', delivered: 2 }]);
  });
});
