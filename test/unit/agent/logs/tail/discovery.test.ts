import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../../../shared/log.ts';
import { Discovery, isCompressed } from '../../../../../agent/logs/tail/discovery.ts';
import { input, tempDir } from './harness.ts';

let dir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir, cleanup } = await tempDir());
});

afterEach(async () => {
  await cleanup();
});

async function touch(...parts: string[]): Promise<string> {
  const file = path.join(dir, ...parts);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, 'x\n');
  return file;
}

async function paths(d: Discovery): Promise<string[]> {
  return [...(await d.scan()).values()].map((c) => c.path).sort();
}

describe('Discovery', () => {
  it('expands globs, finds files that appear later, and leaves out compressed and excluded files', async () => {
    const a = await touch('app', 'a.log');
    await touch('app', 'a.log.1.gz');
    await touch('app', 'a.txt');
    await touch('app', 'skip.log');
    const d = new Discovery([input({ path: path.join(dir, 'app', '*.log*'), exclude: ['skip.*'] })], 100, silentLogger());
    expect(await paths(d)).toEqual([a]);
    const b = await touch('app', 'b.log');
    expect(await paths(d)).toEqual([a, b]);
  });

  it('walks ** and a plain path, and a directory that appears later', async () => {
    const deep = await touch('x', 'y', 'z', 'deep.log');
    const plain = await touch('plain.log');
    const d = new Discovery([input({ path: [path.join(dir, '**', '*.log'), path.join(dir, 'later', 'now.log')] })], 100, silentLogger());
    expect(await paths(d)).toEqual([deep, plain].sort());
    const later = await touch('later', 'now.log');
    expect(await paths(d)).toContain(later);
  });

  it('follows symbolic links and lists a file reachable twice once, under the first input', async () => {
    const real = await touch('pods', 'ns_pod_uid', 'c', '0.log');
    await mkdir(path.join(dir, 'containers'));
    const link = path.join(dir, 'containers', 'pod_ns_c-abc.log');
    await symlink(real, link);
    const d = new Discovery([input({ path: path.join(dir, 'containers', '*.log') }), input({ path: path.join(dir, 'pods', '**', '*.log') })], 100, silentLogger());
    const found = [...(await d.scan()).values()];
    expect(found.map((c) => [c.path, c.input])).toEqual([[link, 0]]);
  });

  it('finds at most maxCandidates files and counts the rest', async () => {
    for (const n of [1, 2, 3, 4]) await touch(`f${n}.log`);
    const d = new Discovery([input({ path: path.join(dir, '*.log') })], 3, silentLogger());
    expect((await d.scan()).size).toBe(3);
    expect(d.overflow).toBe(1);
  });

  it('knows compressed suffixes', () => {
    for (const f of ['a.gz', 'a.log.1.bz2', 'A.XZ', 'x.zst', 'y.zip']) expect(isCompressed(f), f).toBe(true);
    for (const f of ['a.log', 'a.log.1', 'gz.log']) expect(isCompressed(f), f).toBe(false);
  });
});
