/**
 * The Elasticsearch sink: bulk `create` with `_id = event.id`, so an event written twice (a
 * retry, a replay from S3, an agent resending after a crash) is refused as a 409 conflict and
 * counted as a duplicate instead of being stored again. The events' own bytes are the sources:
 * nothing is parsed or serialized again on the way.
 *
 * Every item of every bulk response is read: 201 delivered; 409 duplicate; 429 and 5xx go back
 * to the runner to be retried with backoff; any other status (a mapping conflict, a document
 * the cluster cannot parse) is refused for good and goes to the dead-letter file with its
 * reason. A request that fails as a whole (cluster unreachable, 429, 5xx, bad credentials) is
 * retried; the events stay queued meanwhile.
 *
 * Requests go through the official client's `bulk` API (connection pool, auth, TLS, the product
 * check) rather than its bulk helper: the helper retries only 429 items with a fixed wait,
 * drops 5xx items, rejects the whole run on a transport error without saying which items
 * landed, and parses every document again for its success callback — this sink needs a per-item
 * outcome for each event to decide when its disk queue may let go of it.
 *
 * open() checks the cluster (GET /) with a clear error when it is unreachable or the
 * credentials are refused, then installs the index template unless told not to (a 403 there
 * only skips it). Requires Elasticsearch 9 (the client speaks the 9.x REST API).
 */
import { readFileSync } from 'node:fs';
import { Client, errors as esErrors } from '@elastic/elasticsearch';
import type { Span } from '@opentelemetry/api';
import { PermanentError, RetryableError, errorMessage } from '../../shared/errors.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { parseRetryAfter } from '../../shared/retry.ts';
import type { ElasticsearchSinkConfig } from './config.ts';
import { logsIndexTemplate } from './elasticsearch-template.ts';
import type { LogEvent } from './event.ts';
import { parseIndexPattern, renderIndex, type IndexPattern } from './index-name.ts';
import type { LogSink, RejectedEvent, WriteResult } from './sink.ts';

const NEWLINE = Buffer.from('\n');
/** Only what the sink reads from a bulk answer: smaller responses to parse. */
const FILTER_PATH = 'errors,items.*.status,items.*.error';

interface Chunk {
  events: LogEvent[];
  targets: string[];
  actions: Buffer[];
  bytes: number;
}

function newChunk(): Chunk {
  return { events: [], targets: [], actions: [], bytes: 0 };
}

function body(c: Chunk): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < c.events.length; i++) parts.push(c.actions[i], c.events[i].line, NEWLINE);
  return Buffer.concat(parts, c.bytes);
}

function split(c: Chunk): Chunk[] {
  const half = Math.ceil(c.events.length / 2);
  return [0, half].map((from) => {
    const to = from === 0 ? half : c.events.length;
    const out: Chunk = { events: c.events.slice(from, to), targets: c.targets.slice(from, to), actions: c.actions.slice(from, to), bytes: 0 };
    for (let i = 0; i < out.events.length; i++) out.bytes += out.actions[i].length + out.events[i].line.length + 1;
    return out;
  });
}

interface BulkItem {
  status: number;
  error?: { type?: string; reason?: string; caused_by?: { type?: string; reason?: string } };
}

export interface ElasticsearchSinkOptions {
  log: Logger;
  /** Default "elasticsearch"; the span index is "elasticsearch_spans". */
  name?: 'elasticsearch' | 'elasticsearch_spans';
}

export class ElasticsearchSink implements LogSink {
  readonly name: 'elasticsearch' | 'elasticsearch_spans';
  readonly batch: { maxBytes: number; maxWaitMs: number };
  readonly backoff: { initialMs: number; maxMs: number };
  readonly secrets: readonly string[];
  readonly client: Client;
  private readonly config: ElasticsearchSinkConfig;
  private readonly pattern: IndexPattern | undefined;
  private readonly log: Logger;
  private readonly logOnce: LogOnce;
  private readonly where: string;
  /** Cluster version from GET /, once known. */
  version: string | undefined;

