/**
 * What `plumb agent` reads of the configuration file: the agent section, logging and self-tracing.
 * The collector section is left to `plumb collector` (and to `plumb check-config`, which checks
 * the whole file), so an agent does not load the collector's modules only to validate keys it
 * never uses: their schemas live beside the sinks, stores and SDKs they configure.
 */
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration, Section, loadConfig, type ConfigCheck, type LoadOptions } from '../shared/config.ts';
import { AgentSchema } from '../agent/config.ts';
import { serviceCheckErrors, ServiceChecksSchema } from '../agent/host/config.ts';
import { AgentLogsSchema, logsConfigErrors } from '../agent/logs/config.ts';
import { SelfTracingSchema } from '../shared/tracing.ts';
import { parseListen } from '../shared/address.ts';

export const LogLevelSchema = Section({
  level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  format: Type.Union(['auto', 'json', 'pretty'].map((l) => Type.Literal(l)), {
    default: 'auto',
    description: 'json: one pino JSON object per line; pretty: one readable line per entry; auto: pretty when stderr is a terminal, else json (the --log-format flag wins)',
  }),
});

export const TelemetrySchema = Section({ tracing: SelfTracingSchema }, { description: "plumb's own telemetry" });

export const ReloadSchema = Section(
  {
    watch: Type.Boolean({ default: true, description: 'reload when the config file changes (SIGHUP always reloads)' }),
    debounce: Duration('500ms', { description: 'quiet time after a change of the file before it is read' }),
    deadline: Duration('10s', { description: 'how long a reload lets a restarting component drain; what is left stays queued (spools, disk queues, unacknowledged log offsets)' }),
  },
  { description: 'Whole-config reload.' },
);

export const AgentFileSchema = Section({
  agent: AgentSchema,
  collector: Type.Optional(Type.Unknown({ description: 'read by plumb collector' })),
  log: LogLevelSchema,
  telemetry: TelemetrySchema,
  reload: ReloadSchema,
});

export type AgentFileConfig = StaticDecode<typeof AgentFileSchema>;

/** The checks the schema cannot express, for the agent's part of the file. */
export const AGENT_CHECKS: readonly ConfigCheck[] = [
  { path: 'agent', schema: AgentLogsSchema, run: (a: AgentFileConfig['agent']) => logsConfigErrors(a, 'agent') },
  { path: 'agent.checks', schema: ServiceChecksSchema, run: (c: AgentFileConfig['agent']['checks']) => serviceCheckErrors(c, 'agent.checks') },
];

/**
 * plumb's own spans sent to its own agent would be forwarded, ingested and exported again, each
 * time making new spans of their own: a loop that never ends. Catches the obvious case, for a
 * process that runs the agent (a collector alone may well send to a Zipkin on that port).
 */
export function selfTracingLoopErrors(config: Pick<AgentFileConfig, 'agent' | 'telemetry'>): string[] {
  const url = config.telemetry.tracing.zipkin;
  const receiver = config.agent.traces.zipkin;
  if (url === null || !receiver.enabled) return [];
  const target = new URL(url);
  const listen = parseListen(receiver.listen);
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const local = host === listen.host || (['127.0.0.1', 'localhost', '::1'].includes(host) && ['0.0.0.0', '::', '127.0.0.1', 'localhost', '::1'].includes(listen.host));
  if (port !== listen.port || !local) return [];
  return [`telemetry.tracing.zipkin: points at this agent's own Zipkin receiver (agent.traces.zipkin.listen ${receiver.listen}); plumb would trace its own traces forever — point it at Zipkin itself`];
}

/** Loads the file for `plumb agent`; PLUMB_COLLECTOR__* overrides are the collector's and are not read. */
export function loadAgentConfig(options: LoadOptions): AgentFileConfig {
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(options.env ?? {})) if (!k.startsWith('PLUMB_COLLECTOR__')) env[k] = v;
  return loadConfig(AgentFileSchema, { ...options, env }, AGENT_CHECKS);
}
