import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { appendFile, cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Journal, type JournalOptions } from '../../../shared/journal.ts';
import { Telemetry } from '../../../shared/telemetry.ts';
import { silentLogger } from '../../../shared/log.ts';
import { metricValue } from '../../helpers/metrics.ts';
import { waitFor } from '../../helpers/wait.ts';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const NODE_BIN = join(REPO_ROOT, 'node_modules', '.bin', 'node');

const dirs: string[] = [];
const open: Journal[] = [];

afterEach(async () => {
  for (let j = open.pop(); j; j = open.pop()) await j.close();
  for (let d = dirs.pop(); d; d = dirs.pop()) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'plumb-journal-'));
  dirs.push(d);
  return d;
}

/** The state under test: the list of numbers appended, in order. */
class ListState {
  items: number[] = [];
  restoredChunks = -1;
  restore(chunks: Buffer[]): void {
    this.restoredChunks = chunks.length;
    this.items = chunks.length === 0 ? [] : (JSON.parse(chunks[0].toString()) as number[]);
  }
  replay(record: Buffer): void {
    this.items.push(Number(record.toString()));
  }
  snapshot(): Buffer[] {
    return [Buffer.from(JSON.stringify(this.items))];
  }
}

const base = { name: 'test', fsync: 'batch' as const, checkpointBytes: 1 << 20, checkpointIntervalMs: 3_600_000 };

async function openJournal(dir: string, state = new ListState(), options: Partial<JournalOptions> = {}, telemetry = new Telemetry()): Promise<{ j: Journal; state: ListState; telemetry: Telemetry }> {
  const j = await Journal.open({ ...base, dir, ...options }, state, { telemetry, log: silentLogger() });
  open.push(j);
  return { j, state, telemetry };
}

/** Leaves the journal as a kill -9 would: nothing more is written, nothing is closed cleanly. */
function abandon(j: Journal): void {
  open.splice(open.indexOf(j), 1);
}

function add(j: Journal, state: ListState, n: number): Promise<number> {
  return j.append(Buffer.from(String(n)), () => {
    state.items.push(n);
    return state.items.length;
  });
}

