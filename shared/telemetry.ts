/**
 * plumb's own metrics. One Telemetry per process (or per role instance in tests) owns a
 * prom-client registry; components ask it for their instruments by name so names, help texts
 * and label sets are declared once. Every name starts with `plumb_`.
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';

export class Telemetry {
  readonly registry: Registry;
  private readonly instruments = new Map<string, Counter | Gauge | Histogram>();
  private readonly scrapeHooks: (() => void)[] = [];

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    if (options.defaultMetrics) {
      collectDefaultMetrics({ register: this.registry, prefix: 'plumb_' });
      // These three are gauges named like counters; Prometheus' linter rightly objects.
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
        this.registry.removeSingleMetric(`plumb_${name}`);
      }
    }
  }

  counter<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.get(name, () => new Counter({ name, help, labelNames, registers: [this.registry] })) as Counter<L>;
  }

  gauge<L extends string = string>(name: string, help: string, labelNames: readonly L[] = [], collect?: (this: Gauge<L>) => void): Gauge<L> {
    return this.get(name, () => new Gauge({ name, help, labelNames, registers: [this.registry], ...(collect ? { collect } : {}) })) as Gauge<L>;
  }

  private readonly reads = new Map<string, () => number>();

  /**
   * An unlabelled gauge whose value is read when scraped. Asked again for the same name (a
   * component rebuilt by a config reload), the gauge reads from the newest `read`.
   */
  gaugeFrom(name: string, help: string, read: () => number): Gauge {
    const reads = this.reads;
    reads.set(name, read);
    return this.gauge(name, help, [], function () {
      this.set(reads.get(name)!());
    });
  }

  histogram<L extends string = string>(name: string, help: string, labelNames: readonly L[] = [], buckets?: number[]): Histogram<L> {
    return this.get(name, () => new Histogram({ name, help, labelNames, registers: [this.registry], ...(buckets ? { buckets } : {}) })) as Histogram<L>;
  }

  private get(name: string, make: () => Counter | Gauge | Histogram): Counter | Gauge | Histogram {
    if (!name.startsWith('plumb_')) throw new Error(`self-metric ${name} must start with plumb_`);
    let m = this.instruments.get(name);
    if (!m) {
      m = make();
      this.instruments.set(name, m);
    }
    return m;
  }

  /**
   * Hot paths count in plain numbers; this makes such a number the source of a prom-client
   * counter, synced when scraped (`read` must only grow).
   */
  countFrom(counter: Counter<string>, read: () => number, labels?: Record<string, string>): void {
    let last = 0;
    if (labels) counter.inc(labels, 0);
    this.scrapeHooks.push(() => {
      const v = read();
      if (v > last) {
        if (labels) counter.inc(labels, v - last);
        else counter.inc(v - last);
      }
      last = v;
    });
  }

  /** Brings the counters fed by countFrom up to date (a scrape does it; so does the status model). */
  sync(): void {
    for (const hook of this.scrapeHooks) hook();
  }

  /** The exposition text of plumb's own metrics. */
  async metrics(): Promise<string> {
    this.sync();
    return this.registry.metrics();
  }
}
