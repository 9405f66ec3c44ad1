/**
 * The image, the compose stack, the systemd units, the Grafana dashboards and the Kibana
 * objects, read as files: each holds what an operator relies on and agrees with plumb's
 * defaults and with the other pieces. (Running them with the real tools is
 * test/integration/deploy.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import picomatch from 'picomatch';
import { loadPlumbConfig } from '../../../cli/config.ts';
import { parseListen } from '../../../shared/address.ts';
import { dashboardQueries, selectedNames } from './promql.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DEPLOY = join(ROOT, 'deploy');
const read = (...p: string[]) => readFileSync(join(DEPLOY, ...p), 'utf8');
const DEFAULTS = loadPlumbConfig({ text: '{}', env: {} });
const port = (listen: string) => parseListen(listen).port;

// ---------------- Dockerfile ----------------

interface Stage {
  from: string;
  name: string | undefined;
  lines: string[];
}

/** Dockerfile instructions (continuation lines joined, comments dropped), grouped by stage. */
function dockerStages(text: string): { args: Map<string, string>; stages: Stage[] } {
  const instructions = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins);
    if (from) {
      stages.push({ from: from[1].replace(/\$\{(\w+)\}/g, (_m, a: string) => args.get(a) ?? `<${a}>`), name: from[2], lines: [] });
    } else if (stages.length === 0) {
      const arg = /^ARG\s+(\w+)=(\S+)$/.exec(ins);
      if (arg) args.set(arg[1], arg[2]);
    } else {
      stages[stages.length - 1].lines.push(ins);
    }
  }
  return { args, stages };
}

