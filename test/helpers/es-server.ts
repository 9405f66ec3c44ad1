/**
 * A small Elasticsearch stand-in for tests that follows the parts of the REST contract plumb's
 * sinks use, with the answers a real cluster gives:
 *
 * - `GET /` (cluster info with a version) and the `x-elastic-product: Elasticsearch` header on
 *   every answer, which the official client checks;
 * - auth: `Authorization: ApiKey …` or `Basic …`; missing or wrong credentials get 401 with the
 *   `security_exception` body and `WWW-Authenticate` header Elasticsearch sends;
 * - `POST /_bulk` and `POST /{index}/_bulk`: NDJSON action/source pairs (gzip or not), one item
 *   per action in `items` with its own status, the top-level `errors` flag; `create` of an
 *   existing `_id` is a 409 `version_conflict_engine_exception`; a configurable field that must
 *   be a number gives 400 `mapper_parsing_exception`; items can be throttled (429
 *   `es_rejected_execution_exception`);
 * - index templates (`PUT/GET/HEAD /_index_template/{name}`); a `create` into a name matched by a
 *   template with `data_stream` creates the data stream and its backing index, where only
 *   `create` is allowed and `@timestamp` is required (`GET /_data_stream/{name}`);
 * - `GET /{index}/_count`, `GET /{index}/_doc/{id}`, `POST /{index}/_refresh`, `GET /_cat/indices`.
 *
 * Failures to inject: the next N bulk requests answered with a status, the next N items
 * throttled, a share of items throttled for as long as it is switched on (chosen by a seeded
 * generator, so a run is reproducible), a delay per bulk request, and a restart on the same port
 * with the same documents.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { seededRandom } from './random.ts';

export interface EsTestServerOptions {
  /** 0 (default) picks a free port; pass a previous server's port to restart it. */
  port?: number;
  host?: string;
  /** Version reported by GET /. */
  version?: string;
  /** When set, every request must carry one of these credentials. */
  auth?: { apiKey?: string; username?: string; password?: string };
  /** Documents where this field is present and not a number are refused with 400 (a `long` mapping). */
  numericField?: string;
  /** Error type for those refusals (Elasticsearch 8.8+ says document_parsing_exception). */
  mappingErrorType?: string;
  /** Shared between restarts so documents stay. */
  store?: EsStore;
  /**
   * False keeps only the ids (for benchmarks): sources are neither parsed (only checked to be
   * objects) nor held, and the numericField and data stream checks are off.
   */
  keepSources?: boolean;
}

export interface EsStore {
  /** index → _id → source */
  indices: Map<string, Map<string, Record<string, unknown>>>;
  templates: Map<string, Record<string, unknown>>;
  /** data stream name → backing index */
  dataStreams: Map<string, string>;
}

export interface EsTestServer {
  url: string;
  port: number;
  store: EsStore;
  /** Bulk requests seen (including refused ones), and the actions they carried. */
  bulkRequests: number;
  bulkActions: number;
  /** Bytes of bulk request bodies (as sent, before gunzip). */
  bulkBytes: number;
  /** Request headers of the first 1000 bulk requests. */
  bulkHeaders: IncomingMessage['headers'][];
  /** Answers the next `n` bulk requests with `status` (and an Elasticsearch error body) without storing anything. */
  failNextBulk(n: number, status?: number): void;
  /** The next `n` create/index items get 429 es_rejected_execution_exception. */
  throttleNextItems(n: number): void;
  /**
   * Until called again with 0, each create/index item gets 429 es_rejected_execution_exception
   * with probability `ratio` (0..1). The choice comes from a generator seeded with `seed`: the
   * same items in the same order are refused the same way in every run.
   */
  throttleItemRatio(ratio: number, seed?: number): void;
  /** Items answered 429 so far, by throttleNextItems and throttleItemRatio. */
  throttledItems: number;
  /** Every bulk request waits this long before it is handled. */
  delayMs: number;
  /** Documents in an index, a data stream, or across indices matching a `*` pattern. */
  count(target?: string): number;
  /** All documents (sources) of matching indices, with their ids. */
  docs(target?: string): { index: string; id: string; source: Record<string, unknown> }[];
  stop(): Promise<void>;
}

