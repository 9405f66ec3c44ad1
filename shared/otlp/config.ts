/**
 * The `otlp` section both roles share (agent.otlp, collector.otlp). Kept apart from the doors so
 * reading the config does not load protobufjs and gRPC: they are loaded only when the doors open.
 */
import { Type, type StaticDecode } from '@sinclair/typebox';
import { LISTEN_PATTERN } from '../address.ts';
import { Section, Size, Duration } from '../config.ts';

/** Resource attributes that become labels of every series by default. */
export const DEFAULT_RESOURCE_LABELS = ['service.name', 'service.namespace', 'service.instance.id', 'host.name'];

/** The `otlp` section of both roles; `at` names it in errors (agent.otlp, collector.otlp). */
export function otlpSchema(defaultHost: string) {
  return Section(
    {
      enabled: Type.Boolean({ default: false, description: 'Receive OTLP (traces, metrics, logs) over HTTP and gRPC.' }),
      http: Section({
        enabled: Type.Boolean({ default: true }),
        listen: Type.String({ default: `${defaultHost}:4318`, pattern: LISTEN_PATTERN, errorMessage: 'host:port, like "127.0.0.1:4318"', description: 'OTLP/HTTP address' }),
      }),
      grpc: Section({
        enabled: Type.Boolean({ default: true }),
        listen: Type.String({ default: `${defaultHost}:4317`, pattern: LISTEN_PATTERN, errorMessage: 'host:port, like "127.0.0.1:4317"', description: 'OTLP/gRPC address' }),
      }),
      maxBodyBytes: Size('8mb', { description: 'largest request (HTTP body after gzip decompression, gRPC message); larger ones are refused (413 / RESOURCE_EXHAUSTED)' }),
      retryAfter: Duration('1s', { description: 'Retry-After sent with 429 and 503' }),
      metrics: Section({
        resourceLabels: Type.Array(Type.String({ minLength: 1 }), { default: DEFAULT_RESOURCE_LABELS, description: 'resource attributes that become labels of every series; the others go to target_info' }),
        maxStreams: Type.Integer({ minimum: 1, default: 200_000, description: 'cumulative streams remembered for delta conversion; beyond, the oldest are forgotten (counted)' }),
        streamTtl: Duration('1h', { description: 'a cumulative stream without a point for this long is forgotten' }),
      }),
    },
    { description: 'OTLP receiver: POST /v1/{traces,metrics,logs} on http.listen, the OTLP gRPC services on grpc.listen.' },
  );
}

export type OtlpConfig = StaticDecode<ReturnType<typeof otlpSchema>>;


/** A collector sink section: collector.logs.sinks.otlp (and, later, the traces and metrics ones). */
export const OtlpExportSchema = Section(
  {
    endpoint: Type.String({ pattern: '^https?://[^\\s]+$', errorMessage: 'an http(s) URL like "http://otel-collector:4318"', description: 'Base URL; the signal path (/v1/logs, …) is appended.' }),
    headers: Type.Record(Type.String(), Type.String(), { default: {}, description: 'Sent with every request, e.g. { authorization: "Bearer …" }.' }),
    tls: Section({
      ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the CA that signed the server certificate (default: system CAs).' })),
      cert: Type.Optional(Type.String({ minLength: 1, description: 'PEM client certificate, for servers that require one.' })),
      key: Type.Optional(Type.String({ minLength: 1, description: 'PEM key of the client certificate.' })),
    }),
    timeout: Duration('10s', { description: 'Longest wait for one request.' }),
    compression: Type.Boolean({ default: true, description: 'gzip request bodies.' }),
    flushBytes: Size('1mb', { description: 'Largest batch of queued items for one request (before encoding).' }),
    flushInterval: Duration('1s', { description: 'Longest wait for more items before a request.' }),
    retryInitial: Duration('500ms', { description: 'First retry delay; doubles per attempt, with jitter; a Retry-After from the server wins.' }),
    retryMax: Duration('60s', { description: 'Longest retry delay.' }),
  },
  { optional: true, description: 'OTLP/HTTP exporter (protobuf): to another plumb, an OpenTelemetry Collector, Tempo, a vendor.' },
);

export type OtlpExportConfig = NonNullable<StaticDecode<typeof OtlpExportSchema>>;

