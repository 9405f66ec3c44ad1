/**
 * How to reach the Kubernetes API: from a kubeconfig file (agent.kubernetes.kubeconfig, else
 * $KUBECONFIG) outside the cluster, or as the pod's service account inside it
 * ($KUBERNETES_SERVICE_HOST, the token and CA the kubelet mounts). The environment is passed in
 * by the composition root; nothing here reads process.env.
 *
 * A kubeconfig's current context gives the server, its CA (file or inline data, or
 * insecure-skip-tls-verify) and the user's bearer token (inline or tokenFile) or client
 * certificate. Exec and auth-provider plugins are refused with a message: they run programs.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { PlumbError, errorMessage } from '../../../shared/errors.ts';

export interface KubeAccess {
  /** https://host:port (or http:// for a test server). */
  server: string;
  /** A fixed bearer token. */
  token: string | undefined;
  /** A file holding the bearer token, read again as it rotates (bound service account tokens expire). */
  tokenFile: string | undefined;
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  insecure: boolean;
  /** What it came from, for the log. */
  source: string;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

type Read = (file: string) => string;
const readText: Read = (file) => readFileSync(file, 'utf8');

function accessError(message: string, cause?: unknown): PlumbError {
  return new PlumbError('PLUMB_ERR_KUBE_ACCESS', `agent.kubernetes: ${message}`, cause !== undefined ? { cause } : undefined);
}

/** Where the API is and how to authenticate, or a PLUMB_ERR_KUBE_ACCESS naming what is missing. */
export function resolveAccess(kubeconfig: string | undefined, env: Record<string, string | undefined>, read: Read = readText, saDir = SERVICE_ACCOUNT_DIR): KubeAccess {
  // KUBECONFIG may list several files; the first one that exists names the context.
  const file = kubeconfig ?? env.KUBECONFIG?.split(path.delimiter).find((f) => f.length > 0);
  if (file !== undefined) return fromKubeconfig(file, read);
  const host = env.KUBERNETES_SERVICE_HOST;
  if (host !== undefined && host !== '') {
    const port = env.KUBERNETES_SERVICE_PORT ?? '443';
    const h = host.includes(':') ? `[${host}]` : host;
    let ca: string | undefined;
    try {
      ca = read(path.join(saDir, 'ca.crt'));
    } catch (err) {
      throw accessError(`in the cluster, but the service account's CA (${path.join(saDir, 'ca.crt')}) cannot be read (${errorMessage(err)}); mount the service account token (automountServiceAccountToken: true)`, err);
    }
    return { server: `https://${h}:${port}`, token: undefined, tokenFile: path.join(saDir, 'token'), ca, cert: undefined, key: undefined, insecure: false, source: 'in-cluster service account' };
  }
  throw accessError('enabled, but there is no API to reach: set agent.kubernetes.kubeconfig or $KUBECONFIG outside a cluster; inside one, $KUBERNETES_SERVICE_HOST is set by Kubernetes');
}

interface Named<T> {
  name?: string;
  [key: string]: unknown;
  cluster?: T;
  user?: T;
  context?: T;
}

function fromKubeconfig(file: string, read: Read): KubeAccess {
  let doc: Record<string, unknown>;
  try {
    doc = (YAML.parse(read(file)) ?? {}) as Record<string, unknown>;
  } catch (err) {
    throw accessError(`kubeconfig ${file} cannot be read (${errorMessage(err)})`, err);
  }
  const dir = path.dirname(file);
  const find = <T>(list: unknown, name: unknown, key: 'cluster' | 'user' | 'context'): T | undefined =>
    Array.isArray(list) ? ((list as Named<T>[]).find((x) => x.name === name)?.[key] as T | undefined) : undefined;
  const current = doc['current-context'];
  const context = find<Record<string, unknown>>(doc.contexts, current, 'context');
  if (context === undefined) throw accessError(`kubeconfig ${file}: no context "${String(current)}" (current-context); pick one with kubectl config use-context`);
  const cluster = find<Record<string, unknown>>(doc.clusters, context.cluster, 'cluster');
  if (cluster === undefined || typeof cluster.server !== 'string') throw accessError(`kubeconfig ${file}: cluster "${String(context.cluster)}" has no server`);
  const user = find<Record<string, unknown>>(doc.users, context.user, 'user') ?? {};
  if (user.exec !== undefined || user['auth-provider'] !== undefined) {
    throw accessError(`kubeconfig ${file}: user "${String(context.user)}" authenticates through a plugin (exec/auth-provider), which plumb does not run; use a token or a client certificate`);
  }
  const fileOrData = (fileKey: string, dataKey: string, obj: Record<string, unknown>): string | undefined => {
    const data = obj[dataKey];
    if (typeof data === 'string') return Buffer.from(data, 'base64').toString('utf8');
    const f = obj[fileKey];
    if (typeof f !== 'string') return undefined;
    const full = path.resolve(dir, f);
    try {
      return read(full);
    } catch (err) {
      throw accessError(`kubeconfig ${file}: ${fileKey} ${full} cannot be read (${errorMessage(err)})`, err);
    }
  };
  return {
    server: cluster.server.replace(/\/+$/, ''),
    token: typeof user.token === 'string' ? user.token : undefined,
    tokenFile: typeof user.tokenFile === 'string' ? path.resolve(dir, user.tokenFile) : undefined,
    ca: fileOrData('certificate-authority', 'certificate-authority-data', cluster),
    cert: fileOrData('client-certificate', 'client-certificate-data', user),
    key: fileOrData('client-key', 'client-key-data', user),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    source: `kubeconfig ${file} (context ${String(current)})`,
  };
}
