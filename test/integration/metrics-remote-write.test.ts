/**
 * remote_write against real stores: VictoriaMetrics and Prometheus (--web.enable-remote-write-
 * receiver), both from Debian's packages on free ports with their own data directories. statsd
 * lines go into an agent, the agent forwards to a collector, the collector exports every second
 * to both stores; then every series /metrics shows at an export instant is queried back through
 * the PromQL API at that instant and compared, name, labels and value. VictoriaMetrics keeps 12
 * significant digits of a float; Prometheus keeps the float itself.
 *
 * Then VictoriaMetrics is killed (SIGKILL) while samples keep coming and started again: every
 * export made from the kill on arrives, none is refused by the queue, and the stream has no
 * hole. (What VictoriaMetrics acknowledged just before the kill may be lost on its side: it keeps
 * the last second or so in memory. That is the store's promise, not plumb's, so the check starts
 * at the first export after the kill.) What /metrics showed is recorded at each export, in the
 * same synchronous step as the export's own read of the store.
 * Last, series that expire from /metrics get Prometheus' staleness marker: an instant query no
 * longer finds them, though their last sample is well within the 5-minute lookback.
 */
import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, startCollector, stopAllInProcess, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { parseExposition, type Sample } from '../helpers/prometheus.ts';
import { PROMETHEUS, VICTORIA_METRICS, startPrometheusReceiver, startVictoriaMetrics, type PromQLStore } from '../helpers/tsdb.ts';
import { metricValue } from '../helpers/metrics.ts';
import { waitFor } from '../helpers/wait.ts';

const missing = VICTORIA_METRICS === null || PROMETHEUS === null;
const TITLE = `remote_write to VictoriaMetrics and Prometheus${missing ? ' (skipped: apt-get install victoria-metrics prometheus)' : ''}`;

let vm: PromQLStore;
let prom: PromQLStore;
let collector: CollectorUnderTest;
let agent: AgentUnderTest;
let udp: dgram.Socket;

