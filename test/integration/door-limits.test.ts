/**
 * The limits on every HTTP door, through real sockets: the collector's ingest port, the agent's
 * health port and the agent's Zipkin receiver. Each cuts off a client that sends its headers or
 * its body too slowly (slow-loris), closes connections past maxConnections on accept, answers
 * 429 + Retry-After past maxConcurrentRequests (probes exempt), and counts every refusal in
 * plumb_http_refused_total{server,reason}. The collector and the receiver also bound the request
 * bodies they hold at once after decompression: parallel gzip bombs, each under the per-request
 * limit, get 429 + Retry-After instead of inflating together.
 */
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, startCollector, stopAllInProcess } from '../helpers/processes.ts';
import { metricValue } from '../helpers/metrics.ts';
import { waitFor } from '../helpers/wait.ts';
import type { Telemetry } from '../../shared/telemetry.ts';

afterEach(async () => {
  await stopAllInProcess();
});

const LIMITS = 'headersTimeout: 300ms, requestTimeout: 600ms, keepAliveTimeout: 1s, maxConnections: 6, maxConcurrentRequests: 2, retryAfter: 2s';

interface Door {
  server: 'collector' | 'agent' | 'zipkin';
  url: string;
  telemetry: Telemetry;
  /** A path that takes a POST body (none on the agent's health port). */
  post: string | null;
}

/** Whether the door serves a plain request: /healthz, or an empty span list on the Zipkin port (it has no probe path). */
async function serves(door: Door): Promise<boolean> {
  const res = door.server === 'zipkin' ? await fetch(`${door.url}/api/v2/spans`, { method: 'POST', body: '[]', headers: { 'content-type': 'application/json' } }) : await fetch(`${door.url}/healthz`);
  return res.ok;
}

async function collectorDoor(extra = '', limits = LIMITS): Promise<Door> {
  const c = await startCollector(`collector:\n  listen: "127.0.0.1:0"\n  http: { ${limits} }\n${extra}`);
  return { server: 'collector', url: c.url, telemetry: c.telemetry, post: '/v1/logs' };
}

async function agentDoor(): Promise<Door> {
  const a = await startAgent(`agent:\n  http: { listen: "127.0.0.1:0", ${LIMITS} }\n  statsd: { listen: "127.0.0.1:0" }\n  host: { enabled: false }\n`);
  return { server: 'agent', url: a.url, telemetry: a.telemetry, post: null };
}

async function zipkinDoor(extra = '', limits = LIMITS): Promise<Door> {
  const a = await startAgent(`agent:\n  http: { listen: "127.0.0.1:0" }\n  statsd: { listen: "127.0.0.1:0" }\n  host: { enabled: false }\n  traces:\n    zipkin: { listen: "127.0.0.1:0", ${limits}${extra} }\n`);
  return { server: 'zipkin', url: `http://${a.agent.zipkinAddress}`, telemetry: a.telemetry, post: '/api/v2/spans' };
}

const doors: [string, () => Promise<Door>][] = [
  ['collector ingest', () => collectorDoor()],
  ['agent health port', () => agentDoor()],
  ['Zipkin receiver', () => zipkinDoor()],
];

function socketTo(url: string): Promise<net.Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves with what the server wrote once it closed the connection. */
function closedWith(s: net.Socket): Promise<string> {
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString('latin1')));
  s.on('error', () => undefined);
  return new Promise((resolve) => (s.destroyed ? resolve(text) : s.once('close', () => resolve(text))));
}

function refused(door: Door, reason: string): Promise<number> {
  return metricValue(door.telemetry.registry, 'plumb_http_refused_total', { server: door.server, reason });
}

describe.each(doors)('%s', (_name, open) => {
  it('cuts off a client that sends its headers too slowly, and counts it', async () => {
    const door = await open();
    const s = await socketTo(door.url);
    const done = closedWith(s);
    const started = Date.now();
    s.write(`GET /healthz HTTP/1.1\r\nHost: x\r\n`);
    const drip = setInterval(() => !s.destroyed && s.write('X-Slow: 1\r\n'), 100);
    try {
      const answer = await done;
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      clearInterval(drip);
    }
    // headersTimeout 300 ms, checked every 75 ms
    expect(Date.now() - started).toBeLessThan(2000);
    await waitFor(async () => (await refused(door, 'timeout')) === 1, { what: 'the timeout counted' });
    expect(await serves(door)).toBe(true);
  });

  it('closes connections past maxConnections on accept, counts them, and serves again once they go', async () => {
    const door = await open();
    const held = await Promise.all(Array.from({ length: 6 }, () => socketTo(door.url)));
    const extra = await socketTo(door.url).catch(() => null);
    if (extra) expect(await closedWith(extra)).toBe('');
    await waitFor(async () => (await refused(door, 'connections')) >= 1, { what: 'the refused connection counted' });
    for (const s of held) s.destroy();
    await waitFor(() => serves(door).catch(() => false), { what: 'a request served once the connections are gone' });
  });
});

