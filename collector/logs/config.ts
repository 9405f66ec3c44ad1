/**
 * Configuration of the collector's log sinks (`collector.logs`): where accepted log events go
 * (local files, Elasticsearch, S3) and the bounded disk queue each sink drains.
 */
import { existsSync, statSync } from 'node:fs';
import { OtlpExportSchema } from '../../shared/otlp/config.ts';
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration, Section, Size } from '../../shared/config.ts';
import { parseIndexPattern } from './index-name.ts';

const URL_PATTERN = '^https?://[^\\s]+$';
const URL_MESSAGE = 'an http(s) URL like "https://es.example:9200"';

export const FileSinkSchema = Section(
  {
    dir: Type.Optional(Type.String({ minLength: 1, description: 'Folder of the archive; <collector.dataDir>/logs when absent. Events land in <dir>/yyyy/MM/dd/HH/ (UTC hour of @timestamp).' })),
    maxFileBytes: Size('128mb', { description: 'A file in an hour folder is closed and the next one started past this size.' }),
    flushBytes: Size('1mb', { description: 'Events written (and synced) together, at most.' }),
    flushInterval: Duration('1s', { description: 'Longest wait for more events before a write.' }),
    fsync: Type.Boolean({ default: true, description: 'Sync each write to disk before its events leave the queue.' }),
    maxOpenFiles: Type.Integer({ minimum: 1, default: 8, description: 'Hour files kept open at once (late events reopen older hours).' }),
  },
  { optional: true, description: 'NDJSON files in hourly folders, rotated by size: the default sink, and a local archive.' },
);

const AuthSchema = Section(
  {
    apiKey: Type.Optional(Type.String({ minLength: 1, description: 'Elasticsearch API key (the base64 "encoded" form).' })),
    apiKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the API key, so it stays out of this file.' })),
    username: Type.Optional(Type.String({ minLength: 1 })),
    password: Type.Optional(Type.String({ minLength: 1 })),
    passwordFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the password.' })),
  },
  { optional: true, description: 'Credentials: an API key, or a username and password.' },
);

const TlsSchema = Section(
  {
    ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the CA that signed the cluster certificate.' })),
    rejectUnauthorized: Type.Boolean({ default: true, description: 'Refuse a certificate that does not verify. Turn off only for a test cluster.' }),
  },
  { description: 'TLS towards an https:// node.' },
);

export const ElasticsearchSinkSchema = Section(
  {
    node: Type.Optional(Type.String({ pattern: URL_PATTERN, errorMessage: URL_MESSAGE, description: 'Node URL.' })),
    nodes: Type.Optional(Type.Array(Type.String({ pattern: URL_PATTERN, errorMessage: URL_MESSAGE }), { minItems: 1, description: 'Node URLs; requests rotate through them.' })),
    auth: Type.Optional(AuthSchema),
    tls: TlsSchema,
    index: Type.String({
      minLength: 1,
      default: 'plumb-logs-%{+yyyy.MM.dd}',
      description: 'Index name; %{+yyyy.MM.dd} (also yy, HH) is the event\'s @timestamp in UTC. Ignored when dataStream is set.',
    }),
    dataStream: Type.Optional(Type.String({ minLength: 1, description: 'Write to this data stream (e.g. logs-plumb-default) instead of dated indices.' })),
    pipeline: Type.Optional(Type.String({ minLength: 1, description: 'Ingest pipeline run on every event.' })),
    template: Section({
      install: Type.Boolean({ default: true, description: 'Install the index template with ECS-style mappings at start (skipped if the user may not).' }),
      name: Type.String({ minLength: 1, default: 'plumb-logs', description: 'Name of the index template.' }),
      overwrite: Type.Boolean({ default: false, description: 'Replace a template of that name that already exists.' }),
      priority: Type.Integer({ minimum: 0, default: 200, description: 'Template priority (the built-in logs-*-* template has 100).' }),
    }),
    flushBytes: Size('5mb', { description: 'Largest bulk request body.' }),
    flushInterval: Duration('1s', { description: 'Longest wait for more events before a bulk request.' }),
    concurrency: Type.Integer({ minimum: 1, maximum: 16, default: 2, description: 'Bulk requests in flight at once.' }),
    timeout: Duration('30s', { description: 'Longest wait for one request.' }),
    compression: Type.Boolean({ default: false, description: 'gzip request bodies.' }),
    retryInitial: Duration('500ms', { description: 'First retry delay; doubles per attempt, with jitter.' }),
    retryMax: Duration('60s', { description: 'Longest retry delay.' }),
  },
  { optional: true, description: 'Elasticsearch: bulk `create` with _id = event.id, so a replay never duplicates.' },
);

const S3CredentialsSchema = Section(
  {
    accessKeyId: Type.String({ minLength: 1 }),
    secretAccessKey: Type.Optional(Type.String({ minLength: 1 })),
    secretAccessKeyFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the secret key.' })),
    sessionToken: Type.Optional(Type.String({ minLength: 1 })),
  },
  { optional: true, description: 'Static credentials; absent: the AWS SDK default chain (environment, profile, instance role).' },
);

