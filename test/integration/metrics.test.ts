/**
 * The metrics path end to end, through the doors users touch: a hot-shots client sends
 * statsd/DogStatsD over UDP to a real agent, which forwards over HTTP to a real collector,
 * and the assertions read the collector's `/metrics` the way Prometheus would.
 *
 * Exactness without UDP flakiness: after each burst the test waits until the agent's own
 * `plumb_statsd_lines_total` has counted every line sent, then flushes the interval itself.
 * The agent also flushes on its own every 200 ms, so values are split across intervals at
 * arbitrary points; counters, gauges and timers must come out exact regardless.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { StatsD } from 'hot-shots';
import { startAgent, startCollector, stopAllInProcess, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { scrape, samplesOf, valueOf, type Exposition } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';

const COLLECTOR_YAML = `
collector:
  listen: "127.0.0.1:0"
  metrics:
    mappings:
      - match: "api.*.requests"
        name: api_requests
        labels: { endpoint: "$1" }
      - match: "queue.*.*.processed"
        name: "queue_$1_processed"
        labels: { worker: "$2", source: "statsd" }
      - match: "http.*.latency"
        name: http_latency
        labels: { route: "$1" }
        histogram: { buckets: [10, 50, 100] }
      - match: "debug.*"
        action: drop
`;

function agentYaml(collectorUrl: string): string {
  return `
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 200ms }
  host: { enabled: false }
  forward: { collectors: ["${collectorUrl}"], retryInitial: 50ms, retryMax: 500ms }
`;
}

let collector: CollectorUnderTest;
let agent: AgentUnderTest;
let client: StatsD;
const clientErrors: Error[] = [];
/** Lines sent so far that the agent should count as parsed. */
let linesSent = 0;

beforeAll(async () => {
  collector = await startCollector(COLLECTOR_YAML);
  agent = await startAgent(agentYaml(collector.url));
  client = new StatsD({
    host: '127.0.0.1',
    port: agent.statsdPort,
    protocol: 'udp',
    // Lines are packed into datagrams and sent when the test says so (client.flush()).
    maxBufferSize: 8192,
    bufferFlushInterval: 60_000,
    errorHandler: (err) => clientErrors.push(err),
  });
});

afterAll(async () => {
  await new Promise<void>((resolve) => (client ? client.close(() => resolve()) : resolve()));
  await stopAllInProcess();
});

/**
 * Runs `send` (which sends `lines` statsd lines through the client), waits until the agent has
 * counted all of them, and ends the agent's interval so they travel to the collector.
 */
async function deliver(lines: number, send: (c: StatsD) => void): Promise<void> {
  send(client);
  client.flush();
  linesSent += lines;
  await waitFor(
    async () => {
      const counted = valueOf(await scrape(agent.url), 'plumb_statsd_lines_total');
      expect(counted).toBe(linesSent);
      return true;
    },
    { what: `the agent to count ${linesSent} statsd lines` },
  );
  await agent.agent.flush();
}

/** Polls the collector's /metrics until `check` passes; returns the exposition it passed on. */
async function collectorShows(check: (e: Exposition) => void, what: string): Promise<Exposition> {
  return waitFor(
    async () => {
      const e = await scrape(collector.url);
      check(e);
      return e;
    },
    { what },
  );
}

