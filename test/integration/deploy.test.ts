/**
 * deploy/ against the real things: `plumb check-config` on every plumb config deploy/ ships,
 * promtool on the alert rules (and their unit tests), the scrape configs and every dashboard
 * query, amtool, docker-compose, systemd-analyze and kubectl where they are installed; and the
 * compose stack's own plumb configs run as real agent and collector processes, fed by the demo
 * app, so every metric name a dashboard or rule uses is checked against what plumb really
 * exposes, and (with Prometheus installed) every dashboard panel is checked to show data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { NODE_BIN, REPO_ROOT, cleanEnv, runPlumb, spawnTracked, startPlumb, stopAllProcesses, stopProcess, waitForHealthy, type TrackedProcess } from '../helpers/processes.ts';
import { PROMETHEUS, PROMTOOL, findBinary, scrapeText, startPrometheus, type PrometheusUnderTest } from '../helpers/prometheus.ts';
import { freeTcpPorts, freeUdpPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { startZipkinServer, type ZipkinTestServer } from '../helpers/zipkin-server.ts';
import { renderChart } from '../helpers/render-chart.ts';
import { dashboardQueries, selectedNames, substituteVariables } from '../unit/deploy/promql.ts';

const DEPLOY = join(REPO_ROOT, 'deploy');
const AMTOOL = findBinary('amtool');
const DOCKER_COMPOSE = findBinary('docker-compose');
const SYSTEMD_ANALYZE = findBinary('systemd-analyze');
const KUBECTL = findBinary('kubectl');

const DASHBOARD_FILES = ['plumb-pipeline.json', 'plumb-host.json', 'plumb-statsd.json'];
const dashboards = DASHBOARD_FILES.map((f) => ({ file: f, d: JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'dashboards', f), 'utf8')) as Parameters<typeof dashboardQueries>[0] }));

/** The statsd names the demo app sends, as the collector exposes them; the starter's variables pick these. */
const DEMO = { counter: 'shop_checkout_requests_total', timer: 'shop_checkout_latency', gauge: 'shop_queue_depth' };

