/**
 * A UDP server module for Etsy statsd (its `servers: [{ server: <module> }]` extension point).
 * It is Etsy's own `servers/udp.js` plus one call: statsd 0.9 has no receive-buffer option, and
 * the benchmark must give every contender the same buffer, so this asks the kernel for
 * `receiveBuffer` bytes exactly as plumb's agent does (setsockopt SO_RCVBUF after bind).
 */
import dgram from 'node:dgram';

interface EtsyServerConfig {
  port?: number;
  address?: string;
  address_ipv6?: boolean;
  /** Bytes asked of the kernel; omitted = the kernel's default (net.core.rmem_default). */
  receiveBuffer?: number;
}

export function start(config: EtsyServerConfig, onMessage: (msg: Buffer, rinfo: dgram.RemoteInfo) => void): boolean {
  const socket = dgram.createSocket(config.address_ipv6 ? 'udp6' : 'udp4', onMessage);
  socket.bind(config.port ?? 8125, config.address, () => {
    if (config.receiveBuffer) socket.setRecvBufferSize(config.receiveBuffer);
  });
  return true;
}
