import { readdir, readFile, writeFile, mkdir, chmod } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Telemetry } from '../../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../../shared/log.ts';
import { AckTrack, CHECKPOINT_FILE, CheckpointStore, type CheckpointEntry } from '../../../../../agent/logs/tail/checkpoint.ts';
import { TailMetrics } from '../../../../../agent/logs/tail/metrics.ts';
import { metric, tempDir } from './harness.ts';

let dataDir: string;
let cleanup: () => Promise<void>;
let telemetry: Telemetry;

beforeEach(async () => {
  ({ dataDir, cleanup } = await tempDir());
  telemetry = new Telemetry();
});

afterEach(async () => {
  await chmod(dataDir, 0o700).catch(() => undefined);
  await cleanup();
});

function store(limits = { maxEntries: 100, forgetAfterMs: 60_000 }): CheckpointStore {
  return new CheckpointStore(dataDir, limits, new TailMetrics(telemetry), silentLogger());
}

function entry(ino: number, over: Partial<CheckpointEntry> = {}): CheckpointEntry {
  return { dev: '1', ino: String(ino), birthtimeMs: 5, fileId: `id${ino}`, generation: 0, fp: { len: 3, hash: 'abc' }, offset: ino * 10, path: `/l/${ino}.log`, seenAt: 1000, size: ino * 10, ...over };
}

const never = () => false;

describe('CheckpointStore', () => {
  it('writes atomically and reads back what it wrote', async () => {
    const a = store();
    expect(await a.load()).toBe(false);
    a.set(entry(1), never);
    a.set(entry(2, { generation: 3 }), never);
    expect(await a.write()).toBe(true);
    expect((await readdir(dataDir)).sort()).toEqual([CHECKPOINT_FILE]);
    const b = store();
    expect(await b.load()).toBe(true);
    expect(b.get('1:1')).toEqual(entry(1));
    expect(b.get('1:2')?.generation).toBe(3);
    expect(await metric(telemetry, 'plumb_tail_checkpoint_writes_total')).toBe(1);
  });

  it('writes that overlap leave the latest state on disk', async () => {
    const a = store();
    a.set(entry(1), never);
    const first = a.write();
    a.get('1:1')!.offset = 777;
    const second = a.write();
    const third = a.write();
    expect(await Promise.all([first, second, third])).toEqual([true, true, true]);
    const saved = JSON.parse(await readFile(path.join(dataDir, CHECKPOINT_FILE), 'utf8')) as { files: CheckpointEntry[] };
    expect(saved.files[0].offset).toBe(777);
  });

  it('moves a damaged file aside, counts it, and still reports that the agent ran here', async () => {
    await mkdir(dataDir, { recursive: true });
    await writeFile(path.join(dataDir, CHECKPOINT_FILE), '{"version":1,"files":[{"dev":');
    const a = store();
    expect(await a.load()).toBe(true);
    expect(a.size).toBe(0);
    expect(await readdir(dataDir)).toContain(`${CHECKPOINT_FILE}.corrupt`);
    expect(await metric(telemetry, 'plumb_tail_checkpoint_errors_total', { op: 'read' })).toBe(1);
  });

  it('skips malformed entries and keeps the good ones', async () => {
    await mkdir(dataDir, { recursive: true });
    await writeFile(path.join(dataDir, CHECKPOINT_FILE), JSON.stringify({ version: 1, files: [entry(1), { dev: 1 }, { ...entry(2), offset: -5 }] }));
    const a = store();
    await a.load();
    expect([...a.values()].map((e) => e.ino)).toEqual(['1']);
  });

  it('counts a failed write and succeeds on a later try', async () => {
    if (process.getuid?.() === 0) return; // permissions do not stop root
    await mkdir(dataDir, { recursive: true });
    await chmod(dataDir, 0o500);
    const a = store();
    a.set(entry(1), never);
    expect(await a.write()).toBe(false);
    expect(await metric(telemetry, 'plumb_tail_checkpoint_errors_total', { op: 'write' })).toBe(1);
    await chmod(dataDir, 0o700);
    expect(await a.write()).toBe(true);
  });

  it('forgets entries unseen for longer than forgetAfter, unless in use', () => {
    const a = store({ maxEntries: 100, forgetAfterMs: 1000 });
    a.set(entry(1, { seenAt: 0 }), never);
    a.set(entry(2, { seenAt: 0 }), never);
    a.set(entry(3, { seenAt: 5000 }), never);
    a.forgetExpired(5500, (e) => e.ino === '2');
    expect([...a.values()].map((e) => e.ino).sort()).toEqual(['2', '3']);
  });

  it('stays within maxEntries by forgetting the entry seen longest ago, counting it', async () => {
    const a = store({ maxEntries: 2, forgetAfterMs: 1e9 });
    a.set(entry(1, { seenAt: 10 }), never);
    a.set(entry(2, { seenAt: 5 }), never);
    expect(a.set(entry(3, { seenAt: 20 }), never)).toBe(true);
    expect([...a.values()].map((e) => e.ino).sort()).toEqual(['1', '3']);
    expect(a.set(entry(4), () => true)).toBe(false);
    expect(a.size).toBe(2);
    expect(await metric(telemetry, 'plumb_tail_checkpoint_forgotten_total', { reason: 'full' })).toBe(1);
  });
});

describe('AckTrack', () => {
  it('commits only the contiguous run of acknowledged batches', () => {
    const e = entry(1, { offset: 0 });
    const t = new AckTrack(e);
    const m1 = t.mark(100);
    const m2 = t.mark(200);
    const m3 = t.mark(300);
    expect(t.deliveredEnd).toBe(300);
    m2.acked = true;
    m3.acked = true;
    expect(t.advance()).toBe(false);
    expect(e.offset).toBe(0);
    m1.acked = true;
    expect(t.advance()).toBe(true);
    expect(e.offset).toBe(300);
    expect(t.outstanding).toBe(0);
  });

  it('never moves an offset backwards', () => {
    const e = entry(1, { offset: 500 });
    const t = new AckTrack(e);
    t.mark(400).acked = true;
    t.advance();
    expect(e.offset).toBe(500);
  });
});
