import { appendFile, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSink, lineRuns, unwritten, type FileSinkOptions } from '../../../../collector/logs/file-sink.ts';
import { FileSinkSchema } from '../../../../collector/logs/config.ts';
import { splitEvents } from '../../../../collector/logs/event.ts';

let dir: string;
const sinks: FileSink[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plumb-file-sink-'));
});
afterEach(async () => {
  for (const s of sinks.splice(0)) await s.close();
  await rm(dir, { recursive: true, force: true });
});

function sink(overrides: Record<string, unknown> = {}, options: FileSinkOptions = {}): FileSink {
  const config = Value.Decode(FileSinkSchema, Value.Default(FileSinkSchema, { ...overrides }));
  const s = new FileSink(config, dir, options);
  sinks.push(s);
  return s;
}

function events(spec: [string, string][]) {
  return splitEvents(Buffer.from(spec.map(([id, ts]) => `{"@timestamp":"${ts}","message":"m ${id}","event":{"id":"${id}"}}\n`).join('')));
}

const read = (...parts: string[]) => readFile(join(dir, ...parts), 'utf8');

describe('file sink', () => {
  it('writes each event, as sent, into the folder of its UTC hour', async () => {
    const s = sink();
    await s.open();
    const batch = events([
      ['a', '2026-11-24T10:59:59.999Z'],
      ['b', '2026-11-24T11:00:00.000Z'],
      ['c', '2026-11-24T10:00:00+00:00'],
    ]);
    const result = await s.write(batch);
    expect(result).toEqual({ delivered: 3, duplicate: 0, rejected: [], retry: [] });
    expect(await read('2026', '11', '24', '10', 'part-00000.ndjson')).toBe(batch[0].line.toString() + '\n' + batch[2].line.toString() + '\n');
    expect(await read('2026', '11', '24', '11', 'part-00000.ndjson')).toBe(batch[1].line.toString() + '\n');
  });

  it('starts the next part past maxFileBytes and keeps appending after a restart', async () => {
    const one = events([['a', '2026-11-24T10:00:00Z']]);
    const size = one[0].line.length + 1;
    let s = sink({ maxFileBytes: size * 2 });
    await s.write(events([['a', '2026-11-24T10:00:00Z']]));
    await s.write(events([['b', '2026-11-24T10:00:00Z']]));
    await s.write(events([['c', '2026-11-24T10:00:00Z']]));
    await s.close();
    s = sink({ maxFileBytes: size * 2 });
    await s.write(events([['d', '2026-11-24T10:00:00Z']]));
    const hour = join(dir, '2026', '11', '24', '10');
    expect((await readdir(hour)).sort()).toEqual(['part-00000.ndjson', 'part-00001.ndjson']);
    expect((await read('2026', '11', '24', '10', 'part-00000.ndjson')).split('\n').filter(Boolean).map((l) => JSON.parse(l).event.id)).toEqual(['a', 'b']);
    expect((await read('2026', '11', '24', '10', 'part-00001.ndjson')).split('\n').filter(Boolean).map((l) => JSON.parse(l).event.id)).toEqual(['c', 'd']);
  });

  it('leaves a file ending in a torn line alone and continues in a new part', async () => {
    const hour = join(dir, '2026', '11', '24', '10');
    await mkdir(hour, { recursive: true });
    await writeFile(join(hour, 'part-00003.ndjson'), '{"event":{"id":"x"}}\n{"event":{"id":');
    const s = sink();
    await s.write(events([['a', '2026-11-24T10:00:00Z']]));
    expect((await readdir(hour)).sort()).toEqual(['part-00003.ndjson', 'part-00004.ndjson']);
    expect(JSON.parse(await read('2026', '11', '24', '10', 'part-00004.ndjson')).event.id).toBe('a');
  });

  it('keeps at most maxOpenFiles hour files open', async () => {
    const s = sink({ maxOpenFiles: 2 });
    await s.write(events([['a', '2026-11-24T01:00:00Z'], ['b', '2026-11-24T02:00:00Z'], ['c', '2026-11-24T03:00:00Z'], ['d', '2026-11-24T01:30:00Z']]));
    expect(s.openFiles).toBe(2);
    expect((await read('2026', '11', '24', '01', 'part-00000.ndjson')).split('\n').filter(Boolean)).toHaveLength(2);
  });

  it('asks for a retry when the folder cannot be written', async () => {
    await writeFile(join(dir, '2026'), 'a file where a folder should be');
    const s = sink();
    await expect(s.write(events([['a', '2026-11-24T10:00:00Z']]))).rejects.toMatchObject({ name: 'RetryableError', code: 'PLUMB_ERR_SINK_RETRYABLE' });
  });
});

/** An agent-shaped event id: 32 hex of file identity, 12 hex of byte offset. */
const agentId = (file: number, offset: number) => file.toString(16).padStart(32, '0') + offset.toString(16).padStart(12, '0');

