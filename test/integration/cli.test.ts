/**
 * The command line as users run it: `node cli/main.ts …` in a child process, with files in a
 * temporary directory, free ports, stdin/stdout, exit codes and signals.
 */
import dgram from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, cleanEnv, configHasKey, runPlumb, spawnTracked, startPlumb, stopAllProcesses, stopProcess, waitForHealthy } from '../helpers/processes.ts';
import { readdirSync, readFileSync as readFileSyncNow } from 'node:fs';
import { freeTcpPorts, freeUdpPort } from '../helpers/ports.ts';
import { PROMTOOL, promtoolCheckMetrics, scrapeText } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plumb-cli-'));
});

afterEach(async () => {
  await stopAllProcesses();
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('plumb --help, --version', () => {
  it('--help prints the commands and exits 0', async () => {
    const r = await runPlumb(['--help']);
    expect(r.code).toBe(0);
    for (const command of ['agent', 'collector', 'all', 'check-config', 'statsd-parse', 'grok', 'replay']) expect(r.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
    expect(r.stdout).toContain('PLUMB_');
  });

  it('--version prints the package version and exits 0', async () => {
    const { version } = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = await runPlumb(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: `plumb ${version}\n` });
  });

  it('an unknown command is an error that shows the usage', async () => {
    const r = await runPlumb(['frobnicate']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('unknown command "frobnicate"');
    expect(r.stderr).toContain('Usage: plumb');
  });
});

describe('plumb replay', () => {
  it('says what is missing: the source, or an Elasticsearch sink to replay into', async () => {
    const noFrom = await runPlumb(['replay', '--to', 'elasticsearch']);
    expect(noFrom.code).toBe(2);
    expect(noFrom.stderr).toContain('--from s3://bucket/prefix is required');
    const config = await file('no-es.yaml', 'collector:\n  logs: { sinks: { file: {} } }\n');
    const noEs = await runPlumb(['replay', '--from', 's3://archive/plumb/', '--config', config]);
    expect(noEs.code).toBe(1);
    expect(noEs.stderr).toContain('collector.logs.sinks.elasticsearch is not configured');
  });
});

describe('plumb check-config', () => {
  it('accepts a good file: exit 0', async () => {
    const good = await file(
      'good.yaml',
      `
agent:
  statsd: { listen: "127.0.0.1:8125", flushInterval: 10s, maxSeries: 5000, tags: ["env:prod"] }
  forward: { collectors: ["http://127.0.0.1:9102"] }
collector:
  listen: "127.0.0.1:9102"
  metrics:
    mappings:
      - match: "api.*.requests"
        name: api_requests
        labels: { endpoint: "$1" }
log: { level: warn }
`,
    );
    const r = await runPlumb(['check-config', good]);
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, stdout: `${good}: ok\n` });
  });

  it('rejects a bad file: exit 1, every error printed with its key path', async () => {
    const bad = await file(
      'bad.yaml',
      `
agent:
  statsd:
    flushIntervall: 10s
    maxSeries: lots
  http:
    listen: "nowhere"
collector:
  metrics:
    quantiles: [0.5, 2]
`,
    );
    const r = await runPlumb(['check-config', bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('PLUMB_ERR_CONFIG_INVALID');
    expect(r.stderr).toContain(bad);
    expect(r.stderr).toContain('agent.statsd.flushIntervall: unknown key (did you mean "flushInterval"?)');
    expect(r.stderr).toMatch(/agent\.statsd\.maxSeries: .*integer.*"lots"/);
    expect(r.stderr).toMatch(/agent\.http\.listen: .*host:port.*"nowhere"/);
    expect(r.stderr).toMatch(/collector\.metrics\.quantiles\[1\]: .*\(got 2\)/);
  });

  it('rejects regular expressions that do not compile, naming the rule', async () => {
    const bad = await file('bad-regex.yaml', `collector: { metrics: { mappings: [ { match: "api.([", matchType: regex } ] } }\n`);
    const r = await runPlumb(['check-config', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/collector\.metrics\.mappings\[0\]\.match: not a valid regular expression/);
  });

  it('reports a bad mapping rule together with the schema errors, not after they are fixed', async () => {
    const bad = await file('bad-both.yaml', `agent: { statsd: { maxSeries: lots } }\ncollector: { metrics: { mappings: [ { match: "api.([", matchType: regex } ] } }\n`);
    const r = await runPlumb(['check-config', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/agent\.statsd\.maxSeries: /);
    expect(r.stderr).toMatch(/collector\.metrics\.mappings\[0\]\.match: not a valid regular expression/);
  });

  it('rejects a listen port above 65535 at validation, naming the key', async () => {
    // Ports 65536–99999 fit the host:port pattern; they must be refused by check-config,
    // not discovered when the listener is opened.
    const bad = await file('bad-port.yaml', `collector: { listen: "127.0.0.1:70000" }\nagent: { statsd: { listen: "127.0.0.1:99999" } }\n`);
    const r = await runPlumb(['check-config', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/collector\.listen: /);
    expect(r.stderr).toMatch(/agent\.statsd\.listen: /);
  });

  it('reports YAML syntax errors and unreadable files', async () => {
    const broken = await file('broken.yaml', 'agent:\n  statsd: [unclosed\n');
    const r1 = await runPlumb(['check-config', broken]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/YAML/);
    const r2 = await runPlumb(['check-config', join(dir, 'missing.yaml')]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('PLUMB_ERR_CONFIG_READ');
  });

  it('applies PLUMB_* overrides and reports bad ones by variable and key', async () => {
    const fixable = await file('fixable.yaml', 'agent:\n  statsd:\n    maxSeries: lots\n');
    const fixed = await runPlumb(['check-config', fixable], { env: { PLUMB_AGENT__STATSD__MAX_SERIES: '5000' } });
    expect(fixed.stderr).toBe('');
    expect(fixed.code).toBe(0);

    const good = await file('plain.yaml', '{}\n');
    const r = await runPlumb(['check-config', good], {
      env: { PLUMB_AGENT__STATSD__MAX_SERIES: 'lots', PLUMB_AGENT__STATSD__MAX_SERISE: '5', PLUMB_COLLECTOR__LISTEN: 'nowhere' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/agent\.statsd\.maxSeries: .*"lots"/);
    expect(r.stderr).toMatch(/PLUMB_AGENT__STATSD__MAX_SERISE: environment override names no configuration key/);
    expect(r.stderr).toMatch(/collector\.listen: .*"nowhere"/);
  });
});

describe('plumb statsd-parse', () => {
  const cases: [string, unknown][] = [
    ['page.views:1|c|#env:prod', { ok: true, metrics: [{ name: 'page.views', type: 'c', values: [1], sampleRate: 1, tags: ['env:prod'], timestamp: null, containerId: null }] }],
    ['temp:-3|g', { ok: true, metrics: [{ name: 'temp', type: 'g', values: [-3], delta: true, sampleRate: 1, tags: [], timestamp: null, containerId: null }] }],
    ['temp:+4.5|g|#room:b,floor:2', { ok: true, metrics: [{ name: 'temp', type: 'g', values: [4.5], delta: true, sampleRate: 1, tags: ['floor:2', 'room:b'], timestamp: null, containerId: null }] }],
    ['users:alice|s', { ok: true, metrics: [{ name: 'users', type: 's', values: ['alice'], sampleRate: 1, tags: [], timestamp: null, containerId: null }] }],
    ['users:42|s', { ok: true, metrics: [{ name: 'users', type: 's', values: ['42'], sampleRate: 1, tags: [], timestamp: null, containerId: null }] }],
    [
      'db.query:1.5:2:3|ms|@0.5|#db:orders,primary|T1700000000|c:abc123',
      { ok: true, metrics: [{ name: 'db.query', type: 'ms', values: [1.5, 2, 3], sampleRate: 0.5, tags: ['db:orders', 'primary'], timestamp: 1700000000, containerId: 'abc123' }] },
    ],
    ['api.requests,env=dev:1|c', { ok: true, metrics: [{ name: 'api.requests', type: 'c', values: [1], sampleRate: 1, tags: ['env:dev'], timestamp: null, containerId: null }] }],
    [
      '_e{6,13}:Deploy|web 1.2.3\\nok|d:1700000000|h:web-1|k:deploy-web|p:low|s:ci|t:success|#env:prod',
      {
        ok: true,
        event: { title: 'Deploy', text: 'web 1.2.3\nok', timestamp: 1700000000, hostname: 'web-1', aggregationKey: 'deploy-web', priority: 'low', sourceType: 'ci', alertType: 'success', tags: ['env:prod'] },
      },
    ],
    ['_e{2,2}:hi|yo', { ok: true, event: { title: 'hi', text: 'yo', timestamp: null, hostname: null, aggregationKey: null, priority: null, sourceType: null, alertType: null, tags: [] } }],
    [
      '_sc|db.reachable|2|d:1700000000|h:db-1|#env:prod|m:connection refused',
      { ok: true, serviceCheck: { name: 'db.reachable', status: 2, timestamp: 1700000000, hostname: 'db-1', tags: ['env:prod'], message: 'connection refused' } },
    ],
    ['_sc|db.reachable|0', { ok: true, serviceCheck: { name: 'db.reachable', status: 0, timestamp: null, hostname: null, tags: [], message: null } }],
  ];
  const errors = ['garbage', '', 'x:1|zz', 'x:abc|c', 'x:1|c|@2', ':1|c', '_e{5,3}:ab', '_sc|db|9'];

  it('writes one JSON object per input line, in order, with the contract shapes', async () => {
    const input = [...cases.map(([line]) => line), ...errors].join('\n') + '\n';
    const r = await runPlumb(['statsd-parse'], { input });
    expect(r.code).toBe(0);
    const out = r.stdout.split('\n');
    expect(out.pop()).toBe(''); // ends with a newline
    expect(out).toHaveLength(cases.length + errors.length);
    // the first example, byte for byte
    expect(out[0]).toBe('{"ok":true,"metrics":[{"name":"page.views","type":"c","values":[1],"sampleRate":1,"tags":["env:prod"],"timestamp":null,"containerId":null}]}');
    cases.forEach(([line, expected], i) => expect(JSON.parse(out[i]), line).toStrictEqual(expected));
    errors.forEach((line, k) => {
      const got = JSON.parse(out[cases.length + k]) as Record<string, unknown>;
      expect(Object.keys(got).sort(), JSON.stringify(line)).toEqual(['error', 'ok']);
      expect(got.ok).toBe(false);
      expect(got.error).toBeTypeOf('string');
      expect((got.error as string).length).toBeGreaterThan(0);
    });
    // an absolute gauge is not a delta
    const absolute = JSON.parse((await runPlumb(['statsd-parse'], { input: 'temp:7|g\n' })).stdout) as { metrics: { delta?: boolean; values: number[] }[] };
    expect(absolute.metrics[0].values).toEqual([7]);
    expect(absolute.metrics[0].delta ?? false).toBe(false);
  });

  it('keeps order and count over a large input (CRLF line ends too)', async () => {
    const n = 20_000;
    const input = Array.from({ length: n }, (_, i) => (i % 3 === 2 ? 'not a metric' : `m${i}:${i}|c`)).join('\r\n') + '\r\n';
    const r = await runPlumb(['statsd-parse'], { input });
    expect(r.code).toBe(0);
    const out = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { ok: boolean; metrics?: { name: string; values: number[] }[] });
    expect(out).toHaveLength(n);
    out.forEach((o, i) => {
      if (i % 3 === 2) expect(o.ok).toBe(false);
      else expect(o.metrics?.[0]).toMatchObject({ name: `m${i}`, values: [i] });
    });
  });

  it('reports a line that is not valid UTF-8 as an error, as the agent does', async () => {
    const input = Buffer.concat([Buffer.from('bad'), Buffer.from([0xff, 0xfe]), Buffer.from('.name:1|c\n'), Buffer.from('tag:1|c|#env:'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]);
    const r = await runPlumb(['statsd-parse'], { input });
    expect(r.code).toBe(0);
    const out = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as unknown);
    expect(out).toEqual([
      { ok: false, error: expect.stringMatching(/UTF-8/) },
      { ok: false, error: expect.stringMatching(/UTF-8/) },
    ]);
  });
});

describe('plumb all', () => {
  it('takes a statsd line over UDP to its /metrics within a flush, honours PLUMB_* overrides, exits 0 on SIGTERM', async () => {
    const [agentHttp, collectorPort, decoyPort, zipkinPort] = await freeTcpPorts(4);
    const statsdPort = await freeUdpPort();
    // a span receiver, where the agent has one, must not take its fixed default port
    const zipkin: Record<string, string> = configHasKey(['agent', 'traces', 'zipkin', 'listen']) ? { PLUMB_AGENT__TRACES__ZIPKIN__LISTEN: `127.0.0.1:${zipkinPort}` } : {};
    // The file points at a decoy port; the environment moves the collector and the agent's
    // target to the real one, so data only arrives if the overrides were applied.
    const config = await file(
      'all.yaml',
      `
agent:
  dataDir: ${JSON.stringify(join(dir, 'agent-data'))}
  http: { listen: "127.0.0.1:${agentHttp}" }
  statsd: { listen: "127.0.0.1:${statsdPort}", flushInterval: 200ms }
  forward: { collectors: ["http://127.0.0.1:${decoyPort}"], retryInitial: 50ms }
collector:
  dataDir: ${JSON.stringify(join(dir, 'collector-data'))}
  listen: "127.0.0.1:${decoyPort}"
log: { level: warn }
`,
    );
    const collectorUrl = `http://127.0.0.1:${collectorPort}`;
    const plumb = startPlumb(['all', '--config', config], {
      env: { PLUMB_COLLECTOR__LISTEN: `127.0.0.1:${collectorPort}`, PLUMB_AGENT__FORWARD__COLLECTORS: `["${collectorUrl}"]`, ...zipkin },
    });
    try {
      await waitForHealthy(collectorUrl);
      await waitFor(
        async () => {
          if (plumb.exit) throw new Error(`plumb all exited: ${plumb.stderr()}`);
          return (await fetch(`http://127.0.0.1:${agentHttp}/readyz`)).status === 200;
        },
        { timeoutMs: 15_000, intervalMs: 50, what: 'the agent to be ready' },
      );

      const socket = dgram.createSocket('udp4');
      try {
        await new Promise<void>((resolve, reject) => socket.send('deploys:1|c|#env:prod', statsdPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
      } finally {
        socket.close();
      }
      const text = await waitFor(
        async () => {
          const t = await scrapeText(collectorUrl);
          expect(t.split('\n')).toContain('deploys_total{env="prod"} 1');
          return t;
        },
        { what: 'deploys_total{env="prod"} 1 on /metrics' },
      );
      if (PROMTOOL !== null) {
        const lint = await promtoolCheckMetrics(text);
        expect(lint.output).toBe('');
        expect(lint.code).toBe(0);
      }
    } finally {
      const exit = await stopProcess(plumb, 'SIGTERM');
      expect(exit, plumb.stderr()).toEqual({ code: 0, signal: null });
    }
  });

  it('tails a file into its own collector with one parser thread fewer than cores (at least one), every line once', async () => {
    const [agentHttp, collectorPort] = await freeTcpPorts(2);
    const log = join(dir, 'all-tail.log');
    await writeFile(log, Array.from({ length: 3000 }, (_, i) => `line ${i + 1}\n`).join(''));
    const config = await file(
      'all-tail.yaml',
      `
agent:
  dataDir: ${JSON.stringify(join(dir, 'tail-agent-data'))}
  http: { listen: "127.0.0.1:${agentHttp}" }
  statsd: { enabled: false }
  traces: { zipkin: { enabled: false } }
  forward: { collectors: ["http://127.0.0.1:${collectorPort}"] }
  logs:
    - path: ${JSON.stringify(log)}
collector:
  dataDir: ${JSON.stringify(join(dir, 'tail-collector-data'))}
  listen: "127.0.0.1:${collectorPort}"
log: { level: warn }
`,
    );
    const plumb = startPlumb(['all', '--config', config]);
    try {
      const collectorUrl = `http://127.0.0.1:${collectorPort}`;
      await waitForHealthy(collectorUrl);
      const text = await waitFor(
        async () => {
          if (plumb.exit) throw new Error(`plumb all exited: ${plumb.stderr()}`);
          const t = await scrapeText(`http://127.0.0.1:${agentHttp}`);
          expect(t).toMatch(/^plumb_logs_events_total\{outcome="parsed"\} 3000$/m);
          return t;
        },
        { timeoutMs: 30_000, what: '3000 lines parsed' },
      );
      expect(text).toMatch(new RegExp(`^plumb_logs_parser_threads ${Math.max(1, availableParallelism() - 1)}$`, 'm'));
      await waitFor(
        async () => expect(await scrapeText(collectorUrl)).toMatch(/^plumb_ingest_log_events_total\{outcome="accepted"\} 3000$/m),
        { timeoutMs: 30_000, what: '3000 events accepted by the collector' },
      );
    } finally {
      const exit = await stopProcess(plumb, 'SIGTERM');
      expect(exit, plumb.stderr()).toEqual({ code: 0, signal: null });
    }
  });

  it('says ready on /readyz only once the Zipkin receiver accepts too', async () => {
    const [agentHttp, collectorPort, zipkinPort] = await freeTcpPorts(3);
    const statsdPort = await freeUdpPort();
    const config = await file(
      'all-ready.yaml',
      `
agent:
  dataDir: ${JSON.stringify(join(dir, 'ready-agent-data'))}
  http: { listen: "127.0.0.1:${agentHttp}" }
  statsd: { listen: "127.0.0.1:${statsdPort}" }
  traces: { zipkin: { listen: "127.0.0.1:${zipkinPort}" } }
  forward: { collectors: ["http://127.0.0.1:${collectorPort}"] }
collector:
  dataDir: ${JSON.stringify(join(dir, 'ready-collector-data'))}
  listen: "127.0.0.1:${collectorPort}"
log: { level: warn }
`,
    );
    const plumb = startPlumb(['all', '--config', config]);
    try {
      let before = 0;
      await waitFor(
        async () => {
          if (plumb.exit) throw new Error(`plumb all exited: ${plumb.stderr()}`);
          const res = await fetch(`http://127.0.0.1:${collectorPort}/readyz`).catch(() => null);
          if (res?.status === 503) before++;
          return res?.status === 200;
        },
        { timeoutMs: 15_000, intervalMs: 2, what: '/readyz to answer 200' },
      );
      // the moment it says ready, a Zipkin client is served
      const spans = await fetch(`http://127.0.0.1:${zipkinPort}/api/v2/spans`, { method: 'POST', body: '[]', headers: { 'content-type': 'application/json' } });
      expect(spans.status).toBe(202);
      expect(before, 'the collector listened, and said not ready, before the agent was up').toBeGreaterThan(0);
    } finally {
      await stopProcess(plumb, 'SIGTERM');
    }
  });

  it('refuses to start on a bad PLUMB_* override: exit 1 naming the key, nothing left listening', async () => {
    const [collectorPort] = await freeTcpPorts(1);
    const config = await file('all-bad-env.yaml', `collector: { listen: "127.0.0.1:${collectorPort}" }\nlog: { level: warn }\n`);
    const plumb = startPlumb(['all', '--config', config], { env: { PLUMB_AGENT__STATSD__FLUSH_INTERVAL: 'soon' } });
    const exit = await waitFor(() => plumb.exit, { timeoutMs: 15_000, what: 'plumb all to exit' });
    expect(exit.code).toBe(1);
    expect(plumb.stderr()).toMatch(/agent\.statsd\.flushInterval: .*"soon"/);
    await expect(fetch(`http://127.0.0.1:${collectorPort}/healthz`)).rejects.toThrow();
  });
});

/** Every process below pid, from /proc. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSyncNow(`/proc/${name}/stat`, 'utf8');
      // the command name may hold spaces and parentheses: fields start after the last ')'
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(fields[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  for (const [child] of parent) {
    for (let p = parent.get(child); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === pid) {
        out.push(child);
        break;
      }
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm start', () => {
  it('stopped with SIGTERM, leaves no plumb process behind', async () => {
    const [agentHttp, collectorPort, zipkinPort] = await freeTcpPorts(3);
    const statsdPort = await freeUdpPort();
    const config = await file(
      'npm-start.yaml',
      `
agent:
  dataDir: ${JSON.stringify(join(dir, 'npm-agent-data'))}
  http: { listen: "127.0.0.1:${agentHttp}" }
  statsd: { listen: "127.0.0.1:${statsdPort}" }
  traces: { zipkin: { listen: "127.0.0.1:${zipkinPort}" } }
  forward: { collectors: ["http://127.0.0.1:${collectorPort}"] }
  host: { enabled: false }
collector:
  dataDir: ${JSON.stringify(join(dir, 'npm-collector-data'))}
  listen: "127.0.0.1:${collectorPort}"
log: { level: warn }
`,
    );
    const npm = spawnTracked('npm', ['start', '--silent', '--', '--config', config], { cwd: REPO_ROOT, env: cleanEnv() });
    await waitFor(
      async () => {
        if (npm.exit) throw new Error(`npm start exited: ${npm.stderr()}`);
        return (await fetch(`http://127.0.0.1:${collectorPort}/readyz`).catch(() => null))?.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'plumb under npm start to be ready' },
    );
    const below = descendants(npm.child.pid!);
    expect(below.length).toBeGreaterThan(0);
    npm.child.kill('SIGTERM');
    await waitFor(() => npm.exit, { timeoutMs: 20_000, what: 'npm to exit' });
    await waitFor(() => below.every((pid) => !alive(pid)), { timeoutMs: 20_000, what: `every process npm started (${below.join(', ')}) to be gone` });
    await expect(fetch(`http://127.0.0.1:${collectorPort}/healthz`)).rejects.toThrow();
  });
});
