/** Builds an alert engine on a fake clock for tests. */
import YAML from 'yaml';
import { loadConfig } from '../../../../shared/config.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { AlertsConfigSchema, type AlertsConfig } from '../../../../collector/alerts/config.ts';
import { AlertEngine } from '../../../../collector/alerts/engine.ts';
import type { PostFn } from '../../../../collector/alerts/notify.ts';

export function alertsConfig(overrides: Record<string, unknown> = {}): AlertsConfig {
  return loadConfig(AlertsConfigSchema, { text: YAML.stringify(overrides) });
}

export class Clock {
  t: number;
  constructor(start = 0) {
    this.t = start;
  }
  readonly now = (): number => this.t;
}

export interface Harness {
  engine: AlertEngine;
  clock: Clock;
  telemetry: Telemetry;
}

/** An engine holding `rules` (YAML text); throws if they do not load. */
export function harness(rules: string, options: { config?: Record<string, unknown>; start?: number; post?: PostFn } = {}): Harness {
  const clock = new Clock(options.start ?? 0);
  const telemetry = new Telemetry();
  const engine = new AlertEngine({ config: alertsConfig(options.config), telemetry, log: silentLogger(), now: clock.now, post: options.post });
  const r = engine.loadRulesText(rules);
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return { engine, clock, telemetry };
}

/** State of every alert of `alertname`, keyed by its labels other than alertname. */
export function states(engine: AlertEngine, alertname?: string): string[] {
  return engine
    .alertsJSON()
    .data.alerts.filter((a) => alertname === undefined || a.labels.alertname === alertname)
    .map((a) => a.state);
}

/** Value of one sample in Prometheus text, or undefined. */
export function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

