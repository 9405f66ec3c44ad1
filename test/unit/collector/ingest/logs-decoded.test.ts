import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { logsIngestPlugin } from '../../../../collector/ingest/logs.ts';
import { SeenEvents } from '../../../../collector/ingest/dedupe.ts';
import { PatternMiner } from '../../../../collector/patterns/miner.ts';
import { PatternsSchema } from '../../../../collector/patterns/config.ts';
import { decodeEvents, splitEvents, type LogEvent } from '../../../../collector/logs/event.ts';
import type { AcceptedLogBatch } from '../../../../collector/logs/router.ts';
import { SpoolQueue } from '../../../../collector/sinks/spool-queue.ts';
import { LOGS_PATH } from '../../../../shared/wire.ts';
import { TRACING_OFF } from '../../../../shared/tracing.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plumb-logs-decoded-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const line = (i: number, over: Record<string, unknown> = {}) =>
  JSON.stringify({ '@timestamp': `2026-11-24T10:00:0${i % 10}.000Z`, message: `GET /item/${i} took ${i * 3} ms "q\\u00e9"`, host: { name: `web-${i % 3}` }, event: { id: `f${i}` }, ...over });

/** The door's batches as the router gets them, for a body of lines. */
async function accepted(body: string, withPatterns: boolean, bodies: Buffer[] = []): Promise<AcceptedLogBatch[]> {
  const batches: AcceptedLogBatch[] = [];
  const seen = new SeenEvents(1000);
  const app = Fastify();
  app.addHook('preHandler', async (request) => void bodies.push(request.body as Buffer));
  const telemetry = new Telemetry();
  const patterns = withPatterns ? new PatternMiner(Value.Decode(PatternsSchema, Value.Default(PatternsSchema, { saveInterval: 0 })), { telemetry, log: silentLogger(), dataDir: dir }) : null;
  await app.register(logsIngestPlugin, {
    sink: { accept: async (b: AcceptedLogBatch) => void batches.push(b) },
    observer: null,
    seen: { has: (id: string) => seen.has(id), record: async (ids: readonly string[]) => void ids.forEach((id) => seen.add(id)) },
    patterns,
    maxEventsPerBatch: 1000,
    retryAfterMs: 1000,
    telemetry,
    tracing: TRACING_OFF,
    log: silentLogger(),
  });
  const r = await app.inject({ method: 'POST', url: LOGS_PATH, headers: { 'content-type': 'application/x-ndjson' }, payload: body });
  await app.close();
  expect(r.statusCode).toBe(200);
  return batches;
}

describe('the fields the logs door reads, handed to the sinks with the queued batch', () => {
  for (const withPatterns of [true, false]) {
    it(`decode to the events a scan of the queued bytes gives (pattern mining ${withPatterns ? 'on' : 'off'})`, async () => {
      const lines = [line(0), line(1, { host: 'a string' }), '{"broken"', line(2, { pattern: 'theirs' }), line(3, { host: { name: 'h\\"q' } }), '', line(4)];
      const [batch] = await accepted(lines.join('\n') + '\n', withPatterns);
      expect(batch.decoded).toBeDefined();
      const out: LogEvent[] = [];
      decodeEvents(batch.ndjson, out, batch.decoded);
      expect(out).toEqual(splitEvents(batch.ndjson));
      expect(out.map((e) => e.id)).toEqual(['f0', 'f1', 'f2', 'f3', 'f4']);
    });
  }

  it('hand the sinks a batch of their own: the request body is given back once its lines are copied', async () => {
    const lines = Array.from({ length: 1000 }, (_, i) => line(i));
    const bodies: Buffer[] = [];
    const [batch] = await accepted(lines.join('\n') + '\n', false, bodies);
    expect(bodies).toHaveLength(1);
    expect(bodies[0].length).toBe(0);
    expect(splitEvents(batch.ndjson).map((e) => e.line.toString())).toEqual(lines);
  });

  it('are not made for a batch with a timestamp the sinks normalize, which is scanned as before', async () => {
    const [batch] = await accepted([line(0), line(1, { '@timestamp': '2026-11-24T11:00:00+01:00' })].join('\n'), true);
    expect(batch.decoded).toBeUndefined();
    const out: LogEvent[] = [];
    decodeEvents(batch.ndjson, out, batch.decoded);
    expect(out).toEqual(splitEvents(batch.ndjson));
    expect(out[1].timestamp).toBe('2026-11-24T10:00:00.000Z');
  });

  it('come back from the disk queue with their batch until it is read, never after a rewind or a restart', async () => {
    const [a] = await accepted([line(0), line(1)].join('\n'), true);
    const [b] = await accepted([line(5), line(6), line(7)].join('\n'), true);
    const open = () => SpoolQueue.open({ dir: join(dir, 'queue'), sink: 'file', maxBytes: 4096, fsync: 'never', telemetry: new Telemetry(), log: silentLogger() });
    let q = await open();
    // a small segment size: the batches land in different segment files
    for (let i = 0; i < 3; i++) {
      await q.append(a.ndjson, a.count, a.decoded);
      await q.append(b.ndjson, b.count, b.decoded);
    }
    const read = [...(await q.read(1 << 20)), ...(await q.read(1 << 20)), ...(await q.read(1 << 20))];
    expect(read.map((r) => r.events)).toEqual([2, 3, 2, 3, 2, 3]);
    expect(read.map((r) => r.decoded)).toEqual([a.decoded, b.decoded, a.decoded, b.decoded, a.decoded, b.decoded]);
    await q.rewind();
    const again = await q.read(1 << 20);
    expect(again.length).toBeGreaterThan(0);
    expect(again.every((r) => r.decoded === undefined)).toBe(true);
    await q.append(b.ndjson, b.count, b.decoded);
    await q.close();
    q = await open();
    const after = [...(await q.read(1 << 20)), ...(await q.read(1 << 20)), ...(await q.read(1 << 20))];
    expect(after.map((r) => r.events)).toEqual([2, 3, 2, 3, 2, 3, 3]);
    expect(after.every((r) => r.decoded === undefined)).toBe(true);
    for (const r of after) {
      const out: LogEvent[] = [];
      decodeEvents(r.data, out, r.decoded);
      expect(out).toEqual(splitEvents(r.data));
    }
    await q.close();
  });
});
