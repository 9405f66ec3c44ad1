import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { Forwarder } from '../../../../agent/forward/forwarder.ts';
import { LogPipeline } from '../../../../agent/logs/pipeline.ts';
import { GrokPoolSchema } from '../../../../agent/logs/config.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { waitFor } from '../../../helpers/wait.ts';
import { startScriptedCollector, stopScriptedCollectors, type ScriptedAnswer } from '../../../helpers/scripted-collector.ts';
import { input, metric, options, tempDir, numbered, range } from './tail/harness.ts';

/** The scripted collector with the events of the batches it acknowledged. */
async function collectorServer(answer?: (n: number) => ScriptedAnswer) {
  const c = await startScriptedCollector(answer);
  return {
    ...c,
    get events() {
      return c.acknowledged.flatMap((r) => r.text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>));
    },
    get contentTypes() {
      return c.acknowledged.map((r) => r.contentType);
    },
  };
}

const stops: (() => Promise<void>)[] = [];
let dir: string;
let dataDir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir, dataDir, cleanup } = await tempDir());
});

afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
  await stopScriptedCollectors();
  await cleanup();
});

function pipeline(url: string, logs: Record<string, unknown>[], grok: Record<string, unknown> = {}, tail: Record<string, unknown> = {}) {
  const telemetry = new Telemetry();
  const log = silentLogger();
  const forwarder = new Forwarder(
    { collectors: [url], timeoutMs: 5000, maxQueueBytes: 16 << 20, maxQueueBatches: 100, backoff: { initialMs: 10, maxMs: 50 }, compress: true },
    { telemetry, log },
  );
  const p = new LogPipeline(
    {
      logs: logs.map(input),
      tail: options(tail),
      grok: Value.Decode(GrokPoolSchema, Value.Default(GrokPoolSchema, { workers: 1, ...grok })),
      dataDir,
      hostName: 'web-1',
    },
    { telemetry, log, forwarder },
  );
  forwarder.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await p.stop(2000);
    await forwarder.stop(500);
  };
  stops.push(stop);
  return { p, telemetry, forwarder, stop };
}

const messages = (events: Record<string, unknown>[]) => events.map((e) => e.message as string);

describe('LogPipeline', () => {
  it('delivers every line once as a parsed event, and a restart after acknowledgement sends nothing again', async () => {
    const c = await collectorServer();
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('INFO request', 1, 3000));
    const first = pipeline(c.url, [{ path: path.join(dir, '*.log'), pattern: '%{LOGLEVEL:level} %{WORD:what} %{INT:n:int}' }]);
    await first.p.start();
    await waitFor(() => c.events.length >= 3000, { what: '3000 events' });
    expect(messages(c.events).sort()).toEqual(range('INFO request', 1, 3000).sort());
    expect(c.events.every((e) => e.level === 'INFO' && typeof e.n === 'number')).toBe(true);
    expect(new Set(c.events.map((e) => (e.event as { id: string }).id)).size).toBe(3000);
    expect(c.contentTypes.every((t) => t === 'application/x-ndjson')).toBe(true);
    await first.stop();

    await appendFile(file, numbered('INFO request', 3001, 3100));
    const second = pipeline(c.url, [{ path: path.join(dir, '*.log'), pattern: '%{LOGLEVEL:level} %{WORD:what} %{INT:n:int}' }]);
    await second.p.start();
    await waitFor(() => c.events.length >= 3100, { what: '100 more events' });
    await second.stop();
    expect(messages(c.events).sort()).toEqual(range('INFO request', 1, 3100).sort());
  });

  it('does not checkpoint what the collector did not acknowledge: a restart sends it again', async () => {
    let accept = false;
    const c = await collectorServer(() => (accept ? { status: 200 } : { status: 503 }));
    await writeFile(path.join(dir, 'a.log'), numbered('line', 1, 50));
    const first = pipeline(c.url, [{ path: path.join(dir, 'a.log') }]);
    await first.p.start();
    await waitFor(() => c.requests() >= 3, { what: 'retried sends' });
    await first.stop();
    expect(c.events).toHaveLength(0);

    accept = true;
    const second = pipeline(c.url, [{ path: path.join(dir, 'a.log') }]);
    await second.p.start();
    await waitFor(() => c.events.length >= 50, { what: '50 events after restart' });
    await second.stop();
    expect(messages(c.events)).toEqual(range('line', 1, 50));
  });

  it('survives a pattern that backtracks without end: the line is kept and tagged, the rest parse, the pipeline goes on', async () => {
    const c = await collectorServer();
    const file = path.join(dir, 'evil.log');
    const evil = 'a'.repeat(48) + '!';
    await writeFile(file, ['aaaa', evil, 'aa', 'b'].join('\n') + '\n');
    const { p, telemetry } = pipeline(c.url, [{ path: file, pattern: '^(a|aa)+$' }], { chunkTimeout: '2s', lineTimeout: '1500ms' });
    await p.start();
    // timeouts generous enough that a fresh thread on a busy machine still parses a plain line in time
    await waitFor(() => c.events.length >= 4, { what: 'all four lines', timeoutMs: 30_000 });
    const byMessage = new Map(c.events.map((e) => [e.message as string, e]));
    expect(byMessage.get(evil)?.tags).toEqual(['_grokparsetimeout']);
    expect(byMessage.get('aaaa')?.tags).toBeUndefined();
    expect(byMessage.get('b')?.tags).toEqual(['_grokparsefailure']);
    expect(await metric(telemetry, 'plumb_logs_parser_timeouts_total')).toBeGreaterThanOrEqual(2);
    // the replaced thread parses what comes next
    await appendFile(file, 'aaa\n');
    await waitFor(() => c.events.some((e) => e.message === 'aaa'), { what: 'a line after the timeout' });
    expect(c.events.find((e) => e.message === 'aaa')?.tags).toBeUndefined();
  }, 50_000);

  it('moves past a batch the collector refuses for good, and counts it', async () => {
    const c = await collectorServer((n) => (n === 0 ? { status: 400 } : { status: 200 }));
    const file = path.join(dir, 'a.log');
    await writeFile(file, numbered('first', 1, 10));
    const { p, telemetry } = pipeline(c.url, [{ path: file }]);
    await p.start();
    await waitFor(async () => (await metric(telemetry, 'plumb_forward_dropped_total', { kind: 'logs', reason: 'rejected' })) === 1, { what: 'rejection counted' });
    await appendFile(file, numbered('second', 1, 10));
    await waitFor(() => c.events.length >= 10, { what: 'later lines' });
    expect(messages(c.events)).toEqual(range('second', 1, 10));
  });

  it('stops reading while the collector does not answer: batches in flight stay within the limit', async () => {
    const c = await collectorServer(() => 'hang');
    const file = path.join(dir, 'big.log');
    await writeFile(file, numbered('line', 1, 20_000));
    const { p, telemetry } = pipeline(c.url, [{ path: file }], {}, { batchMaxRecords: 100, maxUnackedBatches: 4 });
    await p.start();
    await waitFor(async () => (await metric(telemetry, 'plumb_tail_unacked_batches')) === 4, { what: 'unacked batches at the limit' });
    const read = await metric(telemetry, 'plumb_tail_lines_total');
    expect(read).toBeLessThan(20_000);
    expect(p.tailer.unackedBatches).toBe(4);
  });
});
