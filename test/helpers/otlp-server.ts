/**
 * An OTLP/HTTP test server: takes POST /v1/{traces,metrics,logs} (protobuf, gzip or not), decodes
 * each request with the official definitions (shared/otlp/proto through protobufjs; a body that
 * does not decode fails the test that reads `errors`), keeps the decoded requests and answers as
 * it is told: a status with Retry-After (429, 503) or a partial_success for the next requests.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { decodeProtobuf, encodeResponse, OTLP_PATHS, type Signal } from '../../shared/otlp/codec.ts';

export type OtlpAnswer = { status: number; retryAfter?: string } | { rejected: number; message: string };

export interface OtlpTestRequest {
  signal: Signal;
  headers: IncomingMessage['headers'];
  /** The decoded request (protobufjs message objects). */
  body: Record<string, unknown>;
  /** What the server answered. */
  answer: OtlpAnswer | 'ok';
  at: number;
}

export interface OtlpTestServer {
  url: string;
  requests: OtlpTestRequest[];
  /** Requests whose body did not decode, or came without protobuf content type. */
  errors: string[];
  /** Answers the next requests of `signal` with these, in order, then 200. */
  answerNext(signal: Signal, ...answers: OtlpAnswer[]): void;
  /** Requests answered 200 (full or partial success). */
  accepted(signal: Signal): OtlpTestRequest[];
  stop(): Promise<void>;
}

export async function startOtlpServer(): Promise<OtlpTestServer> {
  const scripted: Record<Signal, OtlpAnswer[]> = { traces: [], metrics: [], logs: [] };
  const state: OtlpTestServer = {
    url: '',
    requests: [],
    errors: [],
    answerNext(signal, ...answers) {
      scripted[signal].push(...answers);
    },
    accepted(signal) {
      return state.requests.filter((r) => r.signal === signal && (r.answer === 'ok' || 'rejected' in r.answer));
    },
    stop: async () => undefined,
  };
  const signals = Object.entries(OTLP_PATHS) as [Signal, string][];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const signal = signals.find(([, path]) => path === req.url)?.[0];
      if (req.method !== 'POST' || signal === undefined) {
        res.writeHead(404).end();
        return;
      }
      let body: Record<string, unknown>;
      try {
        if (req.headers['content-type'] !== 'application/x-protobuf') throw new Error(`content-type ${req.headers['content-type']}`);
        let raw = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
        body = decodeProtobuf<Record<string, unknown>>(signal, raw);
      } catch (err) {
        state.errors.push(`${signal}: ${(err as Error).message}`);
        res.writeHead(400).end();
        return;
      }
      const answer = scripted[signal].shift() ?? 'ok';
      state.requests.push({ signal, headers: req.headers, body, answer, at: Date.now() });
      if (answer !== 'ok' && 'status' in answer) {
        res.writeHead(answer.status, answer.retryAfter === undefined ? {} : { 'retry-after': answer.retryAfter }).end('slow down');
        return;
      }
      const out = answer === 'ok' ? encodeResponse(signal, 0, '', false) : encodeResponse(signal, answer.rejected, answer.message, false);
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end(Buffer.from(out as Uint8Array));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
