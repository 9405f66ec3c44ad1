/**
 * Waiting on a condition with a deadline, never on the clock alone. The condition is polled
 * until it returns a value that is not `undefined`, `null` or `false`; an exception counts as
 * "not yet" (so assertions can be polled), and the last one is reported when the deadline passes.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between polls (default 25 ms). */
  intervalMs?: number;
  /** What is being waited for, for the error message. */
  what?: string;
}

export class WaitTimeoutError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WaitTimeoutError';
  }
}

export async function waitFor<T>(condition: () => T | Promise<T>, options: WaitOptions = {}): Promise<Exclude<T, undefined | null | false>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  let lastValue: unknown;
  while (true) {
    try {
      const value = await condition();
      if (value !== undefined && value !== null && value !== false) return value as Exclude<T, undefined | null | false>;
      lastValue = value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(intervalMs);
  }
  const what = options.what ?? 'condition';
  if (lastError instanceof Error) {
    // Rethrow the last failure itself so an assertion keeps its expected/actual diff.
    lastError.message = `timed out after ${timeoutMs} ms waiting for ${what}; last failure: ${lastError.message}`;
    throw lastError;
  }
  if (lastError !== undefined) {
    throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}; last failure: ${String(lastError)}`, { cause: lastError });
  }
  throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${String(lastValue)}`);
}
