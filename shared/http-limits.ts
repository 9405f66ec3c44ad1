/**
 * Limits every plumb HTTP server applies (collector ingest, the agent's health port, the Zipkin
 * receiver), so one client cannot take a door away from everyone else:
 * - slow clients: the request line and headers must arrive within headersTimeout and the whole
 *   request within requestTimeout (then the connection is closed; Node answers 408); an idle
 *   keep-alive connection is closed after keepAliveTimeout;
 * - file descriptors: at most maxConnections sockets; one more is closed on accept;
 * - work in hand: at most maxConcurrentRequests requests at once; one more is answered 429 with
 *   Retry-After before its body is read (probes and scrapes are exempt, so a busy server still
 *   says it is alive);
 * - memory: request bodies held at once, after decompression, count against a BodyBudget (see
 *   below); the per-request size stays each server's own maxBodyBytes.
 * Every refusal is counted in plumb_http_refused_total{server,reason}.
 */
import type { FastifyInstance } from 'fastify';
import type { Counter, Gauge } from 'prom-client';
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration, Section } from './config.ts';
import type { Telemetry } from './telemetry.ts';

/** Spread into a server's own section (agent.http, agent.traces.zipkin); collector.http is HttpLimitsSchema. */
export const HttpLimitsProperties = {
  headersTimeout: Duration('10s', { description: 'the request line and headers must arrive within this (slow clients are cut off)' }),
  requestTimeout: Duration('60s', { description: 'a whole request, body included, must arrive within this' }),
  keepAliveTimeout: Duration('5s', { description: 'an idle keep-alive connection is closed after this' }),
  maxConnections: Type.Integer({ minimum: 1, default: 1024, description: 'open connections at most; more are closed on accept (bounds file descriptors)' }),
  maxConcurrentRequests: Type.Integer({ minimum: 1, default: 256, description: 'requests handled at once; more are answered 429 with Retry-After (probes and /metrics exempt)' }),
  retryAfter: Duration('1s', { description: 'Retry-After sent with those 429s' }),
};

export const HttpLimitsSchema = Section(HttpLimitsProperties, { description: 'Limits of this HTTP server: timeouts against slow clients, connections, requests in progress.' });

export type HttpLimits = StaticDecode<typeof HttpLimitsSchema>;

/** Paths that must answer even when a server is busy: orchestrator probes and scrapes. */
const PROBE_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Options for Fastify(): Node's own timeouts, checked often enough that a slow client is cut off
 * close to its deadline (Node checks every 30 s by default). Merge `https` in when serving TLS.
 */
export function httpServerOptions(limits: HttpLimits, https?: object | null): Record<string, unknown> {
  const node = {
    headersTimeout: limits.headersTimeout,
    requestTimeout: limits.requestTimeout,
    keepAliveTimeout: limits.keepAliveTimeout,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(Math.min(limits.headersTimeout, limits.requestTimeout) / 4))),
  };
  return {
    // fastify sets these two on the server after creating it: give the same values
    requestTimeout: limits.requestTimeout,
    keepAliveTimeout: limits.keepAliveTimeout,
    ...(https ? { https: { ...https, ...node } } : { http: node }),
  };
}

interface HttpMetrics {
  refused: Counter<'server' | 'reason'>;
  connections: Gauge<'server'>;
  inFlight: Gauge<'server'>;
}

function httpMetrics(telemetry: Telemetry): HttpMetrics {
  return {
    refused: telemetry.counter('plumb_http_refused_total', 'HTTP connections and requests refused by a server limit, by server and reason (connections, concurrency, body_bytes, timeout)', ['server', 'reason']),
    connections: telemetry.gauge('plumb_http_connections', 'open connections, by server', ['server']),
    inFlight: telemetry.gauge('plumb_http_requests_in_flight', 'requests being handled, by server', ['server']),
  };
}

/**
 * Installs the connection and concurrency limits on a built (not yet listening) fastify app and
 * starts their counters at 0. `server` names the door in the metrics: collector, agent, zipkin.
 */
export function installHttpLimits(app: FastifyInstance, limits: HttpLimits, telemetry: Telemetry, server: string): void {
  const m = httpMetrics(telemetry);
  for (const reason of ['connections', 'concurrency', 'timeout']) m.refused.inc({ server, reason }, 0);
  m.connections.set({ server }, 0);
  m.inFlight.set({ server }, 0);
  const node = app.server;
  node.maxConnections = limits.maxConnections;
  node.on('drop', () => m.refused.inc({ server, reason: 'connections' }));
  node.on('connection', (socket: import('node:net').Socket) => {
    m.connections.inc({ server });
    socket.once('close', () => m.connections.dec({ server }));
  });
  // Node answers 408 and closes the socket when headersTimeout or requestTimeout passes
  node.on('clientError', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') m.refused.inc({ server, reason: 'timeout' });
  });
  const retryAfter = String(Math.max(1, Math.ceil(limits.retryAfter / 1000)));
  let inFlight = 0;
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?', 1)[0];
    if (request.method === 'GET' && PROBE_PATHS.has(path)) return;
    if (inFlight >= limits.maxConcurrentRequests) {
      m.refused.inc({ server, reason: 'concurrency' });
      return reply
        .code(429)
        .header('retry-after', retryAfter)
        .header('connection', 'close')
        .send({ error: 'PLUMB_ERR_HTTP_BUSY', message: `this server is handling ${limits.maxConcurrentRequests} requests already (maxConcurrentRequests); retry later` });
    }
    inFlight++;
    m.inFlight.inc({ server });
    // 'close' comes once whether the answer was sent or the client went away
    reply.raw.once('close', () => {
      inFlight--;
      m.inFlight.dec({ server });
    });
  });
}

/**
 * Request bodies in memory at once, across every request of a server, measured after
 * decompression. Concurrent gzip bodies inflate off-heap where the heap guard cannot see them;
 * 40 parallel bombs, each under the per-request limit, took a collector to 4.4 GB. A request
 * whose body would take the total over maxBytes is answered 429 with Retry-After.
 */
export class BodyBudget {
  readonly maxBytes: number;
  private used = 0;
  private readonly refused: Counter<'server' | 'reason'>;
  private readonly server: string;
  private readonly gauge: Gauge<'server'>;

  constructor(maxBytes: number, telemetry: Telemetry, server: string) {
    this.maxBytes = maxBytes;
    this.server = server;
    this.refused = httpMetrics(telemetry).refused;
    this.refused.inc({ server, reason: 'body_bytes' }, 0);
    this.gauge = telemetry.gauge('plumb_http_body_bytes_in_flight', 'request body bytes held in memory (after decompression), by server', ['server']);
    this.gauge.set({ server }, 0);
  }

  get inUse(): number {
    return this.used;
  }

  /** Takes n bytes if they fit; false (and counted) if not. */
  take(n: number): boolean {
    if (this.used + n > this.maxBytes) {
      this.countRefusal();
      return false;
    }
    this.used += n;
    this.gauge.set({ server: this.server }, this.used);
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
    this.gauge.set({ server: this.server }, this.used);
  }

  countRefusal(): void {
    this.refused.inc({ server: this.server, reason: 'body_bytes' });
  }

  /** Whether nothing more fits right now (checked before a body is read). */
  get full(): boolean {
    return this.used >= this.maxBytes;
  }
}
