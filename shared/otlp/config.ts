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

