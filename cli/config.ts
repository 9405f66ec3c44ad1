/** The whole configuration file: both roles, logging, and the checks the schema cannot express. */
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Section, loadConfig, type LoadOptions } from '../shared/config.ts';
import { AgentSchema } from '../agent/config.ts';
import { CollectorSchema } from '../collector/config.ts';
import { checkMappings } from '../collector/metrics/naming.ts';
import { serviceCheckErrors } from '../agent/host/config.ts';

export const PlumbSchema = Section({
  agent: AgentSchema,
  collector: CollectorSchema,
  log: Section({
    level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  }),
});

export type PlumbConfig = StaticDecode<typeof PlumbSchema>;

export function checkPlumbConfig(config: PlumbConfig): string[] {
  return [...checkMappings(config.collector.metrics.mappings, 'collector.metrics.mappings'), ...serviceCheckErrors(config.agent.checks, 'agent.checks')];
}

export function loadPlumbConfig(options: LoadOptions): PlumbConfig {
  return loadConfig(PlumbSchema, options, checkPlumbConfig);
}
