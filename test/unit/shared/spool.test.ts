import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { Spool, PLUMB_ERR_SPOOL_DIR, SPOOL_FRAME_BYTES, type SpoolOptions, type SpoolPosition, type SpoolRecord } from '../../../shared/spool.ts';
import { Telemetry } from '../../../shared/telemetry.ts';
import { silentLogger } from '../../../shared/log.ts';
import { metricValue } from '../../helpers/metrics.ts';
import { waitFor } from '../../helpers/wait.ts';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const NODE_BIN = join(REPO_ROOT, 'node_modules', '.bin', 'node');

const dirs: string[] = [];
const spools: Spool[] = [];

afterEach(async () => {
  for (let s = spools.pop(); s; s = spools.pop()) await s.close();
  for (let d = dirs.pop(); d; d = dirs.pop()) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'plumb-spool-'));
  dirs.push(d);
  return d;
}

const defaults = { name: 'test', maxBytes: 1 << 20, segmentBytes: 1024, maxRecordBytes: 512, fsync: 'never' as const };

async function openSpool(dir: string, telemetry = new Telemetry(), overrides: Partial<SpoolOptions> = {}): Promise<Spool> {
  const s = await Spool.open({ ...defaults, dir, ...overrides }, { telemetry, log: silentLogger() });
  spools.push(s);
  return s;
}

async function closeSpool(s: Spool): Promise<void> {
  await s.close();
  spools.splice(spools.indexOf(s), 1);
}

function rec(i: number, pad = 20): Buffer {
  return Buffer.from(`record-${i}`.padEnd(pad, '.'));
}

/** Reads until the spool has nothing unread. */
async function readAll(s: Spool, limits = { maxRecords: 7, maxBytes: 300 }): Promise<SpoolRecord[]> {
  const out: SpoolRecord[] = [];
  for (;;) {
    const batch = await s.read(limits);
    if (batch.length === 0) return out;
    out.push(...batch);
  }
}

const text = (records: SpoolRecord[]): string[] => records.map((r) => r.data.toString());

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort();
}