/** Patterns of a .dockerignore, in order. */
function ignorePatterns(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Whether the build context keeps `path` under these .dockerignore patterns (last match wins). */
function kept(patterns: string[], path: string): boolean {
  let keep = true;
  for (const p of patterns) {
    const negate = p.startsWith('!');
    const glob = negate ? p.slice(1) : p;
    if (picomatch.isMatch(path, glob, { dot: true }) || picomatch.isMatch(path, `${glob}/**`, { dot: true })) keep = negate;
  }
  return keep;
}

describe('deploy/docker', () => {
  const { stages } = dockerStages(read('docker', 'Dockerfile'));
  const runtime = stages[stages.length - 1];
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string>; bin: Record<string, string>; files: string[] };

  it('builds in one stage and runs on node:<the node devDependency major>-slim with production dependencies only', () => {
    const major = /\d+/.exec(pkg.devDependencies.node)![0];
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const s of stages) expect(s.from).toBe(`node:${major}-slim`);
    const build = stages.find((s) => s.lines.some((l) => /npm run build/.test(l)))!;
    expect(build.lines.join('\n')).toMatch(/RUN npm ci\b/);
    expect(runtime).not.toBe(build);
    // the runtime's node_modules come from an `npm ci --omit=dev` stage, dist from the build
    const copies = runtime.lines.filter((l) => l.startsWith('COPY'));
    const depsStage = /--from=(\S+) \S*node_modules/.exec(copies.join('\n'))![1];
    expect(stages.find((s) => s.name === depsStage)!.lines.join('\n')).toMatch(/npm ci --omit=dev/);
    expect(copies.join('\n')).toMatch(new RegExp(`--from=${build.name} \\S*dist`));
    expect(runtime.lines.join('\n')).not.toMatch(/npm (ci|install)/);
  });

  it('ships dist/, config/ and package.json (what package.json "files" publishes) and runs the plumb binary', () => {
    const copied = runtime.lines.filter((l) => l.startsWith('COPY')).map((l) => l.split(/\s+/).slice(-2)[0]);
    for (const f of pkg.files) expect(copied.some((c) => c.replace(/^\/src\//, '').startsWith(f)), `copies ${f}`).toBe(true);
    expect(copied).toContain('package.json');
    const entrypoint = runtime.lines.find((l) => l.startsWith('ENTRYPOINT'))!;
    expect(JSON.parse(entrypoint.slice('ENTRYPOINT'.length))).toEqual(['node', `/app/${pkg.bin.plumb}`]);
    expect(runtime.lines).toContain('WORKDIR /app');
  });

  it('runs as a numeric non-root user, with the container config and health check in place', () => {
    const user = runtime.lines.find((l) => l.startsWith('USER'))!;
    expect(user).toMatch(/^USER [1-9]\d*(:\d+)?$/);
    const env = runtime.lines.filter((l) => l.startsWith('ENV')).join(' ');
    const configPath = /PLUMB_CONFIG=(\S+)/.exec(env)![1];
    expect(runtime.lines).toContain(`COPY deploy/docker/plumb.yaml ${configPath}`);
    const health = runtime.lines.find((l) => l.startsWith('HEALTHCHECK'))!;
    expect(health).toMatch(/CMD \["node", "-e"/);
    expect(health).not.toMatch(/curl|wget/);
    expect(env).toMatch(/HEALTHCHECK_URLS=/);
    expect(env, 'no PLUMB_ variable other than PLUMB_CONFIG: plumb would refuse it').not.toMatch(/PLUMB_(?!CONFIG=)/);
  });

  it('exposes the ports its config listens on, which are plumb\'s default ports', () => {
    const config = loadPlumbConfig({ text: read('docker', 'plumb.yaml'), env: {} });
    const exposed = runtime.lines
      .filter((l) => l.startsWith('EXPOSE'))
      .flatMap((l) => l.split(/\s+/).slice(1))
      .sort();
    const listens = [
      [config.agent.statsd.listen, 'udp', DEFAULTS.agent.statsd.listen],
      [config.agent.http.listen, 'tcp', DEFAULTS.agent.http.listen],
      [config.agent.traces.zipkin.listen, 'tcp', DEFAULTS.agent.traces.zipkin.listen],
      [config.agent.otlp.http.listen, 'tcp', DEFAULTS.agent.otlp.http.listen],
      [config.agent.otlp.grpc.listen, 'tcp', DEFAULTS.agent.otlp.grpc.listen],
      [config.collector.listen, 'tcp', DEFAULTS.collector.listen],
    ] as const;
    expect(exposed).toEqual(listens.map(([l, proto]) => `${port(l)}/${proto}`).sort());
    for (const [l, , def] of listens) {
      expect(parseListen(l).host, 'reachable from outside the container').toBe('0.0.0.0');
      expect(port(l)).toBe(port(def));
    }
    expect(config.agent.dataDir.startsWith('/var/lib/plumb/')).toBe(true);
    expect(config.collector.dataDir.startsWith('/var/lib/plumb/')).toBe(true);
    expect(runtime.lines.join('\n')).toMatch(/chown 1000:1000 \/var\/lib\/plumb/);
  });

  it('sends the build only what it copies (Dockerfile.dockerignore, and the same list as .dockerignore)', () => {
    const patterns = ignorePatterns(read('docker', 'Dockerfile.dockerignore'));
    expect(ignorePatterns(read('docker', '.dockerignore'))).toEqual(patterns);
    const sources = stages.flatMap((s) => s.lines.filter((l) => l.startsWith('COPY') && !l.includes('--from')).flatMap((l) => l.split(/\s+/).slice(1, -1)));
    expect(sources.length).toBeGreaterThan(5);
    for (const src of sources) {
      expect(existsSync(join(ROOT, src)), `${src} exists`).toBe(true);
      expect(kept(patterns, src), `${src} reaches the build`).toBe(true);
    }
    for (const left of ['node_modules', 'node_modules/x/index.js', 'test/unit/a.test.ts', 'dist/cli/main.js', 'bench/RESULTS.md', '.git/HEAD', 'data/agent/x']) {
      expect(kept(patterns, left), `${left} stays out`).toBe(false);
    }
  });
});

// ---------------- compose ----------------

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
}

describe('deploy/compose', () => {
  const dir = join(DEPLOY, 'compose');
  const compose = YAML.parse(read('compose', 'docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
  const services = compose.services;
  /** container path → repository file, from a service's bind mounts. */
  const mounts = (svc: string): Map<string, string> =>
    new Map(
      (services[svc].volumes ?? [])
        .filter((v) => v.startsWith('.'))
        .map((v) => {
          const [src, dst] = v.split(':');
          return [dst, resolve(dir, src)];
        }),
    );

  it('runs plumb and everything around it', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['agent', 'alertmanager', 'collector', 'demo', 'elasticsearch', 'grafana', 'kibana', 'kibana-setup', 'minio', 'minio-setup', 'prometheus', 'token', 'victoriametrics', 'zipkin'].sort(),
    );
    for (const svc of ['agent', 'collector']) {
      expect(services[svc].build).toEqual({ context: '../..', dockerfile: 'deploy/docker/Dockerfile' });
      expect(existsSync(resolve(dir, '../..', 'deploy/docker/Dockerfile'))).toBe(true);
    }
  });

  it('mounts files that exist', () => {
    for (const svc of Object.keys(services)) for (const [dst, src] of mounts(svc)) expect(existsSync(src), `${svc}: ${src} for ${dst}`).toBe(true);
  });

  it('gives plumb the config files it is told to read, and agrees with them on ports and addresses', () => {
    const configOf = (svc: string) => {
      const cmd = services[svc].command!;
      const file = mounts(svc).get(cmd[cmd.indexOf('--config') + 1])!;
      const text = readFileSync(file, 'utf8');
      // the rule file is read where the container sees it: it must be mounted there
      const rulesFile = (YAML.parse(text) as { collector?: { alerts?: { rulesFile?: string } } }).collector?.alerts?.rulesFile;
      const env: Record<string, string> = { PLUMB_AGENT__HOSTNAME: 'h' };
      if (rulesFile !== undefined) {
        expect(mounts(svc).has(rulesFile), `${rulesFile} is mounted into ${svc}`).toBe(true);
        env.PLUMB_COLLECTOR__ALERTS__RULES_FILE = mounts(svc).get(rulesFile)!;
      }
      return { cmd, rulesFile, config: loadPlumbConfig({ text, env }) };
    };
    const agent = configOf('agent');
    const collector = configOf('collector');
    expect(agent.cmd[0]).toBe('agent');
    expect(collector.cmd[0]).toBe('collector');
    const published = services.agent.ports!;
    expect(published).toContain(`${port(agent.config.agent.statsd.listen)}:${port(agent.config.agent.statsd.listen)}/udp`);
    expect(published).toContain(`${port(agent.config.agent.http.listen)}:${port(agent.config.agent.http.listen)}`);
    expect(published).toContain(`${port(agent.config.agent.traces.zipkin.listen)}:${port(agent.config.agent.traces.zipkin.listen)}`);
    expect(agent.config.agent.otlp.enabled).toBe(true);
    for (const door of [agent.config.agent.otlp.http.listen, agent.config.agent.otlp.grpc.listen]) expect(published).toContain(`${port(door)}:${port(door)}`);
    expect(services.collector.ports).toContain(`${port(collector.config.collector.listen)}:${port(collector.config.collector.listen)}`);
    expect(agent.config.agent.forward.collectors).toEqual([`http://collector:${port(collector.config.collector.listen)}`]);
    // the agent sends the token file the collector accepts: both mount the volume the token service writes it to
    const tokenFile = collector.config.collector.auth.tokenFile!;
    expect(agent.config.agent.forward.auth!.tokenFile).toBe(tokenFile);
    const tokenDir = tokenFile.slice(0, tokenFile.lastIndexOf('/'));
    for (const svc of ['agent', 'collector']) {
      expect(services[svc].volumes).toContain(`plumb-token:${tokenDir}:ro`);
      expect(services[svc].depends_on?.token).toEqual({ condition: 'service_completed_successfully' });
    }
    expect(services.token.volumes).toEqual(['plumb-token:/secrets']);
    expect(tokenFile.slice(tokenFile.lastIndexOf('/'))).toBe('/token');
    expect(collector.rulesFile).toBeDefined();
    expect(collector.config.collector.alerts.alertmanager.urls).toEqual(['http://alertmanager:9093']);
    expect(collector.config.collector.traces.zipkin?.url).toBe('http://zipkin:9411');
    // the agent reads the host's /proc where it is mounted
    expect(services.agent.volumes).toContain(`/proc:${agent.config.agent.host.hostProc}:ro`);
    // each plumb container's health check asks its own role
    expect(services.agent.environment?.HEALTHCHECK_URLS).toBe(`http://127.0.0.1:${port(agent.config.agent.http.listen)}/healthz`);
    expect(services.collector.environment?.HEALTHCHECK_URLS).toBe(`http://127.0.0.1:${port(collector.config.collector.listen)}/healthz`);
    // the demo app reaches the agent's receivers
    expect(services.demo.environment).toMatchObject({ STATSD_HOST: 'agent', STATSD_PORT: String(port(agent.config.agent.statsd.listen)), ZIPKIN_URL: `http://agent:${port(agent.config.agent.traces.zipkin.listen)}/api/v2/spans` });
  });

  it('has Prometheus scrape both roles under the job names the rules and dashboards use, and load plumb\'s rules', () => {
    const prom = YAML.parse(read('compose', 'prometheus', 'prometheus.yml')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
      alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
    };
    const jobs = new Map(prom.scrape_configs.map((j) => [j.job_name, j.static_configs[0].targets]));
    expect(jobs.get('plumb-agent')).toEqual(['agent:8126']);
    expect(jobs.get('plumb-collector')).toEqual(['collector:9102']);
    const promMounts = mounts('prometheus');
    for (const f of prom.rule_files) expect(promMounts.get(f)).toBe(join(DEPLOY, 'prometheus', 'plumb-alerts.yml'));
    expect(prom.alerting.alertmanagers[0].static_configs[0].targets).toEqual(['alertmanager:9093']);
  });

  it('provisions Grafana with Prometheus and every dashboard of deploy/grafana', () => {
    const grafana = mounts('grafana');
    expect(grafana.get('/etc/grafana/provisioning')).toBe(join(dir, 'grafana', 'provisioning'));
    const provider = YAML.parse(read('compose', 'grafana', 'provisioning', 'dashboards', 'plumb.yaml')) as { providers: { options: { path: string } }[] };
    expect(grafana.get(provider.providers[0].options.path)).toBe(join(DEPLOY, 'grafana', 'dashboards'));
    const ds = YAML.parse(read('compose', 'grafana', 'provisioning', 'datasources', 'plumb.yaml')) as { datasources: { type: string; url: string; isDefault?: boolean }[] };
    expect(ds.datasources.find((d) => d.type === 'prometheus')).toMatchObject({ url: 'http://prometheus:9090', isDefault: true });
    const home = services.grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    expect(existsSync(join(DEPLOY, 'grafana', 'dashboards', home!.replace(provider.providers[0].options.path, '')))).toBe(true);
  });

  it('imports the Kibana data view and creates the log bucket', () => {
    expect(mounts('kibana-setup').get('/import')).toBe(join(DEPLOY, 'kibana'));
    expect(services['kibana-setup'].command!.join(' ')).toMatch(/_import\?overwrite=true[\s\S]*file=@\/import\/plumb-logs\.ndjson/);
    expect(services['minio-setup'].command!.join(' ')).toMatch(/mc mb --ignore-existing local\/plumb-logs/);
  });
});

// ---------------- systemd ----------------

function unitFile(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) {
      section = s[1];
      continue;
    }
    const eq = line.indexOf('=');
    const key = `${section}.${line.slice(0, eq)}`;
    keys.set(key, [...(keys.get(key) ?? []), line.slice(eq + 1)]);
  }
  return keys;
}