export const S3SinkSchema = Section(
  {
    bucket: Type.String({ minLength: 3, maxLength: 63, description: 'Bucket the objects are written to.' }),
    prefix: Type.String({ default: '', description: 'Key prefix, e.g. "plumb/". Keys: <prefix>yyyy/MM/dd/HH/<host>/<first id>-<last id>.ndjson.gz' }),
    region: Type.String({ minLength: 1, default: 'us-east-1' }),
    endpoint: Type.Optional(Type.String({ pattern: URL_PATTERN, errorMessage: 'an http(s) URL like "http://minio:9000"', description: 'S3-compatible endpoint (MinIO, Ceph, …).' })),
    forcePathStyle: Type.Boolean({ default: false, description: 'Address buckets as <endpoint>/<bucket> (most S3-compatible servers need this).' }),
    credentials: Type.Optional(S3CredentialsSchema),
    rollover: Section({
      bytes: Size('64mb', { description: 'Uncompressed NDJSON per upload, at most; also what one upload holds in memory.' }),
      interval: Duration('5m', { description: 'Longest wait before the events gathered so far are uploaded.' }),
    }),
    partSize: Size('8mb', { description: 'Multipart part size (at least 5mb); smaller objects are one PUT.' }),
    concurrency: Type.Integer({ minimum: 1, maximum: 16, default: 4, description: 'Parts uploaded at once.' }),
    storageClass: Type.Optional(Type.String({ minLength: 1, description: 'S3 storage class, e.g. STANDARD_IA.' })),
    timeout: Duration('2m', { description: 'Longest wait for one request.' }),
    maxAttempts: Type.Integer({ minimum: 1, maximum: 10, default: 3, description: 'Tries of one request (a part) by the AWS SDK before the whole upload is retried with backoff.' }),
    retryInitial: Duration('1s', { description: 'First retry delay; doubles per attempt, with jitter.' }),
    retryMax: Duration('2m', { description: 'Longest retry delay.' }),
  },
  { optional: true, description: 'S3 archive: gzip NDJSON objects partitioned by hour and host, with keys that a retried upload overwrites.' },
);

export const QueueSchema = Section(
  {
    maxBytes: Size('1gb', { description: 'Disk taken by one sink\'s queue; when any queue is full, POST /v1/logs answers 429 and agents keep the data.' }),
    highWater: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.9,
      description: 'Fraction of maxBytes: while any queue holds more, POST /v1/logs answers 429, leaving room for the batches already under way.',
    }),
    retryAfter: Duration('5s', { description: 'Retry-After sent with that 429.' }),
    fsync: Type.Union([Type.Literal('batch'), Type.Literal('interval'), Type.Literal('never')], {
      default: 'batch',
      errorMessage: '"batch", "interval" or "never"',
      description: 'batch: each accepted batch is synced to disk before the agent is acknowledged (survives power loss); interval: synced every second; never: left to the OS.',
    }),
  },
  { description: 'Per-sink disk queues under <collector.dataDir>/log-sinks/<sink>/queue.' },
);

export const DeadLetterSchema = Section(
  {
    maxBytes: Size('100mb', { description: 'Size of one dead-letter file; past it the file becomes dead-letter.ndjson.1 (an older .1 is removed, its events counted and logged).' }),
  },
  { description: 'Events a sink refused permanently (mapping errors and other 4xx), with the reason, in <collector.dataDir>/log-sinks/<sink>/dead-letter.ndjson.' },
);

export const CollectorLogsSchema = Section(
  {
    sinks: Section({
      file: Type.Optional(FileSinkSchema),
      elasticsearch: Type.Optional(ElasticsearchSinkSchema),
      s3: Type.Optional(S3SinkSchema),
      otlp: Type.Optional(OtlpExportSchema),
    }, { description: 'Where log events go. With none configured, the file sink under <collector.dataDir>/logs.' }),
    queue: QueueSchema,
    deadLetter: DeadLetterSchema,
    stopTimeout: Duration('10s', { description: 'How long a stop keeps draining the queues; what is left stays queued on disk for the next start.' }),
  },
  { description: 'Log events from agents (POST /v1/logs) and their sinks.' },
);

export type CollectorLogsConfig = StaticDecode<typeof CollectorLogsSchema>;
export type FileSinkConfig = NonNullable<CollectorLogsConfig['sinks']['file']>;
export type ElasticsearchSinkConfig = NonNullable<CollectorLogsConfig['sinks']['elasticsearch']>;
export type S3SinkConfig = NonNullable<CollectorLogsConfig['sinks']['s3']>;

/** Smallest part S3 accepts in a multipart upload (all but the last). */
export const S3_MIN_PART_BYTES = 5 * 1024 * 1024;
/** Elasticsearch refuses request bodies above http.max_content_length, 100mb by default. */
const ES_MAX_REQUEST_BYTES = 100 * 1024 * 1024;

