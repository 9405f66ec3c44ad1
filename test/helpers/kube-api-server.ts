/**
 * A stand-in for the Kubernetes API server, speaking what a list+watch client sees of it:
 *
 * - Bearer token authentication (401 with a Status object otherwise).
 * - GET /api/v1/pods and /api/v1/namespaces: a List (`kind: PodList`, `metadata.resourceVersion`,
 *   items without kind) in pages of `limit` with a `continue` token; a token from before a
 *   compaction answers 410 Gone (`reason: Expired`). `fieldSelector=spec.nodeName=<node>` for pods.
 * - `watch=1`: HTTP 200, chunked, one JSON event per line (`{"type","object"}`, objects with kind
 *   and apiVersion). From `resourceVersion` on, history is replayed first; with none (or "0"),
 *   the current objects come as ADDED. A version older than the last compaction gets one ERROR
 *   event (Status, code 410, "too old resource version") and the end of the response, as the API
 *   server does. BOOKMARK events go to watches that asked for them (`allowWatchBookmarks`).
 *   `timeoutSeconds` ends the response.
 * - One resourceVersion counter for every object, as etcd's revision.
 *
 * Controls for tests: set/delete objects, compact, bookmark, drop every watch connection, fail
 * the next requests with a status. Every request is recorded.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

type Resource = 'pods' | 'namespaces';

interface Obj {
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

interface Change {
  rv: number;
  resource: Resource;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: Obj;
}

interface Watch {
  resource: Resource;
  node: string | undefined;
  bookmarks: boolean;
  res: http.ServerResponse;
}

const KIND: Record<Resource, string> = { pods: 'Pod', namespaces: 'Namespace' };

export interface RecordedRequest {
  path: string;
  query: URLSearchParams;
}

export class KubeApiServer {
  readonly token: string;
  readonly requests: RecordedRequest[] = [];
  private readonly server: http.Server;
  private readonly sockets = new Set<Socket>();
  private readonly store: Record<Resource, Map<string, Obj>> = { pods: new Map(), namespaces: new Map() };
  private history: Change[] = [];
  private rv = 100;
  /** Versions below this were compacted away. */
  private compacted = 0;
  private readonly watches = new Set<Watch>();
  private readonly snapshots = new Map<string, { rv: number; items: Obj[] }>();
  private failNext: { count: number; status: number } = { count: 0, status: 500 };
  private snapshotSeq = 0;
  port = 0;

  constructor(token = 'test-token') {
    this.token = token;
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Creates or replaces an object; watchers see ADDED or MODIFIED. */
  set(resource: Resource, object: Obj): void {
    const key = keyOf(object);
    const type = this.store[resource].has(key) ? 'MODIFIED' : 'ADDED';
    const stored: Obj = structuredClone(object);
    stored.metadata.resourceVersion = String(++this.rv);
    this.store[resource].set(key, stored);
    this.publish({ rv: this.rv, resource, type, object: stored });
  }

  delete(resource: Resource, namespace: string | undefined, name: string): void {
    const key = namespace === undefined ? name : `${namespace}/${name}`;
    const old = this.store[resource].get(key);
    if (old === undefined) return;
    this.store[resource].delete(key);
    const gone: Obj = structuredClone(old);
    gone.metadata.resourceVersion = String(++this.rv);
    this.publish({ rv: this.rv, resource, type: 'DELETED', object: gone });
  }

  /** Forgets history: every version before now is too old to watch from, every continue token expires. */
  compact(): void {
    this.compacted = this.rv + 1;
    this.history = [];
    this.snapshots.clear();
  }

  /** A BOOKMARK at the current version to every watch that allows them. */
  bookmark(): void {
    for (const w of this.watches) {
      if (w.bookmarks) w.res.write(JSON.stringify({ type: 'BOOKMARK', object: { kind: KIND[w.resource], apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } } }) + '\n');
    }
  }

  /** Cuts every open watch connection (as a restarted API server or a load balancer does). */
  dropWatches(): void {
    for (const w of this.watches) w.res.socket?.destroy();
    this.watches.clear();
  }

  /** The next `count` requests are answered with `status`. */
  fail(count: number, status = 500): void {
    this.failNext = { count, status };
  }

  /** Open watch connections. */
  get watching(): number {
    return this.watches.size;
  }

  private publish(change: Change): void {
    this.history.push(change);
    for (const w of this.watches) {
      if (w.resource !== change.resource || !matchesNode(change.object, w.node)) continue;
      w.res.write(JSON.stringify({ type: change.type, object: withKind(change.resource, change.object) }) + '\n');
    }
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push({ path: url.pathname, query: url.searchParams });
    if (req.headers.authorization !== `Bearer ${this.token}`) return status(res, 401, 'Unauthorized', 'Unauthorized');
    if (this.failNext.count > 0) {
      this.failNext.count--;
      return status(res, this.failNext.status, 'InternalError', 'injected failure');
    }
    const resource = url.pathname === '/api/v1/pods' ? 'pods' : url.pathname === '/api/v1/namespaces' ? 'namespaces' : undefined;
    if (resource === undefined || req.method !== 'GET') return status(res, 404, 'NotFound', `the server could not find the requested resource (${url.pathname})`);
    const q = url.searchParams;
    let node: string | undefined;
    const selector = q.get('fieldSelector');
    if (selector !== null && selector !== '') {
      const m = /^spec\.nodeName=(.*)$/.exec(selector);
      if (m === null || resource !== 'pods') return status(res, 400, 'BadRequest', `field label not supported: ${selector}`);
      node = m[1];
    }
    if (q.get('watch') === '1' || q.get('watch') === 'true') return this.watch(resource, node, q, res);
    return this.list(resource, node, q, res);
  }

  private list(resource: Resource, node: string | undefined, q: URLSearchParams, res: http.ServerResponse): void {
    const limit = Number(q.get('limit') ?? '0');
    const token = q.get('continue');
    let snap: { rv: number; items: Obj[] };
    let start = 0;
    if (token !== null && token !== '') {
      const [id, offset] = token.split(':');
      const s = this.snapshots.get(id);
      if (s === undefined || s.rv < this.compacted) {
        return status(res, 410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.');
      }
      snap = s;
      start = Number(offset);
    } else {
      const items = [...this.store[resource].values()].filter((o) => matchesNode(o, node)).sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
      snap = { rv: this.rv, items: structuredClone(items) };
    }
    const end = limit > 0 ? Math.min(snap.items.length, start + limit) : snap.items.length;
    const metadata: Record<string, unknown> = { resourceVersion: String(snap.rv) };
    if (end < snap.items.length) {
      const id = String(++this.snapshotSeq);
      this.snapshots.set(id, snap);
      metadata.continue = `${id}:${end}`;
      metadata.remainingItemCount = snap.items.length - end;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: `${KIND[resource]}List`, apiVersion: 'v1', metadata, items: snap.items.slice(start, end) }));
  }

  private watch(resource: Resource, node: string | undefined, q: URLSearchParams, res: http.ServerResponse): void {
    const from = q.get('resourceVersion');
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const send = (type: string, object: unknown): void => void res.write(JSON.stringify({ type, object }) + '\n');
    if (from === null || from === '' || from === '0') {
      for (const o of this.store[resource].values()) if (matchesNode(o, node)) send('ADDED', withKind(resource, o));
    } else {
      const v = Number(from);
      if (v < this.compacted - 1) {
        send('ERROR', { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${v} (${this.compacted - 1})`, reason: 'Expired', code: 410 });
        res.end();
        return;
      }
      for (const c of this.history) if (c.rv > v && c.resource === resource && matchesNode(c.object, node)) send(c.type, withKind(resource, c.object));
    }
    const w: Watch = { resource, node, bookmarks: q.get('allowWatchBookmarks') === 'true', res };
    this.watches.add(w);
    const timeout = Number(q.get('timeoutSeconds') ?? '0');
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    res.on('close', () => {
      clearTimeout(timer);
      this.watches.delete(w);
    });
  }
}

function keyOf(o: Obj): string {
  return o.metadata.namespace === undefined ? o.metadata.name : `${o.metadata.namespace}/${o.metadata.name}`;
}

function matchesNode(o: Obj, node: string | undefined): boolean {
  return node === undefined || o.spec?.nodeName === node;
}

function withKind(resource: Resource, o: Obj): unknown {
  return { kind: KIND[resource], apiVersion: 'v1', ...o };
}

function status(res: http.ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code }));
}
