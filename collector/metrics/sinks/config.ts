/**
 * Configuration of the collector's metric sinks (`collector.metrics.sinks`): long-term stores
 * fed with exactly what /metrics shows, one export every `interval`, each sink draining its own
 * bounded disk queue through the shared sink runner.
 */
import { existsSync, statSync } from 'node:fs';
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration, Section, Size } from '../../../shared/config.ts';
import { OtlpExportSchema } from '../../../shared/otlp/config.ts';

const URL_PATTERN = '^https?://[^\\s]+$';

const RemoteWriteAuthSchema = Section(
  {
    username: Type.Optional(Type.String({ minLength: 1, description: 'Basic auth user.' })),
    password: Type.Optional(Type.String({ minLength: 1 })),
    passwordFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the basic auth password.' })),
    bearerToken: Type.Optional(Type.String({ minLength: 1, description: 'Sent as Authorization: Bearer <token>.' })),
    bearerTokenFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the bearer token.' })),
  },
  { optional: true, description: 'Basic auth (username + password) or a bearer token.' },
);

const RemoteWriteTlsSchema = Section(
  {
    ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the CA that signed the server certificate.' })),
    cert: Type.Optional(Type.String({ minLength: 1, description: 'Client certificate (PEM) for mutual TLS.' })),
    key: Type.Optional(Type.String({ minLength: 1, description: 'Client key (PEM) for mutual TLS.' })),
    serverName: Type.Optional(Type.String({ minLength: 1, description: 'Name checked against the server certificate, when not the URL host.' })),
    rejectUnauthorized: Type.Boolean({ default: true, description: 'Refuse a certificate that does not verify. Turn off only for a test store.' }),
  },
  { description: 'TLS towards an https:// URL.' },
);

export const RemoteWriteSinkSchema = Section(
  {
    url: Type.String({ pattern: URL_PATTERN, errorMessage: 'an http(s) URL like "http://victoria:8428/api/v1/write"', description: 'The store\'s remote_write endpoint.' }),
    name: Type.String({ pattern: '^[a-z][a-z0-9_]*$', default: 'remote_write', errorMessage: 'lowercase letters, digits and _', description: 'The sink\'s name in plumb_sink_* metrics and its queue folder.' }),
    headers: Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]+$' }), Type.String(), { default: {}, description: 'Extra request headers, e.g. X-Scope-OrgID for Mimir, Cortex or Loki tenants.' }),
    auth: Type.Optional(RemoteWriteAuthSchema),
    tls: RemoteWriteTlsSchema,
    shards: Type.Integer({ minimum: 1, maximum: 64, default: 4, description: 'Requests in flight at once; a series always goes through the same shard, so its samples arrive in order.' }),
    maxSamplesPerSend: Type.Integer({ minimum: 1, default: 2000, description: 'Samples in one request, at most.' }),
    maxBytesPerSend: Size('2mb', { description: 'Uncompressed size of one request, about (judged on the queued samples).' }),
    batchWait: Duration('200ms', { description: 'Longest wait for more queued samples before sending what there is.' }),
    timeout: Duration('30s', { description: 'Longest wait for one request.' }),
    retryInitial: Duration('500ms', { description: 'First retry delay; doubles per attempt, with jitter. A longer Retry-After wins.' }),
    retryMax: Duration('1m', { description: 'Longest retry delay (unless the store asks for longer).' }),
  },
  { optional: true, description: 'Prometheus remote_write 1.0 (protobuf + snappy) to Prometheus, VictoriaMetrics, Mimir, Cortex, Thanos receive.' },
);

export const GraphiteNamingSchema = Section(
  {
    scheme: Type.Union([Type.Literal('statsd'), Type.Literal('tags')], {
      default: 'statsd',
      errorMessage: '"statsd" or "tags"',
      description:
        'statsd: <prefix>.<counters|gauges|timers>.<name>[.<label values>][.<suffix>] (quantiles p50, p99…, sum, count, bucket.le_*); tags: Graphite 1.1 tagged series <name>;label=value;… with the names and labels of /metrics.',
    }),
    prefix: Type.String({ default: 'stats', description: 'First node of every path ("" for none).' }),
    counters: Type.String({ default: 'counters', description: 'statsd scheme: node for counters.' }),
    gauges: Type.String({ default: 'gauges', description: 'statsd scheme: node for gauges (and sets).' }),
    timers: Type.String({ default: 'timers', description: 'statsd scheme: node for timers, histograms and distributions (summaries and bucketed histograms).' }),
  },
  { description: 'How a Prometheus sample becomes a Graphite path.' },
);

export const GraphiteSinkSchema = Section(
  {
    host: Type.String({ minLength: 1, description: 'carbon-cache or carbon-relay host.' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 2003, description: 'Plaintext line receiver port.' }),
    name: Type.String({ pattern: '^[a-z][a-z0-9_]*$', default: 'graphite', errorMessage: 'lowercase letters, digits and _', description: 'The sink\'s name in plumb_sink_* metrics and its queue folder.' }),
    naming: GraphiteNamingSchema,
    batchBytes: Size('1mb', { description: 'Lines written to the socket together, at most.' }),
    batchWait: Duration('200ms', { description: 'Longest wait for more queued samples before writing what there is.' }),
    timeout: Duration('10s', { description: 'Longest wait to connect, or for a write to drain into the socket.' }),
    retryInitial: Duration('500ms', { description: 'First reconnect delay; doubles per attempt, with jitter.' }),
    retryMax: Duration('30s', { description: 'Longest reconnect delay.' }),
  },
  { optional: true, description: 'Graphite carbon plaintext protocol over TCP.' },
);

