/**
 * Compressed rotations: a `.gz` made of a known file before all of it was read (logrotate's
 * `compress` without `delaycompress` while the agent was down) is read from the known offset,
 * under the known file id; a `.gz` of anything else is never read.
 */
import { gzipSync } from 'node:zlib';
import { appendFile, copyFile, readFile, rename, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { input, metric, numbered, rig, tally, tempDir, type Rig } from './harness.ts';
import { waitFor } from '../../../../helpers/wait.ts';
import { GzipSource } from '../../../../../agent/logs/tail/compressed.ts';

let dir: string;
let dataDir: string;
let cleanup: () => Promise<void>;
const running: Rig[] = [];

beforeEach(async () => {
  ({ dir, dataDir, cleanup } = await tempDir());
});

afterEach(async () => {
  for (const r of running.splice(0)) await r.tailer.stop(0);
  await cleanup();
});

async function started(r: Rig): Promise<Rig> {
  running.push(r);
  await r.tailer.start();
  return r;
}

function numbers(r: Rig): number[] {
  return r.collector.texts().map((t) => Number(t.slice('line '.length)));
}

/** gzip `file` to `file.gz` and remove it, as logrotate's compress does. */
async function gzip(file: string): Promise<void> {
  await writeFile(`${file}.gz`, gzipSync(await readFile(file)));
  await unlink(file);
}

/** Waits until no record arrived for a while: what the tailer will deliver, it has. */
async function quiet(r: Rig): Promise<void> {
  let last = -1;
  await waitFor(
    async () => {
      const n = r.collector.records.length;
      const idle = n === last && (await metric(r.telemetry, 'plumb_tail_unacked_batches')) === 0;
      last = n;
      return idle;
    },
    { what: 'the tailer to go quiet', intervalMs: 300 },
  );
}

describe('GzipSource', () => {
  it('reads decompressed bytes at any position, forward and back', async () => {
    const file = path.join(dir, 'x.gz');
    const text = numbered('line', 1, 5000);
    await writeFile(file, gzipSync(text));
    const src = await GzipSource.open(file);
    const buf = Buffer.alloc(100);
    const { bytesRead } = await src.read(buf, 0, 100, 30_000);
    expect(buf.toString('utf8', 0, bytesRead)).toBe(text.slice(30_000, 30_100));
    await src.read(buf, 0, 10, 0);
    expect(buf.toString('utf8', 0, 10)).toBe(text.slice(0, 10));
    expect((await src.read(buf, 0, 100, text.length)).bytesRead).toBe(0);
    await src.close();
  });
});

describe('a .gz rotation of a known file', () => {
  for (const glob of [false, true]) {
    const name = glob ? 'app.log*' : 'app.log';
    it(`${name}: renamed and compressed while the agent was down: read after the restart from the checkpoint, same ids`, async () => {
      const file = path.join(dir, 'app.log');
      await writeFile(file, numbered('line', 1, 10));
      const paths = glob ? `${file}*` : file;
      const first = await started(rig(dataDir, [input({ path: paths })]));
      await waitFor(() => first.collector.records.length >= 10, { what: 'first lines' });
      await first.tailer.stop(1000);
      await appendFile(file, numbered('line', 11, 3000));
      await rename(file, `${file}.1`);
      await gzip(`${file}.1`);
      await writeFile(file, numbered('line', 3001, 3010));
      const second = await started(rig(dataDir, [input({ path: paths })]));
      await waitFor(() => second.collector.records.length >= 3000, { what: 'the compressed rest and the new file' });
      await quiet(second);
      expect(tally([...numbers(first), ...numbers(second)], 3010)).toEqual({ lost: [], duplicated: [] });
      const r11 = second.collector.records.find((x) => x.text === 'line 11');
      expect(r11?.fileId).toBe(first.collector.records[0].fileId);
      expect(r11?.offset).toBe(numbered('line', 1, 10).length);
      expect(await metric(second.telemetry, 'plumb_tail_rotations_total', { kind: 'compressed' })).toBe(1);
    });

    it(`${name}: copytruncate with compress while the agent was down: the copy's rest is read from its .gz`, async () => {
      const file = path.join(dir, 'app.log');
      await writeFile(file, numbered('line', 1, 10));
      const paths = glob ? `${file}*` : file;
      const first = await started(rig(dataDir, [input({ path: paths })]));
      await waitFor(() => first.collector.records.length >= 10, { what: 'first lines' });
      await first.tailer.stop(1000);
      await appendFile(file, numbered('line', 11, 500));
      await copyFile(file, `${file}.1`);
      await truncate(file, 0);
      await gzip(`${file}.1`);
      await appendFile(file, numbered('line', 501, 520));
      const second = await started(rig(dataDir, [input({ path: paths })]));
      await waitFor(() => second.collector.records.length >= 510, { what: 'every line' });
      await quiet(second);
      expect(tally([...numbers(first), ...numbers(second)], 520)).toEqual({ lost: [], duplicated: [] });
    });
  }

  it('a .gz whose lines were all read, or of a file never followed, is not read', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('line', 1, 10));
    const first = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => first.collector.records.length >= 10, { what: 'first lines' });
    await first.tailer.stop(1000);
    await rename(file, `${file}.1`);
    await gzip(`${file}.1`);
    await writeFile(file, numbered('line', 11, 12));
    // History from before the agent: a rotation it never saw.
    await writeFile(`${file}.2.gz`, gzipSync(numbered('old', 1, 5)));
    const second = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => second.collector.records.length >= 2, { what: 'the new file' });
    await quiet(second);
    expect(second.collector.texts()).toEqual(['line 11', 'line 12']);
    expect(await metric(second.telemetry, 'plumb_tail_rotations_total', { kind: 'compressed' })).toBe(0);
  });
});
