import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { QueueFullError } from '../../../../collector/sinks/queue.ts';
import { SpoolQueue } from '../../../../collector/sinks/spool-queue.ts';
import { ndjson } from '../logs/fake-sink.ts';

let dir: string;
const open: SpoolQueue[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plumb-spool-queue-'));
});
afterEach(async () => {
  for (const q of open.splice(0)) await q.close();
  await rm(dir, { recursive: true, force: true });
});

async function queue(maxBytes = 1 << 20, highWater?: number, releaseOnAck?: boolean): Promise<SpoolQueue> {
  const q = await SpoolQueue.open({ dir, sink: 'file', maxBytes, highWater, fsync: 'never', releaseOnAck, telemetry: new Telemetry(), log: silentLogger() });
  open.push(q);
  return q;
}

async function close(q: SpoolQueue): Promise<void> {
  await q.close();
  open.splice(open.indexOf(q), 1);
}

describe('spool queue', () => {
  it('hands batches out in order, counts what is not acknowledged, and forgets what is', async () => {
    const q = await queue();
    await q.append(ndjson('a', 0, 3), 3);
    await q.append(ndjson('b', 0, 2), 2);
    expect([q.events, q.bytes]).toEqual([5, ndjson('a', 0, 3).length + ndjson('b', 0, 2).length]);
    const read = await q.read(1 << 20);
    expect(read.map((b) => [b.events, b.data.toString()])).toEqual([
      [3, ndjson('a', 0, 3).toString()],
      [2, ndjson('b', 0, 2).toString()],
    ]);
    await q.ack(read[0]);
    expect(q.events).toBe(2);
    await q.rewind();
    const again = await q.read(1 << 20);
    expect(again.map((b) => b.events)).toEqual([2]);
    await q.ack(again[0]);
    expect([q.events, q.bytes]).toEqual([0, 0]);
  });

  it('hands out the ingest’s decoded fields with a batch read while its append is still returning, and with one read later', async () => {
    const q = await queue();
    const fields = (tag: string) => ({ ends: [9], ids: [tag], timestamps: ['2026-11-24T10:00:00Z'], hosts: [''] });
    // the reader waits first, as the sink's runner does, and reads as soon as the batch is written
    const ready = q.waitForData(new AbortController().signal).then(() => q.read(1 << 20));
    const appended = q.append(ndjson('a', 0, 1), 1, fields('a'));
    const [first] = await ready;
    await appended;
    expect(first.decoded).toEqual(fields('a'));
    await q.append(ndjson('b', 0, 1), 1, fields('b'));
    const [second] = await q.read(1 << 20);
    expect(second.decoded).toEqual(fields('b'));
    await q.ack(second);
    // a batch appended before a rewind and first read after it
    await q.append(ndjson('c', 0, 2), 2, fields('c'));
    await q.rewind();
    const again = await q.read(1 << 20);
    expect(again.map((b) => [b.events, b.decoded])).toEqual([[2, fields('c')]]);
  });

  it('keeps what was not acknowledged across a restart, counted again', async () => {
    let q = await queue();
    await q.append(ndjson('a', 0, 3), 3);
    await q.append(ndjson('b', 0, 4), 4);
    const [first] = await q.read(1);
    await q.ack(first);
    await q.read(1 << 20);
    await close(q);
    q = await queue();
    expect(q.events).toBe(4);
    const read = await q.read(1 << 20);
    expect(read.map((b) => b.data.toString())).toEqual([ndjson('b', 0, 4).toString()]);
  });

  it('says when a batch does not fit, and refuses it', async () => {
    const one = ndjson('c', 0, 10);
    const q = await queue(one.length * 2 + 64);
    expect(q.hasRoom(one.length)).toBe(true);
    await q.append(one, 10);
    await q.append(one, 10);
    expect(q.hasRoom(one.length)).toBe(false);
    await expect(q.append(one, 10)).rejects.toBeInstanceOf(QueueFullError);
    expect(q.events).toBe(20);
  });

  it('takes batches again once what waits is back under the high-water mark, however much delivered data is still on disk', async () => {
    // A low mark (20% of 4 MiB) is below one segment (1 MiB): delivered records that still sit
    // in the open segment must not count, or no append would ever roll that segment away.
    const q = await queue(4 << 20, 0.2);
    const batch = ndjson('d', 0, 1000);
    let appended = 0;
    for (let round = 0; round < 40; round++) {
      expect(q.hasRoom(batch.length), `round ${round}`).toBe(true);
      await q.append(batch, 1000);
      appended++;
      const read = await q.read(1 << 30);
      await q.ack(read[read.length - 1]);
    }
    expect(appended * batch.length).toBeGreaterThan(4 << 20);
    expect([q.events, q.bytes]).toEqual([0, 0]);
    // Waiting data does count: past the mark, no more.
    while (q.hasRoom(batch.length)) await q.append(batch, 1000);
    expect(q.bytes).toBeGreaterThan(0.2 * (4 << 20));
    expect(q.aboveHighWater()).toBe(true);
  });
  it('gives back the memory of a batch appended with release once it is acknowledged, and only then', async () => {
    const q = await queue(8 << 20);
    const owned = ndjson('a', 0, 1000); // over release.ts's threshold
    const kept = ndjson('b', 0, 1000);
    const size = owned.length;
    await q.append(owned, 1000, undefined, true);
    await q.append(kept, 1000);
    const read = await q.read(8 << 20);
    // handed to the reader from memory: the very buffers appended
    expect(read.map((b) => b.data)).toEqual([owned, kept]);
    expect(read[0].data).toBe(owned);
    expect(owned.length).toBe(size);
    await q.ack(read[1]);
    expect([owned.length, kept.length, q.events, q.bytes]).toEqual([0, size, 0, 0]);
  });

  it('does not release a batch appended with release that is read back from disk, nor one not acknowledged', async () => {
    const q = await queue(8 << 20);
    const owned = ndjson('a', 0, 1000);
    const text = owned.toString();
    await q.append(owned, 1000, undefined, true);
    const [first] = await q.read(8 << 20);
    expect(first.data).toBe(owned);
    await q.rewind();
    // rewound without an ack: read again from disk, a buffer of its own
    const [again] = await q.read(8 << 20);
    expect(again.data).not.toBe(owned);
    await q.ack(again);
    expect([owned.toString(), again.data.toString(), q.bytes]).toEqual([text, text, 0]);
  });
  it('gives back a batch appended with release at once when the spool does not keep it for the reader', async () => {
    const q = await queue(16 << 20);
    // the spool keeps at most 64 just-written batches for the reader; the ones after are read from disk
    const batches = Array.from({ length: 70 }, (_, i) => ndjson(`b${i}-`, 0, 600));
    const texts = batches.map((b) => b.toString());
    for (const b of batches) await q.append(b, 600, undefined, true);
    expect(batches.map((b) => b.length === 0)).toEqual(batches.map((_, i) => i >= 64));
    const read = await q.read(16 << 20);
    expect(read.map((b) => b.data.toString())).toEqual(texts);
    expect(q.bytes).toBe(texts.reduce((n, t) => n + t.length, 0));
  });

  it('under releaseOnAck, gives back a batch read from disk once it is acknowledged, never the appended buffer', async () => {
    const q = await queue(8 << 20, undefined, true);
    const appended = ndjson('a', 0, 1000);
    const text = appended.toString();
    await q.append(appended, 1000);
    const [fromMemory] = await q.read(8 << 20);
    await q.rewind();
    const [fromDisk] = await q.read(8 << 20);
    expect([fromMemory.data, fromDisk.data.toString()]).toEqual([appended, text]);
    await q.ack(fromDisk);
    expect([fromDisk.data.length, appended.toString()]).toEqual([0, text]);
  });
});
