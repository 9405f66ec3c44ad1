import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, readFile, rename, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Collector, input, metric, numbered, options, range, rig, sorted, tempDir, type Rig } from './harness.ts';
import { waitFor } from '../../../../helpers/wait.ts';
import { CHECKPOINT_FILE } from '../../../../../agent/logs/tail/checkpoint.ts';
import { eventId } from '../../../../../agent/logs/tail/identity.ts';
import { recordId } from '../../../../../agent/logs/tail/record.ts';

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

describe('Tailer: reading', () => {
  it('hands out every complete line once, in order, with offsets and deterministic ids', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('line', 1, 100));
    const { collector, tailer } = await started(rig(dataDir, [input({ path: path.join(dir, '*.log'), fields: { service: 'web' } })]));
    await waitFor(() => collector.records.length >= 100, { what: '100 lines' });
    await appendFile(file, numbered('line', 101, 150) + 'unterminated');
    await waitFor(() => collector.records.length >= 150, { what: '150 lines' });
    expect(collector.texts()).toEqual(range('line', 1, 150));
    const records = collector.records;
    expect(records[0]).toMatchObject({ path: file, offset: 0, endOffset: 7, input: 0, truncated: false, fields: { service: 'web' } });
    for (let i = 1; i < records.length; i++) expect(records[i].offset).toBe(records[i - 1].endOffset);
    expect(new Set(collector.ids()).size).toBe(150);
    expect(recordId(records[5])).toBe(eventId(records[5].fileId, records[5].offset));
    await tailer.stop(1000);
    // The unterminated last line of a live file is not handed out: its writer may not be done.
    expect(collector.texts()).not.toContain('unterminated');
  });

  it('batches by count and byte size', async () => {
    await writeFile(path.join(dir, 'a.log'), numbered('x', 1, 250));
    const { collector } = await started(rig(dataDir, [input({ path: path.join(dir, 'a.log') })], options({ batchMaxRecords: 100 })));
    await waitFor(() => collector.records.length >= 250, { what: '250 lines' });
    expect(collector.batches.every((b) => b.records.length <= 100)).toBe(true);
    expect(collector.batches.length).toBeGreaterThanOrEqual(3);
    const seqs = collector.batches.map((b) => b.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it('picks up files that match later and reads them from the start, even with startAt end', async () => {
    await writeFile(path.join(dir, 'old.log'), numbered('old', 1, 5));
    const { collector } = await started(rig(dataDir, [input({ path: path.join(dir, '*.log'), startAt: 'end' })]));
    await waitFor(async () => (await readFile(path.join(dataDir, CHECKPOINT_FILE), 'utf8').catch(() => '')).includes('old.log'), { what: 'the first discovery' });
    await writeFile(path.join(dir, 'new.log'), numbered('new', 1, 3));
    await appendFile(path.join(dir, 'old.log'), numbered('old', 6, 7));
    await waitFor(() => collector.records.length >= 5, { what: 'new lines' });
    expect(sorted(collector.texts())).toEqual(sorted([...range('new', 1, 3), ...range('old', 6, 7)]));
  });

  it('startAt beginning (the default) reads files that exist at first start in full', async () => {
    await writeFile(path.join(dir, 'a.log'), numbered('a', 1, 20));
    const { collector } = await started(rig(dataDir, [input({ path: path.join(dir, 'a.log') })]));
    await waitFor(() => collector.records.length >= 20, { what: '20 lines' });
    expect(collector.texts()).toEqual(range('a', 1, 20));
  });

  it('startAt end skips what a file held at first start, starting after its last complete line', async () => {
    const file = path.join(dir, 'a.log');
    await writeFile(file, numbered('a', 1, 20) + 'half of a li');
    const { collector } = await started(rig(dataDir, [input({ path: file, startAt: 'end' })]));
    await waitFor(async () => (await readFile(path.join(dataDir, CHECKPOINT_FILE), 'utf8').catch(() => '')).includes('a.log'), { what: 'the first discovery' });
    await appendFile(file, 'ne\n' + numbered('a', 21, 22));
    await waitFor(() => collector.records.length >= 3, { what: 'new lines' });
    expect(collector.texts()).toEqual(['half of a line', ...range('a', 21, 22)]);
  });

  it('emits the unterminated last line of a rotated file when it is closed', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, 'complete\nno newline at the end');
    const r = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => r.collector.records.length >= 1, { what: 'the complete line' });
    await rename(file, path.join(dir, 'app.old'));
    await waitFor(() => r.collector.records.length >= 2, { what: 'the last line of the rotated file' });
    expect(r.collector.records[1]).toMatchObject({ text: 'no newline at the end', offset: 9, endOffset: 30 });
  });

  it('joins multi-line events inside CRI lines, per stream', async () => {
    const file = path.join(dir, 'c.log');
    const cri = (stream: string, flag: string, log: string) => `2024-05-01T10:00:00Z ${stream} ${flag} ${log}\n`;
    await writeFile(file, cri('stdout', 'F', 'Exception: boom') + cri('stderr', 'F', 'Exception: other') + cri('stdout', 'P', '  at ') + cri('stdout', 'F', 'a()') + cri('stdout', 'F', 'Exception: next'));
    const r = await started(rig(dataDir, [input({ path: file, format: 'cri', multiline: { start: '^Exception', timeout: '50ms' } })]));
    await waitFor(() => r.collector.records.length >= 3, { what: 'three events' });
    expect(sorted(r.collector.texts())).toEqual(sorted(['Exception: boom\n  at a()', 'Exception: other', 'Exception: next']));
  });

  it('ignores compressed rotations', async () => {
    for (const ext of ['.gz', '.bz2', '.xz', '.zst', '.zip']) await writeFile(path.join(dir, `app.log.1${ext}`), 'compressed bytes\n');
    await writeFile(path.join(dir, 'app.log'), 'plain\n');
    const { collector, telemetry } = await started(rig(dataDir, [input({ path: path.join(dir, 'app.log*') })]));
    await waitFor(() => collector.records.length >= 1, { what: 'the plain line' });
    await waitFor(async () => (await metric(telemetry, 'plumb_tail_files_watched')) > 0, { what: 'a discovery' });
    expect(await metric(telemetry, 'plumb_tail_files_watched')).toBe(1);
    expect(collector.texts()).toEqual(['plain']);
  });

  it('holds at most maxOpenFiles open, counts refusals, and reaches the others as idle files close', async () => {
    for (const n of [1, 2, 3]) await writeFile(path.join(dir, `f${n}.log`), numbered(`f${n}`, 1, 5));
    const { collector, telemetry } = await started(rig(dataDir, [input({ path: path.join(dir, '*.log') })], options({ maxOpenFiles: 2, closeInactive: '100ms' })));
    await waitFor(async () => (await metric(telemetry, 'plumb_tail_files_refused_total', { reason: 'max_open_files' })) > 0, { what: 'a refusal' });
    expect(await metric(telemetry, 'plumb_tail_open_files')).toBeLessThanOrEqual(2);
    await waitFor(() => collector.records.length >= 15, { what: 'all three files' });
    expect(sorted(collector.texts())).toEqual(sorted([...range('f1', 1, 5), ...range('f2', 1, 5), ...range('f3', 1, 5)]));
    // A closed file is reopened where it stopped when it grows.
    await appendFile(path.join(dir, 'f1.log'), numbered('f1', 6, 6));
    await waitFor(() => collector.records.length >= 16, { what: 'the appended line' });
    expect(collector.texts().filter((t) => t.startsWith('f1'))).toEqual(range('f1', 1, 6));
  });

  it('cuts lines longer than maxLineBytes, flags them, and keeps reading after them', async () => {
    const file = path.join(dir, 'big.log');
    const huge = 'x'.repeat(200_000);
    await writeFile(file, `before\n${huge}\nafter\n`);
    const { collector, telemetry } = await started(rig(dataDir, [input({ path: file })], options({ maxLineBytes: '1kib', readChunkBytes: '4kib' })));
    await waitFor(() => collector.records.length >= 3, { what: 'three lines' });
    const [before, big, after] = collector.records;
    expect(before).toMatchObject({ text: 'before', truncated: false });
    expect(big.text).toBe('x'.repeat(1024));
    expect(big).toMatchObject({ truncated: true, offset: 7, endOffset: 7 + 200_001 });
    expect(after).toMatchObject({ text: 'after', truncated: false, offset: 7 + 200_001 });
    expect(await metric(telemetry, 'plumb_tail_lines_truncated_total')).toBe(1);
  });

  it('counts what it reads', async () => {
    const file = path.join(dir, 'a.log');
    const body = numbered('m', 1, 10);
    await writeFile(file, body);
    const { collector, telemetry } = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => collector.records.length >= 10, { what: 'ten lines' });
    expect(await metric(telemetry, 'plumb_tail_lines_total')).toBe(10);
    expect(await metric(telemetry, 'plumb_tail_read_bytes_total')).toBe(Buffer.byteLength(body));
    expect(await metric(telemetry, 'plumb_tail_records_total')).toBe(10);
    await waitFor(async () => (await metric(telemetry, 'plumb_tail_checkpoint_writes_total')) > 0, { what: 'a checkpoint write' });
    await waitFor(async () => (await metric(telemetry, 'plumb_tail_lag_bytes')) === 0, { what: 'no lag' });
  });
});

