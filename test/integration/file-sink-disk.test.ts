/**
 * The file sink's disk queue holds only what is not yet written: once every event is in the
 * sink's files, the queue's segments are gone, so disk use is the data once, not twice.
 * Through the door: NDJSON posted to the collector's /v1/logs.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startCollector, stopAllInProcess } from '../helpers/processes.ts';
import { waitFor } from '../helpers/wait.ts';

afterAll(async () => {
  await stopAllInProcess();
});

/** Bytes of the files under `dir` whose names match `re`. */
async function bytesOf(dir: string, re: RegExp): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (e.isFile() && re.test(e.name)) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

describe('file sink queue', () => {
  it('deletes what was delivered: once the events are written, no queue segment is left', async () => {
    const c = await startCollector('collector: { listen: "127.0.0.1:0", logs: { sinks: { file: { flushInterval: 50ms } } } }');
    const dataDir = c.collector.config.dataDir;
    const fileId = 'e'.repeat(32);
    const event = (n: number): string => JSON.stringify({ '@timestamp': '2024-05-01T10:00:00Z', message: `line ${n} ${'x'.repeat(200)}`, event: { id: `${fileId}${(n * 300).toString(16).padStart(12, '0')}` } });
    for (let b = 0; b < 5; b++) {
      const lines = Array.from({ length: 200 }, (_, i) => event(b * 200 + i));
      const res = await fetch(`${c.url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', 'x-plumb-batch-id': `disk:${b}` }, body: `${lines.join('\n')}\n` });
      expect(res.status, await res.clone().text()).toBe(200);
    }
    const written = await waitFor(
      async () => {
        const logs = await bytesOf(join(dataDir, 'logs'), /\.ndjson/);
        return logs > 1000 * 200 ? logs : false;
      },
      { what: 'the events in the sink files' },
    );
    expect(written).toBeGreaterThan(1000 * 200);
    await waitFor(async () => (await bytesOf(dataDir, /\.seg$/)) === 0, { what: 'the delivered queue segments to be deleted' });
  });
});
