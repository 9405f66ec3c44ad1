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
import { AGENT_CHECKS, LogLevelSchema, ReloadSchema, TelemetrySchema } from './agent-config.ts';
import { CollectorLogsSchema, checkLogsConfig } from '../collector/logs/config.ts';
import { checkSpanIndexConfig } from '../collector/traces/span-index.ts';
import { SecurityCheckSchema, TokenAuthSchema, agentFileErrors, securityConfigErrors, securityFileErrors } from '../shared/security.ts';
import { ForwardSchema } from '../agent/config.ts';
import { FleetCheckSchema, fleetConfigErrors } from '../collector/fleet/config.ts';

export const PlumbSchema = Section({
  agent: AgentSchema,
  collector: CollectorSchema,
  log: LogLevelSchema,
  telemetry: TelemetrySchema,
  reload: ReloadSchema,
});

export type PlumbConfig = StaticDecode<typeof PlumbSchema>;

/** The keys of agent.http the token checks read. */
const AgentHttpAuthSchema = Type.Object({ listen: Type.String(), auth: TokenAuthSchema('') });

/** The checks the schema cannot express, each on the part of the file it reads. */
export const PLUMB_CHECKS: readonly ConfigCheck[] = [
  { path: 'collector', schema: SecurityCheckSchema, run: (c: PlumbConfig['collector']) => securityConfigErrors(c, 'collector') },
  { path: 'collector', schema: FleetCheckSchema, run: (c: PlumbConfig['collector']) => fleetConfigErrors(c, 'collector') },
  { path: 'collector.metrics', schema: CollectorMetricsSchema, run: (m: PlumbConfig['collector']['metrics']) => checkMappings(m.mappings, 'collector.metrics.mappings') },
  { path: 'collector.metrics.sinks', schema: MetricSinksSchema, run: (s: PlumbConfig['collector']['metrics']['sinks']) => checkMetricSinksConfig(s, 'collector.metrics.sinks') },
  AGENT_CHECKS[0], // agent (log inputs)
  { path: 'collector.logs', schema: CollectorLogsSchema, run: (c: PlumbConfig['collector']['logs']) => checkLogsConfig(c, 'collector.logs') },
  {
    path: 'collector.traces',
    schema: CollectorTracesSchema,
    run: (t: PlumbConfig['collector']['traces']) => (t.elasticsearch === undefined ? [] : checkSpanIndexConfig(t.elasticsearch, 'collector.traces.elasticsearch')),
  },
  { path: 'collector.patterns', schema: PatternsSchema, run: (c: PlumbConfig['collector']['patterns']) => patternsConfigErrors(c, 'collector.patterns') },
  AGENT_CHECKS[1], // agent.checks
  { path: 'agent.http', schema: AgentHttpAuthSchema, run: (h: PlumbConfig['agent']['http']) => securityConfigErrors({ listen: h.listen, insecure: true, auth: h.auth }, 'agent.http') },
  {
    path: 'collector.alerts',
    schema: AlertsConfigSchema,
    run: (a: PlumbConfig['collector']['alerts']) => (a.rulesFile === undefined ? [] : checkRulesFile(a.rulesFile, { resolution: a.resolution })),
  },
];

export { selfTracingLoopErrors } from './agent-config.ts';

/**
 * The checks that read this machine: token and TLS files, the tokensEnv variable. check-config
 * runs them (not with --offline, for a config meant for another machine); at start the roles
 * read the same files themselves.
 */
function machineChecks(env: Record<string, string | undefined>): ConfigCheck[] {
  return [
    { path: 'collector', schema: SecurityCheckSchema, run: (c: PlumbConfig['collector']) => securityFileErrors(c, env, 'collector') },
    { path: 'agent.forward', schema: ForwardSchema, run: (f: PlumbConfig['agent']['forward']) => agentFileErrors(f, 'agent.forward') },
    { path: 'agent.http', schema: AgentHttpAuthSchema, run: (h: PlumbConfig['agent']['http']) => securityFileErrors({ listen: h.listen, insecure: true, auth: h.auth }, env, 'agent.http') },
  ];
}

export function loadPlumbConfig(options: LoadOptions & { machine?: boolean }): PlumbConfig {
  return loadConfig(PlumbSchema, options, options.machine === true ? [...PLUMB_CHECKS, ...machineChecks(options.env ?? {})] : PLUMB_CHECKS);
}
