/**
 * The applications of bench/forward.ts: Zipkin v2 span posts to the agent's receiver (flat out
 * from a pool of bodies, or paced with a unique span id per span so their arrival can be checked
 * one by one) and statsd counters over UDP at a fixed rate with known totals.
 */
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { IdSet } from './standin.ts';

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

const TAGS = '"tags":{"http.request.method":"GET","http.route":"/api/orders/{id}","db.system":"postgresql","net.peer.name":"db-1","app.shard":"';

/**
 * One request body: `count` spans (~450 bytes each, the shape of bench/traces.ts) of one trace,
 * a SERVER span and CLIENT children, span ids firstId … firstId+count-1.
 */
export function spanBody(trace: number, firstId: number, count: number, nowMicros: number): Buffer {
  const traceId = hex(0x10000 + trace, 32);
  const root = hex(firstId, 16);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    const server = i === 0;
    parts.push(
      `{"traceId":"${traceId}","id":"${server ? root : hex(firstId + i, 16)}",${server ? '' : `"parentId":"${root}",`}` +
        `"name":"${server ? 'GET /api/orders/{id}' : `SELECT orders ${i % 5}`}","kind":"${server ? 'SERVER' : 'CLIENT'}",` +
        `"timestamp":${nowMicros + i * 10},"duration":${150 + ((i * 7919) % 5000)},` +
        `"localEndpoint":{"serviceName":"svc-${trace % 4}","ipv4":"10.0.0.12","port":8080},${TAGS}${i % 16}","otel.library.name":"bench"}}`,
    );
  }
  return Buffer.from(`[${parts.join(',')}]`);
}

export interface SpanLoadOptions {
  url: string;
  concurrency: number;
  spansPerRequest: number;
  /** Spans per second; 0: flat out from a pool of 64 bodies (ids repeat). */
  rate: number;
  /**
   * Paced mode: requests due but not yet sent that the application keeps; beyond that it drops
   * the oldest due ones (a Zipkin reporter's bounded queue), counted in `skippedSpans`.
   */
  maxBacklogRequests: number;
}

/**
 * Posts spans to the agent. A 429 is retried with the same body after 20 ms, as a reporter does
 * after backing off; a span counts as sent when its request was answered 202. In paced mode
 * `accepted` holds the id of every span the agent took.
 */
export class SpanLoad {
  acceptedSpans = 0;
  refusedRequests = 0;
  skippedSpans = 0;
  /** Paced mode: ids of the spans answered 202. */
  readonly accepted = new IdSet();
  private readonly o: SpanLoadOptions;
  private readonly dispatcher: Agent;
  private readonly pool: Buffer[] = [];
  private running = true;
  private readonly workers: Promise<void>[];
  private readonly t0 = performance.now();
  private issued = 0;
  private nextId = 1;
  private failure: unknown = null;

  constructor(o: SpanLoadOptions) {
    this.o = o;
    this.dispatcher = new Agent({ connections: o.concurrency, keepAliveTimeout: 30_000 });
    if (o.rate === 0) {
      const now = Date.now() * 1000;
      for (let b = 0; b < 64; b++) this.pool.push(spanBody(b, 1 + b * o.spansPerRequest, o.spansPerRequest, now));
    }
    this.workers = Array.from({ length: o.concurrency }, (_, k) =>
      this.worker(k).catch((err: unknown) => {
        this.failure ??= err;
        this.running = false;
      }),
    );
  }

  /** Paced mode: requests that are due and not yet answered 202 (the application's backlog). */
  get backlogRequests(): number {
    if (this.o.rate === 0) return 0;
    this.dropOverflow(this.due());
    return Math.max(0, this.due() - this.issued) + this.inFlight;
  }

  /** Drops the due requests beyond the application's backlog, oldest first. */
  private dropOverflow(due: number): void {
    if (due - this.issued > this.o.maxBacklogRequests) {
      this.skippedSpans += (due - this.issued - this.o.maxBacklogRequests) * this.o.spansPerRequest;
      this.issued = due - this.o.maxBacklogRequests;
    }
  }

  private inFlight = 0;

