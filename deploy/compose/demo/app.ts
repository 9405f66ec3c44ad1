/**
 * The demo's application: every second, statsd metrics (counter, timer, histogram, gauge, set),
 * a DogStatsD service check, and a two-span Zipkin trace, sent to the plumb agent; and, when
 * LOG_DIR is set, an access-log line per request in LOG_DIR/shop.log for the agent to tail
 * (renamed to shop.log.1 past 10 MB). Runs on node:24 as is (type stripping), with no
 * dependencies.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { appendFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';

const STATSD_HOST = process.env.STATSD_HOST ?? '127.0.0.1';
const STATSD_PORT = Number(process.env.STATSD_PORT ?? 8125);
const ZIPKIN_URL = process.env.ZIPKIN_URL ?? 'http://127.0.0.1:9411/api/v2/spans';
const ENDPOINTS = ['/cart', '/checkout', '/search'];
const LOG_FILE = process.env.LOG_DIR ? join(process.env.LOG_DIR, 'shop.log') : null;
const LOG_MAX_BYTES = 10 * 1024 * 1024;

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

/** `2025-01-31T12:00:00.000Z INFO POST /cart 200 42ms user=user7`, the format agent.yaml's grok pattern reads. */
function writeLog(lines: string[]): void {
  if (LOG_FILE === null) return;
  try {
    if ((statSync(LOG_FILE, { throwIfNoEntry: false })?.size ?? 0) > LOG_MAX_BYTES) renameSync(LOG_FILE, `${LOG_FILE}.1`);
    appendFileSync(LOG_FILE, lines.join(''));
  } catch (err) {
    console.error(`log: ${(err as Error).message}`);
  }
}

async function beat(): Promise<void> {
  tick++;
  const lines: string[] = [];
  const logLines: string[] = [];
  for (const endpoint of ENDPOINTS) {
    const failed = Math.random() < 0.02;
    const ms = latencyMs();
    const user = `user${Math.floor(Math.random() * 500)}`;
    logLines.push(`${new Date().toISOString()} ${failed ? 'ERROR' : 'INFO'} POST ${endpoint} ${failed ? 500 : 200} ${ms}ms user=${user}\n`);
    lines.push(`shop.checkout.requests:1|c|#endpoint:${endpoint},status:${failed ? 500 : 200}`);
    lines.push(`shop.checkout.latency:${ms}|ms|#endpoint:${endpoint}`);
    if (endpoint === '/checkout') await sendTrace(endpoint, ms, failed);
  }
  lines.push(`shop.cart.items:${1 + Math.floor(Math.random() * 8)}|h`);
  lines.push(`shop.queue.depth:${Math.round(50 + 40 * Math.sin(tick / 30))}|g`);
  lines.push(`shop.users:user${Math.floor(Math.random() * 500)}|s`);
  lines.push(`_sc|shop.payment_gateway|${tick % 300 < 280 ? 0 : 2}|#env:demo`);
  send(lines);
  writeLog(logLines);
}

setInterval(() => void beat(), 1000);
console.log(`demo app: statsd to ${STATSD_HOST}:${STATSD_PORT}, spans to ${ZIPKIN_URL}`);
