/**
 * deploy/kubernetes and the Helm chart: every object is a valid Kubernetes object of a kind and
 * version the API serves, the objects refer to each other correctly, the plumb configuration
 * in the ConfigMaps is valid and agrees with the ports, paths and probes around it, and the
 * chart rendered as release "plumb" gives the same objects as the plain manifests.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { validateObject } from './kube-schema.ts';
import { renderChart } from '../../helpers/render-chart.ts';
import { loadPlumbConfig, type PlumbConfig } from '../../../cli/config.ts';
import { parseListen } from '../../../shared/address.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MANIFESTS = join(ROOT, 'deploy', 'kubernetes');
const CHART = join(ROOT, 'deploy', 'helm', 'plumb');

type Obj = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> } };
type Container = {
  name: string;
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { name: string; containerPort: number; hostPort?: number; protocol?: string }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean; capabilities?: { drop?: string[] } };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
};
type Volume = { name: string; configMap?: { name: string }; secret?: { secretName: string; optional?: boolean }; hostPath?: { path: string }; emptyDir?: object };
type PodSpec = { containers: Container[]; volumes: Volume[]; serviceAccountName?: string; terminationGracePeriodSeconds?: number; tolerations?: { operator?: string }[]; securityContext?: { runAsNonRoot?: boolean } };
type Workload = Obj & { spec: { selector: { matchLabels: Record<string, string> }; replicas?: number; serviceName?: string; volumeClaimTemplates?: { metadata: { name: string }; spec: { accessModes: string[]; resources: { requests: { storage: string } } } }[]; template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpec } } };

/** The Secret kustomization.yaml's secretGenerator makes, with `token` as the file's content. */
function generatedSecret(token: string): Obj {
  const k = YAML.parse(readFileSync(join(MANIFESTS, 'kustomization.yaml'), 'utf8')) as {
    namespace: string;
    secretGenerator: { name: string; files: string[]; type: string; options: { disableNameSuffixHash: boolean; labels: Record<string, string> } }[];
  };
  const g = k.secretGenerator[0];
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name: g.name, namespace: k.namespace, labels: g.options.labels }, type: g.type, stringData: { [g.files[0]]: token } };
}