describe('Spool', () => {
  it('returns records in order across segment rolls', async () => {
    const dir = await tempDir();
    const s = await openSpool(dir);
    const want: string[] = [];
    for (let i = 0; i < 200; ) {
      const batch: Buffer[] = [];
      for (let k = 0; k < 1 + (i % 7) && i < 200; k++, i++) batch.push(rec(i, 10 + (i % 50)));
      expect(await s.append(batch)).toBe(true);
      want.push(...batch.map(String));
    }
    expect((await segmentFiles(dir)).length).toBeGreaterThan(3);
    expect(s.records).toBe(200);
    expect(text(await readAll(s))).toEqual(want);
    expect(await s.read({ maxRecords: 10, maxBytes: 1000 })).toEqual([]);
  });

  it('respects read limits and always hands out at least one record', async () => {
    const s = await openSpool(await tempDir());
    await s.append([rec(0, 100), rec(1, 100), rec(2, 100)]);
    expect(text(await s.read({ maxRecords: 10, maxBytes: 50 }))).toEqual([rec(0, 100).toString()]);
    expect(text(await s.read({ maxRecords: 10, maxBytes: 200 }))).toEqual([rec(1, 100).toString(), rec(2, 100).toString()]);
    await s.append([rec(3), rec(4), rec(5)]);
    expect(await s.read({ maxRecords: 2, maxBytes: 10_000 })).toHaveLength(2);
  });

  it('resumes after a reopen at the first unacknowledged record', async () => {
    const dir = await tempDir();
    let s = await openSpool(dir, new Telemetry(), { fsync: 'batch' });
    await s.append(Array.from({ length: 100 }, (_, i) => rec(i)));
    const first = await s.read({ maxRecords: 40, maxBytes: 100_000 });
    await s.ack(first[29].position);
    await s.read({ maxRecords: 40, maxBytes: 100_000 }); // handed out, never acknowledged
    await closeSpool(s);

    s = await openSpool(dir);
    expect(s.records).toBe(70);
    const rest = await readAll(s);
    expect(text(rest)).toEqual(Array.from({ length: 70 }, (_, i) => rec(i + 30).toString()));
  });

  it('redelivers from the first unacknowledged record after rewind', async () => {
    const s = await openSpool(await tempDir());
    await s.append([rec(0), rec(1), rec(2), rec(3), rec(4)]);
    const a = await s.read({ maxRecords: 2, maxBytes: 10_000 });
    await s.ack(a[1].position);
    const b = await s.read({ maxRecords: 2, maxBytes: 10_000 });
    expect(text(b)).toEqual([rec(2), rec(3)].map(String));
    s.rewind();
    expect(text(await readAll(s))).toEqual([rec(2), rec(3), rec(4)].map(String));
    // acknowledging an old position again changes nothing
    await s.ack(a[0].position);
    expect(s.records).toBe(3);
  });

  it('refuses an ack for a position it never handed out', async () => {
    const s = await openSpool(await tempDir());
    await s.append([rec(0), rec(1)]);
    const [r] = await s.read({ maxRecords: 1, maxBytes: 10_000 });
    const beyond: SpoolPosition = { ...r.position, offset: r.position.offset + 1000, ordinal: 5 };
    await expect(s.ack(beyond)).rejects.toThrow(RangeError);
  });

  it('refuses an append that does not fit in maxBytes, whole, and counts it', async () => {
    const telemetry = new Telemetry();
    const frame = SPOOL_FRAME_BYTES + 20;
    const s = await openSpool(await tempDir(), telemetry, { maxBytes: frame * 10, segmentBytes: frame * 4, maxRecordBytes: 64 });
    expect(await s.append(Array.from({ length: 8 }, (_, i) => rec(i)))).toBe(true);
    expect(s.bytes).toBe(frame * 8);
    expect(await s.append([rec(8), rec(9), rec(10)])).toBe(false);
    expect(s.records).toBe(8);
    expect(s.bytes).toBe(frame * 8);
    expect(await metricValue(telemetry.registry, 'plumb_spool_refused_total', { spool: 'test', reason: 'full' })).toBe(3);
    expect(await s.append([rec(8), rec(9)])).toBe(true);

    // Acknowledging frees whole segments, and the refused records then fit.
    const all = await readAll(s);
    expect(text(all)).toEqual(Array.from({ length: 10 }, (_, i) => rec(i).toString()));
    await s.ack(all[7].position);
    expect(await s.append([rec(10), rec(11), rec(12)])).toBe(true);
    expect(text(await readAll(s))).toEqual([rec(10), rec(11), rec(12)].map(String));
  });

  it('refuses an append holding a record above maxRecordBytes and stores none of it', async () => {
    const telemetry = new Telemetry();
    const s = await openSpool(await tempDir(), telemetry, { maxRecordBytes: 64 });
    expect(await s.append([rec(0), Buffer.alloc(65, 1)])).toBe(false);
    expect(await s.append([Buffer.alloc(64, 2)])).toBe(true);
    expect(s.records).toBe(1);
    expect(await metricValue(telemetry.registry, 'plumb_spool_refused_total', { spool: 'test', reason: 'too_large' })).toBe(2);
  });

  it('round-trips records larger than its read buffer', async () => {
    const s = await openSpool(await tempDir(), new Telemetry(), { maxRecordBytes: 1 << 20, segmentBytes: 64 * 1024, maxBytes: 8 << 20 });
    const big = Buffer.alloc(700 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    await s.append([rec(0), big, rec(1)]);
    const got = await readAll(s, { maxRecords: 10, maxBytes: 10 });
    expect(got.map((r) => r.data.length)).toEqual([20, big.length, 20]);
    expect(got[1].data.equals(big)).toBe(true);
  });

  it('deletes segments once all their records are acknowledged', async () => {
    const telemetry = new Telemetry();
    const dir = await tempDir();
    const s = await openSpool(dir, telemetry);
    await s.append(Array.from({ length: 150 }, (_, i) => rec(i)));
    const files = await segmentFiles(dir);
    expect(files.length).toBeGreaterThan(2);
    expect(await metricValue(telemetry.registry, 'plumb_spool_segments', { spool: 'test' })).toBe(files.length);
    const all = await readAll(s);
    await s.ack(all[all.length - 1].position);
    // everything was delivered: no segment remains, the one being written to included
    expect(await segmentFiles(dir)).toEqual([]);
    expect(s.records).toBe(0);
    expect(s.bytes).toBe(0);
    expect(await metricValue(telemetry.registry, 'plumb_spool_records', { spool: 'test' })).toBe(0);
    expect(await metricValue(telemetry.registry, 'plumb_spool_bytes', { spool: 'test' })).toBe(0);
    // and writing goes on in a new segment
    await s.append([rec(1000)]);
    const more = await readAll(s);
    expect(more.map((r) => r.data)).toEqual([rec(1000)]);
    expect((await segmentFiles(dir)).length).toBe(1);
    await s.ack(more[0].position);
    expect(await segmentFiles(dir)).toEqual([]);

    // after a restart nothing is redelivered and the acknowledged leftovers go
    await closeSpool(s);
    const again = await openSpool(dir);
    expect(again.records).toBe(0);
    expect(await readAll(again)).toEqual([]);
    expect(await segmentFiles(dir)).toEqual([]);
  });

  it('recovers from a torn tail: good records kept, the torn one counted, writing continues', async () => {
    const dir = await tempDir();
    let s = await openSpool(dir);
    await s.append(Array.from({ length: 10 }, (_, i) => rec(i)));
    await closeSpool(s);
    const [last] = (await segmentFiles(dir)).slice(-1);
    const size = (await stat(join(dir, last))).size;
    await truncate(join(dir, last), size - 5);

    const telemetry = new Telemetry();
    s = await openSpool(dir, telemetry);
    expect(await metricValue(telemetry.registry, 'plumb_spool_corrupt_total', { spool: 'test', reason: 'torn' })).toBe(1);
    expect((await stat(join(dir, last))).size).toBe(size - (SPOOL_FRAME_BYTES + 20));
    expect(s.records).toBe(9);
    await s.append([rec(100)]);
    expect(text(await readAll(s))).toEqual([...Array.from({ length: 9 }, (_, i) => rec(i).toString()), rec(100).toString()]);
  });

  it('skips a record with a flipped byte and reads the rest of that segment and the next ones', async () => {
    const dir = await tempDir();
    let s = await openSpool(dir);
    await s.append(Array.from({ length: 100 }, (_, i) => rec(i)));
    await closeSpool(s);
    const files = await segmentFiles(dir);
    expect(files.length).toBeGreaterThan(2);
    const path = join(dir, files[0]);
    const bytes = await readFile(path);
    const frame = SPOOL_FRAME_BYTES + 20;
    bytes[3 * frame + SPOOL_FRAME_BYTES + 4] ^= 0x40; // inside the payload of the fourth record
    await writeFile(path, bytes);

    const telemetry = new Telemetry();
    s = await openSpool(dir, telemetry);
    expect(await metricValue(telemetry.registry, 'plumb_spool_corrupt_total', { spool: 'test', reason: 'checksum' })).toBe(1);
    expect(s.records).toBe(99);
    expect(text(await readAll(s))).toEqual(Array.from({ length: 100 }, (_, i) => rec(i).toString()).filter((_, i) => i !== 3));
  });

  it('skips a record whose length field is damaged', async () => {
    const dir = await tempDir();
    let s = await openSpool(dir);
    await s.append(Array.from({ length: 10 }, (_, i) => rec(i)));
    await closeSpool(s);
    const [file] = await segmentFiles(dir);
    const bytes = await readFile(join(dir, file));
    bytes.writeUInt32LE(1_000_000, 2 * (SPOOL_FRAME_BYTES + 20) + 4);
    await writeFile(join(dir, file), bytes);

    const telemetry = new Telemetry();
    s = await openSpool(dir, telemetry);
    expect(await metricValue(telemetry.registry, 'plumb_spool_corrupt_total', { spool: 'test', reason: 'length' })).toBe(1);
    expect(text(await readAll(s))).toEqual(Array.from({ length: 10 }, (_, i) => rec(i).toString()).filter((_, i) => i !== 2));
  });

  it('skips damage that appears while open and counts it', async () => {
    const telemetry = new Telemetry();
    const dir = await tempDir();
    const s = await openSpool(dir, telemetry);
    await s.append(Array.from({ length: 5 }, (_, i) => rec(i)));
    const [file] = await segmentFiles(dir);
    const bytes = await readFile(join(dir, file));
    bytes[SPOOL_FRAME_BYTES + 2] ^= 0xff; // first record's payload
    await writeFile(join(dir, file), bytes);
    expect(text(await readAll(s))).toEqual([1, 2, 3, 4].map((i) => rec(i).toString()));
    expect(await metricValue(telemetry.registry, 'plumb_spool_corrupt_total', { spool: 'test', reason: 'checksum' })).toBe(1);
    expect(s.records).toBe(4);
  });

  it('survives random garbage in a file named like a segment', async () => {
    const dir = await tempDir();
    let s = await openSpool(dir);
    await s.append(Array.from({ length: 50 }, (_, i) => rec(i)));
    await closeSpool(s);
    const files = await segmentFiles(dir);
    const nextName = `${String(Number(files[files.length - 1].slice(0, 20)) + 1).padStart(20, '0')}.seg`;
    const garbage = Buffer.alloc(5000);
    for (let i = 0, x = 12345; i < garbage.length; i++) garbage[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    await writeFile(join(dir, nextName), garbage);
    await writeFile(join(dir, '00000000000000000000.seg'), garbage.subarray(0, 7)); // id 0 is not a segment number

    const telemetry = new Telemetry();
    s = await openSpool(dir, telemetry);
    let corrupt = 0;
    for (const reason of ['torn', 'checksum', 'length']) corrupt += await metricValue(telemetry.registry, 'plumb_spool_corrupt_total', { spool: 'test', reason });
    expect(corrupt).toBeGreaterThan(0);
    await s.append([rec(50)]);
    expect(text(await readAll(s))).toEqual(Array.from({ length: 51 }, (_, i) => rec(i).toString()));
  });

  it('reads from the oldest record when the cursor file is damaged', async () => {
    const dir = await tempDir();
    let s = await openSpool(dir);
    await s.append([rec(0), rec(1), rec(2)]);
    const [a] = await s.read({ maxRecords: 1, maxBytes: 100 });
    await s.ack(a.position);
    await closeSpool(s);
    await writeFile(join(dir, 'cursor'), 'not a cursor');
    s = await openSpool(dir);
    expect(text(await readAll(s))).toEqual([rec(0), rec(1), rec(2)].map(String));
  });

  it('reports an unusable directory with a coded error naming it', async () => {
    const dir = await tempDir();
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    const err = await openSpool(file).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: PLUMB_ERR_SPOOL_DIR });
    expect((err as Error).message).toContain(file);
    const nested = await openSpool(join(file, 'spool')).catch((e: unknown) => e);
    expect(nested).toMatchObject({ code: PLUMB_ERR_SPOOL_DIR });
  });

  it('refuses a second spool on the same directory in one process', async () => {
    const dir = await tempDir();
    await openSpool(dir);
    await expect(openSpool(dir)).rejects.toMatchObject({ code: PLUMB_ERR_SPOOL_DIR });
  });

  it('wakes a waiting reader when data arrives and on abort', async () => {
    const s = await openSpool(await tempDir());
    let woke = false;
    const waiting = s.waitForData().then(() => (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false);
    await s.append([rec(0)]);
    await waiting;
    expect(woke).toBe(true);
    await s.read({ maxRecords: 10, maxBytes: 1000 });
    const ac = new AbortController();
    const aborted = s.waitForData(ac.signal);
    ac.abort();
    await aborted;
    s.rewind();
    await s.waitForData(); // the rewound record is unread again
  });

  it('interleaves appends and reads without losing or reordering records', async () => {
    const s = await openSpool(await tempDir(), new Telemetry(), { fsync: 'interval', fsyncIntervalMs: 5 });
    const got: string[] = [];
    const reader = (async () => {
      while (got.length < 500) {
        await s.waitForData();
        const batch = await s.read({ maxRecords: 13, maxBytes: 400 });
        got.push(...text(batch));
        if (batch.length > 0) await s.ack(batch[batch.length - 1].position);
      }
    })();
    const writes: Promise<boolean>[] = [];
    for (let i = 0; i < 500; i += 5) writes.push(s.append([0, 1, 2, 3, 4].map((k) => rec(i + k))));
    expect(await Promise.all(writes)).toEqual(writes.map(() => true));
    await reader;
    expect(got).toEqual(Array.from({ length: 500 }, (_, i) => rec(i).toString()));
    expect(s.records).toBe(0);
  });

  it.each([
    ['every record read from disk', 0],
    ['just-appended records kept for the reader, up to 500 bytes', 500],
  ])('keeps appended = delivered-and-acknowledged through random appends, reads, acks, rewinds and reopens: %s', async (_name, keepForReaderBytes) => {
    type Op =
      | { t: 'append'; sizes: number[] }
      | { t: 'read'; maxRecords: number; maxBytes: number }
      | { t: 'ack'; pick: number }
      | { t: 'rewind' }
      | { t: 'reopen' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ t: fc.constant('append' as const), sizes: fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 6 }) }) },
      { weight: 4, arbitrary: fc.record({ t: fc.constant('read' as const), maxRecords: fc.integer({ min: 1, max: 8 }), maxBytes: fc.integer({ min: 1, max: 600 }) }) },
      { weight: 3, arbitrary: fc.record({ t: fc.constant('ack' as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.constant({ t: 'rewind' as const }) },
      { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
    );
    let serial = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        const dir = await mkdtemp(join(tmpdir(), 'plumb-spool-prop-'));
        const options = { ...defaults, dir, maxBytes: 3000, segmentBytes: 700, maxRecordBytes: 200, keepForReaderBytes };
        const open = (): Promise<Spool> => Spool.open(options, { telemetry: new Telemetry(), log: silentLogger() });
        let s = await open();
        try {
          const appended: Buffer[] = [];
          const appendedAt: SpoolPosition[] = [];
          const positions: SpoolPosition[] = [];
          let acked = 0; // records acknowledged (a prefix)
          let next = 0; // next record read() hands out
          let handed = 0; // records handed out since the last open (positions usable for ack)
          for (const o of ops) {
            if (o.t === 'append') {
              const batch = o.sizes.map((n) => Buffer.from(`${serial++}:`.padEnd(n, 'x')));
              const before = s.records;
              const at: SpoolPosition[] = [];
              if (await s.append(batch, at)) {
                appended.push(...batch);
                appendedAt.push(...at);
              } else {
                expect(s.records).toBe(before);
              }
            } else if (o.t === 'read') {
              const got = await s.read({ maxRecords: o.maxRecords, maxBytes: o.maxBytes });
              const want = appended.slice(next, next + got.length);
              expect(got.map((r) => r.data)).toEqual(want);
              expect(got.map((r) => r.position)).toEqual(appendedAt.slice(next, next + got.length));
              if (next < appended.length) expect(got.length).toBeGreaterThan(0);
              if (got.length > 1) expect(got.reduce((n, r) => n + r.data.length, 0)).toBeLessThanOrEqual(o.maxBytes);
              got.forEach((r, i) => (positions[next + i] = r.position));
              next += got.length;
              handed = Math.max(handed, next);
            } else if (o.t === 'ack') {
              if (handed > acked) {
                const j = acked + (o.pick % (handed - acked));
                await s.ack(positions[j]);
                acked = j + 1;
                next = Math.max(next, acked);
              }
            } else if (o.t === 'rewind') {
              s.rewind();
              next = acked;
            } else {
              await s.close();
              s = await open();
              next = acked;
              handed = acked;
            }
            expect(s.records).toBe(appended.length - acked);
          }
          // Drain: everything appended and not acknowledged comes out once, in order.
          s.rewind();
          const rest = await readAll(s);
          expect(rest.map((r) => r.data)).toEqual(appended.slice(acked));
          if (rest.length > 0) await s.ack(rest[rest.length - 1].position);
          expect(s.records).toBe(0);
          expect((await segmentFiles(dir)).length).toBeLessThanOrEqual(1);
        } finally {
          await s.close();
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 60 },
    );
  });

  it('keeps every acknowledged append across kill -9', async () => {
    const dir = await tempDir();
    const script = join(dir, 'writer.mjs');
    const spoolDir = join(dir, 'spool');
    const url = (p: string): string => pathToFileURL(join(REPO_ROOT, p)).href;
    await writeFile(
      script,
      `import { Spool } from ${JSON.stringify(url('shared/spool.ts'))};
import { Telemetry } from ${JSON.stringify(url('shared/telemetry.ts'))};
import { silentLogger } from ${JSON.stringify(url('shared/log.ts'))};
const spool = await Spool.open({ dir: ${JSON.stringify(spoolDir)}, name: 'kill', maxBytes: 256 << 20, segmentBytes: 16 << 10, maxRecordBytes: 4096, fsync: 'batch' }, { telemetry: new Telemetry(), log: silentLogger() });
for (let i = 0; ; ) {
  const batch = [];
  for (let k = 0; k < 5; k++) batch.push(Buffer.from(String(i++).padEnd(100, '.')));
  if (!(await spool.append(batch))) break;
  process.stdout.write(i + '\\n');
}
`,
    );
    const child = spawn(NODE_BIN, [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<NodeJS.Signals | null>((res) => child.once('close', (_code, signal) => res(signal)));
    try {
      await waitFor(() => out.split('\n').length > 400 || child.exitCode !== null, { timeoutMs: 15_000, what: '400 acknowledged appends' });
    } finally {
      child.kill('SIGKILL');
    }
    expect(await exited, err).toBe('SIGKILL');
    const lines = out.split('\n');
    lines.pop(); // a line cut by the kill
    const reported = Number(lines[lines.length - 1]);
    expect(reported).toBeGreaterThanOrEqual(2000);

    const s = await openSpool(spoolDir);
    const numbers = (await readAll(s, { maxRecords: 1000, maxBytes: 1 << 20 })).map((r) => Number(r.data.toString().replace(/\.+$/, '')));
    // Every reported record is there, once, in order; an append cut by the kill may add a few more.
    expect(numbers.length).toBeGreaterThanOrEqual(reported);
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => i));
  });
});