/** The event ids in every part file under the sink's folder, in file order. */
async function idsOnDisk(): Promise<string[]> {
  const ids: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory() && e.name !== '.plumb-writes') await walk(join(d, e.name));
      else if (e.name.endsWith('.ndjson')) for (const l of (await readFile(join(d, e.name), 'utf8')).split('\n')) if (l !== '') ids.push(JSON.parse(l).event.id);
    }
  };
  await walk(dir);
  return ids;
}

const recordFiles = async () => (await readdir(join(dir, '.plumb-writes'))).sort();

describe('file sink: each event once across replays and restarts', () => {
  it('skips events it already wrote, after a reopen too, and reports them as duplicates', async () => {
    const first = events([
      [agentId(7, 4096), '2026-11-24T10:00:00Z'],
      [agentId(7, 100), '2026-11-24T10:00:01Z'],
      [agentId(9, 0), '2026-11-24T11:00:00Z'],
      ['custom-id', '2026-11-24T11:00:01Z'],
    ]);
    let s = sink();
    await s.open();
    expect(await s.write(first)).toEqual({ delivered: 4, duplicate: 0, rejected: [], retry: [] });
    // the queue's replay within the same run
    expect(await s.write(first)).toEqual({ delivered: 0, duplicate: 4, rejected: [], retry: [] });
    await s.close();

    // a restart: the queue replays the unacknowledged batch, with a new event behind it
    s = sink();
    await s.open();
    expect((await s.recovered()).ids).toBe(4);
    const replay = [...first, ...events([[agentId(7, 5000), '2026-11-24T10:00:02Z']])];
    expect(await s.write(replay)).toEqual({ delivered: 1, duplicate: 4, rejected: [], retry: [] });
    // the same event twice in one batch is written once
    const twice = events([['again', '2026-11-24T10:00:03Z'], ['again', '2026-11-24T10:00:03Z']]);
    expect(await s.write(twice)).toEqual({ delivered: 1, duplicate: 1, rejected: [], retry: [] });
    expect(await idsOnDisk()).toEqual([agentId(7, 4096), agentId(7, 100), agentId(7, 5000), 'again', agentId(9, 0), 'custom-id']);
  });

  it('writes events without an event.id every time (they cannot be recognised)', async () => {
    const s = sink();
    const anonymous = splitEvents(Buffer.from('{"@timestamp":"2026-11-24T10:00:00Z","message":"no id"}\n'));
    expect(await s.write(anonymous)).toMatchObject({ delivered: 1, duplicate: 0 });
    expect(await s.write(anonymous)).toMatchObject({ delivered: 1, duplicate: 0 });
    expect((await read('2026', '11', '24', '10', 'part-00000.ndjson')).split('\n').filter(Boolean)).toHaveLength(2);
  });

  it('undoes a write a crash cut short and writes its events once when the queue replays them', async () => {
    const a = events([['a1', '2026-11-24T10:00:00Z'], ['a2', '2026-11-24T10:00:01Z']]);
    const b = events([
      ['b1', '2026-11-24T10:00:02Z'],
      ['b2', '2026-11-24T10:00:03Z'],
      ['b3', '2026-11-24T11:00:00Z'],
    ]);
    let s = sink();
    await s.write(a);
    await s.write(b);
    await s.close();
    // The crash: b's append to hour 10 got as far as the middle of its first line; hour 11's was complete.
    const ten = join(dir, '2026', '11', '24', '10', 'part-00000.ndjson');
    const aBytes = a.reduce((n, e) => n + e.line.length + 1, 0);
    await truncate(ten, aBytes + 10);

    s = sink();
    expect(await s.recovered()).toMatchObject({ records: 2, undone: 1 });
    expect((await stat(ten)).size).toBe(aBytes);
    expect(await s.write([...a, ...b])).toEqual({ delivered: 2, duplicate: 3, rejected: [], retry: [] });
    expect(await idsOnDisk()).toEqual(['a1', 'a2', 'b1', 'b2', 'b3']);
    await s.close();

    // the undone write stays undone: after another restart b1 and b2 count as written (by the replay)
    s = sink();
    expect(await s.recovered()).toMatchObject({ undone: 0 });
    expect(await s.write([...a, ...b])).toMatchObject({ delivered: 0, duplicate: 5 });
    expect(await idsOnDisk()).toEqual(['a1', 'a2', 'b1', 'b2', 'b3']);
  });

  it('keeps a file ending in a torn line out of use only when no write record explains it', async () => {
    // the record of the interrupted write cuts the torn line off, so the part goes on
    let s = sink();
    await s.write(events([['a', '2026-11-24T10:00:00Z']]));
    await s.write(events([['b', '2026-11-24T10:00:01Z']]));
    await s.close();
    const hour = join(dir, '2026', '11', '24', '10');
    await truncate(join(hour, 'part-00000.ndjson'), (await stat(join(hour, 'part-00000.ndjson'))).size - 3);
    s = sink();
    await s.write(events([['b', '2026-11-24T10:00:01Z'], ['c', '2026-11-24T10:00:02Z']]));
    expect(await readdir(hour)).toEqual(['part-00000.ndjson']);
    expect(await idsOnDisk()).toEqual(['a', 'b', 'c']);
  });

  it('skips a torn record at the end of its write records (a crash while recording) and appends after it', async () => {
    let s = sink();
    await s.write(events([['a', '2026-11-24T10:00:00Z']]));
    await s.write(events([['b', '2026-11-24T10:00:01Z']]));
    await s.close();
    // The crash came while b's record was being appended: its data was never written.
    const [records] = await recordFiles();
    const recordPath = join(dir, '.plumb-writes', records);
    await truncate(recordPath, (await stat(recordPath)).size - 5);
    const data = join(dir, '2026', '11', '24', '10', 'part-00000.ndjson');
    await truncate(data, events([['a', '2026-11-24T10:00:00Z']])[0].line.length + 1);

    s = sink();
    const recovery = await s.recovered();
    expect(recovery.records).toBe(1);
    expect(recovery.damagedBytes).toBeGreaterThan(0);
    expect(await s.write(events([['a', '2026-11-24T10:00:00Z'], ['b', '2026-11-24T10:00:01Z']]))).toMatchObject({ delivered: 1, duplicate: 1 });
    await s.close();
    // the torn bytes were cut off: the record written after them reads back
    s = sink();
    expect(await s.recovered()).toMatchObject({ records: 2, damagedBytes: 0 });
    expect(await s.write(events([['b', '2026-11-24T10:00:01Z']]))).toMatchObject({ delivered: 0, duplicate: 1 });

    // garbage at the end (not a record at all) is skipped the same way
    await s.close();
    await appendFile(recordPath, Buffer.from('not a record'));
    s = sink();
    expect(await s.recovered()).toMatchObject({ records: 2, damagedBytes: 12 });
    expect(await idsOnDisk()).toEqual(['a', 'b']);
  });

  it('remembers a bounded window: at least the last windowIds ids, in at most two record files', async () => {
    const window = 4;
    const ts = '2026-11-24T10:00:00Z';
    let s = sink({}, { windowIds: window });
    for (let i = 0; i < 10; i++) await s.write(events([[`e${i}`, ts]]));
    // records of e0–e3, e4–e7, e8–e9: the first file is gone
    expect(await recordFiles()).toHaveLength(2);
    const replay = async () => {
      const r = await s.write(events([[`e${9}`, ts], [`e${6}`, ts]]));
      expect(r).toMatchObject({ delivered: 0, duplicate: 2 });
    };
    await replay();
    await s.close();
    s = sink({}, { windowIds: window });
    expect(await s.recovered()).toMatchObject({ ids: 6 });
    await replay();
    // a stop and start of the same sink (the runner's) reads the same window
    await s.close();
    await s.open();
    expect(await s.recovered()).toMatchObject({ ids: 6 });
    await replay();
    // an id older than the window is not recognised any more
    expect(await s.write(events([['e0', ts]]))).toMatchObject({ delivered: 1, duplicate: 0 });
    expect(await recordFiles()).toHaveLength(2);
  });
});