/**
 * The rules the schema cannot express, for the subtree at `path` (normally "collector.logs").
 * Mount as `{ path: 'collector.logs', schema: CollectorLogsSchema, run: (c) => checkLogsConfig(c, 'collector.logs') }`.
 */
export function checkLogsConfig(config: CollectorLogsConfig, path: string): string[] {
  const errors: string[] = [];
  const es = config.sinks.elasticsearch;
  if (es) {
    const at = `${path}.sinks.elasticsearch`;
    if (es.node === undefined && es.nodes === undefined) errors.push(`${at}: set node (one URL) or nodes (a list)`);
    if (es.node !== undefined && es.nodes !== undefined) errors.push(`${at}: set node or nodes, not both`);
    const auth = es.auth;
    if (auth) {
      const key = auth.apiKey !== undefined || auth.apiKeyFile !== undefined;
      const basic = auth.username !== undefined || auth.password !== undefined || auth.passwordFile !== undefined;
      if (key && basic) errors.push(`${at}.auth: use an API key or a username and password, not both`);
      if (auth.apiKey !== undefined && auth.apiKeyFile !== undefined) errors.push(`${at}.auth: set apiKey or apiKeyFile, not both`);
      if (auth.password !== undefined && auth.passwordFile !== undefined) errors.push(`${at}.auth: set password or passwordFile, not both`);
      if (basic && auth.username === undefined) errors.push(`${at}.auth.username: required with a password`);
      if (auth.username !== undefined && auth.password === undefined && auth.passwordFile === undefined) errors.push(`${at}.auth: username needs password or passwordFile`);
      if (!key && !basic) errors.push(`${at}.auth: set apiKey/apiKeyFile or username and password/passwordFile (or remove auth)`);
      for (const k of ['apiKeyFile', 'passwordFile'] as const) {
        const file = auth[k];
        if (file !== undefined && !isReadableFile(file)) errors.push(`${at}.auth.${k}: cannot read ${JSON.stringify(file)}`);
      }
    }
    if (es.tls.ca !== undefined && !isReadableFile(es.tls.ca)) errors.push(`${at}.tls.ca: cannot read ${JSON.stringify(es.tls.ca)}`);
    if (es.dataStream === undefined) {
      const problem = parseIndexPattern(es.index).error;
      if (problem !== undefined) errors.push(`${at}.index: ${problem}`);
    } else if (!/^[a-z0-9][a-z0-9._-]*$/.test(es.dataStream) || !/-/.test(es.dataStream)) {
      errors.push(`${at}.dataStream: expected a lowercase name like "logs-plumb-default" (got ${JSON.stringify(es.dataStream)})`);
    }
    if (es.flushBytes < 1024) errors.push(`${at}.flushBytes: at least 1kb`);
    if (es.flushBytes > ES_MAX_REQUEST_BYTES / 2) errors.push(`${at}.flushBytes: at most 50mb (Elasticsearch refuses requests above http.max_content_length, 100mb by default)`);
    if (es.retryMax < es.retryInitial) errors.push(`${at}.retryMax: must not be below retryInitial`);
  }
  const s3 = config.sinks.s3;
  if (s3) {
    const at = `${path}.sinks.s3`;
    if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(s3.bucket)) errors.push(`${at}.bucket: expected a bucket name (lowercase letters, digits, dots, hyphens) (got ${JSON.stringify(s3.bucket)})`);
    if (s3.prefix.startsWith('/')) errors.push(`${at}.prefix: must not start with "/" (got ${JSON.stringify(s3.prefix)})`);
    if (s3.partSize < S3_MIN_PART_BYTES) errors.push(`${at}.partSize: at least 5mb (S3's smallest multipart part)`);
    if (s3.rollover.bytes < 1024) errors.push(`${at}.rollover.bytes: at least 1kb`);
    const c = s3.credentials;
    if (c) {
      if ((c.secretAccessKey === undefined) === (c.secretAccessKeyFile === undefined)) errors.push(`${at}.credentials: set secretAccessKey or secretAccessKeyFile (one of them)`);
      if (c.secretAccessKeyFile !== undefined && !isReadableFile(c.secretAccessKeyFile)) errors.push(`${at}.credentials.secretAccessKeyFile: cannot read ${JSON.stringify(c.secretAccessKeyFile)}`);
    }
    if (s3.retryMax < s3.retryInitial) errors.push(`${at}.retryMax: must not be below retryInitial`);
  }
  const largestBatch = Math.max(config.sinks.file?.flushBytes ?? 0, es ? es.flushBytes * es.concurrency : 0, s3?.rollover.bytes ?? 0);
  if (config.queue.maxBytes < largestBatch) errors.push(`${path}.queue.maxBytes: smaller than a sink's batch (${largestBatch} bytes); raise it or lower flushBytes/rollover.bytes`);
  return errors;
}

function isReadableFile(file: string): boolean {
  try {
    return existsSync(file) && statSync(file).isFile();
  } catch {
    return false;
  }
}
