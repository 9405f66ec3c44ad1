/** Structured JSON logging (pino) and a guard that keeps a repeating problem to one line a minute. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    { level: options.level ?? 'info', name: options.name, base: { pid: process.pid } },
    (options.destination as pino.DestinationStream | undefined) ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that writes nowhere, for tests and tools that print their own output. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/**
 * Logs the first occurrence of each kind of problem, then at most once per interval with the
 * number suppressed in between. Counting is the metrics' job; this keeps the log readable
 * during a flood of bad input.
 */
export class LogOnce {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  private readonly log: Logger;
  private readonly intervalMs: number;
  private readonly maxKeys: number;

  constructor(log: Logger, intervalMs = 60_000, maxKeys = 1000) {
    this.log = log;
    this.intervalMs = intervalMs;
    this.maxKeys = maxKeys;
  }

  warn(key: string, context: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    if (!entry && this.last.size >= this.maxKeys) this.last.delete(this.last.keys().next().value as string);
    const suppressed = entry?.suppressed ?? 0;
    this.last.set(key, { at: now, suppressed: 0 });
    this.log.warn(suppressed > 0 ? { ...context, suppressedSinceLast: suppressed } : context, message);
  }
}
