/**
 * copytruncate and truncation in place. A copy of a followed file is content already read: the
 * tailer finishes reading it from where the original stopped, under the original's file id
 * (so its lines get the event ids they would have had), and reads the truncated original again
 * from 0 as a new generation. Every test counts lost and duplicated lines by number.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, copyFile, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { input, metric, numbered, options, rig, tally, tempDir, type Rig } from './harness.ts';
import { waitFor } from '../../../../helpers/wait.ts';
import { recordId } from '../../../../../agent/logs/tail/record.ts';

const LOG_WRITER = path.join(import.meta.dirname, '..', '..', '..', '..', 'helpers', 'log-writer.ts');

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

/** Line numbers of `<prefix> <n>` records. */
function numbers(r: Rig, prefix = 'line'): number[] {
  return r.collector.texts().map((t) => Number(t.slice(prefix.length + 1)));
}

interface WriterResult {
  written: number;
  rotations: number;
  truncations: number[];
}

async function runWriter(args: string[]): Promise<WriterResult> {
  const writer = spawn(process.execPath, [LOG_WRITER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  writer.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const [code] = (await once(writer, 'exit')) as [number | null];
  expect(code).toBe(0);
  return JSON.parse(out) as WriterResult;
}

describe('copytruncate', () => {
  for (const glob of [false, true]) {
    const name = glob ? 'app.log*' : 'app.log';
    it(`${name}: the unread rest of the copy is read from the old offset under the old id, the original again from 0`, async () => {
      const file = path.join(dir, 'app.log');
      await writeFile(file, numbered('line', 1, 10));
      const r = await started(rig(dataDir, [input({ path: glob ? `${file}*` : file })]));
      await waitFor(() => r.collector.records.length >= 10, { what: 'first lines' });
      // The consumer stalls, so the reader is behind when the rotation happens.
      let release!: () => void;
      r.collector.gate = new Promise((resolve) => (release = resolve));
      await appendFile(file, numbered('line', 11, 11));
      await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_batches_total')) >= 2, { what: 'the reader held by the consumer' });
      await appendFile(file, numbered('line', 12, 40));
      await copyFile(file, `${file}.1`);
      await truncate(file, 0);
      await appendFile(file, numbered('line', 41, 45));
      release();
      r.collector.gate = undefined;
      await waitFor(() => r.collector.records.length >= 45, { what: 'every line' });
      // Nothing more arrives: the copy is not read again as a new file.
      await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_rotations_total', { kind: 'copy' })) === 1, { what: 'the copy counted' });
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(tally(numbers(r), 45)).toEqual({ lost: [], duplicated: [] });
      const rec = (n: number) => r.collector.records.find((x) => x.text === `line ${n}`);
      // Lines read from the copy carry the original's id and offsets: a replay dedupes.
      expect(rec(20)?.fileId).toBe(rec(1)?.fileId);
      expect(rec(20)?.offset).toBe(numbered('line', 1, 19).length);
      expect(rec(41)?.fileId).not.toBe(rec(1)?.fileId);
      expect(rec(41)?.offset).toBe(0);
      expect(await metric(r.telemetry, 'plumb_tail_rotations_total', { kind: 'truncate' })).toBe(1);
    });

    it(`${name}: copytruncate while the agent is down; after the restart the copy's rest and the new content arrive once, ids as before`, async () => {
      const file = path.join(dir, 'app.log');
      await writeFile(file, numbered('line', 1, 10));
      const paths = glob ? `${file}*` : file;
      const first = await started(rig(dataDir, [input({ path: paths })]));
      await waitFor(() => first.collector.records.length >= 10, { what: 'first lines' });
      await first.tailer.stop(1000);
      await appendFile(file, numbered('line', 11, 30));
      await copyFile(file, `${file}.1`);
      await truncate(file, 0);
      await appendFile(file, numbered('line', 31, 35));
      const second = await started(rig(dataDir, [input({ path: paths })]));
      await waitFor(() => second.collector.records.length >= 25, { what: 'the lines written while down' });
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(tally([...numbers(first), ...numbers(second)], 35)).toEqual({ lost: [], duplicated: [] });
      expect(second.collector.records.find((x) => x.text === 'line 11')?.fileId).toBe(first.collector.records[0].fileId);
    });
  }

  it('a replay of lines read from the copy (not acknowledged, then a restart) has the same event ids', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('line', 1, 10));
    const first = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => first.collector.records.length >= 10, { what: 'first lines' });
    first.collector.autoAck = false;
    await appendFile(file, numbered('line', 11, 20));
    await copyFile(file, `${file}.1`);
    await truncate(file, 0);
    await waitFor(() => first.collector.records.length >= 20, { what: 'the copy read' });
    const idsBefore = first.collector.records.slice(10).map(recordId);
    await first.tailer.stop(0);
    const second = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => second.collector.records.length >= 10, { what: 'the replay' });
    expect(second.collector.records.map(recordId)).toEqual(idsBefore);
  });

  for (const glob of [false, true]) {
    it(`${glob ? 'app.log*' : 'app.log'}: an application rotated by copytruncate every 1000 lines at 10 000 lines/s: every line once`, async () => {
      const file = path.join(dir, 'app.log');
      await writeFile(file, '');
      const r = await started(rig(dataDir, [input({ path: glob ? `${file}*` : file })], options({ readChunkBytes: '4kib' })));
      const w = await runWriter(['--file', file, '--rate', '10000', '--count', '6000', '--rotate-every', '1000', '--mode', 'copytruncate', '--keep', '10']);
      expect(w.rotations).toBe(6);
      // On a timeout the count below says what is missing.
      await waitFor(() => r.collector.records.length >= 6000, { what: 'every written line', timeoutMs: 30_000 }).catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const t = tally(numbers(r), 6000);
      expect(t).toEqual({ lost: [], duplicated: [] });
      expect(new Set(r.collector.ids()).size).toBe(r.collector.records.length);
    });
  }
});

