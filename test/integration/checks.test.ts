/**
 * Service checks through the pipeline: the agent's checks become `plumb_check_*` series at the
 * collector's /metrics (the one plumb_ prefix the collector takes from agents).
 */
import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startAgent, startCollector, stopAllInProcess } from '../helpers/processes.ts';
import { freeTcpPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const servers: http.Server[] = [];
afterEach(async () => {
  await stopAllInProcess();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

describe('service checks end to end', () => {
  it('exposes plumb_check_up and latency per check at the collector', async () => {
    const server = http.createServer((_req, res) => res.end('healthy'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    const port = (server.address() as AddressInfo).port;
    const closed = await freeTcpPort();
    const { url } = await startCollector('collector:\n  listen: "127.0.0.1:0"\n');
    await startAgent(`
agent:
  statsd: { listen: "127.0.0.1:0", flushInterval: 200ms }
  http: { listen: "127.0.0.1:0" }
  forward: { collectors: ["${url}"] }
  host: { enabled: false }
  checks:
    interval: 200ms
    timeout: 200ms
    checks:
      - { name: web, type: http, url: "http://127.0.0.1:${port}/", bodyMatch: healthy }
      - { name: db, type: tcp, host: 127.0.0.1, port: ${closed} }
`);
    const text = await waitFor(
      async () => {
        const t = await (await fetch(`${url}/metrics`)).text();
        return /^plumb_check_up\{[^}]*check="web"[^}]*\} 1$/m.test(t) && /^plumb_check_up\{[^}]*check="db"[^}]*\} 0$/m.test(t) ? t : undefined;
      },
      { what: 'both checks at the collector' },
    );
    expect(text).toMatch(/^plumb_check_latency_ms\{[^}]*check="web"[^}]*\} \d+(\.\d+)?$/m);
    expect(text).toMatch(/^plumb_metrics_refused_total\{reason="name_collision"\} 0$/m);
  });
});
