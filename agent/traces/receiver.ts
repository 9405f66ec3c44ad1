/**
 * The agent's Zipkin v2 endpoint: `POST /api/v2/spans` with a JSON array of spans, optionally
 * gzip-compressed, exactly what Zipkin reporters and OpenTelemetry's Zipkin exporter send.
 *
 * Answers:
 * - 202, empty body: accepted (as Zipkin answers), an empty body or `[]` included. A span that
 *   cannot be used is left out and counted (plumb_traces_spans_dropped_total{reason}); the
 *   others in the same request are kept.
 * - 400: the body is not a JSON list of spans, or no span in it can be used; the text says what
 *   and where (`spans[3].traceId: …`).
 * - 413: the body (after decompression) is larger than maxBodyBytes.
 * - 415: protobuf or thrift bodies, or a Content-Encoding other than gzip.
 * - 429 + Retry-After: the span batcher is full, the request bodies held at once would pass
 *   maxBodyBytesInFlight, or maxConcurrentRequests are in progress. 429 rather than 503 because the receiver is
 *   healthy and the condition clears as soon as the forwarder catches up; clients that retry
 *   (and proxies) read 429 as "slow down", 503 as "this instance is down".
 */
import { createGunzip } from 'node:zlib';
import { Type, type StaticDecode } from '@sinclair/typebox';
import { fastify, LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyError } from 'fastify';
import type { Counter } from 'prom-client';
import { LISTEN_PATTERN, formatAddress, parseListen } from '../../shared/address.ts';
import { Section, Size, Duration } from '../../shared/config.ts';
import { BodyBudget, HttpLimitsProperties, httpServerOptions, installHttpLimits } from '../../shared/http-limits.ts';
import { PlumbError, errorMessage, type ErrorCode } from '../../shared/errors.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { decodeSpans, stripBom, ZIPKIN_SPANS_PATH, type SpanLimits, type ZipkinSpan } from '../../shared/zipkin.ts';


export const ZipkinReceiverSchema = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'Run the Zipkin v2 span receiver.' }),
    listen: Type.String({
      default: '127.0.0.1:9411',
      pattern: LISTEN_PATTERN,
      errorMessage: 'host:port, like "127.0.0.1:9411", "0.0.0.0:9411" or "[::1]:9411"',
      description: 'Address the Zipkin receiver listens on.',
    }),
    maxBodyBytes: Size('5mb', { description: 'Largest request body, measured after gzip decompression; larger bodies get 413.' }),
    maxSpansPerRequest: Type.Integer({ minimum: 1, default: 50_000, description: 'Most spans one request may carry; more get 400.' }),
    maxBodyBytesInFlight: Size('16mb', { description: 'Request bodies held in memory at once across all requests, after decompression; a body that would pass it gets 429 + Retry-After.' }),
    ...HttpLimitsProperties,
    retryAfter: Duration('1s', { description: 'Retry-After sent with 429 when the span queue is full or a server limit is reached.' }),
  },
  { description: 'Zipkin v2 span receiver (POST /api/v2/spans).' },
);

export type ZipkinReceiverConfig = StaticDecode<typeof ZipkinReceiverSchema>;

/** Takes accepted spans; false means "full, try later" and the client gets 429. */
export type SpanConsumer = (spans: ZipkinSpan[]) => boolean;

export interface ReceiverContext {
  telemetry: Telemetry;
  log: Logger;
}

export interface ZipkinReceiver {
  /** host:port actually bound (the port is real even when the config said 0). */
  address: string;
  port: number;
  /** Stops accepting, lets in-flight requests finish, closes the socket. */
  stop(): Promise<void>;
}

type Outcome = 'accepted' | 'invalid' | 'too_large' | 'unsupported' | 'refused';

interface ReceiverMetrics {
  requests: Counter<'outcome'>;
  spans: Counter;
  invalid: Counter<'reason'>;
  droppedSpans: Counter<'reason'>;
  refusedSpans: Counter;
}

function receiverMetrics(telemetry: Telemetry): ReceiverMetrics {
  return {
    requests: telemetry.counter('plumb_traces_requests_total', 'Zipkin span requests by outcome (accepted, invalid, too_large, unsupported, refused).', ['outcome']),
    spans: telemetry.counter('plumb_traces_spans_received_total', 'Spans accepted by the Zipkin receiver.'),
    invalid: telemetry.counter('plumb_traces_invalid_total', 'Zipkin span requests refused as invalid, by reason.', ['reason']),
    droppedSpans: telemetry.counter('plumb_traces_spans_dropped_total', 'Spans left out of an otherwise accepted request because they could not be used, by reason.', ['reason']),
    refusedSpans: telemetry.counter('plumb_traces_spans_refused_total', 'Spans answered with 429 because the span queue was full.'),
  };
}

