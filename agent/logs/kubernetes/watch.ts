/**
 * List and watch of one kind of object (pods, namespaces), as client-go's reflector does:
 *
 * 1. List in pages (`limit` + `continue`), remember the list's `resourceVersion`, replace the cache.
 * 2. Watch from that version (`watch=1&resourceVersion=…&allowWatchBookmarks=true`): a chunked
 *    stream of one JSON event per line, ADDED / MODIFIED / DELETED update the cache, BOOKMARK only
 *    moves the version, and every event's object carries the version to resume from.
 * 3. The server ends a watch after `timeoutSeconds` (or drops it): watch again from the last
 *    version, without listing.
 * 4. "410 Gone" — an ERROR event whose Status has code 410, a 410 answer to the watch, or to a
 *    list page's continue token — means the version was compacted away: list again.
 * 5. Any other failure waits (backoff with jitter, reset by a success) and retries the same step.
 *
 * The cache is bounded: past `maxObjects` a new object is not kept (counted); updates and
 * deletions of kept ones still apply. A deleted object stays `deleteDelayMs` longer.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import { backoffDelay, type BackoffOptions } from '../../../shared/retry.ts';
import type { KubeAccess } from './access.ts';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface KubeObject {
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject & { code?: number; reason?: string; message?: string };
}

/** The version asked for is older than the server keeps: list again. */
export class GoneError extends Error {}

/** An HTTP client for the API: bearer token (re-read from its file), TLS from the access. */
export class KubeApi {
  private readonly access: KubeAccess;
  private readonly dispatcher: Dispatcher;
  private token: { value: string; readAt: number } | undefined;

  constructor(access: KubeAccess) {
    this.access = access;
    this.dispatcher = new Agent({
      connect: { ca: access.ca, cert: access.cert, key: access.key, rejectUnauthorized: !access.insecure },
      // A watch is a long response: undici's body timeout must not end it, the server's timeoutSeconds does.
      bodyTimeout: 0,
    });
  }

  async get(pathAndQuery: string, signal: AbortSignal, headersTimeout: number): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { accept: 'application/json' };
    const token = await this.bearer();
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    return request(`${this.access.server}${pathAndQuery}`, { method: 'GET', headers, signal, dispatcher: this.dispatcher, headersTimeout });
  }

  async close(): Promise<void> {
    await this.dispatcher.close().catch(() => undefined);
  }

  private async bearer(): Promise<string | undefined> {
    if (this.access.tokenFile === undefined) return this.access.token;
    // The kubelet rotates projected tokens well before they expire; a minute-old read is current enough.
    if (this.token === undefined || Date.now() - this.token.readAt > 60_000) {
      this.token = { value: (await readFile(this.access.tokenFile, 'utf8')).trim(), readAt: Date.now() };
    }
    return this.token.value;
  }
}

export interface ReflectorOptions {
  /** Collection path, e.g. /api/v1/pods. */
  path: string;
  fieldSelector: string | undefined;
  pageSize: number;
  watchTimeoutMs: number;
  requestTimeoutMs: number;
  maxObjects: number;
  deleteDelayMs: number;
  backoff: BackoffOptions;
}

export interface ReflectorEvents {
  /** A list replaced the cache (also after a 410). */
  listed(): void;
  /** A watch event applied, by type. */
  event(type: string): void;
  /** A new object not kept: the cache is full. */
  dropped(): void;
  /** A list or watch failed (op: list | watch), before the backoff. */
  failed(op: 'list' | 'watch', code: string, err: unknown): void;
}

export function objectKey(meta: ObjectMeta): string {
  return meta.namespace === undefined ? meta.name : `${meta.namespace}/${meta.name}`;
}

export class Reflector {
  readonly objects = new Map<string, KubeObject>();
  /** The version the next watch starts from; undefined: list first. */
  resourceVersion: string | undefined;
  private readonly api: KubeApi;
  private readonly options: ReflectorOptions;
  private readonly on: ReflectorEvents;
  private readonly deleted = new Map<string, number>();
  private abort: AbortController | undefined;
  private done: Promise<void> | undefined;
  private syncedOnce: (() => void) | undefined;
  /** Settles after the first complete list. */
  readonly synced: Promise<void>;

  constructor(api: KubeApi, options: ReflectorOptions, on: ReflectorEvents) {
    this.api = api;
    this.options = options;
    this.on = on;
    this.synced = new Promise((resolve) => (this.syncedOnce = resolve));
  }

  start(): void {
    if (this.abort !== undefined) return;
    this.abort = new AbortController();
    this.done = this.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    this.abort = undefined;
    await this.done;
    this.done = undefined;
  }

  get(key: string): KubeObject | undefined {
    return this.objects.get(key);
  }