/** The manifests in the order kustomization.yaml lists them, and the generated token Secret. */
function loadManifests(token = 'test-token'): Obj[] {
  const kustomization = YAML.parse(readFileSync(join(MANIFESTS, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
  return [
    ...kustomization.resources.flatMap((file) =>
      YAML.parseAllDocuments(readFileSync(join(MANIFESTS, file), 'utf8'))
        .map((d) => d.toJS() as Obj | null)
        .filter((o): o is Obj => o !== null),
    ),
    generatedSecret(token),
  ];
}

function find<T extends Obj = Obj>(objects: Obj[], kind: string, name?: string): T {
  const hits = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (hits.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${hits.length}`);
  return hits[0] as T;
}

function portOf(listen: string): number {
  return parseListen(listen).port;
}

/** The plumb configuration a ConfigMap carries, validated as plumb validates it at start-up. */
function plumbConfigIn(configMap: Obj, env: Record<string, string> = {}): PlumbConfig {
  const text = configMap.data?.['plumb.yaml'];
  expect(text, `${configMap.metadata.name} has a plumb.yaml key`).toBeTypeOf('string');
  return loadPlumbConfig({ text, file: `ConfigMap ${configMap.metadata.name}`, env });
}

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

const DEFAULTS = loadPlumbConfig({ text: '{}', env: {} });
const DEFAULT_PORTS = {
  statsd: portOf(DEFAULTS.agent.statsd.listen),
  zipkin: portOf(DEFAULTS.agent.traces.zipkin.listen),
  otlpHttp: portOf(DEFAULTS.agent.otlp.http.listen),
  otlpGrpc: portOf(DEFAULTS.agent.otlp.grpc.listen),
  agentHttp: portOf(DEFAULTS.agent.http.listen),
  collector: portOf(DEFAULTS.collector.listen),
};

/**
 * Everything a set of plumb objects must satisfy, whichever way it was produced. `prefix` is
 * the name every object starts with ("plumb" for the manifests and release "plumb").
 */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);

/**
 * The agent's RBAC: read-only pods and namespaces, bound to its service account, whose token is
 * mounted (agent.kubernetes), and the node named for the field selector.
 */
function checkAgentRbac(objects: Obj[], prefix: string, namespace: string): void {
  const role = objects.find((o) => o.kind === 'ClusterRole') as (Obj & { rules: unknown }) | undefined;
  expect(role?.metadata.name).toBe(`${prefix}-agent`);
  expect(role?.rules).toEqual([{ apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['get', 'list', 'watch'] }]);
  const binding = objects.find((o) => o.kind === 'ClusterRoleBinding') as (Obj & { roleRef: unknown; subjects: unknown }) | undefined;
  expect(binding?.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${prefix}-agent` });
  expect(binding?.subjects).toEqual([{ kind: 'ServiceAccount', name: `${prefix}-agent`, namespace }]);
  const ds = find<Workload>(objects, 'DaemonSet');
  expect((ds.spec.template.spec as { automountServiceAccountToken?: boolean }).automountServiceAccountToken).toBe(true);
  const env = (ds.spec.template.spec.containers[0] as { env?: { name: string; valueFrom?: unknown }[] }).env ?? [];
  expect(env.find((e) => e.name === 'PLUMB_AGENT__KUBERNETES__NODE_NAME')?.valueFrom).toEqual({ fieldRef: { fieldPath: 'spec.nodeName' } });
}

function checkPlumbObjects(objects: Obj[], opts: { prefix: string; namespace: string; secretExternal?: boolean }): void {
  const errors = objects.flatMap((o) => validateObject(o));
  expect(errors).toEqual([]);

  for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind)) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name} namespace`).toBe(opts.namespace);
  const names = objects.map((o) => `${o.kind}/${o.metadata.name}`);
  expect(new Set(names).size, 'no two objects share kind and name').toBe(names.length);

  const agentCm = find(objects, 'ConfigMap', `${opts.prefix}-agent`);
  const collectorCm = find(objects, 'ConfigMap', `${opts.prefix}-collector`);
  const ds = find<Workload>(objects, 'DaemonSet', `${opts.prefix}-agent`);
  const deploy = find<Workload>(objects, 'StatefulSet', `${opts.prefix}-collector`);
  const service = find<Obj & { spec: { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string | number }[] } }>(objects, 'Service', `${opts.prefix}-collector`);

  // workloads: selectors match their own pods, references resolve
  for (const w of [ds, deploy]) {
    const pod = w.spec.template;
    expect(selects(w.spec.selector.matchLabels, pod.metadata.labels), `${w.kind} selector matches its pods`).toBe(true);
    const sa = pod.spec.serviceAccountName;
    if (sa !== undefined) expect(names, `${w.kind} service account`).toContain(`ServiceAccount/${sa}`);
    for (const v of [...pod.spec.volumes, ...(w.spec.volumeClaimTemplates ?? []).map((t) => ({ name: t.metadata.name }) as Volume)]) {
      if (v.configMap) expect(names, `${w.kind} volume ${v.name}`).toContain(`ConfigMap/${v.configMap.name}`);
      if (v.secret && !opts.secretExternal) expect(names, `${w.kind} volume ${v.name}`).toContain(`Secret/${v.secret.secretName}`);
    }
    for (const c of pod.spec.containers) {
      const volumes = new Set([...pod.spec.volumes.map((v) => v.name), ...(w.spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name)]);
      for (const m of c.volumeMounts) expect(volumes.has(m.name), `${w.kind} mount ${m.name} has a volume`).toBe(true);
      const portNames = new Set(c.ports.map((p) => p.name));
      for (const probe of [c.livenessProbe, c.readinessProbe]) expect(portNames.has(String(probe?.httpGet?.port)), `${w.kind} probe port`).toBe(true);
      expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(c.resources?.requests?.cpu, `${w.kind} requests cpu (the HPA and the scheduler need it)`).toBeDefined();
      expect(c.resources?.requests?.memory).toBeDefined();
      expect(c.resources?.limits?.memory).toBeDefined();
      expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      // the config file the container is told to read is the ConfigMap's key where it is mounted
      const args = c.args ?? [];
      const configPath = args[args.indexOf('--config') + 1];
      const cmVolume = pod.spec.volumes.find((v) => v.configMap)!;
      const cmMount = c.volumeMounts.find((m) => m.name === cmVolume.name)!;
      expect(configPath).toBe(`${cmMount.mountPath}/plumb.yaml`);
    }
    const annotations = pod.metadata.annotations ?? {};
    if (annotations['prometheus.io/scrape'] === 'true') {
      const http = pod.spec.containers[0].ports.find((p) => p.name === 'http')!;
      expect(annotations['prometheus.io/port']).toBe(String(http.containerPort));
      expect(annotations['prometheus.io/path']).toBe('/metrics');
    }
  }

  // the agent
  const agentConfig = plumbConfigIn(agentCm, { PLUMB_AGENT__HOSTNAME: 'node-1' });
  expect(ds.spec.template.metadata.labels['app.kubernetes.io/component']).toBe('agent');
  expect(ds.spec.template.spec.tolerations, 'the agent tolerates every taint').toContainEqual({ operator: 'Exists' });
  const agent = ds.spec.template.spec.containers[0];
  expect(agent.args?.[0]).toBe('agent');
  const port = (name: string) => agent.ports.find((p) => p.name === name)!;
  expect(port('statsd')).toMatchObject({ containerPort: DEFAULT_PORTS.statsd, hostPort: DEFAULT_PORTS.statsd, protocol: 'UDP' });
  expect(port('zipkin')).toMatchObject({ containerPort: DEFAULT_PORTS.zipkin, hostPort: DEFAULT_PORTS.zipkin, protocol: 'TCP' });
  expect(port('http')).toMatchObject({ containerPort: DEFAULT_PORTS.agentHttp });
  expect(port('http').hostPort, 'health and metrics stay off the node').toBeUndefined();
  expect(agentConfig.agent.statsd.listen).toBe(`0.0.0.0:${port('statsd').containerPort}`);
  expect(agentConfig.agent.traces.zipkin.listen).toBe(`0.0.0.0:${port('zipkin').containerPort}`);
  // OTLP from the node's pods, on plumb's default ports
  expect(port('otlp-http')).toMatchObject({ containerPort: DEFAULT_PORTS.otlpHttp, hostPort: DEFAULT_PORTS.otlpHttp, protocol: 'TCP' });
  expect(port('otlp-grpc')).toMatchObject({ containerPort: DEFAULT_PORTS.otlpGrpc, hostPort: DEFAULT_PORTS.otlpGrpc, protocol: 'TCP' });
  expect(agentConfig.agent.otlp.enabled).toBe(true);
  expect(agentConfig.agent.otlp.http.listen).toBe(`0.0.0.0:${port('otlp-http').containerPort}`);
  expect(agentConfig.agent.otlp.grpc.listen).toBe(`0.0.0.0:${port('otlp-grpc').containerPort}`);
  expect(agentConfig.agent.http.listen).toBe(`0.0.0.0:${port('http').containerPort}`);
  // beyond loopback, the agent's API and console (the live tap shows event content) need the token the agents send
  expect(agentConfig.agent.http.auth.tokenFile).toBe(agentConfig.agent.forward.auth?.tokenFile);
  expect(agent.env).toContainEqual({ name: 'PLUMB_AGENT__HOSTNAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
  expect(agentConfig.agent.hostname, 'the node name reaches the config').toBe('node-1');
  const mount = (path: string) => agent.volumeMounts.find((m) => m.mountPath === path);
  const volume = (name: string) => ds.spec.template.spec.volumes.find((v) => v.name === name)!;
  for (const logs of ['/var/log/pods', '/var/log/containers']) {
    expect(mount(logs), `${logs} mounted`).toMatchObject({ readOnly: true });
    expect(volume(mount(logs)!.name).hostPath?.path).toBe(logs);
  }
  // every log input reads below a read-only mount of the same host directory
  expect(agentConfig.agent.logs.length).toBeGreaterThan(0);
  for (const input of agentConfig.agent.logs) {
    for (const p of typeof input.path === 'string' ? [input.path] : input.path) {
      const m = agent.volumeMounts.find((v) => p.startsWith(`${v.mountPath}/`));
      expect(m, `${p} is mounted`).toMatchObject({ readOnly: true });
      expect(volume(m!.name).hostPath?.path).toBe(m!.mountPath);
    }
  }
  expect(mount(agentConfig.agent.host.hostProc), 'host /proc where agent.host.hostProc says').toMatchObject({ readOnly: true });
  expect(volume(mount(agentConfig.agent.host.hostProc)!.name).hostPath?.path).toBe('/proc');
  expect(volume(mount(agentConfig.agent.host.hostRoot!)!.name).hostPath?.path).toBe('/');
  expect(volume(mount(agentConfig.agent.dataDir)!.name).hostPath, 'agent data survives restarts on the node').toBeDefined();
  // DogStatsD's Unix socket sits in a node directory that application pods can mount too
  const socketPath = agentConfig.agent.statsd.socket.path;
  expect(socketPath, 'the agent offers DogStatsD on a unix socket').toBeTruthy();
  const socketMount = agent.volumeMounts.find((m) => socketPath!.startsWith(`${m.mountPath}/`));
  expect(socketMount, `${socketPath} is on a mounted volume`).toBeDefined();
  expect(socketMount!.readOnly ?? false).toBe(false);
  expect(volume(socketMount!.name).hostPath).toEqual({ path: socketMount!.mountPath, type: 'DirectoryOrCreate' });

  // the collector, its Service, and the agents' way to it
  const collectorConfig = plumbConfigIn(collectorCm);
  const collector = deploy.spec.template.spec.containers[0];
  expect(collector.args?.[0]).toBe('collector');
  expect(deploy.spec.template.spec.securityContext?.runAsNonRoot).toBe(true);
  const cport = collector.ports.find((p) => p.name === 'http')!;
  expect(cport.containerPort).toBe(DEFAULT_PORTS.collector);
  expect(collectorConfig.collector.listen).toBe(`0.0.0.0:${cport.containerPort}`);
  expect(collector.volumeMounts.some((m) => collectorConfig.collector.dataDir.startsWith(m.mountPath)), 'collector data dir is on a writable volume').toBe(true);
  expect(selects(service.spec.selector, deploy.spec.template.metadata.labels)).toBe(true);
  expect(selects(service.spec.selector, ds.spec.template.metadata.labels), 'the Service does not select agents').toBe(false);
  expect(service.spec.ports).toEqual([
    { name: 'http', port: DEFAULT_PORTS.collector, targetPort: 'http', protocol: 'TCP' },
    { name: 'otlp-http', port: DEFAULT_PORTS.otlpHttp, targetPort: 'otlp-http', protocol: 'TCP' },
    { name: 'otlp-grpc', port: DEFAULT_PORTS.otlpGrpc, targetPort: 'otlp-grpc', protocol: 'TCP' },
  ]);
  // OTLP from applications straight to the collectors, on plumb's default ports
  const otlpPort = (name: string) => collector.ports.find((p) => p.name === name)!;
  expect(collectorConfig.collector.otlp.enabled).toBe(true);
  expect(collectorConfig.collector.otlp.http.listen).toBe(`0.0.0.0:${otlpPort('otlp-http').containerPort}`);
  expect(collectorConfig.collector.otlp.grpc.listen).toBe(`0.0.0.0:${otlpPort('otlp-grpc').containerPort}`);
  expect([otlpPort('otlp-http').containerPort, otlpPort('otlp-grpc').containerPort]).toEqual([DEFAULT_PORTS.otlpHttp, DEFAULT_PORTS.otlpGrpc]);
  // the agents send the token the collectors accept: the same Secret, where each role mounts it
  for (const [w, file] of [
    [ds, agentConfig.agent.forward.auth?.tokenFile],
    [deploy, collectorConfig.collector.auth.tokenFile],
  ] as const) {
    const secret = w.spec.template.spec.volumes.find((v) => v.secret)!;
    const m = w.spec.template.spec.containers[0].volumeMounts.find((v) => v.name === secret.name)!;
    expect(file, `${w.kind} reads the token Secret`).toBe(`${m.mountPath}/token`);
  }
  const target = new URL(agentConfig.agent.forward.collectors[0]);
  expect(target.hostname).toBe(`${service.metadata.name}.${opts.namespace}.svc`);
  expect(Number(target.port)).toBe(service.spec.ports[0].port);

  expect(objects.some((o) => o.kind === 'HorizontalPodAutoscaler' || o.kind === 'Deployment'), 'collectors are a StatefulSet, scaled by hand').toBe(false);
  const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget') as (Obj & { spec: { maxUnavailable?: number; selector: { matchLabels: Record<string, string> } } }) | undefined;
  if (pdb) {
    expect(selects(pdb.spec.selector.matchLabels, deploy.spec.template.metadata.labels)).toBe(true);
    expect(pdb.spec.maxUnavailable, 'one collector leaves at a time').toBe(1);
  }

  // the fleet: a PVC per pod for the data dir, membership from the headless Service, self from the pod IP
  const claim = deploy.spec.volumeClaimTemplates?.find((t) => collector.volumeMounts.some((m) => m.name === t.metadata.name && collectorConfig.collector.dataDir.startsWith(m.mountPath)));
  expect(claim, 'the data dir is on a PersistentVolumeClaim of its own').toBeDefined();
  expect(claim?.spec.accessModes).toEqual(['ReadWriteOnce']);
  expect(deploy.spec.template.spec.volumes.some((v) => v.name === claim?.metadata.name), 'no emptyDir shadows the claim').toBe(false);
  const headless = find<Obj & { spec: { clusterIP?: string; publishNotReadyAddresses?: boolean; selector: Record<string, string>; ports: { port: number }[] } }>(objects, 'Service', `${opts.prefix}-collector-headless`);
  expect(headless.spec.clusterIP).toBe('None');
  expect(headless.spec.publishNotReadyAddresses ?? false, 'only ready collectors are members').toBe(false);
  expect(selects(headless.spec.selector, deploy.spec.template.metadata.labels)).toBe(true);
  expect(deploy.spec.serviceName).toBe(headless.metadata.name);
  const fleet = collectorConfig.collector.fleet;
  expect(fleet?.dns).toBe(`${headless.metadata.name}.${opts.namespace}.svc:${headless.spec.ports[0].port}`);
  expect(headless.spec.ports[0].port).toBe(cport.containerPort);
  expect(collector.env).toContainEqual({ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
  expect(collector.env).toContainEqual({ name: 'PLUMB_COLLECTOR__FLEET__SELF', value: `http://$(POD_IP):${cport.containerPort}` });
  const withSelf = plumbConfigIn(collectorCm, { PLUMB_COLLECTOR__FLEET__SELF: `http://10.0.0.7:${cport.containerPort}` });
  expect(withSelf.collector.fleet?.self).toBe(`http://10.0.0.7:${cport.containerPort}`);
  const tokenMount = collector.volumeMounts.find((m) => m.name === 'token')!;
  expect(fleet?.tokenFile).toBe(`${tokenMount.mountPath}/token`);
  // grace: preStop (leave the endpoints), then the handoff and the sink drain
  const preStop = collector.lifecycle?.preStop?.exec?.command ?? [];
  expect(preStop[0]).toBe('sleep');
  const grace = deploy.spec.template.spec.terminationGracePeriodSeconds ?? 30;
  expect(grace * 1000).toBeGreaterThanOrEqual(Number(preStop[1]) * 1000 + (fleet?.handoffTimeout ?? 0) + 10_000);
}

