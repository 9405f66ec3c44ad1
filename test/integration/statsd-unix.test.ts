/**
 * DogStatsD over a Unix datagram socket, through the doors users touch: the agent's YAML
 * (`statsd.socket`), hot-shots' `uds` protocol as the application, a real collector, and the
 * collector's `/metrics` as Prometheus reads it. A unix datagram socket does not drop on the
 * receiving side, so counts are exact without waiting on the agent's own counter first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StatsD } from 'hot-shots';
import { startAgent, startCollector, stopAllInProcess, plumbConfig, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { scrape, valueOf } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';

let dir: string;
let socketPath: string;
let collector: CollectorUnderTest;
let agent: AgentUnderTest;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'plumb-uds-it-'));
  socketPath = join(dir, 'run', 'dsd.socket');
  collector = await startCollector('collector:\n  listen: "127.0.0.1:0"\n');
  agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd:
    listen: "127.0.0.1:0"
    flushInterval: 1h
    socket: { path: "${socketPath}", mode: "0660", receiveBuffer: 2mb }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
`);
});

afterAll(async () => {
  await stopAllInProcess();
  rmSync(dir, { recursive: true, force: true });
});

describe('DogStatsD over a unix socket → agent → collector', () => {
  it('delivers every value a hot-shots uds client sends, counted under transport="unix"', async () => {
    expect(statSync(socketPath).mode & 0o777).toBe(0o660);
    const errors: Error[] = [];
    const client = new StatsD({ protocol: 'uds', path: socketPath, maxBufferSize: 8192, bufferFlushInterval: 60_000, errorHandler: (err) => errors.push(err) });
    const N = 5000;
    try {
      for (let i = 0; i < N; i++) {
        // explicit sample rate 1: hot-shots leaves these out of its client-side aggregation,
        // so every line travels the socket
        client.increment('uds.jobs', 1, 1, ['queue:mail']);
        client.timing('uds.job_ms', i % 100, 1, ['queue:mail']);
      }
      client.gauge('uds.workers', 8);
      client.flush();
      await waitFor(
        async () => {
          const e = await scrape(agent.url);
          expect(valueOf(e, 'plumb_statsd_lines_total')).toBe(2 * N + 1);
          return e;
        },
        { what: `the agent to count ${2 * N + 1} lines` },
      );
    } finally {
      await new Promise<void>((resolve) => client.close(() => resolve()));
    }
    expect(errors).toEqual([]);
    const own = await scrape(agent.url);
    expect(valueOf(own, 'plumb_statsd_received_total', { transport: 'unix' })).toBeGreaterThan(0);
    expect(valueOf(own, 'plumb_statsd_received_total', { transport: 'udp' })).toBe(0);
    expect(valueOf(own, 'plumb_statsd_unix_receive_buffer_bytes')).toBeGreaterThan(0);
    await agent.agent.flush();
    await waitFor(
      async () => {
        const e = await scrape(collector.url);
        expect(valueOf(e, 'uds_jobs_total', { queue: 'mail' })).toBe(N);
        expect(valueOf(e, 'uds_job_ms_count', { queue: 'mail' })).toBe(N);
        expect(valueOf(e, 'uds_workers')).toBe(8);
        return true;
      },
      { what: 'the values at the collector' },
    );
  });

  it('refuses a bad socket section with every error named by key', () => {
    expect(() =>
      plumbConfig(`
agent:
  statsd:
    socket: { path: "relative/dsd.socket", mode: "0999", group: -1 }
`),
    ).toThrow(/agent\.statsd\.socket\.path[\s\S]*agent\.statsd\.socket\.mode|agent\.statsd\.socket\.mode[\s\S]*agent\.statsd\.socket\.path/);
  });
});
