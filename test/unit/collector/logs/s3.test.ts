import { randomBytes } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../shared/log.ts';
import { TRACING_OFF } from '../../../../shared/tracing.ts';
import { S3SinkSchema } from '../../../../collector/logs/config.ts';
import { splitEvents } from '../../../../collector/logs/event.ts';
import { S3Sink } from '../../../../collector/logs/s3.ts';
import { hostSegment, keyHour, objectKey } from '../../../../collector/logs/s3-keys.ts';
import { startS3Server, type S3TestServer } from '../../../helpers/s3-server.ts';

let s3: S3TestServer;
const sinks: S3Sink[] = [];
beforeAll(async () => {
  s3 = await startS3Server();
});
afterAll(async () => {
  for (const s of sinks) await s.close();
  await s3.destroy();
});
let prefix: string;
beforeEach(() => {
  // each test writes under its own prefix in the shared bucket
  prefix = `t-${randomBytes(4).toString('hex')}/`;
});

function sink(overrides: Record<string, unknown> = {}): S3Sink {
  const config = Value.Decode(
    S3SinkSchema,
    Value.Default(S3SinkSchema, { bucket: s3.bucket, prefix, endpoint: s3.url, forcePathStyle: true, credentials: { ...s3.credentials }, timeout: '10s', maxAttempts: 1, ...overrides }),
  );
  const s = new S3Sink(config, { log: silentLogger() });
  sinks.push(s);
  return s;
}

const span = TRACING_OFF.tracer.startSpan('test');
const signal = new AbortController().signal;

function line(id: string, ts: string, host: string, message = 'm'): string {
  return JSON.stringify({ '@timestamp': ts, message, event: { id }, host: { name: host } });
}

describe('s3 sink', () => {
  it('writes gzip NDJSON objects per UTC hour and host, under keys derived from their content', async () => {
    const lines = [line('a1', '2026-11-24T10:15:00Z', 'web-1'), line('b1', '2026-11-24T10:20:00Z', 'web/2'), line('a2', '2026-11-24T10:59:00Z', 'web-1'), line('a3', '2026-11-24T11:00:00Z', 'web-1')];
    const s = sink();
    await s.open(signal);
    const r = await s.write(splitEvents(Buffer.from(lines.join('\n') + '\n')), signal, span);
    expect(r).toEqual({ delivered: 4, duplicate: 0, rejected: [], retry: [] });
    const keys = await s3.keys(prefix);
    expect(keys).toHaveLength(3);
    expect(keys[0]).toMatch(new RegExp(`^${prefix}2026/11/24/10/web-1/a1-a2-[0-9a-f]{16}\\.ndjson\\.gz$`));
    expect(keys[1]).toMatch(new RegExp(`^${prefix}2026/11/24/10/web_2/b1-b1-[0-9a-f]{16}\\.ndjson\\.gz$`));
    expect(keys[2]).toMatch(new RegExp(`^${prefix}2026/11/24/11/web-1/a3-a3-`));
    expect(await s3.text(keys[0])).toBe(`${lines[0]}\n${lines[2]}\n`);
    expect(await s3.text(keys[2])).toBe(`${lines[3]}\n`);
    expect(keyHour(keys[2])).toBe(Date.UTC(2026, 10, 24, 11));

    // the same events again land on the same keys: no copy
    await s.write(splitEvents(Buffer.from(lines.join('\n') + '\n')), signal, span);
    expect(await s3.keys(prefix)).toEqual(keys);
  });

  it('uploads a large object in parts', async () => {
    const s = sink({ partSize: '5mb' });
    const lines: string[] = [];
    // random text compresses to about half: ~13mb of it makes a gzip object of more than two parts
    for (let i = 0; i < 3200; i++) lines.push(line(`big${i}`, '2026-11-24T12:00:00Z', 'web-1', randomBytes(2048).toString('hex')));
    const before = s3.requests.length;
    const r = await s.write(splitEvents(Buffer.from(lines.join('\n') + '\n')), signal, span);
    expect(r.delivered).toBe(3200);
    const requests = s3.requests.slice(before);
    expect(requests.filter((q) => q.startsWith('POST') && q.includes('?uploads'))).toHaveLength(1);
    expect(requests.filter((q) => q.includes('partNumber=')).length).toBeGreaterThanOrEqual(2);
    const [key] = await s3.keys(prefix);
    const text = await s3.text(key);
    expect(text.split('\n').filter(Boolean)).toHaveLength(3200);
    expect(text).toBe(lines.join('\n') + '\n');
  });

  it('fails retryably while S3 is down and writes the same object once it is back', async () => {
    const s = sink();
    const events = splitEvents(Buffer.from([line('r1', '2026-11-24T13:00:00Z', 'h'), line('r2', '2026-11-24T13:00:01Z', 'h')].join('\n') + '\n'));
    await s3.stop();
    await expect(s.write(events, signal, span)).rejects.toMatchObject({ name: 'RetryableError', code: 'PLUMB_ERR_SINK_RETRYABLE' });
    await s3.start();
    s3.failNext(1, 503);
    await expect(s.write(events, signal, span)).rejects.toMatchObject({ name: 'RetryableError', status: 503 });
    expect(await s.write(events, signal, span)).toMatchObject({ delivered: 2 });
    expect(await s.write(events, signal, span)).toMatchObject({ delivered: 2 });
    const keys = await s3.keys(prefix);
    expect(keys).toHaveLength(1);
    expect((await s3.text(keys[0])).split('\n').filter(Boolean)).toHaveLength(2);
  });

  it('says clearly when the bucket does not exist or S3 cannot be reached', async () => {
    const missing = await sink({ bucket: 'no-such-bucket' }).open(signal).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/s3:\/\/no-such-bucket\/.*HeadBucket failed \(404.*the bucket does not exist/);
    await s3.stop();
    try {
      const down = await sink().open(signal).catch((e: unknown) => e);
      expect(down).toMatchObject({ name: 'RetryableError' });
      expect((down as Error).message).toMatch(/HeadBucket failed \(.*ECONNREFUSED/);
    } finally {
      await s3.start();
    }
  });
});

describe('s3 keys', () => {
  it('makes host names safe for a key and reads the hour back', () => {
    expect(hostSegment('web-1.example.com')).toBe('web-1.example.com');
    expect(hostSegment('a/b c')).toBe('a_b_c');
    expect(hostSegment('')).toBe('_unknown');
    expect(hostSegment('..')).toBe('__');
    expect(keyHour('p/2026/01/02/03/h/x.ndjson.gz')).toBe(Date.UTC(2026, 0, 2, 3));
    expect(keyHour('2026/01/02/03/h/x.ndjson.gz')).toBe(Date.UTC(2026, 0, 2, 3));
    expect(keyHour('plumb-2026/01/02/03/h/x.ndjson.gz')).toBe(Date.UTC(2026, 0, 2, 3));
    expect(keyHour('p/2026/13/02/03/h/x.ndjson.gz')).toBeUndefined();
    expect(keyHour('p/2026/01/02/03/h/x.json')).toBeUndefined();
  });

  it('gives different keys to different events with the same first and last ids', () => {
    const a = splitEvents(Buffer.from([line('x', '2026-11-24T10:00:00Z', 'h'), line('y', '2026-11-24T10:00:00Z', 'h'), line('z', '2026-11-24T10:00:00Z', 'h')].join('\n')));
    const b = [a[0], a[2]];
    expect(objectKey('', a)).not.toBe(objectKey('', b));
    expect(objectKey('', a)).toBe(objectKey('', splitEvents(Buffer.from(a.map((e) => e.line.toString()).join('\n')))));
  });
});