describe('deploy/kubernetes', () => {
  const objects = loadManifests();

  it('lists every manifest file in kustomization.yaml', () => {
    const kustomization = YAML.parse(readFileSync(join(MANIFESTS, 'kustomization.yaml'), 'utf8')) as { resources: string[]; namespace: string };
    const files = readdirSync(MANIFESTS).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(files.sort());
    expect(kustomization.namespace).toBe('plumb');
  });

  it('holds the objects an operator expects, each of its API version', () => {
    expect(objects.map((o) => `${o.apiVersion} ${o.kind} ${o.metadata.name}`).sort()).toEqual(
      [
        'v1 Namespace plumb',
        'v1 Secret plumb-token',
        'v1 ConfigMap plumb-agent',
        'v1 ServiceAccount plumb-agent',
        'apps/v1 DaemonSet plumb-agent',
        'rbac.authorization.k8s.io/v1 ClusterRole plumb-agent',
        'rbac.authorization.k8s.io/v1 ClusterRoleBinding plumb-agent',
        'v1 ConfigMap plumb-collector',
        'v1 ServiceAccount plumb-collector',
        'apps/v1 StatefulSet plumb-collector',
        'v1 Service plumb-collector',
        'v1 Service plumb-collector-headless',
        'policy/v1 PodDisruptionBudget plumb-collector',
      ].sort(),
    );
    // The agent reads pods and namespaces for log metadata; the collector needs no API access.
    checkAgentRbac(objects, 'plumb', 'plumb');
  });

  it('is valid, consistent, and agrees with plumb defaults', () => {
    checkPlumbObjects(objects, { prefix: 'plumb', namespace: 'plumb' });
  });

  it('mounts the token Secret in both roles', () => {
    for (const kind of ['DaemonSet', 'StatefulSet']) {
      const w = find<Workload>(objects, kind);
      expect(w.spec.template.spec.volumes).toContainEqual({ name: 'token', secret: { secretName: 'plumb-token', optional: true } });
    }
  });
});

