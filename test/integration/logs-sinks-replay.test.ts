/**
 * `plumb replay` from the S3 archive into Elasticsearch: objects written by the S3 sink to
 * s3rver, replayed into the Elasticsearch test server. Exactly the archived events arrive, a
 * second run adds nothing, an interrupted run resumes where it stopped.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, beforeEach, afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log.ts';
import { TRACING_OFF } from '../../shared/tracing.ts';
import { CollectorLogsSchema, S3SinkSchema } from '../../collector/logs/config.ts';
import { splitEvents } from '../../collector/logs/event.ts';
import { runReplay, type ReplayOptions } from '../../collector/logs/replay.ts';
import { S3Sink } from '../../collector/logs/s3.ts';
import { startEsServer, type EsTestServer } from '../helpers/es-server.ts';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';
import { waitFor } from '../helpers/wait.ts';

const HOURS = ['10', '11', '12'];
const WRITES = 4;
const PER_WRITE = 60;
const N = WRITES * PER_WRITE;

let s3: S3TestServer;
const prefix = `replay-${randomBytes(3).toString('hex')}/`;
let objects: number;

beforeAll(async () => {
  s3 = await startS3Server();
  const config = Value.Decode(S3SinkSchema, Value.Default(S3SinkSchema, { bucket: s3.bucket, prefix, endpoint: s3.url, forcePathStyle: true, credentials: { ...s3.credentials }, maxAttempts: 1 }));
  const sink = new S3Sink(config, { log: silentLogger() });
  const signal = new AbortController().signal;
  for (let w = 0; w < WRITES; w++) {
    let text = '';
    for (let i = 0; i < PER_WRITE; i++) {
      const k = w * PER_WRITE + i;
      text += JSON.stringify({ '@timestamp': `2026-11-24T${HOURS[k % 3]}:${String(k % 60).padStart(2, '0')}:00.000Z`, message: `event ${k}`, event: { id: `rp${k}` }, host: { name: `web-${k % 2}` } }) + '\n';
    }
    await sink.write(splitEvents(Buffer.from(text)), signal, TRACING_OFF.tracer.startSpan('archive'));
  }
  await sink.close();
  objects = (await s3.keys(prefix)).length;
});
afterAll(() => s3.destroy());

let dataDir: string;
let es: EsTestServer;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'plumb-replay-'));
  es = await startEsServer();
});
afterEach(async () => {
  await es.stop();
  await rm(dataDir, { recursive: true, force: true });
});

function options(extra: Partial<ReplayOptions> = {}): ReplayOptions {
  const logs = Value.Decode(
    CollectorLogsSchema,
    Value.Default(CollectorLogsSchema, {
      sinks: {
        elasticsearch: { node: es.url, retryInitial: '10ms', retryMax: '50ms' },
        s3: { bucket: 'whatever-the-live-sink-uses', endpoint: s3.url, forcePathStyle: true, credentials: { ...s3.credentials }, maxAttempts: 1 },
      },
    }),
  );
  return { from: `s3://${s3.bucket}/${prefix}`, to: 'elasticsearch', logs, dataDir, ...extra };
}

function output() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  return { out, text: () => text };
}

describe('plumb replay', () => {
  it('replays exactly the archived events; a second run adds nothing', async () => {
    expect(objects).toBeGreaterThanOrEqual(WRITES * 6);
    const o = output();
    const first = await runReplay(options(), { out: o.out, isTTY: false });
    expect(first).toMatchObject({ objects, skipped: 0, completed: objects, failedObjects: 0, events: N, delivered: N, alreadyPresent: 0, failed: 0, interrupted: false, exitCode: 0 });
    expect(es.count()).toBe(N);
    expect(es.docs('plumb-logs-2026.11.24').find((d) => d.id === 'rp7')?.source).toMatchObject({ message: 'event 7', host: { name: 'web-1' } });
    expect(o.text()).toContain(`replay: ${objects} object(s) to replay`);
    expect(o.text()).toContain(`events: ${N} read, ${N} written, 0 already present, 0 failed`);

    const again = await runReplay(options(), { out: output().out, isTTY: false });
    expect(again).toMatchObject({ objects, skipped: objects, completed: 0, events: 0, exitCode: 0 });
    const restarted = await runReplay(options({ restart: true }), { out: output().out, isTTY: false });
    expect(restarted).toMatchObject({ completed: objects, events: N, delivered: 0, alreadyPresent: N, exitCode: 0 });
    expect(es.count()).toBe(N);
  });

  it('resumes an interrupted run where it stopped', async () => {
    const stop = new AbortController();
    es.delayMs = 50;
    const interrupted = runReplay(options(), { out: output().out, isTTY: false, signal: stop.signal });
    await waitFor(() => es.bulkRequests >= 3);
    stop.abort();
    const first = await interrupted;
    expect(first.interrupted).toBe(true);
    expect(first.exitCode).toBe(1);
    expect(first.completed).toBeGreaterThan(0);
    expect(first.completed).toBeLessThan(objects);
    const state = (await readFile(first.stateFile, 'utf8')).split('\n').filter(Boolean);
    expect(state).toHaveLength(first.completed);

    es.delayMs = 0;
    const o = output();
    const second = await runReplay(options(), { out: o.out, isTTY: true });
    expect(second).toMatchObject({ objects, skipped: first.completed, completed: objects - first.completed, interrupted: false, exitCode: 0 });
    expect(es.count()).toBe(N);
    expect(new Set(es.docs().map((d) => d.id)).size).toBe(N);
    expect(o.text()).toMatch(/\r\[#+\] 100% \d+\/\d+ objects/);
    expect(o.text()).toContain(`(${first.completed} already done by an earlier run)`);
  });

  it('replays only the events between since and until', async () => {
    const r = await runReplay(options({ since: '2026-11-24T11:00:00Z', until: '2026-11-24T12:00:00Z' }), { out: output().out, isTTY: false });
    expect(r.events).toBe(N / 3);
    expect(es.count()).toBe(N / 3);
    expect(es.docs().every((d) => String(d.source['@timestamp']).startsWith('2026-11-24T11:'))).toBe(true);
    expect(r.objects).toBe(objects / 3);
  });

  it('says what is wrong with its arguments', async () => {
    await expect(runReplay(options({ from: 'http://bucket/x' }), { out: output().out, isTTY: false })).rejects.toThrow(/--from "http:\/\/bucket\/x": expected s3:\/\/bucket\/prefix/);
    await expect(runReplay(options({ since: 'last tuesday' }), { out: output().out, isTTY: false })).rejects.toThrow(/--since "last tuesday": expected a time/);
    const noEs = options();
    noEs.logs.sinks.elasticsearch = undefined;
    await expect(runReplay(noEs, { out: output().out, isTTY: false })).rejects.toThrow(/collector\.logs\.sinks\.elasticsearch is not configured/);
  });
});
