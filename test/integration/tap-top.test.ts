/**
 * The terminal tools against a running agent (child processes through the CLI): `plumb tap`
 * streams what passes a component through a filter and stops at its limit; GET /api/v1/tap's
 * refusals; `plumb top` draws, sorts on a key and quits on q; `plumb grok FILE` reports and sets
 * its exit code; the agent's own logs in pretty and JSON form.
 */
import dgram from 'node:dgram';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPlumb, startPlumb, stopAllProcesses, stopProcess, waitForHealthy, type TrackedProcess } from '../helpers/processes.ts';
import { freeTcpPorts, freeUdpPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

let dir: string;
let agent: TrackedProcess;
let url: string;
let statsdPort: number;
let log: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plumb-tap-'));
  const [agentPort, deadPort] = await freeTcpPorts(2);
  statsdPort = await freeUdpPort();
  log = join(dir, 'app.log');
  await writeFile(log, '');
  const config = join(dir, 'agent.yaml');
  await writeFile(
    config,
    `agent:
  http: { listen: "127.0.0.1:${agentPort}" }
  statsd: { listen: "127.0.0.1:${statsdPort}", flushInterval: 1s }
  forward: { collectors: ["http://127.0.0.1:${deadPort}"] }
  traces: { zipkin: { enabled: false } }
  tail: { discoverInterval: 200ms, pollInterval: 50ms }
  logs: [{ path: ${JSON.stringify(log)} }]
`,
  );
  agent = startPlumb(['agent', '--config', config, '--log-format', 'pretty']);
  url = `http://127.0.0.1:${agentPort}`;
  await waitForHealthy(url, 30_000);
}, 60_000);

afterAll(async () => {
  await stopAllProcesses();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function sendStatsd(lines: string[]): Promise<void> {
  const socket = dgram.createSocket('udp4');
  return new Promise((resolve, reject) => {
    socket.send(lines.join('\n'), statsdPort, '127.0.0.1', (err) => {
      socket.close();
      if (err) reject(err);
      else resolve();
    });
  });
}

describe('plumb tap', () => {
  it('streams the parser\'s events that pass the filter, and ends at the limit', async () => {
    const tap = startPlumb(['tap', 'parser', '--url', url, '--filter', 'message =~ /ERROR/ and message != "skip ERROR"', '--limit', '3']);
    // the tap is open once the agent counts it
    await waitFor(async () => (await (await fetch(`${url}/metrics`)).text()).includes('plumb_taps_open 1'), { timeoutMs: 15_000, what: 'the tap to open' });
    let text = 'skip ERROR\n';
    for (let i = 0; i < 10; i++) text += i % 2 === 0 ? `INFO request ${i}\n` : `ERROR request ${i}\n`;
    await appendFile(log, text);
    const exit = await waitFor(() => tap.exit, { timeoutMs: 20_000, what: 'plumb tap to end at its limit' });
    expect(exit.code).toBe(0);
    const records = tap
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { component: string; kind: string; at: string; item: { message: string } });
    expect(records.map((r) => r.item.message)).toEqual(['ERROR request 1', 'ERROR request 3', 'ERROR request 5']);
    for (const r of records) expect(r).toMatchObject({ component: 'parser', kind: 'event', at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
  }, 40_000);

  it('taps statsd lines over HTTP as NDJSON, filtered by name', async () => {
    const res = await fetch(`${url}/api/v1/tap?component=statsd&filter=${encodeURIComponent('name == "tapped.count"')}&limit=2&rate=50`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    const body = res.text();
    await waitFor(async () => (await (await fetch(`${url}/metrics`)).text()).includes('plumb_taps_open 1'), { timeoutMs: 10_000 });
    await sendStatsd(['other:1|c', 'tapped.count:1|c|#env:test', 'tapped.count:2|c', 'tapped.count:3|c']);
    const lines = (await body).trim().split('\n').map((l) => JSON.parse(l) as { component: string; kind: string; item: { line: string; ok: boolean } });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ component: 'statsd', kind: 'metric', item: { line: 'tapped.count:1|c|#env:test', ok: true } });
    expect(lines[1].item.line).toBe('tapped.count:2|c');
  }, 30_000);

  it('refuses a bad filter, an unknown component and a fifth tap, saying why', async () => {
    const bad = await fetch(`${url}/api/v1/tap?component=parser&filter=${encodeURIComponent('level == error')}`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'PLUMB_ERR_TAP_FILTER', message: expect.stringContaining('quote text') });
    const unknown = await runPlumb(['tap', 'nope', '--url', url]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no component "nope" to tap here; one of: .*parser.*statsd/);
    const open: AbortController[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const a = new AbortController();
        open.push(a);
        const r = await fetch(`${url}/api/v1/tap?component=aggregator`, { signal: a.signal });
        expect(r.status).toBe(200);
      }
      const fifth = await fetch(`${url}/api/v1/tap?component=aggregator`);
      expect(fifth.status).toBe(429);
      expect(await fifth.json()).toMatchObject({ error: 'PLUMB_ERR_TAP_BUSY' });
    } finally {
      for (const a of open) a.abort();
    }
    await waitFor(async () => (await (await fetch(`${url}/metrics`)).text()).includes('plumb_taps_open 0'), { timeoutMs: 10_000, what: 'closed taps to be released' });
  }, 30_000);
});

