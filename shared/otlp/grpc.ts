/**
 * OTLP/gRPC (default port 4317): the TraceService, MetricsService and LogsService `Export`
 * methods, on @grpc/grpc-js (pure JavaScript). Messages are decoded with the same definitions and
 * go through the same intake as OTLP/HTTP. gzip-compressed messages are taken (grpc-encoding).
 *
 * Status codes: OK with partial_success when items were rejected; INVALID_ARGUMENT for an
 * undecodable message; UNAVAILABLE (retryable by every OTLP client) when a queue is full or the
 * data cannot be made durable now, with a `retry-after` trailer in seconds; UNAUTHENTICATED when
 * the role's credential check refuses.
 */
import * as grpc from '@grpc/grpc-js';
import { formatAddress, parseListen } from '../address.ts';
import { PlumbError, errorMessage } from '../errors.ts';
import { LogOnce, type Logger } from '../log.ts';
import { encodeResponse, GRPC_METHODS, type Signal } from './codec.ts';
import type { OtlpIntake } from './intake.ts';
import type { OtlpServer } from './http.ts';
import type { OtlpConfig } from './config.ts';

export interface OtlpGrpcOptions {
  config: OtlpConfig;
  intake: OtlpIntake;
  log: Logger;
  at: string;
  /** PEM certificate and key (and a client CA) for TLS; absent: plaintext. */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; requireClientCert: boolean } | null;
  /** The role's credential check on the `authorization` metadata; absent: none. */
  authorize?: (authorization: string | undefined, peerCertified: boolean) => string | null;
}

function passThrough(b: Buffer): Buffer {
  return b;
}

function serviceFor(signal: Signal): grpc.ServiceDefinition {
  return {
    Export: {
      path: GRPC_METHODS[signal],
      requestStream: false,
      responseStream: false,
      // decoded in the handler, so a bad message is answered INVALID_ARGUMENT with the reason
      requestSerialize: passThrough,
      requestDeserialize: passThrough,
      responseSerialize: passThrough,
      responseDeserialize: passThrough,
    },
  };
}

export async function startOtlpGrpc(options: OtlpGrpcOptions): Promise<OtlpServer> {
  const { config, intake, log } = options;
  const once = new LogOnce(log.child({ component: 'otlp-grpc' }));
  const retryAfter = String(Math.max(1, Math.ceil(config.retryAfter / 1000)));
  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.maxBodyBytes,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
  });
  for (const signal of ['traces', 'metrics', 'logs'] as const) {
    const handler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
      const auth = options.authorize;
      if (auth) {
        const header = call.metadata.get('authorization')[0];
        const certified = (call.getAuthContext?.() as { sslPeerCertificate?: unknown } | undefined)?.sslPeerCertificate !== undefined;
        const refusal = auth(typeof header === 'string' ? header : header?.toString(), certified);
        if (refusal !== null) {
          intake.countRefusal(signal, 'grpc', 'unauthorized');
          callback({ code: grpc.status.UNAUTHENTICATED, details: refusal });
          return;
        }
      }
      intake.handle(signal, call.request, false, 'grpc').then(
        (result) => {
          if (result.outcome === 'invalid') {
            once.warn(`invalid:${signal}`, { signal, peer: call.getPeer() }, `OTLP request refused: ${result.message}`);
            callback({ code: grpc.status.INVALID_ARGUMENT, details: result.message });
            return;
          }
          if (result.outcome === 'busy' || result.outcome === 'unavailable') {
            const trailer = new grpc.Metadata();
            trailer.set('retry-after', retryAfter);
            callback({ code: grpc.status.UNAVAILABLE, details: result.message, metadata: trailer });
            return;
          }
          callback(null, Buffer.from(encodeResponse(signal, result.rejected, result.message, false) as Uint8Array));
        },
        (err: unknown) => {
          once.warn('internal', { err: errorMessage(err) }, 'OTLP gRPC receiver failed on a request');
          callback({ code: grpc.status.UNAVAILABLE, details: 'internal error; retry later' });
        },
      );
    };
    server.addService(serviceFor(signal), { Export: handler });
  }
  const tls = options.tls;
  const credentials = tls
    ? grpc.ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.requireClientCert)
    : grpc.ServerCredentials.createInsecure();
  const { host, port } = parseListen(config.grpc.listen);
  const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  let bound: number;
  try {
    bound = await new Promise<number>((resolve, reject) => server.bindAsync(target, credentials, (err, p) => (err ? reject(err) : resolve(p))));
  } catch (err) {
    server.forceShutdown();
    throw new PlumbError('PLUMB_ERR_LISTEN', `${options.at}.grpc.listen: cannot listen on ${config.grpc.listen} (${errorMessage(err)}); choose a free port or stop the process using it`, { cause: err });
  }
  const address = formatAddress(host, bound);
  log.info({ listen: address }, 'OTLP/gRPC receiver listening');
  return {
    address,
    port: bound,
    stop: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.forceShutdown(), 5000);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
