/**
 * How a collector talks to the other collectors of its fleet: gzip JSON over one undici pool,
 * with the fleet's shared secret as a bearer token. Answers are classified like every other
 * sender's (shared/retry.ts): 408, 429 and 5xx are retryable, other 4xx permanent.
 */
import { readFileSync } from 'node:fs';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { PlumbError, RetryableError, errorMessage } from '../../shared/errors.ts';
import { httpStatusError } from '../../shared/retry.ts';
import type { FleetConfig } from './config.ts';

const gzipAsync = promisify(gzip);

/** Where collectors post to each other; not for agents (the token is the fleet's, not theirs). */
export const INTERNAL_METRICS_PATH = '/internal/v1/metrics';
export const INTERNAL_HANDOFF_PATH = '/internal/v1/handoff';
export const INTERNAL_PREFIX = '/internal/';

const CODES = { retryable: 'PLUMB_ERR_FORWARD_RETRYABLE', permanent: 'PLUMB_ERR_FORWARD_PERMANENT' } as const;

/** The fleet's shared secret from collector.fleet.token or tokenFile; undefined when none is set. */
export function fleetToken(f: Pick<FleetConfig, 'token' | 'tokenFile'>): string | undefined {
  if (f.token !== undefined) return f.token.trim();
  if (f.tokenFile === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(f.tokenFile, 'utf8');
  } catch (err) {
    throw new PlumbError('PLUMB_ERR_SECRET_READ', `collector.fleet.tokenFile: cannot read ${JSON.stringify(f.tokenFile)} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
  }
  const t = text.trim();
  if (t === '' || /\s/.test(t)) throw new PlumbError('PLUMB_ERR_SECRET_READ', `collector.fleet.tokenFile: ${JSON.stringify(f.tokenFile)} must hold exactly one token`);
  return t;
}

export interface PeerResponse {
  status: number;
  body: string;
}

export class Peers {
  private readonly dispatcher: Agent;
  private readonly authorization: string | undefined;
  private readonly timeoutMs: number;

  constructor(f: FleetConfig) {
    const token = fleetToken(f);
    this.authorization = token === undefined ? undefined : `Bearer ${token}`;
    this.timeoutMs = f.timeout;
    const connect: Record<string, unknown> = { rejectUnauthorized: true };
    if (f.ca !== undefined) {
      try {
        connect.ca = readFileSync(f.ca);
      } catch (err) {
        throw new PlumbError('PLUMB_ERR_SECRET_READ', `collector.fleet.ca: cannot read ${JSON.stringify(f.ca)} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`);
      }
    }
    this.dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 8, connect });
  }

  /** The bearer header value the internal routes accept; undefined: they accept any caller (loopback or insecure fleets). */
  get expectedAuthorization(): string | undefined {
    return this.authorization;
  }

  /**
   * Posts `body` as gzip JSON to `member` + `path`; resolves with the 2xx answer, throws a
   * RetryableError (connection failure, timeout, 408/429/5xx) or a PermanentError (other 4xx).
   * Returns the bytes sent on the wire too.
   */
  async post(member: string, path: string, body: unknown, signal?: AbortSignal): Promise<PeerResponse & { bytes: number }> {
    const payload = await gzipAsync(Buffer.from(JSON.stringify(body)));
    const headers: Record<string, string> = { 'content-type': 'application/json', 'content-encoding': 'gzip' };
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    let res;
    try {
      res = await request(new URL(path, member), {
        method: 'POST',
        body: payload,
        headers,
        dispatcher: this.dispatcher,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]) : AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new RetryableError(CODES.retryable, `collector ${member} cannot be reached (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`, { cause: err });
    }
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) throw httpStatusError(res.statusCode, `collector ${member} answered ${res.statusCode} to ${path}: ${text.slice(0, 200)}`, res.headers['retry-after'], CODES);
    return { status: res.statusCode, body: text, bytes: payload.length };
  }

  /** GET <member>/readyz: true when it answers 2xx within `timeoutMs` (a stopping collector answers 503 or not at all). */
  async ready(member: string, timeoutMs: number): Promise<boolean> {
    try {
      const res = await request(new URL('/readyz', member), { method: 'GET', dispatcher: this.dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 300;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}
