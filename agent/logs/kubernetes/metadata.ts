/**
 * Pod metadata for log events: pods (of this node, with agent.kubernetes.nodeName) and namespaces
 * are listed and watched (watch.ts) into bounded caches, and `enrich` adds what the API knows to
 * the pod, namespace and container a kubelet log path names. Lookups are synchronous and read
 * only the caches: a line is never held waiting for the API. A pod not (yet) in the cache is
 * counted and its events keep the path's fields.
 *
 * Label and annotation keys have their dots replaced by underscores (Filebeat's dedot): an
 * `app.kubernetes.io/name` label next to an `app` label would otherwise clash as object and value
 * in Elasticsearch.
 */
import type { Logger } from '../../../shared/log.ts';
import { LogOnce } from '../../../shared/log.ts';
import { errorMessage } from '../../../shared/errors.ts';
import type { Telemetry } from '../../../shared/telemetry.ts';
import type { KubernetesMeta, PodMetadata } from '../tail/formats.ts';
import type { KubeAccess } from './access.ts';
import type { KubernetesConfig } from './config.ts';
import { KubeApi, Reflector, type KubeObject, type ReflectorEvents } from './watch.ts';

export interface KubeMetadataDeps {
  telemetry: Telemetry;
  log: Logger;
}

interface Enriched {
  /** The pod and namespace objects it was built from: rebuilt when either changes. */
  pod: KubeObject;
  ns: KubeObject | undefined;
  meta: KubernetesMeta;
}

/** Built results kept per file's metadata object (one per followed file). */
const MAX_ENRICHED = 4096;

export class KubeMetadata {
  readonly pods: Reflector;
  readonly namespaces: Reflector;
  private readonly api: KubeApi;
  private readonly config: KubernetesConfig;
  private readonly log: Logger;
  private readonly built = new Map<KubernetesMeta, Enriched>();
  private readonly lookups: { inc(labels: { result: string }, n?: number): void };
  private purgeTimer: NodeJS.Timeout | undefined;

  constructor(config: KubernetesConfig, access: KubeAccess, deps: KubeMetadataDeps) {
    this.config = config;
    this.log = deps.log;
    this.api = new KubeApi(access);
    const t = deps.telemetry;
    const once = new LogOnce(deps.log);
    const lists = t.counter('plumb_kubernetes_lists_total', 'complete lists of pods or namespaces from the Kubernetes API (the first, and each after a 410 Gone)', ['resource']);
    const events = t.counter('plumb_kubernetes_watch_events_total', 'watch events applied, by resource and type (ADDED, MODIFIED, DELETED, BOOKMARK)', ['resource', 'type']);
    const dropped = t.counter('plumb_kubernetes_cache_dropped_total', 'objects not cached because the cache was full (agent.kubernetes.maxPods / maxNamespaces)', ['resource']);
    const failures = t.counter('plumb_kubernetes_errors_total', 'lists and watches that failed (retried with backoff), by resource, operation and HTTP status or error code', ['resource', 'op', 'code']);
    this.lookups = t.counter('plumb_kubernetes_lookups_total', 'log events looked up in the pod cache, by result (hit, miss)', ['result']);
    for (const result of ['hit', 'miss']) this.lookups.inc({ result }, 0);
    const on = (resource: 'pods' | 'namespaces'): ReflectorEvents => ({
      listed: () => lists.inc({ resource }),
      event: (type) => events.inc({ resource, type }),
      dropped: () => dropped.inc({ resource }),
      failed: (op, code, err) => {
        failures.inc({ resource, op, code });
        once.warn(`kube:${resource}:${op}:${code}`, { resource, op, code, err: errorMessage(err) }, 'the Kubernetes API did not answer a list or watch; retrying with backoff');
      },
    });
    const common = {
      pageSize: config.pageSize,
      watchTimeoutMs: config.watchTimeout,
      requestTimeoutMs: config.requestTimeout,
      deleteDelayMs: config.deleteDelay,
      backoff: { initialMs: config.retryInitial, maxMs: config.retryMax },
    };
    this.pods = new Reflector(
      this.api,
      { ...common, path: '/api/v1/pods', fieldSelector: config.nodeName !== undefined ? `spec.nodeName=${config.nodeName}` : undefined, maxObjects: config.maxPods },
      on('pods'),
    );
    this.namespaces = new Reflector(this.api, { ...common, path: '/api/v1/namespaces', fieldSelector: undefined, maxObjects: config.maxNamespaces }, on('namespaces'));
    t.gaugeFrom('plumb_kubernetes_cached_pods', 'pods in the metadata cache', () => this.pods.objects.size);
    t.gaugeFrom('plumb_kubernetes_cached_namespaces', 'namespaces in the metadata cache', () => this.namespaces.objects.size);
  }

