/**
 * The collector's HTTP door, shared by every ingest route: gzip request bodies (with the body
 * limit applied after decompression, so a small bomb cannot expand past it), the bound on body
 * bytes held across all requests at once (BodyBudget: over it, 429 + Retry-After), and one error
 * shape for every refusal: `{ "error": "<code>", "message": "<what and where>" }`.
 */
import { createGunzip } from 'node:zlib';
import { Transform, type TransformCallback } from 'node:stream';
import type { FastifyInstance, FastifyError } from 'fastify';
import type { Telemetry } from '../../shared/telemetry.ts';
import type { BodyBudget } from '../../shared/http-limits.ts';

/** The 429 a body gets when the bytes in flight would pass collector.limits.maxBodyBytesInFlight. */
function overBudget(budget: BodyBudget): FastifyError {
  const err = new Error(`request bodies in memory would pass collector.limits.maxBodyBytesInFlight (${budget.maxBytes} bytes, after decompression); retry later`) as FastifyError;
  err.statusCode = 429;
  err.code = 'PLUMB_ERR_INGEST_OVERLOADED';
  return err;
}

/**
 * Passes body chunks on while they fit the budget; fails the body with a 429 once one does not.
 * What it took is given back when the answer has been sent (the parsed body lives until then).
 */
class BudgetMeter extends Transform {
  /** Bytes as received on the wire (fastify compares them with Content-Length and bodyLimit). */
  receivedEncodedLength = 0;
  taken = 0;
  private readonly budget: BodyBudget;

  constructor(budget: BodyBudget) {
    super();
    this.budget = budget;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.budget.take(chunk.length)) {
      callback(overBudget(this.budget));
      return;
    }
    this.taken += chunk.length;
    callback(null, chunk);
  }
}

/**
 * Output chunks of 256 KiB for a gzip body above 8 KiB: an agent's log batch inflates to about
 * a megabyte, and at zlib's default 16 KiB each chunk costs a round trip to the thread pool and
 * a pass through the streams; the 256 KiB chunks took less than half the CPU a line. Small
 * bodies keep the default (the output buffer is allocated per body).
 */
const LARGE_BODY_CHUNK_BYTES = 256 * 1024;
const LARGE_BODY_MIN_BYTES = 8 * 1024;

function gunzipOptions(contentLength: string | undefined): { chunkSize?: number } {
  return contentLength !== undefined && Number(contentLength) > LARGE_BODY_MIN_BYTES ? { chunkSize: LARGE_BODY_CHUNK_BYTES } : {};
}

export function installBodyHandling(app: FastifyInstance, telemetry: Telemetry, budget: BodyBudget, retryAfterMs: number): void {
  const retryAfter = String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
  // Every refusal, whoever answered it (auth, the heap guard, a route, the error handler below),
  // is counted here once. The probe and scrape paths are not ingest: a 503 from /readyz is not.
  const rejected = telemetry.counter('plumb_ingest_rejected_total', 'requests the collector refused, by HTTP status', ['status']);
  // at 0 from the start, so an alert on increase() sees the first refusal
  for (const status of ['400', '401', '413', '415', '429', '503']) rejected.inc({ status }, 0);
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode < 400) return;
    const path = request.url.split('?', 1)[0];
    if (path === '/readyz' || path === '/healthz' || path === '/metrics') return;
    rejected.inc({ status: String(reply.statusCode) });
  });
  // Every body the collector takes is JSON or NDJSON; without this, fastify's built-in text
  // parser would let a text/plain body through to schema validation (a 400 instead of a 415).
  app.removeContentTypeParser('text/plain');
  app.addHook('preParsing', async (request, reply, payload) => {
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity' && encoding !== 'gzip') {
      const err = new Error(`unsupported Content-Encoding "${encoding}" (use gzip or none)`) as FastifyError;
      err.statusCode = 415;
      err.code = 'PLUMB_ERR_INGEST_BODY';
      throw err;
    }
    if (request.method === 'GET' || request.method === 'HEAD') return payload;
    // refuse before reading a byte when the budget is spent already
    if (budget.full) {
      budget.countRefusal();
      // read the body to its end so the 429 reaches a client still sending it (not a reset)
      payload.resume();
      throw overBudget(budget);
    }
    const meter = new BudgetMeter(budget);
    meter.once('error', () => {
      payload.unpipe();
      payload.resume();
    });
    reply.raw.once('close', () => budget.give(meter.taken));
    payload.on('data', (chunk: Buffer) => {
      meter.receivedEncodedLength += chunk.length;
    });
    if (encoding === 'gzip') {
      const gunzip = createGunzip(gunzipOptions(request.headers['content-length']));
      payload.on('error', (err) => gunzip.destroy(err));
      gunzip.on('error', (err) => meter.destroy(err));
      payload.pipe(gunzip).pipe(meter);
    } else {
      payload.on('error', (err) => meter.destroy(err));
      payload.pipe(meter);
    }
    return meter;
  });

  app.setErrorHandler((err: FastifyError & { validationContext?: string }, request, reply) => {
    let status = err.statusCode ?? 500;
    let code = 'PLUMB_ERR_INGEST_BODY';
    let message = err.message;
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      code = 'PLUMB_ERR_INGEST_TOO_LARGE';
      message = `request body is larger than the collector's limit (collector.maxBodyBytes)`;
    } else if (err.validation) {
      status = 400;
      message = `invalid ${err.validationContext ?? 'body'}: ${err.message}`;
    } else if ((err as { code?: string }).code === 'Z_DATA_ERROR' || (err as { code?: string }).code === 'Z_BUF_ERROR') {
      status = 400;
      message = 'the body is not valid gzip';
    } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      status = 415;
    } else if (err.code === 'PLUMB_ERR_INGEST_OVERLOADED') {
      code = err.code;
      void reply.header('retry-after', retryAfter);
    } else if (status >= 500) {
      request.log.error({ err }, 'request failed');
      code = 'PLUMB_ERR_INTERNAL';
      message = 'internal error';
    }
    void reply.code(status).send({ error: code, message });
  });
}
