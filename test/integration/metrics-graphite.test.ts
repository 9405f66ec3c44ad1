/**
 * Graphite against a real carbon-cache (Debian graphite-carbon) on free ports with its own
 * storage dir. statsd lines go into an agent, the agent forwards to a collector, the collector
 * exports every second to carbon twice: statsd-style paths and Graphite 1.1 tags. The whisper
 * files are read back with whisper-fetch (python3-whisper) and every sample /metrics showed at an
 * export instant is compared with the point stored at that second. Then carbon is killed and
 * started again: the sink reconnects with backoff and what is exported afterwards arrives.
 */
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, startCollector, stopAllInProcess, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { parseExposition, type Sample } from '../helpers/prometheus.ts';
import { CARBON_CACHE, WHISPER_FETCH, startCarbon, type CarbonUnderTest } from '../helpers/tsdb.ts';
import { metricValue } from '../helpers/metrics.ts';
import { waitFor } from '../helpers/wait.ts';
import { graphitePath } from '../../collector/metrics/sinks/graphite-naming.ts';
import type { GraphiteNaming } from '../../collector/metrics/sinks/config.ts';
import type { MetricSample, SampleType } from '../../collector/metrics/sinks/sample.ts';

const missing = CARBON_CACHE === null || WHISPER_FETCH === null;
const TITLE = `Graphite sink into carbon-cache${missing ? ' (skipped: apt-get install graphite-carbon python3-whisper)' : ''}`;

const STATSD: GraphiteNaming = { scheme: 'statsd', prefix: 'stats', counters: 'counters', gauges: 'gauges', timers: 'timers' };
const TAGS: GraphiteNaming = { scheme: 'tags', prefix: '', counters: 'counters', gauges: 'gauges', timers: 'timers' };

let carbon: CarbonUnderTest;
let collector: CollectorUnderTest;
let agent: AgentUnderTest;
let udp: dgram.Socket;

