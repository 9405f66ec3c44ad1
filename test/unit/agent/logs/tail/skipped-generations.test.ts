/**
 * Two rotations between two discovery passes (logrotate `create` on a busy machine, where a
 * pass can come later than the next rotation): the file created at the path by the first and
 * renamed away by the second was never seen at the path. Its lines are on disk, as app.log.1 or
 * its .gz; they are read whole, once, and older rotations are left alone.
 */
import { readFile, rename, unlink, utimes, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { expect, it } from 'vitest';
import { fixture, input, metric, numbered, options, range, rig, sorted } from './harness.ts';
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