describe('deploy/systemd', () => {
  for (const role of ['agent', 'collector'] as const) {
    it(`runs the ${role} hardened, with its data directory as its StateDirectory`, () => {
      const unit = unitFile(read('systemd', `plumb-${role}.service`));
      const one = (k: string) => unit.get(k)?.[0];
      expect(one('Service.ExecStart')).toBe(`/usr/local/bin/plumb ${role} --config /etc/plumb/${role}.yaml`);
      expect(one('Service.DynamicUser')).toBe('yes');
      expect(one('Service.ProtectSystem')).toBe('strict');
      expect(one('Service.NoNewPrivileges')).toBe('yes');
      expect(one('Service.CapabilityBoundingSet')).toBe('');
      expect(one('Service.Restart')).toBe('on-failure');
      expect(one('Service.MemoryDenyWriteExecute'), "Node's JIT needs W+X pages").toBeUndefined();
      expect(one('Service.KillSignal')).toBe('SIGTERM');
      expect(one('Install.WantedBy')).toBe('multi-user.target');
      const state = one('Service.StateDirectory')!;
      const config = loadPlumbConfig({ text: read('systemd', `${role}.yaml`), env: {} });
      expect(config[role].dataDir).toBe(`/var/lib/${state}`);
      // the token reaches the service as a systemd credential, where the config reads it
      expect(one('Service.LoadCredential')).toBe('token:/etc/plumb/token');
      const tokenFile = role === 'agent' ? config.agent.forward.auth?.tokenFile : config.collector.auth.tokenFile;
      expect(tokenFile).toBe(`/run/credentials/plumb-${role}.service/token`);
    });
  }

  it('keeps the agent\'s statsd and OTLP doors on loopback and points it at a collector', () => {
    const config = loadPlumbConfig({ text: read('systemd', 'agent.yaml'), env: {} });
    expect(config.agent.statsd.listen).toBe(DEFAULTS.agent.statsd.listen);
    // OTLP is on in the host install, on the defaults, which are loopback
    expect(config.agent.otlp.enabled).toBe(true);
    expect([config.agent.otlp.http.listen, config.agent.otlp.grpc.listen]).toEqual([DEFAULTS.agent.otlp.http.listen, DEFAULTS.agent.otlp.grpc.listen]);
    expect([DEFAULTS.agent.otlp.http.listen, DEFAULTS.agent.otlp.grpc.listen]).toEqual(['127.0.0.1:4318', '127.0.0.1:4317']);
    expect(config.agent.forward.collectors.every((u) => port(new URL(u).host) === port(DEFAULTS.collector.listen))).toBe(true);
    const collector = loadPlumbConfig({ text: read('systemd', 'collector.yaml'), env: {} });
    expect(collector.collector.listen).toBe(`0.0.0.0:${port(DEFAULTS.collector.listen)}`);
  });
});