export interface ZipkinRoutesOptions {
  config: ZipkinReceiverConfig;
  ctx: ReceiverContext;
  onSpans: SpanConsumer;
  budget: BodyBudget;
}

/**
 * Registers the Zipkin routes on an encapsulated fastify scope (its body parser takes every
 * content type as raw bytes, so register it as a child plugin, not on a shared scope).
 */
export async function zipkinReceiverPlugin(app: FastifyInstance, options: ZipkinRoutesOptions): Promise<void> {
  const handler = new SpansHandler(options.config, options.ctx, options.onSpans, options.budget);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: options.config.maxBodyBytes }, passBuffer);
  app.setErrorHandler((err: FastifyError, req, reply) => handler.frameworkError(err, req, reply));
  app.post(ZIPKIN_SPANS_PATH, (req, reply) => handler.handle(req, reply));
}

function passBuffer(_req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void): void {
  done(null, body);
}

/** Runs the receiver on its own port. Throws PLUMB_ERR_LISTEN when the address cannot be bound. */
export async function startZipkinReceiver(config: ZipkinReceiverConfig, ctx: ReceiverContext, onSpans: SpanConsumer): Promise<ZipkinReceiver> {
  const { host, port } = parseListen(config.listen);
  const app = fastify({
    loggerInstance: ctx.log.child({ component: 'zipkin-receiver' }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.maxBodyBytes,
    forceCloseConnections: 'idle',
    ...httpServerOptions(config),
  });
  installHttpLimits(app as unknown as FastifyInstance, config, ctx.telemetry, 'zipkin');
  const budget = new BodyBudget(config.maxBodyBytesInFlight, ctx.telemetry, 'zipkin');
  await app.register(zipkinReceiverPlugin, { config, ctx, onSpans, budget });
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw new PlumbError('PLUMB_ERR_LISTEN', `agent.traces.zipkin.listen: cannot listen on ${config.listen} (${errorMessage(err)}); choose a free port or stop the process using it`, { cause: err });
  }
  const bound = app.server.address();
  const boundPort = typeof bound === 'object' && bound !== null ? bound.port : port;
  const boundHost = typeof bound === 'object' && bound !== null ? bound.address : host;
  ctx.log.info({ listen: formatAddress(boundHost, boundPort) }, 'zipkin receiver listening');
  return {
    address: formatAddress(boundHost, boundPort),
    port: boundPort,
    stop: () => app.close(),
  };
}

class SpansHandler {
  private readonly config: ZipkinReceiverConfig;
  private readonly onSpans: SpanConsumer;
  private readonly metrics: ReceiverMetrics;
  private readonly logOnce: LogOnce;
  private readonly limits: SpanLimits;
  private readonly retryAfterSeconds: string;
  private readonly budget: BodyBudget;

  constructor(config: ZipkinReceiverConfig, ctx: ReceiverContext, onSpans: SpanConsumer, budget: BodyBudget) {
    this.config = config;
    this.budget = budget;
    this.onSpans = onSpans;
    this.metrics = receiverMetrics(ctx.telemetry);
    this.logOnce = new LogOnce(ctx.log.child({ component: 'zipkin-receiver' }));
    this.limits = { maxSpans: config.maxSpansPerRequest };
    this.retryAfterSeconds = String(Math.max(1, Math.ceil(config.retryAfter / 1000)));
  }

