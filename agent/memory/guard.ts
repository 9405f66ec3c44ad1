/**
 * The agent's memory guard: when its RSS nears the configured budget, the agent sheds load in a
 * fixed order instead of growing until the kernel (or the container's limit) kills it.
 *
 *   step 1, stop_reading     at 80 % of the budget: the tailer stops reading files (lines wait
 *                            on disk, where they cost nothing; offsets are not advanced)
 *   step 2, refuse_spans     at 90 %: spans and OTLP requests are answered 429 / UNAVAILABLE
 *                            (the clients retry; nothing accepted is dropped)
 *   step 3, merge_intervals  at 95 %: statsd intervals are merged into the interval waiting for
 *                            each collector instead of queued as new batches (counters add,
 *                            gauges keep the last value, sketches merge: resolution is lost,
 *                            not data)
 *
 * Files first because they lose nothing by waiting; spans next because their clients retry;
 * statsd last because UDP cannot be told to slow down. A step ends when RSS falls 5 % of the
 * budget below where it started (so the guard does not flap around one threshold), and the
 * steps end in the reverse order. Every start of a step is counted
 * (`plumb_agent_memory_shed_total{action}`), the step in force is a gauge.
 */
import type { Telemetry } from '../../shared/telemetry.ts';
import type { Logger } from '../../shared/log.ts';

export const SHED_ACTIONS = ['stop_reading', 'refuse_spans', 'merge_intervals'] as const;
export type ShedAction = (typeof SHED_ACTIONS)[number];

/** Where each step starts, as a share of the budget; it ends HYSTERESIS lower. */
export const SHED_AT: Readonly<Record<ShedAction, number>> = { stop_reading: 0.8, refuse_spans: 0.9, merge_intervals: 0.95 };
const HYSTERESIS = 0.05;

export interface MemoryGuardConfig {
  /** RSS budget in bytes; 0 turns the guard off. */
  budgetBytes: number;
  checkIntervalMs: number;
}

export interface MemoryGuardDeps {
  telemetry: Telemetry;
  log: Logger;
  /** The process's resident set; tests give their own. */
  rss?: () => number;
}

export class MemoryGuard {
  private readonly config: MemoryGuardConfig;
  private readonly deps: MemoryGuardDeps;
  private readonly readRss: () => number;
  /** 0: nothing shed; n: the first n steps of SHED_ACTIONS are in force. */
  private level = 0;
  private lastRss = 0;
  private timer: NodeJS.Timeout | null = null;
  private waiters: (() => void)[] = [];
  private readonly shed: { inc(labels: { action: ShedAction }, n?: number): void };
  private readonly refused: { inc(labels: { door: string }, n?: number): void };

  constructor(config: MemoryGuardConfig, deps: MemoryGuardDeps) {
    this.config = { ...config };
    this.deps = deps;
    this.readRss = deps.rss ?? (() => process.memoryUsage.rss());
    const t = deps.telemetry;
    const shed = t.counter('plumb_agent_memory_shed_total', 'times the memory guard started a step of load shedding, by action (stop_reading, refuse_spans, merge_intervals)', ['action']);
    for (const action of SHED_ACTIONS) shed.inc({ action }, 0);
    this.shed = shed;
    const refused = t.counter('plumb_agent_memory_refused_total', 'items refused by the memory guard, by door (spans: spans answered 429; otlp: OTLP requests answered busy; intervals: statsd intervals merged instead of queued)', ['door']);
    for (const door of ['spans', 'otlp', 'intervals']) refused.inc({ door }, 0);
    this.refused = refused;
    t.gaugeFrom('plumb_agent_memory_shed_level', 'steps of load shedding in force (0 none, 1 files not read, 2 and spans refused, 3 and metric intervals merged)', () => this.level);
    t.gaugeFrom('plumb_agent_memory_rss_bytes', 'resident set of the agent process at the last check', () => this.lastRss);
    t.gaugeFrom('plumb_agent_memory_budget_bytes', 'agent.memory.budget (0: no guard)', () => this.config.budgetBytes);
  }

  get enabled(): boolean {
    return this.config.budgetBytes > 0;
  }

  /** The steps in force, in the order they started. */
  get actions(): ShedAction[] {
    return SHED_ACTIONS.slice(0, this.level);
  }

  get readingStopped(): boolean {
    return this.level >= 1;
  }

  get refusingSpans(): boolean {
    return this.level >= 2;
  }

  get mergingIntervals(): boolean {
    return this.level >= 3;
  }

  start(): void {
    if (!this.enabled || this.timer !== null) return;
    this.check();
    this.timer = setInterval(() => this.check(), this.config.checkIntervalMs);
    this.timer.unref();
  }

  /** Ends every step (a stopping agent must be free to drain) and wakes whoever waits. */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.level = 0;
    this.wake();
  }

  /** A new budget (a reloaded config), applied at once. */
  setBudget(bytes: number): void {
    this.config.budgetBytes = bytes;
    if (bytes <= 0) this.stop();
    else {
      this.check();
      this.start();
    }
  }

  /** Reads RSS and moves to the step it calls for; public so tests need not wait for the timer. */
  check(): void {
    const rss = (this.lastRss = this.readRss());
    const budget = this.config.budgetBytes;
    if (budget <= 0) return;
    const before = this.level;
    let level = before;
    while (level < SHED_ACTIONS.length && rss >= SHED_AT[SHED_ACTIONS[level]] * budget) {
      this.shed.inc({ action: SHED_ACTIONS[level] });
      level++;
    }
    while (level > 0 && rss < (SHED_AT[SHED_ACTIONS[level - 1]] - HYSTERESIS) * budget) level--;
    if (level === before) return;
    this.level = level;
    const mib = (n: number): number => Math.round(n / 1048576);
    if (level > before) this.deps.log.warn({ rssMiB: mib(rss), budgetMiB: mib(budget), actions: this.actions }, 'agent memory near its budget: shedding load');
    else this.deps.log.warn({ rssMiB: mib(rss), budgetMiB: mib(budget), actions: this.actions }, 'agent memory back under its budget: load shedding eased');
    if (!this.readingStopped) this.wake();
  }

  /** Resolves when files may be read (at once when they may). */
  whenReadingAllowed(): Promise<void> {
    if (!this.readingStopped) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** True when spans must be refused; counts them. */
  refuseSpans(n: number): boolean {
    if (!this.refusingSpans) return false;
    this.refused.inc({ door: 'spans' }, n);
    return true;
  }

  /** True when an OTLP request must be answered busy; counts it. */
  refuseOtlp(): boolean {
    if (!this.refusingSpans) return false;
    this.refused.inc({ door: 'otlp' });
    return true;
  }

  /** True when a statsd interval must be merged rather than queued; counts it. */
  mergeInterval(): boolean {
    if (!this.mergingIntervals) return false;
    this.refused.inc({ door: 'intervals' });
    return true;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }
}
