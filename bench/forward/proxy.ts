/**
 * A TCP proxy between the agent and the real collector, so an outage can be played without
 * stopping the collector process (its counters live in memory): `down()` closes the listening
 * socket and resets every open connection, so the agent sees what a stopped collector looks
 * like (connection refused, /readyz failing); `up()` listens on the same port again.
 * Counts the bytes the agent sends (requests: headers and gzip bodies).
 */
import net from 'node:net';

export class OutageProxy {
  /** Bytes from the agent to the collector. */
  bytesUp = 0;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  readonly port: number;
  private readonly upstreamPort: number;

  constructor(port: number, upstreamPort: number) {
    this.port = port;
    this.upstreamPort = upstreamPort;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => this.relay(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect(this.upstreamPort, '127.0.0.1');
    this.sockets.add(client);
    this.sockets.add(upstream);
    client.on('data', (d: Buffer) => {
      this.bytesUp += d.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  }

  async down(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.resetAndDestroy();
    this.sockets.clear();
    await closed;
  }
}
