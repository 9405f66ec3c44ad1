/**
 * An Etsy statsd backend that only keeps the daemon's own line count across flushes.
 *
 * statsd counts lines in the `statsd.metrics_received` counter, which it zeroes at every flush.
 * This backend adds up each interval's value as it is flushed and reports the running total in
 * the management console's `stats` output (`bench.lines_flushed`); the benchmark adds the live
 * counter from the `counters` command. Nothing here touches statsd's packet path.
 */
import type { EventEmitter } from 'node:events';

interface FlushedMetrics {
  counters: Record<string, number>;
}

type StatusWriter = (err: Error | null, backend: string, stat: string, value: number) => void;

export function init(_startupTime: number, config: { prefixStats?: string }, events: EventEmitter): boolean {
  const prefix = config.prefixStats ?? 'statsd';
  let lines = 0;
  let badLines = 0;
  let flushes = 0;
  events.on('flush', (_timestamp: number, metrics: FlushedMetrics) => {
    lines += metrics.counters[`${prefix}.metrics_received`] ?? 0;
    badLines += metrics.counters[`${prefix}.bad_lines_seen`] ?? 0;
    flushes++;
  });
  events.on('status', (write: StatusWriter) => {
    write(null, 'bench', 'lines_flushed', lines);
    write(null, 'bench', 'bad_lines_flushed', badLines);
    write(null, 'bench', 'flushes', flushes);
  });
  return true;
}
