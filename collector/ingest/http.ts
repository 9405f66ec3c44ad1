/**
 * The collector's HTTP door, shared by every ingest route: gzip request bodies (with the body
 * limit applied after decompression, so a small bomb cannot expand past it), and one error
 * shape for every refusal: `{ "error": "<code>", "message": "<what and where>" }`.
 */
import { createGunzip } from 'node:zlib';
import type { FastifyInstance, FastifyError } from 'fastify';
import type { Transform } from 'node:stream';
import type { Telemetry } from '../../shared/telemetry.ts';

export function installBodyHandling(app: FastifyInstance, telemetry: Telemetry): void {
  // Every refusal, whoever answered it (auth, the heap guard, a route, the error handler below),
  // is counted here once. The probe and scrape paths are not ingest: a 503 from /readyz is not.
  const rejected = telemetry.counter('plumb_ingest_rejected_total', 'requests the collector refused, by HTTP status', ['status']);
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode < 400) return;
    const path = request.url.split('?', 1)[0];
    if (path === '/readyz' || path === '/healthz' || path === '/metrics') return;
    rejected.inc({ status: String(reply.statusCode) });
  });
  // Every body the collector takes is JSON or NDJSON; without this, fastify's built-in text
  // parser would let a text/plain body through to schema validation (a 400 instead of a 415).
  app.removeContentTypeParser('text/plain');
  app.addHook('preParsing', async (request, _reply, payload) => {
    const encoding = request.headers['content-encoding'];
    if (encoding === undefined || encoding === 'identity') return payload;
    if (encoding !== 'gzip') {
      const err = new Error(`unsupported Content-Encoding "${encoding}" (use gzip or none)`) as FastifyError;
      err.statusCode = 415;
      err.code = 'PLUMB_ERR_INGEST_BODY';
      throw err;
    }
    const gunzip = createGunzip() as unknown as Transform & { receivedEncodedLength: number };
    gunzip.receivedEncodedLength = 0;
    payload.on('data', (chunk: Buffer) => {
      gunzip.receivedEncodedLength += chunk.length;
    });
    payload.on('error', (err) => gunzip.destroy(err));
    payload.pipe(gunzip);
    return gunzip;
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
    } else if (status >= 500) {
      request.log.error({ err }, 'request failed');
      code = 'PLUMB_ERR_INTERNAL';
      message = 'internal error';
    }
    void reply.code(status).send({ error: code, message });
  });
}
