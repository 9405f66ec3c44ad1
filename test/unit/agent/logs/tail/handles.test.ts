/**
 * More matching files than descriptors (`maxOpenFiles`): files take turns. An idle file gives
 * its descriptor to a waiting one at once, a busy one after holding it a discovery interval, so
 * every file makes progress within ⌈files / maxOpenFiles⌉ discovery intervals, and a file
 * closed for another resumes after what it handed out: no line lost, none twice.
 */
import { appendFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { input, metric, options, rig, tally, tempDir, type Rig } from './harness.ts';
import { waitFor } from '../../../../helpers/wait.ts';

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

const FILES = 600;
const MAX_OPEN = 100;
const DISCOVER_MS = 100;

describe('maxOpenFiles', () => {
  it(`${FILES} files all written to, ${MAX_OPEN} descriptors: each file is read within a bounded time, every line once`, async () => {
    const names = Array.from({ length: FILES }, (_, i) => path.join(dir, `f${i}.log`));
    for (const f of names) await writeFile(f, '');
    // Line numbers are global: file i gets the lines n with n % FILES === i.
    let written = 0;
    const round = (): void => {
      for (let i = 0; i < FILES; i++) appendFileSync(names[i], `line ${++written}\n`);
    };
    round();
    const r = rig(dataDir, [input({ path: path.join(dir, '*.log') })], options({ maxOpenFiles: MAX_OPEN, discoverInterval: `${DISCOVER_MS}ms`, closeInactive: '10m' }));
    running.push(r);
    await r.tailer.start();
    const startedAt = Date.now();
    const firstSeen = new Map<string, number>();
    let seenBatches = 0;
    const look = (): void => {
      const at = Date.now() - startedAt;
      for (; seenBatches < r.collector.batches.length; seenBatches++) {
        for (const rec of r.collector.batches[seenBatches].records) if (!firstSeen.has(rec.path)) firstSeen.set(rec.path, at);
      }
    };
    let maxOpen = 0;
    const rounds = 60;
    for (let k = 1; k < rounds; k++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      round();
      maxOpen = Math.max(maxOpen, await metric(r.telemetry, 'plumb_tail_open_files'));
      look();
    }
    const writingFor = Date.now() - startedAt;
    await waitFor(() => r.collector.records.length >= written, { what: 'every line', timeoutMs: 30_000 }).catch(() => undefined);
    look();
    expect(tally(r.collector.texts().map((t) => Number(t.slice(5))), written)).toEqual({ lost: [], duplicated: [] });
    expect(maxOpen).toBeLessThanOrEqual(MAX_OPEN);
    // Every file was reached while all were still being written to (before, 88 of 600 files
    // waited for closeInactive).
    const slowest = Math.max(...firstSeen.values());
    console.log(`${FILES} files, ${MAX_OPEN} descriptors: every file read within ${slowest} ms of the start, writing went on for ${writingFor} ms; bound ${Math.ceil(FILES / MAX_OPEN)} discovery intervals of ${DISCOVER_MS} ms`);
    expect(firstSeen.size).toBe(FILES);
    expect(slowest).toBeLessThan(writingFor);
  });

  it('an idle file gives its descriptor to a waiting one without waiting for closeInactive', async () => {
    for (let i = 0; i < 6; i++) await writeFile(path.join(dir, `g${i}.log`), `line ${i + 1}\n`);
    const r = rig(dataDir, [input({ path: path.join(dir, '*.log') })], options({ maxOpenFiles: 2, closeInactive: '10m' }));
    running.push(r);
    await r.tailer.start();
    await waitFor(() => r.collector.records.length >= 6, { what: 'all six files' });
    expect(await metric(r.telemetry, 'plumb_tail_open_files')).toBeLessThanOrEqual(2);
    // A file closed for another is reopened where it stopped when it grows.
    appendFileSync(path.join(dir, 'g0.log'), 'line 7\n');
    await waitFor(() => r.collector.records.length >= 7, { what: 'the appended line' });
    expect(tally(r.collector.texts().map((t) => Number(t.slice(5))), 7)).toEqual({ lost: [], duplicated: [] });
  });
});