describe('Tailer: formats', () => {
  it('joins multi-line events and emits the last one after the timeout', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(
      file,
      ['2024-01-01 10:00:00 ERROR boom', '  at a()', '  at b()', '2024-01-01 10:00:01 INFO ok', '2024-01-01 10:00:02 WARN last', '  tail of last', ''].join('\n'),
    );
    const { collector } = await started(rig(dataDir, [input({ path: file, multiline: { start: '^\\d{4}-\\d{2}-\\d{2}', timeout: '100ms' } })]));
    await waitFor(() => collector.records.length >= 3, { what: 'three events' });
    expect(collector.texts()).toEqual(['2024-01-01 10:00:00 ERROR boom\n  at a()\n  at b()', '2024-01-01 10:00:01 INFO ok', '2024-01-01 10:00:02 WARN last\n  tail of last']);
    expect(collector.records[1].offset).toBe(collector.records[0].endOffset);
  });

  it('joins CRI partial lines and names the pod, namespace and container from the file name', async () => {
    const podDir = path.join(dir, 'containers');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(podDir);
    const file = path.join(podDir, `web-7d9f_shop_nginx-${'a'.repeat(64)}.log`);
    await writeFile(
      file,
      [
        '2024-05-01T10:00:00.000000001Z stdout P hello ',
        '2024-05-01T10:00:00.000000002Z stderr F an error',
        '2024-05-01T10:00:00.000000003Z stdout P big ',
        '2024-05-01T10:00:00.000000004Z stdout F world',
        'not a cri line',
        '',
      ].join('\n'),
    );
    const { collector, telemetry } = await started(rig(dataDir, [input({ path: path.join(podDir, '*.log'), format: 'cri' })]));
    await waitFor(() => collector.records.length >= 3, { what: 'three records' });
    const [err, joined, bad] = collector.records;
    expect(err).toMatchObject({ text: 'an error', stream: 'stderr', time: '2024-05-01T10:00:00.000000002Z' });
    expect(joined).toMatchObject({ text: 'hello big world', stream: 'stdout', time: '2024-05-01T10:00:00.000000001Z', offset: 0 });
    expect(joined.k8s).toEqual({ pod: 'web-7d9f', namespace: 'shop', container: 'nginx', containerId: 'a'.repeat(64) });
    expect(bad).toMatchObject({ text: 'not a cri line', tags: ['malformed'] });
    expect(await metric(telemetry, 'plumb_tail_malformed_total', { format: 'cri' })).toBe(1);
  });

  it('joins docker json-file partial lines', async () => {
    const file = path.join(dir, 'c-json.log');
    const line = (log: string, stream = 'stdout') => JSON.stringify({ log, stream, time: '2024-05-01T10:00:00.1Z' }) + '\n';
    await writeFile(file, line('part one, ') + line('part two\n') + line('alone\n', 'stderr') + '{"broken\n');
    const { collector } = await started(rig(dataDir, [input({ path: file, format: 'docker' })]));
    await waitFor(() => collector.records.length >= 3, { what: 'three records' });
    expect(collector.records.map((r) => [r.text, r.stream])).toEqual([
      ['part one, part two', 'stdout'],
      ['alone', 'stderr'],
      ['{"broken', undefined],
    ]);
    expect(collector.records[2].tags).toEqual(['malformed']);
  });

  it('parses json lines and keeps broken ones as text, tagged and counted', async () => {
    const file = path.join(dir, 'j.log');
    await writeFile(file, '{"level":"info","msg":"hi"}\n{"level":\n[1,2]\n');
    const { collector, telemetry } = await started(rig(dataDir, [input({ path: file, format: 'json' })]));
    await waitFor(() => collector.records.length >= 3, { what: 'three records' });
    expect(collector.records[0]).toMatchObject({ json: { level: 'info', msg: 'hi' }, tags: [] });
    expect(collector.records[1]).toMatchObject({ text: '{"level":', json: undefined, tags: ['json_invalid'] });
    expect(collector.records[2]).toMatchObject({ text: '[1,2]', json: undefined, tags: ['json_invalid'] });
    expect(await metric(telemetry, 'plumb_tail_malformed_total', { format: 'json' })).toBe(2);
  });
});