  constructor(config: ElasticsearchSinkConfig, options: ElasticsearchSinkOptions) {
    this.config = config;
    this.name = options.name ?? 'elasticsearch';
    this.log = options.log.child({ sink: this.name });
    this.logOnce = new LogOnce(this.log);
    // enough for `concurrency` requests of flushBytes per write
    this.batch = { maxBytes: config.flushBytes * config.concurrency, maxWaitMs: config.flushInterval };
    this.backoff = { initialMs: config.retryInitial, maxMs: config.retryMax };
    if (config.dataStream === undefined) {
      const parsed = parseIndexPattern(config.index);
      if (parsed.pattern === undefined) throw new PermanentError('PLUMB_ERR_SINK_PERMANENT', `collector.logs.sinks.elasticsearch.index: ${parsed.error}`);
      this.pattern = parsed.pattern;
    }
    const nodes = config.nodes ?? (config.node !== undefined ? [config.node] : []);
    this.where = nodes.map(stripCredentials).join(', ');
    const secrets: string[] = [];
    let auth: { apiKey: string } | { username: string; password: string } | undefined;
    const a = config.auth;
    if (a?.apiKey !== undefined || a?.apiKeyFile !== undefined) {
      const apiKey = a.apiKey ?? readSecret(a.apiKeyFile as string);
      auth = { apiKey };
      secrets.push(apiKey);
    } else if (a?.username !== undefined) {
      const password = a.password ?? readSecret(a.passwordFile as string);
      auth = { username: a.username, password };
      secrets.push(password);
    }
    this.secrets = secrets;
    this.client = new Client({
      nodes,
      ...(auth ? { auth } : {}),
      tls: { rejectUnauthorized: config.tls.rejectUnauthorized, ...(config.tls.ca !== undefined ? { ca: readFileSync(config.tls.ca) } : {}) },
      // retries are the runner's, with backoff, per item
      maxRetries: 0,
      requestTimeout: config.timeout,
      compression: config.compression,
      name: 'plumb',
    });
  }

  /** The index (or data stream) an event is written to. */
  target(event: LogEvent): string {
    return this.pattern === undefined ? (this.config.dataStream as string) : renderIndex(this.pattern, event.timestamp);
  }

  async open(signal: AbortSignal): Promise<void> {
    try {
      const info = await this.client.info({}, { signal });
      this.version = info.version?.number;
      this.log.info({ nodes: this.where, cluster: info.cluster_name, version: this.version }, 'elasticsearch reachable');
    } catch (err) {
      const status = statusOf(err);
      if (status === 403) {
        this.logOnce.warn('info-forbidden', { nodes: this.where }, 'elasticsearch: the credentials may not read cluster info (GET /); writing anyway');
      } else {
        throw this.explain(err, 'GET /');
      }
    }
    if (this.config.template.install) await this.installTemplate(signal);
  }

