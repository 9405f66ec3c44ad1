import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RetryableError } from '../../../../shared/errors.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { CollectorLogsSchema } from '../../../../collector/logs/config.ts';
import { LogRouter } from '../../../../collector/logs/router.ts';
import { metricValue } from '../../../helpers/metrics.ts';
import { waitFor } from '../../../helpers/wait.ts';
import { FakeSink, ndjson } from './fake-sink.ts';
import { MemoryQueue } from '../sinks/memory-queue.ts';

let dir: string;
const routers: LogRouter[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plumb-router-'));
});
afterEach(async () => {
  for (const r of routers.splice(0)) await r.stop(Date.now() + 100);
  await rm(dir, { recursive: true, force: true });
});

async function router(sinks: FakeSink[], queues: MemoryQueue[], overrides: Record<string, unknown> = {}) {
  const telemetry = new Telemetry();
  const config = Value.Decode(CollectorLogsSchema, Value.Default(CollectorLogsSchema, { queue: { retryAfter: '7s' }, ...overrides }));
  let i = 0;
  const r = await LogRouter.create(config, { telemetry, log: silentLogger(), dataDir: dir }, { sinks, openQueue: async () => queues[i++] });
  routers.push(r);
  return { r, telemetry };
}

const batch = (prefix: string, n: number) => ({ id: `batch-${prefix}`, ndjson: ndjson(prefix, 0, n), count: n });

describe('log router', () => {
  it('stores an accepted batch in every sink queue, and each sink drains its own', async () => {
    const a = new FakeSink('file');
    const b = new FakeSink('elasticsearch');
    const qa = new MemoryQueue();
    const qb = new MemoryQueue();
    const { r } = await router([a, b], [qa, qb]);
    await r.accept(batch('x', 3));
    expect([qa.events, qb.events]).toEqual([3, 3]);
    r.start();
    await waitFor(() => a.stored.length === 3 && b.stored.length === 3);
    expect(r.status().map((s) => [s.name, s.delivered, s.queue.events])).toEqual([
      ['file', 3, 0],
      ['elasticsearch', 3, 0],
    ]);
  });

  it('refuses the whole batch with 429 and Retry-After when any queue is full, storing nothing', async () => {
    const a = new FakeSink('file');
    const b = new FakeSink('s3');
    const big = batch('y', 50);
    const qa = new MemoryQueue();
    const qb = new MemoryQueue(big.ndjson.length + 10);
    const { r, telemetry } = await router([a, b], [qa, qb]);
    await r.accept(big);
    const err = await r.accept(batch('z', 50)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({ status: 429, retryAfterMs: 7000 });
    expect((err as Error).message).toContain('s3');
    expect([qa.events, qb.events]).toEqual([50, 50]);
    expect(await metricValue(telemetry.registry, 'plumb_sink_queue_refused_total', { sink: 's3' })).toBe(50);
    expect(await metricValue(telemetry.registry, 'plumb_sink_queue_refused_total', { sink: 'file' })).toBe(0);
    expect(r.status().find((s) => s.name === 's3')?.refused).toBe(50);
  });

  it('answers 503 when a queue cannot store the batch', async () => {
    const q = new MemoryQueue();
    q.failAppends = true;
    const { r } = await router([new FakeSink('file')], [q]);
    await expect(r.accept(batch('w', 1))).rejects.toMatchObject({ status: 503 });
  });

  it('a slow sink does not hold back another sink', async () => {
    const slow = new FakeSink('elasticsearch');
    const fast = new FakeSink('file');
    let release!: () => void;
    slow.gate = new Promise<void>((resolve) => (release = resolve));
    const { r } = await router([slow, fast], [new MemoryQueue(), new MemoryQueue()]);
    r.start();
    for (let i = 0; i < 5; i++) await r.accept({ id: `b${i}`, ndjson: ndjson(`s${i}-`, 0, 10), count: 10 });
    await waitFor(() => fast.stored.length === 50);
    expect(slow.stored).toHaveLength(0);
    expect(r.status().find((s) => s.name === 'elasticsearch')?.queue.events).toBe(50);
    release();
    await waitFor(() => slow.stored.length === 50);
  });

  it('stops: drains, closes the queues, then refuses with 503', async () => {
    const a = new FakeSink('file');
    a.batch = { maxBytes: 1 << 30, maxWaitMs: 3_600_000 };
    const q = new MemoryQueue();
    const { r } = await router([a], [q]);
    r.start();
    await r.accept(batch('v', 4));
    await r.stop(Date.now() + 5000);
    expect(a.stored).toHaveLength(4);
    expect(q.closed).toBe(true);
    await expect(r.accept(batch('u', 1))).rejects.toMatchObject({ status: 503 });
  });
});
