import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../../shared/config.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { AlertsConfigSchema } from '../../../../collector/alerts/config.ts';
import { AlertEngine } from '../../../../collector/alerts/engine.ts';

describe('alerts config', () => {
  it('decodes defaults', () => {
    const c = loadConfig(AlertsConfigSchema, { text: '' });
    expect(c).toMatchObject({
      evaluationInterval: 15_000,
      resendInterval: 60_000,
      resolution: 10_000,
      maxSeries: 10_000,
      maxAlerts: 10_000,
      watch: true,
      alertmanager: { urls: [] },
      webhooks: [],
      delivery: { timeout: 10_000, maxAttempts: 5, queueSize: 100 },
    });
    expect(c.rulesFile).toBeUndefined();
  });

  it('names every bad key', () => {
    const text = `
alertmanager: { urls: ["am:9093"] }
webhooks: [{ url: "https://hooks.example/x", kind: teams }]
evaluationInterval: often
maxSeries: 0
`;
    let err: unknown;
    try {
      loadConfig(AlertsConfigSchema, { text, file: 'collector.yaml' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const keys = (err as ConfigError).errors.map((e) => e.slice(0, e.indexOf(':')));
    expect(keys).toEqual(expect.arrayContaining(['alertmanager.urls[0]', 'webhooks[0].kind', 'evaluationInterval', 'maxSeries']));
  });

  it('takes environment overrides', () => {
    const c = loadConfig(AlertsConfigSchema, { text: '', env: { PLUMB_ALERTMANAGER__URLS: '["http://am:9093"]', PLUMB_EVALUATION_INTERVAL: '30s' } });
    expect(c.alertmanager.urls).toEqual(['http://am:9093']);
    expect(c.evaluationInterval).toBe(30_000);
  });

  it('refuses a bucket resolution that does not divide a minute', () => {
    const config = loadConfig(AlertsConfigSchema, { text: 'resolution: 7s' });
    expect(() => new AlertEngine({ config, telemetry: new Telemetry(), log: silentLogger() })).toThrow(/resolution: must divide one minute/);
  });
});