describe.each(doors.filter(([name]) => name !== 'agent health port'))('%s', (_name, open) => {
  it('cuts off a client that sends its body too slowly', async () => {
    const door = await open();
    const s = await socketTo(door.url);
    const done = closedWith(s);
    const started = Date.now();
    s.write(`POST ${door.post} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[`);
    const drip = setInterval(() => !s.destroyed && s.write(' '), 100);
    try {
      expect(await done).toMatch(/^HTTP\/1\.1 408/);
    } finally {
      clearInterval(drip);
    }
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('answers 429 + Retry-After past maxConcurrentRequests, keeps probes open, and takes requests again after', async () => {
    const door = await open();
    const post = door.post!;
    // two requests in progress: headers sent, body not finished
    const slow = await Promise.all([1, 2].map(() => socketTo(door.url)));
    for (const s of slow) s.write(`POST ${post} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[`);
    await waitFor(async () => (await metricValue(door.telemetry.registry, 'plumb_http_requests_in_flight', { server: door.server })) === 2, { what: 'two requests in flight' });
    const third = await fetch(`${door.url}${post}`, { method: 'POST', body: '[]', headers: { 'content-type': 'application/json' } });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('2');
    if (door.server !== 'zipkin') expect((await fetch(`${door.url}/healthz`)).status).toBe(200);
    expect(await refused(door, 'concurrency')).toBe(1);
    for (const s of slow) s.destroy();
    await waitFor(async () => (await metricValue(door.telemetry.registry, 'plumb_http_requests_in_flight', { server: door.server })) === 0, { what: 'no request in flight' });
    const after = await fetch(`${door.url}${post}`, { method: 'POST', body: '[]', headers: { 'content-type': 'application/json' } });
    expect(after.status).not.toBe(429);
  });
});

/** A gzip body of n bytes once inflated (JSON white space: small on the wire). */
function bomb(bytes: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(gzipSync(Buffer.from(`[${' '.repeat(bytes - 2)}]`)));
}

/** Room for 40 clients at once: only the body budget should refuse them. */
const ROOMY = LIMITS.replace('maxConnections: 6', 'maxConnections: 100').replace('maxConcurrentRequests: 2', 'maxConcurrentRequests: 100').replace('retryAfter: 2s', 'retryAfter: 3s');

describe('bodies held at once, after decompression', () => {
  const cases: [string, () => Promise<Door>][] = [
    ['collector ingest', () => collectorDoor('  maxBodyBytes: 2mb\n  limits: { maxBodyBytesInFlight: 6mb, retryAfter: 3s }\n', ROOMY)],
    ['Zipkin receiver', () => zipkinDoor(', maxBodyBytes: 2mb, maxBodyBytesInFlight: 6mb', ROOMY)],
  ];
  it.each(cases)('%s: 40 parallel gzip bombs under the per-request limit get 429 + Retry-After, the budget is given back, good requests pass after', async (_name, open) => {
    const door = await open();
    const body = bomb(1_900_000);
    expect(body.length).toBeLessThan(10_000);
    const answers = await Promise.all(
      Array.from({ length: 40 }, () =>
        fetch(`${door.url}${door.post}`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } }).then(async (r) => ({ status: r.status, retryAfter: r.headers.get('retry-after'), text: await r.text() })),
      ),
    );
    const over = answers.filter((a) => a.status === 429 && /maxBodyBytesInFlight/.test(a.text));
    expect(over.length).toBeGreaterThan(0);
    for (const a of over) expect(a.retryAfter).toBe('3');
    expect(await refused(door, 'body_bytes')).toBeGreaterThanOrEqual(over.length);
    await waitFor(async () => (await metricValue(door.telemetry.registry, 'plumb_http_body_bytes_in_flight', { server: door.server })) === 0, { what: 'the budget given back' });
    const good = await fetch(`${door.url}${door.post}`, { method: 'POST', body: bomb(1000), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
    expect(good.status).not.toBe(429);
    expect(good.status).not.toBe(413);
  });
});

describe('statsd TCP', () => {
  it('a flood of idle TCP connections is held to tcpMaxConnections: the rest are closed and counted, /healthz keeps answering', async () => {
    const a = await startAgent('agent:\n  http: { listen: "127.0.0.1:0" }\n  statsd: { listen: "127.0.0.1:0", tcp: "127.0.0.1:0", tcpMaxConnections: 20, tcpIdleTimeout: 30s }\n  host: { enabled: false }\n');
    const tcp = `http://${a.agent.statsd.tcpAddress}`;
    const flood = (await Promise.all(Array.from({ length: 200 }, () => socketTo(tcp).catch(() => null)))).filter((s) => s !== null);
    try {
      await waitFor(
        async () => {
          await a.telemetry.metrics();
          return (await metricValue(a.telemetry.registry, 'plumb_statsd_tcp_closed_total', { reason: 'max_connections' })) >= 180;
        },
        { what: 'the connections past the limit closed and counted' },
      );
      await a.telemetry.metrics();
      expect(await metricValue(a.telemetry.registry, 'plumb_statsd_tcp_connections')).toBe(20);
      expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${a.url}/metrics`)).status).toBe(200);
    } finally {
      for (const s of flood) s.destroy();
    }
  });
});
