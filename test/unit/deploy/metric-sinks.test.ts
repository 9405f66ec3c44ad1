/**
 * deploy/metric-sinks: every collector config there passes plumb's config checks (the Mimir one
 * with its secret files made here), and says what its comments promise; the Grafana data sources
 * point at those stores. Also the checks the schema cannot express catch what they should.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadPlumbConfig } from '../../../cli/config.ts';
import { ConfigError } from '../../../shared/config.ts';
import { REPO_ROOT } from '../../helpers/processes.ts';

const DIR = join(REPO_ROOT, 'deploy', 'metric-sinks');
const secrets = mkdtempSync(join(tmpdir(), 'plumb-ms-secrets-'));

afterAll(() => rmSync(secrets, { recursive: true, force: true }));

function load(file: string): ReturnType<typeof loadPlumbConfig> {
  const text = readFileSync(join(DIR, file), 'utf8').replaceAll('/etc/plumb-secrets/', `${secrets}/`);
  return loadPlumbConfig({ text, env: {}, file });
}

describe('deploy/metric-sinks', () => {
  it('VictoriaMetrics, Prometheus, Mimir and Graphite configs pass the checks', () => {
    for (const f of ['mimir-password', 'mimir-ca.pem']) writeFileSync(join(secrets, f), 'x\n');
    const vm = load('victoria-metrics.yaml').collector.metrics.sinks;
    expect(vm.remoteWrite?.[0]).toMatchObject({ name: 'victoriametrics', url: 'http://victoriametrics:8428/api/v1/write', shards: 4 });
    expect(load('prometheus.yaml').collector.metrics.sinks.remoteWrite?.[0].url).toBe('http://prometheus:9090/api/v1/write');
    const mimir = load('mimir.yaml').collector.metrics.sinks.remoteWrite![0];
    expect(mimir.headers).toEqual({ 'X-Scope-OrgID': 'team-payments' });
    expect(mimir.auth?.username).toBe('plumb');
    const graphite = load('graphite.yaml').collector.metrics.sinks.graphite!;
    expect(graphite.map((g) => g.naming.scheme)).toEqual(['statsd', 'tags']);
  });

  it('has a Prometheus-type Grafana data source for the store the collector writes to', () => {
    const ds = YAML.parse(readFileSync(join(DIR, 'grafana-datasource.yaml'), 'utf8')) as { datasources: { name: string; type: string; url: string }[] };
    expect(ds.datasources.find((d) => d.name === 'VictoriaMetrics')).toMatchObject({ type: 'prometheus', url: 'http://victoriametrics:8428' });
    const compose = YAML.parse(readFileSync(join(REPO_ROOT, 'deploy', 'compose', 'grafana', 'provisioning', 'datasources', 'plumb.yaml'), 'utf8')) as typeof ds;
    expect(compose.datasources.find((d) => d.name === 'VictoriaMetrics')).toMatchObject({ type: 'prometheus', url: 'http://victoriametrics:8428' });
  });

  it('refuses what the schema cannot express, naming every key', () => {
    const text = `
collector:
  metrics:
    sinks:
      interval: 500ms
      remoteWrite:
        - { url: "http://a/api/v1/write", auth: { username: u, bearerToken: t } }
        - { url: "http://b/api/v1/write", tls: { cert: ${join(secrets, 'mimir-ca.pem')} } }
      graphite:
        - { host: carbon, name: remote_write, naming: { prefix: "my stats" } }
`;
    let err: unknown;
    try {
      loadPlumbConfig({ text, env: {} });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const errors = (err as ConfigError).errors.join('\n');
    expect(errors).toMatch(/collector\.metrics\.sinks\.interval: at least 1s/);
    expect(errors).toMatch(/remoteWrite\[0\]\.auth: use basic auth or a bearer token, not both/);
    expect(errors).toMatch(/remoteWrite\[1\]\.name: "remote_write" is taken/);
    expect(errors).toMatch(/remoteWrite\[1\]\.tls: cert and key go together/);
    expect(errors).toMatch(/graphite\[0\]\.name: "remote_write" is taken/);
    expect(errors).toMatch(/graphite\[0\]\.naming\.prefix: no spaces/);
  });
});
