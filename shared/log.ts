/** Structured JSON logging (pino) and a guard that keeps a repeating problem to one line a minute. */
import { pino, type Logger } from 'pino';

export type { Logger };

export type LogFormat = 'json' | 'pretty';

/**
 * JSON (pino's own lines) by default; 'pretty' formats each entry as one readable line in this
 * thread (no transport worker, no second logging stack): time, level, where, message, fields.
 */
export function createLogger(options: { level?: string; name?: string; destination?: NodeJS.WritableStream; format?: LogFormat; color?: boolean } = {}): Logger {
  const opts = { level: options.level ?? 'info', name: options.name, base: { pid: process.pid } };
  if (options.format === 'pretty') {
    const out = options.destination ?? process.stderr;
    const color = options.color ?? (out as { isTTY?: boolean }).isTTY === true;
    return pino(opts, { write: (line: string) => void out.write(prettyLine(line, color)) });
  }
  return pino(opts, (options.destination as pino.DestinationStream | undefined) ?? pino.destination({ dest: 2, sync: false }));
}

/** 'auto' → pretty on a terminal, JSON otherwise. */
export function logFormat(wanted: string | undefined, stderrIsTTY: boolean): LogFormat {
  if (wanted === 'json' || wanted === 'pretty') return wanted;
  return stderrIsTTY ? 'pretty' : 'json';
}

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[41;97m'],
};
/** Keys shown in their own place, or not at all. */
const PLACED = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'name', 'role', 'component', 'err', 'v']);

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** One pino JSON line as `12:00:01.234 WARN  agent/forward  message key=value …` (with its newline). */
export function prettyLine(json: string, color = false): string {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : json + '\n';
  }
  const time = typeof e.time === 'number' ? new Date(e.time).toISOString().slice(11, 23) : '';
  const [name, paint] = LEVELS[e.level as number] ?? [String(e.level).toUpperCase().padEnd(5), ''];
  const where = [e.role, e.component].filter((x) => typeof x === 'string').join('/');
  const fields: string[] = [];
  for (const [k, v] of Object.entries(e)) if (!PLACED.has(k) && v !== undefined) fields.push(`${k}=${value(v)}`);
  const level = color && paint !== '' ? `${paint}${name}\x1b[0m` : name;
  let line = `${time} ${level} ${where !== '' ? `${where}: ` : ''}${typeof e.msg === 'string' ? e.msg : ''}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}\n`;
  const err = e.err as { message?: string; stack?: string } | undefined;
  if (err !== undefined && err !== null) {
    const stack = typeof err.stack === 'string' ? err.stack : typeof err.message === 'string' ? err.message : JSON.stringify(err);
    line += stack.split('\n').map((l) => `    ${l}`).join('\n') + '\n';
  }
  return line;
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
