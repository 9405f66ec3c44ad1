/**
 * The statsd listener: UDP (IPv4 or IPv6), optionally newline-delimited TCP and DogStatsD over
 * Unix sockets (unix.ts), all feeding the one aggregator. UDP cannot push back, so what the
 * kernel drops is read from /proc and counted.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Aggregator } from './aggregator.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import type { Logger } from '../../shared/log.ts';
import { PlumbError } from '../../shared/errors.ts';
import { parseListen, formatAddress } from '../../shared/address.ts';
import { UnixStatsdListener, type UnixSocketOptions } from './unix.ts';

export interface StatsdServerOptions {
  listen: string;
  /** Newline-delimited TCP listener, or null for none. */
  tcp: string | null;
  /** Receive buffer asked of the kernel; it caps this at net.core.rmem_max. */
  receiveBufferBytes: number;
  /** Longest line accepted over TCP (UDP lines are bounded by the datagram). */
  maxLineBytes: number;
  /** DogStatsD over Unix sockets; absent (or both paths null) for none. */
  unix?: Omit<UnixSocketOptions, 'maxFrameBytes'>;
  /** Open TCP connections at most (default 512); one more is closed on accept (file descriptors stay for health, checkpoints, spool). */
  tcpMaxConnections?: number;
  /** A TCP connection that sends nothing for this long is closed (default 2 minutes). */
  tcpIdleTimeoutMs?: number;
}

export class StatsdServer {
  private readonly options: StatsdServerOptions;
  private readonly aggregator: Aggregator;
  private readonly log: Logger;
  private udp: dgram.Socket | null = null;
  private tcp: net.Server | null = null;
  private readonly connections = new Set<net.Socket>();
  private tcpTooLong = 0;
  private readonly tcpChunks = { n: 0 };
  private readonly udpDatagrams = { n: 0 };
  readonly unix: UnixStatsdListener | null;
  private tcpRefused = 0;
  private tcpIdleClosed = 0;
  /** Address actually bound (port 0 resolves to a real port). */
  udpAddress = '';
  tcpAddress = '';
  receiveBufferBytes = 0;

  constructor(options: StatsdServerOptions, aggregator: Aggregator, ctx: { telemetry: Telemetry; log: Logger }) {
    this.options = options;
    this.aggregator = aggregator;
    this.log = ctx.log;
    const t = ctx.telemetry;
    t.gaugeFrom('plumb_statsd_receive_buffer_bytes', 'UDP receive buffer granted by the kernel (as Linux reports it: twice the usable size)', () => this.receiveBufferBytes);
    t.countFrom(t.counter('plumb_statsd_socket_drops_total', 'datagrams the kernel dropped on the statsd socket because its receive buffer was full'), () => this.kernelDrops());
    t.countFrom(t.counter('plumb_statsd_tcp_lines_too_long_total', 'TCP statsd lines over maxLineBytes, discarded'), () => this.tcpTooLong);
    const u = options.unix;
    this.unix =
      u && (u.path || u.streamPath)
        ? new UnixStatsdListener({ ...u, maxFrameBytes: options.maxLineBytes, maxConnections: options.tcpMaxConnections, idleTimeoutMs: options.tcpIdleTimeoutMs }, aggregator, this.log)
        : null;
    const received = t.counter('plumb_statsd_received_total', 'statsd datagrams (UDP, unix) or chunks and frames (TCP, unix stream) received, by transport', ['transport']);
    t.countFrom(received, () => this.udpDatagrams.n, { transport: 'udp' });
    if (options.tcp) t.countFrom(received, () => this.tcpChunks.n, { transport: 'tcp' });
    const unix = this.unix;
    if (unix) {
      if (u?.path) t.countFrom(received, () => unix.stats.datagrams, { transport: 'unix' });
      if (u?.streamPath) t.countFrom(received, () => unix.stats.streamFrames, { transport: 'unixstream' });
      t.gaugeFrom('plumb_statsd_unix_receive_buffer_bytes', 'receive buffer of the statsd unix datagram socket granted by the kernel (as Linux reports it: twice the usable size)', () => unix.receiveBufferBytes);
      t.countFrom(t.counter('plumb_statsd_unix_oversized_total', 'unix datagrams cut at the 64 KiB read limit (their last line discarded) and unix stream frames over maxLineBytes (skipped)'), () => unix.stats.oversized);
      t.countFrom(t.counter('plumb_statsd_unix_errors_total', 'errors that closed the statsd unix datagram socket'), () => unix.stats.errors);
      t.countFrom(t.counter('plumb_statsd_unix_stream_closed_total', 'unix stream connections refused over the connection limit or closed idle (the TCP limits)'), () => unix.stats.streamClosed);
    }
    const closed = t.counter('plumb_statsd_tcp_closed_total', 'statsd TCP connections closed by a limit, by reason (max_connections, idle)', ['reason']);
    t.countFrom(closed, () => this.tcpRefused, { reason: 'max_connections' });
    t.countFrom(closed, () => this.tcpIdleClosed, { reason: 'idle' });
    t.gaugeFrom('plumb_statsd_tcp_connections', 'open statsd TCP connections', () => this.connections.size);
  }