  private async run(signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      let op: 'list' | 'watch' = 'list';
      try {
        if (this.resourceVersion === undefined) await this.list(signal);
        op = 'watch';
        await this.watch(signal);
        attempt = 0;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof GoneError) {
          this.resourceVersion = undefined;
          continue;
        }
        this.on.failed(op, failureCode(err), err);
        await sleep(backoffDelay(attempt++, this.options.backoff), undefined, { signal }).catch(() => undefined);
      }
    }
  }

  private query(extra: Record<string, string>): string {
    const q = new URLSearchParams(extra);
    if (this.options.fieldSelector !== undefined) q.set('fieldSelector', this.options.fieldSelector);
    return `${this.options.path}?${q.toString()}`;
  }

  private async list(signal: AbortSignal): Promise<void> {
    const fresh = new Map<string, KubeObject>();
    let token: string | undefined;
    let version: string | undefined;
    let dropped = 0;
    do {
      const params: Record<string, string> = { limit: String(this.options.pageSize) };
      if (token !== undefined) params.continue = token;
      const res = await this.api.get(this.query(params), signal, this.options.requestTimeoutMs);
      // An expired continue token: the list must start over.
      if (res.statusCode === 410) {
        await res.body.dump();
        throw new GoneError('list continue token expired');
      }
      if (res.statusCode !== 200) throw await statusError(res);
      const page = (await res.body.json()) as { metadata?: { resourceVersion?: string; continue?: string }; items?: KubeObject[] };
      for (const item of page.items ?? []) {
        if (item?.metadata?.name === undefined) continue;
        if (fresh.size >= this.options.maxObjects) {
          dropped++;
          continue;
        }
        fresh.set(objectKey(item.metadata), item);
      }
      token = page.metadata?.continue !== undefined && page.metadata.continue !== '' ? page.metadata.continue : undefined;
      version = page.metadata?.resourceVersion;
    } while (token !== undefined);
    this.objects.clear();
    this.deleted.clear();
    for (const [k, v] of fresh) this.objects.set(k, v);
    for (let i = 0; i < dropped; i++) this.on.dropped();
    this.resourceVersion = version;
    this.on.listed();
    this.syncedOnce?.();
  }

  private async watch(signal: AbortSignal): Promise<void> {
    const params: Record<string, string> = {
      watch: '1',
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(Math.max(1, Math.round(this.options.watchTimeoutMs / 1000))),
    };
    if (this.resourceVersion !== undefined) params.resourceVersion = this.resourceVersion;
    const res = await this.api.get(this.query(params), signal, this.options.requestTimeoutMs);
    if (res.statusCode === 410) {
      await res.body.dump();
      throw new GoneError('watch version expired');
    }
    if (res.statusCode !== 200) throw await statusError(res);
    let held = '';
    for await (const chunk of res.body) {
      held += (chunk as Buffer).toString('utf8');
      let nl = held.indexOf('\n');
      while (nl >= 0) {
        const line = held.slice(0, nl).trim();
        held = held.slice(nl + 1);
        if (line.length > 0) this.apply(JSON.parse(line) as WatchEvent);
        nl = held.indexOf('\n');
      }
    }
    if (held.trim().length > 0) this.apply(JSON.parse(held) as WatchEvent);
  }

  private apply(ev: WatchEvent): void {
    const obj = ev.object;
    if (ev.type === 'ERROR') {
      if (obj.code === 410) throw new GoneError(obj.message ?? 'resource version too old');
      throw new Error(`watch error ${String(obj.code)} ${obj.reason ?? ''}: ${obj.message ?? ''}`);
    }
    const version = obj?.metadata?.resourceVersion;
    if (version !== undefined) this.resourceVersion = version;
    this.on.event(ev.type);
    if (ev.type === 'BOOKMARK' || obj?.metadata?.name === undefined) return;
    const key = objectKey(obj.metadata);
    if (ev.type === 'DELETED') {
      if (this.objects.has(key)) this.deleted.set(key, Date.now());
    } else if (this.objects.has(key) || this.objects.size < this.options.maxObjects) {
      this.objects.set(key, obj);
      this.deleted.delete(key);
    } else {
      this.on.dropped();
    }
    this.purge(Date.now());
  }

  /** Deleted objects kept past their delay go. */
  purge(now: number): void {
    for (const [key, at] of this.deleted) {
      if (now - at < this.options.deleteDelayMs) break;
      this.deleted.delete(key);
      this.objects.delete(key);
    }
  }
}

async function statusError(res: Dispatcher.ResponseData): Promise<Error> {
  const text = await res.body.text().catch(() => '');
  let message = text.slice(0, 200);
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? message;
  } catch {
    // not a Status object
  }
  const err = new Error(`HTTP ${res.statusCode}: ${message}`) as Error & { status: number };
  err.status = res.statusCode;
  return err;
}

/** A low-cardinality reason for the failure counter: the HTTP status, or the error's code. */
function failureCode(err: unknown): string {
  const status = (err as { status?: number }).status;
  if (typeof status === 'number') return String(status);
  const code = (err as { code?: string }).code;
  if (typeof code === 'string') return code;
  return err instanceof SyntaxError ? 'bad_json' : 'error';
}
