/**
 * The receiving ends of bench/forward.ts, counting exactly:
 * - a stand-in collector that answers the agent's batches 200 after reading them: it counts each
 *   batch id once (a replay is counted as a duplicate, not again), the compressed bytes, and the
 *   spans of trace batches (gunzipped, counted by their "traceId" keys);
 * - a Zipkin stand-in behind the real collector that marks each span id it receives, so a run can
 *   say which spans the agent accepted and never arrived, and which arrived twice.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** A growable bitmap of small positive integers. */
export class IdSet {
  private bits = new Uint8Array(1 << 20);
  size = 0;

  /** Adds `id`; false when it was already there. */
  add(id: number): boolean {
    const byte = id >>> 3;
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(this.bits.length * 2, byte + 1));
      grown.set(this.bits);
      this.bits = grown;
    }
    const mask = 1 << (id & 7);
    if ((this.bits[byte] & mask) !== 0) return false;
    this.bits[byte] |= mask;
    this.size++;
    return true;
  }

  addRange(first: number, count: number): void {
    for (let i = 0; i < count; i++) this.add(first + i);
  }

  has(id: number): boolean {
    const byte = id >>> 3;
    return byte < this.bits.length && (this.bits[byte] & (1 << (id & 7))) !== 0;
  }

  /** Ids in this set that `other` lacks. */
  missingFrom(other: IdSet): number {
    let n = 0;
    for (let byte = 0; byte < this.bits.length; byte++) {
      const b = this.bits[byte];
      if (b === 0) continue;
      for (let bit = 0; bit < 8; bit++) if ((b & (1 << bit)) !== 0 && !other.has(byte * 8 + bit)) n++;
    }
    return n;
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

const TRACE_ID_KEY = Buffer.from('"traceId":');

function countSpans(json: Buffer): number {
  let n = 0;
  for (let at = json.indexOf(TRACE_ID_KEY); at !== -1; at = json.indexOf(TRACE_ID_KEY, at + TRACE_ID_KEY.length)) n++;
  return n;
}

export interface StandInCounts {
  /** Distinct batch ids acknowledged. */
  batches: number;
  /** Requests whose batch id had been acknowledged before (replays). */
  duplicates: number;
  /** Request bodies as sent (gzip), distinct batches only. */
  bodyBytes: number;
  /** Spans in distinct trace batches. */
  spans: number;
  metricBatches: number;
}

export interface StandInCollector {
  url: string;
  counts: StandInCounts;
  stop(): Promise<void>;
}

/** Answers GET /readyz and every POST with 200 once the body is read; see the file header. */
export async function startStandInCollector(): Promise<StandInCollector> {
  const counts: StandInCounts = { batches: 0, duplicates: 0, bodyBytes: 0, spans: 0, metricBatches: 0 };
  const seen = new Set<string>();
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}');
      return;
    }
    readBody(req)
      .then((raw) => {
        const id = String(req.headers['x-plumb-batch-id'] ?? '');
        if (seen.has(id)) counts.duplicates++;
        else {
          seen.add(id);
          counts.batches++;
          counts.bodyBytes += raw.length;
          if (req.url === '/v1/traces') counts.spans += countSpans(req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw);
          else if (req.url === '/v1/metrics') counts.metricBatches++;
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"accepted":true}');
      })
      .catch(() => res.destroy());
  });
  server.keepAliveTimeout = 60_000;
  const url = await listen(server);
  return { url, counts, stop: () => close(server) };
}

export interface ZipkinCounter {
  url: string;
  /** Span ids received (each once). */
  readonly received: IdSet;
  /** Spans received again after their first arrival. */
  duplicates: number;
  /** Spans whose id is not one the load generator makes (none expected). */
  foreign: number;
  /** Requests that could not be read as a JSON array of spans (answered 400). */
  badRequests: number;
  stop(): Promise<void>;
}

/** Takes POST /api/v2/spans (JSON array, gzip or not), marks every span id, answers 202. */
export async function startZipkinCounter(): Promise<ZipkinCounter> {
  const state = { received: new IdSet(), duplicates: 0, foreign: 0, badRequests: 0 };
  const server = createServer((req, res) => {
    readBody(req)
      .then((raw) => {
        const json = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        for (const span of JSON.parse(json.toString('utf8')) as { id?: string }[]) {
          const id = typeof span.id === 'string' && /^[0-9a-f]{16}$/.test(span.id) ? parseInt(span.id, 16) : NaN;
          if (!Number.isSafeInteger(id) || id <= 0 || id > 2 ** 32) state.foreign++;
          else if (!state.received.add(id)) state.duplicates++;
        }
        res.writeHead(202).end();
      })
      .catch(() => {
        state.badRequests++;
        res.writeHead(400).end();
      });
  });
  const url = await listen(server);
  return {
    url,
    get received() {
      return state.received;
    },
    get duplicates() {
      return state.duplicates;
    },
    get foreign() {
      return state.foreign;
    },
    get badRequests() {
      return state.badRequests;
    },
    stop: () => close(server),
  };
}
