/**
 * HTTP(S) probe through undici. Every run opens a fresh connection, so the latency includes
 * DNS, connect and TLS as a new client would see them, and the certificate read is the one
 * the server presents now.
 */
import { TLSSocket } from 'node:tls';
import { Client, buildConnector } from 'undici';
import { probeErrorOf, type ProbeError } from './probe-errors.ts';

/** How much of a response body `bodyMatch` looks at. */
export const BODY_MATCH_LIMIT = 64 * 1024;

const DAY_MS = 86_400_000;

export interface ProbeOutcome {
  up: boolean;
  latencyMs: number;
  status?: number;
  certDaysLeft?: number;
  error?: ProbeError;
  /** One line for people: what was expected and what came back. */
  message?: string;
}

export interface HttpProbe {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** Whether a status counts as up. */
  expect: (status: number) => boolean;
  expectText: string;
  bodyMatch?: RegExp;
  tlsVerify: boolean;
  certMinDays?: number;
  timeoutMs: number;
}

export async function probeHttp(p: HttpProbe, signal: AbortSignal, now: () => number = Date.now): Promise<ProbeOutcome> {
  const started = performance.now();
  let certDaysLeft: number | undefined;
  const base = buildConnector({ rejectUnauthorized: p.tlsVerify, timeout: p.timeoutMs });
  const connect: buildConnector.connector = (options, callback) => {
    base(options, (...args: buildConnector.CallbackArgs) => {
      const socket = args[1];
      if (socket instanceof TLSSocket) {
        const validTo = Date.parse(socket.getPeerCertificate().valid_to ?? '');
        if (Number.isFinite(validTo)) certDaysLeft = Math.floor(((validTo - now()) / DAY_MS) * 100) / 100;
      }
      callback(...args);
    });
  };
  const client = new Client(p.url.origin, { connect, pipelining: 1 });
  try {
    const res = await client.request({
      path: p.url.pathname + p.url.search,
      method: p.method as 'GET',
      headers: p.headers,
      body: p.body,
      signal,
    });
    let text: string | undefined;
    if (p.bodyMatch) text = await readLimited(res.body, BODY_MATCH_LIMIT);
    else await res.body.dump();
    const latencyMs = performance.now() - started;
    const status = res.statusCode;
    const answered = { latencyMs, status, ...(certDaysLeft !== undefined ? { certDaysLeft } : {}) };
    if (!p.expect(status)) return { up: false, ...answered, error: 'status', message: `status ${status}, expected ${p.expectText}` };
    if (p.bodyMatch && text !== undefined && !p.bodyMatch.test(text)) {
      return { up: false, ...answered, error: 'body', message: `body does not match /${p.bodyMatch.source}/` };
    }
    if (p.certMinDays !== undefined && certDaysLeft !== undefined && certDaysLeft < p.certMinDays) {
      return { up: false, ...answered, error: 'cert_expiring', message: `certificate expires in ${certDaysLeft} days, fewer than ${p.certMinDays}` };
    }
    return { up: true, ...answered };
  } catch (err) {
    const latencyMs = performance.now() - started;
    if (signal.aborted) return { up: false, latencyMs, error: 'timeout', message: `no complete answer within ${p.timeoutMs}ms` };
    return { up: false, latencyMs, error: probeErrorOf(err), message: (err as Error).message };
  } finally {
    client.destroy().catch(() => undefined);
  }
}

async function readLimited(body: AsyncIterable<Buffer>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Leaving the loop early destroys the stream; the rest of a large body is never read.
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.length;
    if (size >= limit) break;
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}
