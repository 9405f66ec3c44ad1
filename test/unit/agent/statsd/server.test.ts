import { afterEach, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import net from 'node:net';
import { Aggregator } from '../../../../agent/statsd/aggregator.ts';
import { StatsdServer } from '../../../../agent/statsd/server.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { parseListen } from '../../../../shared/address.ts';
import { waitFor } from '../../../helpers/wait.ts';

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

async function start(listen: string, tcp: string | null = null, maxLineBytes = 1024) {
  const agg = new Aggregator(aggregatorOptions);
  const server = new StatsdServer({ listen, tcp, receiveBufferBytes: 1 << 20, maxLineBytes }, agg, { telemetry: new Telemetry(), log: silentLogger() });
  await server.start();
  servers.push(server);
  return { agg, server };
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
});
