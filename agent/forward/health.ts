/**
 * Which collectors are up. A failed request marks one down at once; a probe of GET /readyz on
 * each collector that is down, every healthCheckInterval, brings it back. Sharding uses the
 * collectors that are up; lanes waiting for a collector are woken when it comes back.
 */
import type { Telemetry } from '../../shared/telemetry.ts';
import type { Logger } from '../../shared/log.ts';
import type { Connection } from './connection.ts';

export class CollectorHealth {
  readonly collectors: readonly string[];
  private readonly up: Map<string, boolean>;
  private readonly log: Logger;
  private readonly listeners: ((collector: string) => void)[] = [];
  private next = 0;
  private timer: NodeJS.Timeout | null = null;
  private probing: Promise<void> | null = null;
  private abort = new AbortController();

  constructor(collectors: readonly string[], ctx: { telemetry: Telemetry; log: Logger }) {
    this.collectors = collectors;
    this.log = ctx.log;
    this.up = new Map(collectors.map((c) => [c, true]));
    const states = this.up;
    ctx.telemetry.gauge('plumb_forward_collector_up', 'whether the agent considers a collector healthy (1) or not (0)', ['collector'], function () {
      for (const [c, up] of states) this.set({ collector: c }, up ? 1 : 0);
    });
  }

  isUp(collector: string): boolean {
    return this.up.get(collector) ?? false;
  }

  /** The collectors that are up, in configuration order; all of them when none is (someone must be tried). */
  healthy(): string[] {
    const up = this.collectors.filter((c) => this.up.get(c));
    return up.length > 0 ? up : [...this.collectors];
  }

  /** A collector that is up, taking turns between them; any collector when none is up. */
  pick(): string {
    const candidates = this.healthy();
    this.next = (this.next + 1) % candidates.length;
    return candidates[this.next];
  }

  /** Called with a collector's URL when it comes back up. */
  onUp(listener: (collector: string) => void): void {
    this.listeners.push(listener);
  }

  markDown(collector: string, reason: string): void {
    if (this.up.get(collector) !== true) return;
    this.up.set(collector, false);
    this.log.warn({ collector, reason }, 'collector marked down; its batches wait, other traffic goes to the collectors that are up');
  }

  markUp(collector: string): void {
    if (this.up.get(collector) !== false) return;
    this.up.set(collector, true);
    this.log.info({ collector }, 'collector is up again');
    for (const l of this.listeners) l(collector);
  }

  /**
   * Probes each collector that is down every `intervalMs` (one that is up proves itself with
   * every request it answers).
   */
  start(connection: Connection, intervalMs: number, timeoutMs: number): void {
    if (this.timer) return;
    this.abort = new AbortController();
    const probe = async (): Promise<void> => {
      await Promise.all(
        this.collectors.filter((c) => !this.isUp(c)).map(async (c) => {
          const ok = await connection.ready(c, Math.min(timeoutMs, intervalMs), this.abort.signal);
          if (this.abort.signal.aborted) return;
          if (ok) this.markUp(c);
          else this.markDown(c, 'readyz');
        }),
      );
    };
    this.timer = setInterval(() => {
      if (this.probing) return;
      this.probing = probe().finally(() => (this.probing = null));
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.abort.abort();
    await this.probing;
  }
}
