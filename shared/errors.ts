/**
 * Every error plumb reports to a user has a stable code (PLUMB_ERR_<AREA>_<WHAT>) and a message
 * that says what is wrong, where, and how to fix it. Codes are documented in README.md.
 */
export const ErrorCodes = {
  PLUMB_ERR_CONFIG_INVALID: 'the configuration has errors',
  PLUMB_ERR_NODE_VERSION: 'the Node.js running plumb is older than it needs',
  PLUMB_ERR_CONFIG_READ: 'the configuration file could not be read',
  PLUMB_ERR_LISTEN: 'a listener could not bind its address',
  PLUMB_ERR_INGEST_BODY: 'a request body is malformed',
  PLUMB_ERR_INGEST_TOO_LARGE: 'a request body is larger than the limit',
  PLUMB_ERR_FORWARD_PERMANENT: 'the collector refused a batch permanently',
  PLUMB_ERR_FORWARD_RETRYABLE: 'the collector could not take a batch now',
  PLUMB_ERR_STATSD_PARSE: 'a statsd line could not be parsed',
  PLUMB_ERR_GROK_PATTERN: 'a grok pattern or pattern file is invalid',
  PLUMB_ERR_GROK_INPUT: 'the grok debugger was asked for a log input that is not configured, or whose file cannot be read',
  PLUMB_ERR_SINK_PERMANENT: 'a downstream system refused data permanently',
  PLUMB_ERR_SINK_RETRYABLE: 'a downstream system could not take data now',
  PLUMB_ERR_SPOOL_DIR: 'a disk queue directory cannot be created, read or written',
  PLUMB_ERR_SPOOL_IO: 'reading or writing a disk queue segment failed',
  PLUMB_ERR_INSECURE: 'the collector would listen beyond loopback with no authentication',
  PLUMB_ERR_UNAUTHORIZED: 'a request carried no valid bearer token or client certificate',
  PLUMB_ERR_SECRET_READ: 'a token, certificate or key file could not be read or used',
  PLUMB_ERR_JOURNAL_DIR: 'a state journal directory cannot be created, read or written',
  PLUMB_ERR_JOURNAL_IO: 'writing the state journal failed, so the batch was not applied',
  PLUMB_ERR_INGEST_OVERLOADED: 'the collector is above its memory limit and refuses ingest for now',
  PLUMB_ERR_HTTP_BUSY: 'an HTTP server is handling its most requests at once and refuses more for now',
  PLUMB_ERR_REMOTE: 'plumb status, top or tap could not get an answer from the agent or collector',
  PLUMB_ERR_TAP_FILTER: 'a tap filter expression is malformed',
  PLUMB_ERR_TAP_BUSY: 'the most taps allowed at once are already open',
  PLUMB_ERR_TAP_COMPONENT: 'a tap names a component that does not exist or cannot be tapped',
  PLUMB_ERR_KUBE_ACCESS: 'the Kubernetes API cannot be reached: no kubeconfig or service account, or one that cannot be read',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class PlumbError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'PlumbError';
  }
}

/** An error that will not go away by retrying (a 4xx, a schema violation). */
export class PermanentError extends PlumbError {
  /** The HTTP status that made it permanent, when a peer answered. */
  readonly status: number | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    super(code, message, options);
    this.name = 'PermanentError';
    this.status = options?.status;
  }
}

/** An error worth retrying (5xx, 429, timeouts, refused connections). */
export class RetryableError extends PlumbError {
  /** Milliseconds the peer asked us to wait (Retry-After), if it said. */
  readonly retryAfterMs: number | undefined;
  /** The HTTP status the peer answered, if it answered. */
  readonly status: number | undefined;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterMs?: number; status?: number }) {
    super(code, message, options);
    this.name = 'RetryableError';
    this.retryAfterMs = options?.retryAfterMs;
    this.status = options?.status;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
