/**
 * OTLP/HTTP (default port 4318): `POST /v1/traces`, `/v1/metrics`, `/v1/logs`, bodies
 * `application/x-protobuf` or `application/json`, optionally gzip. Answers as the OTLP
 * specification says, in the media type of the request:
 * - 200 with an Export…ServiceResponse: empty, or partial_success with the count of rejected
 *   items and the first reason;
 * - 400 + google.rpc.Status: the body cannot be decoded (not retryable);
 * - 413: larger than maxBodyBytes after decompression; 415: another media type or encoding;
 * - 429 (a queue is full) or 503 (cannot be made durable now), both with Retry-After.
 * Timeouts, connection limits, auth and TLS come from the role, as its other doors have them
 * (`serverOptions`, `configure`); the agent's door is bound to loopback by default and has no auth.
 */
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { fastify, LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { formatAddress, parseListen } from '../address.ts';
import { PlumbError, errorMessage } from '../errors.ts';
import { LogOnce, type Logger } from '../log.ts';
import type { OtlpConfig } from './config.ts';
import { encodeResponse, encodeStatus, GRPC_CODE, OTLP_PATHS, type Signal } from './codec.ts';
import type { OtlpIntake } from './intake.ts';

const gunzipAsync = promisify(gunzip);

export interface OtlpServer {
  address: string;
  port: number;
  stop(): Promise<void>;
}

export interface OtlpHttpOptions {
  config: OtlpConfig;
  intake: OtlpIntake;
  log: Logger;
  /** Config key of the section, for error messages (agent.otlp, collector.otlp). */
  at: string;
  /** Options for Fastify(): the role's server timeouts and TLS (shared/http-limits.ts httpServerOptions). */
  serverOptions?: Record<string, unknown>;
  /** Installs hooks before the routes (the collector's credential check and heap guard). */
  configure?: (app: FastifyInstance) => void;
}

/** Registers the three routes on an encapsulated scope (its body parser takes every type as bytes). */
export async function otlpHttpPlugin(app: FastifyInstance, options: { config: OtlpConfig; intake: OtlpIntake; log: Logger }): Promise<void> {
  const handler = new OtlpHttpHandler(options.config, options.intake, options.log);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: options.config.maxBodyBytes }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: FastifyError, req, reply) => handler.frameworkError(err, req, reply));
  for (const signal of ['traces', 'metrics', 'logs'] as const) app.post(OTLP_PATHS[signal], (req, reply) => handler.handle(signal, req, reply));
}

