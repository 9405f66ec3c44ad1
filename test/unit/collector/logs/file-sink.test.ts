import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSink } from '../../../../collector/logs/file-sink.ts';
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

function sink(overrides: Record<string, unknown> = {}): FileSink {
  const config = Value.Decode(FileSinkSchema, Value.Default(FileSinkSchema, { ...overrides }));
  const s = new FileSink(config, dir);
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
