/** Shared set-up for the tailer tests: temp dirs, decoded config, a collecting consumer, waits. */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach } from 'vitest';
import os from 'node:os';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import type { TSchema, StaticDecode } from '@sinclair/typebox';
import { Telemetry } from '../../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../../shared/log.ts';
import { LogInputSchema, TailerOptionsSchema, type LogInput, type TailerOptions } from '../../../../../agent/logs/tail/config.ts';
import { Tailer } from '../../../../../agent/logs/tail/tailer.ts';
import { recordId, type TailBatch, type TailRecord } from '../../../../../agent/logs/tail/record.ts';

export function decode<T extends TSchema>(schema: T, raw: unknown): StaticDecode<T> {
  return Value.Decode(schema, Value.Default(schema, Value.Clone(raw)));
}

export function input(raw: Record<string, unknown>): LogInput {
  return decode(LogInputSchema, raw);
}

/** Short timings so tests wait milliseconds, not seconds. */
export function options(overrides: Record<string, unknown> = {}): TailerOptions {
  return decode(TailerOptionsSchema, {
    discoverInterval: '20ms',
    pollInterval: '5ms',
    checkpointInterval: '50ms',
    rotateWait: '150ms',
    closeInactive: '10m',
    partialTimeout: '200ms',
    ...overrides,
  });
}

export async function tempDir(): Promise<{ dir: string; dataDir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'plumb-tail-'));
  return { dir, dataDir: path.join(dir, 'data'), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface Fixture {
  readonly dir: string;
  readonly dataDir: string;
  /** Starts `r`; it is stopped after the test. */
  started(r: Rig): Promise<Rig>;
}

/** Registers the hooks of a test file: a fresh directory per test, its tailers stopped after. */
export function fixture(): Fixture {
  let current: { dir: string; dataDir: string; cleanup: () => Promise<void> } | undefined;
  const running: Rig[] = [];
  beforeEach(async () => {
    current = await tempDir();
  });
  afterEach(async () => {
    for (const r of running.splice(0)) await r.tailer.stop(0);
    await current?.cleanup();
  });
  return {
    get dir() {
      return (current as { dir: string }).dir;
    },
    get dataDir() {
      return (current as { dataDir: string }).dataDir;
    },
    async started(r: Rig): Promise<Rig> {
      running.push(r);
      await r.tailer.start();
      return r;
    },
  };
}

/** A consumer that keeps every batch; acknowledges each one at once unless told not to. */
export class Collector {
  readonly batches: TailBatch[] = [];
  autoAck = true;
  tailer: Tailer | undefined;
  /** While set, `next` does not settle: a stalled consumer. */
  gate: Promise<void> | undefined;
  /** This many calls of `next` fail, as a consumer that cannot take batches right now. */
  failures = 0;

  readonly next = async (batch: TailBatch): Promise<void> => {
    if (this.gate !== undefined) await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('consumer unavailable');
    }
    this.batches.push(batch);
    if (this.autoAck) this.tailer?.ack(batch);
  };

  get records(): TailRecord[] {
    return this.batches.flatMap((b) => [...b.records]);
  }

  texts(): string[] {
    return this.records.map((r) => r.text);
  }

  ids(): string[] {
    return this.records.map(recordId);
  }
}

export interface Rig {
  tailer: Tailer;
  collector: Collector;
  telemetry: Telemetry;
}

export function rig(dataDir: string, inputs: LogInput[], opts: TailerOptions = options(), collector = new Collector()): Rig {
  const telemetry = new Telemetry();
  const tailer = new Tailer({ inputs, options: opts, dataDir, idSeed: 'test-host' }, { telemetry, log: silentLogger(), next: collector.next });
  collector.tailer = tailer;
  return { tailer, collector, telemetry };
}

/** A metric's value (summed over label sets matching `labels`). */
export async function metric(telemetry: Telemetry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = telemetry.registry.getSingleMetric(name);
  if (m === undefined) return 0;
  const got = await m.get();
  return got.values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((sum, v) => sum + v.value, 0);
}

/** "prefix 1" … "prefix n", one per line. */
export function numbered(prefix: string, from: number, to: number): string {
  let out = '';
  for (let i = from; i <= to; i++) out += `${prefix} ${i}\n`;
  return out;
}

export function range(prefix: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i <= to; i++) out.push(`${prefix} ${i}`);
  return out;
}

/** Sorted copy, for comparing sets of lines. */
export function sorted(xs: readonly string[]): string[] {
  return [...xs].sort();
}

/** Lost and duplicated numbers among 1..n (a number outside 1..n counts as duplicated). */
export function tally(got: readonly number[], n: number): { lost: number[]; duplicated: number[] } {
  const seen = new Map<number, number>();
  for (const x of got) seen.set(x, (seen.get(x) ?? 0) + 1);
  const lost: number[] = [];
  const duplicated: number[] = [];
  for (let i = 1; i <= n; i++) if (!seen.has(i)) lost.push(i);
  for (const [x, c] of seen) if (c > 1 || x < 1 || x > n) duplicated.push(x);
  return { lost, duplicated };
}

/**
 * logrotate `create` + `compress` + `delaycompress` on `dir/app.log`, done by hand: the `.N.gz`
 * shift up, the `.1` is compressed to `.2.gz` (keeping its modification time, as logrotate's gzip
 * does) and removed, the file becomes `.1` and an empty one takes its path. The empty file is
 * made first, so it never gets the inode the removed `.1` frees (that would let a tailer find the
 * old file's rest through its inode, and hide what a test looks at).
 */
export async function logrotateDelaycompress(dir: string): Promise<void> {
  const at = (name: string): string => path.join(dir, name);
  const names = await readdir(dir);
  await writeFile(at('app.log.new'), '');
  for (let n = 20; n >= 2; n--) if (names.includes(`app.log.${n}.gz`)) await rename(at(`app.log.${n}.gz`), at(`app.log.${n + 1}.gz`));
  if (names.includes('app.log.1')) {
    await writeFile(at('app.log.2.gz'), gzipSync(await readFile(at('app.log.1'))));
    // gzip carries the original's times over to the nanosecond; fs.utimes (seconds as a double)
    // can land a hair earlier, so the times are copied the way touch -r copies them.
    execFileSync('touch', ['-r', at('app.log.1'), at('app.log.2.gz')]);
    await unlink(at('app.log.1'));
  }
  await rename(at('app.log'), at('app.log.1'));
  await rename(at('app.log.new'), at('app.log'));
}
