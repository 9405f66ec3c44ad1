/**
 * A full spool costs resolution, not data: while the collector is down and the agent's spool is
 * full, the intervals that do not fit are merged per series (counters add, gauges keep the last,
 * sketches merge, sets unite) and sent whole once there is room. Through the doors: statsd over
 * UDP into the agent, the collector's /metrics once it is up.
 */
import dgram from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import { startAgent, startCollector, stopAllInProcess } from '../helpers/processes.ts';
import { freeTcpPort } from '../helpers/ports.ts';
import { scrape, samplesOf, valueOf } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';

let socket: dgram.Socket | undefined;

afterAll(async () => {
  await new Promise<void>((resolve) => (socket ? socket.close(() => resolve()) : resolve()));
  await stopAllInProcess();
});

describe('agent with a full spool', () => {
  it('merges the intervals that do not fit and delivers every count once the collector is back', async () => {
    const port = await freeTcpPort();
    const url = `http://127.0.0.1:${port}`;
    const agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h }
  host: { enabled: false }
  forward:
    collectors: ["${url}"]
    retryInitial: 50ms
    retryMax: 200ms
    healthCheckInterval: 100ms
    spool: { maxBytes: 3kb, segmentBytes: 3kb }
`);
    socket = dgram.createSocket('udp4');
    const s = socket;
    await new Promise<void>((resolve) => s.connect(agent.statsdPort, '127.0.0.1', () => resolve()));
    const intervals = 40;
    let datagrams = 0;
    for (let n = 1; n <= intervals; n++) {
      const lines = [`bl.count:1|c`, `bl.gauge:${n}|g`, `bl.timer:${n}|ms`, `bl.users:u${n % 5}|s`, `bl.wide:1|c|#n:${n % 7}`];
      await new Promise<void>((resolve, reject) => s.send(Buffer.from(lines.join('\n')), (err) => (err ? reject(err) : resolve())));
      datagrams++;
      await waitFor(async () => valueOf(await scrape(agent.url), 'plumb_statsd_datagrams_total') === datagrams, { what: `datagram ${n}` });
      await agent.agent.flush();
    }
    const a = await scrape(agent.url);
    // the spool filled up and the rest was merged, nothing dropped
    expect(valueOf(a, 'plumb_forward_intervals_merged_total')).toBeGreaterThan(10);
    expect(samplesOf(a, 'plumb_forward_dropped_total').reduce((n, x) => n + x.value, 0)).toBe(0);
    expect(samplesOf(a, 'plumb_forward_merge_dropped_total').reduce((n, x) => n + x.value, 0)).toBe(0);
    expect(valueOf(a, 'plumb_forward_pending_series')).toBe(4 + 7); // four series and seven tagged counters

    const collector = await startCollector(`collector: { listen: "127.0.0.1:${port}" }`);
    // the spooled batches go first; the merged interval goes at the next flush with room
    await waitFor(async () => valueOf(await scrape(agent.url), 'plumb_forward_queue_batches') === 0, { what: 'the spool to drain', timeoutMs: 20_000 });
    await agent.agent.flush();
    const e = await waitFor(
      async () => {
        const e = await scrape(collector.url);
        expect(valueOf(e, 'bl_count_total')).toBe(intervals);
        return e;
      },
      { what: 'every count at the collector', timeoutMs: 20_000 },
    );
    expect(valueOf(e, 'bl_gauge')).toBe(intervals);
    expect(valueOf(e, 'bl_timer_count')).toBe(intervals);
    expect(valueOf(e, 'bl_timer_sum')).toBe((intervals * (intervals + 1)) / 2);
    expect(samplesOf(e, 'bl_wide_total').reduce((n, x) => n + x.value, 0)).toBe(intervals);
    expect(valueOf(await scrape(agent.url), 'plumb_forward_pending_series')).toBe(0);
  });
});