describe('the structural validator', () => {
  it('reports unknown fields, wrong types, bad enums and missing required fields', () => {
    const ds = structuredClone(find(loadManifests(), 'DaemonSet')) as Workload;
    const c = ds.spec.template.spec.containers[0] as unknown as Record<string, unknown>;
    c.portz = [];
    (c.ports as { protocol: string }[])[0].protocol = 'udp';
    (c.livenessProbe as { periodSeconds: unknown }).periodSeconds = '10';
    delete c.image;
    const errors = validateObject(ds);
    expect(errors.join('\n')).toMatch(/containers\[0\]\.portz: unknown field/);
    expect(errors.join('\n')).toMatch(/ports\[0\]\.protocol: expected one of "TCP", "UDP", "SCTP"/);
    expect(errors.join('\n')).toMatch(/livenessProbe\.periodSeconds: expected an integer/);
    expect(errors.join('\n')).toMatch(/containers\[0\]\.image: required/);
    expect(validateObject({ apiVersion: 'extensions/v1beta1', kind: 'Deployment', metadata: { name: 'x' } })[0]).toMatch(/not a kind and version/);
  });
});

const TOKEN = 'test-token';

/** The chart rendered with a token (it has none by default), other values merged over it. */
function render(options: { releaseName: string; namespace: string; values?: Record<string, unknown> }) {
  const values = options.values ?? {};
  const token = { value: TOKEN, ...((values.token as object | undefined) ?? {}) };
  return renderChart(CHART, { ...options, values: { ...values, token } });
}

