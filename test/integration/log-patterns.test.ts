/**
 * Log pattern mining through the collector's doors: events posted to /v1/logs reach the file
 * sink with `pattern_id` and `pattern`, GET /api/v1/patterns lists the templates with counts,
 * first/last seen and an example, /metrics counts events per source and pattern, and a restart
 * keeps ids and counts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCollector, stopAllInProcess } from '../helpers/processes.ts';
import { scrape, valueOf } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';
import { patternId } from '../../collector/patterns/miner.ts';

let dataDir: string;
beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'plumb-patterns-it-'));
});
afterAll(async () => {
  await stopAllInProcess();
  rmSync(dataDir, { recursive: true, force: true });
});

const yaml = () => `
collector:
  listen: "127.0.0.1:0"
  dataDir: ${JSON.stringify(dataDir)}
  logs: { sinks: { file: {} } }
`;

let seq = 0;
function event(message: string, service: string): string {
  seq++;
  return JSON.stringify({ '@timestamp': new Date().toISOString(), message, service: { name: service }, event: { id: `it-${seq}` } });
}

async function post(url: string, lines: string[]): Promise<void> {
  const res = await fetch(`${url}/v1/logs`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `${lines.join('\n')}\n` });
  expect(res.status).toBe(200);
}

function sinkEvents(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (name.startsWith('.')) continue;
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ndjson')) for (const l of readFileSync(p, 'utf8').split('\n')) if (l) out.push(JSON.parse(l) as Record<string, unknown>);
    }
  };
  walk(join(dataDir, 'logs'));
  return out;
}

describe('log patterns at the collector', () => {
  it('adds pattern_id and pattern to every event, lists templates and counts them in /metrics; a restart keeps them', async () => {
    let c = await startCollector(yaml());
    const lines: string[] = [];
    for (let i = 0; i < 30; i++) lines.push(event(`Accepted publickey for user${i % 3} from 10.1.0.${i} port ${40000 + i} ssh2`, 'sshd'));
    for (let i = 0; i < 5; i++) lines.push(event(`Disk /dev/sd${'abcde'[i]} is ${80 + i}% full`, 'monitor'));
    await post(c.url, lines);

    const events = await waitFor(() => {
      const e = sinkEvents();
      return e.length === 35 ? e : undefined;
    }, { what: '35 events in the file sink' });
    const ssh = events.filter((e) => (e.service as { name: string }).name === 'sshd');
    const template = 'Accepted publickey for <*> from <*> port <*> ssh2';
    // the template generalises while the first lines arrive; the last ones carry the final one
    expect(ssh.at(-1)).toMatchObject({ pattern: template, pattern_id: patternId(template) });
    for (const e of events) expect(e.pattern_id).toMatch(/^[0-9a-f]{16}$/);

    const res = await fetch(`${c.url}/api/v1/patterns?source=sshd`);
    const body = (await res.json()) as { enabled: boolean; total: number; patterns: { id: string; template: string; count: number; first_seen: string; last_seen: string; example: string }[] };
    expect(body.enabled).toBe(true);
    expect(body.total).toBe(1);
    expect(body.patterns[0]).toMatchObject({ id: patternId(template), template, count: 30, example: 'Accepted publickey for user0 from 10.1.0.0 port 40000 ssh2' });
    expect(Date.parse(body.patterns[0].first_seen)).toBeLessThanOrEqual(Date.parse(body.patterns[0].last_seen));

    const metrics = await scrape(c.url);
    expect(valueOf(metrics, 'plumb_log_pattern_events_total', { source: 'sshd', pattern_id: patternId(template) })).toBeGreaterThan(0);
    const all = (await (await fetch(`${c.url}/api/v1/patterns`)).json()) as { patterns: { source: string; count: number }[] };
    expect(all.patterns.reduce((n, p) => n + p.count, 0)).toBe(35);

    await stopAllInProcess();
    c = await startCollector(yaml());
    const again = (await (await fetch(`${c.url}/api/v1/patterns?source=sshd`)).json()) as typeof body;
    expect(again.patterns[0]).toMatchObject({ id: patternId(template), template, count: 30, first_seen: body.patterns[0].first_seen });
  });
});
