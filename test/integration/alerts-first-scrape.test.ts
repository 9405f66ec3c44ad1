/**
 * plumb's shipped Prometheus alerts on loss (`increase(<counter>[…]) > 0`) can only fire on a
 * first loss if the counter's series exists before it: Prometheus' increase() needs two
 * samples, so a series that appears at 1 never increases. A fresh agent and collector, with every
 * part those alerts watch switched on, must therefore expose a sample at 0 for every counter
 * (and label matchers) a shipped alert reads with increase().
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startAgent, startCollector, stopAllInProcess } from '../helpers/processes.ts';
import { freeTcpPorts } from '../helpers/ports.ts';
import { parseExposition, scrapeText, type Exposition } from '../helpers/prometheus.ts';

let dir = '';
let agent: Exposition;
let collector: Exposition;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plumb-first-scrape-'));
  const log = join(dir, 'app.log');
  await writeFile(log, '');
  const [closed] = await freeTcpPorts(1);
  const c = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  traces: { zipkin: { url: "http://127.0.0.1:${closed}" } }
  alerts: { alertmanager: { urls: ["http://127.0.0.1:${closed}"] }, webhooks: [{ url: "http://127.0.0.1:${closed}/hook" }] }
`);
  const a = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0" }
  host: { enabled: false }
  traces: { zipkin: { listen: "127.0.0.1:0" } }
  forward: { collectors: ["${c.url}"] }
  logs: [{ path: ${JSON.stringify(log)} }]
`);
  agent = parseExposition(await scrapeText(a.url));
  collector = parseExposition(await scrapeText(c.url));
}, 60_000);

afterAll(async () => {
  await stopAllInProcess();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Watched {
  alert: string;
  metric: string;
  matchers: { label: string; op: string; value: string }[];
}

/** Every `increase(name{matchers}[range])` in the shipped rules. */
function watchedCounters(): Watched[] {
  const rules = YAML.parse(readFileSync(join(REPO_ROOT, 'deploy', 'prometheus', 'plumb-alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  const out: Watched[] = [];
  for (const r of rules.groups.flatMap((g) => g.rules)) {
    for (const m of r.expr.matchAll(/increase\(\s*([a-zA-Z_:][\w:]*)\s*(\{([^}]*)\})?\s*\[/g)) {
      const matchers = (m[3] ?? '')
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== '')
        .map((x) => {
          const mm = /^(\w+)\s*(=~|!~|!=|=)\s*"(.*)"$/.exec(x)!;
          return { label: mm[1], op: mm[2], value: mm[3] };
        });
      out.push({ alert: r.alert, metric: m[1], matchers });
    }
  }
  return out;
}

function matches(labels: Record<string, string>, matchers: Watched['matchers']): boolean {
  return matchers.every(({ label, op, value }) => {
    const v = labels[label] ?? '';
    if (op === '=') return v === value;
    if (op === '!=') return v !== value;
    const re = new RegExp(`^(?:${value})$`);
    return op === '=~' ? re.test(v) : !re.test(v);
  });
}

describe('shipped loss alerts work from the first scrape', () => {
  it('every counter a shipped alert watches with increase() is exposed at 0 by a fresh agent or collector', () => {
    const watched = watchedCounters();
    expect(watched.length).toBeGreaterThan(8);
    const missing: string[] = [];
    for (const w of watched) {
      const samples = [agent, collector].flatMap((e) => e.samples.filter((s) => s.name === w.metric && matches(s.labels, w.matchers)));
      if (samples.length === 0) missing.push(`${w.alert}: ${w.metric}${w.matchers.length ? `{${w.matchers.map((m) => `${m.label}${m.op}"${m.value}"`).join(',')}}` : ''}`);
      for (const s of samples) expect(s.value, `${w.metric} ${JSON.stringify(s.labels)}`).toBe(0);
    }
    expect(missing).toEqual([]);
  });
});
