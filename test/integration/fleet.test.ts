/**
 * Three `plumb collector` processes as one fleet, real `plumb agent` processes in front:
 * every series is merged by exactly one collector, from every agent's partial aggregate, once.
 *
 * A reference pair (one agent, one collector alone, in this process) receives every datagram the
 * fleet's agents receive, so "the single-collector result" is measured, not assumed. Quantiles must equal it
 * (sketches merge bin by bin: the merge of four agents' sketches is the sketch of one agent that
 * saw everything, so equal within float rounding, well inside the sketch's 1% error), counters
 * exactly.
 *
 * Two ways in: four agent processes that list the three collectors (they route by the same
 * rendezvous hashing, so nothing is forwarded), and two agents (in this process) that know one
 * URL, a TCP round-robin proxy standing in for a Kubernetes Service (each batch lands on any collector, which forwards what it does not
 * own). Each prints bytes sent between collectors per agent interval and the share of series
 * forwarded.
 */
import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentRole, collectorRole, faultRun, freeTcpPort, freeUdpPort, waitFor, waitReady, sumOf, type FaultRun, type Role } from '../faults/harness.ts';
import { freeTcpPorts } from '../helpers/ports.ts';
import { startAgent, startCollector, stopAllInProcess } from '../helpers/processes.ts';
import { scrape, samplesOf, type Exposition } from '../helpers/prometheus.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';

let run: FaultRun;
afterEach(async () => {
  await stopAllInProcess();
  await run?.cleanup();
});

const SERIES = 24;
const QUANTILES = ['0.5', '0.9', '0.99'];