function send(lines: string[]): Promise<void> {
  return new Promise((resolve, reject) => udp.send(lines.join('\n'), agent.statsdPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

/** /metrics (the store's part) as each export saw it, by the export's instant. */
const atExport = new Map<number, string>();

/** Keeps /metrics as each export sees it: render and export read the store in one synchronous step. */
function recordExports(): void {
  const sinks = collector.collector.metricSinks!;
  const exportAt = sinks.exportAt.bind(sinks);
  sinks.exportAt = (at: number) => {
    atExport.set(at, collector.collector.store.render(at));
    return exportAt(at);
  };
}

function exposedAt(at: number): { sample: Sample; type: SampleType }[] {
  const e = parseExposition(atExport.get(at) ?? collector.collector.store.render(at));
  const typeOf = (name: string): SampleType => (e.types.get(name) ?? e.types.get(name.replace(/_(sum|count|bucket)$/, '')) ?? 'gauge') as SampleType;
  return e.samples.filter((s) => s.name.startsWith('gwt_')).map((sample) => ({ sample, type: typeOf(sample.name) }));
}

function asSample(s: Sample, type: SampleType): MetricSample {
  const labels = Object.entries(s.labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .flat();
  return { line: Buffer.alloc(0), name: s.name, labels, type, value: s.value, stale: false, timestamp: 0 };
}

async function settledExport(after: number): Promise<number> {
  return waitFor(
    () => {
      const sinks = collector.collector.metricSinks!;
      const at = sinks.lastExportAt;
      return at >= after && sinks.status().every((s) => s.queue.events === 0) ? at : false;
    },
    { timeoutMs: 20_000, what: 'an export written to carbon' },
  );
}

describe.skipIf(missing)(TITLE, () => {
  beforeAll(async () => {
    carbon = await startCarbon();
    collector = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  metrics:
    quantiles: [0.5, 0.99, 0.999]
    mappings:
      - match: "gwt.size.*"
        name: "gwt_size_$1"
        histogram: { buckets: [10, 100.5] }
    sinks:
      interval: 1s
      graphite:
        - { name: graphite, host: "127.0.0.1", port: ${carbon.port}, retryInitial: 100ms, retryMax: 1s }
        - { name: graphite_tags, host: "127.0.0.1", port: ${carbon.port}, naming: { scheme: tags, prefix: "" }, retryInitial: 100ms, retryMax: 1s }
`);
    agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 200ms }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
`);
    udp = dgram.createSocket('udp4');
    recordExports();
  }, 60_000);

  afterAll(async () => {
    udp?.close();
    await stopAllInProcess();
    await carbon?.stop();
  });

  it('stores every sample /metrics shows at an export instant, under statsd paths and under tags', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 30; i++) lines.push(`gwt.requests:1|c|#code:${i % 3 === 0 ? 500 : 200},method:GET`);
    lines.push('gwt.temperature:21.5|g|#room:lab', 'gwt.ratio:0.125|g');
    for (let i = 0; i < 12; i++) lines.push(`gwt.users:u${i % 5}|s`);
    for (let i = 1; i <= 100; i++) lines.push(`gwt.latency:${(i * 7) % 250}|ms|#route:api`);
    for (let i = 1; i <= 40; i++) lines.push(`gwt.size.bytes:${i * 3}|h`);
    for (let i = 0; i < lines.length; i += 20) await send(lines.slice(i, i + 20));
    await waitFor(
      () => {
        const s = exposedAt(Date.now()).map((x) => x.sample);
        return s.filter((x) => x.name === 'gwt_requests_total').reduce((a, x) => a + x.value, 0) === 30 && s.find((x) => x.name === 'gwt_size_bytes_count')?.value === 40;
      },
      { timeoutMs: 15_000, what: 'the statsd lines in /metrics' },
    );
    const at = await settledExport(Date.now() + 1);
    const expected = exposedAt(at);
    expect(expected.length).toBe(2 + 1 + 1 + 1 + 5 + 5);
    const second = Math.floor(at / 1000);
    // the layout users see, spelled out
    const paths = expected.map((e) => graphitePath(asSample(e.sample, e.type), STATSD));
    for (const p of ['stats.counters.gwt_requests.200.GET.count', 'stats.gauges.gwt_temperature.lab', 'stats.gauges.gwt_users', 'stats.timers.gwt_latency.api.p99_9', 'stats.timers.gwt_latency.api.sum', 'stats.timers.gwt_size_bytes.bucket.le_100_5', 'stats.timers.gwt_size_bytes.bucket.le_inf']) {
      expect(paths).toContain(p);
    }
    for (const naming of [STATSD, TAGS]) {
      for (const e of expected) {
        const path = graphitePath(asSample(e.sample, e.type), naming);
        const points = await waitFor(async () => {
          const p = await carbon.fetch(path, second - 1, second + 1);
          return p.some(([t]) => t === second) ? p : false;
        }, { timeoutMs: 15_000, what: `${path} at ${second} in whisper` });
        expect(points.find(([t]) => t === second)![1], path).toBe(e.sample.value);
      }
    }
    expect(carbon.whisperFile('gwt_requests_total;code=200;method=GET')).toMatch(/_tagged/);
    expect(await metricValue(collector.telemetry.registry, 'plumb_sink_events_total', { sink: 'graphite', outcome: 'delivered' })).toBeGreaterThan(0);
  }, 60_000);

  it('reconnects with backoff after carbon is killed, and what is exported afterwards arrives', async () => {
    await carbon.kill();
    const failedBefore = await metricValue(collector.telemetry.registry, 'plumb_graphite_connections_total', { sink: 'graphite', outcome: 'failed' });
    await send(['gwt.after:5|g']);
    await waitFor(async () => (await metricValue(collector.telemetry.registry, 'plumb_graphite_connections_total', { sink: 'graphite', outcome: 'failed' })) > failedBefore, {
      timeoutMs: 15_000,
      what: 'a failed reconnect',
    });
    await carbon.restart();
    await waitFor(() => exposedAt(Date.now()).some((e) => e.sample.name === 'gwt_after'), { timeoutMs: 10_000, what: 'gwt_after in /metrics' });
    const at = await settledExport(Date.now() + 1);
    const second = Math.floor(at / 1000);
    const points = await waitFor(async () => {
      const p = await carbon.fetch('stats.gauges.gwt_after', second - 1, second + 1);
      return p.some(([t]) => t === second) ? p : false;
    }, { timeoutMs: 15_000, what: 'stats.gauges.gwt_after in whisper' });
    expect(points.find(([t]) => t === second)![1]).toBe(5);
    expect(await metricValue(collector.telemetry.registry, 'plumb_sink_queue_refused_total', { sink: 'graphite' })).toBe(0);
  }, 60_000);
});
