/** The alert engine's public surface, for the collector's composition root. */
export { AlertEngine, type AlertEngineOptions, type ReloadResult, type MetricObservation, type CumulativeObservation } from './engine.ts';
export { AlertsConfigSchema, type AlertsConfig } from './config.ts';
export { alertRoutes } from './routes.ts';
export { parseRules, type Rule, type ParseResult } from './rules.ts';
