/**
 * A `plumb collector` process killed with SIGKILL and started again on the same data directory
 * keeps its counters and still recognises the batches and log events it had acknowledged.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startCollector, startPlumb, stopAllInProcess, stopAllProcesses, stopProcess, type TrackedProcess } from '../helpers/processes.ts';
import { freeTcpPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { scrape, valueOf } from '../helpers/prometheus.ts';
import type { MetricBatch } from '../../shared/wire.ts';
import { encodeSketch, newSketch } from '../../shared/sketch.ts';

const dirs: string[] = [];

afterEach(async () => {
  await stopAllProcesses();
  await stopAllInProcess();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'plumb-durability-'));
  dirs.push(d);
  return d;
}

interface Running {
  proc: TrackedProcess;
  url: string;
}

/** Starts `plumb collector` on `dataDir` and waits until /readyz says ready. */
async function startCollectorProcess(dir: string, port: number): Promise<Running> {
  const config = path.join(dir, 'collector.yaml');
  await writeFile(
    config,
    `collector:
  listen: "127.0.0.1:${port}"
  logs:
    sinks:
      file: { flushInterval: 50ms }
`,
  );
  // the same data directory for every start (the helper would give each process a fresh one)
  const proc = startPlumb(['collector', '--config', config], { env: { PLUMB_COLLECTOR__DATA_DIR: path.join(dir, 'data') } });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (proc.exit) throw new Error(`the collector exited: ${proc.stderr()}`);
      const res = await fetch(`${url}/readyz`);
      return res.status === 200 && ((await res.json()) as { status: string }).status === 'ready';
    },
    { timeoutMs: 20_000, what: 'the collector to be ready' },
  );
  return { proc, url };
}

async function kill9(r: Running): Promise<void> {
  const exit = await stopProcess(r.proc, 'SIGKILL');
  expect(exit.signal).toBe('SIGKILL');
}

function metricBatch(agent: string, seq: number): MetricBatch {
  const sketch = newSketch();
  for (const v of [seq, seq * 2]) sketch.accept(v);
  return {
    id: `${agent}:${seq}:0`,
    agent,
    seq,
    start: seq * 10_000,
    end: (seq + 1) * 10_000,
    metrics: [
      { type: 'c', name: 'orders', tags: ['shop:eu'], value: seq },
      { type: 'g', name: 'queue_depth', tags: [], value: seq * 10 },
      { type: 's', name: 'visitors', tags: [], members: [`${agent}-u${seq}`, `${agent}-u${seq + 1}`] },
      { type: 'ms', name: 'checkout', tags: [], sketch: encodeSketch(sketch), count: sketch.count, sum: sketch.sum, min: sketch.min, max: sketch.max },
    ],
    events: [],
    serviceChecks: [],
  };
}

async function post(url: string, batch: MetricBatch): Promise<{ accepted: number; duplicate: boolean }> {
  const res = await fetch(`${url}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(batch) });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { accepted: number; duplicate: boolean };
}


async function postSpans(url: string, seq: number): Promise<{ accepted: number; duplicate: boolean }> {
  const span = { traceId: seq.toString(16).padStart(32, '0'), id: seq.toString(16).padStart(16, '0'), name: 'GET /', timestamp: 1_714_557_600_000_000 + seq, duration: 1000, localEndpoint: { serviceName: 'shop' } };
  const res = await fetch(`${url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: `spans:${seq}`, agent: 'a', seq, spans: [span] }) });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { accepted: number; duplicate: boolean };
}