async function walFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.wal')).sort();
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe('Journal', () => {
  it('restores appends after a restart, with and without a checkpoint in between', async () => {
    const dir = await tempDir();
    const a = await openJournal(dir);
    for (const n of range(0, 5)) await add(a.j, a.state, n);
    await a.j.checkpoint();
    for (const n of range(5, 8)) await add(a.j, a.state, n);
    abandon(a.j);

    const b = await openJournal(dir);
    expect(b.state.items).toEqual(range(0, 8));
    expect(b.j.statistics.replayed).toBe(3);
    expect(await metricValue(b.telemetry.registry, 'plumb_journal_replayed_records', { journal: 'test' })).toBe(3);
    // the replay was folded into a new snapshot: the next start reads no WAL
    await b.j.close();
    const c = await openJournal(dir);
    expect(c.state.items).toEqual(range(0, 8));
    expect(c.j.statistics.replayed).toBe(0);
  });

  it('skips a torn WAL tail, counts it, and keeps working', async () => {
    const dir = await tempDir();
    const a = await openJournal(dir);
    for (const n of range(0, 10)) await add(a.j, a.state, n);
    abandon(a.j);
    const [wal] = await walFiles(dir);
    // half of a frame, as a write cut by a crash leaves it
    const whole = await readFile(join(dir, wal));
    await appendFile(join(dir, wal), whole.subarray(0, 9));

    const b = await openJournal(dir);
    expect(b.state.items).toEqual(range(0, 10));
    expect(await metricValue(b.telemetry.registry, 'plumb_journal_corrupt_total', { journal: 'test', reason: 'torn' })).toBe(1);
    for (const n of range(10, 12)) await add(b.j, b.state, n);
    abandon(b.j);
    const c = await openJournal(dir);
    expect(c.state.items).toEqual(range(0, 12));
    expect(c.j.statistics.corrupt).toBe(0);
  });

  it('skips a damaged record in the middle of the WAL, counts it and replays the rest', async () => {
    const dir = await tempDir();
    const a = await openJournal(dir);
    for (const n of [100, 200, 300]) await add(a.j, a.state, n);
    abandon(a.j);
    const [wal] = await walFiles(dir);
    const buf = await readFile(join(dir, wal));
    const at = buf.indexOf('200');
    buf[at] = '9'.charCodeAt(0); // the checksum no longer matches
    await writeFile(join(dir, wal), buf);

    const b = await openJournal(dir);
    expect(b.state.items).toEqual([100, 300]);
    expect(await metricValue(b.telemetry.registry, 'plumb_journal_corrupt_total', { journal: 'test', reason: 'checksum' })).toBe(1);
  });

  it('restores a consistent state after a crash in the middle of a checkpoint', async () => {
    const dir = await tempDir();
    const a = await openJournal(dir);
    for (const n of range(0, 3)) await add(a.j, a.state, n);
    await a.j.checkpoint();
    for (const n of range(3, 5)) await add(a.j, a.state, n);
    // the directory as it was when the next checkpoint began
    const before = await tempDir();
    await cp(dir, before, { recursive: true });
    const snapshotBefore = await readFile(join(dir, 'snapshot'));
    await a.j.checkpoint();
    await add(a.j, a.state, 5);
    abandon(a.j);
    const newWals = await walFiles(dir);
    const lastWal = newWals[newWals.length - 1];
    const newSnapshot = await readFile(join(dir, 'snapshot'));
    expect(newSnapshot.equals(snapshotBefore)).toBe(false);

    // Crash before the rename: the old snapshot and WAL files, the new WAL file the cut began
    // (with the append after it), and half a snapshot.tmp.
    const crashed = await tempDir();
    await cp(before, crashed, { recursive: true });
    await cp(join(dir, lastWal), join(crashed, lastWal));
    await writeFile(join(crashed, 'snapshot.tmp'), newSnapshot.subarray(0, Math.floor(newSnapshot.length / 2)));
    const b = await openJournal(crashed);
    expect(b.state.items).toEqual(range(0, 6));
    expect((await readdir(crashed)).includes('snapshot.tmp')).toBe(false);
    await b.j.close();

    // Crash after the rename, before the covered WAL files were deleted: they are not replayed again.
    const renamed = await tempDir();
    await cp(before, renamed, { recursive: true });
    await cp(join(dir, lastWal), join(renamed, lastWal));
    await writeFile(join(renamed, 'snapshot'), newSnapshot);
    const c = await openJournal(renamed);
    expect(c.state.items).toEqual(range(0, 6));
    expect(await walFiles(renamed)).not.toContain((await walFiles(before))[0]);
  });

  it('group commit: concurrent appends are applied once each, in order, in fewer writes, and survive a restart', async () => {
    const dir = await tempDir();
    const a = await openJournal(dir);
    const n = 2000;
    const results = await Promise.all(range(0, n).map((i) => add(a.j, a.state, i)));
    expect(results).toEqual(range(1, n + 1)); // apply ran in append order, one at a time
    expect(a.state.items).toEqual(range(0, n));
    expect(a.j.statistics.commits).toBeLessThan(n);
    abandon(a.j);
    const b = await openJournal(dir);
    expect(b.state.items).toEqual(range(0, n));
  });

  it('a checkpoint taken while appends are in flight loses and repeats none of them', async () => {
    const dir = await tempDir();
    const a = await openJournal(dir);
    const first = range(0, 500).map((i) => add(a.j, a.state, i));
    const cp1 = a.j.checkpoint();
    const second = range(500, 1000).map((i) => add(a.j, a.state, i));
    const cp2 = a.j.checkpoint();
    const third = range(1000, 1200).map((i) => add(a.j, a.state, i));
    await Promise.all([...first, cp1, ...second, cp2, ...third]);
    abandon(a.j);
    const b = await openJournal(dir);
    expect(b.state.items).toEqual(range(0, 1200));
  });

  it('checkpoints by itself once the WAL passes checkpointBytes, keeping the WAL bounded', async () => {
    const dir = await tempDir();
    const a = await openJournal(dir, new ListState(), { checkpointBytes: 2048 });
    for (const n of range(0, 600)) await add(a.j, a.state, n);
    await waitFor(() => a.j.statistics.checkpoints >= 3, { what: 'checkpoints' });
    expect(a.j.statistics.walBytes).toBeLessThan(2048 * 2);
    expect((await walFiles(dir)).length).toBeLessThanOrEqual(2);
    expect(await metricValue(a.telemetry.registry, 'plumb_journal_checkpoints_total', { journal: 'test', outcome: 'ok' })).toBeGreaterThanOrEqual(3);
    abandon(a.j);
    const b = await openJournal(dir);
    expect(b.state.items).toEqual(range(0, 600));
  });

  it('checkpoints at close when asked, so the next open replays nothing', async () => {
    const dir = await tempDir();
    const a = await openJournal(dir);
    for (const n of range(0, 20)) await add(a.j, a.state, n);
    await a.j.close({ checkpoint: true });
    const b = await openJournal(dir);
    expect(b.state.items).toEqual(range(0, 20));
    expect(b.j.statistics.replayed).toBe(0);
    expect(b.state.restoredChunks).toBe(1);
  });

  it('keeps every acknowledged append through kill -9 of a process appending as fast as it can', async () => {
    const dir = await tempDir();
    const journalDir = join(dir, 'j');
    const script = join(dir, 'writer.ts');
    await writeFile(
      script,
      `import { Journal } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'shared', 'journal.ts')).href)};
import { Telemetry } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'shared', 'telemetry.ts')).href)};
import { silentLogger } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'shared', 'log.ts')).href)};
const items = [];
const j = await Journal.open({ dir: ${JSON.stringify(journalDir)}, name: 'w', fsync: 'batch', checkpointBytes: 4096, checkpointIntervalMs: 3600000 },
  { restore() {}, replay() {}, snapshot: () => [Buffer.from(JSON.stringify(items))] }, { telemetry: new Telemetry(), log: silentLogger() });
let next = 0;
async function lane() {
  for (;;) {
    const n = next++;
    await j.append(Buffer.from(String(n)), () => items.push(n));
    process.stdout.write(n + '\\n');
  }
}
for (let i = 0; i < 8; i++) void lane();
`,
    );
    const child = spawn(NODE_BIN, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<NodeJS.Signals | null>((res) => child.once('close', (_code, signal) => res(signal)));
    try {
      await waitFor(() => out.split('\n').length > 1500 || child.exitCode !== null, { timeoutMs: 20_000, what: '1500 acknowledged appends' });
    } finally {
      child.kill('SIGKILL');
    }
    expect(await exited, err).toBe('SIGKILL');
    const lines = out.split('\n');
    lines.pop(); // a line cut by the kill
    const acknowledged = lines.map(Number);

    const b = await openJournal(journalDir);
    const restored = b.state.items;
    // Every acknowledged append is there exactly once; appends cut by the kill may add a few more.
    expect(new Set(restored).size).toBe(restored.length);
    const have = new Set(restored);
    expect(acknowledged.filter((n) => !have.has(n))).toEqual([]);
  });
});
