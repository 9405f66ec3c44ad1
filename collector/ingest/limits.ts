/**
 * Ingest limits (collector.limits): per-metric label limits and the per-agent share of a batch
 * are enforced by the metric store; the memory guard here turns POST /v1/* away with 429 while
 * the V8 heap is above maxHeapBytes, so a flood of agents cannot push the collector out of memory.
 */
import { getHeapStatistics } from 'node:v8';
import { Type, type StaticDecode } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Gauge } from 'prom-client';
import { Duration, Section, Size } from '../../shared/config.ts';
import type { Logger } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';

export const LimitsSchema = Section(
  {
    maxSeriesPerAgent: Type.Integer({ minimum: 1, default: 100_000, description: 'Metrics of one agent batch (its series of one interval) beyond this many are refused one by one; the rest apply.' }),
    maxLabels: Type.Integer({ minimum: 0, default: 32, description: 'A metric with more tags (labels) than this is refused; the rest of its batch applies.' }),
    maxLabelLength: Type.Integer({ minimum: 1, default: 1024, description: 'A metric with a label name or value longer than this is refused.' }),
    maxHeapBytes: Type.Optional(Size(undefined, { description: 'While the V8 heap in use is above this, POST /v1/* answers 429. Default: 80% of the heap limit (--max-old-space-size).' })),
    maxBodyBytesInFlight: Size('256mb', { description: 'Request bodies held in memory at once across all requests, measured after decompression; a body that would pass it gets 429 + Retry-After. Bounds what concurrent gzip bodies inflate to.' }),
    retryAfter: Duration('1s', { description: 'Retry-After sent with those 429s.' }),
  },
  { description: 'What one agent and the collector as a whole may take; every refusal is counted with its reason.' },
);

export type LimitsConfig = StaticDecode<typeof LimitsSchema>;

const INGEST_PREFIX = '/v1/';
const SAMPLE_MS = 500;

/** 80% of the heap limit: room for the request in hand and a scrape while ingest pauses. */
export function defaultMaxHeapBytes(): number {
  return Math.floor(getHeapStatistics().heap_size_limit * 0.8);
}

/**
 * Samples the heap in use every SAMPLE_MS (never per request) and, while it is above the limit,
 * answers POST /v1/* with 429 + Retry-After before the body is read.
 */
export class HeapGuard {
  readonly maxHeapBytes: number;
  private readonly retryAfterSeconds: string;
  private readonly log: Logger;
  private readonly overloadedGauge: Gauge;
  private overloaded = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(limits: LimitsConfig, telemetry: Telemetry, log: Logger) {
    this.maxHeapBytes = limits.maxHeapBytes ?? defaultMaxHeapBytes();
    this.retryAfterSeconds = String(Math.max(1, Math.ceil(limits.retryAfter / 1000)));
    this.log = log;
    this.overloadedGauge = telemetry.gauge('plumb_ingest_overloaded', '1 while the heap in use is above collector.limits.maxHeapBytes and ingest answers 429.');
    this.overloadedGauge.set(0);
  }

  get isOverloaded(): boolean {
    return this.overloaded;
  }

  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Adds the hook; ingest routes are POSTs under /v1/. */
  install(app: FastifyInstance): void {
    app.addHook('onRequest', async (request, reply) => {
      if (!this.overloaded || request.method !== 'POST' || !request.url.startsWith(INGEST_PREFIX)) return;
      return reply
        .code(429)
        .header('retry-after', this.retryAfterSeconds)
        .send({ error: 'PLUMB_ERR_INGEST_OVERLOADED', message: `the collector's heap is above collector.limits.maxHeapBytes (${this.maxHeapBytes} bytes); retry later` });
    });
  }

  private sample(): void {
    const used = getHeapStatistics().used_heap_size;
    const over = used > this.maxHeapBytes;
    if (over === this.overloaded) return;
    this.overloaded = over;
    this.overloadedGauge.set(over ? 1 : 0);
    if (over) this.log.warn({ heapUsed: used, maxHeapBytes: this.maxHeapBytes }, 'heap above collector.limits.maxHeapBytes: ingest answers 429 until it drops');
    else this.log.info({ heapUsed: used, maxHeapBytes: this.maxHeapBytes }, 'heap back under collector.limits.maxHeapBytes: ingest resumes');
  }
}
