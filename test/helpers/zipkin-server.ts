/**
 * A small Zipkin-compatible server for tests: takes `POST /api/v2/spans` (JSON, gzip or not),
 * keeps every span it accepted, and answers the read API a test needs
 * (`GET /api/v2/traces`, `GET /api/v2/trace/{id}`, `GET /api/v2/services`). It can be told to
 * fail the next requests, and restarted on the same port with the same store to play a Zipkin
 * that went away and came back.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface StoredSpan {
  traceId: string;
  id: string;
  [field: string]: unknown;
}

export interface ZipkinTestServerOptions {
  /** 0 (default) picks a free port; pass a previous server's port to restart it. */
  port?: number;
  host?: string;
  /** Shared between restarts so spans accepted before a restart stay visible. */
  store?: StoredSpan[];
}

export interface ZipkinTestServer {
  /** Base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  /** Every span accepted, in arrival order. */
  spans: StoredSpan[];
  /** POST requests seen (including failed ones). */
  requests: number;
  /** Request headers of each POST, in order. */
  requestHeaders: IncomingMessage['headers'][];
  /** Answers the next `n` POSTs with `status` without storing their spans. */
  failNext(n: number, status?: number, headers?: Record<string, string>): void;
  /** Resolves once at least `n` spans are stored; rejects after `timeoutMs`. */
  waitForSpans(n: number, timeoutMs?: number): Promise<void>;
  /** Spans grouped by trace id. */
  traces(): StoredSpan[][];
  stop(): Promise<void>;
}

export async function startZipkinServer(options: ZipkinTestServerOptions = {}): Promise<ZipkinTestServer> {
  const store = options.store ?? [];
  const host = options.host ?? '127.0.0.1';
  let failures: { left: number; status: number; headers: Record<string, string> } = { left: 0, status: 503, headers: {} };
  const waiters = new Set<() => void>();

  const state: ZipkinTestServer = {
    url: '',
    port: 0,
    spans: store,
    requests: 0,
    requestHeaders: [],
    failNext(n, status = 503, headers = {}) {
      failures = { left: n, status, headers };
    },
    waitForSpans(n, timeoutMs = 10_000) {
      if (store.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (store.length >= n) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`zipkin test server: ${store.length} spans after ${timeoutMs}ms, waited for ${n}`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    traces() {
      const byTrace = new Map<string, StoredSpan[]>();
      for (const s of store) {
        let list = byTrace.get(s.traceId);
        if (!list) byTrace.set(s.traceId, (list = []));
        list.push(s);
      }
      return [...byTrace.values()];
    },
    stop: () => Promise.resolve(),
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'POST' && url.pathname === '/api/v2/spans') {
      state.requests++;
      state.requestHeaders.push(req.headers);
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      if (failures.left > 0) {
        failures.left--;
        res.writeHead(failures.status, { 'content-type': 'text/plain', ...failures.headers }).end('injected failure');
        return;
      }
      let raw = Buffer.concat(chunks);
      if ((req.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') raw = gunzipSync(raw);
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
      } catch {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('Malformed reading List<Span> from json');
        return;
      }
      if (!Array.isArray(parsed)) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end('expected a JSON array of spans');
        return;
      }
      for (const s of parsed as StoredSpan[]) store.push(s);
      res.writeHead(202).end();
      for (const w of [...waiters]) w();
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/v2/traces') return json(res, state.traces());
    if (req.method === 'GET' && url.pathname.startsWith('/api/v2/trace/')) {
      const id = url.pathname.slice('/api/v2/trace/'.length);
      const spans = store.filter((s) => s.traceId === id);
      return spans.length > 0 ? json(res, spans) : void res.writeHead(404).end(`trace ${id} not found`);
    }
    if (req.method === 'GET' && url.pathname === '/api/v2/services') {
      const names = new Set<string>();
      for (const s of store) {
        const name = (s.localEndpoint as { serviceName?: string } | undefined)?.serviceName;
        if (name) names.add(name);
      }
      return json(res, [...names].sort());
    }
    res.writeHead(404).end();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  state.port = port;
  state.url = `http://${host}:${port}`;
  state.stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return state;
}

function json(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
