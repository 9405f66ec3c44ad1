/**
 * `agent.kubernetes`: pod metadata from the Kubernetes API for files of the CRI layout
 * (/var/log/pods, /var/log/containers). Off by default; the DaemonSet turns it on and names its
 * node, so each agent lists and watches only the pods of its own node.
 */
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration, Section } from '../../../shared/config.ts';

export const KubernetesSchema = Section(
  {
    enabled: Type.Boolean({ default: false, description: 'add pod labels, annotations, node, image and uid to events of kubelet log files' }),
    nodeName: Type.Optional(
      Type.String({ minLength: 1, description: "only this node's pods are listed and watched (the DaemonSet sets it from spec.nodeName); unset: every pod of the cluster" }),
    ),
    kubeconfig: Type.Optional(
      Type.String({ minLength: 1, description: 'kubeconfig file to reach the API from outside the cluster; unset: $KUBECONFIG, else the in-cluster service account' }),
    ),
    annotations: Type.Boolean({ default: true, description: 'add pod annotations (labels are always added)' }),
    maxPods: Type.Integer({ minimum: 1, default: 10_000, description: 'pods held in the cache; more are not cached (counted) until others go' }),
    maxNamespaces: Type.Integer({ minimum: 1, default: 10_000, description: 'namespaces held in the cache (for their labels)' }),
    pageSize: Type.Integer({ minimum: 1, maximum: 10_000, default: 500, description: 'objects per list request (the list is read in chunks with continue tokens)' }),
    watchTimeout: Duration('5m', { description: 'a watch request lasts at most this long; it is then resumed from the last resourceVersion' }),
    deleteDelay: Duration('60s', { description: "a deleted pod's metadata is kept this long, for the last lines of its files still being read" }),
    requestTimeout: Duration('30s', { description: 'a list page or the start of a watch not answered within this time is retried' }),
    retryInitial: Duration('500ms', { description: 'first wait after a failed list or watch (doubling, with jitter)' }),
    retryMax: Duration('30s', { description: 'longest wait between retries' }),
  },
  { description: 'Kubernetes pod metadata for logs.' },
);

export type KubernetesConfig = StaticDecode<typeof KubernetesSchema>;