  async write(events: readonly LogEvent[], signal: AbortSignal, span: Span): Promise<WriteResult> {
    const result: WriteResult = { delivered: 0, duplicate: 0, rejected: [], retry: [] };
    const chunks: Chunk[] = [];
    let chunk = newChunk();
    for (const e of events) {
      if (e.id === '') {
        result.rejected.push({ event: e, reason: 'the event has no event.id (the Elasticsearch sink needs it as the document _id)' });
        continue;
      }
      const target = this.target(e);
      const action = Buffer.from(`{"create":{"_index":"${target}","_id":${JSON.stringify(e.id)}}}\n`);
      const size = action.length + e.line.length + 1;
      if (chunk.events.length > 0 && chunk.bytes + size > this.config.flushBytes) {
        chunks.push(chunk);
        chunk = newChunk();
      }
      chunk.events.push(e);
      chunk.targets.push(target);
      chunk.actions.push(action);
      chunk.bytes += size;
    }
    if (chunk.events.length > 0) chunks.push(chunk);

    let failure: unknown;
    let settled = result.rejected.length;
    let requests = 0;
    // up to `concurrency` requests at once; after a failed one, no new request starts
    const worker = async (): Promise<void> => {
      while (chunks.length > 0) {
        const c = chunks.shift() as Chunk;
        if (failure !== undefined) {
          for (const e of c.events) result.retry.push(e);
          continue;
        }
        let items: BulkItem[];
        try {
          requests++;
          items = await this.bulk(body(c), signal);
        } catch (err) {
          const e = this.explain(err, 'POST /_bulk');
          if (e.status === 413 && c.events.length > 1) {
            // a proxy (or http.max_content_length) takes less than flushBytes: send halves
            this.logOnce.warn('413', { bytes: c.bytes, events: c.events.length }, 'elasticsearch: a bulk request was too large; sending it in halves (lower flushBytes)');
            chunks.unshift(...split(c));
            continue;
          }
          if (e instanceof PermanentError) {
            for (let i = 0; i < c.events.length; i++) result.rejected.push({ event: c.events[i], status: e.status, reason: e.message, target: c.targets[i] });
            settled += c.events.length;
            continue;
          }
          failure = e;
          for (const ev of c.events) result.retry.push(ev);
          continue;
        }
        settled += c.events.length;
        this.settle(c.events, c.targets, items, result);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.config.concurrency, chunks.length) }, worker));
    span.setAttribute('plumb.es.requests', requests);
    // Nothing went through: let the runner count the failure by its cause.
    if (failure !== undefined && settled === 0) throw failure;
    if (failure !== undefined) {
      result.retryReason = statusOf(failure) === 429 ? 'throttled' : 'unavailable';
      result.retryMessage = errorMessage(failure);
      result.retryAfterMs = (failure as RetryableError).retryAfterMs;
    }
    return result;
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  private async bulk(body: Buffer, signal: AbortSignal): Promise<BulkItem[]> {
    const params = {
      // a prepared NDJSON body goes to the transport as it is
      operations: body as unknown as [],
      filter_path: FILTER_PATH,
      ...(this.config.pipeline !== undefined ? { pipeline: this.config.pipeline } : {}),
    };
    const answer = (await this.client.bulk(params, { signal })) as unknown as { errors?: boolean; items?: Record<string, BulkItem>[] };
    const items = answer.items ?? [];
    return items.map((i) => i.create ?? Object.values(i)[0]);
  }

  private settle(events: readonly LogEvent[], targets: readonly string[], items: readonly BulkItem[], result: WriteResult): void {
    for (let i = 0; i < events.length; i++) {
      const item = items[i] as BulkItem | undefined;
      const status = item?.status;
      if (status === undefined) {
        // an answer with fewer items than actions: unknown fate, so send again (create is idempotent)
        result.retry.push(events[i]);
        result.retryReason ??= 'item_server_error';
        result.retryMessage ??= 'the bulk answer lacked an item for this event';
      } else if (status >= 200 && status < 300) {
        result.delivered++;
      } else if (status === 409) {
        result.duplicate++;
      } else if (status === 429 || status >= 500) {
        result.retry.push(events[i]);
        if (status === 429) result.retryReason = 'item_throttled';
        else result.retryReason ??= 'item_server_error';
        result.retryMessage ??= describeItemError(item);
      } else {
        const rejected: RejectedEvent = { event: events[i], status, reason: describeItemError(item), target: targets[i] };
        result.rejected.push(rejected);
      }
    }
  }

  private async installTemplate(signal: AbortSignal): Promise<void> {
    const t = this.config.template;
    const dataStream = this.config.dataStream !== undefined;
    const patterns = dataStream ? [this.config.dataStream as string] : [(this.pattern as IndexPattern).wildcard];
    try {
      if (!t.overwrite && (await this.client.indices.existsIndexTemplate({ name: t.name }, { signal }))) {
        this.log.info({ template: t.name }, 'elasticsearch: index template already present; leaving it as it is');
        return;
      }
      const body = logsIndexTemplate({ indexPatterns: patterns, priority: t.priority, dataStream });
      await this.client.indices.putIndexTemplate({ name: t.name, ...body } as Parameters<Client['indices']['putIndexTemplate']>[0], { signal });
      this.log.info({ template: t.name, patterns }, 'elasticsearch: index template installed');
    } catch (err) {
      const status = statusOf(err);
      if (status !== undefined && status >= 400 && status < 500 && status !== 401 && status !== 408 && status !== 429) {
        this.logOnce.warn('template', { template: t.name, status, err: this.explain(err, 'PUT /_index_template').message }, 'elasticsearch: index template not installed; writing with the cluster\'s own templates and dynamic mappings');
        return;
      }
      throw this.explain(err, `PUT /_index_template/${t.name}`);
    }
  }

  /** A client error as plumb's error type, with a message that says what to do. */
  private explain(err: unknown, what: string): RetryableError | PermanentError {
    if (err instanceof RetryableError || err instanceof PermanentError) return err;
    if (err instanceof esErrors.ResponseError) {
      const status = err.meta.statusCode ?? 0;
      const e = (err.meta.body as { error?: { type?: string; reason?: string } } | undefined)?.error;
      const detail = e?.type !== undefined ? `${e.type}: ${e.reason ?? ''}` : typeof err.meta.body === 'string' ? err.meta.body.slice(0, 200) : err.message.split('\n')[0];
      let message = `elasticsearch ${this.where} answered ${what} with ${status} (${detail})`;
      if (status === 401) message += '; check collector.logs.sinks.elasticsearch.auth';
      if (status === 403) message += '; the credentials lack a privilege (create_doc on the target indices)';
      const retryAfter = err.meta.headers?.['retry-after'];
      // Only a single event too large for the cluster is refused for good. Any other refusal of
      // a whole request (credentials, a proxy, an API version the cluster does not speak) is
      // about the setup, not the events: they wait in the queue until it is fixed.
      if (status === 413) return new PermanentError('PLUMB_ERR_SINK_PERMANENT', message, { status, cause: err });
      return new RetryableError('PLUMB_ERR_SINK_RETRYABLE', message, { status, retryAfterMs: parseRetryAfter(retryAfter), cause: err });
    }
    if (err instanceof esErrors.ProductNotSupportedError) {
      return new RetryableError('PLUMB_ERR_SINK_RETRYABLE', `${this.where} does not answer as Elasticsearch (no "x-elastic-product: Elasticsearch" header); check collector.logs.sinks.elasticsearch.node`, { cause: err });
    }
    const reason = err instanceof esErrors.TimeoutError ? `no answer within ${this.config.timeout} ms` : errorMessage(err);
    return new RetryableError('PLUMB_ERR_SINK_RETRYABLE', `cannot reach elasticsearch ${this.where} (${what}): ${reason}`, { cause: err });
  }
}

function describeItemError(item: BulkItem | undefined): string {
  const e = item?.error;
  if (e === undefined) return `status ${item?.status}`;
  let s = `${e.type ?? 'error'}: ${e.reason ?? ''}`;
  if (e.caused_by?.type !== undefined) s += ` (caused by ${e.caused_by.type}: ${e.caused_by.reason ?? ''})`;
  return s;
}

function statusOf(err: unknown): number | undefined {
  if (err instanceof esErrors.ResponseError) return err.meta.statusCode;
  if (err instanceof RetryableError || err instanceof PermanentError) return err.status;
  return undefined;
}

function readSecret(file: string): string {
  return readFileSync(file, 'utf8').trim();
}

function stripCredentials(url: string): string {
  return url.replace(/\/\/[^/@\s]*@/, '//');
}
