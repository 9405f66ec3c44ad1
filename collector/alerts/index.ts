/**
 * The alert engine's public surface. Wiring in the collector's composition root:
 *
 *   const alerts = new AlertEngine({ config: collectorConfig.alerts, telemetry, log });
 *   await alerts.start();                         // throws ConfigError on a broken rule file
 *   process.on('SIGHUP', () => void alerts.reload());
 *   // per series of each accepted agent batch (after dedupe and name mapping):
 *   alerts.observeMetric({ statsdName, name, labels, type, value, sketch }, Date.now());
 *   // per log event the collector routes:
 *   alerts.observeLog(event, Date.now());
 *   // GET /metrics: append alerts.metricsText() to the exposition text
 *   await app.register(alertRoutes(alerts));      // GET /api/v1/alerts, GET /api/v1/rules
 *   // shutdown (after sources stop):
 *   await alerts.stop(deadlineMs);
 */
export { AlertEngine, WINDOW_CHUNK_PREFIX, type AlertEngineOptions, type ReloadResult, type MetricObservation, type CumulativeObservation } from './engine.ts';
export { AlertsConfigSchema, type AlertsConfig } from './config.ts';
export { alertRoutes } from './routes.ts';
export { RulePeers, registerRuleFleetRoutes } from './fleet.ts';
export { parseRules, checkRulesFile, type Rule, type ParseResult } from './rules.ts';