describe('Tailer: checkpoints and restarts', () => {
  it('a new instance resumes exactly where the acknowledged lines end', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('r', 1, 50));
    const first = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => first.collector.records.length >= 50, { what: '50 lines' });
    await first.tailer.stop(1000);
    await appendFile(file, numbered('r', 51, 100));
    const second = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => second.collector.records.length >= 50, { what: '50 more lines' });
    await second.tailer.stop(1000);
    expect(second.collector.texts()).toEqual(range('r', 51, 100));
    // The same file keeps its id across instances.
    expect(second.collector.records[0].fileId).toBe(first.collector.records[0].fileId);
  });

  it('re-delivers exactly what was not acknowledged, with the same event ids (out-of-order acks commit only the contiguous prefix)', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('k', 1, 500));
    const collector = new Collector();
    collector.autoAck = false;
    const first = await started(rig(dataDir, [input({ path: file })], options({ batchMaxRecords: 100 }), collector));
    await waitFor(() => collector.records.length >= 500, { what: '500 lines delivered' });
    const batches = collector.batches;
    expect(batches.length).toBe(5);
    // Acknowledge batches 0, 1 and 3; batch 2 never: the file may only commit through batch 1.
    for (const i of [3, 0, 1]) first.tailer.ack(batches[i]);
    // A crash after sending: stop without waiting for the missing acknowledgement.
    await first.tailer.stop(0);
    const committed = new Set([...batches[0].records, ...batches[1].records].map(recordId));

    const second = await started(rig(dataDir, [input({ path: file })]));
    const expected = [...batches[2].records, ...batches[3].records, ...batches[4].records];
    await waitFor(() => second.collector.records.length >= expected.length, { what: 're-delivery' });
    await second.tailer.stop(1000);
    const again = second.collector.ids();
    expect(sorted(again)).toEqual(sorted(expected.map(recordId)));
    expect(again.filter((id) => committed.has(id))).toEqual([]);
    expect(new Set([...committed, ...again]).size).toBe(500);
    expect(second.collector.texts()).toEqual(range('k', 201, 500));
  });

  it('stop waits for in-flight acknowledgements up to its deadline', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('s', 1, 10));
    const collector = new Collector();
    collector.autoAck = false;
    const r = await started(rig(dataDir, [input({ path: file })], options(), collector));
    await waitFor(() => collector.records.length >= 10, { what: 'ten lines' });
    const stopping = r.tailer.stop(10_000);
    setImmediate(() => r.tailer.ack(collector.batches[0]));
    await stopping;
    const saved = JSON.parse(await readFile(path.join(dataDir, CHECKPOINT_FILE), 'utf8')) as { files: { offset: number }[] };
    expect(saved.files[0].offset).toBe(Buffer.byteLength(numbered('s', 1, 10)));
  });

  it('stops reading while the consumer is behind (unacknowledged batches at the limit)', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('b', 1, 1000));
    const collector = new Collector();
    collector.autoAck = false;
    const r = await started(rig(dataDir, [input({ path: file })], options({ batchMaxRecords: 10, maxUnackedBatches: 3 }), collector));
    await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_paused_total', { reason: 'unacked' })) > 0, { what: 'a pause' });
    expect(collector.batches.length).toBe(3);
    expect(r.tailer.unackedBatches).toBe(3);
    collector.autoAck = true;
    for (const b of collector.batches) r.tailer.ack(b);
    await waitFor(() => collector.records.length >= 1000, { what: 'the rest' });
    expect(collector.texts()).toEqual(range('b', 1, 1000));
  });

  it('a consumer that does not return holds the reader (no unbounded buffering)', async () => {
    const file = path.join(dir, 'app.log');
    const body = numbered('g', 1, 20_000);
    await writeFile(file, body);
    const collector = new Collector();
    let open!: () => void;
    collector.gate = new Promise((resolve) => (open = resolve));
    const r = await started(rig(dataDir, [input({ path: file })], options({ batchMaxRecords: 10, readChunkBytes: '4kib' }), collector));
    await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_batches_total')) >= 1, { what: 'the first hand-off' });
    // The hand-off is pending: one chunk was read, the rest of the file waits on disk.
    expect(await metric(r.telemetry, 'plumb_tail_read_bytes_total')).toBeLessThanOrEqual(4096);
    expect(await metric(r.telemetry, 'plumb_tail_batches_total')).toBe(1);
    open();
    collector.gate = undefined;
    await waitFor(() => collector.records.length >= 20_000, { what: 'all lines' });
    expect(collector.texts()).toEqual(range('g', 1, 20_000));
    expect(await metric(r.telemetry, 'plumb_tail_read_bytes_total')).toBe(Buffer.byteLength(body));
  });

  it('stop returns at its deadline when the consumer never does, committing nothing it did not confirm', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('h', 1, 10));
    const collector = new Collector();
    collector.gate = new Promise(() => undefined);
    const r = rig(dataDir, [input({ path: file })], options(), collector);
    await r.tailer.start();
    await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_batches_total')) >= 1, { what: 'a hand-off' });
    await r.tailer.stop(50);
    const saved = JSON.parse(await readFile(path.join(dataDir, CHECKPOINT_FILE), 'utf8')) as { files: { offset: number }[] };
    expect(saved.files.map((f) => f.offset)).toEqual([0]);
  });

  it('start → stop → start on one instance continues without loss or repeats', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('z', 1, 10));
    const r = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => r.collector.records.length >= 10, { what: 'ten lines' });
    await r.tailer.stop(1000);
    await appendFile(file, numbered('z', 11, 20));
    await r.tailer.start();
    await waitFor(() => r.collector.records.length >= 20, { what: 'twenty lines' });
    expect(r.collector.texts()).toEqual(range('z', 1, 20));
  });

  it('retries a batch the consumer rejected', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('e', 1, 3));
    const collector = new Collector();
    collector.failures = 2;
    const r = await started(rig(dataDir, [input({ path: file })], options(), collector));
    await waitFor(() => collector.records.length >= 3, { what: 'the batch after two failures' });
    expect(collector.texts()).toEqual(range('e', 1, 3));
    expect(await metric(r.telemetry, 'plumb_tail_delivery_errors_total')).toBe(2);
  });
});

