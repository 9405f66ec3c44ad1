/**
 * The agent's memory guard end to end, with a budget far below what any agent needs: every step
 * is in force from the first check. Files are not read past the batch in hand, spans get 429,
 * statsd intervals are merged rather than queued; once the budget is raised, each door works
 * again and what was held back arrives (the merged interval, every line of the file).
 */
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startAgent, stopAllInProcess } from '../helpers/processes.ts';
import { startScriptedCollector, stopScriptedCollectors } from '../helpers/scripted-collector.ts';
import { metricValue } from '../helpers/metrics.ts';
import { waitFor } from '../helpers/wait.ts';

const LINES = 30_000;
const dir = mkdtempSync(join(tmpdir(), 'plumb-guard-'));

afterAll(async () => {
  await stopAllInProcess();
  await stopScriptedCollectors();
  rmSync(dir, { recursive: true, force: true });
});

function sendStatsd(port: number, text: string): Promise<void> {
  const s = createSocket('udp4');
  return new Promise((resolve, reject) => s.send(text, port, '127.0.0.1', (err) => (s.close(), err ? reject(err) : resolve())));
}

/** One span over OTLP/HTTP JSON; the status code. */
function postOtlp(address: string): Promise<number> {
  const body = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'app' } }] },
        scopeSpans: [{ spans: [{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203332', name: 'get', kind: 2, startTimeUnixNano: String(Date.now() * 1e6), endTimeUnixNano: String(Date.now() * 1e6 + 1000) }] }],
      },
    ],
  };
  return fetch(`http://${address}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.status);
}

function postSpans(address: string): Promise<number> {
  const span = { traceId: '0af7651916cd43dd8448eb211c80319c', id: 'b7ad6b7169203331', name: 'get', timestamp: Date.now() * 1000, duration: 10, localEndpoint: { serviceName: 'app' } };
  return fetch(`http://${address}/api/v2/spans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify([span]) }).then((r) => r.status);
}

describe('agent memory guard', () => {
  it('with a budget it is over: stops reading files, answers spans (Zipkin and OTLP) 429, merges statsd intervals; all of it recovers when RSS is under', async () => {
    const file = join(dir, 'app.log');
    writeFileSync(file, Array.from({ length: LINES }, (_, i) => `line number ${i} of the file\n`).join(''));
    const collector = await startScriptedCollector();
    const { agent, telemetry, statsdPort } = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
  traces:
    zipkin: { listen: "127.0.0.1:0" }
    batch: { flushInterval: 20ms }
  otlp: { enabled: true, http: { listen: "127.0.0.1:0" }, grpc: { enabled: false } }
  grok: { workers: 1 }
  tail: { discoverInterval: 100ms, pollInterval: 20ms }
  logs:
    - path: ${JSON.stringify(file)}
  memory: { budget: 1mb, checkInterval: 50ms }
`);
    const metric = (name: string, labels: Record<string, string> = {}) => metricValue(telemetry.registry, name, labels);
    const kinds = () => collector.acknowledged.map((a) => (a.text.includes('"traceId"') ? 'spans' : a.text.includes('"metrics"') ? 'metrics' : 'logs'));

    expect(agent.guard.actions).toEqual(['stop_reading', 'refuse_spans', 'merge_intervals']);
    expect(await metric('plumb_agent_memory_shed_level')).toBe(3);
    for (const action of ['stop_reading', 'refuse_spans', 'merge_intervals']) expect(await metric('plumb_agent_memory_shed_total', { action })).toBe(1);

    expect(await postSpans(agent.zipkinAddress)).toBe(429);
    expect(await metric('plumb_agent_memory_refused_total', { door: 'spans' })).toBe(1);
    expect(await postOtlp(agent.otlpHttpAddress)).toBe(429);
    expect(await metric('plumb_agent_memory_refused_total', { door: 'otlp' })).toBe(1);

    await sendStatsd(statsdPort, 'guard.hits:1|c\nguard.hits:2|c');
    await waitFor(() => agent.aggregator.stats.lines >= 2, { what: 'the agent to take the first lines' });
    await agent.flush();
    await sendStatsd(statsdPort, 'guard.hits:4|c');
    await waitFor(() => agent.aggregator.stats.lines >= 3, { what: 'the agent to take the third line' });
    await agent.flush();
    expect(await metric('plumb_agent_memory_refused_total', { door: 'intervals' })).toBe(2);
    expect(await metric('plumb_forward_intervals_merged_total')).toBe(2);
    expect(await metric('plumb_agent_flushes_total')).toBe(2);

    // the tailer offered its first batch, which waits: no further reading, nothing of the file went out
    await waitFor(async () => (await metric('plumb_tail_batches_total')) === 1, { what: 'the tailer to offer its first batch' });
    expect(await metric('plumb_tail_records_total')).toBeLessThan(LINES);
    await agent.flush(); // time passes (a third interval merged) and the tailer stays put
    expect(await metric('plumb_tail_batches_total')).toBe(1);
    expect(kinds()).toEqual([]);

    agent.guard.setBudget(2 ** 40);
    expect(agent.guard.actions).toEqual([]);
    expect(await metric('plumb_agent_memory_shed_level')).toBe(0);
    expect(await postSpans(agent.zipkinAddress)).toBe(202);
    expect(await postOtlp(agent.otlpHttpAddress)).toBe(200);
    await agent.flush();
    await waitFor(() => kinds().includes('metrics'), { what: 'the merged interval to be delivered' });
    const merged = collector.acknowledged.find((a) => a.text.includes('guard.hits'));
    expect(merged?.text).toMatch(/"value":7\b/);
    await waitFor(async () => (await metric('plumb_tail_lines_total')) === LINES, { what: 'the whole file to be read', timeoutMs: 30_000 });
    await waitFor(() => kinds().includes('spans'), { what: 'the span accepted after recovery to be forwarded' });
  }, 60_000);
});
