/** The agent's configuration schema: every key, its default, and what it means. */
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Section, Duration, Size } from '../shared/config.ts';
import { LISTEN_PATTERN } from '../shared/address.ts';
import { HostMetricsSchema, ServiceChecksSchema } from './host/config.ts';
import { ZipkinReceiverSchema } from './traces/receiver.ts';
import { SpanBatcherSchema } from './traces/batcher.ts';
import { LogInputsSchema, TailerOptionsSchema } from './logs/tail/config.ts';
import { GrokPoolSchema } from './logs/config.ts';
import { KubernetesSchema } from './logs/kubernetes/config.ts';
import { otlpSchema } from '../shared/otlp/config.ts';
import { HttpLimitsProperties } from '../shared/http-limits.ts';
import { TokenAuthSchema } from '../shared/security.ts';
import type { AggregatorOptions } from './statsd/aggregator.ts';
import { RemoteConfigSchema } from './remote-config.ts';

const Listen = (def: string, description: string) => Type.String({ pattern: LISTEN_PATTERN, default: def, description, errorMessage: 'host:port, e.g. "127.0.0.1:8125" or "[::1]:8125"' });

export const StatsdSchema = Section({
  enabled: Type.Boolean({ default: true }),
  listen: Listen('127.0.0.1:8125', 'UDP address for statsd/DogStatsD'),
  tcp: Type.Union([Type.Null(), Type.String({ pattern: LISTEN_PATTERN })], { default: null, description: 'optional newline-delimited TCP listener', errorMessage: 'null, or host:port like "127.0.0.1:8125"' }),
  flushInterval: Duration('10s'),
  maxSeries: Type.Integer({ minimum: 1, default: 100_000, description: 'distinct series per interval; more are dropped and counted' }),
  maxSetMembers: Type.Integer({ minimum: 1, default: 10_000 }),
  maxEvents: Type.Integer({ minimum: 0, default: 1000, description: 'events and service checks kept per interval' }),
  receiveBuffer: Size('4mb', { description: 'UDP receive buffer asked of the kernel (capped by net.core.rmem_max)' }),
  maxLineBytes: Size('64kb', { description: 'longest TCP line (and longest unix stream frame); a longer TCP line is discarded and counted' }),
  tcpMaxConnections: Type.Integer({ minimum: 1, default: 512, description: 'open TCP connections at most; more are closed on accept and counted' }),
  tcpIdleTimeout: Duration('2m', { description: 'a TCP connection that sends nothing for this long is closed and counted' }),
  socket: Section({
    path: Type.Union([Type.Null(), Type.String({ minLength: 2, maxLength: 107, pattern: '^/' })], {
      default: null,
      description: 'Unix datagram socket for DogStatsD (clients: unix:// or unixgram://), e.g. /var/run/plumb/dsd.socket; null for none',
      errorMessage: 'an absolute path of at most 107 bytes, or null',
    }),
    streamPath: Type.Union([Type.Null(), Type.String({ minLength: 2, maxLength: 107, pattern: '^/' })], {
      default: null,
      description: 'optional Unix stream socket (clients: unixstream://; each message prefixed by its length, 4 bytes little-endian)',
      errorMessage: 'an absolute path of at most 107 bytes, or null',
    }),
    mode: Type.Transform(Type.String({ pattern: '^0?[0-7]{3}$', default: '0622', description: 'file mode of the socket files, quoted octal; clients need write permission to send', errorMessage: 'a quoted octal mode like "0622"' }))
      .Decode((v) => parseInt(v, 8))
      .Encode((v) => `0${v.toString(8)}`),
    group: Type.Union([Type.Null(), Type.Integer({ minimum: 0 }), Type.String({ minLength: 1 })], { default: null, description: 'group (name or gid) given to the socket files; null keeps the agent\'s' }),
    receiveBuffer: Size('4mb', { description: 'receive buffer of the datagram socket asked of the kernel (capped by net.core.rmem_max)' }),
  }),
  relativeAccuracy: Type.Number({ exclusiveMinimum: 0, maximum: 0.1, default: 0.01, description: 'DDSketch relative accuracy for timers/histograms/distributions' }),
  gaugeTtl: Duration('1h', { description: 'how long a gauge is remembered as the base for +/- deltas' }),
  maxTimestampSkew: Duration('1m', {
    description: 'a DogStatsD |T timestamp further than this from now (past or future) refuses its line, counted as timestamp_out_of_range; a closer one counts in the interval it arrives in',
  }),
  tagStyles: Section({
    influx: Type.Boolean({ default: true }),
    librato: Type.Boolean({ default: true }),
    signalfx: Type.Boolean({ default: true }),
  }),
  tags: Type.Array(Type.String(), { default: [], description: 'tags added to every metric, e.g. ["env:prod"]' }),
});