let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'plumb-deploy-'));
});
afterAll(async () => {
  await stopAllProcesses();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface ComposeFile {
  services: Record<string, { volumes?: string[] }>;
}
const compose = YAML.parse(readFileSync(join(DEPLOY, 'compose', 'docker-compose.yml'), 'utf8'), { merge: true }) as ComposeFile;

/** Where a compose service's container path comes from in this repository. */
/** The stack's token as the compose token service leaves it in the plumb-token volume. */
async function composeToken(): Promise<string> {
  const file = join(tmp, 'compose-token');
  await writeFile(file, 'a-token-the-token-service-made');
  return file;
}

function composeMount(service: string, containerPath: string): string {
  for (const v of compose.services[service].volumes ?? []) {
    const [src, dst] = v.split(':');
    if (dst === containerPath && src.startsWith('.')) return resolve(DEPLOY, 'compose', src);
  }
  throw new Error(`compose service ${service} mounts nothing at ${containerPath}`);
}

async function run(cmd: string, args: string[], cwd = REPO_ROOT): Promise<{ code: number | null; output: string }> {
  const p = spawnTracked(cmd, args, { cwd });
  p.child.stdin?.end();
  const exit = await p.exited;
  return { code: exit.code, output: `${p.stdout()}${p.stderr()}`.trim() };
}

describe('every plumb config deploy/ ships passes plumb check-config', () => {
  it('image, compose, systemd, Kubernetes ConfigMaps and the Helm chart\'s rendered defaults', async () => {
    const configMapFile = async (name: string, text: string): Promise<string> => {
      const file = join(tmp, `${name}.yaml`);
      await writeFile(file, text);
      return file;
    };
    const k8sConfigMaps = ['agent-configmap.yaml', 'collector-configmap.yaml'].map((f) => YAML.parse(readFileSync(join(DEPLOY, 'kubernetes', f), 'utf8')) as { metadata: { name: string }; data: Record<string, string> });
    const chart = renderChart(join(DEPLOY, 'helm', 'plumb'), { releaseName: 'plumb', namespace: 'plumb', values: { token: { value: 'install-time-token' } } }).documents.filter((d) => d.object.kind === 'ConfigMap');
    expect(chart).toHaveLength(2);
    const composeRules = composeMount('collector', '/etc/plumb/rules.yaml');
    const configs: { what: string; file: string; env?: Record<string, string> }[] = [
      { what: 'image', file: join(DEPLOY, 'docker', 'plumb.yaml') },
      { what: 'compose agent', file: join(DEPLOY, 'compose', 'plumb', 'agent.yaml') },
      // the rule file as the container sees it (compose mounts it there)
      { what: 'compose collector', file: join(DEPLOY, 'compose', 'plumb', 'collector.yaml'), env: { PLUMB_COLLECTOR__ALERTS__RULES_FILE: composeRules } },
      { what: 'systemd agent', file: join(DEPLOY, 'systemd', 'agent.yaml') },
      { what: 'systemd collector', file: join(DEPLOY, 'systemd', 'collector.yaml') },
      ...(await Promise.all(k8sConfigMaps.map(async (cm) => ({ what: `kubernetes ConfigMap ${cm.metadata.name}`, file: await configMapFile(`k8s-${cm.metadata.name}`, cm.data['plumb.yaml']) })))),
      ...(await Promise.all(
        chart.map(async (d) => {
          const cm = d.object as { metadata: { name: string }; data: Record<string, string> };
          return { what: `helm ConfigMap ${cm.metadata.name}`, file: await configMapFile(`helm-${cm.metadata.name}`, cm.data['plumb.yaml']) };
        }),
      )),
    ];
    // --offline: these configs name token files of the machines they are for
    const results = await Promise.all(configs.map(async (c) => ({ c, r: await runPlumb(['check-config', '--offline', c.file], { env: c.env }) })));
    for (const { c, r } of results) {
      expect(r.code, `${c.what} (${c.file}): ${r.stderr}`).toBe(0);
      expect(r.stdout).toBe(`${c.file}: ok\n`);
    }
    // the same door refuses a broken file, so the passes above mean something
    const broken = await configMapFile('broken', k8sConfigMaps[0].data['plumb.yaml'].replace('statsd:', 'statsdd:'));
    const bad = await runPlumb(['check-config', broken]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/agent\.statsdd: unknown key/);
  });

  it('the compose collector\'s alert rule file is valid on its own', async () => {
    const rules = composeMount('collector', '/etc/plumb/rules.yaml');
    const file = join(tmp, 'rules-only.yaml');
    await writeFile(file, `collector:\n  alerts:\n    rulesFile: ${JSON.stringify(rules)}\n`);
    const r = await runPlumb(['check-config', file]);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe.skipIf(PROMTOOL === null)('promtool', () => {
  const promtool = PROMTOOL!;

  it('check rules: plumb\'s own alerting rules', async () => {
    const r = await run(promtool, ['check', 'rules', join(DEPLOY, 'prometheus', 'plumb-alerts.yml')]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('test rules: the rules fire and stay quiet as their unit tests say', async () => {
    const r = await run(promtool, ['test', 'rules', 'plumb-alerts.test.yml'], join(DEPLOY, 'prometheus'));
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/SUCCESS/);
  });

  it('check config: the compose Prometheus, with the rule file it mounts', async () => {
    const config = YAML.parse(readFileSync(join(DEPLOY, 'compose', 'prometheus', 'prometheus.yml'), 'utf8')) as { rule_files: string[] };
    config.rule_files = config.rule_files.map((f) => composeMount('prometheus', f));
    const file = join(tmp, 'compose-prometheus.yml');
    await writeFile(file, YAML.stringify(config));
    const r = await run(promtool, ['check', 'config', file]);
    expect(r.code, r.output).toBe(0);
  });

  it('check config: the Kubernetes scrape jobs (relabelling checked; discovery swapped for static targets)', async () => {
    // Debian's promtool is built without Kubernetes service discovery, so the sd section is
    // replaced; the relabel rules, job names and the rest are checked as written.
    const config = YAML.parse(readFileSync(join(DEPLOY, 'prometheus', 'kubernetes-scrape.yml'), 'utf8')) as { rule_files: string[]; scrape_configs: Record<string, unknown>[] };
    expect(config.scrape_configs.map((j) => j.job_name)).toEqual(['plumb-agent', 'plumb-collector']);
    for (const job of config.scrape_configs) {
      expect(job.kubernetes_sd_configs).toEqual([{ role: 'pod' }]);
      delete job.kubernetes_sd_configs;
      job.static_configs = [{ targets: ['127.0.0.1:1'] }];
    }
    config.rule_files = config.rule_files.map((f) => join(DEPLOY, 'prometheus', f));
    const file = join(tmp, 'k8s-prometheus.yml');
    await writeFile(file, YAML.stringify(config));
    const r = await run(promtool, ['check', 'config', file]);
    expect(r.code, r.output).toBe(0);
  });

  it('every dashboard query is valid PromQL', async () => {
    const rules: { record: string; expr: string }[] = [];
    for (const { file, d } of dashboards) {
      for (const q of dashboardQueries(d)) {
        const expr = substituteVariables(q.expr, { agent_job: 'plumb-agent', collector_job: 'plumb-collector', host: '.+', quantile: '0.5|0.99', ...DEMO });
        if (expr.trim() !== '') rules.push({ record: `dashboard:${file.replace(/\W/g, '_')}:${rules.length}`, expr });
      }
    }
    expect(rules.length).toBeGreaterThan(80);
    const file = join(tmp, 'dashboard-queries.yml');
    await writeFile(file, YAML.stringify({ groups: [{ name: 'dashboards', rules }] }));
    const r = await run(promtool, ['check', 'rules', file]);
    expect(r.code, r.output).toBe(0);
  });
});

describe.skipIf(AMTOOL === null)('amtool', () => {
  it('check-config: the compose Alertmanager', async () => {
    const r = await run(AMTOOL!, ['check-config', join(DEPLOY, 'compose', 'alertmanager', 'alertmanager.yml')]);
    expect(r.code, r.output).toBe(0);
  });
});

describe.skipIf(DOCKER_COMPOSE === null)('docker-compose', () => {
  it('config: the compose file is valid against the Compose schema', async () => {
    const r = await run(DOCKER_COMPOSE!, ['-f', join(DEPLOY, 'compose', 'docker-compose.yml'), 'config', '-q']);
    expect(r.code, r.output).toBe(0);
  });
});

describe.skipIf(SYSTEMD_ANALYZE === null)('systemd-analyze', () => {
  it('verify: both units parse with no unknown or misplaced directive', async () => {
    const units = ['plumb-agent.service', 'plumb-collector.service'];
    const r = await run(SYSTEMD_ANALYZE!, ['verify', '--man=no', ...units], join(DEPLOY, 'systemd'));
    // plumb itself is not installed here; that is the one complaint allowed about our units.
    // verify also loads the machine's installed units (Debian's carbon-cache.service, which the
    // metric sink tests need, still says StandardOutput=syslog): what it says of those is not ours.
    const problems = r.output
      .split('\n')
      .filter((l) => l.trim() !== '' && !/Command \/usr\/local\/bin\/plumb is not executable/.test(l) && !/^\/(usr\/)?lib\/systemd\/system\//.test(l));
    expect(problems).toEqual([]);
  });
});

describe.skipIf(KUBECTL === null)('kubectl', () => {
  it('kustomize: builds deploy/kubernetes offline into the same objects', async () => {
    // the token file the operator writes first (git ignores it)
    const dir = join(tmp, 'kustomize');
    await cp(join(DEPLOY, 'kubernetes'), dir, { recursive: true });
    await writeFile(join(dir, 'token'), 'operator-token');
    const r = await run(KUBECTL!, ['kustomize', dir]);
    expect(r.code, r.output).toBe(0);
    const built = YAML.parseAllDocuments(r.output).map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string } });
    expect(built.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/plumb-agent',
      'ClusterRoleBinding/plumb-agent',
      'ConfigMap/plumb-agent',
      'ConfigMap/plumb-collector',
      'DaemonSet/plumb-agent',
      'Namespace/plumb',
      'PodDisruptionBudget/plumb-collector',
      'Secret/plumb-token',
      'Service/plumb-collector',
      'Service/plumb-collector-headless',
      'ServiceAccount/plumb-agent',
      'ServiceAccount/plumb-collector',
      'StatefulSet/plumb-collector',
    ]);
  });
});

describe('the image\'s runtime layout, without Docker', () => {
  it('dist/ + config/ + package.json run as the image runs them, importing production dependencies only', async () => {
    // What the runtime stage holds: the build's dist/ (emitted here without type checking,
    // which `npm run build` and `npm run typecheck` do), config/, package.json, node_modules.
    const app = join(tmp, 'app');
    const tsc = await run(NODE_BIN, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json', '--outDir', join(app, 'dist'), '--noCheck', '--sourceMap', 'false']);
    expect(tsc.code, tsc.output).toBe(0);
    await cp(join(REPO_ROOT, 'config'), join(app, 'config'), { recursive: true });
    await cp(join(REPO_ROOT, 'package.json'), join(app, 'package.json'));
    await symlink(join(REPO_ROOT, 'node_modules'), join(app, 'node_modules'));

    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string; bin: { plumb: string }; dependencies: Record<string, string> };
    const entry = join(app, pkg.bin.plumb);
    const version = await run(NODE_BIN, [entry, '--version'], tmp);
    expect(version.output).toBe(`plumb ${pkg.version}`);
    const check = await run(NODE_BIN, [entry, 'check-config', '--offline', join(DEPLOY, 'docker', 'plumb.yaml')], tmp);
    expect(check.code, check.output).toBe(0);
    // the grok pattern library is found from dist/ (config/patterns beside it)
    const grok = spawnTracked(NODE_BIN, [entry, 'grok', '--pattern', '%{IPV4:ip} %{WORD:verb}'], { cwd: tmp });
    grok.child.stdin?.end('10.0.0.1 GET\n');
    expect((await grok.exited).code, grok.stderr()).toBe(0);
    expect(JSON.parse(grok.stdout())).toEqual({ match: true, fields: { ip: '10.0.0.1', verb: 'GET' } });

    // every package dist/ imports is a production dependency (the image has no others)
    const imported = new Set<string>();
    const walk = async (dir: string): Promise<void> => {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) await walk(p);
        else if (e.name.endsWith('.js')) {
          for (const m of (await readFile(p, 'utf8')).matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)['"]((?:@[\w.-]+\/)?[\w-][\w.-]*(?:\/[\w./-]+)?|node:[\w/]+)['"]/g)) {
            if (m[1].startsWith('node:')) continue;
            imported.add(m[1].startsWith('@') ? m[1].split('/').slice(0, 2).join('/') : m[1].split('/')[0]);
          }
        }
      }
    };
    await walk(join(app, 'dist'));
    expect(imported.size).toBeGreaterThan(5);
    expect([...imported].filter((i) => !(i in pkg.dependencies))).toEqual([]);
  });
});

// ---------------- the compose configs, run for real ----------------

/**
 * Metric names in an exposition: `samples`, the series present now, and `offered`, those plus
 * every series name of each declared family (a histogram's _bucket/_sum/_count, a summary's
 * _sum/_count) — a labelled counter nobody incremented yet is declared but has no sample.
 * Values are not read: prom-client writes an empty summary's NaN as "Nan", which Prometheus
 * accepts (its float parser ignores case) and the strict test parser does not.
 */
function exposedNames(text: string): { samples: Set<string>; offered: Set<string> } {
  const samples = new Set<string>();
  const offered = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      offered.add(type[1]);
      if (type[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) offered.add(type[1] + s);
      if (type[2] === 'summary') for (const s of ['_sum', '_count']) offered.add(type[1] + s);
      continue;
    }
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (name) {
      samples.add(name[0]);
      offered.add(name[0]);
    }
  }
  return { samples, offered };
}

/** Metrics Prometheus makes itself for every target. */
const PROMETHEUS_SYNTHETIC = new Set(['up']);

describe('the compose stack\'s agent and collector, fed by the demo app', () => {
  let zipkin: ZipkinTestServer;
  let collectorUrl = '';
  let agentUrl = '';
  let agentAddress = '';
  let collectorAddress = '';
  let demo: TrackedProcess;
  let agentNames: Set<string>;
  let collectorNames: Set<string>;

  beforeAll(async () => {
    zipkin = await startZipkinServer();
    const [collectorPort, agentHttpPort, agentZipkinPort, closedPort, otlpHttpPort, otlpGrpcPort] = await freeTcpPorts(6);
    const statsdPort = await freeUdpPort();
    collectorAddress = `127.0.0.1:${collectorPort}`;
    agentAddress = `127.0.0.1:${agentHttpPort}`;
    collectorUrl = `http://${collectorAddress}`;
    agentUrl = `http://${agentAddress}`;
    const token = await composeToken();
    // The files as shipped; only what names the compose network or a fixed port is overridden.
    const collector = startPlumb(['collector', '--config', join(DEPLOY, 'compose', 'plumb', 'collector.yaml')], {
      env: {
        PLUMB_COLLECTOR__LISTEN: collectorAddress,
        PLUMB_COLLECTOR__DATA_DIR: join(tmp, 'collector'),
        PLUMB_COLLECTOR__ALERTS__RULES_FILE: composeMount('collector', '/etc/plumb/rules.yaml'),
        // the stack's token; the agent below sends the same file
        PLUMB_COLLECTOR__AUTH__TOKEN_FILE: token,
        PLUMB_COLLECTOR__ALERTS__ALERTMANAGER__URLS: `["http://127.0.0.1:${closedPort}"]`,
        PLUMB_COLLECTOR__TRACES__ZIPKIN__URL: zipkin.url,
        PLUMB_TELEMETRY__TRACING__ZIPKIN: zipkin.url,
        PLUMB_LOG__LEVEL: 'warn',
      },
    });
    await waitForHealthy(collectorUrl).catch((err: Error) => {
      throw new Error(`${err.message}\ncollector stderr:\n${collector.stderr()}`);
    });
    // the shipped agent file with its log input pointed at where the demo app writes here
    const logDir = join(tmp, 'shop-logs');
    await mkdir(logDir);
    const agentYaml = YAML.parseDocument(readFileSync(join(DEPLOY, 'compose', 'plumb', 'agent.yaml'), 'utf8'));
    expect(agentYaml.getIn(['agent', 'logs', 0, 'path'])).toBe('/var/log/shop/*.log');
    agentYaml.setIn(['agent', 'logs', 0, 'path'], join(logDir, '*.log'));
    const agentFile = join(tmp, 'compose-agent.yaml');
    await writeFile(agentFile, agentYaml.toString());
    const agent = startPlumb(['agent', '--config', agentFile], {
      env: {
        PLUMB_AGENT__HOSTNAME: 'deploy-test-host',
        PLUMB_AGENT__DATA_DIR: join(tmp, 'agent'),
        PLUMB_AGENT__STATSD__LISTEN: `127.0.0.1:${statsdPort}`,
        PLUMB_AGENT__STATSD__FLUSH_INTERVAL: '1s',
        PLUMB_AGENT__HTTP__LISTEN: agentAddress,
        PLUMB_AGENT__TRACES__ZIPKIN__LISTEN: `127.0.0.1:${agentZipkinPort}`,
        PLUMB_AGENT__OTLP__HTTP__LISTEN: `127.0.0.1:${otlpHttpPort}`,
        PLUMB_AGENT__OTLP__GRPC__LISTEN: `127.0.0.1:${otlpGrpcPort}`,
        PLUMB_AGENT__FORWARD__COLLECTORS: `["${collectorUrl}"]`,
        PLUMB_AGENT__FORWARD__AUTH__TOKEN_FILE: token,
        PLUMB_AGENT__HOST__HOST_PROC: '/proc',
        PLUMB_AGENT__HOST__INTERVAL: '1s',
        PLUMB_TELEMETRY__TRACING__ZIPKIN: zipkin.url,
        PLUMB_LOG__LEVEL: 'warn',
      },
    });
    await waitForHealthy(agentUrl).catch((err: Error) => {
      throw new Error(`${err.message}\nagent stderr:\n${agent.stderr()}`);
    });
    demo = spawnTracked(NODE_BIN, [join(DEPLOY, 'compose', 'demo', 'app.ts')], {
      cwd: tmp,
      env: cleanEnv({ STATSD_HOST: '127.0.0.1', STATSD_PORT: String(statsdPort), ZIPKIN_URL: `http://127.0.0.1:${agentZipkinPort}/api/v2/spans`, LOG_DIR: logDir }),
    });
    // until the demo's metrics, its spans' RED metrics, a service check, delta host metrics
    // (second collection), the Zipkin sink's counters and its parsed log events have all
    // reached the collector
    const wanted = [`${DEMO.counter}`, DEMO.timer, DEMO.gauge, 'service_check_status', 'traces_spanmetrics_calls_total', 'system_cpu_user', 'system_net_packets_in_error_total', 'plumb_sink_events_total', 'plumb_ingest_log_events_total'];
    await waitFor(
      async () => {
        if (demo.exit) throw new Error(`demo app exited: ${demo.stderr()}`);
        const names = exposedNames(await scrapeText(collectorUrl)).samples;
        for (const n of exposedNames(await scrapeText(agentUrl)).samples) if (n === 'plumb_logs_events_total') names.add(n);
        const missing = [...wanted, 'plumb_logs_events_total'].filter((n) => !names.has(n));
        if (missing.length > 0) throw new Error(`not yet on the collector: ${missing.join(', ')}`);
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the demo app\'s data on the collector' },
    );
    agentNames = exposedNames(await scrapeText(agentUrl)).offered;
    collectorNames = exposedNames(await scrapeText(collectorUrl)).offered;
  });

  afterAll(async () => {
    if (demo) await stopProcess(demo);
    await stopAllProcesses();
    await zipkin?.stop();
  });

  it('serves the probe and scrape paths the manifests use on both roles', async () => {
    for (const base of [agentUrl, collectorUrl]) {
      for (const path of ['/healthz', '/readyz', '/metrics']) expect((await fetch(`${base}${path}`)).status, `${base}${path}`).toBe(200);
    }
    // while ingest needs the demo token the agent sends
    expect((await fetch(`${collectorUrl}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(401);
  });

  it('every metric a dashboard queries is one plumb exposes', () => {
    const exposed = new Set([...agentNames, ...collectorNames, ...PROMETHEUS_SYNTHETIC]);
    const unknown: string[] = [];
    let checked = 0;
    for (const { file, d } of dashboards) {
      for (const q of dashboardQueries(d)) {
        const { names, templated } = selectedNames(q.expr);
        // the starter's variables, set to what the demo app sends
        const resolved = [...templated].map((t) => t.replace(/\$\{?(\w+)\}?/g, (_m, v: string) => (DEMO as Record<string, string>)[v] ?? `$${v}`));
        for (const n of [...names, ...resolved]) {
          checked++;
          if (!exposed.has(n)) unknown.push(`${file} ${q.where}: ${n}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(unknown).toEqual([]);
  });

  it('every metric plumb\'s Prometheus rules use is one plumb exposes', () => {
    const exposed = new Set([...agentNames, ...collectorNames, ...PROMETHEUS_SYNTHETIC]);
    const rules = YAML.parse(readFileSync(join(DEPLOY, 'prometheus', 'plumb-alerts.yml'), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const unknown = rules.groups.flatMap((g) => g.rules.flatMap((r) => [...selectedNames(r.expr).names].filter((n) => !exposed.has(n)).map((n) => `${r.alert}: ${n}`)));
    expect(unknown).toEqual([]);
  });

  it('agent self-metrics are on the agent\'s /metrics and the collector\'s on its own', () => {
    const agent = agentNames;
    const collector = collectorNames;
    expect(agent.has('plumb_statsd_lines_total')).toBe(true);
    expect(agent.has('plumb_forward_batches_total')).toBe(true);
    expect(collector.has('plumb_statsd_lines_total')).toBe(false);
    expect(collector.has('plumb_ingest_batches_total')).toBe(true);
    expect(collector.has('system_cpu_user')).toBe(true);
  });

  it('the image\'s HEALTHCHECK command passes on a healthy role and fails when nothing answers', async () => {
    const dockerfile = readFileSync(join(DEPLOY, 'docker', 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
    const cmd = JSON.parse(/^HEALTHCHECK .*? CMD (\[.*\])$/m.exec(dockerfile)![1]) as string[];
    expect(cmd.slice(0, 2)).toEqual(['node', '-e']);
    const check = async (urls: string) => {
      const p = spawnTracked(NODE_BIN, ['-e', cmd[2]], { cwd: tmp, env: cleanEnv({ HEALTHCHECK_URLS: urls }) });
      p.child.stdin?.end();
      return (await p.exited).code;
    };
    const [closed] = await freeTcpPorts(1);
    expect(await check(`http://127.0.0.1:${closed}/healthz ${agentUrl}/healthz`)).toBe(0);
    expect(await check(`${collectorUrl}/healthz`)).toBe(0);
    expect(await check(`http://127.0.0.1:${closed}/healthz`)).toBe(1);
    expect(await check(`${collectorUrl}/no-such-path`)).toBe(1);
  });

  describe.skipIf(PROMETHEUS === null)('dashboards on a real Prometheus scraping both roles', () => {
    let prom: PrometheusUnderTest;

    beforeAll(async () => {
      prom = await startPrometheus({ targets: [agentAddress, collectorAddress], scrapeInterval: '1s' });
    });
    afterAll(async () => {
      await prom?.stop();
    });

    /** Panels that are empty while nothing goes wrong. */
    const QUIET = new Set([
      'plumb-pipeline.json/statsd lines rejected',
      'plumb-pipeline.json/statsd drops',
      'plumb-pipeline.json/Retries',
      'plumb-pipeline.json/Drops',
      'plumb-pipeline.json/Requests refused',
      'plumb-pipeline.json/Sink retries',
      'plumb-pipeline.json/Log problems',
      'plumb-statsd.json/Errors by service',
      'plumb-statsd.json/Metrics refused by the collector',
      'plumb-statsd.json/Series limit drops (agent)',
    ]);

    it('every panel query runs, and every panel that should show data does', async () => {
      // startPrometheus scrapes both targets as one job, "plumb"
      const vars = { agent_job: 'plumb', collector_job: 'plumb', host: '.+', quantile: '0.5|0.99', ...DEMO };
      const panels: { key: string; exprs: string[] }[] = [];
      for (const { file, d } of dashboards) {
        const byPanel = new Map<string, string[]>();
        for (const q of dashboardQueries(d)) {
          if (!q.where.startsWith('panel')) continue;
          const title = /^panel "(.*)" target/.exec(q.where)![1];
          byPanel.set(title, [...(byPanel.get(title) ?? []), substituteVariables(q.expr, vars)]);
        }
        for (const [title, exprs] of byPanel) panels.push({ key: `${file}/${title.replace(/\$(\w+)/g, (_m, v: string) => (vars as Record<string, string>)[v])}`, exprs });
      }
      for (const q of QUIET) expect(panels.map((p) => p.key), `${q} is a panel`).toContain(q);
      await waitFor(
        async () => {
          const empty: string[] = [];
          for (const p of panels) {
            // query() throws on a PromQL error: that fails at the deadline with the message
            const results = await Promise.all(p.exprs.map((e) => prom.query(e)));
            if (!QUIET.has(p.key) && results.every((r) => r.length === 0)) empty.push(p.key);
          }
          if (empty.length > 0) throw new Error(`panels without data: ${empty.join('; ')}`);
          return true;
        },
        { timeoutMs: 30_000, intervalMs: 500, what: 'every dashboard panel to show data' },
      );
    });
  });
});
