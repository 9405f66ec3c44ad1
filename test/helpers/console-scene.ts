/**
 * A running pipeline for the web console to show: `plumb all` started through the CLI with alert
 * rules (one firing, one pending, an SLO burning), a tailed log file with a grok pattern, and an
 * Elasticsearch log sink whose node does not answer, so that sink retries, its small queue fills,
 * the collector refuses log batches and the agent's file lags behind. Used by the browser test,
 * the screenshot script and the console's cost benchmark.
 */
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import dgram from 'node:dgram';
import os from 'node:os';
import path from 'node:path';
import { startPlumb, stopProcess, type TrackedProcess } from './processes.ts';
import { freeTcpPorts, freeUdpPort } from './ports.ts';
import { waitFor } from './wait.ts';

export interface ConsoleScene {
  dir: string;
  collectorUrl: string;
  agentUrl: string;
  /** The tailed file whose lines parse (the grok pattern matches). */
  appLog: string;
  plumb: TrackedProcess;
  statsd(...lines: string[]): Promise<void>;
  /** Keeps the alert rules' conditions true (a firing backlog, a burning SLO) until stopped. */
  feed(): () => void;
  /** Appends `n` log lines of about 300 bytes to the tailed file, every third one not matching the pattern. */
  logLines(n: number): Promise<void>;
  stop(): Promise<void>;
}

export const RULES = `rules:
  - alert: QueueBacklog
    metric: queue.depth
    aggregate: max
    window: 1m
    op: ">"
    threshold: 10
    labels: { severity: ticket }
    annotations: { summary: "queue depth {{ $value }}" }
  - alert: QueueSlow
    metric: queue.depth
    aggregate: max
    window: 1m
    op: ">"
    threshold: 5
    for: 10m
  - alert: DiskFull
    metric: disk.used_ratio
    aggregate: max
    window: 1m
    op: ">"
    threshold: 0.95
  - slo: checkout-availability
    objective: 99
    period: 1h
    good: { metric: checkout.ok }
    total: { metric: checkout.requests }
`;

export async function startConsoleScene(options: { hostname?: string; extraAgentYaml?: string } = {}): Promise<ConsoleScene> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'plumb-console-'));
  const [collectorPort, agentPort, zipkinPort, deadEsPort] = await freeTcpPorts(4);
  const statsdPort = await freeUdpPort();
  const collectorUrl = `http://127.0.0.1:${collectorPort}`;
  const agentUrl = `http://127.0.0.1:${agentPort}`;
  const appLog = path.join(dir, 'app.log');
  await writeFile(path.join(dir, 'rules.yaml'), RULES);
  await writeFile(appLog, 'INFO started\n');
  await writeFile(
    path.join(dir, 'plumb.yaml'),
    `agent:
  hostname: ${options.hostname ?? 'web-1'}
  statsd: { listen: "127.0.0.1:${statsdPort}", flushInterval: 500ms }
  http: { listen: "127.0.0.1:${agentPort}" }
  traces: { zipkin: { listen: "127.0.0.1:${zipkinPort}" } }
  forward: { collectors: ["${collectorUrl}"] }
  # the line deadline leaves room for a replaced parser thread to start on a busy machine
  grok: { workers: 1, chunkTimeout: 2s, lineTimeout: 2s }
  tail: { lagThreshold: 3s }
  logs:
    - path: ${appLog}
      pattern: "%{LOGLEVEL:level} %{GREEDYDATA:msg}"
${options.extraAgentYaml ?? ''}collector:
  listen: "127.0.0.1:${collectorPort}"
  alerts: { rulesFile: ${path.join(dir, 'rules.yaml')}, evaluationInterval: 500ms }
  logs:
    # nothing listens there: the sink retries, its small queue fills, log batches get 429 and the agent's file lags
    sinks: { elasticsearch: { node: "http://127.0.0.1:${deadEsPort}", template: { install: false }, retryInitial: 200ms, retryMax: 1s, timeout: 2s, flushBytes: 64kib } }
    queue: { maxBytes: 1mib, highWater: 0.05, retryAfter: 1s }
`,
  );
  const plumb = startPlumb(['all', '--config', path.join(dir, 'plumb.yaml')]);
  await waitFor(async () => (await fetch(`${collectorUrl}/readyz`).catch(() => null))?.ok, { timeoutMs: 30_000, what: `plumb all ready; stderr: ${plumb.stderr()}` });
  const udp = dgram.createSocket('udp4');
  const statsd = (...lines: string[]): Promise<void> => new Promise((resolve, reject) => udp.send(lines.join('\n'), statsdPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  return {
    dir,
    collectorUrl,
    agentUrl,
    appLog,
    plumb,
    statsd,
    feed() {
      // queue.depth 20 > 10: QueueBacklog fires at once, QueueSlow waits for 10m; 10 % of checkouts fail
      const timer = setInterval(() => void statsd('queue.depth:20|g', 'disk.used_ratio:0.5|g', 'checkout.requests:10|c', 'checkout.ok:9|c').catch(() => undefined), 200);
      return () => clearInterval(timer);
    },
    async logLines(n: number) {
      const lines: string[] = [];
      for (let i = 0; i < n; i++) lines.push(i % 3 === 2 ? `free text that is not a log line ${i}` : `${i % 2 === 0 ? 'INFO' : 'WARN'} request ${i} served ${'.'.repeat(280)}`);
      await appendFile(appLog, `${lines.join('\n')}\n`);
    },
    async stop() {
      udp.close();
      await stopProcess(plumb, 'SIGTERM', 10_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
