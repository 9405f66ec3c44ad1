/**
 * Self-tracing's switch and its propagation: off costs nothing and writes no header; on, a trace
 * decision crosses the wire in `traceparent` and the receiving side follows it.
 */
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPlumbConfig, selfTracingLoopErrors } from '../../../../cli/config.ts';
import { ConfigError } from '../../../../shared/config.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { TRACING_OFF, startSelfTracing, type SelfTracing } from '../../../../shared/tracing.ts';
import { startZipkinServer, type ZipkinTestServer } from '../../../helpers/zipkin-server.ts';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (let c = cleanup.pop(); c; c = cleanup.pop()) await c();
});

function configErrors(text: string, env: Record<string, string> = {}): string[] {
  try {
    loadPlumbConfig({ text, env });
  } catch (err) {
    if (err instanceof ConfigError) return err.errors;
    throw err;
  }
  return [];
}

async function tracing(zipkin: ZipkinTestServer, serviceName: string, sampleRatio: number): Promise<SelfTracing> {
  const t = await startSelfTracing({ zipkin: zipkin.url, serviceName, sampleRatio }, { telemetry: new Telemetry(), log: silentLogger() });
  cleanup.push(() => t.shutdown());
  return t;
}

describe('telemetry.tracing config', () => {
  it('is off by default', () => {
    expect(loadPlumbConfig({ text: '{}', env: {} }).telemetry.tracing).toEqual({ zipkin: null, serviceName: 'plumb', sampleRatio: 1 });
  });

  it('names the bad key', () => {
    expect(configErrors('telemetry: { tracing: { zipkin: "zipkin:9411" } }')).toEqual(['telemetry.tracing.zipkin: expected an http(s) URL like "http://zipkin:9411", or null (got "zipkin:9411")']);
    expect(configErrors('telemetry: { tracing: { sampleRatio: 2 } }')[0]).toMatch(/^telemetry\.tracing\.sampleRatio: /);
    expect(configErrors('{}', { PLUMB_TELEMETRY__TRACING__ZIPKIN: 'http://zipkin:9411' })).toEqual([]);
  });

  it("refuses plumb's own spans sent to the same process's Zipkin receiver", () => {
    const config = (text: string) => loadPlumbConfig({ text, env: {} });
    expect(selfTracingLoopErrors(config('telemetry: { tracing: { zipkin: "http://127.0.0.1:9411" } }'))[0]).toMatch(/^telemetry\.tracing\.zipkin: points at this agent's own Zipkin receiver/);
    expect(selfTracingLoopErrors(config('telemetry: { tracing: { zipkin: "http://localhost:9411/" } }\nagent: { traces: { zipkin: { listen: "0.0.0.0:9411" } } }'))).toHaveLength(1);
    expect(selfTracingLoopErrors(config('telemetry: { tracing: { zipkin: "http://zipkin:9411" } }'))).toEqual([]);
    expect(selfTracingLoopErrors(config('telemetry: { tracing: { zipkin: "http://127.0.0.1:9412" } }'))).toEqual([]);
    expect(selfTracingLoopErrors(config('telemetry: { tracing: { zipkin: "http://127.0.0.1:9411" } }\nagent: { traces: { zipkin: { enabled: false } } }'))).toEqual([]);
  });
});

describe('self-tracing', () => {
  it('off: the no-op tracer, no header, nothing loaded', async () => {
    const off = await startSelfTracing({ zipkin: null, serviceName: 'plumb', sampleRatio: 1 }, { telemetry: new Telemetry(), log: silentLogger() });
    expect(off).toBe(TRACING_OFF);
    const span = off.tracer.startSpan('x', {}, ROOT_CONTEXT);
    expect(span.isRecording()).toBe(false);
    const headers: Record<string, string> = {};
    off.inject(trace.setSpan(ROOT_CONTEXT, span), headers);
    expect(headers).toEqual({});
    expect(trace.getSpanContext(off.extract({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }))).toBeUndefined();
  });

  it('on: the receiving side continues the trace named in traceparent', async () => {
    const zipkin = await startZipkinServer();
    cleanup.push(() => zipkin.stop());
    const a = await tracing(zipkin, 'a', 1);
    const b = await tracing(zipkin, 'b', 1);
    const parent = a.tracer.startSpan('send', {}, ROOT_CONTEXT);
    const headers: Record<string, string> = {};
    a.inject(trace.setSpan(ROOT_CONTEXT, parent), headers);
    expect(headers.traceparent).toBe(`00-${parent.spanContext().traceId}-${parent.spanContext().spanId}-01`);
    const child = b.tracer.startSpan('receive', {}, b.extract(headers));
    child.end();
    parent.end();
    await a.flush();
    await b.flush();
    await zipkin.waitForSpans(2);
    const receive = zipkin.spans.find((s) => s.name === 'receive')!;
    expect(receive.traceId).toBe(parent.spanContext().traceId);
    expect(receive.parentId).toBe(parent.spanContext().spanId);
    expect(receive.localEndpoint).toEqual({ serviceName: 'b' });
  });

  it('sampleRatio 0: nothing recorded, and the receiving side follows the decision', async () => {
    const zipkin = await startZipkinServer();
    cleanup.push(() => zipkin.stop());
    const a = await tracing(zipkin, 'a', 0);
    const b = await tracing(zipkin, 'b', 1);
    const parent = a.tracer.startSpan('send', {}, ROOT_CONTEXT);
    expect(parent.isRecording()).toBe(false);
    const headers: Record<string, string> = {};
    a.inject(trace.setSpan(ROOT_CONTEXT, parent), headers);
    expect(headers.traceparent).toMatch(/-00$/);
    const child = b.tracer.startSpan('receive', {}, b.extract(headers));
    expect(child.isRecording()).toBe(false);
    child.end();
    parent.end();
    await a.flush();
    await b.flush();
    expect(zipkin.requests).toBe(0);
  });
});
