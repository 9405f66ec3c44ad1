/**
 * The log router as ingest sees it: one object whose router a config reload may replace. While
 * the old router drains and the new one opens (on the same disk queues), batches wait here and
 * then go to the new router; nothing is refused for the swap.
 */
import type { AcceptedLogBatch, LogRouter } from './router.ts';
import type { LogBatchSink } from '../ingest/logs.ts';

export class SwappableLogSink implements LogBatchSink {
  router: LogRouter | null = null;
  private swapping: Promise<void> | null = null;

  async accept(batch: AcceptedLogBatch): Promise<void> {
    while (this.swapping !== null) await this.swapping;
    if (this.router === null) throw new Error('log router not started');
    return this.router.accept(batch);
  }

  /** Runs `swap` (stop the old router, open the new one) with batches held until it is done. */
  async replace(swap: () => Promise<LogRouter>): Promise<void> {
    while (this.swapping !== null) await this.swapping;
    const run = swap().then((router) => {
      this.router = router;
    });
    this.swapping = run.finally(() => {
      this.swapping = null;
    });
    await this.swapping;
  }
}