  async handle(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const type = mediaType(req.headers['content-type']);
    if (type === 'application/x-protobuf' || type === 'application/protobuf' || type === 'application/x-thrift') {
      return this.refuse(req, reply, 415, 'unsupported', 'media_type', `Content-Type ${type} is not supported: send Zipkin v2 JSON (application/json)`);
    }
    const encoding = (headerValue(req.headers['content-encoding']) ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity' && encoding !== 'gzip' && encoding !== 'x-gzip') {
      return this.refuse(req, reply, 415, 'unsupported', 'encoding', `Content-Encoding ${encoding} is not supported: send gzip or uncompressed JSON`);
    }
    let raw = req.body instanceof Buffer ? req.body : undefined;
    // An empty body is an empty list, as Zipkin answers it.
    if (raw === undefined || raw.length === 0) return this.accept(reply, 0);
    // the body in hand, and what it inflates to, count against the bytes all requests may hold
    const held = { bytes: 0 };
    reply.raw.once('close', () => this.budget.give(held.bytes));
    if (!this.budget.take(raw.length)) return this.overBudget(req, reply);
    held.bytes = raw.length;
    if (encoding !== 'identity') {
      try {
        raw = await inflate(raw, this.config.maxBodyBytes, this.budget, held);
      } catch (err) {
        if (err === TOO_LARGE) {
          return this.refuse(req, reply, 413, 'too_large', 'too_large', `body is larger than ${this.config.maxBodyBytes} bytes once decompressed; send smaller batches`);
        }
        if (err === OVER_BUDGET) return this.overBudget(req, reply);
        return this.refuse(req, reply, 400, 'invalid', 'bad_gzip', `body is not valid gzip (${errorMessage(err)})`);
      }
      if (raw.length === 0) return this.accept(reply, 0);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(stripBom(raw).toString('utf8'));
    } catch (err) {
      return this.refuse(req, reply, 400, 'invalid', 'not_json', `body is not valid JSON (${errorMessage(err)})`);
    }
    const result = decodeSpans(parsed, this.limits);
    if ('error' in result) return this.refuse(req, reply, 400, 'invalid', result.reason, result.error);
    const { spans, dropped } = result;
    for (const d of dropped) this.metrics.droppedSpans.inc({ reason: d.reason });
    if (dropped.length > 0) {
      this.logOnce.warn(`zipkin-span:${dropped[0].reason}`, { remote: req.ip, dropped: dropped.length, kept: spans.length }, `zipkin receiver left out ${dropped.length} span(s) it cannot use: ${dropped[0].error}`);
      // nothing usable: the client hears why, as Zipkin would tell it
      if (spans.length === 0) return this.refuse(req, reply, 400, 'invalid', dropped[0].reason, dropped.length === 1 ? dropped[0].error : `${dropped[0].error} (and ${dropped.length - 1} more unusable spans)`);
    }
    if (spans.length > 0 && !this.onSpans(spans)) {
      this.metrics.refusedSpans.inc(spans.length);
      reply.header('retry-after', this.retryAfterSeconds);
      return this.refuse(req, reply, 429, 'refused', 'queue_full', 'span queue is full: retry later');
    }
    this.accept(reply, spans.length);
  }

  private overBudget(req: FastifyRequest, reply: FastifyReply): void {
    reply.header('retry-after', this.retryAfterSeconds);
    this.refuse(req, reply, 429, 'refused', 'body_bytes', `request bodies in memory would pass maxBodyBytesInFlight (${this.budget.maxBytes} bytes, after decompression); retry later`);
  }

  private accept(reply: FastifyReply, spans: number): void {
    this.metrics.requests.inc({ outcome: 'accepted' });
    this.metrics.spans.inc(spans);
    reply.code(202).send();
  }

  /** Errors fastify raises before our handler runs: body too large, bad Content-Length. */
  frameworkError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      this.refuse(req, reply, 413, 'too_large', 'too_large', `body is larger than ${this.config.maxBodyBytes} bytes; send smaller batches`);
      return;
    }
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      this.logOnce.warn('internal', { err: errorMessage(err) }, 'zipkin receiver failed on a request');
      reply.code(500).type('text/plain; charset=utf-8').send('internal error');
      return;
    }
    this.refuse(req, reply, status, 'invalid', 'http', errorMessage(err));
  }

  private refuse(req: FastifyRequest, reply: FastifyReply, status: number, outcome: Outcome, reason: string, message: string): void {
    this.metrics.requests.inc({ outcome });
    if (outcome === 'invalid') this.metrics.invalid.inc({ reason });
    if (outcome !== 'refused') {
      const code: ErrorCode = status === 413 ? 'PLUMB_ERR_INGEST_TOO_LARGE' : 'PLUMB_ERR_INGEST_BODY';
      this.logOnce.warn(`zipkin:${reason}`, { code, status, remote: req.ip, reason }, `zipkin receiver refused a request: ${message}`);
    }
    reply.code(status).type('text/plain; charset=utf-8').send(message);
  }
}

const TOO_LARGE = new Error('too large');
const OVER_BUDGET = new Error('over budget');

/**
 * Inflates a gzip body chunk by chunk, stopping at the per-request limit (TOO_LARGE) or as soon
 * as the bytes held by all requests would pass the budget (OVER_BUDGET); held.bytes tracks what
 * this request took, given back when its answer is sent.
 */
function inflate(raw: Buffer, maxBytes: number, budget: BodyBudget, held: { bytes: number }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const z = createGunzip();
    const chunks: Buffer[] = [];
    let total = 0;
    const fail = (err: Error): void => {
      z.destroy();
      reject(err);
    };
    z.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > maxBytes) return fail(TOO_LARGE);
      if (!budget.take(chunk.length)) return fail(OVER_BUDGET);
      held.bytes += chunk.length;
      chunks.push(chunk);
    });
    z.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, total)));
    z.on('error', reject);
    z.end(raw);
  });
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function mediaType(v: string | string[] | undefined): string {
  const s = headerValue(v);
  if (s === undefined) return '';
  const semi = s.indexOf(';');
  return (semi === -1 ? s : s.slice(0, semi)).trim().toLowerCase();
}