/** Lines packed into datagrams of at most 1400 bytes, sent to every port, paced. */
async function sendLines(ports: number[], lines: string[]): Promise<void> {
  const socket = dgram.createSocket('udp4');
  try {
    let packet = '';
    const flush = async (): Promise<void> => {
      if (packet === '') return;
      const p = packet;
      packet = '';
      for (const port of ports) await new Promise<void>((resolve, reject) => socket.send(p, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
      await sleep(1);
    };
    for (const l of lines) {
      if (packet.length + l.length + 1 > 1400) await flush();
      packet += packet === '' ? l : `\n${l}`;
    }
    await flush();
  } finally {
    socket.close();
  }
}

/** The lines agent number `a` sends: every series, so each is merged from every agent. */
function agentLines(prefix: string, a: number): string[] {
  const lines: string[] = [];
  for (let s = 0; s < SERIES; s++) {
    for (let k = 0; k < 25; k++) lines.push(`${prefix}.latency.s${s}:${((k * 37 + s * 13 + a * 7) % 200) + 1 + s}|ms|#agent_group:fleet`);
    lines.push(`${prefix}.requests.s${s}:${a + 1}|c|#agent_group:fleet`);
  }
  return lines;
}

/** Starts roles side by side, with room for a loaded machine. */
async function startAll<T extends Role>(roles: T[]): Promise<T[]> {
  await Promise.all(roles.map((r) => r.start(90_000)));
  return roles;
}

async function fleetOf(n: number): Promise<Role[]> {
  const ports = await freeTcpPorts(n);
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  const roles: Role[] = [];
  for (let i = 0; i < n; i++) {
    roles.push(await collectorRole(run, { name: `collector-${'abc'[i]}`, port: ports[i], start: false, config: { fleet: { members: urls, interval: '500ms', token: 'fleet-secret', handoffTimeout: '5s' } } }));
  }
  return roles;
}

type StatsdRole = Role & { statsdPort: number };

async function statsdAgent(name: string, collectors: string[]): Promise<StatsdRole> {
  const statsdPort = await freeUdpPort();
  const role = await agentRole(run, { name, collectors, statsdPort, port: await freeTcpPort(), start: false });
  return Object.assign(role, { statsdPort });
}

/** The reference: one agent and one collector alone, in this process. */
interface Reference {
  agentUrl: string;
  statsdPort: number;
  collectorUrl: string;
}

async function linesCounted(url: string): Promise<number> {
  return sumOf(await scrape(url), 'plumb_statsd_lines_total');
}

const prom = (name: string): string => name.replaceAll('.', '_');

interface FleetNumbers {
  forwardedSeries: number;
  keptSeries: number;
  receivedSeries: number;
  forwardedBytes: number;
}

async function fleetTotals(collectors: Role[]): Promise<FleetNumbers> {
  const t: FleetNumbers = { forwardedSeries: 0, keptSeries: 0, receivedSeries: 0, forwardedBytes: 0 };
  for (const c of collectors) {
    const e = await scrape(c.url);
    t.forwardedSeries += sumOf(e, 'plumb_fleet_forwarded_series_total');
    t.keptSeries += sumOf(e, 'plumb_fleet_kept_series_total');
    t.receivedSeries += sumOf(e, 'plumb_fleet_received_series_total');
    t.forwardedBytes += sumOf(e, 'plumb_fleet_forwarded_bytes_total');
  }
  return t;
}

/**
 * Sends each agent its lines (and the reference agent all of them), waits until every line is
 * counted and every counter total has arrived, then checks the fleet against the reference.
 */
/** What a scenario needs of an agent: its HTTP URL (its /metrics) and its statsd port. */
type Sender = Pick<StatsdRole, 'name' | 'url' | 'statsdPort'>;

async function scenario(name: string, prefix: string, agents: Sender[], ref: Reference, collectors: Role[]): Promise<void> {
  const before = await fleetTotals(collectors);
  const batchesBefore = await Promise.all(agents.map(async (a) => sumOf(await scrape(a.url), 'plumb_forward_batches_total', { kind: 'metrics' })));
  const refBefore = await linesCounted(ref.agentUrl);
  const perAgent = agents.map((_, a) => agentLines(prefix, a));
  const counted = await Promise.all(agents.map((a) => linesCounted(a.url)));
  for (let a = 0; a < agents.length; a++) await sendLines([agents[a].statsdPort, ref.statsdPort], perAgent[a]);
  const total = perAgent.reduce((n, l) => n + l.length, 0);
  await waitFor(async () => (await linesCounted(ref.agentUrl)) === refBefore + total, { what: 'the reference agent to count every line', timeoutMs: 20_000 });
  for (let a = 0; a < agents.length; a++) await waitFor(async () => (await linesCounted(agents[a].url)) === counted[a] + perAgent[a].length, { what: `${agents[a].name} to count its lines` });

  // counters: agent a adds a+1 to every series
  const expected = agents.reduce((n, _, a) => n + a + 1, 0);
  const names = Array.from({ length: SERIES }, (_, s) => `${prom(prefix)}_requests_s${s}_total`);
  const scrapeAll = async (): Promise<Exposition[]> => Promise.all(collectors.map((c) => scrape(c.url)));
  await waitFor(async () => {
    const es = await scrapeAll();
    return names.every((n) => es.reduce((sum, e) => sum + sumOf(e, n), 0) === expected);
  }, { what: 'every counter total in the fleet', timeoutMs: 30_000 });
  const refE = await waitFor(async () => {
    const e = await scrape(ref.collectorUrl);
    return names.every((n) => sumOf(e, n) === expected) ? e : null;
  }, { what: 'every counter total at the reference collector', timeoutMs: 30_000 });

  const es = await scrapeAll();
  const holders = new Map<number, number>();
  for (let s = 0; s < SERIES; s++) {
    const metric = `${prom(prefix)}_latency_s${s}`;
    // exactly one collector holds the series: its owner
    const having = es.map((e, i) => (samplesOf(e, `${metric}_count`).length > 0 ? i : -1)).filter((i) => i >= 0);
    expect(having, `${metric} held by exactly one collector`).toHaveLength(1);
    holders.set(having[0], (holders.get(having[0]) ?? 0) + 1);
    const e = es[having[0]];
    expect(sumOf(e, `${metric}_count`)).toBe(sumOf(refE, `${metric}_count`));
    expect(sumOf(e, `${metric}_count`)).toBe(25 * agents.length);
    expect(sumOf(e, `${metric}_sum`)).toBeCloseTo(sumOf(refE, `${metric}_sum`), 6);
    for (const q of QUANTILES) {
      const got = samplesOf(e, metric, { quantile: q })[0]?.value;
      const want = samplesOf(refE, metric, { quantile: q })[0]?.value;
      expect(want).toBeGreaterThan(0);
      expect(Math.abs((got as number) - want) / want, `${metric} q${q}: fleet ${got}, single collector ${want}`).toBeLessThanOrEqual(1e-9);
    }
    // counters: exactly one collector has each, with the exact total
    const counter = `${prom(prefix)}_requests_s${s}_total`;
    expect(es.filter((x) => samplesOf(x, counter).length > 0)).toHaveLength(1);
  }
  // series are spread over all three collectors
  expect(holders.size).toBe(collectors.length);

  const after = await fleetTotals(collectors);
  const batches = (await Promise.all(agents.map(async (a) => sumOf(await scrape(a.url), 'plumb_forward_batches_total', { kind: 'metrics' })))).reduce((n, b, i) => n + b - batchesBefore[i], 0);
  const forwarded = after.forwardedSeries - before.forwardedSeries;
  const kept = after.keptSeries - before.keptSeries;
  const bytes = after.forwardedBytes - before.forwardedBytes;
  expect(after.receivedSeries - before.receivedSeries).toBe(forwarded);
  console.log(
    `fleet ${name}: agents=${agents.length} collectors=${collectors.length} agent_batches=${batches} series_kept=${kept} series_forwarded=${forwarded} ` +
      `forwarded_share=${(forwarded / Math.max(1, kept + forwarded)).toFixed(3)} bytes_between_collectors=${bytes} bytes_per_agent_batch=${(bytes / Math.max(1, batches)).toFixed(0)}`,
  );
  // agents that route reach the owner (0 here unless a collector looked down to an agent for a
  // moment and it routed around it); behind one URL about two parts in three go one hop further
  if (name === 'agents-route') expect(forwarded).toBeLessThanOrEqual(kept * 0.1);
  else expect(forwarded).toBeGreaterThan(kept);
}

describe('a fleet of three collectors', () => {
  it('four agents listing the collectors, then two behind one load-balanced URL: quantiles equal one collector\'s, counters exact', async () => {
    run = faultRun('fleet-quantiles');
    const collectors = await fleetOf(3);
    const started = startAll(collectors);
    const refCollector = await startCollector('collector: { listen: "127.0.0.1:0" }');
    const refAgent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 200ms }
  host: { enabled: false }
  forward: { collectors: ["${refCollector.url}"], retryInitial: 50ms, retryMax: 1s }
`);
    const ref: Reference = { agentUrl: refAgent.url, statsdPort: refAgent.statsdPort, collectorUrl: refCollector.url };
    const urls = collectors.map((c) => c.url);
    let proxy: TcpProxy | null = await startTcpProxy(urls);
    run.defer(() => proxy?.close());
    const agents: StatsdRole[] = [];
    for (let i = 0; i < 4; i++) agents.push(await statsdAgent(`agent-${i}`, urls));
    // collectors first: an agent that found one down at its start would route around it for a health-check interval
    await started;
    await startAll(agents);
    for (const a of agents) await waitReady(a, 60_000);
    await waitFor(async () => (await Promise.all(collectors.map(async (c) => ((await (await fetch(`${c.url}/api/v1/fleet`)).json()) as { members: string[] }).members.length))).every((n) => n === 3), {
      what: 'every collector to list the fleet',
    });
    await scenario('agents-route', 'direct', agents.slice(0, 4), ref, collectors);
    // two more agents that know one URL: the proxy in front of the three (in this process, to save two process starts)
    const balanced: Sender[] = [];
    for (let i = 0; i < 2; i++) {
      const a = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 200ms }
  host: { enabled: false }
  forward: { collectors: ["${proxy.url}"], retryInitial: 50ms, retryMax: 1s }
`);
      balanced.push({ name: `lb-agent-${i}`, url: a.url, statsdPort: a.statsdPort });
    }
    await scenario('one-url', 'balanced', balanced, ref, collectors);
    // the load balancer spread the agents' connections over more than one collector
    expect(proxy.connections.size).toBeGreaterThan(1);
    await proxy.close();
    proxy = null;

    // GET /api/v1/fleet: members, self, what each owns
    const status = (await (await fetch(`${collectors[0].url}/api/v1/fleet`)).json()) as { self: string; members: string[]; series: { held: number; owned: number } };
    expect(status.self).toBe(urls[0]);
    expect(status.members).toEqual([...urls].sort());
    expect(status.series.owned).toBeGreaterThan(0);
    // the internal door refuses a caller without the fleet's secret
    const denied = await fetch(`${collectors[0].url}/internal/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(denied.status).toBe(401);
  }, 180_000);
});
