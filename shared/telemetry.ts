/**
 * plumb's own metrics. One Telemetry per process (or per role instance in tests) owns a
 * prom-client registry; components ask it for their instruments by name so names, help texts
 * and label sets are declared once. Every name starts with `plumb_`.
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';

export class Telemetry {
  readonly registry: Registry;
  private readonly instruments = new Map<string, Counter | Gauge | Histogram>();

  constructor(options: { defaultMetrics?: boolean } = {}) {
    this.registry = new Registry();
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'plumb_' });
  }

  counter<L extends string = string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.get(name, () => new Counter({ name, help, labelNames, registers: [this.registry] })) as Counter<L>;
  }

  gauge<L extends string = string>(name: string, help: string, labelNames: readonly L[] = [], collect?: (this: Gauge<L>) => void): Gauge<L> {
    return this.get(name, () => new Gauge({ name, help, labelNames, registers: [this.registry], ...(collect ? { collect } : {}) })) as Gauge<L>;
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

  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
