/**
 * One OTLP/HTTP export request (protobuf, gzip): what every OTLP sink sends, and how its answer
 * is read. Retrying, queueing and counting belong to the sink runner (collector/sinks/runner.ts);
 * this only says what the answer means:
 * - 200: sent; `rejected` items refused by the server (partial_success) with its reason;
 * - 429, 502, 503, 504 or no answer: RetryableError, with the server's Retry-After;
 * - any other status: PermanentError (the batch goes to the dead-letter file).
 */
import { readFileSync } from 'node:fs';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import type { OtlpExportConfig } from './config.ts';
import { PermanentError, RetryableError, errorMessage } from '../errors.ts';
import { decodeResponse, encodeRequest, type Signal } from './codec.ts';

const gzipAsync = promisify(gzip);

export interface ExportAnswer {
  rejected: number;
  message: string;
}

export class OtlpExporter {
  private readonly config: OtlpExportConfig;
  private readonly url: string;
  private readonly dispatcher: Agent;

  constructor(config: OtlpExportConfig, signal: Signal) {
    this.config = config;
    this.url = `${config.endpoint.replace(/\/+$/, '')}/v1/${signal}`;
    const t = config.tls;
    this.dispatcher = new Agent({
      connect: {
        ...(t.ca ? { ca: readFileSync(t.ca) } : {}),
        ...(t.cert ? { cert: readFileSync(t.cert) } : {}),
        ...(t.key ? { key: readFileSync(t.key) } : {}),
      },
      keepAliveTimeout: 30_000,
    });
  }

  /** Header values, never to appear in an error message. */
  get secrets(): string[] {
    return Object.values(this.config.headers);
  }

  async send(signal: Signal, request_: object, abort: AbortSignal): Promise<ExportAnswer> {
    const raw = Buffer.from(encodeRequest(signal, request_));
    const body = this.config.compression ? await gzipAsync(raw) : raw;
    const headers: Record<string, string> = { ...this.config.headers, 'content-type': 'application/x-protobuf' };
    if (this.config.compression) headers['content-encoding'] = 'gzip';
    let res;
    try {
      res = await request(this.url, {
        method: 'POST',
        body,
        headers,
        dispatcher: this.dispatcher,
        signal: AbortSignal.any([abort, AbortSignal.timeout(this.config.timeout)]),
        headersTimeout: this.config.timeout,
        bodyTimeout: this.config.timeout,
      });
    } catch (err) {
      throw new RetryableError('PLUMB_ERR_SINK_RETRYABLE', `OTLP export to ${this.url} failed: ${errorMessage(err)}`, { cause: err });
    }
    const answer = Buffer.from(await res.body.arrayBuffer());
    const status = res.statusCode;
    if (status === 200) {
      const json = String(res.headers['content-type'] ?? '').startsWith('application/json');
      try {
        return answer.length === 0 ? { rejected: 0, message: '' } : decodeResponse(signal, answer, json);
      } catch {
        return { rejected: 0, message: '' };
      }
    }
    const text = answer.toString('utf8', 0, Math.min(answer.length, 300)).replace(/[^\x20-\x7e]+/g, ' ').trim();
    if (status === 429 || status === 502 || status === 503 || status === 504) {
      throw new RetryableError('PLUMB_ERR_SINK_RETRYABLE', `OTLP export to ${this.url} answered ${status}: ${text}`, { status, retryAfterMs: retryAfterMs(res.headers['retry-after']) });
    }
    throw new PermanentError('PLUMB_ERR_SINK_PERMANENT', `OTLP export to ${this.url} answered ${status}: ${text}`, { status });
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}

function retryAfterMs(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return undefined;
  const secs = Number(s);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(s);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