// ---------------- Grafana dashboards and Kibana ----------------

interface GPanel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
  panels?: GPanel[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: GPanel[];
  templating: { list: { name: string; type: string; query?: unknown }[] };
}

describe('deploy/grafana/dashboards', () => {
  const files = readdirSync(join(DEPLOY, 'grafana', 'dashboards')).filter((f) => f.endsWith('.json'));
  const dashboards = files.map((f) => ({ file: f, d: JSON.parse(read('grafana', 'dashboards', f)) as Dashboard }));

  it('ships the pipeline, host and statsd starter dashboards with distinct uids', () => {
    expect(files.sort()).toEqual(['plumb-host.json', 'plumb-pipeline.json', 'plumb-statsd.json']);
    const uids = dashboards.map(({ d }) => d.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const { file, d } of dashboards) expect(`${d.uid}.json`).toBe(file);
  });

  for (const { file, d } of dashboards) {
    it(`${file}: panels query the chosen Prometheus, have unique ids and do not overlap`, () => {
      expect(d.templating.list[0]).toMatchObject({ name: 'datasource', type: 'datasource', query: 'prometheus' });
      const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
      expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
      for (const p of panels) {
        if (p.type === 'row') continue;
        expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
        expect(p.targets?.length, p.title).toBeGreaterThan(0);
        for (const t of p.targets ?? []) {
          expect(t.expr.trim(), `${p.title} ${t.refId}`).not.toBe('');
          expect(t.datasource?.uid).toBe('${datasource}');
        }
        expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      }
      const cells = new Map<string, string>();
      for (const p of panels) {
        for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
          for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
            const key = `${x},${y}`;
            expect(cells.get(key), `"${p.title}" overlaps "${cells.get(key)}"`).toBeUndefined();
            cells.set(key, p.title);
          }
        }
      }
    });

    it(`${file}: has no log-sink or disk-spool panels yet (those metrics do not exist)`, () => {
      for (const q of dashboardQueries(d)) {
        for (const name of selectedNames(q.expr).names) expect(name, q.where).not.toMatch(/^plumb_spool_|^plumb_sink_(queue_events|queue_refused|dead_letter|write_seconds)/);
      }
    });
  }
});

describe('deploy/kibana', () => {
  it('defines the plumb-logs-* data view with @timestamp as its time field', () => {
    const lines = read('kibana', 'plumb-logs.ndjson').trim().split('\n');
    const objects = lines.map((l) => JSON.parse(l) as { type: string; id: string; attributes: Record<string, unknown> });
    const view = objects.find((o) => o.type === 'index-pattern')!;
    expect(view.attributes).toMatchObject({ title: 'plumb-logs-*', timeFieldName: '@timestamp' });
    expect(view.id).toMatch(/^[\w-]+$/);
  });
});
