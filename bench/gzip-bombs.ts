/**
 * Parallel gzip bombs at a `plumb collector`: 40 requests at once, each a metric batch of about
 * 60 MiB once inflated (61 KiB on the wire, under the default maxBodyBytes of 64 MiB), and the
 * collector's peak RSS (VmHWM) with the given collector.limits.maxBodyBytesInFlight.
 *
 *   node bench/gzip-bombs.ts [maxBodyBytesInFlight, default 256mb]   (100gb: as before the bound)
 */
import { spawn } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freeTcpPort } from '../test/helpers/ports.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const budget = process.argv[2] ?? '256mb';
const dir = mkdtempSync(join(tmpdir(), 'plumb-bombs-'));
const port = await freeTcpPort();
const config = join(dir, 'collector.yaml');
writeFileSync(config, `collector:\n  listen: "127.0.0.1:${port}"\n  dataDir: ${JSON.stringify(join(dir, 'data'))}\n  limits: { maxBodyBytesInFlight: ${budget} }\nlog: { level: error }\n`);
const child = spawn(process.execPath, [join(ROOT, 'cli', 'main.ts'), 'collector', '--config', config], { stdio: 'inherit' });
const url = `http://127.0.0.1:${port}`;
const deadline = Date.now() + 60_000;
while (!(await fetch(`${url}/readyz`).then((r) => r.ok, () => false))) {
  if (Date.now() > deadline) throw new Error('the collector did not become ready');
  await new Promise((r) => setTimeout(r, 200));
}
const hwmMiB = (): number => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
const idle = hwmMiB();
const pad = ' '.repeat(60 * 1024 * 1024);
const body = new Uint8Array(gzipSync(Buffer.from(`{"id":"x","agent":"a","seq":1,"start":0,"end":1,"metrics":[],"events":[],"serviceChecks":[],"pad":"${pad}"}`)));
const started = Date.now();
const statuses = await Promise.all(
  Array.from({ length: 40 }, () =>
    fetch(`${url}/v1/metrics`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } }).then(
      (r) => String(r.status),
      (e: Error & { cause?: { code?: string } }) => `error ${e.cause?.code ?? e.message}`,
    ),
  ),
);
const counts: Record<string, number> = {};
for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
console.log(JSON.stringify({ maxBodyBytesInFlight: budget, wireBytes: body.length, idleRssMiB: Math.round(idle), peakRssMiB: Math.round(hwmMiB()), statuses: counts, ms: Date.now() - started }));
child.kill('SIGTERM');
await new Promise((r) => child.once('exit', r));
rmSync(dir, { recursive: true, force: true });
