/**
 * Prometheus remote_write 1.0: samples go as a protobuf WriteRequest, snappy block-compressed,
 * POSTed with Content-Encoding: snappy and X-Prometheus-Remote-Write-Version: 0.1.0.
 *
 * A batch from the runner is split into `shards` by a hash of the series, so one series always
 * travels through the same shard; each shard sends its requests (up to maxSamplesPerSend
 * samples and about maxBytesPerSend bytes) one after the other, the shards in parallel. A shard
 * that fails stops there and hands the rest of its samples back to the runner to be sent again:
 * the runner takes no newer samples before these are settled, so every series' samples reach
 * the store in time order. 5xx and 429 (and 408, and a failed connection) are retried with
 * backoff, a longer Retry-After winning; any other 4xx is final: those samples go to the
 * dead-letter file with the store's own message, and are counted.
 */
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from 'undici';
import { compressSync } from 'snappy';
import type { Span } from '@opentelemetry/api';
import type { Counter } from 'prom-client';
import { PermanentError, RetryableError, errorMessage } from '../../../shared/errors.ts';
import { SINK_CODES, httpStatusError } from '../../../shared/retry.ts';
import type { Telemetry } from '../../../shared/telemetry.ts';
import { retryReason } from '../../sinks/metrics.ts';
import type { RejectedItem, Sink, SinkWriteResult } from '../../sinks/sink.ts';
import type { RemoteWriteSinkConfig } from './config.ts';
import { encodeWriteRequest, type WriteRequestMessage } from './remote-write.proto.ts';
import type { MetricSample } from './sample.ts';

export const USER_AGENT = 'plumb-collector/0.1.0';

/** What a store's refusal message is cut to in the dead-letter file and status. */
const MAX_MESSAGE = 512;

interface ShardOutcome {
  delivered: number;
  rejected: RejectedItem<MetricSample>[];
  retry: MetricSample[];
  error?: unknown;
}

export class RemoteWriteSink implements Sink<MetricSample> {
  readonly name: string;
  readonly batch: { maxBytes: number; maxWaitMs: number };
  readonly backoff: { initialMs: number; maxMs: number };
  readonly secrets: readonly string[];
  private readonly config: RemoteWriteSinkConfig;
  private readonly url: URL;
  private readonly headers: Record<string, string>;
  private readonly dispatcher: Agent;
  private readonly requests: Counter<'sink' | 'status'>;
  private readonly sentBytes: Counter<'sink'>;

  constructor(config: RemoteWriteSinkConfig, ctx: { telemetry: Telemetry }) {
    this.config = config;
    this.name = config.name;
    this.url = new URL(config.url);
    // enough queued samples for every shard to fill a request
    this.batch = { maxBytes: Math.max(64 * 1024, config.maxBytesPerSend * config.shards), maxWaitMs: config.batchWait };
    this.backoff = { initialMs: config.retryInitial, maxMs: config.retryMax };
    const headers: Record<string, string> = {
      'content-type': 'application/x-protobuf',
      'content-encoding': 'snappy',
      'x-prometheus-remote-write-version': '0.1.0',
      'user-agent': USER_AGENT,
    };
    for (const [k, v] of Object.entries(config.headers)) headers[k.toLowerCase()] = v;
    const secrets: string[] = [];
    const a = config.auth;
    if (a?.username !== undefined) {
      const password = a.password ?? readFileSync(a.passwordFile as string, 'utf8').trim();
      headers.authorization = `Basic ${Buffer.from(`${a.username}:${password}`).toString('base64')}`;
      secrets.push(password);
    } else if (a !== undefined) {
      const token = a.bearerToken ?? readFileSync(a.bearerTokenFile as string, 'utf8').trim();
      headers.authorization = `Bearer ${token}`;
      secrets.push(token);
    }
    if (this.url.password !== '') secrets.push(decodeURIComponent(this.url.password));
    this.secrets = secrets;
    this.headers = headers;
    const tls = config.tls;
    this.dispatcher = new Agent({
      connections: config.shards,
      headersTimeout: config.timeout,
      bodyTimeout: config.timeout,
      connect: {
        timeout: config.timeout,
        rejectUnauthorized: tls.rejectUnauthorized,
        ...(tls.ca !== undefined ? { ca: readFileSync(tls.ca) } : {}),
        ...(tls.cert !== undefined ? { cert: readFileSync(tls.cert) } : {}),
        ...(tls.key !== undefined ? { key: readFileSync(tls.key) } : {}),
        ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
      },
    });
    this.requests = ctx.telemetry.counter('plumb_remote_write_requests_total', 'remote_write requests by answer (2xx, 4xx, 429, 5xx, or error when none came).', ['sink', 'status']);
    this.sentBytes = ctx.telemetry.counter('plumb_remote_write_sent_bytes_total', 'Compressed remote_write request bytes the store accepted.', ['sink']);
    for (const status of ['2xx', '4xx', '429', '5xx', 'error']) this.requests.inc({ sink: this.name, status }, 0);
    this.sentBytes.inc({ sink: this.name }, 0);
  }

