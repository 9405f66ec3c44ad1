import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, copyFile, rename, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { input, metric, numbered, options, range, rig, sorted, tempDir, type Rig } from './harness.ts';
import { waitFor } from '../../../../helpers/wait.ts';
import { judgeOpen, judgeReopen, movedAwayKind } from '../../../../../agent/logs/tail/rotation.ts';
import type { CheckpointEntry } from '../../../../../agent/logs/tail/checkpoint.ts';

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

/** Every line exactly once, and no event id twice. */
function expectExactlyOnce(r: Rig, lines: string[]): void {
  expect(sorted(r.collector.texts())).toEqual(sorted(lines));
  expect(new Set(r.collector.ids()).size).toBe(r.collector.records.length);
}

describe('rotation verdicts', () => {
  const entry = (over: Partial<CheckpointEntry> = {}): CheckpointEntry => ({
    dev: '1',
    ino: '2',
    birthtimeMs: 1000,
    fileId: 'f',
    generation: 0,
    fp: { len: 10, hash: 'h' },
    offset: 500,
    path: '/x',
    seenAt: 0,
    size: 500,
    ...over,
  });

  it('resumes a file whose leading bytes match and that is not shorter than its offset', () => {
    expect(judgeReopen(entry(), 'same', 800, 1000)).toEqual({ action: 'resume', offset: 500 });
  });

  it('starts a truncated or rewritten file over as a new generation', () => {
    expect(judgeReopen(entry(), 'same', 100, 1000)).toEqual({ action: 'restart', kind: 'truncate', generation: 1 });
    expect(judgeReopen(entry({ generation: 2 }), 'different', 900, 1000)).toEqual({ action: 'restart', kind: 'truncate', generation: 3 });
  });

  it('calls a file born later in the same inode a reuse', () => {
    expect(judgeReopen(entry(), 'different', 900, 2000)).toEqual({ action: 'restart', kind: 'reuse', generation: 0 });
    expect(judgeReopen(entry(), 'shorter', 3, 2000)).toEqual({ action: 'restart', kind: 'reuse', generation: 0 });
  });

  it('judges an open file truncated when it shrank below the read position or its head changed', () => {
    expect(judgeOpen(500, 499, 'same')).toBe('truncate');
    expect(judgeOpen(500, 900, 'different')).toBe('truncate');
    expect(judgeOpen(500, 500, 'same')).toBe('ok');
    expect(movedAwayKind(0)).toBe('delete');
    expect(movedAwayKind(1)).toBe('rename');
  });
});

