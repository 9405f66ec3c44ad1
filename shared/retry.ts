/** Exponential backoff with full jitter, a cap, and respect for the peer's Retry-After. */
import { setTimeout as sleep } from 'node:timers/promises';
import { PermanentError, RetryableError, type ErrorCode } from './errors.ts';

export interface BackoffOptions {
  /** First delay, before jitter. */
  initialMs: number;
  /** Largest delay, before jitter. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 30_000 };

/** Delay before retry number `attempt` (0-based): uniform in [d/2, d] with d = min(max, initial·2^attempt). */
export function backoffDelay(attempt: number, options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** What the next wait should be after `err`: the peer's Retry-After wins when it asked for longer. */
export function retryDelay(err: unknown, attempt: number, options: BackoffOptions = DEFAULT_BACKOFF): number {
  const computed = backoffDelay(attempt, options);
  if (err instanceof RetryableError && err.retryAfterMs !== undefined) return Math.min(Math.max(computed, err.retryAfterMs), Math.max(options.maxMs, err.retryAfterMs));
  return computed;
}

export interface RetryOptions extends BackoffOptions {
  signal?: AbortSignal;
  /** Give up after this many attempts (Infinity to keep trying until aborted). */
  maxAttempts?: number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `fn` until it succeeds, throws a PermanentError, the attempts run out or `signal` aborts.
 * Anything that is not a PermanentError is treated as retryable (network errors, timeouts).
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const maxAttempts = options.maxAttempts ?? Infinity;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (err instanceof PermanentError || attempt + 1 >= maxAttempts || options.signal?.aborted) throw err;
      const delay = retryDelay(err, attempt, options);
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, undefined, { signal: options.signal });
    }
  }
}

/** Parses an HTTP Retry-After header (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Codes for a downstream system (Zipkin, Alertmanager, webhooks, Elasticsearch, S3). */
export const SINK_CODES = { retryable: 'PLUMB_ERR_SINK_RETRYABLE', permanent: 'PLUMB_ERR_SINK_PERMANENT' } as const;

/**
 * The error for a non-2xx answer: 408, 429 and 5xx are worth retrying (with the peer's
 * Retry-After), any other status is permanent. Every sender classifies answers through here.
 */
export function httpStatusError(
  status: number,
  message: string,
  retryAfter: string | string[] | undefined,
  codes: { retryable: ErrorCode; permanent: ErrorCode },
): RetryableError | PermanentError {
  if (status === 408 || status === 429 || status >= 500) {
    return new RetryableError(codes.retryable, message, { retryAfterMs: parseRetryAfter(retryAfter), status });
  }
  return new PermanentError(codes.permanent, message, { status });
}