  /** remote_write has no health endpoint of its own: the first write tells. */
  async open(): Promise<void> {}

  async write(items: readonly MetricSample[], signal: AbortSignal, _span: Span): Promise<SinkWriteResult<MetricSample>> {
    const shards = this.config.shards;
    const perShard: MetricSample[][] = Array.from({ length: shards }, () => []);
    for (const s of items) perShard[shards === 1 ? 0 : shardOf(s, shards)].push(s);
    const outcomes = await Promise.all(perShard.map((list) => this.sendShard(list, signal)));
    const result: SinkWriteResult<MetricSample> = { delivered: 0, duplicate: 0, rejected: [], retry: [] };
    for (const o of outcomes) {
      result.delivered += o.delivered;
      for (const r of o.rejected) result.rejected.push(r);
      for (const r of o.retry) result.retry.push(r);
      if (o.error !== undefined) {
        result.retryReason ??= retryReason(o.error);
        result.retryMessage ??= errorMessage(o.error);
        const after = o.error instanceof RetryableError ? o.error.retryAfterMs : undefined;
        if (after !== undefined) result.retryAfterMs = Math.max(result.retryAfterMs ?? 0, after);
      }
    }
    return result;
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** Sends one shard's samples in order; stops at the first request that must be retried. */
  private async sendShard(samples: MetricSample[], signal: AbortSignal): Promise<ShardOutcome> {
    const out: ShardOutcome = { delivered: 0, rejected: [], retry: [] };
    const maxSamples = this.config.maxSamplesPerSend;
    const maxBytes = this.config.maxBytesPerSend;
    for (let start = 0; start < samples.length; ) {
      let end = start;
      let bytes = 0;
      while (end < samples.length && end - start < maxSamples && (end === start || bytes + samples[end].line.length <= maxBytes)) bytes += samples[end++].line.length;
      const chunk = samples.slice(start, end);
      try {
        await this.post(chunk, signal);
        out.delivered += chunk.length;
      } catch (err) {
        if (err instanceof PermanentError) {
          const reason = errorMessage(err);
          for (const event of chunk) out.rejected.push({ event, status: err.status, reason, target: this.url.origin + this.url.pathname });
        } else {
          out.error = err;
          for (let i = start; i < samples.length; i++) out.retry.push(samples[i]);
          return out;
        }
      }
      start = end;
    }
    return out;
  }

  private async post(chunk: readonly MetricSample[], signal: AbortSignal): Promise<void> {
    const body = compressSync(Buffer.from(encodeWriteRequest(toWriteRequest(chunk))));
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.url, { method: 'POST', headers: this.headers, body, dispatcher: this.dispatcher, signal });
    } catch (err) {
      this.requests.inc({ sink: this.name, status: 'error' });
      throw new RetryableError(SINK_CODES.retryable, `remote_write to ${this.url.host} failed: ${errorMessage(err)}`, { cause: err });
    }
    const status = res.statusCode;
    if (status >= 200 && status < 300) {
      await res.body.dump();
      this.requests.inc({ sink: this.name, status: '2xx' });
      this.sentBytes.inc({ sink: this.name }, body.length);
      return;
    }
    const text = (await res.body.text().catch(() => '')).trim().slice(0, MAX_MESSAGE);
    this.requests.inc({ sink: this.name, status: status === 429 ? '429' : status >= 500 ? '5xx' : '4xx' });
    throw httpStatusError(status, `${this.url.host} answered ${status}${text ? `: ${text}` : ''}`, res.headers['retry-after'], SINK_CODES);
  }
}

/** Groups samples into series, keeping their order, for one request. */
export function toWriteRequest(samples: readonly MetricSample[]): WriteRequestMessage {
  const bySeries = new Map<string, WriteRequestMessage['timeseries'][number]>();
  for (const s of samples) {
    const key = seriesKey(s);
    let ts = bySeries.get(key);
    if (ts === undefined) {
      const labels = [{ name: '__name__', value: s.name }];
      for (let i = 0; i < s.labels.length; i += 2) labels.push({ name: s.labels[i], value: s.labels[i + 1] });
      // Prometheus wants labels sorted by name; __name__ sorts before lowercase but after uppercase names
      if (s.labels.length > 0 && s.labels[0] < '__name__') labels.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      ts = { labels, samples: [] };
      bySeries.set(key, ts);
    }
    ts.samples.push({ value: s.value, timestamp: s.timestamp });
  }
  return { timeseries: [...bySeries.values()] };
}

/** The series a sample belongs to. */
function seriesKey(s: MetricSample): string {
  return s.labels.length === 0 ? s.name : `${s.name}\0${s.labels.join('\0')}`;
}

/** FNV-1a of the series: stable, so a series always takes the same shard. */
function shardOf(s: MetricSample, shards: number): number {
  const key = seriesKey(s);
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % shards;
}
