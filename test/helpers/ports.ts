/**
 * Free ports for servers a test starts in another process (in-process servers bind port 0 and
 * read back what they got). The port is released before it is returned, so another process can
 * take it in between. To keep that window from being hit, ports are drawn at random from below
 * the kernel's ephemeral range (net.ipv4.ip_local_port_range): a port the OS hands out for port 0
 * or for an outgoing connection's local end can then never be the one a test is about to bind,
 * and parallel test workers rarely draw the same number. A test that still loses the race fails
 * loudly at bind.
 */
import net from 'node:net';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

const LOWEST = 10_000;

/** [low, high) of the ports drawn: up to the start of the ephemeral range (0 = let the OS pick). */
const RANGE: [number, number] = (() => {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first - LOWEST >= 1000 ? [LOWEST, first] : [0, 0];
  } catch {
    return [0, 0];
  }
})();

/** Ports this process handed out, so one test run never gets the same one twice. */
const given = new Set<number>();

function candidate(): number {
  const [low, high] = RANGE;
  if (high === 0) return 0;
  for (;;) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (!given.has(port)) return port;
  }
}

function tryTcp(port: number, host: string): Promise<number | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(null));
    server.listen(port, host, () => {
      const got = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(got));
    });
  });
}

function tryUdp(port: number, host: string): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    socket.unref();
    socket.once('error', () => {
      socket.close();
      resolve(null);
    });
    socket.bind(port, host, () => {
      const got = socket.address().port;
      socket.close(() => resolve(got));
    });
  });
}

async function pick(attempt: (port: number) => Promise<number | null>, what: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = await attempt(candidate());
    if (port !== null) {
      given.add(port);
      return port;
    }
  }
  throw new Error(`no free ${what} port found after 200 tries`);
}

/** A TCP port on `host` that nothing listens on right now. */
export function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  return pick((p) => tryTcp(p, host), 'TCP');
}

/** A UDP port on `host` that no socket is bound to right now. */
export function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  return pick((p) => tryUdp(p, host), 'UDP');
}

/** `n` distinct free TCP ports. */
export async function freeTcpPorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) ports.push(await freeTcpPort(host));
  return ports;
}
