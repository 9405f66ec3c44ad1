/**
 * How the agent talks to collectors: one undici connection pool carrying the TLS settings
 * (agent.forward.tls; the server certificate is always verified) and the bearer token
 * (agent.forward.auth). Credentials are read once, at start; the token is never logged.
 */
import { AGENT_HEADER } from '../../shared/wire.ts';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { Agent, request, type Dispatcher } from 'undici';
import { PlumbError, errorMessage } from '../../shared/errors.ts';

export interface ForwardAuthOptions {
  token?: string;
  tokenFile?: string;
}

export interface ForwardTlsOptions {
  /** PEM file of the CA that signed the collectors' certificates (default: the system's CAs). */
  ca?: string;
  /** PEM client certificate and key, for collectors that require one (mTLS). */
  cert?: string;
  key?: string;
  /** Name to verify the server certificate against, when it differs from the URL's host. */
  serverName?: string;
}

export interface ConnectionOptions {
  auth?: ForwardAuthOptions;
  tls?: ForwardTlsOptions;
  /** Connections kept per collector. */
  connections?: number;
  /** The x-plumb-agent header every batch carries (shared/wire.ts); absent: none. */
  identity?: () => string;
}

function configError(key: string, message: string, cause?: unknown): PlumbError {
  return new PlumbError('PLUMB_ERR_CONFIG_INVALID', `agent.forward.${key}: ${message}`, cause === undefined ? undefined : { cause });
}

/** A credential file that cannot be read or holds nothing usable; never quotes its content. */
function secretError(key: string, message: string, cause?: unknown): PlumbError {
  return new PlumbError('PLUMB_ERR_SECRET_READ', `agent.forward.${key}: ${message}`, cause === undefined ? undefined : { cause });
}

function readPem(key: string, path: string): Buffer {
  try {
    const pem = readFileSync(path);
    if (pem.length === 0) throw secretError(key, `${path} is empty; give a PEM file`);
    return pem;
  } catch (err) {
    if (err instanceof PlumbError) throw err;
    throw secretError(key, `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}); give a readable PEM file`, err);
  }
}

/** The bearer token from agent.forward.auth, or undefined when none is configured. */
export function loadToken(auth: ForwardAuthOptions | undefined): string | undefined {
  if (!auth) return undefined;
  if (auth.token !== undefined && auth.tokenFile !== undefined) throw configError('auth', 'set token or tokenFile, not both');
  if (auth.token !== undefined) {
    const t = auth.token.trim();
    if (t === '') throw configError('auth.token', 'is empty');
    return t;
  }
  if (auth.tokenFile === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(auth.tokenFile, 'utf8');
  } catch (err) {
    throw secretError('auth.tokenFile', `cannot read ${auth.tokenFile} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}); give a file readable by the user plumb runs as`, err);
  }
  const t = text.trim();
  if (t === '') throw secretError('auth.tokenFile', `${auth.tokenFile} is empty; write the token into it`);
  if (/\s/.test(t)) throw secretError('auth.tokenFile', `${auth.tokenFile} holds more than one word; it must contain only the token`);
  return t;
}

export interface PostResult {
  status: number;
  retryAfter: string | string[] | undefined;
  text: string;
}

export class Connection {
  private readonly dispatcher: Agent;
  private readonly authorization: string | undefined;
  private readonly identity: (() => string) | undefined;

  constructor(options: ConnectionOptions = {}) {
    this.identity = options.identity;
    const token = loadToken(options.auth);
    this.authorization = token === undefined ? undefined : `Bearer ${token}`;
    const tls = options.tls ?? {};
    if ((tls.cert === undefined) !== (tls.key === undefined)) throw configError(tls.cert === undefined ? 'tls.cert' : 'tls.key', 'a client certificate needs both tls.cert and tls.key');
    const connect: Record<string, unknown> = { rejectUnauthorized: true };
    if (tls.ca !== undefined) connect.ca = readPem('tls.ca', tls.ca);
    if (tls.cert !== undefined && tls.key !== undefined) {
      connect.cert = readPem('tls.cert', tls.cert);
      connect.key = readPem('tls.key', tls.key);
    }
    if (tls.serverName !== undefined) connect.servername = tls.serverName;
    if (connect.ca !== undefined || connect.cert !== undefined) {
      // Fail at start on a file that is not PEM (or a key that does not match), not at the first send.
      try {
        if (connect.ca !== undefined) new X509Certificate(connect.ca as Buffer);
        createSecureContext({ ca: connect.ca as Buffer | undefined, cert: connect.cert as Buffer | undefined, key: connect.key as Buffer | undefined });
      } catch (err) {
        throw secretError('tls', `the CA, certificate or key cannot be used (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}); give PEM files, the key matching the certificate`, err);
      }
    }
    this.dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: options.connections ?? 4, connect });
  }

  /** Whether requests carry a bearer token (for a warning about plain http, never the token). */
  get hasToken(): boolean {
    return this.authorization !== undefined;
  }

  async post(url: URL, body: Buffer, headers: Record<string, string>, timeoutMs: number, signal?: AbortSignal): Promise<PostResult> {
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    if (this.identity !== undefined) headers[AGENT_HEADER] = this.identity();
    const res = await request(url, { method: 'POST', body, headers, dispatcher: this.dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal });
    const text = await res.body.text();
    return { status: res.statusCode, retryAfter: res.headers['retry-after'], text };
  }

  /** GET <base>/readyz: true when the collector answers 2xx within the timeout. */
  async ready(base: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const headers: Record<string, string> = {};
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    try {
      const res: Dispatcher.ResponseData = await request(new URL('/readyz', base), {
        method: 'GET',
        headers,
        dispatcher: this.dispatcher,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
      });
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
