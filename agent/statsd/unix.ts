/**
 * DogStatsD over Unix domain sockets: a datagram socket (what the Datadog client libraries call
 * `unix://` or `unixgram://`) and optionally a stream socket (`unixstream://`: each message is
 * prefixed by its length, 4 bytes little-endian). Both feed the same aggregator as UDP, so the
 * parser, limits and counters are the same.
 *
 * Node's dgram has no AF_UNIX datagram sockets; node-unix-socket provides them as an N-API addon
 * shipped prebuilt per platform (nothing is compiled at install, one binary serves every Node
 * version) with SO_RCVBUF control. A unix datagram socket does not drop on the receiving side:
 * when its queue is full the sender blocks or gets EAGAIN, so loss, if any, is the client's.
 */
import net from 'node:net';
import { once } from 'node:events';
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DgramSocket } from 'node-unix-socket';
import type { Aggregator } from './aggregator.ts';
import type { Logger } from '../../shared/log.ts';
import { PlumbError, errorMessage } from '../../shared/errors.ts';

export interface UnixSocketOptions {
  /** Datagram socket path, or null for none. */
  path: string | null;
  /** Stream socket path (length-prefixed frames), or null for none. */
  streamPath: string | null;
  /** File mode of the socket files, e.g. 0o622 (a client needs write permission to send). */
  mode: number;
  /** Group given to the socket files (a gid or a name from /etc/group), or null to keep the agent's. */
  group: number | string | null;
  /** SO_RCVBUF asked for the datagram socket; the kernel caps it at net.core.rmem_max. */
  receiveBufferBytes: number;
  /** Longest stream frame accepted; a longer one is skipped and counted. */
  maxFrameBytes: number;
  /** Stream connections at once (as for TCP); more are closed on accept and counted. */
  maxConnections?: number;
  /** A stream connection idle this long is closed (as for TCP). */
  idleTimeoutMs?: number;
}

/** node-unix-socket reads at most this many bytes of a datagram; a longer one arrives cut here. */
export const MAX_UNIX_DATAGRAM = 65535;

export interface UnixSocketStats {
  datagrams: number;
  streamFrames: number;
  /** Datagrams that reached the read limit (their last line is discarded) and stream frames over maxFrameBytes. */
  oversized: number;
  errors: number;
  /** Stream connections refused at maxConnections or closed idle. */
  streamClosed: number;
}

export class UnixStatsdListener {
  private readonly options: UnixSocketOptions;
  private readonly aggregator: Aggregator;
  private readonly log: Logger;
  private dgram: DgramSocket | null = null;
  private stream: net.Server | null = null;
  private readonly connections = new Set<net.Socket>();
  readonly stats: UnixSocketStats = { datagrams: 0, streamFrames: 0, oversized: 0, errors: 0, streamClosed: 0 };
  /** SO_RCVBUF the kernel granted (Linux reports twice the usable size), 0 before start. */
  receiveBufferBytes = 0;

  constructor(options: UnixSocketOptions, aggregator: Aggregator, log: Logger) {
    this.options = options;
    this.aggregator = aggregator;
    this.log = log;
  }

  async start(): Promise<void> {
    const gid = this.options.group === null ? null : resolveGroup(this.options.group);
    if (this.options.path) await this.startDatagram(this.options.path, gid);
    if (this.options.streamPath) await this.startStream(this.options.streamPath, gid);
  }

  private async startDatagram(path: string, gid: number | null): Promise<void> {
    let mod: typeof import('node-unix-socket');
    try {
      mod = await import('node-unix-socket');
    } catch (err) {
      throw new PlumbError('PLUMB_ERR_LISTEN', `agent.statsd.socket.path: unix datagram sockets are not available on this platform (${errorMessage(err)}); remove the setting or use UDP`);
    }
    await prepareSocketPath(path, 'agent.statsd.socket.path');
    const socket = new mod.DgramSocket();
    socket.on('data', (buf: Buffer) => this.onDatagram(buf));
    socket.on('error', (err: Error) => {
      // node-unix-socket closes the socket on an error; the agent keeps its other doors.
      this.stats.errors++;
      this.dgram = null;
      this.log.error({ err, path }, 'statsd unix datagram socket failed and is closed');
    });
    try {
      socket.bind(path);
    } catch (err) {
      socket.close();
      throw new PlumbError('PLUMB_ERR_LISTEN', `agent.statsd.socket.path: cannot bind ${path}: ${errorMessage(err)}`);
    }
    this.dgram = socket;
    setPermissions(path, this.options.mode, gid, 'agent.statsd.socket');
    try {
      socket.setRecvBufferSize(this.options.receiveBufferBytes);
    } catch (err) {
      this.log.warn({ err, asked: this.options.receiveBufferBytes }, 'could not set the statsd unix socket receive buffer; raise net.core.rmem_max');
    }
    this.receiveBufferBytes = socket.getRecvBufferSize();
    if (this.receiveBufferBytes / 2 < this.options.receiveBufferBytes) {
      this.log.warn(
        { asked: this.options.receiveBufferBytes, granted: this.receiveBufferBytes / 2 },
        'the kernel granted a smaller statsd unix socket receive buffer than configured; raise it with sysctl -w net.core.rmem_max=<bytes>',
      );
    }
  }

  private onDatagram(buf: Buffer): void {
    this.stats.datagrams++;
    if (buf.length >= MAX_UNIX_DATAGRAM) {
      // Cut at the read limit: the last line may be a fragment that would parse as something
      // else ("a:1|c|#env:prod" → "a:1|c|#env:pr"), so only whole lines are kept.
      this.stats.oversized++;
      const lastNl = buf.lastIndexOf(0x0a);
      if (lastNl > 0) this.aggregator.ingest(buf, 0, lastNl);
      return;
    }
    this.aggregator.ingest(buf);
  }