describe('collector durability across kill -9', () => {
  it('keeps counter totals and recognises replayed metric batches after a restart', async () => {
    const dir = await tempDir();
    const port = await freeTcpPort();
    let c = await startCollectorProcess(dir, port);
    // two agents; batches 1..6 from each acknowledged before the kill
    for (let seq = 1; seq <= 6; seq++) for (const agent of ['a', 'b']) expect((await post(c.url, metricBatch(agent, seq))).duplicate).toBe(false);
    for (let seq = 1; seq <= 3; seq++) expect((await postSpans(c.url, seq)).duplicate).toBe(false);
    const before = await scrape(c.url);
    expect(valueOf(before, 'orders_total', { shop: 'eu' })).toBe(2 * 21);
    await kill9(c);

    c = await startCollectorProcess(dir, port);
    const after = await scrape(c.url);
    for (const [name, labels] of [
      ['orders_total', { shop: 'eu' }],
      ['queue_depth', {}],
      ['visitors', {}],
      ['checkout_sum', {}],
      ['checkout_count', {}],
      ['checkout', { quantile: '0.5' }],
    ] as const) {
      expect(valueOf(after, name, labels), name).toBe(valueOf(before, name, labels));
    }

    // the agents re-send what they had not seen acknowledged, then go on
    let duplicates = 0;
    for (let seq = 4; seq <= 8; seq++) {
      for (const agent of ['a', 'b']) if ((await post(c.url, metricBatch(agent, seq))).duplicate) duplicates++;
    }
    expect(duplicates).toBe(6);
    // span batch ids are remembered too
    expect(await postSpans(c.url, 3)).toEqual({ accepted: 0, dropped: 0, duplicate: true });
    expect((await postSpans(c.url, 4)).duplicate).toBe(false);
    const final = await scrape(c.url);
    expect(valueOf(final, 'orders_total', { shop: 'eu' })).toBe(2 * 36);
    expect(valueOf(final, 'checkout_count', {})).toBe(2 * 2 * 8);
    expect(valueOf(final, 'plumb_ingest_batches_total', { kind: 'metrics', outcome: 'duplicate' })).toBe(6);
    expect(valueOf(final, 'plumb_ingest_batches_total', { kind: 'metrics', outcome: 'applied' })).toBe(4);
    expect(valueOf(final, 'plumb_journal_replayed_records', { journal: 'metrics' })).toBe(12);

    // a graceful stop checkpoints: the next start replays nothing and still has everything
    expect((await stopProcess(c.proc, 'SIGTERM')).code).toBe(0);
    c = await startCollectorProcess(dir, port);
    const again = await scrape(c.url);
    expect(valueOf(again, 'orders_total', { shop: 'eu' })).toBe(2 * 36);
    expect(valueOf(again, 'plumb_journal_replayed_records', { journal: 'metrics' })).toBe(0);
    expect((await post(c.url, metricBatch('a', 8))).duplicate).toBe(true);
  });

  it('applies a batch sent several times at once exactly once', async () => {
    const { url } = await startCollector('collector:\n  listen: "127.0.0.1:0"\n');
    const results = await Promise.all(Array.from({ length: 8 }, () => post(url, metricBatch('a', 7))));
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    const m = await scrape(url);
    expect(valueOf(m, 'orders_total', { shop: 'eu' })).toBe(7);
    expect(valueOf(m, 'plumb_ingest_batches_total', { kind: 'metrics', outcome: 'duplicate' })).toBe(7);
  });

  it('writes replayed log events to the file sink once across a kill -9', async () => {
    const dir = await tempDir();
    const port = await freeTcpPort();
    const fileId = 'f'.repeat(32);
    const event = (n: number): string => JSON.stringify({ '@timestamp': '2024-05-01T10:00:00Z', message: `line ${n}`, event: { id: `${fileId}${(n * 100).toString(16).padStart(12, '0')}` } });
    const postLogs = async (url: string, from: number, to: number): Promise<{ accepted: number; duplicate: number }> => {
      const lines: string[] = [];
      for (let n = from; n <= to; n++) lines.push(event(n));
      const res = await fetch(`${url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'x-plumb-batch-id': `logs:${from}` }, body: `${lines.join('\n')}\n` });
      expect(res.status, await res.clone().text()).toBe(200);
      return (await res.json()) as { accepted: number; duplicate: number };
    };
    let c = await startCollectorProcess(dir, port);
    expect((await postLogs(c.url, 1, 50)).accepted).toBe(50);
    expect((await postLogs(c.url, 51, 100)).accepted).toBe(50);
    // written and acknowledged by the file sink, so what follows tests the collector's id journal
    // (a kill between the sink's write and its acknowledgement is the collector-kill fault test's)
    await waitFor(
      async () => {
        const m = await scrape(c.url);
        return valueOf(m, 'plumb_sink_events_total', { sink: 'file', outcome: 'delivered' }) === 100 && valueOf(m, 'plumb_sink_queue_events', { sink: 'file' }) === 0;
      },
      { what: 'the file sink to deliver 100 events' },
    );
    await kill9(c);

    c = await startCollectorProcess(dir, port);
    // the agent had not checkpointed the second batch: it sends 51..100 again, then 101..120
    expect(await postLogs(c.url, 51, 100)).toEqual({ accepted: 0, duplicate: 50 });
    expect(await postLogs(c.url, 91, 120)).toEqual({ accepted: 20, duplicate: 10 });
    const want = Array.from({ length: 120 }, (_, i) => i + 1);
    const written = await waitFor(
      async () => {
        const got = await sinkLines(path.join(dir, 'data', 'logs'));
        return got.length >= 120 ? got : false;
      },
      { timeoutMs: 15_000, what: 'the file sink to hold 120 events' },
    );
    expect(written.sort((a, b) => a - b)).toEqual(want);
  });
});

/** Line numbers of every event in the file sink's NDJSON files. */
async function sinkLines(root: string): Promise<number[]> {
  const out: number[] = [];
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.ndjson')) {
        for (const line of (await readFile(p, 'utf8')).split('\n')) if (line !== '') out.push(Number(String((JSON.parse(line) as { message: string }).message).slice(5)));
      }
    }
  };
  await walk(root);
  return out;
}
