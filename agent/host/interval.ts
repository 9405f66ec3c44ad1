/**
 * Runs an async job every interval, never two at once, until stopped; or, driven, once at start
 * and then at each tick() of its owner.
 */

export class IntervalRunner {
  private readonly intervalMs: number;
  private readonly job: () => Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private startedAt = 0;
  private stopped = true;
  private driven = false;

  constructor(intervalMs: number, job: () => Promise<void>) {
    this.intervalMs = intervalMs;
    this.job = job;
  }

  /** Runs the job now, then on the interval's grid. A run that overruns skips the ticks it missed. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.startedAt = performance.now();
    this.fire();
  }

  /** Runs the job now, then only when tick() asks. */
  startDriven(): void {
    this.driven = true;
    this.start();
  }

  /** Driven: runs the job now unless a run is still going (a slow run skips the tick). */
  tick(): void {
    if (this.stopped || this.running !== undefined) return;
    this.fire();
  }

  /** No new run starts after this; resolves when the run in progress (if any) has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private fire(): void {
    if (this.stopped) return;
    // The job handles its own errors; a rejection here must not stop the schedule.
    this.running = this.job()
      .catch(() => undefined)
      .finally(() => {
        this.running = undefined;
        this.schedule();
      });
  }

  private schedule(): void {
    if (this.stopped || this.driven) return;
    const elapsed = performance.now() - this.startedAt;
    const next = (Math.floor(elapsed / this.intervalMs) + 1) * this.intervalMs;
    this.timer = setTimeout(() => this.fire(), next - elapsed);
    // The agent's sockets keep the process alive; a schedule alone should not.
    this.timer.unref();
  }
}
