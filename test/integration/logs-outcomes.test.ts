/**
 * plumb_logs_events_total{outcome}: parsed, grok_failure and grok_timeout split the events read,
 * so a line the pattern did not match is not also counted as parsed; date_failure counts parsed
 * events whose date did not parse. Through the door: a log file tailed by an agent.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startAgent, startCollector, stopAllInProcess } from '../helpers/processes.ts';
import { scrape, valueOf } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';

let dir = '';

afterAll(async () => {
  await stopAllInProcess();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('log event outcomes', () => {
  it('counts a line grok did not match as grok_failure only, not as parsed', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'plumb-outcomes-'));
    const file = path.join(dir, 'app.log');
    await writeFile(file, ['ok 1 2024-01-02T03:04:05Z', 'no match here', 'ok 2 2024-01-02T03:04:06Z', 'ok 3 not-a-date', '???', ''].join('\n'));
    const collector = await startCollector('collector: { listen: "127.0.0.1:0" }');
    const agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { enabled: false }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
  grok: { workers: 1 }
  tail: { discoverInterval: 100ms, pollInterval: 20ms }
  logs:
    - path: ${JSON.stringify(file)}
      pattern: "%{WORD:word} %{INT:n:int} %{NOTSPACE:timestamp}"
      timestamp: { field: timestamp, format: ISO8601 }
`);
    const outcomes = await waitFor(
      async () => {
        const a = await scrape(agent.url);
        const get = (outcome: string): number => valueOf(a, 'plumb_logs_events_total', { outcome }) ?? 0;
        const o = { parsed: get('parsed'), grok_failure: get('grok_failure'), grok_timeout: get('grok_timeout'), date_failure: get('date_failure') };
        return o.parsed + o.grok_failure + o.grok_timeout >= 5 ? o : false;
      },
      { what: 'the five lines to be parsed', timeoutMs: 20_000 },
    );
    expect(outcomes).toEqual({ parsed: 3, grok_failure: 2, grok_timeout: 0, date_failure: 1 });
  });
});