describe('Tailer: crash', () => {
  it('killed after sending and before checkpointing: a new instance re-delivers exactly the unacknowledged lines', async () => {
    const file = path.join(dir, 'app.log');
    await writeFile(file, numbered('crash', 1, 400));
    const ackBatches = 3;
    const child = spawn(process.execPath, [path.join(import.meta.dirname, 'fixtures', 'tail-process.ts'), dataDir, file, String(ackBatches)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    const batches: { seq: number; ids: string[]; texts: string[] }[] = [];
    createInterface({ input: child.stdout }).on('line', (l) => batches.push(JSON.parse(l) as (typeof batches)[number]));
    try {
      await waitFor(() => batches.reduce((n, b) => n + b.texts.length, 0) >= 400, { what: 'the child to send every line' });
      // The acknowledged batches reach the checkpoint; the others never may.
      const ackedEnd = Buffer.byteLength(numbered('crash', 1, 50 * ackBatches));
      await waitFor(async () => (await readFile(path.join(dataDir, CHECKPOINT_FILE), 'utf8').catch(() => '')).includes(`"offset":${ackedEnd},`), { what: 'the acknowledged offset on disk' });
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    expect(batches.map((b) => b.texts.length)).toEqual([50, 50, 50, 50, 50, 50, 50, 50]);
    const acked = batches.slice(0, ackBatches).flatMap((b) => b.ids);
    const unacked = batches.slice(ackBatches).flatMap((b) => b.ids);

    const r = await started(rig(dataDir, [input({ path: file })]));
    await waitFor(() => r.collector.records.length >= unacked.length, { what: 're-delivery' });
    await r.tailer.stop(1000);
    expect(r.collector.ids()).toEqual(unacked);
    expect(r.collector.texts()).toEqual(range('crash', 151, 400));
    expect(new Set([...acked, ...r.collector.ids()]).size).toBe(400);
  });
});