describe('plumb top', () => {
  it('draws the components, sorts on a key and quits on q', async () => {
    const top = startPlumb(['top', '--url', url, '--interval', '300ms']);
    await waitFor(() => /COMPONENT\s+KIND/.test(top.stdout()) && top.stdout().includes('sorted by graph order'), { timeoutMs: 15_000, what: 'the first screen' });
    expect(top.stdout()).toMatch(/^statsd\s+source\s+statsd\s/m);
    expect(top.stdout()).toContain('\x1b[H\x1b[2J');
    top.child.stdin?.write('i');
    await waitFor(() => top.stdout().includes('sorted by in/s'), { timeoutMs: 10_000, what: 'the in/s sort' });
    top.child.stdin?.write('q');
    const exit = await waitFor(() => top.exit, { timeoutMs: 10_000, what: 'top to quit on q' });
    expect(exit.code).toBe(0);
  }, 40_000);
});

describe('plumb grok FILE', () => {
  it('reports the share matched, the fields and the first failures; the exit code follows --min-match', async () => {
    const sample = join(dir, 'sample.log');
    await writeFile(sample, 'GET /a 200\nPOST /b 404\nnot a request\nGET /c 500\n');
    const pattern = '%{WORD:verb} %{URIPATH:path} %{INT:status:int}';
    const r = await runPlumb(['grok', '--pattern', pattern, sample], { timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${sample}: 3 of 4 lines matched (75%), 1 failed`);
    expect(r.stdout).toMatch(/^verb\s+3$/m);
    expect(r.stdout).toMatch(/^\s+3: not a request$/m);
    const ok = await runPlumb(['grok', '--pattern', pattern, '--min-match', '75', '--json', sample], { timeoutMs: 30_000 });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ lines: 4, matched: 3, matchedPercent: 75, fields: { verb: 3, path: 3, status: 3 }, firstFailures: [{ line: 3, text: 'not a request' }] });
    const defs = join(dir, 'defs');
    await writeFile(defs, 'REQ %{WORD:verb} %{URIPATH:path}\n');
    const withDefs = await runPlumb(['grok', '--pattern', '%{REQ} %{INT:status}', '--definitions', defs, '--min-match', '70', sample], { timeoutMs: 30_000 });
    expect(withDefs.code).toBe(0);
    const broken = await runPlumb(['grok', '--pattern', '%{NOPE}', sample], { timeoutMs: 30_000 });
    expect(broken.code).toBe(2);
    expect(broken.stderr).toContain('unknown pattern NOPE');
  }, 60_000);

  it('gives up on a runaway pattern within the agent\'s line deadline', async () => {
    const sample = join(dir, 'runaway.log');
    await writeFile(sample, `${'a'.repeat(40)}!\nok\n`);
    const config = join(dir, 'grok.yaml');
    await writeFile(config, 'agent:\n  grok: { chunkTimeout: 500ms, lineTimeout: 300ms }\n');
    const r = await runPlumb(['grok', '--config', config, '--pattern', '^(a+)+$', '--json', sample], { timeoutMs: 40_000 });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ lines: 2, matched: 0, timeouts: { chunk: 500, line: 300 }, firstFailures: [{ line: 1, outcome: 'timeout' }, { line: 2 }] });
  }, 60_000);
});

describe('self logs', () => {
  it('pretty: one readable line per entry; json (the default off a terminal): pino objects', async () => {
    expect(agent.stderr()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}agent\/statsd: statsd listening {2}udp=127\.0\.0\.1:\d+/m);
    expect(agent.stderr()).not.toContain('{"level"');
    const [port] = await freeTcpPorts(1);
    const json = startPlumb(['agent'], { env: { PLUMB_AGENT__HTTP__LISTEN: `127.0.0.1:${port}`, PLUMB_AGENT__STATSD__LISTEN: `127.0.0.1:${await freeUdpPort()}`, PLUMB_AGENT__TRACES__ZIPKIN__ENABLED: 'false', PLUMB_AGENT__HOST__ENABLED: 'false' } });
    await waitFor(() => json.stderr().includes('plumb started'), { timeoutMs: 20_000, what: 'the JSON agent to start' });
    await stopProcess(json);
    const lines = json.stderr().trim().split('\n');
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ level: expect.any(Number), time: expect.any(Number), msg: expect.any(String) });
  }, 40_000);
});
