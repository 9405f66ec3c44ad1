import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { silentLogger } from '../../../../shared/log.ts';
import { SPAN_SINK_WRITE, TRACING_OFF, type SelfTracing } from '../../../../shared/tracing.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { DeadLetterFile } from '../../../../collector/sinks/dead-letter.ts';
import { SinkMetrics } from '../../../../collector/sinks/metrics.ts';
import { SinkRunner } from '../../../../collector/sinks/runner.ts';
import { decodeEvents, type LogEvent } from '../../../../collector/logs/event.ts';
import { metricValue } from '../../../helpers/metrics.ts';
import { waitFor } from '../../../helpers/wait.ts';
import { FakeSink, ndjson } from '../logs/fake-sink.ts';
import { MemoryQueue } from './memory-queue.ts';

let dir: string;
const running: SinkRunner<LogEvent>[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plumb-runner-'));
});
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop(Date.now() + 100);
  await rm(dir, { recursive: true, force: true });
});

function runner(sink: FakeSink, queue = new MemoryQueue(), tracing?: SelfTracing) {
  const telemetry = new Telemetry();
  const metrics = new SinkMetrics(telemetry);
  const deadLetter = new DeadLetterFile({ file: join(dir, sink.name, 'dead-letter.ndjson'), maxBytes: 1 << 20, sink: sink.name, metrics, log: silentLogger() });
  const r = new SinkRunner({ sink, decode: decodeEvents, queue, deadLetter, metrics, log: silentLogger(), tracing });
  running.push(r);
  const metric = (name: string, labels: Record<string, string> = {}) => metricValue(telemetry.registry, name, { sink: sink.name, ...labels });
  return { r, queue, metric, deadLetter };
}