export async function startOtlpHttp(options: OtlpHttpOptions): Promise<OtlpServer> {
  const { config, log } = options;
  const { host, port } = parseListen(config.http.listen);
  const app = fastify({
    loggerInstance: log.child({ component: 'otlp-http' }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.maxBodyBytes,
    forceCloseConnections: 'idle',
    ...(options.serverOptions ?? {}),
  }) as unknown as FastifyInstance;
  options.configure?.(app);
  await app.register(otlpHttpPlugin, { config, intake: options.intake, log });
  try {
    await app.listen({ host, port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw new PlumbError('PLUMB_ERR_LISTEN', `${options.at}.http.listen: cannot listen on ${config.http.listen} (${errorMessage(err)}); choose a free port or stop the process using it`, { cause: err });
  }
  const a = app.server.address() as { address: string; port: number };
  const address = formatAddress(a.address, a.port);
  log.info({ listen: address }, 'OTLP/HTTP receiver listening');
  return { address, port: a.port, stop: () => app.close() };
}

function signalOf(url: string): Signal {
  const path = url.split('?', 1)[0];
  return path === OTLP_PATHS.metrics ? 'metrics' : path === OTLP_PATHS.logs ? 'logs' : 'traces';
}

class OtlpHttpHandler {
  private readonly config: OtlpConfig;
  private readonly intake: OtlpIntake;
  private readonly once: LogOnce;
  private readonly retryAfter: string;

  constructor(config: OtlpConfig, intake: OtlpIntake, log: Logger) {
    this.config = config;
    this.intake = intake;
    this.once = new LogOnce(log.child({ component: 'otlp-http' }));
    this.retryAfter = String(Math.max(1, Math.ceil(config.retryAfter / 1000)));
  }

  async handle(signal: Signal, req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const type = mediaType(req.headers['content-type']);
    const json = type === 'application/json';
    if (!json && type !== 'application/x-protobuf' && type !== 'application/protobuf') {
      this.intake.countRefusal(signal, 'http', 'unsupported');
      return this.error(reply, 415, GRPC_CODE.INVALID_ARGUMENT, `Content-Type ${type || '(none)'} is not supported: send application/x-protobuf or application/json`, false);
    }
    const encoding = (headerValue(req.headers['content-encoding']) ?? 'identity').trim().toLowerCase();
    if (encoding !== 'identity' && encoding !== 'gzip') {
      this.intake.countRefusal(signal, 'http', 'unsupported');
      return this.error(reply, 415, GRPC_CODE.INVALID_ARGUMENT, `Content-Encoding ${encoding} is not supported: send gzip or uncompressed`, json);
    }
    let body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (encoding === 'gzip') {
      try {
        body = await gunzipAsync(body, { maxOutputLength: this.config.maxBodyBytes });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
          this.intake.countRefusal(signal, 'http', 'too_large');
          return this.error(reply, 413, GRPC_CODE.INVALID_ARGUMENT, `body is larger than ${this.config.maxBodyBytes} bytes once decompressed; send smaller batches`, json);
        }
        this.intake.countRefusal(signal, 'http', 'invalid');
        return this.error(reply, 400, GRPC_CODE.INVALID_ARGUMENT, `body is not valid gzip (${errorMessage(err)})`, json);
      }
    }
    const result = await this.intake.handle(signal, body, json, 'http');
    if (result.outcome === 'invalid') {
      this.once.warn(`invalid:${signal}`, { signal, remote: req.ip }, `OTLP request refused: ${result.message}`);
      return this.error(reply, 400, GRPC_CODE.INVALID_ARGUMENT, result.message, json);
    }
    if (result.outcome === 'busy' || result.outcome === 'unavailable') {
      reply.header('retry-after', this.retryAfter);
      const status = result.outcome === 'busy' ? 429 : 503;
      return this.error(reply, status, result.outcome === 'busy' ? GRPC_CODE.RESOURCE_EXHAUSTED : GRPC_CODE.UNAVAILABLE, result.message, json);
    }
    reply
      .code(200)
      .type(json ? 'application/json' : 'application/x-protobuf')
      .send(asBuffer(encodeResponse(signal, result.rejected, result.message, json)));
  }

  frameworkError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
    const signal = signalOf(req.url);
    const json = mediaType(req.headers['content-type']) === 'application/json';
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      this.intake.countRefusal(signal, 'http', 'too_large');
      this.error(reply, 413, GRPC_CODE.INVALID_ARGUMENT, `body is larger than ${this.config.maxBodyBytes} bytes; send smaller batches`, json);
      return;
    }
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      this.once.warn('internal', { err: errorMessage(err) }, 'OTLP receiver failed on a request');
      this.intake.countRefusal(signal, 'http', 'internal');
      reply.header('retry-after', this.retryAfter);
      this.error(reply, 503, GRPC_CODE.UNAVAILABLE, 'internal error; retry later', json);
      return;
    }
    this.intake.countRefusal(signal, 'http', 'invalid');
    this.error(reply, status, GRPC_CODE.INVALID_ARGUMENT, errorMessage(err), json);
  }

  private error(reply: FastifyReply, status: number, code: number, message: string, json: boolean): void {
    reply
      .code(status)
      .type(json ? 'application/json' : 'application/x-protobuf')
      .send(asBuffer(encodeStatus(code, message, json)));
  }
}

function asBuffer(b: Uint8Array | string): Buffer | string {
  return typeof b === 'string' ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
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