describe('statsd over UDP → agent → HTTP → collector → /metrics', () => {
  it('sums counters exactly, across agent intervals, scaling by the sample rate', async () => {
    await deliver(3, (c) => {
      for (let i = 0; i < 3; i++) c.increment('page.views', 1, ['env:prod']);
    });
    await deliver(4, (c) => {
      for (let i = 0; i < 4; i++) c.increment('page.views', 1, ['env:prod']);
    });
    // hot-shots samples on the client with Math.random; pin it so every line is sent (with its
    // |@rate), which makes the expected total exact: each line stands for 1/rate events.
    const random = vi.spyOn(Math, 'random').mockReturnValue(0);
    try {
      await deliver(6, (c) => {
        for (let i = 0; i < 4; i++) c.increment('checkout.items', 5, 0.25, ['env:prod']);
        for (let i = 0; i < 2; i++) c.increment('checkout.items', 1, 0.5, ['env:prod']);
      });
    } finally {
      random.mockRestore();
    }
    const e = await collectorShows((e) => {
      expect(valueOf(e, 'page_views_total', { env: 'prod' })).toBe(7);
      expect(valueOf(e, 'checkout_items_total', { env: 'prod' })).toBe(4 * 5 * 4 + 2 * 1 * 2);
    }, 'the counters at the collector');
    expect(e.types.get('page_views_total')).toBe('counter');
  });

  it('keeps the last gauge value and applies signed deltas, also to a value from an earlier interval', async () => {
    await deliver(4, (c) => {
      c.gauge('queue.depth', 10, ['queue:mail']);
      c.gaugeDelta('queue.depth', 5, ['queue:mail']);
      c.gaugeDelta('queue.depth', -3, ['queue:mail']);
      c.gauge('cpu.load', 0.75);
    });
    await collectorShows((e) => {
      expect(valueOf(e, 'queue_depth', { queue: 'mail' })).toBe(12);
      expect(valueOf(e, 'cpu_load')).toBe(0.75);
    }, 'the gauges after set, +5, -3');
    // A delta in a later interval starts from the value the agent remembers.
    await deliver(2, (c) => {
      c.gaugeDelta('queue.depth', -2, ['queue:mail']);
      c.gaugeDelta('queue.depth', -2, ['queue:mail']);
    });
    const e = await collectorShows((e) => expect(valueOf(e, 'queue_depth', { queue: 'mail' })).toBe(8), 'the gauge after two more -2 deltas');
    expect(e.types.get('queue_depth')).toBe('gauge');
  });

  it('counts the distinct members of a set', async () => {
    // One datagram, so the set's members share one agent interval. The collector shows each
    // agent's latest interval for a set, and the interval after the last member reports an
    // empty set, so 37 is on show for about one flush interval: keep sending the same members
    // until a scrape sees them. Any interval with a datagram in it holds exactly these 37.
    await waitFor(
      async () => {
        await deliver(100, (c) => {
          for (let i = 0; i < 100; i++) c.set('users.unique', `user-${i % 37}`, ['app:shop']);
        });
        expect(valueOf(await scrape(collector.url), 'users_unique', { app: 'shop' })).toBe(37);
        return true;
      },
      { what: 'the set of 37 distinct users' },
    );
  });

  it('turns DogStatsD tags into labels: k:v pairs, bare tags, repeats and order ignored, keys sanitized', async () => {
    await deliver(3, (c) => {
      c.increment('tagged.requests', 1, ['env:prod', 'region:eu-west-1', 'canary', 'k8s.pod:web-1']);
      c.increment('tagged.requests', 1, ['k8s.pod:web-1', 'canary', 'region:eu-west-1', 'env:prod', 'env:prod']);
      // InfluxDB-style tags in the name land in the same label set.
      c.increment('influx.requests,env=dev,zone=b', 2);
    });
    await collectorShows((e) => {
      expect(samplesOf(e, 'tagged_requests_total')).toEqual([
        { name: 'tagged_requests_total', labels: { canary: 'true', env: 'prod', k8s_pod: 'web-1', region: 'eu-west-1' }, value: 2 },
      ]);
      expect(samplesOf(e, 'influx_requests_total')).toEqual([{ name: 'influx_requests_total', labels: { env: 'dev', zone: 'b' }, value: 2 }]);
    }, 'tags as labels');
  });

  it('applies mapping rules: glob captures into the name and labels, drop rules, histogram buckets', async () => {
    await deliver(13, (c) => {
      for (let i = 0; i < 3; i++) c.increment('api.checkout.requests');
      for (let i = 0; i < 2; i++) c.increment('api.search.requests', 1, ['env:prod']);
      c.increment('queue.emails.w7.processed', 4);
      c.increment('debug.noise');
      for (const v of [5, 20, 70, 200]) c.timing('http.home.latency', v);
      for (const v of [1, 2]) c.timing('http.about.latency', v);
    });
    const e = await collectorShows((e) => {
      expect(valueOf(e, 'api_requests_total', { endpoint: 'checkout' })).toBe(3);
      expect(valueOf(e, 'api_requests_total', { endpoint: 'search', env: 'prod' })).toBe(2);
      expect(valueOf(e, 'queue_emails_processed_total', { source: 'statsd', worker: 'w7' })).toBe(4);
      expect(valueOf(e, 'http_latency_count', { route: 'home' })).toBe(4);
    }, 'the mapped series');
    expect(samplesOf(e, 'debug_noise_total')).toEqual([]);
    expect(valueOf(e, 'plumb_metrics_refused_total', { reason: 'dropped_by_mapping' })).toBe(1);
    expect(e.types.get('http_latency')).toBe('histogram');
    const buckets = Object.fromEntries(samplesOf(e, 'http_latency_bucket', { route: 'home' }).map((s) => [s.labels.le, s.value]));
    expect(buckets).toEqual({ '10': 1, '50': 2, '100': 3, '+Inf': 4 });
    expect(valueOf(e, 'http_latency_sum', { route: 'home' })).toBe(295);
    expect(valueOf(e, 'http_latency_count', { route: 'about' })).toBe(2);
  });

  it('summarizes timers: exact count and sum, quantiles within the sketch accuracy', async () => {
    await deliver(100, (c) => {
      for (let v = 1; v <= 100; v++) c.timing('db.query', v, ['db:orders']);
    });
    const e = await collectorShows((e) => expect(valueOf(e, 'db_query_count', { db: 'orders' })).toBe(100), 'the timer summary');
    expect(e.types.get('db_query')).toBe('summary');
    expect(valueOf(e, 'db_query_sum', { db: 'orders' })).toBe(5050);
    // value at rank floor(q·(n−1)) of 1..100
    for (const [q, exact] of [['0.5', 50], ['0.9', 90], ['0.99', 99]] as const) {
      const got = valueOf(e, 'db_query', { db: 'orders', quantile: q }) as number;
      expect(Math.abs(got - exact) / exact, `p${q}: ${got} vs ${exact}`).toBeLessThanOrEqual(0.01);
    }
  });

  it('exposes service checks as a status gauge and keeps events for the events API', async () => {
    client.check('db.reachable', client.CHECKS.CRITICAL, { hostname: 'db-1', message: 'connection refused' }, ['env:prod']);
    client.event('deploy finished', 'web 1.2.3 is live', { alert_type: 'success', aggregation_key: 'deploy-web' }, ['env:prod']);
    client.flush();
    // events and service checks are counted apart from metric lines
    await waitFor(
      async () => {
        const a = await scrape(agent.url);
        expect(valueOf(a, 'plumb_statsd_events_total', { kind: 'event' })).toBe(1);
        expect(valueOf(a, 'plumb_statsd_events_total', { kind: 'service_check' })).toBe(1);
        return true;
      },
      { what: 'the agent to count the event and the service check' },
    );
    await agent.agent.flush();
    await collectorShows(
      (e) => expect(valueOf(e, 'service_check_status', { check: 'db.reachable', env: 'prod', host: 'db-1' })).toBe(2),
      'the service check status',
    );
    const res = await fetch(`${collector.url}/api/v1/events`);
    const { events } = (await res.json()) as { events: Record<string, unknown>[] };
    expect(events).toContainEqual(
      expect.objectContaining({ title: 'deploy finished', text: 'web 1.2.3 is live', alertType: 'success', aggregationKey: 'deploy-web', tags: ['env:prod'] }),
    );
  });

  it('delivered everything it accepted: nothing queued, dropped or retried, and the client saw no error', async () => {
    const a = await scrape(agent.url);
    expect(valueOf(a, 'plumb_forward_queue_batches')).toBe(0);
    expect(samplesOf(a, 'plumb_forward_dropped_total').filter((s) => s.value > 0)).toEqual([]);
    expect(samplesOf(a, 'plumb_statsd_parse_errors_total').filter((s) => s.value > 0)).toEqual([]);
    expect(valueOf(a, 'plumb_statsd_socket_drops_total')).toBe(0);
    expect(clientErrors).toEqual([]);
  });
});