describe('file sink: the lines it writes', () => {
  const text = (parts: Buffer[]) => Buffer.concat(parts).toString();

  it('writes the lines that follow one another in a queued batch as one view of it, copying nothing', () => {
    const batch = Buffer.from('{"a":1}\n{"b":2}\n{"c":3}\n');
    const { parts, bytes } = lineRuns(splitEvents(batch));
    expect(parts).toHaveLength(1);
    expect(parts[0].buffer).toBe(batch.buffer);
    expect([text(parts), bytes]).toEqual([batch.toString(), batch.length]);
  });

  it('starts a new view where a line is left out or another batch begins, and adds the newline a line lacks', () => {
    const one = splitEvents(Buffer.from('{"a":1}\n{"b":2}\n{"c":3}\n'));
    const two = splitEvents(Buffer.from('{"d":4}\r\n{"e":5}'));
    const { parts, bytes } = lineRuns([one[0], one[2], ...two]);
    const expected = '{"a":1}\n{"c":3}\n{"d":4}\n{"e":5}\n';
    expect([text(parts), bytes]).toEqual([expected, Buffer.byteLength(expected)]);
    // a, c: one view each; d (followed by \r\n) and e (no newline): each line and NEWLINE
    expect(parts).toHaveLength(6);
  });

  it('after a short write, goes on from the first byte not written', () => {
    const parts = [Buffer.from('abc'), Buffer.from('de'), Buffer.from('fgh')];
    expect(unwritten(parts, 0).map(String)).toEqual(['abc', 'de', 'fgh']);
    expect(unwritten(parts, 3).map(String)).toEqual(['de', 'fgh']);
    expect(unwritten(parts, 4).map(String)).toEqual(['e', 'fgh']);
    expect(unwritten(parts, 7).map(String)).toEqual(['h']);
  });
});