class HttpError extends Error {
  readonly status: number;
  readonly type: string;
  readonly extra: Record<string, unknown>;
  constructor(status: number, type: string, reason: string, extra: Record<string, unknown> = {}) {
    super(reason);
    this.status = status;
    this.type = type;
    this.extra = extra;
  }
}

const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

function errorBody(status: number, type: string, reason: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const cause = { type, reason, ...extra };
  return { error: { root_cause: [cause], ...cause }, status };
}

function matches(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(name);
}

export function newEsStore(): EsStore {
  return { indices: new Map(), templates: new Map(), dataStreams: new Map() };
}

export async function startEsServer(options: EsTestServerOptions = {}): Promise<EsTestServer> {
  const store = options.store ?? newEsStore();
  const host = options.host ?? '127.0.0.1';
  const version = options.version ?? '9.1.0';
  const uuids = new Map<string, string>();
  let failBulk = { left: 0, status: 503 };
  let throttleItems = 0;
  let throttleRatio = 0;
  let throttleRandom = seededRandom(1);

  const state: EsTestServer = {
    url: '',
    port: 0,
    store,
    bulkRequests: 0,
    bulkActions: 0,
    bulkBytes: 0,
    bulkHeaders: [],
    delayMs: 0,
    failNextBulk(n, status = 503) {
      failBulk = { left: n, status };
    },
    throttleNextItems(n) {
      throttleItems = n;
    },
    throttleItemRatio(ratio, seed = 1) {
      if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`throttleItemRatio: ratio must be within 0..1, got ${ratio}`);
      throttleRatio = ratio;
      throttleRandom = seededRandom(seed);
    },
    throttledItems: 0,
    count(target = '*') {
      return resolveTargets(target).reduce((n, i) => n + (store.indices.get(i)?.size ?? 0), 0);
    },
    docs(target = '*') {
      const out: { index: string; id: string; source: Record<string, unknown> }[] = [];
      for (const index of resolveTargets(target)) for (const [id, source] of store.indices.get(index) ?? []) out.push({ index, id, source });
      return out;
    },
    stop: () => Promise.resolve(),
  };

  function resolveTargets(target: string): string[] {
    const out = new Set<string>();
    for (const t of target.split(',')) {
      const ds = store.dataStreams.get(t);
      if (ds !== undefined) out.add(ds);
      for (const name of store.indices.keys()) if (matches(t, name)) out.add(name);
      for (const [name, backing] of store.dataStreams) if (t.includes('*') && matches(t, name)) out.add(backing);
    }
    return [...out];
  }

  function uuid(index: string): string {
    let u = uuids.get(index);
    if (u === undefined) uuids.set(index, (u = randomBytes(16).toString('base64url').slice(0, 22)));
    return u;
  }

  function checkAuth(req: IncomingMessage, path: string): void {
    const auth = options.auth;
    if (auth === undefined) return;
    const header = req.headers.authorization;
    const challenge = { header: { 'WWW-Authenticate': ['Basic realm="security", charset="UTF-8"', 'Bearer realm="security"', 'ApiKey'] } };
    if (header === undefined) throw new HttpError(401, 'security_exception', `missing authentication credentials for REST request [${path}]`, challenge);
    if (header.startsWith('ApiKey ')) {
      if (auth.apiKey !== undefined && header.slice(7) === auth.apiKey) return;
      throw new HttpError(401, 'security_exception', 'unable to authenticate with provided credentials and anonymous access is not allowed for this request', {
        additional_unsuccessful_credentials: 'API key: invalid ApiKey value',
        ...challenge,
      });
    }
    if (header.startsWith('Basic ')) {
      const [user, ...rest] = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':');
      if (auth.username !== undefined && user === auth.username && rest.join(':') === auth.password) return;
      throw new HttpError(401, 'security_exception', `unable to authenticate user [${user}] for REST request [${path}]`, challenge);
    }
    throw new HttpError(401, 'security_exception', `missing authentication credentials for REST request [${path}]`, challenge);
  }

  function dataStreamTemplate(name: string): Record<string, unknown> | undefined {
    let best: Record<string, unknown> | undefined;
    let bestPriority = -1;
    for (const t of store.templates.values()) {
      const patterns = (t.index_patterns as string[] | string | undefined) ?? [];
      const list = Array.isArray(patterns) ? patterns : [patterns];
      const priority = typeof t.priority === 'number' ? t.priority : 0;
      if (list.some((p) => matches(p, name)) && priority > bestPriority) {
        best = t;
        bestPriority = priority;
      }
    }
    return best?.data_stream !== undefined ? best : undefined;
  }

  /** The concrete index a write to `target` lands in, creating a data stream when a template says so. */
  function writeIndex(target: string, op: string, source: Record<string, unknown>): string {
    const existing = store.dataStreams.get(target);
    const isStream = existing !== undefined || (!store.indices.has(target) && dataStreamTemplate(target) !== undefined);
    if (!isStream) return target;
    if (op !== 'create') throw new HttpError(400, 'illegal_argument_exception', `only write ops with an op_type of create are allowed in data streams`);
    if (typeof source['@timestamp'] !== 'string' && typeof source['@timestamp'] !== 'number') {
      throw new HttpError(400, 'document_parsing_exception', '[1:2] failed to parse: data stream timestamp field [@timestamp] is missing');
    }
    if (existing !== undefined) return existing;
    const d = new Date();
    const backing = `.ds-${target}-${d.getUTCFullYear()}.${String(d.getUTCMonth() + 1).padStart(2, '0')}.${String(d.getUTCDate()).padStart(2, '0')}-000001`;
    store.dataStreams.set(target, backing);
    store.indices.set(backing, new Map());
    return backing;
  }

  function bulk(body: Buffer, defaultIndex: string | undefined): Record<string, unknown> {
    const started = Date.now();
    const lines = body.toString('utf8').split('\n');
    if (lines[lines.length - 1] !== '') throw new HttpError(400, 'illegal_argument_exception', 'The bulk request must be terminated by a newline [\\n]');
    const items: Record<string, unknown>[] = [];
    let errors = false;
    for (let i = 0; i < lines.length - 1; i++) {
      if (lines[i] === '') continue;
      let action: Record<string, Record<string, unknown>>;
      try {
        action = JSON.parse(lines[i]);
      } catch {
        throw new HttpError(400, 'x_content_parse_exception', `[1:1] Malformed action/metadata line [${i + 1}], expected START_OBJECT`);
      }
      const op = Object.keys(action)[0];
      const meta = action[op] ?? {};
      if (!['create', 'index', 'delete', 'update'].includes(op)) throw new HttpError(400, 'illegal_argument_exception', `Malformed action/metadata line [${i + 1}], expected field [create], [delete], [index] or [update] but found [${op}]`);
      const target = (meta._index as string | undefined) ?? defaultIndex;
      if (target === undefined) throw new HttpError(400, 'action_request_validation_exception', 'Validation Failed: 1: index is missing;');
      if (op === 'delete' || op === 'update') throw new HttpError(400, 'illegal_argument_exception', `this test server does not support [${op}]`);
      state.bulkActions++;
      const raw = lines[++i];
      const id = (meta._id as string | undefined) ?? randomBytes(10).toString('base64url');
      let item: Record<string, unknown>;
      try {
        let source: Record<string, unknown>;
        try {
          if (options.keepSources === false) {
            if (raw === undefined || raw[0] !== '{' || raw[raw.length - 1] !== '}') throw new Error('not a JSON object');
            source = EMPTY;
          } else {
            source = JSON.parse(raw);
          }
        } catch (err) {
          throw new HttpError(400, options.mappingErrorType ?? 'mapper_parsing_exception', `failed to parse`, { caused_by: { type: 'x_content_parse_exception', reason: (err as Error).message } });
        }
        let throttled = false;
        if (throttleItems > 0) {
          throttleItems--;
          throttled = true;
        } else if (throttleRatio > 0) {
          throttled = throttleRandom() < throttleRatio;
        }
        if (throttled) {
          state.throttledItems++;
          throw new HttpError(429, 'es_rejected_execution_exception', 'rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1024, max_coordinating_and_primary_bytes=1024]');
        }
        const index = options.keepSources === false ? target : writeIndex(target, op, source);
        const field = options.numericField;
        if (field !== undefined && source[field] !== undefined && typeof source[field] !== 'number' && !/^-?\d+$/.test(String(source[field]))) {
          const preview = String(source[field]);
          throw new HttpError(400, options.mappingErrorType ?? 'mapper_parsing_exception', `failed to parse field [${field}] of type [long] in document with id '${id}'. Preview of field's value: '${preview}'`, {
            caused_by: { type: 'illegal_argument_exception', reason: `For input string: "${preview}"` },
          });
        }
        let docs = store.indices.get(index);
        if (docs === undefined) store.indices.set(index, (docs = new Map()));
        if (op === 'create' && docs.has(id)) {
          throw new HttpError(409, 'version_conflict_engine_exception', `[${id}]: version conflict, document already exists (current version [1])`, { index_uuid: uuid(index), shard: '0', index });
        }
        const existed = docs.has(id);
        docs.set(id, options.keepSources === false ? EMPTY : source);
        item = { _index: index, _id: id, _version: 1, result: existed ? 'updated' : 'created', _shards: { total: 2, successful: 1, failed: 0 }, _seq_no: docs.size - 1, _primary_term: 1, status: existed ? 200 : 201 };
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        errors = true;
        const index = store.dataStreams.get(target) ?? target;
        item = { _index: index, _id: id, status: err.status, error: { type: err.type, reason: err.message, ...err.extra } };
      }
      items.push({ [op]: item });
    }
    return { errors, took: Date.now() - started, items };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    let body = await readBody(req);
    const wireBytes = body.length;
    if (/gzip/i.test(req.headers['content-encoding'] ?? '')) body = gunzipSync(body);
    checkAuth(req, path);
    const parts = path.split('/').filter(Boolean).map(decodeURIComponent);

    if (parts.length === 0) {
      if (method === 'HEAD') return send(res, 200, undefined);
      return send(res, 200, {
        name: 'es-test-node',
        cluster_name: 'plumb-test',
        cluster_uuid: 'pLuMbTeStClUsTeRuUiD000',
        version: { number: version, build_flavor: 'default', build_type: 'tar', build_snapshot: false, lucene_version: '10.2.2', minimum_wire_compatibility_version: '8.19.0', minimum_index_compatibility_version: '8.0.0' },
        tagline: 'You Know, for Search',
      });
    }
    if (parts[parts.length - 1] === '_bulk' && (method === 'POST' || method === 'PUT') && parts.length <= 2) {
      state.bulkRequests++;
      state.bulkBytes += wireBytes;
      if (state.bulkHeaders.length < 1000) state.bulkHeaders.push(req.headers);
      if (state.delayMs > 0) await new Promise((r) => setTimeout(r, state.delayMs));
      if (failBulk.left > 0) {
        failBulk.left--;
        const s = failBulk.status;
        if (s === 429) throw new HttpError(429, 'es_rejected_execution_exception', 'rejected execution of coordinating operation');
        throw new HttpError(s, s === 503 ? 'cluster_block_exception' : 'internal_server_error', s === 503 ? 'blocked by: [SERVICE_UNAVAILABLE/2/no master];' : 'simulated failure');
      }
      const answer = bulk(body, parts.length === 2 ? parts[0] : undefined);
      const filter = url.searchParams.get('filter_path');
      return send(res, 200, filter ? filterPath(answer, filter.split(',')) : answer);
    }
    if (parts[0] === '_index_template' && parts.length === 2) {
      const name = parts[1];
      if (method === 'PUT' || method === 'POST') {
        const t = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
        if (!Array.isArray(t.index_patterns) && typeof t.index_patterns !== 'string') throw new HttpError(400, 'action_request_validation_exception', 'Validation Failed: 1: index patterns are missing;');
        if (url.searchParams.get('create') === 'true' && store.templates.has(name)) throw new HttpError(400, 'illegal_argument_exception', `index template [${name}] already exists`);
        store.templates.set(name, t);
        return send(res, 200, { acknowledged: true });
      }
      const t = store.templates.get(name);
      if (method === 'HEAD') return send(res, t ? 200 : 404, undefined);
      if (!t) throw new HttpError(404, 'resource_not_found_exception', `index template matching [${name}] not found`);
      return send(res, 200, { index_templates: [{ name, index_template: t }] });
    }
    if (parts[0] === '_data_stream' && parts.length === 2 && method === 'GET') {
      const list = [...store.dataStreams].filter(([n]) => matches(parts[1], n));
      if (list.length === 0 && !parts[1].includes('*')) throw new HttpError(404, 'index_not_found_exception', `no such index [${parts[1]}]`, { 'resource.type': 'index_or_alias', 'resource.id': parts[1], index: parts[1] });
      return send(res, 200, { data_streams: list.map(([name, backing]) => ({ name, timestamp_field: { name: '@timestamp' }, indices: [{ index_name: backing, index_uuid: uuid(backing) }], generation: 1, status: 'GREEN', template: findTemplateName(name) })) });
    }
    if (parts[0] === '_cat' && parts[1] === 'indices') {
      return send(res, 200, [...store.indices].map(([index, docs]) => ({ health: 'green', status: 'open', index, uuid: uuid(index), 'docs.count': String(docs.size) })));
    }
    if (parts.length === 2 && parts[1] === '_count') return send(res, 200, { count: state.count(parts[0]), _shards: { total: 1, successful: 1, skipped: 0, failed: 0 } });
    if (parts.length === 2 && parts[1] === '_refresh') return send(res, 200, { _shards: { total: 1, successful: 1, failed: 0 } });
    if (parts.length === 3 && parts[1] === '_doc' && method === 'GET') {
      for (const index of resolveTargets(parts[0])) {
        const source = store.indices.get(index)?.get(parts[2]);
        if (source) return send(res, 200, { _index: index, _id: parts[2], _version: 1, _seq_no: 0, _primary_term: 1, found: true, _source: source });
      }
      return send(res, 404, { _index: parts[0], _id: parts[2], found: false });
    }
    throw new HttpError(405, 'illegal_argument_exception', `this test server has no handler for [${method} ${path}]`);
  }

  function findTemplateName(stream: string): string | undefined {
    for (const [name, t] of store.templates) if (t.data_stream !== undefined && ((t.index_patterns as string[]) ?? []).some((p) => matches(p, stream))) return name;
    return undefined;
  }

  let server: Server;
  await new Promise<void>((resolve, reject) => {
    server = createServer((req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (err instanceof HttpError) {
          const headers: Record<string, string | string[]> = {};
          const challenge = (err.extra.header as Record<string, string[]> | undefined)?.['WWW-Authenticate'];
          if (err.status === 401 && challenge) headers['www-authenticate'] = challenge;
          send(res, err.status, errorBody(err.status, err.type, err.message, err.extra), headers);
        } else {
          send(res, 500, errorBody(500, 'exception', (err as Error).message));
        }
      });
    });
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server!.address() as AddressInfo).port;
  state.port = port;
  state.url = `http://${host}:${port}`;
  state.stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return state;
}

/**
 * Elasticsearch's filter_path for the forms clients use ("errors", "items.*.status"): keeps the
 * named paths, `*` matching any key, arrays walked through.
 */
function filterPath(value: unknown, paths: string[]): unknown {
  const keep = (v: unknown, segments: string[][]): unknown => {
    if (segments.some((s) => s.length === 0)) return v;
    if (Array.isArray(v)) {
      const out = v.map((x) => keep(x, segments)).filter((x) => x !== undefined);
      return out.length > 0 ? out : undefined;
    }
    if (v === null || typeof v !== 'object') return undefined;
    const out: Record<string, unknown> = {};
    for (const [k, child] of Object.entries(v)) {
      const next = segments.filter((s) => s[0] === '*' || s[0] === k).map((s) => s.slice(1));
      if (next.length === 0) continue;
      const kept = keep(child, next);
      if (kept !== undefined) out[k] = kept;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  };
  return keep(value, paths.map((p) => p.split('.'))) ?? {};
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string | string[]> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'x-elastic-product': 'Elasticsearch',
    'content-type': 'application/vnd.elasticsearch+json;compatible-with=9',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
