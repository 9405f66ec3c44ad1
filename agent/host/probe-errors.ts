/** Short, fixed codes for why a probe failed; they become a label, so the set stays small. */

export type ProbeError = 'timeout' | 'refused' | 'dns' | 'tls' | 'reset' | 'unreachable' | 'status' | 'body' | 'cert_expiring' | 'error';

const BY_SYSTEM_CODE: Record<string, ProbeError> = {
  ECONNREFUSED: 'refused',
  ENOTFOUND: 'dns',
  EAI_AGAIN: 'dns',
  EAI_FAIL: 'dns',
  EAI_NONAME: 'dns',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  UND_ERR_SOCKET: 'reset',
  EHOSTUNREACH: 'unreachable',
  ENETUNREACH: 'unreachable',
  EHOSTDOWN: 'unreachable',
  ENETDOWN: 'unreachable',
  ETIMEDOUT: 'timeout',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
};

/** Classifies a connection error, looking through `cause` and the attempts of an AggregateError (happy eyeballs). */
export function probeErrorOf(err: unknown): ProbeError {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') {
      const mapped = BY_SYSTEM_CODE[code];
      if (mapped) return mapped;
      // OpenSSL verification codes (DEPTH_ZERO_SELF_SIGNED_CERT, CERT_HAS_EXPIRED…) and Node's TLS errors.
      if (code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)) return 'tls';
    }
    const cause = (e as { cause?: unknown }).cause;
    if (cause !== undefined) queue.push(cause);
    if (e instanceof AggregateError) queue.push(...e.errors);
  }
  return 'error';
}