  private async startStream(path: string, gid: number | null): Promise<void> {
    await prepareSocketPath(path, 'agent.statsd.socket.streamPath');
    const server = net.createServer((conn) => this.onConnection(conn));
    server.maxConnections = this.options.maxConnections ?? 512;
    server.on('drop', () => this.stats.streamClosed++);
    server.listen(path);
    try {
      await once(server, 'listening');
    } catch (err) {
      throw new PlumbError('PLUMB_ERR_LISTEN', `agent.statsd.socket.streamPath: cannot listen on ${path}: ${errorMessage(err)}`);
    }
    this.stream = server;
    setPermissions(path, this.options.mode, gid, 'agent.statsd.socket');
  }

  /** Frames: uint32 little-endian length, then that many bytes of newline-separated lines. */
  private onConnection(conn: net.Socket): void {
    this.connections.add(conn);
    conn.setTimeout(this.options.idleTimeoutMs ?? 120_000, () => {
      this.stats.streamClosed++;
      conn.destroy();
    });
    const reader = new FrameReader(this.options.maxFrameBytes, (buf, start, end) => {
      this.stats.streamFrames++;
      if (end > start) this.aggregator.ingest(buf, start, end);
    }, () => this.stats.oversized++);
    conn.on('data', (chunk: Buffer) => reader.push(chunk));
    conn.on('error', () => undefined);
    conn.on('close', () => this.connections.delete(conn));
  }

  async stop(): Promise<void> {
    if (this.dgram) {
      this.dgram.close();
      this.dgram = null;
      removeSocketFile(this.options.path);
    }
    if (this.stream) {
      const s = this.stream;
      this.stream = null;
      const closed = new Promise<void>((resolve) => s.close(() => resolve()));
      for (const c of this.connections) c.destroy();
      await closed;
      // net.Server removes its own socket file on close.
    }
  }
}

/**
 * Splits a byte stream into length-prefixed frames, holding at most one frame's bytes. A frame
 * longer than `maxFrame` is skipped (its length says how far) and reported.
 */
export class FrameReader {
  private pending: Buffer | null = null;
  private skip = 0;
  private readonly maxFrame: number;
  private readonly onFrame: (buf: Buffer, start: number, end: number) => void;
  private readonly onOversized: () => void;

  constructor(maxFrame: number, onFrame: (buf: Buffer, start: number, end: number) => void, onOversized: () => void) {
    this.maxFrame = maxFrame;
    this.onFrame = onFrame;
    this.onOversized = onOversized;
  }

  push(chunk: Buffer): void {
    let buf = chunk;
    let pos = 0;
    if (this.skip > 0) {
      const n = Math.min(this.skip, buf.length);
      this.skip -= n;
      pos = n;
    }
    if (this.pending) {
      buf = Buffer.concat([this.pending, buf.subarray(pos)]);
      pos = 0;
      this.pending = null;
    }
    while (buf.length - pos >= 4) {
      const len = buf.readUInt32LE(pos);
      if (len > this.maxFrame) {
        this.onOversized();
        const available = buf.length - pos - 4;
        if (available >= len) {
          pos += 4 + len;
          continue;
        }
        this.skip = len - available;
        return;
      }
      if (buf.length - pos - 4 < len) break;
      this.onFrame(buf, pos + 4, pos + 4 + len);
      pos += 4 + len;
    }
    if (pos < buf.length) this.pending = Buffer.from(buf.subarray(pos));
  }
}

/**
 * Makes the socket's folder and clears a stale socket file a previous run left behind. A socket
 * someone still listens on, or a path that is not a socket, is refused rather than taken over.
 */
async function prepareSocketPath(path: string, key: string): Promise<void> {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  } catch (err) {
    throw new PlumbError('PLUMB_ERR_LISTEN', `${key}: cannot create the folder of ${path}: ${errorMessage(err)}`);
  }
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new PlumbError('PLUMB_ERR_LISTEN', `${key}: ${path} exists and is not a socket; remove it or choose another path`);
  const probe = await probeSocket(path);
  if (probe !== 'ECONNREFUSED') throw new PlumbError('PLUMB_ERR_LISTEN', `${key}: ${path} is in use by another process (is another agent running?)`);
  unlinkSync(path);
}

/** Connects with a stream socket: ECONNREFUSED means nobody is bound (a stale file). */
function probeSocket(path: string): Promise<string> {
  return new Promise((resolve) => {
    const conn = net.connect(path);
    conn.once('connect', () => {
      conn.destroy();
      resolve('connected');
    });
    conn.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

function setPermissions(path: string, mode: number, gid: number | null, key: string): void {
  try {
    if (gid !== null) chownSync(path, -1, gid);
    chmodSync(path, mode);
  } catch (err) {
    throw new PlumbError('PLUMB_ERR_LISTEN', `${key}: cannot set the mode or group of ${path}: ${errorMessage(err)}`);
  }
}

function removeSocketFile(path: string | null): void {
  if (!path) return;
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // already gone
  }
}

/** A gid, or a group name looked up in /etc/group. */
export function resolveGroup(group: number | string, groupFile = '/etc/group'): number {
  if (typeof group === 'number') return group;
  if (/^\d+$/.test(group)) return Number(group);
  let text = '';
  try {
    text = readFileSync(groupFile, 'utf8');
  } catch {
    // reported below as unknown
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new PlumbError('PLUMB_ERR_LISTEN', `agent.statsd.socket.group: no group named "${group}" in ${groupFile}; give a gid or an existing group`);
}
