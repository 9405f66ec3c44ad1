/**
 * Configuration of the collector's alert engine. The rules themselves live in their own YAML file
 * (`rulesFile`, see config/rules/README.md) so they can be reloaded without restarting.
 */
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration, Section } from '../../shared/config.ts';

const WebhookSchema = Section(
  {
    url: Type.String({ pattern: '^https?://', errorMessage: 'an http:// or https:// URL' }),
    kind: Type.Union([Type.Literal('json'), Type.Literal('slack')], { default: 'json', errorMessage: '"json" or "slack"' }),
    headers: Type.Record(Type.String(), Type.String(), { default: {} }),
  },
  { optional: true, description: 'A webhook told when an alert starts firing and when it resolves.' },
);

export const AlertsConfigSchema = Section(
  {
    rulesFile: Type.Optional(Type.String({ description: 'YAML rule file; without one the engine holds no rules.' })),
    evaluationInterval: Duration('15s', { description: 'How often every rule is evaluated.' }),
    resendInterval: Duration('1m', { description: 'How often a firing alert is re-sent to Alertmanager.' }),
    outageTolerance: Duration('1h', {
      description: 'A collector away for longer than this forgets its pending alerts\' `for` progress and restarts the coverage of its windows at start-up (as Prometheus\' rules.alert.for-outage-tolerance).',
    }),
    resolution: Duration('10s', { description: 'Width of the finest bucket; the shortest window a rule may use.' }),
    maxSeries: Type.Integer({ minimum: 1, default: 10_000, description: 'Series (groups) kept across all rules.' }),
    maxAlerts: Type.Integer({ minimum: 1, default: 10_000, description: 'Alerts (pending, firing, recently resolved) kept across all rules.' }),
    watch: Type.Boolean({ default: true, description: 'Reload the rule file when it changes.' }),
    watchInterval: Duration('2s', { description: 'How often the rule file is checked for changes.' }),
    externalUrl: Type.String({ default: 'http://localhost:9102', description: 'Base of generatorURL links in notifications.' }),
    alertmanager: Section({
      urls: Type.Array(Type.String({ pattern: '^https?://', errorMessage: 'an http:// or https:// URL' }), { default: [] }),
      headers: Type.Record(Type.String(), Type.String(), { default: {} }),
    }),
    webhooks: Type.Array(WebhookSchema, { default: [] }),
    delivery: Section({
      timeout: Duration('10s', { description: 'Deadline of one HTTP request to a notifier.' }),
      maxAttempts: Type.Integer({ minimum: 1, default: 5, description: 'Tries per notification before it is dropped and counted.' }),
      queueSize: Type.Integer({ minimum: 1, default: 100, description: 'Notifications waiting per destination; more are dropped and counted.' }),
      backoffInitial: Duration('500ms'),
      backoffMax: Duration('30s'),
    }),
  },
  { description: 'Alert rules evaluated by the collector.' },
);

export type AlertsConfig = StaticDecode<typeof AlertsConfigSchema>;
