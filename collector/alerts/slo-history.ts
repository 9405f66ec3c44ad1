/**
 * A bounded history of each SLO's remaining budget and burn rates, for the console's charts.
 * Sampled from the engine's last evaluation on a timer; kept in memory only, so a chart starts
 * at the collector's start. At most MAX_POINTS per SLO: when full, every other point is dropped
 * and the spacing doubles, so the history always spans what the collector has seen of the period.
 */
import type { SloView } from './exposition.ts';

const MAX_POINTS = 480;

export interface SloSample {
  at: number;
  /** labels (as JSON) → remaining budget share */
  budget: Record<string, number>;
  /** `${window} ${labels as JSON}` → burn rate */
  burn: Record<string, number>;
}

interface Track {
  period: number;
  spacing: number;
  samples: SloSample[];
}

export class SloHistory {
  private readonly source: () => readonly SloView[];
  private readonly intervalMs: number;
  private readonly tracks = new Map<string, Track>();
  private timer: NodeJS.Timeout | null = null;

  constructor(source: () => readonly SloView[], intervalMs: number) {
    this.source = source;
    this.intervalMs = intervalMs;
  }

  start(): void {
    if (this.timer !== null) return;
    this.timer = setInterval(() => this.sample(Date.now()), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Takes one sample of every SLO (the timer calls it; tests may too). */
  sample(now: number): void {
    const seen = new Set<string>();
    for (const v of this.source()) {
      seen.add(v.name);
      let t = this.tracks.get(v.name);
      if (t === undefined || t.period !== v.period) {
        t = { period: v.period, spacing: this.intervalMs, samples: [] };
        this.tracks.set(v.name, t);
      }
      if (v.budgetRemaining.length === 0 && v.burnRates.length === 0) continue;
      const last = t.samples.at(-1);
      if (last !== undefined && now - last.at < t.spacing) continue;
      const budget: Record<string, number> = {};
      for (const p of v.budgetRemaining) budget[JSON.stringify(p.labels)] = p.value;
      const burn: Record<string, number> = {};
      for (const p of v.burnRates) burn[`${p.window} ${JSON.stringify(p.labels)}`] = p.value;
      t.samples.push({ at: now, budget, burn });
      while (t.samples.length > 0 && t.samples[0].at < now - t.period) t.samples.shift();
      if (t.samples.length >= MAX_POINTS) {
        t.samples = t.samples.filter((_, i) => i % 2 === 0);
        t.spacing *= 2;
      }
    }
    for (const name of this.tracks.keys()) if (!seen.has(name)) this.tracks.delete(name);
  }

  samples(slo: string): readonly SloSample[] {
    return this.tracks.get(slo)?.samples ?? [];
  }
}
