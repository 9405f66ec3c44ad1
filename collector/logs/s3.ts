/**
 * The S3 sink: an archive of gzip NDJSON objects, one per UTC hour and host in each write, with
 * keys derived from their content (s3-keys.ts) so a retried upload overwrites the same object.
 * Uploads go through @aws-sdk/lib-storage: one PUT for a small object, a multipart upload of
 * partSize parts (concurrency at once) for a large one.
 *
 * The runner gathers up to rollover.bytes of events, or what arrived within rollover.interval,
 * for one write: that is an object's size and age bound, and what one write holds in memory. An
 * object is delivered once its upload completed; a failed upload (S3 down, access denied, no such
 * bucket) is retried with backoff while the events wait in the disk queue — an outage longer than
 * the queue can hold becomes 429s to the agents, which keep the data, never a loss. Nothing is
 * dead-lettered: S3 refusing an object says something about the setup, not about the events.
 *
 * Works with AWS S3 and S3-compatible servers (MinIO, Ceph, s3rver) through `endpoint` and
 * `forcePathStyle`; with a custom endpoint, checksums are sent only where the API requires them,
 * which such servers support.
 */
import { readFileSync } from 'node:fs';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { HeadBucketCommand, S3Client, S3ServiceException, type S3ClientConfig, type StorageClass } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Span } from '@opentelemetry/api';
import { RetryableError, errorMessage } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { S3SinkConfig } from './config.ts';
import type { LogEvent } from './event.ts';
import { groupByHourAndHost, objectKey } from './s3-keys.ts';
import type { LogSink, WriteResult } from './sink.ts';

const gzipAsync = promisify(gzip);
const NEWLINE = Buffer.from('\n');

export interface S3SinkOptions {
  log: Logger;
}

/** The S3 client for a sink's config (also used by replay to read the archive). */
export function s3Client(config: Pick<S3SinkConfig, 'region' | 'endpoint' | 'forcePathStyle' | 'credentials' | 'timeout' | 'maxAttempts'>): { client: S3Client; secrets: string[] } {
  const secrets: string[] = [];
  const options: S3ClientConfig = {
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    maxAttempts: config.maxAttempts,
    requestHandler: { requestTimeout: config.timeout, connectionTimeout: Math.min(config.timeout, 10_000) },
  };
  if (config.endpoint !== undefined) {
    options.endpoint = config.endpoint;
    options.requestChecksumCalculation = 'WHEN_REQUIRED';
    options.responseChecksumValidation = 'WHEN_REQUIRED';
  }
  const c = config.credentials;
  if (c !== undefined) {
    const secretAccessKey = c.secretAccessKey ?? readFileSync(c.secretAccessKeyFile as string, 'utf8').trim();
    secrets.push(secretAccessKey);
    if (c.sessionToken !== undefined) secrets.push(c.sessionToken);
    options.credentials = { accessKeyId: c.accessKeyId, secretAccessKey, ...(c.sessionToken !== undefined ? { sessionToken: c.sessionToken } : {}) };
  }
  return { client: new S3Client(options), secrets };
}

export class S3Sink implements LogSink {
  readonly name = 's3' as const;
  readonly batch: { maxBytes: number; maxWaitMs: number };
  readonly backoff: { initialMs: number; maxMs: number };
  readonly secrets: readonly string[];
  readonly client: S3Client;
  private readonly config: S3SinkConfig;
  private readonly log: Logger;
  private readonly where: string;

  constructor(config: S3SinkConfig, options: S3SinkOptions) {
    this.config = config;
    this.log = options.log.child({ sink: 's3' });
    this.batch = { maxBytes: config.rollover.bytes, maxWaitMs: config.rollover.interval };
    this.backoff = { initialMs: config.retryInitial, maxMs: config.retryMax };
    const { client, secrets } = s3Client(config);
    this.client = client;
    this.secrets = secrets;
    this.where = `s3://${config.bucket}/${config.prefix}${config.endpoint !== undefined ? ` at ${config.endpoint}` : ''}`;
  }

  async open(signal: AbortSignal): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.config.bucket }), { abortSignal: signal });
      this.log.info({ bucket: this.config.bucket, prefix: this.config.prefix, endpoint: this.config.endpoint }, 's3 bucket reachable');
    } catch (err) {
      throw this.explain(err, 'HeadBucket');
    }
  }

  async write(events: readonly LogEvent[], signal: AbortSignal, span: Span): Promise<WriteResult> {
    const result: WriteResult = { delivered: 0, duplicate: 0, rejected: [], retry: [] };
    let failure: unknown;
    let objects = 0;
    for (const group of groupByHourAndHost(events)) {
      if (failure !== undefined) {
        for (const e of group) result.retry.push(e);
        continue;
      }
      const key = objectKey(this.config.prefix, group);
      try {
        await this.upload(key, group, signal);
        result.delivered += group.length;
        objects++;
      } catch (err) {
        failure = this.explain(err, `upload of ${key}`);
        for (const e of group) result.retry.push(e);
      }
    }
    span.setAttribute('plumb.s3.objects', objects);
    if (failure !== undefined && result.delivered === 0) throw failure;
    if (failure !== undefined) {
      result.retryReason = 'unavailable';
      result.retryMessage = errorMessage(failure);
    }
    return result;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  private async upload(key: string, events: readonly LogEvent[], signal: AbortSignal): Promise<void> {
    const parts: Buffer[] = [];
    let bytes = 0;
    for (const e of events) {
      parts.push(e.line, NEWLINE);
      bytes += e.line.length + 1;
    }
    const body = await gzipAsync(Buffer.concat(parts, bytes));
    const abortController = new AbortController();
    const onAbort = (): void => abortController.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const upload = new Upload({
        client: this.client,
        params: {
          Bucket: this.config.bucket,
          Key: key,
          Body: body,
          ContentType: 'application/x-ndjson',
          ContentEncoding: 'gzip',
          Metadata: { 'plumb-events': String(events.length) },
          ...(this.config.storageClass !== undefined ? { StorageClass: this.config.storageClass as StorageClass } : {}),
        },
        partSize: this.config.partSize,
        queueSize: this.config.concurrency,
        leavePartsOnError: false,
        abortController,
      });
      await upload.done();
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private explain(err: unknown, what: string): RetryableError {
    if (err instanceof RetryableError) return err;
    const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
    const name = err instanceof Error ? err.name : 'Error';
    let hint = '';
    if (name === 'NoSuchBucket' || (what === 'HeadBucket' && status === 404)) hint = `; the bucket does not exist: create it or fix collector.logs.sinks.s3.bucket`;
    else if (status === 403 || name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') hint = '; check collector.logs.sinks.s3.credentials and the bucket policy (s3:PutObject, s3:ListBucket)';
    else if (status === 301) hint = '; the bucket is in another region: fix collector.logs.sinks.s3.region';
    const detail = err instanceof S3ServiceException ? `${status ?? ''} ${name}${err.message && err.message !== name && err.message !== 'UnknownError' ? `: ${err.message}` : ''}`.trim() : errorMessage(err);
    return new RetryableError('PLUMB_ERR_SINK_RETRYABLE', `s3 ${this.where}: ${what} failed (${detail})${hint}`, { status, cause: err });
  }
}