export const MetricSinksSchema = Section(
  {
    interval: Duration('15s', { description: 'Every sink gets the samples /metrics shows at each multiple of this interval, stamped with that instant (the interval\'s end).' }),
    remoteWrite: Type.Optional(Type.Array(RemoteWriteSinkSchema, { description: 'One entry per store; names must differ.' })),
    graphite: Type.Optional(Type.Array(GraphiteSinkSchema, { description: 'One entry per carbon endpoint (or naming scheme); names must differ.' })),
    otlp: Type.Optional(OtlpExportSchema),
    queue: Section({
      maxBytes: Size('512mb', { description: 'Disk taken by one sink\'s queue; an export that does not fit is dropped and counted in plumb_sink_queue_refused_total.' }),
      fsync: Type.Union([Type.Literal('batch'), Type.Literal('interval'), Type.Literal('never')], {
        default: 'interval',
        errorMessage: '"batch", "interval" or "never"',
        description: 'batch: each export synced before it counts as queued; interval: synced every second; never: left to the OS.',
      }),
    }),
    deadLetter: Section({ maxBytes: Size('100mb', { description: 'Size of one dead-letter file (samples a store refused with a 4xx), rotated once to .1.' }) }),
    stopTimeout: Duration('10s', { description: 'How long a stop keeps draining the queues; the rest stays queued on disk for the next start.' }),
  },
  { description: 'Long-term stores for metrics: remote_write, Graphite, OTLP. None by default. Queues under <collector.dataDir>/metric-sinks/<name>/.' },
);

export type MetricSinksConfig = StaticDecode<typeof MetricSinksSchema>;
export type RemoteWriteSinkConfig = NonNullable<MetricSinksConfig['remoteWrite']>[number];
export type GraphiteSinkConfig = NonNullable<MetricSinksConfig['graphite']>[number];
export type GraphiteNaming = GraphiteSinkConfig['naming'];

/** The rules the schema cannot express, for the subtree at `path` ("collector.metrics.sinks"). */
export function checkMetricSinksConfig(config: MetricSinksConfig, path: string): string[] {
  const errors: string[] = [];
  const names = new Set<string>();
  if (config.interval < 1000) errors.push(`${path}.interval: at least 1s`);
  (config.remoteWrite ?? []).forEach((rw, i) => {
    const at = `${path}.remoteWrite[${i}]`;
    if (names.has(rw.name)) errors.push(`${at}.name: "${rw.name}" is taken by another sink; give each its own name`);
    names.add(rw.name);
    const a = rw.auth;
    if (a) {
      const basic = a.username !== undefined || a.password !== undefined || a.passwordFile !== undefined;
      const bearer = a.bearerToken !== undefined || a.bearerTokenFile !== undefined;
      if (basic && bearer) errors.push(`${at}.auth: use basic auth or a bearer token, not both`);
      if (!basic && !bearer) errors.push(`${at}.auth: set username and password/passwordFile, or bearerToken/bearerTokenFile (or remove auth)`);
      if (basic && a.username === undefined) errors.push(`${at}.auth.username: required with a password`);
      if (a.username !== undefined && (a.password === undefined) === (a.passwordFile === undefined)) errors.push(`${at}.auth: username needs password or passwordFile (one of them)`);
      if (a.bearerToken !== undefined && a.bearerTokenFile !== undefined) errors.push(`${at}.auth: set bearerToken or bearerTokenFile, not both`);
      for (const k of ['passwordFile', 'bearerTokenFile'] as const) {
        const file = a[k];
        if (file !== undefined && !isReadableFile(file)) errors.push(`${at}.auth.${k}: cannot read ${JSON.stringify(file)}`);
      }
    }
    for (const k of ['ca', 'cert', 'key'] as const) {
      const file = rw.tls[k];
      if (file !== undefined && !isReadableFile(file)) errors.push(`${at}.tls.${k}: cannot read ${JSON.stringify(file)}`);
    }
    if ((rw.tls.cert === undefined) !== (rw.tls.key === undefined)) errors.push(`${at}.tls: cert and key go together`);
    if (rw.retryMax < rw.retryInitial) errors.push(`${at}.retryMax: must not be below retryInitial`);
    if (rw.maxBytesPerSend < 1024) errors.push(`${at}.maxBytesPerSend: at least 1kb`);
  });
  (config.graphite ?? []).forEach((g, i) => {
    const at = `${path}.graphite[${i}]`;
    if (names.has(g.name)) errors.push(`${at}.name: "${g.name}" is taken by another sink; give each its own name`);
    names.add(g.name);
    if (g.retryMax < g.retryInitial) errors.push(`${at}.retryMax: must not be below retryInitial`);
    for (const k of ['prefix', 'counters', 'gauges', 'timers'] as const) {
      if (/[\s;]/.test(g.naming[k])) errors.push(`${at}.naming.${k}: no spaces or ";" in a Graphite path (got ${JSON.stringify(g.naming[k])})`);
    }
  });
  if (config.otlp !== undefined && names.has('otlp')) errors.push(`${path}.otlp: the name "otlp" is taken by another sink; rename that one`);
  return errors;
}

function isReadableFile(file: string): boolean {
  try {
    return existsSync(file) && statSync(file).isFile();
  } catch {
    return false;
  }
}