describe('truncation in place', () => {
  it('is noticed by the read that finds the file shorter, not by the next discovery pass', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('old', 1, 20));
    // Discovery runs once at start; only reads can notice anything after.
    const r = await started(rig(dataDir, [input({ path: file })], options({ discoverInterval: '10m' })));
    await waitFor(() => r.collector.records.length >= 20, { what: 'first lines' });
    await truncate(file, 0);
    await appendFile(file, numbered('new', 1, 3));
    await waitFor(() => r.collector.records.length >= 23, { what: 'the new content' });
    // Rewritten past the old read position between two reads: the changed leading bytes tell.
    await truncate(file, 0);
    await appendFile(file, numbered('newer content, longer than before', 1, 30));
    await waitFor(() => r.collector.records.length >= 53, { what: 'the rewritten content' });
    expect(r.collector.texts().slice(20, 23)).toEqual(['new 1', 'new 2', 'new 3']);
    expect(r.collector.texts()[23]).toBe('newer content, longer than before 1');
    expect(r.collector.records.length).toBe(53);
    expect(await metric(r.telemetry, 'plumb_tail_rotations_total', { kind: 'truncate' })).toBe(2);
  });

  // The writer truncates its file in place (no copy) every `every` while writing `rate` lines/s.
  // Lines written after the last read of a content and before its truncation are gone by
  // design; every other line must arrive once. So each content's lines must arrive as a
  // contiguous run from its first line: a hole or a repeat would be a tailer's loss.
  for (const [rate, every] of [
    [3000, '400ms'],
    [3000, '200ms'],
    [10000, '500ms'],
  ] as const) {
    it(`${rate} lines/s truncated every ${every}: only the lines no read could have seen are missing`, async () => {
      const file = path.join(dir, 'app.log');
      await writeFile(file, '');
      const r = await started(rig(dataDir, [input({ path: file })]));
      const w = await runWriter(['--file', file, '--rate', String(rate), '--duration', '2s', '--rotate-interval', every, '--mode', 'truncate']);
      const last = w.written;
      await waitFor(async () => numbers(r).includes(last), { what: 'the last line', timeoutMs: 20_000 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const got = numbers(r);
      const { duplicated, lost } = tally(got, last);
      expect(duplicated).toEqual([]);
      const starts = [1, ...w.truncations, last + 1];
      const have = new Set(got);
      let noticed = 0;
      const holes: number[] = [];
      for (let g = 0; g + 1 < starts.length; g++) {
        // Within one content: received lines are a prefix of its lines.
        let end = starts[g];
        while (end < starts[g + 1] && have.has(end)) end++;
        for (let n = end; n < starts[g + 1]; n++) if (have.has(n)) holes.push(n);
        if (end > starts[g]) noticed++;
      }
      expect(holes).toEqual([]);
      // Most contents were read at all (a content cut whole before any read is allowed, but
      // would be rare at these rates even on a loaded machine).
      expect(noticed).toBeGreaterThanOrEqual(Math.floor(0.5 * (starts.length - 1)));
      console.log(`truncate every ${every} at ${rate}/s: ${w.truncations.length} truncations, ${lost.length} of ${last} lines cut before any read (${((100 * lost.length) / last).toFixed(1)}%)`);
    });
  }
});