describe('sink runner', () => {
  it('writes every queued event once and then empties the queue', async () => {
    const sink = new FakeSink();
    const { r, queue, metric } = runner(sink);
    await queue.append(ndjson('a', 0, 10), 10);
    await queue.append(ndjson('a', 10, 5), 5);
    r.start();
    await waitFor(() => queue.events === 0);
    expect(sink.stored).toEqual(Array.from({ length: 15 }, (_, i) => `a${i}`));
    expect(await metric('plumb_sink_events_total', { outcome: 'delivered' })).toBe(15);
    expect(await metric('plumb_sink_queue_events')).toBe(0);
    expect(r.status()).toMatchObject({ name: 'file', state: 'ready', delivered: 15, duplicate: 0, deadLettered: 0, retries: 0, lastError: null });
  });

  it('keeps the events of a sink that is down and delivers them all, once, when it recovers', async () => {
    const sink = new FakeSink();
    sink.failWrites = 6;
    const { r, queue, metric } = runner(sink);
    r.start();
    for (let i = 0; i < 5; i++) await queue.append(ndjson('b', i * 20, 20), 20);
    await waitFor(() => queue.events === 0);
    expect(sink.stored).toHaveLength(100);
    expect(new Set(sink.stored).size).toBe(100);
    expect(await metric('plumb_sink_events_total', { outcome: 'delivered' })).toBe(100);
    expect(await metric('plumb_sink_retries_total', { reason: 'unavailable' })).toBe(6);
    expect(r.status().retries).toBe(6);
    expect(r.status().lastError?.message).toMatch(/ECONNREFUSED/);
  });

  it('sends refused events to the dead-letter file with their reason and delivers the rest', async () => {
    const sink = new FakeSink();
    sink.reject.set('c3', 'mapper_parsing_exception: failed to parse field [status] of type [long]');
    sink.reject.set('c7', 'illegal_argument_exception: bad');
    sink.throttle.set('c5', 2);
    const { r, queue, metric, deadLetter } = runner(sink);
    await queue.append(ndjson('c', 0, 10), 10);
    r.start();
    await waitFor(() => queue.events === 0);
    expect(sink.stored.sort()).toEqual(['c0', 'c1', 'c2', 'c4', 'c5', 'c6', 'c8', 'c9']);
    const lines = (await readFile(deadLetter.file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.event.event.id, l.status, l.reason, l.target, l.sink])).toEqual([
      ['c3', 400, 'mapper_parsing_exception: failed to parse field [status] of type [long]', 'plumb-logs-x', 'file'],
      ['c7', 400, 'illegal_argument_exception: bad', 'plumb-logs-x', 'file'],
    ]);
    expect(lines[0].event.message).toBe('line 3');
    expect(await metric('plumb_sink_dead_letter_total')).toBe(2);
    expect(await metric('plumb_sink_events_total', { outcome: 'dead_letter' })).toBe(2);
    expect(await metric('plumb_sink_events_total', { outcome: 'delivered' })).toBe(8);
    expect(await metric('plumb_sink_retries_total', { reason: 'item_throttled' })).toBe(2);
  });

  it('dead-letters a whole batch the destination refuses for good', async () => {
    const sink = new FakeSink();
    sink.refuseAll = 'request entity too large';
    const { r, queue, deadLetter } = runner(sink);
    await queue.append(ndjson('d', 0, 3), 3);
    r.start();
    await waitFor(() => queue.events === 0);
    const lines = (await readFile(deadLetter.file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.event.event.id, l.status, l.reason])).toEqual([
      ['d0', 413, 'request entity too large'],
      ['d1', 413, 'request entity too large'],
      ['d2', 413, 'request entity too large'],
    ]);
    expect(r.status().deadLettered).toBe(3);
  });

  it('keeps buffering while the sink cannot be opened, and never shows its secrets', async () => {
    const sink = new FakeSink();
    sink.failOpens = 3;
    const { r, queue } = runner(sink);
    await queue.append(ndjson('e', 0, 4), 4);
    r.start();
    await waitFor(() => queue.events === 0);
    expect(sink.stored).toHaveLength(4);
    const err = r.status().lastError!;
    expect(err.message).toContain('401 security_exception');
    expect(JSON.stringify(r.status())).not.toContain('s3cr3t-key');
    expect(err.message).toContain('//***:***@es.example');
  });

  it('gathers queued batches into writes of at most the sink batch size (plus one batch)', async () => {
    const sink = new FakeSink();
    const one = ndjson('f', 0, 10);
    sink.batch = { maxBytes: one.length * 3, maxWaitMs: 1000 };
    const { r, queue } = runner(sink);
    for (let i = 0; i < 9; i++) await queue.append(ndjson('f', i * 10, 10), 10);
    r.start();
    await waitFor(() => queue.events === 0);
    expect(sink.writes).toEqual([30, 30, 30]);
  });

  it('stops at its deadline with undelivered events still queued, and delivers them after a restart', async () => {
    const sink = new FakeSink();
    sink.failWrites = Infinity;
    const first = runner(sink);
    await first.queue.append(ndjson('g', 0, 5), 5);
    first.r.start();
    await waitFor(() => sink.writes.length >= 2);
    await first.r.stop(Date.now() + 50);
    expect(first.queue.events).toBe(5);
    expect(sink.closed).toBe(1);

    sink.failWrites = 0;
    const second = runner(sink, first.queue);
    second.r.start();
    await waitFor(() => first.queue.events === 0);
    expect(sink.stored).toEqual(['g0', 'g1', 'g2', 'g3', 'g4']);
  });

  it('on stop, writes what is queued without waiting for the batch to fill', async () => {
    const sink = new FakeSink();
    sink.batch = { maxBytes: 1 << 30, maxWaitMs: 3_600_000 };
    const { r, queue } = runner(sink);
    r.start();
    await queue.append(ndjson('h', 0, 3), 3);
    await r.stop(Date.now() + 5000);
    expect(sink.stored).toEqual(['h0', 'h1', 'h2']);
    expect(queue.events).toBe(0);
  });

  it('traces each batch written as a plumb.sink.write span, with its retries', async () => {
    const memory = new InMemorySpanExporter();
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] });
    const tracing: SelfTracing = { ...TRACING_OFF, enabled: true, tracer: provider.getTracer('test'), extract: () => ROOT_CONTEXT };
    const sink = new FakeSink('elasticsearch');
    sink.failWrites = 2;
    const { r, queue } = runner(sink, new MemoryQueue(), tracing);
    await queue.append(ndjson('t', 0, 7), 7);
    r.start();
    await waitFor(() => queue.events === 0);
    await waitFor(() => memory.getFinishedSpans().length === 1);
    const [span] = memory.getFinishedSpans();
    expect(span.name).toBe(SPAN_SINK_WRITE);
    expect(span.attributes).toMatchObject({ 'plumb.sink': 'elasticsearch', 'plumb.events': 7 });
    expect(span.events.map((e) => [e.name, e.attributes?.reason])).toEqual([
      ['retry', 'unavailable'],
      ['retry', 'unavailable'],
    ]);
    await provider.shutdown();
  });

  it('starts again after a stop and keeps delivering', async () => {
    const sink = new FakeSink();
    const { r, queue } = runner(sink);
    r.start();
    await queue.append(ndjson('s', 0, 2), 2);
    await waitFor(() => queue.events === 0);
    await r.stop(Date.now() + 1000);
    expect(r.status().state).toBe('stopped');
    await queue.append(ndjson('s', 2, 2), 2);
    r.start();
    await waitFor(() => queue.events === 0);
    expect(sink.stored).toEqual(['s0', 's1', 's2', 's3']);
    expect(sink.opened).toBe(2);
  });
});