  async start(): Promise<void> {
    const addr = parseListen(this.options.listen);
    const socket = dgram.createSocket({ type: addr.family === 6 ? 'udp6' : 'udp4', reuseAddr: false });
    const udpDatagrams = this.udpDatagrams;
    socket.on('message', (msg) => {
      udpDatagrams.n++;
      this.aggregator.ingest(msg);
    });
    socket.on('error', (err) => this.log.error({ err }, 'statsd UDP socket error'));
    await bindUdp(socket, addr.host, addr.port, this.options.listen);
    try {
      socket.setRecvBufferSize(this.options.receiveBufferBytes);
    } catch (err) {
      this.log.warn({ err, asked: this.options.receiveBufferBytes }, 'could not set the statsd receive buffer; raise net.core.rmem_max');
    }
    // Linux reports double what it grants (the bookkeeping overhead); half is the usable size.
    this.receiveBufferBytes = socket.getRecvBufferSize();
    if (this.receiveBufferBytes / 2 < this.options.receiveBufferBytes) {
      this.log.warn(
        { asked: this.options.receiveBufferBytes, granted: this.receiveBufferBytes / 2 },
        'the kernel granted a smaller statsd receive buffer than configured; raise it with sysctl -w net.core.rmem_max=<bytes>',
      );
    }
    const bound = socket.address();
    this.udpAddress = formatAddress(bound.address, bound.port);
    this.udp = socket;
    if (this.options.tcp) await this.startTcp(this.options.tcp);
    await this.unix?.start();
    this.log.info(
      {
        udp: this.udpAddress,
        tcp: this.tcpAddress || undefined,
        unix: this.options.unix?.path ?? undefined,
        unixStream: this.options.unix?.streamPath ?? undefined,
        receiveBuffer: this.receiveBufferBytes,
      },
      'statsd listening',
    );
  }

  private async startTcp(listen: string): Promise<void> {
    const addr = parseListen(listen);
    const server = net.createServer((conn) => this.onConnection(conn));
    // past the limit Node closes a new connection on accept and says so with 'drop'
    server.maxConnections = this.options.tcpMaxConnections ?? 512;
    server.on('drop', () => this.tcpRefused++);
    server.listen(addr.port, addr.host);
    try {
      await once(server, 'listening');
    } catch (err) {
      throw new PlumbError('PLUMB_ERR_LISTEN', `agent.statsd.tcp: cannot listen on ${listen}: ${(err as Error).message}`);
    }
    const a = server.address() as net.AddressInfo;
    this.tcpAddress = formatAddress(a.address, a.port);
    this.tcp = server;
  }

  private onConnection(conn: net.Socket): void {
    this.connections.add(conn);
    conn.setTimeout(this.options.tcpIdleTimeoutMs ?? 120_000, () => {
      this.tcpIdleClosed++;
      conn.destroy();
    });
    let pending: Buffer | null = null;
    let discarding = false;
    const tcpChunks = this.tcpChunks;
    conn.on('data', (chunk: Buffer) => {
      tcpChunks.n++;
      const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = null;
      let start = 0;
      if (discarding) {
        const nl = buf.indexOf(0x0a);
        if (nl < 0) return;
        discarding = false;
        start = nl + 1;
      }
      const lastNl = buf.lastIndexOf(0x0a);
      if (lastNl >= start) this.ingestLines(buf, start, lastNl);
      const tailStart = Math.max(start, lastNl + 1);
      if (tailStart < buf.length) {
        if (buf.length - tailStart > this.options.maxLineBytes) {
          this.tcpTooLong++;
          discarding = true;
        } else {
          pending = Buffer.from(buf.subarray(tailStart));
        }
      }
    });
    conn.on('end', () => {
      if (pending && !discarding) this.aggregator.ingest(pending);
      pending = null;
    });
    conn.on('error', () => undefined);
    conn.on('close', () => this.connections.delete(conn));
  }

  /**
   * Hands the complete lines in buf[start, end) to the aggregator, leaving out (and counting)
   * any longer than maxLineBytes; runs of good lines go in one call.
   */
  private ingestLines(buf: Buffer, start: number, end: number): void {
    const max = this.options.maxLineBytes;
    let run = start;
    let pos = start;
    while (pos < end) {
      let nl = buf.indexOf(0x0a, pos);
      if (nl < 0 || nl > end) nl = end;
      if (nl - pos > max) {
        if (pos > run) this.aggregator.ingest(buf, run, pos);
        this.tcpTooLong++;
        run = nl + 1;
      }
      pos = nl + 1;
    }
    if (run < end) this.aggregator.ingest(buf, run, end);
  }

  /** Datagrams dropped by the kernel on our UDP socket (the `drops` column of /proc/net/udp). */
  kernelDrops(): number {
    if (!this.udp) return 0;
    const port = this.udp.address().port;
    const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
    let drops = 0;
    for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
      let text: string;
      try {
        text = readFileSync(file, 'latin1');
      } catch {
        continue;
      }
      for (const line of text.split('\n').slice(1)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length < 13) continue;
        if (cols[1].endsWith(`:${hexPort}`)) drops += Number(cols[12]) || 0;
      }
    }
    return drops;
  }

  async stop(): Promise<void> {
    await this.unix?.stop();
    if (this.udp) {
      const s = this.udp;
      this.udp = null;
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    if (this.tcp) {
      const s = this.tcp;
      this.tcp = null;
      for (const c of this.connections) c.end();
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      for (const c of this.connections) c.destroy();
      await closed;
    }
  }
}


function bindUdp(socket: dgram.Socket, host: string, port: number, listen: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new PlumbError('PLUMB_ERR_LISTEN', `agent.statsd.listen: cannot bind UDP ${listen}: ${err.message}`));
    };
    socket.once('error', onError);
    socket.bind(port, host, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}