  private due(): number {
    return Math.floor((((performance.now() - this.t0) / 1000) * this.o.rate) / this.o.spansPerRequest);
  }

  /** The next body to send, or null when stopping; paced mode waits until one is due. */
  private async next(k: number, round: number): Promise<{ body: Buffer; firstId: number } | null> {
    if (this.o.rate === 0) return this.running ? { body: this.pool[(k + round * this.o.concurrency) % this.pool.length], firstId: 0 } : null;
    for (;;) {
      if (!this.running) return null;
      const due = this.due();
      this.dropOverflow(due);
      if (this.issued < due) break;
      const nextDueMs = (((this.issued + 1) * this.o.spansPerRequest) / this.o.rate) * 1000 - (performance.now() - this.t0);
      await sleep(Math.max(1, Math.min(50, nextDueMs)));
    }
    const trace = this.issued++;
    const firstId = this.nextId;
    this.nextId += this.o.spansPerRequest;
    return { body: spanBody(trace, firstId, this.o.spansPerRequest, Date.now() * 1000), firstId };
  }

  private async worker(k: number): Promise<void> {
    for (let round = 0; ; round++) {
      const item = await this.next(k, round);
      if (item === null) return;
      this.inFlight++;
      try {
        for (;;) {
          if (!this.running) return; // never answered 202: not sent
          const res = await request(this.o.url, { method: 'POST', body: item.body, headers: { 'content-type': 'application/json' }, dispatcher: this.dispatcher });
          await res.body.dump();
          if (res.statusCode === 202) {
            this.acceptedSpans += this.o.spansPerRequest;
            if (this.o.rate !== 0) this.accepted.addRange(item.firstId, this.o.spansPerRequest);
            break;
          }
          if (res.statusCode !== 429) throw new Error(`the agent's Zipkin receiver answered ${res.statusCode}`);
          this.refusedRequests++;
          await sleep(20);
        }
      } finally {
        this.inFlight--;
      }
    }
  }

  /** Throws what stopped a client, if anything did. */
  check(): void {
    if (this.failure !== null) throw this.failure;
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
    await this.dispatcher.close();
    this.check();
  }
}

/** The counter the statsd load sends, as statsd names it and as the collector exposes it. */
export const COUNTER_NAME = 'fwdbench.count';
export const COUNTER_EXPOSED = 'fwdbench_count_total';

/**
 * statsd counter lines at `rate` lines/s over `series` series (tag `s:<n>`), values 1…9, in
 * datagrams of at most 1400 bytes, sent every 10 ms on an absolute schedule. `valueSum` is the
 * exact total the collector should expose once every line is delivered.
 */
export class StatsdLoad {
  lines = 0;
  datagrams = 0;
  valueSum = 0;
  private readonly socket = dgram.createSocket('udp4');
  private readonly timer: NodeJS.Timeout;
  private readonly t0 = performance.now();
  private sending = false;
  private failure: unknown = null;

  private readonly port: number;
  private readonly rate: number;
  private readonly series: number;

  constructor(port: number, rate: number, series: number) {
    this.port = port;
    this.rate = rate;
    this.series = series;
    this.timer = setInterval(() => void this.tick(), 10);
  }

  private async tick(): Promise<void> {
    if (this.sending) return;
    this.sending = true;
    try {
      const due = Math.floor(((performance.now() - this.t0) / 1000) * this.rate);
      let datagram = '';
      while (this.lines < due) {
        const n = this.lines;
        const value = 1 + (n % 9);
        const line = `${COUNTER_NAME}:${value}|c|#s:${n % this.series}`;
        if (datagram.length + line.length + 1 > 1400) {
          await this.send(datagram);
          datagram = '';
        }
        datagram = datagram.length === 0 ? line : `${datagram}\n${line}`;
        this.lines++;
        this.valueSum += value;
      }
      if (datagram.length > 0) await this.send(datagram);
    } catch (err) {
      this.failure ??= err;
    } finally {
      this.sending = false;
    }
  }

  private send(text: string): Promise<void> {
    this.datagrams++;
    return new Promise((resolve, reject) => this.socket.send(text, this.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.sending) await sleep(5);
    this.socket.close();
    if (this.failure !== null) throw this.failure;
  }
}
