/**
 * Quantiles across a fleet: 100 000 samples of skewed distributions are split over four agents
 * (each gets a quarter through its own UDP socket), all four forward to one collector, and the
 * collector's summary must match the exact quantiles of the whole sample within the sketch's
 * 1% relative accuracy — which only holds if the four agents' sketches are merged, not
 * replaced or averaged. `_count` and `_sum` must be exact (the samples are integers, so the
 * sum does not depend on the order of additions). A smaller signed series checks that negative
 * values and zeros survive the merge as well.
 *
 * The exact quantile uses DDSketch's rank definition: the value at rank floor(q·(n−1)) of the
 * sorted samples.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StatsD } from 'hot-shots';
import { startAgent, startCollector, stopAllInProcess, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { scrape, valueOf } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';
import { seededRandom } from '../helpers/random.ts';

const AGENTS = 4;
const SAMPLES = 100_000;
const SIGNED_SAMPLES = 20_000;
const QUANTILES = [0.5, 0.9, 0.95, 0.99, 0.999];
const SIGNED_QUANTILES = [0.01, 0.1, 0.3, 0.5, 0.9, 0.99];
/** Lines sent to an agent before waiting for it to count them: well inside a small kernel receive buffer. */
const CHUNK = 1500;

/** Log-normal latencies in microseconds (median ~2 ms, long right tail), as integers ≥ 1. */
function logNormalSamples(n: number, seed: number): number[] {
  const rand = seededRandom(seed);
  const out: number[] = [];
  while (out.length < n) {
    // Box–Muller; 1 - rand() keeps the logarithm finite
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const theta = 2 * Math.PI * rand();
    for (const z of [r * Math.cos(theta), r * Math.sin(theta)]) {
      if (out.length < n) out.push(Math.max(1, Math.round(Math.exp(Math.log(2000) + 1.3 * z))));
    }
  }
  return out;
}

/** Pareto (α = 1.2, minimum 100) response sizes in bytes, as integers: a heavy tail. */
function paretoSamples(n: number, seed: number): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => Math.floor(100 / Math.pow(1 - rand(), 1 / 1.2)));
}

/** Signed readings (a temperature change, say) around a negative centre, as integers: exercises merging negative and zero values. */
function signedSamples(n: number, seed: number): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length: n }, () => Math.round((rand() - 0.6) * 1000));
}

function exactQuantile(sorted: number[], q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))];
}

let collector: CollectorUnderTest;
const agents: AgentUnderTest[] = [];
const clients: StatsD[] = [];
const clientErrors: Error[] = [];

beforeAll(async () => {
  collector = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  metrics:
    quantiles: [${[...new Set([...SIGNED_QUANTILES, ...QUANTILES])].sort((a, b) => a - b).join(', ')}]
`);
  for (let i = 0; i < AGENTS; i++) {
    const agent = await startAgent(`
agent:
  id: "edge-${i}"
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 200ms }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
`);
    agents.push(agent);
    clients.push(
      new StatsD({
        host: '127.0.0.1',
        port: agent.statsdPort,
        protocol: 'udp',
        maxBufferSize: 1400,
        bufferFlushInterval: 60_000,
        errorHandler: (err) => clientErrors.push(err),
      }),
    );
  }
});

afterAll(async () => {
  await Promise.all(clients.map((c) => new Promise<void>((resolve) => c.close(() => resolve()))));
  await stopAllInProcess();
});

/**
 * Sends `lines` (one call each) to agent `i` in chunks, waiting after each chunk until the agent's
 * plumb_statsd_lines_total has counted it: the pace never outruns the socket, and a lost
 * datagram fails the test here, by name, instead of skewing the quantiles.
 */
async function sendPaced(i: number, lines: ((c: StatsD) => void)[]): Promise<void> {
  const agent = agents[i];
  const base = valueOf(await scrape(agent.url), 'plumb_statsd_lines_total') ?? 0;
  for (let start = 0; start < lines.length; start += CHUNK) {
    const end = Math.min(lines.length, start + CHUNK);
    for (let k = start; k < end; k++) lines[k](clients[i]);
    clients[i].flush();
    await waitFor(
      async () => {
        expect(valueOf(await scrape(agent.url), 'plumb_statsd_lines_total')).toBe(base + end);
        return true;
      },
      { what: `agent ${i} to count ${base + end} lines` },
    );
  }
}

describe('quantiles merged from four agents into one collector', () => {
  const latency = logNormalSamples(SAMPLES, 20240601);
  const sizes = paretoSamples(SAMPLES, 777);
  const signed = signedSamples(SIGNED_SAMPLES, 99);

  it('matches exact quantiles within 1% and counts and sums exactly', async () => {
    const perAgent = SAMPLES / AGENTS;
    await Promise.all(
      agents.map((_, i) => {
        const lines: ((c: StatsD) => void)[] = [];
        for (let k = i * perAgent; k < (i + 1) * perAgent; k++) {
          const v = latency[k];
          const s = sizes[k];
          lines.push((c) => c.distribution('rpc.latency_us', v, ['service:checkout']));
          lines.push((c) => c.histogram('rpc.response_bytes', s, ['service:checkout']));
        }
        for (let k = i; k < SIGNED_SAMPLES; k += AGENTS) {
          const t = signed[k];
          lines.push((c) => c.distribution('room.temp_change', t));
        }
        return sendPaced(i, lines);
      }),
    );
    await Promise.all(agents.map((a) => a.agent.flush()));

    const e = await waitFor(
      async () => {
        const e = await scrape(collector.url);
        expect(valueOf(e, 'rpc_latency_us_count', { service: 'checkout' })).toBe(SAMPLES);
        expect(valueOf(e, 'rpc_response_bytes_count', { service: 'checkout' })).toBe(SAMPLES);
        expect(valueOf(e, 'room_temp_change_count')).toBe(SIGNED_SAMPLES);
        return e;
      },
      { what: 'the collector to hold every sample from the four agents' },
    );
    // every agent delivered batches of its own
    expect(valueOf(e, 'plumb_ingest_batches_total', { kind: 'metrics', outcome: 'duplicate' }) ?? 0).toBe(0);

    const series = [
      ['rpc_latency_us', { service: 'checkout' }, latency, QUANTILES],
      ['rpc_response_bytes', { service: 'checkout' }, sizes, QUANTILES],
      ['room_temp_change', {}, signed, SIGNED_QUANTILES],
    ] as const;
    for (const [name, labels, samples, quantiles] of series) {
      expect(valueOf(e, `${name}_sum`, labels), `${name}_sum`).toBe(samples.reduce((a, b) => a + b, 0));
      const sorted = [...samples].sort((a, b) => a - b);
      const report: string[] = [];
      for (const q of quantiles) {
        const exact = exactQuantile(sorted, q);
        const got = valueOf(e, name, { ...labels, quantile: String(q) });
        expect(got, `${name} quantile ${q} is exposed`).toBeTypeOf('number');
        const relErr = exact === 0 ? Math.abs(got as number) : Math.abs((got as number) - exact) / Math.abs(exact);
        report.push(`p${q * 100}: exact ${exact}, exposed ${got}, error ${(relErr * 100).toFixed(3)}%`);
        expect(relErr, `${name} ${report.at(-1)}`).toBeLessThanOrEqual(0.01);
      }
    }
    expect(clientErrors).toEqual([]);
  });
});
