/**
 * A writer that appends to its file after logrotate renamed it (it has not handled the signal
 * to reopen yet: a process starved of CPU), after the tailer read the renamed file to its end
 * and closed it (rotateWait without growth). The lines are read from wherever they still are:
 * the renamed file while it exists, or the `.gz` the next rotation made of it (delaycompress),
 * from where reading stopped, under the file's own id: every line once.
 */
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { fixture, input, logrotateDelaycompress, metric, numbered, options, range, rig, sorted, type Rig } from './harness.ts';
import { waitFor } from '../../../../helpers/wait.ts';

const fx = fixture();
// Passes far apart, so the steps below fall between two of them; a short rotateWait.
const slow = () => options({ discoverInterval: '1500ms', rotateWait: '300ms' });

function expectExactlyOnce(r: Rig, lines: string[]): void {
  expect(sorted(r.collector.texts())).toEqual(sorted(lines));
  expect(new Set(r.collector.ids()).size).toBe(r.collector.records.length);
}

for (const where of ['its .gz', 'the renamed file, and its .gz is not read again'] as const) {
  it(`lines appended to a rotated file after it was closed are read from ${where}`, async () => {
    const file = path.join(fx.dir, 'app.log');
    await writeFile(file, numbered('g0', 1, 5));
    const r = await fx.started(rig(fx.dataDir, [input({ path: file })], slow()));
    await waitFor(() => r.collector.records.length >= 5, { what: 'the first generation' });
    await logrotateDelaycompress(fx.dir);
    await appendFile(file, numbered('g1', 1, 3));
    // g0 read to its end and closed after rotateWait; g1 followed.
    await waitFor(async () => r.collector.records.length >= 8 && (await metric(r.telemetry, 'plumb_tail_open_files')) <= 1, { what: 'g0 closed', timeoutMs: 10_000 });
    const first = r.collector.records.find((x) => x.text === 'g0 1');
    // The writer had not reopened: more lines go to g0, now app.log.1.
    await appendFile(path.join(fx.dir, 'app.log.1'), numbered('g0', 6, 10));
    if (where !== 'its .gz') await waitFor(() => r.collector.records.length >= 13, { what: 'the late lines from app.log.1', timeoutMs: 10_000 });
    // The next rotation compresses g0 (app.log.2.gz) before (or after) any pass saw it grow.
    await logrotateDelaycompress(fx.dir);
    await appendFile(file, numbered('g2', 1, 2));
    await waitFor(() => r.collector.records.length >= 15, { what: 'every line', timeoutMs: 10_000 });
    await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_open_files')) <= 1, { what: 'rotated files finished and closed', timeoutMs: 10_000 });
    expectExactlyOnce(r, [...range('g0', 1, 10), ...range('g1', 1, 3), ...range('g2', 1, 2)]);
    // The late lines are g0's: same file id, ids after its first lines.
    const late = r.collector.records.filter((x) => x.text === 'g0 6' || x.text === 'g0 10');
    expect(late.map((x) => x.fileId)).toEqual([first?.fileId, first?.fileId]);
    expect(late.map((x) => x.offset)).toEqual([25, 45]);
  });
}
