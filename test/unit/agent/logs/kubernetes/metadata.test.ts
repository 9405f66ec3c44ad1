/**
 * Pod metadata from the Kubernetes API (list + watch into a bounded cache) against the API
 * stand-in in test/helpers/kube-api-server.ts: paging, the node's field selector, watch events,
 * bookmarks, 410 Gone and the re-list, failures with backoff, the cache bound, token auth through
 * a kubeconfig; how access is resolved; and the fields an enriched event carries.
 * With $KUBECONFIG set, the last test lists a real cluster's pods (skipped otherwise).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeApiServer } from '../../../../helpers/kube-api-server.ts';
import { waitFor } from '../../../../helpers/wait.ts';
import { Telemetry } from '../../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../../shared/log.ts';
import { KubernetesSchema, type KubernetesConfig } from '../../../../../agent/logs/kubernetes/config.ts';
import { resolveAccess, type KubeAccess } from '../../../../../agent/logs/kubernetes/access.ts';
import { KubeMetadata } from '../../../../../agent/logs/kubernetes/metadata.ts';
import { kubernetesFromPath, type KubernetesMeta } from '../../../../../agent/logs/tail/formats.ts';
import { EventBuilder } from '../../../../../agent/logs/events.ts';

let api: KubeApiServer;
let tmp: string;
const running: KubeMetadata[] = [];

beforeEach(async () => {
  api = new KubeApiServer();
  await api.listen();
  tmp = await mkdtemp(path.join(os.tmpdir(), 'plumb-kube-'));
});

afterEach(async () => {
  for (const m of running.splice(0)) await m.stop();
  await api.close();
  await rm(tmp, { recursive: true, force: true });
});

function config(overrides: Record<string, unknown> = {}): KubernetesConfig {
  return Value.Decode(KubernetesSchema, Value.Default(KubernetesSchema, { enabled: true, nodeName: 'node-a', retryInitial: '20ms', retryMax: '100ms', ...overrides }));
}

async function kubeconfig(token = api.token): Promise<string> {
  const file = path.join(tmp, 'kubeconfig');
  await writeFile(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'current-context: test',
      'contexts: [{ name: test, context: { cluster: stand-in, user: agent } }]',
      `clusters: [{ name: stand-in, cluster: { server: "${api.url}" } }]`,
      `users: [{ name: agent, user: { token: "${token}" } }]`,
      '',
    ].join('\n'),
  );
  return file;
}

async function started(overrides: Record<string, unknown> = {}, access?: KubeAccess): Promise<{ meta: KubeMetadata; telemetry: Telemetry }> {
  const telemetry = new Telemetry();
  const meta = new KubeMetadata(config(overrides), access ?? resolveAccess(await kubeconfig(), {}), { telemetry, log: silentLogger() });
  running.push(meta);
  meta.start();
  return { meta, telemetry };
}

async function metric(telemetry: Telemetry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = telemetry.registry.getSingleMetric(name);
  if (m === undefined) return 0;
  const got = await m.get();
  return got.values.filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val)).reduce((sum, v) => sum + v.value, 0);
}

function pod(name: string, opts: { node?: string; labels?: Record<string, string>; uid?: string; image?: string } = {}) {
  return {
    metadata: {
      name,
      namespace: 'shop',
      uid: opts.uid ?? `uid-${name}`,
      labels: opts.labels ?? { app: name, 'app.kubernetes.io/name': 'web' },
      annotations: { 'prometheus.io/scrape': 'true' },
    },
    spec: { nodeName: opts.node ?? 'node-a', containers: [{ name: 'nginx', image: opts.image ?? 'nginx:1.27' }], initContainers: [{ name: 'init', image: 'busybox:1' }] },
    status: { phase: 'Running', containerStatuses: [{ name: 'nginx', containerID: `containerd://${'c'.repeat(64)}`, image: 'docker.io/library/nginx:1.27' }] },
  };
}

/** The path fields of a file under /var/log/pods for `name`. */
function fileMeta(name: string, uid = `uid-${name}`): KubernetesMeta {
  return { pod: name, namespace: 'shop', container: 'nginx', containerId: undefined, podUid: uid };
}