describe('deploy/helm/plumb', () => {
  const release = { releaseName: 'plumb', namespace: 'plumb' };

  it('renders, with its default values, valid objects that agree with plumb defaults', () => {
    const { documents } = render(release);
    checkPlumbObjects(
      documents.map((d) => d.object as Obj),
      { prefix: 'plumb', namespace: 'plumb' },
    );
  });

  it('renders as release "plumb" the same objects as deploy/kubernetes', () => {
    const chart = render(release).documents.map((d) => d.object as Obj);
    const plain = loadManifests().filter((o) => o.kind !== 'Namespace');
    expect(chart.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(plain.map((o) => `${o.kind}/${o.metadata.name}`).sort());
    for (const p of plain) {
      const c = find(chart, p.kind, p.metadata.name);
      const what = `${p.kind}/${p.metadata.name}`;
      // Helm adds its own labels; the plain manifests carry the selector labels
      expect(c.metadata.labels, what).toMatchObject(p.metadata.labels ?? {});
      if (p.kind === 'ConfigMap') {
        const data = (o: Obj) => YAML.parse(o.data?.['plumb.yaml'] ?? '') as unknown;
        expect(data(c), what).toEqual(data(p));
      } else if (p.kind === 'Secret') {
        const token = Buffer.from(c.data?.token ?? '', 'base64').toString();
        expect(token).toBe(p.stringData?.token);
      } else if ('spec' in p) {
        const spec = structuredClone(c.spec) as { template?: { metadata: { annotations?: Record<string, string> } } };
        // the checksum makes pods restart when their ConfigMap changes; only Helm can compute it
        expect(spec.template?.metadata.annotations?.['checksum/config'] ?? 'none', what).toMatch(/^([0-9a-f]{64}|none)$/);
        delete spec.template?.metadata.annotations?.['checksum/config'];
        expect(spec, what).toEqual(p.spec);
      } else {
        expect(c, what).toMatchObject({ ...p, metadata: { ...p.metadata, labels: expect.any(Object) } });
      }
    }
  });

  it('names everything after another release and namespace', () => {
    const { documents } = render({ releaseName: 'obs', namespace: 'monitoring' });
    const objects = documents.map((d) => d.object as Obj);
    checkPlumbObjects(objects, { prefix: 'obs-plumb', namespace: 'monitoring' });
    checkAgentRbac(objects, 'obs-plumb', 'monitoring');
    const config = plumbConfigIn(find(objects, 'ConfigMap', 'obs-plumb-agent'));
    expect(config.agent.forward.collectors).toEqual(['http://obs-plumb-collector.monitoring.svc:9102']);
  });

  it('without agent.kubernetesApi: no RBAC, no service account token, no node name', () => {
    const objects = render({ ...release, values: { agent: { kubernetesApi: false, config: { agent: { kubernetes: { enabled: false } } } } } }).documents.map((d) => d.object as Obj);
    expect(objects.filter((o) => /Role/.test(o.kind))).toEqual([]);
    const ds = find<Workload>(objects, 'DaemonSet');
    expect((ds.spec.template.spec as { automountServiceAccountToken?: boolean }).automountServiceAccountToken).toBe(false);
    const env = (ds.spec.template.spec.containers[0] as { env?: { name: string }[] }).env ?? [];
    expect(env.map((e) => e.name)).not.toContain('PLUMB_AGENT__KUBERNETES__NODE_NAME');
  });

  it('moves ports with the values, in the config and around it', () => {
    const { documents } = render({ ...release, values: { agent: { ports: { statsd: 18125 }, hostPorts: { statsd: 18125 } }, collector: { port: 19102 } } });
    const objects = documents.map((d) => d.object as Obj);
    const agentConfig = plumbConfigIn(find(objects, 'ConfigMap', 'plumb-agent'));
    const collectorConfig = plumbConfigIn(find(objects, 'ConfigMap', 'plumb-collector'));
    expect(agentConfig.agent.statsd.listen).toBe('0.0.0.0:18125');
    expect(agentConfig.agent.forward.collectors).toEqual(['http://plumb-collector.plumb.svc:19102']);
    expect(collectorConfig.collector.listen).toBe('0.0.0.0:19102');
    const ds = find<Workload>(objects, 'DaemonSet');
    expect(ds.spec.template.spec.containers[0].ports[0]).toMatchObject({ name: 'statsd', containerPort: 18125, hostPort: 18125 });
    const svc = find<Obj & { spec: { ports: { port: number }[] } }>(objects, 'Service', 'plumb-collector');
    expect(svc.spec.ports[0].port).toBe(19102);
    expect(collectorConfig.collector.fleet?.dns).toBe('plumb-collector-headless.plumb.svc:19102');
    expect(documents.flatMap((d) => validateObject(d.object))).toEqual([]);
  });

  it('sets replicas, the volume size and class, and drops the PDB when asked', () => {
    const { documents } = render({ ...release, values: { collector: { replicas: 5, persistence: { size: '50Gi', storageClassName: 'fast' }, podDisruptionBudget: { enabled: false } } } });
    const kinds = documents.map((d) => d.object.kind);
    expect(kinds).not.toContain('PodDisruptionBudget');
    const sts = find<Workload>(documents.map((d) => d.object as Obj), 'StatefulSet');
    expect(sts.spec.replicas).toBe(5);
    expect(sts.spec.volumeClaimTemplates?.[0].spec).toMatchObject({ storageClassName: 'fast', resources: { requests: { storage: '50Gi' } } });
    expect(documents.flatMap((d) => validateObject(d.object))).toEqual([]);
  });

  it('uses an existing token Secret instead of creating one', () => {
    const { documents } = render({ ...release, values: { token: { existingSecret: 'my-token' } } });
    const objects = documents.map((d) => d.object as Obj);
    expect(objects.map((o) => o.kind)).not.toContain('Secret');
    checkPlumbObjects(objects, { prefix: 'plumb', namespace: 'plumb', secretExternal: true });
    expect(find<Workload>(objects, 'DaemonSet').spec.template.spec.volumes).toContainEqual({ name: 'token', secret: { secretName: 'my-token', optional: true } });
  });

  it('changes the pods\' config checksum when the config changes', () => {
    const checksum = (values: Record<string, unknown>) =>
      find<Workload>(
        render({ ...release, values }).documents.map((d) => d.object as Obj),
        'DaemonSet',
      ).spec.template.metadata.annotations?.['checksum/config'];
    expect(checksum({})).toBe(checksum({}));
    expect(checksum({ agent: { config: { log: { level: 'debug' } } } })).not.toBe(checksum({}));
  });

  it('ships the Grafana dashboards as a sidecar ConfigMap, identical to deploy/grafana/dashboards', () => {
    const { documents } = render({ ...release, values: { grafanaDashboards: { enabled: true, namespace: 'grafana' } } });
    const cm = find(documents.map((d) => d.object as Obj), 'ConfigMap', 'plumb-grafana-dashboards') as Obj & { data: Record<string, string> };
    expect(cm.metadata.namespace).toBe('grafana');
    expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
    const shipped = readdirSync(join(ROOT, 'deploy', 'grafana', 'dashboards')).sort();
    expect(Object.keys(cm.data).sort()).toEqual(shipped);
    for (const f of shipped) {
      const original = readFileSync(join(ROOT, 'deploy', 'grafana', 'dashboards', f), 'utf8');
      expect(readFileSync(join(CHART, 'dashboards', f), 'utf8'), `chart copy of ${f}`).toBe(original);
      expect(JSON.parse(cm.data[f])).toEqual(JSON.parse(original));
    }
    expect(render(release).documents.some((d) => d.object.metadata && (d.object.metadata as { name: string }).name === 'plumb-grafana-dashboards')).toBe(false);
  });

  it('is an application chart whose appVersion is plumb\'s version', () => {
    const chart = YAML.parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Record<string, string>;
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(chart).toMatchObject({ apiVersion: 'v2', name: 'plumb', type: 'application', appVersion: pkg.version });
    const ds = find<Workload>(loadManifests(), 'DaemonSet');
    expect(ds.spec.template.spec.containers[0]).toMatchObject({ image: `plumb:${pkg.version}` });
  });
});
