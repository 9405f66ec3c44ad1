/**
 * A tiny TCP round-robin balancer standing in for a Kubernetes Service: each new connection goes
 * to the next backend in turn, bytes are piped both ways untouched, and a connection stays with
 * its backend until either side closes it. setBackends() changes where new connections go
 * (a pod leaving the Service's endpoints); open connections keep going where they went.
 */
import net from 'node:net';

export interface TcpProxy {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Connections made to each backend so far. */
  connections: Map<string, number>;
  setBackends(backends: string[]): void;
  close(): Promise<void>;
}

function hostPort(backend: string): { host: string; port: number } {
  const u = new URL(backend);
  return { host: u.hostname, port: Number(u.port) };
}

export async function startTcpProxy(backends: string[], port = 0): Promise<TcpProxy> {
  let targets = [...backends];
  let next = 0;
  const sockets = new Set<net.Socket>();
  const connections = new Map<string, number>();
  const server = net.createServer((client) => {
    if (targets.length === 0) {
      client.destroy();
      return;
    }
    const backend = targets[next++ % targets.length];
    connections.set(backend, (connections.get(backend) ?? 0) + 1);
    const upstream = net.connect(hostPort(backend));
    sockets.add(client);
    sockets.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    connections,
    setBackends(b) {
      targets = [...b];
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
