/**
 * The tailer under the real logrotate (Debian's `logrotate`), forced every 450 ms while an
 * application appends numbered lines at 3 000 lines/s: copytruncate, create (the application
 * reopens its file on SIGHUP from postrotate), compress with and without delaycompress, for a
 * plain path and for a glob that also matches the rotations, and a restart with a compressed
 * rotation made while the tailer was stopped. Each scenario counts lost and duplicated lines by
 * number: 0 and 0. copytruncate itself loses the lines written between its copy and its
 * truncation (logrotate's manual says so); those are told apart by reading every file logrotate
 * left (app.log, app.log.N, app.log.N.gz): a line on none of them no reader could have seen.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, expect } from 'vitest';
import { input, metric, options, rig, tally, tempDir, type Rig } from '../unit/agent/logs/tail/harness.ts';
import { waitFor } from '../helpers/wait.ts';
import { REPO_ROOT } from '../helpers/processes.ts';

const run = promisify(execFile);
export const LOGROTATE = ['/usr/sbin/logrotate', '/sbin/logrotate', '/usr/bin/logrotate'].find((p) => existsSync(p));
const LOG_WRITER = path.join(REPO_ROOT, 'test', 'helpers', 'log-writer.ts');
const RATE = 3000;
const WRITE_MS = 3000;
// Several discovery passes (100 ms) per rotation: with a plain path, a file created and rotated
// away between two passes is never seen at the path (README: the rotation table's limits).
const ROTATE_EVERY_MS = 450;

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

export interface Scenario {
  name: string;
  directives: string[];
  glob: boolean;
  /** The tailer is stopped for this part of the run (rotations happen meanwhile). */
  downFrom?: number;
  downTo?: number;
  /** More keys of the input (e.g. newFilesStartAt). */
  input?: Record<string, unknown>;
  /** logrotate runs this many times back to back per rotation (default 1). */
  burst?: number;
  /** The tailer's discovery interval (default 100ms). */
  discoverInterval?: string;
}


/** Every line number in the files logrotate left in `dir` (compressed ones decompressed). */
async function numbersOnDisk(d: string): Promise<Set<number>> {
  const out = new Set<number>();
  for (const name of await readdir(d)) {
    if (!name.startsWith('app.log')) continue;
    const raw = await readFile(path.join(d, name));
    const text = (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8');
    for (const line of text.split('\n')) if (line.startsWith('line ')) out.add(Number(line.slice(5)));
  }
  return out;
}

/** Runs one scenario (call from an `it`; the module's hooks give it a fresh directory). */
export async function runScenario(s: Scenario): Promise<void> {
  const file = path.join(dir, 'app.log');
  await writeFile(file, '');
  const writer = spawn(process.execPath, [LOG_WRITER, '--file', file, '--rate', String(RATE), '--duration', `${WRITE_MS}ms`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  writer.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = once(writer, 'exit');
  const conf = path.join(dir, 'logrotate.conf');
  await writeFile(
    conf,
    [`${file} {`, '  rotate 100', '  missingok', ...s.directives.map((d) => `  ${d}`), '  postrotate', `    kill -HUP ${writer.pid} || true`, '  endscript', '}', ''].join('\n'),
  );
  const paths = s.glob ? `${file}*` : file;
  const opts = options({ discoverInterval: s.discoverInterval ?? '100ms', rotateWait: '1s' });
  const rigs: Rig[] = [];
  const startRig = async (): Promise<Rig> => {
    const r = rig(dataDir, [input({ ...s.input, path: paths })], opts);
    running.push(r);
    rigs.push(r);
    await r.tailer.start();
    return r;
  };
  let current: Rig | undefined = await startRig();
  // The writer handles SIGHUP once it writes; logrotate's postrotate must not come before.
  await waitFor(async () => (await stat(file)).size > 0, { what: 'the writer writing' });
  const began = Date.now();
  let rotations = 0;
  let writerDone = false;
  void exited.then(() => (writerDone = true));
  while (!writerDone) {
    // Pacing the scenario, not waiting for a condition: logrotate runs on a clock.
    await new Promise((resolve) => setTimeout(resolve, ROTATE_EVERY_MS));
    if (writerDone) break;
    const at = Date.now() - began;
    if (s.downFrom !== undefined && current !== undefined && at >= s.downFrom) {
      await current.tailer.stop(2000);
      current = undefined;
    }
    if (s.downTo !== undefined && current === undefined && at >= s.downTo) {
      const r = await startRig();
      current = r;
      // The file is known again before the next rotation (a rotation of a file the agent never
      // saw is not read: the .gz of an unknown file could be anything).
      await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_open_files')) >= 1, { what: 'the file reopened', timeoutMs: 30_000 });
    }
    for (let b = 0; b < (s.burst ?? 1); b++) {
      await run(LOGROTATE as string, ['-f', '-s', path.join(dir, 'logrotate.state'), conf]);
      rotations++;
    }
  }
  const [code, signal] = (await exited) as [number | null, NodeJS.Signals | null];
  // logrotate's postrotate can signal the writer as it exits, after it reported what it wrote
  // and when its SIGHUP handler no longer runs: that run counts.
  expect({ code, signal, reported: out.includes('"written"') }).toEqual(signal === 'SIGHUP' ? { code: null, signal, reported: true } : { code: 0, signal: null, reported: true });
  const written = (JSON.parse(out) as { written: number }).written;
  current ??= await startRig();
  const got = (): number[] => rigs.flatMap((r) => r.collector.texts().map((t) => Number(t.slice('line '.length))));
  // Every line logrotate left on disk must arrive (and those only the tailer saw may).
  const onDisk = await numbersOnDisk(dir);
  await waitFor(
    () => {
      const have = new Set(got());
      for (const n of onDisk) if (!have.has(n)) return false;
      return true;
    },
    { what: 'every line on disk', timeoutMs: 30_000 },
  ).catch(() => undefined);
  // Rotated files are finished and closed: nothing more is on its way.
  const last = current;
  await waitFor(async () => (await metric(last.telemetry, 'plumb_tail_open_files')) <= 1 && (await metric(last.telemetry, 'plumb_tail_unacked_batches')) === 0, { what: 'rotations finished', timeoutMs: 10_000 }).catch(() => undefined);
  const t = tally(got(), written);
  const cutByLogrotate = t.lost.filter((n) => !onDisk.has(n));
  const lost = t.lost.filter((n) => onDisk.has(n));
  // Where the lost lines are, to tell a generation never read from the end of one read too early.
  if (lost.length > 0) {
    for (const name of (await readdir(dir)).sort()) {
      if (!name.startsWith('app.log')) continue;
      const raw = await readFile(path.join(dir, name));
      const nums = (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8').split('\n').filter((l) => l.startsWith('line ')).map((l) => Number(l.slice(5)));
      const missing = nums.filter((n) => lost.includes(n)).length;
      console.log(`${name}: lines ${nums[0]}..${nums[nums.length - 1]}, ${missing} lost${missing > 0 ? ` (first at index ${nums.findIndex((n) => lost.includes(n))})` : ''}`);
    }
  }
  console.log(`logrotate ${s.name}: ${written} lines, ${rotations} rotations, ${lost.length} lost, ${t.duplicated.length} duplicated (${cutByLogrotate.length} cut by copytruncate before any read)`);
  expect(rotations).toBeGreaterThanOrEqual(5);
  expect({ lost, duplicated: t.duplicated }).toEqual({ lost: [], duplicated: [] });
  if (!s.directives.includes('copytruncate')) expect(cutByLogrotate).toEqual([]);
}