function send(lines: string[]): Promise<void> {
  return new Promise((resolve, reject) => udp.send(lines.join('\n'), agent.statsdPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
}

function key(name: string, labels: Record<string, string>): string {
  const l = Object.entries(labels)
    .filter(([k]) => k !== '__name__')
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `${name}{${l.join(',')}}`;
}

/** /metrics (the store's part) as each export saw it, by the export's instant. */
const atExport = new Map<number, string>();

/** What the store exposed at `at`: as the export of that instant saw it, or rendered now for that instant. */
function exposedAt(at: number): Sample[] {
  return parseExposition(atExport.get(at) ?? collector.collector.store.render(at)).samples;
}

/** Keeps /metrics as each export sees it: render and export read the store in one synchronous step. */
function recordExports(): void {
  const sinks = collector.collector.metricSinks!;
  const exportAt = sinks.exportAt.bind(sinks);
  sinks.exportAt = (at: number) => {
    atExport.set(at, collector.collector.store.render(at));
    return exportAt(at);
  };
}

async function storedAt(store: PromQLStore, at: number): Promise<Map<string, number>> {
  await store.flush();
  const rows = await store.query('{__name__=~"rwt_.+"}', at / 1000);
  return new Map(rows.map((r) => [key(r.metric.__name__, r.metric), Number(r.value[1])]));
}

function delivered(sink: string): Promise<number> {
  return metricValue(collector.telemetry.registry, 'plumb_sink_events_total', { sink, outcome: 'delivered' });
}

/** Waits until both sinks' queues are empty after an export at or after `after`; returns that export's instant. */
async function settledExport(after: number): Promise<number> {
  return waitFor(
    () => {
      const sinks = collector.collector.metricSinks!;
      const at = sinks.lastExportAt;
      if (at < after) return false;
      return sinks.status().every((s) => s.queue.events === 0) && sinks.lastExportAt === at ? at : false;
    },
    { timeoutMs: 20_000, what: 'an export delivered to both stores' },
  );
}

describe.skipIf(missing)(TITLE, () => {
  beforeAll(async () => {
    [vm, prom] = await Promise.all([startVictoriaMetrics(), startPrometheusReceiver()]);
    collector = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  metrics:
    quantiles: [0.5, 0.9, 0.99]
    seriesTtl: 6s
    mappings:
      - match: "rwt.size.*"
        name: "rwt_size_$1"
        histogram: { buckets: [10, 100, 1000] }
    sinks:
      interval: 1s
      remoteWrite:
        - name: vm
          url: "${vm.writeUrl}"
          shards: 4
          maxSamplesPerSend: 7
          headers: { X-Scope-OrgID: "team-a" }
          retryInitial: 100ms
          retryMax: 1s
        - name: prom
          url: "${prom.writeUrl}"
          shards: 2
          retryInitial: 100ms
          retryMax: 1s
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
    await Promise.all([vm?.stop(), prom?.stop()]);
  });

  it('stores every series and value /metrics shows at an export instant, in both stores', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 40; i++) lines.push(`rwt.requests:1|c|#code:${i % 3 === 0 ? 500 : 200},method:GET`);
    lines.push('rwt.temperature:21.5|g|#room:lab', 'rwt.temperature:-3.25|g|#room:"cellar"', 'rwt.ratio:0.1|g');
    for (let i = 0; i < 30; i++) lines.push(`rwt.users:u${i % 11}|s`);
    for (let i = 1; i <= 200; i++) lines.push(`rwt.latency:${(i * 7) % 250}|ms|#route:/api`);
    for (let i = 1; i <= 50; i++) lines.push(`rwt.size.bytes:${i * 37}|h`);
    for (let i = 0; i < lines.length; i += 20) await send(lines.slice(i, i + 20));
    await waitFor(
      () => {
        const s = exposedAt(Date.now());
        const count = s.filter((x) => x.name === 'rwt_requests_total').reduce((a, x) => a + x.value, 0);
        const lat = s.find((x) => x.name === 'rwt_latency_count')?.value;
        const size = s.find((x) => x.name === 'rwt_size_bytes_count')?.value;
        return count === 40 && lat === 200 && size === 50;
      },
      { timeoutMs: 15_000, what: 'the statsd lines in /metrics' },
    );
    const at = await settledExport(Date.now() + 1);
    const expected = exposedAt(at).filter((s) => s.name.startsWith('rwt_'));
    // every kind is there: counters, gauges, a set, summary quantiles with _sum/_count, histogram buckets
    for (const name of ['rwt_requests_total', 'rwt_temperature', 'rwt_ratio', 'rwt_users', 'rwt_latency', 'rwt_latency_sum', 'rwt_latency_count', 'rwt_size_bytes_bucket', 'rwt_size_bytes_sum']) {
      expect(expected.some((s) => s.name === name), name).toBe(true);
    }
    expect(expected.length).toBe(2 + 2 + 1 + 1 + 3 + 2 + 4 + 2);
    for (const [store, exact] of [[prom, true], [vm, false]] as const) {
      const stored = await waitFor(async () => {
        const m = await storedAt(store, at);
        return m.size >= expected.length ? m : false;
      }, { timeoutMs: 10_000, what: `${store === vm ? 'VictoriaMetrics' : 'Prometheus'} to hold every series` });
      expect([...stored.keys()].sort()).toEqual(expected.map((s) => key(s.name, s.labels)).sort());
      for (const s of expected) {
        const got = stored.get(key(s.name, s.labels))!;
        if (exact) expect(got, key(s.name, s.labels)).toBe(s.value);
        else expect(Math.abs(got - s.value), key(s.name, s.labels)).toBeLessThanOrEqual(Math.abs(s.value) * 1e-11);
      }
    }
    expect(await metricValue(collector.telemetry.registry, 'plumb_sink_dead_letter_total', { sink: 'vm' })).toBe(0);
    expect(await metricValue(collector.telemetry.registry, 'plumb_remote_write_requests_total', { sink: 'vm', status: '2xx' })).toBeGreaterThan(0);
  }, 60_000);

  it('loses no export while VictoriaMetrics is killed and started again', async () => {
    let n = 0;
    let sending = Promise.resolve();
    const feed = setInterval(() => (sending = send([`rwt.stream:1|c`]).then(() => void n++)), 50);
    try {
      await waitFor(() => exposedAt(Date.now()).some((s) => s.name === 'rwt_stream_total'), { timeoutMs: 10_000, what: 'the stream in /metrics' });
      await settledExport(Date.now() + 1);
      await vm.kill();
      // exports made from here on can only reach the store after it is back; one made just
      // before may have been acknowledged by it and lost with its memory
      const killedAt = Date.now();
      const deliveredBefore = await delivered('vm');
      // a few exports queue up while the store is gone
      await waitFor(() => collector.collector.metricSinks!.lastExportAt >= killedAt + 3000 && collector.collector.metricSinks!.status().find((s) => s.name === 'vm')!.queue.events > 0, { timeoutMs: 20_000, what: 'exports queued during the outage' });
      expect(await delivered('vm')).toBe(deliveredBefore);
      expect(await metricValue(collector.telemetry.registry, 'plumb_sink_retries_total', { sink: 'vm', reason: 'unavailable' })).toBeGreaterThan(0);
      await vm.restart();
      clearInterval(feed);
      await sending;
      // every line sent is in /metrics before the export compared with the store
      await waitFor(() => exposedAt(Date.now()).find((s) => s.name === 'rwt_stream_total')?.value === n, { timeoutMs: 10_000, what: 'every stream line in /metrics' });
      const last = await settledExport(Date.now() + 1);
      expect(await metricValue(collector.telemetry.registry, 'plumb_sink_queue_refused_total', { sink: 'vm' })).toBe(0);
      // the store acknowledged the last export; it becomes searchable after its own flush
      const row = await waitFor(
        async () => {
          await vm.flush();
          const res = await fetch(`${vm.url}/api/v1/export?${new URLSearchParams({ 'match[]': 'rwt_stream_total' })}`);
          const r = JSON.parse((await res.text()).trim()) as { values: number[]; timestamps: number[] };
          return r.timestamps.includes(last) ? r : false;
        },
        { timeoutMs: 10_000, what: 'the last export searchable in VictoriaMetrics' },
      );
      // one sample per second from the first export after the kill on, no hole across the outage
      const from = Math.floor(killedAt / 1000) * 1000 + 1000;
      const inWindow = row.timestamps.filter((t) => t >= from && t <= last);
      const want = Array.from({ length: (last - from) / 1000 + 1 }, (_, i) => from + i * 1000);
      expect(want.length).toBeGreaterThanOrEqual(3);
      expect(inWindow).toEqual(want);
      const exposed = exposedAt(last).find((s) => s.name === 'rwt_stream_total')!.value;
      expect(row.values[row.timestamps.indexOf(last)]).toBe(exposed);
      expect(exposed).toBeGreaterThan(0);
      expect(n).toBeGreaterThan(0);
    } finally {
      clearInterval(feed);
    }
  }, 90_000);

  it('marks series that leave /metrics stale in Prometheus', async () => {
    await send(['rwt.ephemeral:7|g|#job:batch']);
    const seen = await waitFor(async () => {
      const r = await prom.query('rwt_ephemeral');
      return r.length === 1 ? r : false;
    }, { timeoutMs: 15_000, what: 'rwt_ephemeral in Prometheus' });
    expect(seen[0].metric).toEqual({ __name__: 'rwt_ephemeral', job: 'batch' });
    // seriesTtl is 6s: the series expires, the next export sends the staleness marker
    await waitFor(() => !exposedAt(Date.now()).some((s) => s.name === 'rwt_ephemeral'), { timeoutMs: 20_000, what: 'rwt_ephemeral to expire' });
    await waitFor(async () => (await prom.query('rwt_ephemeral')).length === 0, { timeoutMs: 10_000, what: 'rwt_ephemeral to go stale in Prometheus' });
    // the last real sample is still there: the series ended, it was not deleted
    const range = await prom.query('last_over_time(rwt_ephemeral[5m])');
    expect(range.map((r) => Number(r.value[1]))).toEqual([7]);
  }, 60_000);
});
