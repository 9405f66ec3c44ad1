/**
 * bench:fleet-config — what one agent's bundle fetch costs the collector: a collector process
 * serving a folder of bundles, and 50 concurrent clients fetching GET /api/v1/config/<group> the
 * way agents do (x-plumb-agent header, If-None-Match). The collector's CPU (from /proc) is divided
 * by the requests it answered, for unchanged bundles (304) and for changed ones (the ~2 KiB body
 * sent each time).
 *
 *   npm run bench:fleet-config [-- --requests 20000]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuSeconds, freePort, rssMiB, startPlumb, stopChild, waitForOk } from './span-load.ts';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '20000' } } });
const REQUESTS = Number(values.requests);
const CLIENTS = 50;

const dir = await mkdtemp(join(tmpdir(), 'plumb-bench-fleet-config-'));
const bundle = `statsd:\n  tags: ["env:prod", "team:web"]\n  maxSeries: 50000\nlogs:\n${Array.from({ length: 20 }, (_, i) => `  - path: /var/log/app-${i}/*.log\n    pattern: "%{COMBINEDAPACHELOG}"\n    fields: { service: app-${i} }\n`).join('')}`;
await writeFile(join(dir, 'web.yaml'), bundle);
const port = await freePort();
const child = startPlumb('collector', {
  PLUMB_COLLECTOR__LISTEN: `127.0.0.1:${port}`,
  PLUMB_COLLECTOR__DATA_DIR: join(dir, 'data'),
  PLUMB_COLLECTOR__CONFIG_BUNDLES__DIR: dir,
  PLUMB_COLLECTOR__PATTERNS__ENABLED: 'false',
});
const base = `http://127.0.0.1:${port}`;
try {
  await waitForOk(`${base}/readyz`, 30_000);
  const url = `${base}/api/v1/config/web`;
  const etag = (await fetch(url)).headers.get('etag') ?? '';
  const run = async (conditional: boolean): Promise<{ cpuUs: number; wallMs: number; status: number }> => {
    let left = REQUESTS;
    let status = 0;
    const before = cpuSeconds(child.pid!);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, i) => {
        const headers: Record<string, string> = { 'x-plumb-agent': `host=bench-${i}&version=bench&config=x&instance=bench-${i}@1&group=web` };
        if (conditional) headers['if-none-match'] = etag;
        while (left-- > 0) {
          const r = await fetch(url, { headers });
          status = r.status;
          await r.arrayBuffer();
        }
      }),
    );
    const wallMs = performance.now() - started;
    return { cpuUs: ((cpuSeconds(child.pid!) - before) * 1e6) / REQUESTS, wallMs, status };
  };
  await run(true); // warm-up
  const notModified = await run(true);
  const sent = await run(false);
  const line = (what: string, r: { cpuUs: number; wallMs: number; status: number }): string =>
    `${what.padEnd(28)} HTTP ${r.status}  ${r.cpuUs.toFixed(1)} µs collector CPU per fetch  ${Math.round(REQUESTS / (r.wallMs / 1000))} fetches/s`;
  process.stdout.write(`bench:fleet-config — ${REQUESTS} fetches per case from ${CLIENTS} clients, bundle ${bundle.length} bytes\n`);
  process.stdout.write(`${line('unchanged (If-None-Match)', notModified)}\n${line('changed (body sent)', sent)}\n`);
  process.stdout.write(`collector RSS after: ${rssMiB(child.pid!).toFixed(0)} MiB\n`);
} finally {
  await stopChild(child);
  await rm(dir, { recursive: true, force: true });
}