describe('rotation with real files', () => {
  it('rename: reads the renamed file to its end through the open descriptor, then the new file at the path', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('l', 1, 10));
    const r = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => r.collector.records.length >= 10, { what: 'first lines' });
    await rename(file, `${file}.1`);
    await appendFile(`${file}.1`, numbered('l', 11, 15));
    await writeFile(file, numbered('l', 16, 20));
    await waitFor(() => r.collector.records.length >= 20, { what: 'all lines' });
    await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_rotations_total', { kind: 'rename' })) === 1, { what: 'the rename counted' });
    expectExactlyOnce(r, range('l', 1, 20));
    // The rotated file is closed once it stopped growing.
    await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_open_files')) === 1, { what: 'the old file closed' });
  });

  it('rename to a name the glob also matches: the same file, followed under its new name', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('m', 1, 10));
    const r = await started(rig(dataDir, [input({ path: `${file}*` })]));
    await waitFor(() => r.collector.records.length >= 10, { what: 'first lines' });
    await rename(file, `${file}.1`);
    await appendFile(`${file}.1`, numbered('m', 11, 12));
    await writeFile(file, numbered('m', 13, 15));
    await waitFor(() => r.collector.records.length >= 15, { what: 'all lines' });
    expectExactlyOnce(r, range('m', 1, 15));
    const idOf = (text: string) => r.collector.records.find((x) => x.text === text)?.fileId;
    expect(idOf('m 12')).toBe(idOf('m 1'));
    expect(idOf('m 13')).not.toBe(idOf('m 1'));
    expect(await metric(r.telemetry, 'plumb_tail_rotations_total', { kind: 'rename' })).toBe(1);
  });

  it('copytruncate: a file that shrinks below the read position is read again from 0 under a new file id', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('c', 1, 10));
    const r = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => r.collector.records.length >= 10, { what: 'first lines' });
    await copyFile(file, `${file}.1`);
    await truncate(file, 0);
    await appendFile(file, numbered('c', 11, 13));
    await waitFor(() => r.collector.records.length >= 13, { what: 'lines after the truncation' });
    expectExactlyOnce(r, range('c', 1, 13));
    expect(await metric(r.telemetry, 'plumb_tail_rotations_total', { kind: 'truncate' })).toBe(1);
    const [before, after] = [r.collector.records[0], r.collector.records[10]];
    expect(after.offset).toBe(0);
    expect(after.fileId).not.toBe(before.fileId);
  });

  it('copytruncate followed by more bytes than were read: caught by the changed leading bytes', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('short', 1, 3));
    // Files at their end are read again only after 10 minutes, so the check on each discovery
    // (every 20ms) sees the rewrite before any read could.
    const r = await started(rig(dataDir, [input({ path: file })], options({ pollInterval: '10m' })));
    await waitFor(() => r.collector.records.length >= 3, { what: 'first lines' });
    await truncate(file, 0);
    await appendFile(file, numbered('a much longer line than before', 1, 20));
    await waitFor(() => r.collector.records.length >= 23, { what: 'the rewritten file' });
    expectExactlyOnce(r, [...range('short', 1, 3), ...range('a much longer line than before', 1, 20)]);
    expect(await metric(r.telemetry, 'plumb_tail_rotations_total', { kind: 'truncate' })).toBe(1);
  });

  it('delete and recreate: the deleted file is finished, the new one read from the start', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('d', 1, 5));
    const r = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => r.collector.records.length >= 5, { what: 'first lines' });
    await unlink(file);
    await writeFile(file, numbered('d', 6, 10));
    await waitFor(() => r.collector.records.length >= 10, { what: 'the new file' });
    expectExactlyOnce(r, range('d', 1, 10));
    await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_rotations_total', { kind: 'delete' })) === 1, { what: 'the delete counted' });
    await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_open_files')) === 1, { what: 'the deleted file released' });
  });

  it('a file growing while it is rotated: every line of both files, once', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('g', 1, 5));
    const r = await started(rig(dataDir, [input({ path: file })], options({ rotateWait: '1m' })));
    await waitFor(() => r.collector.records.length >= 5, { what: 'the file opened' });
    // The writer keeps its descriptor: lines land in the renamed file before and after the new one appears.
    await rename(file, `${file}.1`);
    await appendFile(`${file}.1`, numbered('g', 6, 50));
    await writeFile(file, numbered('g', 51, 60));
    await appendFile(`${file}.1`, numbered('g', 61, 100));
    await appendFile(file, numbered('g', 101, 110));
    await waitFor(() => r.collector.records.length >= 110, { what: 'all lines' });
    expectExactlyOnce(r, range('g', 1, 110));
  });

  it('inode reuse: a new file in a checkpointed inode is read from its start, under a new id', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('old', 1, 8));
    const r = await started(rig(dataDir, [input({ path: file })], options({ closeInactive: '30ms' })));
    await waitFor(() => r.collector.records.length >= 8, { what: 'the old file' });
    // Closed while idle, the inode is free to be handed out again.
    await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_open_files')) === 0, { what: 'the idle file closed' });
    const oldIno = (await stat(file)).ino;
    await unlink(file);
    await writeFile(file, numbered('new', 1, 12));
    const reused = (await stat(file)).ino === oldIno;
    await waitFor(() => r.collector.records.length >= 20, { what: 'the new file' });
    expectExactlyOnce(r, [...range('old', 1, 8), ...range('new', 1, 12)]);
    expect(r.collector.records[8].offset).toBe(0);
    expect(r.collector.records[8].fileId).not.toBe(r.collector.records[0].fileId);
    // ext4 and xfs hand a freed inode to the next file; where that happened, it was recognised.
    if (reused) expect(await metric(r.telemetry, 'plumb_tail_rotations_total', { kind: 'reuse' })).toBe(1);
  });

  it('same inode, different leading bytes while stopped: a new file, not a resume at the old offset', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('first', 1, 5));
    const first = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => first.collector.records.length >= 5, { what: 'the first content' });
    await first.tailer.stop(1000);
    const ino = (await stat(file)).ino;
    // Rewritten in place, longer than the checkpointed offset: only the fingerprint tells.
    await writeFile(file, numbered('second content', 1, 10));
    expect((await stat(file)).ino).toBe(ino);
    const second = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => second.collector.records.length >= 10, { what: 'the new content' });
    expect(second.collector.texts()).toEqual(range('second content', 1, 10));
    expect(second.collector.records[0].fileId).not.toBe(first.collector.records[0].fileId);
    expect(await metric(second.telemetry, 'plumb_tail_rotations_total', { kind: 'truncate' })).toBe(1);
  });

  it('restart after a rename rotation: the renamed file resumes at its offset, the new one starts at 0', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('x', 1, 10));
    const first = await started(rig(dataDir, [input({ path: `${file}*` })]));
    await waitFor(() => first.collector.records.length >= 10, { what: 'first lines' });
    await first.tailer.stop(1000);
    await rename(file, `${file}.1`);
    await appendFile(`${file}.1`, numbered('x', 11, 12));
    await writeFile(file, numbered('x', 13, 15));
    const second = await started(rig(dataDir, [input({ path: `${file}*` })]));
    await waitFor(() => second.collector.records.length >= 5, { what: 'the lines written while stopped' });
    expectExactlyOnce(second, range('x', 11, 15));
    const renamed = second.collector.records.find((x) => x.text === 'x 11');
    expect(renamed?.fileId).toBe(first.collector.records[0].fileId);
    expect(renamed?.path).toBe(`${file}.1`);
  });
});

describe('rotation under a running writer', () => {
  it('an application writing while it is rotated by rename: every line once, across all the rotated files', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, '');
    const r = await started(rig(dataDir, [input({ path: `${file}*` })]));
    const writer = spawn(
      process.execPath,
      [path.join(import.meta.dirname, '..', '..', '..', '..', 'helpers', 'log-writer.ts'), '--file', file, '--rate', '20000', '--count', '5000', '--rotate-every', '500', '--keep', '20'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    writer.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const [code] = (await once(writer, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ written: 5000, rotations: 10 });
    await waitFor(() => r.collector.records.length >= 5000, { what: 'every written line' });
    expectExactlyOnce(r, range('line', 1, 5000));
  });
});