describe('KubeMetadata against the API stand-in', () => {
  it('lists in pages with the node selector and enriches with labels, annotations, image, node, uid and namespace labels', async () => {
    api.set('namespaces', { metadata: { name: 'shop', labels: { team: 'checkout', 'kubernetes.io/metadata.name': 'shop' } } });
    for (const n of ['a', 'b', 'c', 'd', 'e']) api.set('pods', pod(`web-${n}`));
    api.set('pods', pod('elsewhere', { node: 'node-b' }));
    const { meta, telemetry } = await started({ pageSize: 2 });
    await meta.synced();
    expect([...meta.pods.objects.keys()].sort()).toEqual(['shop/web-a', 'shop/web-b', 'shop/web-c', 'shop/web-d', 'shop/web-e']);
    const pages = api.requests.filter((r) => r.path === '/api/v1/pods' && r.query.get('watch') === null);
    expect(pages.map((r) => [r.query.get('limit'), r.query.get('fieldSelector'), r.query.get('continue') !== null])).toEqual([
      ['2', 'spec.nodeName=node-a', false],
      ['2', 'spec.nodeName=node-a', true],
      ['2', 'spec.nodeName=node-a', true],
    ]);
    const enriched = meta.enrich(fileMeta('web-c'));
    expect(enriched.api).toEqual({
      uid: 'uid-web-c',
      nodeName: 'node-a',
      labels: { app: 'web-c', 'app_kubernetes_io/name': 'web' },
      annotations: { 'prometheus_io/scrape': 'true' },
      namespaceLabels: { team: 'checkout', 'kubernetes_io/metadata_name': 'shop' },
      image: 'nginx:1.27',
      containerId: 'c'.repeat(64),
    });
    // One result per file (its path's metadata object), until the pod changes.
    const file = fileMeta('web-c');
    expect(meta.enrich(file)).toBe(meta.enrich(file));
    expect(meta.enrich(fileMeta('elsewhere')).api).toBeUndefined();
    expect(await metric(telemetry, 'plumb_kubernetes_lookups_total', { result: 'miss' })).toBe(1);
    expect(await metric(telemetry, 'plumb_kubernetes_lists_total', { resource: 'pods' })).toBe(1);
  });

  it('follows ADDED, MODIFIED and DELETED (kept for deleteDelay), and a pod recreated under the same name is another pod', async () => {
    const { meta, telemetry } = await started({ deleteDelay: '300ms' });
    await meta.synced();
    await waitFor(() => api.watching >= 2, { what: 'both watches open' });
    const file = fileMeta('web-a');
    expect(meta.enrich(file).api).toBeUndefined();
    api.set('pods', pod('web-a'));
    await waitFor(() => meta.enrich(file).api?.labels?.app === 'web-a', { what: 'the ADDED pod' });
    api.set('pods', pod('web-a', { labels: { app: 'web-a', version: 'v2' } }));
    await waitFor(() => meta.enrich(file).api?.labels?.version === 'v2', { what: 'the MODIFIED labels' });
    api.delete('pods', 'shop', 'web-a');
    await waitFor(async () => (await metric(telemetry, 'plumb_kubernetes_watch_events_total', { type: 'DELETED' })) === 1, { what: 'the DELETED event' });
    // The last lines of a deleted pod's files still get its metadata for a while.
    expect(meta.enrich(file).api?.labels?.version).toBe('v2');
    await waitFor(() => meta.enrich(file).api === undefined, { what: 'the deleted pod gone after deleteDelay' });
    api.set('pods', pod('web-a', { uid: 'uid-new' }));
    await waitFor(() => meta.pods.objects.has('shop/web-a'), { what: 'the recreated pod' });
    expect(meta.enrich(file).api).toBeUndefined();
    expect(meta.enrich(fileMeta('web-a', 'uid-new')).api?.uid).toBe('uid-new');
  });

  it('resumes a dropped watch from the last bookmark without listing again', async () => {
    api.set('pods', pod('web-a'));
    const { meta, telemetry } = await started();
    await meta.synced();
    await waitFor(() => api.watching >= 2, { what: 'both watches open' });
    api.set('namespaces', { metadata: { name: 'other' } }); // moves the version past the pods' last event
    api.bookmark();
    await waitFor(() => meta.pods.resourceVersion === api.resourceVersion, { what: 'the bookmark applied' });
    const bookmarked = api.resourceVersion;
    const before = api.requests.length;
    api.dropWatches();
    await waitFor(() => api.watching >= 2, { what: 'the watches reopened' });
    const rewatch = api.requests.slice(before).find((r) => r.path === '/api/v1/pods');
    expect(rewatch?.query.get('watch')).toBe('1');
    expect(rewatch?.query.get('resourceVersion')).toBe(bookmarked);
    expect(rewatch?.query.get('allowWatchBookmarks')).toBe('true');
    expect(await metric(telemetry, 'plumb_kubernetes_lists_total', { resource: 'pods' })).toBe(1);
    expect(await metric(telemetry, 'plumb_kubernetes_watch_events_total', { resource: 'pods', type: 'BOOKMARK' })).toBe(1);
  });

  it('lists again on 410 Gone (a compacted version), and sees what changed meanwhile', async () => {
    api.set('pods', pod('web-a'));
    api.set('pods', pod('web-b'));
    const { meta, telemetry } = await started();
    await meta.synced();
    await waitFor(() => api.watching >= 2, { what: 'both watches open' });
    api.dropWatches();
    api.delete('pods', 'shop', 'web-a');
    api.set('pods', pod('web-c'));
    api.compact();
    await waitFor(async () => (await metric(telemetry, 'plumb_kubernetes_lists_total', { resource: 'pods' })) === 2, { what: 'a second list' });
    await waitFor(() => meta.pods.objects.has('shop/web-c'), { what: 'the pod created during the gap' });
    expect([...meta.pods.objects.keys()].sort()).toEqual(['shop/web-b', 'shop/web-c']);
    // The cut connections count as failed watches; the 410 is not a failure, and no list failed.
    expect(await metric(telemetry, 'plumb_kubernetes_errors_total', { code: '410' })).toBe(0);
    expect(await metric(telemetry, 'plumb_kubernetes_errors_total', { op: 'list' })).toBe(0);
  });

  it('a watch that outlives timeoutSeconds is resumed from its version', async () => {
    api.set('pods', pod('web-a'));
    const { meta, telemetry } = await started({ watchTimeout: '1s' });
    await meta.synced();
    await waitFor(() => api.requests.filter((r) => r.path === '/api/v1/pods' && r.query.get('watch') === '1').length >= 2, { what: 'a second watch', timeoutMs: 5000 });
    api.set('pods', pod('web-b'));
    await waitFor(() => meta.pods.objects.has('shop/web-b'), { what: 'an event on the resumed watch' });
    expect(await metric(telemetry, 'plumb_kubernetes_lists_total', { resource: 'pods' })).toBe(1);
  });

  it('retries failures with backoff, counted by status', async () => {
    api.set('pods', pod('web-a'));
    api.fail(4, 503);
    const { meta, telemetry } = await started();
    await meta.synced();
    expect(await metric(telemetry, 'plumb_kubernetes_errors_total', { code: '503' })).toBe(4);
    expect(meta.pods.objects.has('shop/web-a')).toBe(true);
  });

  it('a wrong token is refused (401) and counted, never cached', async () => {
    const access = resolveAccess(await kubeconfig('wrong'), {});
    const { meta, telemetry } = await started({}, access);
    await waitFor(async () => (await metric(telemetry, 'plumb_kubernetes_errors_total', { code: '401', op: 'list' })) >= 2, { what: 'refusals' });
    expect(meta.pods.objects.size).toBe(0);
  });

  it('holds at most maxPods; the rest are counted, and updates to held pods still apply', async () => {
    for (const n of ['a', 'b', 'c', 'd', 'e']) api.set('pods', pod(`web-${n}`));
    const { meta, telemetry } = await started({ maxPods: 3 });
    await meta.synced();
    expect(meta.pods.objects.size).toBe(3);
    expect(await metric(telemetry, 'plumb_kubernetes_cache_dropped_total', { resource: 'pods' })).toBe(2);
    await waitFor(() => api.watching >= 2, { what: 'both watches open' });
    api.set('pods', pod('web-f'));
    api.set('pods', pod('web-a', { labels: { app: 'web-a', v: '2' } }));
    await waitFor(() => meta.pods.get('shop/web-a')?.metadata.labels?.v === '2', { what: 'the update' });
    expect(meta.pods.objects.size).toBe(3);
    expect(await metric(telemetry, 'plumb_kubernetes_cache_dropped_total', { resource: 'pods' })).toBe(3);
  });
});

