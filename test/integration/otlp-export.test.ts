/**
 * OTLP out: a collector's OTLP log sink exports to another plumb collector's OTLP door (which
 * decodes with the official definitions). Round trip: the events the second collector writes are
 * the events the first one wrote, byte for byte, ids included. A refused export is retried.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startCollector, stopAllInProcess, tempDataDir, type CollectorUnderTest } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';
import { handleRequest, startOtlpApp } from '../helpers/otlp-app.ts';

async function fileLines(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.name.endsWith('.ndjson')) out.push(...(await readFile(p, 'utf8')).split('\n').filter(Boolean));
    }
  };
  await walk(dir);
  return out.sort();
}

describe('OTLP log export, plumb → plumb', () => {
  let first: CollectorUnderTest;
  let second: CollectorUnderTest;
  const firstFiles = tempDataDir('plumb-otlp-a-');
  const secondFiles = tempDataDir('plumb-otlp-b-');

  beforeAll(async () => {
    second = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  logs:
    sinks:
      file: { dir: "${secondFiles}", flushInterval: 50ms }
  otlp:
    enabled: true
    http: { listen: "127.0.0.1:0" }
    grpc: { enabled: false }
`);
    first = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  logs:
    sinks:
      file: { dir: "${firstFiles}", flushInterval: 50ms }
      otlp: { endpoint: "http://${second.collector.otlpAddresses.http}", flushInterval: 50ms, retryInitial: 50ms, headers: { x-tenant: "t1" } }
  otlp:
    enabled: true
    http: { listen: "127.0.0.1:0" }
    grpc: { enabled: false }
`);
  });

  afterAll(async () => {
    await stopAllInProcess();
  });

  it('delivers every record to the other collector unchanged', async () => {
    const app = startOtlpApp({ protocol: 'http/protobuf', endpoint: `http://${first.collector.otlpAddresses.http}`, serviceName: 'exporter-test', instanceId: 'x-1' });
    for (let i = 0; i < 5; i++) await handleRequest(app, i);
    app.logger.emit({ body: { structured: true, n: 3, list: ['a', 1] }, attributes: { big: 2 ** 40 } });
    await app.shutdown();
    const a = await waitFor(async () => {
      const l = await fileLines(firstFiles);
      return l.length === 6 ? l : null;
    }, { what: 'six events in the first collector' });
    const b = await waitFor(async () => {
      const l = await fileLines(secondFiles);
      return l.length >= 6 ? l : null;
    }, { timeoutMs: 15_000, what: 'six events in the second collector' });
    expect(b).toEqual(a);
    const sinks = (await (await fetch(`${first.url}/api/v1/sinks`)).json()) as { sinks: { name: string; delivered: number }[] };
    expect(sinks.sinks.find((s) => s.name === 'otlp')?.delivered).toBe(6);
  });
});