export const ForwardSpoolSchema = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'write metric and span batches to disk before they count as queued (survives a crash or kill -9)' }),
    maxBytes: Size('1gb', { description: 'disk for all lanes together, split evenly between the metrics lane of each collector and the traces lane; a metric interval that does not fit is merged into the intervals waiting for room (counters add, gauges keep the last value, sketches merge) instead of dropped' }),
    segmentBytes: Size('16mb', { description: 'size of one segment file' }),
    fsync: Type.Union([Type.Literal('batch'), Type.Literal('interval'), Type.Literal('never')], {
      default: 'batch',
      description: 'batch: each batch is synced to disk before it counts as queued; interval: synced every fsyncInterval; never: left to the OS',
    }),
    fsyncInterval: Duration('1s'),
  },
  { description: 'Disk spool under <agent.dataDir>/spool/<lane>.' },
);

export const ForwardAuthSchema = Section(
  {
    token: Type.Optional(Type.String({ minLength: 1, description: 'bearer token sent to the collectors (prefer tokenFile)' })),
    tokenFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the bearer token, read at start' })),
  },
  { description: 'Authorization: Bearer <token> on every request to a collector.' },
);

export const ForwardTlsSchema = Section(
  {
    ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the CA that signed the collector certificates (default: system CAs)' })),
    cert: Type.Optional(Type.String({ minLength: 1, description: 'PEM client certificate, for collectors that require one' })),
    key: Type.Optional(Type.String({ minLength: 1, description: 'PEM key of the client certificate' })),
    serverName: Type.Optional(Type.String({ minLength: 1, description: 'name the collector certificate must carry, when not the URL host' })),
  },
  { description: 'TLS for https:// collectors; the server certificate is always verified.' },
);

export const ForwardSchema = Section({
  collectors: Type.Array(Type.String({ pattern: '^https?://' }), { default: ['http://127.0.0.1:9102'], minItems: 1 }),
  timeout: Duration('10s'),
  maxQueueBytes: Size('256mb', { description: 'memory queue of each lane' }),
  maxQueueBatches: Type.Integer({ minimum: 1, default: 10_000, description: 'memory queue of each lane' }),
  retryInitial: Duration('200ms'),
  retryMax: Duration('30s'),
  compress: Type.Boolean({ default: true }),
  logsInFlight: Type.Integer({ minimum: 1, maximum: 16, default: 4, description: 'log batches posted to collectors at once: while a collector syncs one to disk it parses the next (the files\' checkpoints still move only over acknowledged batches)' }),
  compressLevel: Type.Integer({ minimum: 1, maximum: 9, default: 1, description: 'gzip level of forwarded batches: 1 costs half the CPU of zlib\'s default 6 for bodies about 1.5× larger (62 against 41 bytes per access-log event of 730)' }),
  healthCheckInterval: Duration('5s', { description: 'how often each collector\'s /readyz is probed to bring it back after a failure' }),
  spool: ForwardSpoolSchema,
  auth: ForwardAuthSchema,
  tls: ForwardTlsSchema,
});

export const AgentTracesSchema = Section(
  {
    zipkin: ZipkinReceiverSchema,
    batch: SpanBatcherSchema,
  },
  { description: 'Spans from applications (Zipkin v2), batched and forwarded to the collectors.' },
);