describe('resolveAccess', () => {
  it('in the cluster: the service account token file and CA, the service host', async () => {
    await writeFile(path.join(tmp, 'ca.crt'), 'CA PEM');
    const a = resolveAccess(undefined, { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' }, undefined, tmp);
    expect(a).toMatchObject({ server: 'https://10.0.0.1:443', tokenFile: path.join(tmp, 'token'), ca: 'CA PEM', insecure: false });
    expect(resolveAccess(undefined, { KUBERNETES_SERVICE_HOST: 'fd00::1' }, undefined, tmp).server).toBe('https://[fd00::1]:443');
  });

  it('$KUBECONFIG wins over the service account; inline certificate data is decoded; files are relative to the kubeconfig', async () => {
    await writeFile(path.join(tmp, 'token.txt'), 'tok');
    const file = path.join(tmp, 'kc');
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    await writeFile(
      file,
      `current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: "https://api:6443/", certificate-authority-data: "${b64('CA')}"}}]\nusers: [{name: u, user: {tokenFile: token.txt, client-certificate-data: "${b64('CERT')}", client-key-data: "${b64('KEY')}"}}]\n`,
    );
    const a = resolveAccess(undefined, { KUBECONFIG: `${file}${path.delimiter}/nowhere`, KUBERNETES_SERVICE_HOST: '10.0.0.1' });
    expect(a).toMatchObject({ server: 'https://api:6443', ca: 'CA', cert: 'CERT', key: 'KEY', tokenFile: path.join(tmp, 'token.txt') });
  });

  it('refuses what it cannot use, naming the fix', async () => {
    expect(() => resolveAccess(undefined, {})).toThrow(/PLUMB_ERR_KUBE_ACCESS|no API to reach/);
    const file = path.join(tmp, 'kc');
    await writeFile(file, 'current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: "https://api"}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\n');
    expect(() => resolveAccess(file, {})).toThrow(/plugin \(exec\/auth-provider\)/);
    expect(() => resolveAccess(undefined, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }, undefined, path.join(tmp, 'missing'))).toThrow(/automountServiceAccountToken/);
  });
});

describe('enriched events', () => {
  it('carry kubernetes.* as Filebeat writes them, and container.id / container.image.name', () => {
    const uid = '3f1c2b9a-0d4e-4f5a-9b8c-7d6e5f4a3b2c';
    const base = kubernetesFromPath(`/var/log/pods/shop_web-a_${uid}/nginx/0.log`) as KubernetesMeta;
    expect(base).toMatchObject({ pod: 'web-a', namespace: 'shop', container: 'nginx', podUid: uid });
    const meta: KubernetesMeta = {
      ...base,
      api: { uid, nodeName: 'node-a', labels: { app: 'web' }, annotations: { a: 'b' }, namespaceLabels: { team: 'x' }, image: 'nginx:1.27', containerId: 'abc' },
    };
    const builder = new EventBuilder({ inputs: [{ definitions: {}, fields: {} }], patternsDirs: [], hostName: 'h' });
    const extra = { stream: 'stdout' as const, time: undefined, k8s: meta, json: undefined, tags: [] };
    const line = builder.event(0, 'hello', 0, 'f'.repeat(32), '/var/log/pods/shop_web-a_uid-web-a/nginx/0.log', false, extra, '2026-01-01T00:00:00.000Z', false);
    const ev = JSON.parse(line.json) as Record<string, unknown>;
    expect(ev.kubernetes).toEqual({
      pod: { name: 'web-a', uid },
      namespace: 'shop',
      node: { name: 'node-a' },
      container: { name: 'nginx', image: 'nginx:1.27' },
      labels: { app: 'web' },
      annotations: { a: 'b' },
      namespace_labels: { team: 'x' },
    });
    expect(ev.container).toEqual({ id: 'abc', image: { name: 'nginx:1.27' } });
  });
});

describe.skipIf(process.env.KUBECONFIG === undefined)('a real cluster ($KUBECONFIG)', () => {
  it('lists and watches its pods and namespaces, and enriches a pod it found', async () => {
    const access = resolveAccess(undefined, process.env);
    const telemetry = new Telemetry();
    const meta = new KubeMetadata(config({ nodeName: undefined }), access, { telemetry, log: silentLogger() });
    running.push(meta);
    meta.start();
    await waitFor(() => meta.pods.objects.size > 0 && meta.namespaces.objects.size > 0, { what: 'pods and namespaces listed', timeoutMs: 30_000 });
    const [key, p] = [...meta.pods.objects.entries()][0];
    const [namespace, name] = key.split('/');
    const container = ((p.spec?.containers as { name: string }[] | undefined) ?? [])[0]?.name ?? 'unknown';
    const enriched = meta.enrich({ pod: name, namespace, container, containerId: undefined, podUid: p.metadata.uid });
    expect(enriched.api?.uid).toBe(p.metadata.uid);
    expect(enriched.api?.namespaceLabels).toBeDefined();
  });
});
