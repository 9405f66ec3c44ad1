/**
 * Host metrics through the agent and the collector's /metrics, on a fabricated /proc so every
 * number is known: with the host interval equal to the flush interval (the default) each
 * interval carries exactly one collection, none lost; and node_exporter's families arrive as
 * Prometheus counters and gauges with node_exporter's labels, the counters adding up to what
 * the kernel counted between the first and the last collection.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startAgent, startCollector, stopAllInProcess } from '../helpers/processes.ts';
import { scrape, samplesOf, valueOf } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'plumb-host-it-'));
const proc = join(dir, 'proc');
const root = join(dir, 'root');

function write(rel: string, text: string): void {
  const path = join(proc, rel);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

/** /proc/stat after `n` steps: every step adds 100 jiffies of user time to cpu0 and 1000 context switches. */
function stat(n: number): string {
  return `cpu  ${100 + 100 * n} 0 50 800 0 0 0 0 0 0\ncpu0 ${100 + 100 * n} 0 50 800 0 0 0 0 0 0\nctxt ${1000 + 1000 * n}\nprocesses 10\nprocs_running 1\nprocs_blocked 0\n`;
}

afterAll(async () => {
  await stopAllInProcess();
  rmSync(dir, { recursive: true, force: true });
});

describe('host metrics', () => {
  it('one collection per interval when the intervals are equal, and node_exporter families at the collector', async () => {
    mkdirSync(root, { recursive: true });
    write('stat', stat(0));
    write('loadavg', '0.50 0.25 0.10 1/100 999\n');
    write('meminfo', 'MemTotal: 1000 kB\nMemFree: 400 kB\nMemAvailable: 600 kB\n');
    write('1/mounts', '/dev/sda1 / ext4 rw 0 0\n');
    write('sys/kernel/hostname', 'fab\n');
    const collector = await startCollector('collector: { listen: "127.0.0.1:0" }');
    const agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { interval: 1h, hostProc: ${JSON.stringify(proc)}, hostRoot: ${JSON.stringify(root)} }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
`);
    const collections = async (): Promise<number> => valueOf(await scrape(agent.url), 'plumb_host_collections_total') ?? 0;
    await waitFor(async () => (await collections()) === 1, { what: 'the baseline collection at start' });
    const steps = 4;
    for (let n = 1; n <= steps; n++) {
      write('stat', stat(n));
      // the flush ends the interval and starts the one collection of the next
      await agent.agent.flush();
      await waitFor(async () => (await collections()) === n + 1, { what: `collection ${n + 1}` });
    }
    await agent.agent.flush();
    const e = await waitFor(
      async () => {
        const e = await scrape(collector.url);
        // every collection after the baseline arrived: 4 steps of 1000 context switches
        expect(valueOf(e, 'node_context_switches_total', { host: 'fab' })).toBe(steps * 1000);
        return e;
      },
      { what: 'the counters at the collector' },
    );
    expect(e.types.get('node_context_switches_total')).toBe('counter');
    expect(valueOf(e, 'node_cpu_seconds_total', { host: 'fab', cpu: '0', mode: 'user' })).toBe(steps * 1);
    expect(valueOf(e, 'node_cpu_seconds_total', { host: 'fab', cpu: '0', mode: 'idle' })).toBe(0);
    expect(e.types.get('node_load1')).toBe('gauge');
    expect(valueOf(e, 'node_load1', { host: 'fab' })).toBe(0.5);
    expect(valueOf(e, 'node_memory_MemAvailable_bytes', { host: 'fab' })).toBe(600 * 1024);
    const fs = samplesOf(e, 'node_filesystem_avail_bytes');
    expect(fs.map((s) => s.labels)).toEqual([{ host: 'fab', device: '/dev/sda1', mountpoint: '/', fstype: 'ext4' }]);
    // and today's names stay
    expect(valueOf(e, 'system_load_1', { host: 'fab' })).toBe(0.5);
  });
});
