/** The whole configuration file: both roles, logging, and the checks the schema cannot express. */
import { PatternsSchema, patternsConfigErrors } from '../collector/patterns/config.ts';
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Section, loadConfig, type ConfigCheck, type LoadOptions } from '../shared/config.ts';
import { AgentSchema } from '../agent/config.ts';
import { CollectorSchema, CollectorMetricsSchema, CollectorTracesSchema } from '../collector/config.ts';
import { AlertsConfigSchema } from '../collector/alerts/config.ts';
import { checkRulesFile } from '../collector/alerts/rules.ts';
import { checkMappings } from '../collector/metrics/naming.ts';
import { MetricSinksSchema, checkMetricSinksConfig } from '../collector/metrics/sinks/config.ts';
import { serviceCheckErrors, ServiceChecksSchema } from '../agent/host/config.ts';
import { SelfTracingSchema } from '../shared/tracing.ts';
import { parseListen } from '../shared/address.ts';
import { AgentLogsSchema, logsConfigErrors } from '../agent/logs/config.ts';
import { CollectorLogsSchema, checkLogsConfig } from '../collector/logs/config.ts';
import { checkSpanIndexConfig } from '../collector/traces/span-index.ts';
import { SecurityCheckSchema, agentFileErrors, securityConfigErrors, securityFileErrors } from '../collector/security.ts';
import { ForwardSchema } from '../agent/config.ts';
import { FleetCheckSchema, fleetConfigErrors } from '../collector/fleet/config.ts';

export const PlumbSchema = Section({
  agent: AgentSchema,
  collector: CollectorSchema,
  log: Section({
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  }),
  telemetry: Section({ tracing: SelfTracingSchema }, { description: "plumb's own telemetry" }),
});

export type PlumbConfig = StaticDecode<typeof PlumbSchema>;

/** The checks the schema cannot express, each on the part of the file it reads. */
export const PLUMB_CHECKS: readonly ConfigCheck[] = [
  { path: 'collector', schema: SecurityCheckSchema, run: (c: PlumbConfig['collector']) => securityConfigErrors(c, 'collector') },
  { path: 'collector', schema: FleetCheckSchema, run: (c: PlumbConfig['collector']) => fleetConfigErrors(c, 'collector') },
  { path: 'collector.metrics', schema: CollectorMetricsSchema, run: (m: PlumbConfig['collector']['metrics']) => checkMappings(m.mappings, 'collector.metrics.mappings') },
  { path: 'collector.metrics.sinks', schema: MetricSinksSchema, run: (s: PlumbConfig['collector']['metrics']['sinks']) => checkMetricSinksConfig(s, 'collector.metrics.sinks') },
  { path: 'agent', schema: AgentLogsSchema, run: (a: PlumbConfig['agent']) => logsConfigErrors(a, 'agent') },
  { path: 'collector.logs', schema: CollectorLogsSchema, run: (c: PlumbConfig['collector']['logs']) => checkLogsConfig(c, 'collector.logs') },
  {
    path: 'collector.traces',
    schema: CollectorTracesSchema,
    run: (t: PlumbConfig['collector']['traces']) => (t.elasticsearch === undefined ? [] : checkSpanIndexConfig(t.elasticsearch, 'collector.traces.elasticsearch')),
  },
  { path: 'collector.patterns', schema: PatternsSchema, run: (c: PlumbConfig['collector']['patterns']) => patternsConfigErrors(c, 'collector.patterns') },
  { path: 'agent.checks', schema: ServiceChecksSchema, run: (c: PlumbConfig['agent']['checks']) => serviceCheckErrors(c, 'agent.checks') },
  {
    path: 'collector.alerts',
    schema: AlertsConfigSchema,
    run: (a: PlumbConfig['collector']['alerts']) => (a.rulesFile === undefined ? [] : checkRulesFile(a.rulesFile, { resolution: a.resolution })),
  },
];

/**
 * plumb's own spans sent to its own agent would be forwarded, ingested and exported again, each
 * time making new spans of their own: a loop that never ends. Catches the obvious case, for a
 * process that runs the agent (a collector alone may well send to a Zipkin on that port).
 */
export function selfTracingLoopErrors(config: PlumbConfig): string[] {
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

/**
 * The checks that read this machine: token and TLS files, the tokensEnv variable. check-config
 * runs them (not with --offline, for a config meant for another machine); at start the roles
 * read the same files themselves.
 */
function machineChecks(env: Record<string, string | undefined>): ConfigCheck[] {
  return [
    { path: 'collector', schema: SecurityCheckSchema, run: (c: PlumbConfig['collector']) => securityFileErrors(c, env, 'collector') },
    { path: 'agent.forward', schema: ForwardSchema, run: (f: PlumbConfig['agent']['forward']) => agentFileErrors(f, 'agent.forward') },
  ];
}

export function loadPlumbConfig(options: LoadOptions & { machine?: boolean }): PlumbConfig {
  return loadConfig(PlumbSchema, options, options.machine === true ? [...PLUMB_CHECKS, ...machineChecks(options.env ?? {})] : PLUMB_CHECKS);
}