export const AgentMemorySchema = Section(
  {
    budget: Size(0, {
      description:
        'RSS the agent should stay under; near it the agent sheds load in order: at 80 % it stops reading files, at 90 % it answers spans and OTLP with 429, at 95 % it merges statsd intervals instead of queueing them. 0: no guard. Set it below the container or unit memory limit',
    }),
    checkInterval: Duration('1s', { description: 'how often RSS is read' }),
    optimizeForSize: Type.Union([Type.Literal('auto'), Type.Boolean()], {
      default: 'auto',
      description:
        "V8 favours a small heap over speed (its --optimize-for-size, set at start-up, process-wide): the heap grows in smaller steps and is collected sooner. Measured: 100k distinct statsd series 331 → 180 MiB peak for about 5 % of saturated statsd throughput, but 40-50 % more agent CPU per parsed log line. auto: on for `plumb agent` with no log inputs, off when the process parses logs or runs the collector too (`plumb all`); true / false: always / never",
      errorMessage: 'auto, true or false',
    }),
    heapGrowthPercent: Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 10, maximum: 300 })], {
      default: 'auto',
      description:
        "How far V8's old generation may grow past what the last full collection left live before the next one (its --heap-growing-percent, set at start-up, process-wide; V8 alone picks up to 300). Measured in `plumb all` tailing a log at full speed: with 50 it peaked at 275-294 MiB against 360-367 before, CPU a line unchanged within the runs' spread. auto: 50 when the process parses logs and runs the collector too (`plumb all`), V8's own choice otherwise; a number: always that",
      errorMessage: "auto or a whole percentage from 10 to 300",
    }),
  },
  { description: 'The memory guard (agent/memory/guard.ts) and the heap policy.' },
);

/**
 * Whether V8 should favour a small heap (agent.memory.optimizeForSize). `auto` keeps it for an
 * agent that parses no logs: it nearly halves the heap of one holding many statsd series for
 * about 5 % of saturated statsd throughput, but parsing allocates so fast that the extra
 * collections cost 40-50 % more CPU a line, and in `plumb all` the collector's ingest pays the
 * same (bench/RESULTS.md).
 */
export function smallHeap(policy: 'auto' | boolean, parsesLogs: boolean, collectorInProcess: boolean): boolean {
  return policy === 'auto' ? !parsesLogs && !collectorInProcess : policy;
}

/**
 * V8's --heap-growing-percent for the process (agent.memory.heapGrowthPercent), or undefined to
 * leave V8 its own. In `plumb all` the log path's dead batches are freed as soon as they are done
 * (shared/release.ts), so V8 no longer runs a full collection every 64 MiB of buffers, and left to
 * itself lets the heap grow to 150-170 MiB between collections; 50 keeps it near 60-70 for 2-3 µs
 * of CPU a line, about what freeing the buffers saves (bench/RESULTS.md).
 */
export function heapGrowthPercent(policy: 'auto' | number, parsesLogs: boolean, collectorInProcess: boolean): number | undefined {
  if (policy !== 'auto') return policy;
  return parsesLogs && collectorInProcess ? 50 : undefined;
}

export const AgentSchema = Section({
  id: Type.Optional(Type.String({ minLength: 1, description: 'agent identity; defaults to the host name' })),
  hostname: Type.Optional(Type.String({ minLength: 1 })),
  dataDir: Type.String({ default: './data/agent' }),
  http: Section({
    listen: Listen('127.0.0.1:8126', 'health and self-metrics'),
    ...HttpLimitsProperties,
    auth: TokenAuthSchema("Bearer tokens required on the agent's /api/v1/* (status, tap, grok) and its console /ui/; /metrics, /healthz and /readyz stay open. None configured: open, as its default loopback listener is."),
  }),
  statsd: StatsdSchema,
  forward: ForwardSchema,
  host: HostMetricsSchema,
  checks: ServiceChecksSchema,
  traces: AgentTracesSchema,
  otlp: otlpSchema('127.0.0.1'),
  logs: LogInputsSchema,
  tail: TailerOptionsSchema,
  grok: GrokPoolSchema,
  kubernetes: KubernetesSchema,
  memory: AgentMemorySchema,
  remoteConfig: RemoteConfigSchema,
});

export type AgentConfig = StaticDecode<typeof AgentSchema>;

/** The aggregator's settings from the agent's statsd section. */
export function aggregatorOptions(s: StaticDecode<typeof StatsdSchema>): AggregatorOptions {
  return {
    maxSeries: s.maxSeries,
    maxSetMembers: s.maxSetMembers,
    relativeAccuracy: s.relativeAccuracy,
    tagStyles: s.tagStyles,
    maxEvents: s.maxEvents,
    gaugeTtlMs: s.gaugeTtl,
    extraTags: s.tags,
    maxTimestampSkewMs: s.maxTimestampSkew,
  };
}
