/**
 * The demo's application: every second, statsd metrics (counter, timer, histogram, gauge, set),
 * a DogStatsD service check, and a two-span Zipkin trace, sent to the plumb agent. Runs on
 * node:24 as is (type stripping), with no dependencies.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';

const STATSD_HOST = process.env.STATSD_HOST ?? '127.0.0.1';
const STATSD_PORT = Number(process.env.STATSD_PORT ?? 8125);
const ZIPKIN_URL = process.env.ZIPKIN_URL ?? 'http://127.0.0.1:9411/api/v2/spans';
const ENDPOINTS = ['/cart', '/checkout', '/search'];

const socket = dgram.createSocket('udp4');
let tick = 0;

function send(lines: string[]): void {
  socket.send(lines.join('\n'), STATSD_PORT, STATSD_HOST, (err) => {
    if (err) console.error(`statsd: ${err.message}`);
  });
}

/** Latency with a slow tail, and a slow spell every few minutes so the alert rules have something to do. */
function latencyMs(): number {
  const base = 20 + Math.random() * 60;
  const tail = Math.random() < 0.05 ? 200 + Math.random() * 300 : 0;
  const spell = Math.floor(tick / 60) % 5 === 4 ? 250 : 0;
  return Math.round(base + tail + spell);
}

async function sendTrace(endpoint: string, ms: number, failed: boolean): Promise<void> {
  const traceId = randomBytes(8).toString('hex');
  const rootId = randomBytes(8).toString('hex');
  const now = Date.now() * 1000;
  const spans = [
    {
      traceId, id: rootId, kind: 'SERVER', name: `post ${endpoint}`, timestamp: now - ms * 1000, duration: ms * 1000,
      localEndpoint: { serviceName: 'shop' }, tags: { 'http.method': 'POST', 'http.path': endpoint, 'http.status_code': failed ? '500' : '200' },
    },
    {
      traceId, parentId: rootId, id: randomBytes(8).toString('hex'), kind: 'CLIENT', name: 'charge', timestamp: now - ms * 800, duration: ms * 600,
      localEndpoint: { serviceName: 'shop' }, remoteEndpoint: { serviceName: 'payments' }, tags: failed ? { error: 'card declined' } : {},
    },
  ];
  try {
    const res = await fetch(ZIPKIN_URL, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spans), signal: AbortSignal.timeout(5000) });
    if (res.status !== 202) console.error(`zipkin: ${res.status}`);
  } catch (err) {
    console.error(`zipkin: ${(err as Error).message}`);
  }
}

async function beat(): Promise<void> {
  tick++;
  const lines: string[] = [];
  for (const endpoint of ENDPOINTS) {
    const failed = Math.random() < 0.02;
    const ms = latencyMs();
    lines.push(`shop.checkout.requests:1|c|#endpoint:${endpoint},status:${failed ? 500 : 200}`);
    lines.push(`shop.checkout.latency:${ms}|ms|#endpoint:${endpoint}`);
    if (endpoint === '/checkout') await sendTrace(endpoint, ms, failed);
  }
  lines.push(`shop.cart.items:${1 + Math.floor(Math.random() * 8)}|h`);
  lines.push(`shop.queue.depth:${Math.round(50 + 40 * Math.sin(tick / 30))}|g`);
  lines.push(`shop.users:user${Math.floor(Math.random() * 500)}|s`);
  lines.push(`_sc|shop.payment_gateway|${tick % 300 < 280 ? 0 : 2}|#env:demo`);
  send(lines);
}

setInterval(() => void beat(), 1000);
console.log(`demo app: statsd to ${STATSD_HOST}:${STATSD_PORT}, spans to ${ZIPKIN_URL}`);
