import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import net from 'node:net';
import { Aggregator } from '../../../../agent/statsd/aggregator.ts';
import { StatsdServer } from '../../../../agent/statsd/server.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { parseListen } from '../../../../shared/address.ts';
import { waitFor } from '../../../helpers/wait.ts';
import { metricValue } from '../../../helpers/metrics.ts';

const aggregatorOptions = {
  maxSeries: 1000,
  maxSetMembers: 100,
  relativeAccuracy: 0.01,
  tagStyles: { influx: true, librato: true, signalfx: true },
  maxEvents: 10,
  gaugeTtlMs: 60_000,
  extraTags: [],
};

const servers: StatsdServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

async function start(listen: string, tcp: string | null = null, maxLineBytes = 1024, limits: { tcpMaxConnections?: number; tcpIdleTimeoutMs?: number } = {}) {
  const agg = new Aggregator(aggregatorOptions);
  const telemetry = new Telemetry();
  const server = new StatsdServer({ listen, tcp, receiveBufferBytes: 1 << 20, maxLineBytes, tcpMaxConnections: 512, tcpIdleTimeoutMs: 120_000, ...limits }, agg, { telemetry, log: silentLogger() });
  await server.start();
  servers.push(server);
  return { agg, server, telemetry };
}

function connect(address: string): Promise<net.Socket> {
  const { host, port } = parseListen(address);
  return new Promise((resolve, reject) => {
    const conn = net.connect(port, host, () => resolve(conn));
    conn.once('error', reject);
  });
}

/** A counter the server syncs when scraped. */
async function counted(telemetry: Telemetry, name: string, labels: Record<string, string> = {}): Promise<number> {
  await telemetry.metrics();
  return metricValue(telemetry.registry, name, labels);
}

function closed(conn: net.Socket): Promise<void> {
  return new Promise((resolve) => (conn.destroyed ? resolve() : conn.once('close', () => resolve())));
}

function sendUdp(address: string, text: string): Promise<void> {
  const { host, port, family } = parseListen(address);
  const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  return new Promise((resolve, reject) => socket.send(text, port, host, (err) => (socket.close(), err ? reject(err) : resolve())));
}

describe('statsd listener', () => {
  it('receives datagrams over IPv4 and IPv6', async () => {
    const v4 = await start('127.0.0.1:0');
    await sendUdp(v4.server.udpAddress, 'a:1|c\na:2|c');
    await waitFor(() => v4.agg.stats.lines === 2);

    const v6 = await start('[::1]:0');
    expect(v6.server.udpAddress).toMatch(/^\[::1\]:\d+$/);
    await sendUdp(v6.server.udpAddress, 'b:1|c');
    await waitFor(() => v6.agg.stats.lines === 1);
  });

  it('asks the kernel for the configured receive buffer', async () => {
    const { server } = await start('127.0.0.1:0');
    expect(server.receiveBufferBytes).toBeGreaterThan(0);
  });

  it('reads newline-delimited TCP, joining lines split across packets and refusing overlong ones', async () => {
    const { agg, server } = await start('127.0.0.1:0', '127.0.0.1:0', 64);
    const { host, port } = parseListen(server.tcpAddress);
    const conn = net.connect(port, host);
    await new Promise((r) => conn.once('connect', r));
    conn.write('tcp.a:1|c\ntcp.');
    conn.write('b:2|c\n');
    conn.write(`${'x'.repeat(200)}\ntcp.c:3|c\n`);
    conn.end('tcp.d:4|c');
    await waitFor(() => agg.stats.lines === 4);
    const names = agg.flush().metrics.map((m) => m.name).sort();
    expect(names).toEqual(['tcp.a', 'tcp.b', 'tcp.c', 'tcp.d']);
  });

  it('fails to start with an error naming the key when the port is taken', async () => {
    const first = await start('127.0.0.1:0');
    await expect(start(first.server.udpAddress)).rejects.toThrow(/agent\.statsd\.listen: cannot bind UDP/);
  });

  it('closes TCP connections past tcpMaxConnections on accept, counts them, and takes new ones once others close', async () => {
    const { agg, server, telemetry } = await start('127.0.0.1:0', '127.0.0.1:0', 1024, { tcpMaxConnections: 3 });
    const open = await Promise.all([1, 2, 3].map(() => connect(server.tcpAddress)));
    await waitFor(async () => (await counted(telemetry, 'plumb_statsd_tcp_connections')) === 3, { what: '3 connections open' });
    const extra = await Promise.all([1, 2].map(() => connect(server.tcpAddress).catch(() => null)));
    for (const c of extra) if (c) await closed(c);
    expect(await counted(telemetry, 'plumb_statsd_tcp_closed_total', { reason: 'max_connections' })).toBe(2);
    // the open ones still work, and a slot freed is taken again
    open[0].write('kept.a:1|c\n');
    open[1].end();
    await closed(open[1]);
    await waitFor(async () => (await counted(telemetry, 'plumb_statsd_tcp_connections')) === 2, { what: 'one connection gone' });
    const again = await connect(server.tcpAddress);
    again.end('kept.b:1|c\n');
    await waitFor(() => agg.stats.lines === 2, { what: 'both lines' });
    for (const c of open) c.destroy();
  });

  it('closes a TCP connection idle for tcpIdleTimeout and counts it; a busy one stays', async () => {
    const { agg, server, telemetry } = await start('127.0.0.1:0', '127.0.0.1:0', 1024, { tcpIdleTimeoutMs: 300 });
    const idle = await connect(server.tcpAddress);
    const busy = await connect(server.tcpAddress);
    const started = Date.now();
    let lines = 0;
    const tick = setInterval(() => busy.write(`busy:${++lines}|c\n`), 50);
    try {
      await closed(idle);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(busy.destroyed).toBe(false);
      expect(await counted(telemetry, 'plumb_statsd_tcp_closed_total', { reason: 'idle' })).toBe(1);
    } finally {
      clearInterval(tick);
      busy.destroy();
    }
    expect(agg.stats.lines).toBeGreaterThan(0);
  });

  it('counts a TCP line over maxLineBytes and keeps the lines after it', async () => {
    const { agg, server, telemetry } = await start('127.0.0.1:0', '127.0.0.1:0', 64);
    const conn = await connect(server.tcpAddress);
    conn.end(`${'y'.repeat(500)}\nafter:1|c\n`);
    await waitFor(() => agg.stats.lines === 1, { what: 'the line after the long one' });
    expect(agg.flush().metrics.map((m) => m.name)).toEqual(['after']);
    expect(await counted(telemetry, 'plumb_statsd_tcp_lines_too_long_total')).toBe(1);
  });
});
