/**
 * Two rotations between two discovery passes (logrotate `create` on a busy machine, where a
 * pass can come later than the next rotation): the file created at the path by the first and
 * renamed away by the second was never seen at the path. Its lines are on disk, as app.log.1 or
 * its .gz; they are read whole, once, and older rotations are left alone. The same holds when
 * nothing was followed at the path in between: the open of the file a pass saw there lost the
 * race with the next rotation, or the path was empty when the pass looked.
 */
import { appendFile, readFile, rename, unlink, utimes, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { expect, it, vi } from 'vitest';
import { Discovery } from '../../../../../agent/logs/tail/discovery.ts';
import { fixture, input, logrotateDelaycompress, metric, numbered, options, range, rig, sorted } from './harness.ts';
import { waitFor } from '../../../../helpers/wait.ts';

const fx = fixture();
// Discovery passes far apart, so the renames below fall between two of them.
const slow = () => options({ discoverInterval: '1500ms', rotateWait: '300ms' });

for (const compressed of [false, true]) {
  it(`a generation created and rotated away between two passes is read whole${compressed ? ' from its .gz' : ''}`, async () => {
    const file = path.join(fx.dir, 'app.log');
    // A rotation from before the agent followed the path: older than the followed file, not read.
    const ancient = path.join(fx.dir, 'app.log.3');
    await writeFile(ancient, numbered('ancient', 1, 2));
    const yesterday = new Date(Date.now() - 86_400_000);
    await utimes(ancient, yesterday, yesterday);
    await writeFile(file, numbered('g0', 1, 5));
    const r = await fx.started(rig(fx.dataDir, [input({ path: file })], slow()));
    await waitFor(() => r.collector.records.length >= 5, { what: 'the first generation' });
    // Rotation 1: g0 → app.log.1, g1 created. Rotation 2: g0 → app.log.2, g1 → app.log.1 (or
    // compressed to app.log.1.gz), g2 created. No pass saw g1 at app.log.
    await rename(file, path.join(fx.dir, 'app.log.1'));
    await writeFile(file, numbered('g1', 1, 7));
    await rename(path.join(fx.dir, 'app.log.1'), path.join(fx.dir, 'app.log.2'));
    await rename(file, path.join(fx.dir, 'app.log.1'));
    if (compressed) {
      await writeFile(path.join(fx.dir, 'app.log.1.gz'), gzipSync(await readFile(path.join(fx.dir, 'app.log.1'))));
      await unlink(path.join(fx.dir, 'app.log.1'));
    }
    await writeFile(file, numbered('g2', 1, 3));
    await waitFor(() => r.collector.records.length >= 15, { what: 'all three generations', timeoutMs: 10_000 });
    await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_open_files')) <= 1, { what: 'rotated files finished and closed', timeoutMs: 10_000 });
    expect(sorted(r.collector.texts())).toEqual(sorted([...range('g0', 1, 5), ...range('g1', 1, 7), ...range('g2', 1, 3)]));
  });
}

it('generations rotated away while the open of the file at the path lost the race with a rotation are read whole', async () => {
  const file = path.join(fx.dir, 'app.log');
  await writeFile(file, numbered('g1', 1, 4));
  // The first scan sees g1 at the path; before the tailer opens it, two rotations (a busy
  // machine): the open finds g3, and nothing was ever followed at the path. The next pass
  // follows g3; g1 and g2 are only in the rotations.
  const scan = Discovery.prototype.scan;
  const spy = vi.spyOn(Discovery.prototype, 'scan').mockImplementationOnce(async function (this: Discovery) {
    const found = await scan.call(this);
    await logrotateDelaycompress(fx.dir);
    await appendFile(file, numbered('g2', 1, 6));
    await logrotateDelaycompress(fx.dir);
    await appendFile(file, numbered('g3', 1, 3));
    return found;
  });
  try {
    const r = await fx.started(rig(fx.dataDir, [input({ path: file })], options({ discoverInterval: '200ms', rotateWait: '300ms' })));
    await waitFor(() => r.collector.records.length >= 13, { what: 'all three generations', timeoutMs: 10_000 });
    await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_open_files')) <= 1, { what: 'rotated files finished and closed', timeoutMs: 10_000 });
    expect(spy).toHaveBeenCalled();
    expect(sorted(r.collector.texts())).toEqual(sorted([...range('g1', 1, 4), ...range('g2', 1, 6), ...range('g3', 1, 3)]));
    expect(new Set(r.collector.ids()).size).toBe(r.collector.records.length);
  } finally {
    spy.mockRestore();
  }
});

it('generations created and rotated away while no file was at the path are read whole when one is followed there again', async () => {
  const file = path.join(fx.dir, 'app.log');
  await writeFile(file, numbered('g0', 1, 5));
  const r = await fx.started(rig(fx.dataDir, [input({ path: file })], slow()));
  await waitFor(() => r.collector.records.length >= 5, { what: 'the first generation' });
  // g0 renamed away with nothing created at the path; a pass sees the path empty.
  await rename(file, path.join(fx.dir, 'app.log.1'));
  await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_rotations_total')) >= 1, { what: 'g0 found rotated' });
  // Before the next pass: g1 created, written and rotated away (compressed later), g2 created.
  await writeFile(file, numbered('g1', 1, 7));
  await logrotateDelaycompress(fx.dir);
  await appendFile(file, numbered('g2', 1, 3));
  await waitFor(() => r.collector.records.length >= 15, { what: 'all three generations', timeoutMs: 10_000 });
  // One more rotation compresses g1: its .gz is recognised as read.
  await logrotateDelaycompress(fx.dir);
  await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_open_files')) <= 1, { what: 'rotated files finished and closed', timeoutMs: 10_000 });
  expect(sorted(r.collector.texts())).toEqual(sorted([...range('g0', 1, 5), ...range('g1', 1, 7), ...range('g2', 1, 3)]));
  expect(new Set(r.collector.ids()).size).toBe(r.collector.records.length);
});