  start(): void {
    this.pods.start();
    this.namespaces.start();
    this.purgeTimer = setInterval(() => {
      const now = Date.now();
      this.pods.purge(now);
      this.namespaces.purge(now);
    }, Math.max(1000, Math.min(this.config.deleteDelay, 10_000)));
    this.purgeTimer.unref();
    this.log.info({ node: this.config.nodeName ?? '(all)' }, 'watching Kubernetes pods for log metadata');
  }

  async stop(): Promise<void> {
    clearInterval(this.purgeTimer);
    await Promise.all([this.pods.stop(), this.namespaces.stop()]);
    await this.api.close();
  }

  /** Both caches listed once. */
  async synced(): Promise<void> {
    await Promise.all([this.pods.synced, this.namespaces.synced]);
  }

  /**
   * `meta` with what the API knows of its pod, or `meta` itself when the pod is not cached (or a
   * pod of the same name with another uid is: a recreated StatefulSet pod is another pod).
   * Results are kept per `meta` (one per file) until the pod or its namespace changes.
   */
  enrich(meta: KubernetesMeta): KubernetesMeta {
    const pod = this.pods.get(`${meta.namespace}/${meta.pod}`);
    if (pod === undefined || (meta.podUid !== undefined && pod.metadata.uid !== undefined && pod.metadata.uid !== meta.podUid)) {
      this.lookups.inc({ result: 'miss' });
      return meta;
    }
    this.lookups.inc({ result: 'hit' });
    const ns = this.namespaces.get(meta.namespace);
    const have = this.built.get(meta);
    if (have !== undefined && have.pod === pod && have.ns === ns) return have.meta;
    const enriched: KubernetesMeta = { ...meta, api: this.podMetadata(pod, ns, meta.container) };
    if (this.built.size >= MAX_ENRICHED) this.built.clear();
    this.built.set(meta, { pod, ns, meta: enriched });
    return enriched;
  }

  private podMetadata(pod: KubeObject, ns: KubeObject | undefined, container: string): PodMetadata {
    const spec = pod.spec ?? {};
    const status = pod.status ?? {};
    const specs = [spec.containers, spec.initContainers, spec.ephemeralContainers].flatMap((l) => (Array.isArray(l) ? (l as { name?: string; image?: string }[]) : []));
    const statuses = [status.containerStatuses, status.initContainerStatuses, status.ephemeralContainerStatuses].flatMap((l) =>
      Array.isArray(l) ? (l as { name?: string; containerID?: string; image?: string }[]) : [],
    );
    const st = statuses.find((c) => c.name === container);
    // "containerd://<id>": the id alone, as /var/log/containers names carry it.
    const containerId = st?.containerID?.replace(/^[a-z0-9-]+:\/\//, '');
    return {
      uid: pod.metadata.uid,
      nodeName: typeof spec.nodeName === 'string' ? spec.nodeName : undefined,
      labels: dedot(pod.metadata.labels),
      annotations: this.config.annotations ? dedot(pod.metadata.annotations) : undefined,
      namespaceLabels: dedot(ns?.metadata.labels),
      image: specs.find((c) => c.name === container)?.image ?? st?.image,
      containerId: containerId !== undefined && containerId !== '' ? containerId : undefined,
    };
  }
}

function dedot(m: Record<string, string> | undefined): Record<string, string> | undefined {
  if (m === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) out[k.replaceAll('.', '_')] = v;
  return out;
}
