import { describe, expect, it } from 'vitest';
import { PermanentError, RetryableError } from '../../../../shared/errors.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { SinkMetrics, retryReason } from '../../../../collector/sinks/metrics.ts';
import { metricValue } from '../../../helpers/metrics.ts';

describe('sink metrics', () => {
  it('count retries by sink and reason', async () => {
    const t = new Telemetry();
    const m = new SinkMetrics(t);
    m.retry('elasticsearch', 'throttled', 2);
    expect(await metricValue(t.registry, 'plumb_sink_retries_total', { sink: 'elasticsearch', reason: 'throttled' })).toBe(2);
  });

  it('names the reason of a failed write from its status', () => {
    const r = (status?: number) => retryReason(new RetryableError('PLUMB_ERR_SINK_RETRYABLE', 'x', { status }));
    expect([r(undefined), r(429), r(401), r(403), r(500), r(503), r(408), r(404)]).toEqual(['unavailable', 'throttled', 'auth', 'auth', 'server_error', 'server_error', 'unavailable', 'other']);
    expect(retryReason(new Error('ECONNRESET'))).toBe('unavailable');
    expect(retryReason(new PermanentError('PLUMB_ERR_SINK_PERMANENT', 'x', { status: 400 }))).toBe('other');
  });
});
