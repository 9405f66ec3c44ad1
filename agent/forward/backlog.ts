/**
 * Metric intervals a collector's lane could not take (its spool, or its memory queue, is full),
 * merged into one pending interval per collector instead of dropped: counters add, gauges keep
 * the last value, sets unite, sketches merge, exact samples join while they stay few. A long
 * outage then costs resolution (one interval holding many), not data. The merged form is bounded
 * by maxSeries series and maxEvents events and checks: what does not fit is dropped and counted.
 */
import { decodeSketch, encodeSketch, mergeSketch, SKETCH_EXACT_SAMPLES } from '../../shared/sketch.ts';
import type { MetricBatch, ServiceCheck, StatsdEvent, WireMetric } from '../../shared/wire.ts';

export interface BacklogLimits {
  maxSeries: number;
  maxSetMembers: number;
  maxEvents: number;
}

/** What an agent interval (or one collector's part of it) holds. */
export type IntervalPart = Pick<MetricBatch, 'start' | 'end' | 'metrics' | 'events' | 'serviceChecks'>;

/** Why merged data was dropped: more series, or events and checks, than the merged form may hold. */
export type BacklogDropReason = 'merge_max_series' | 'merge_max_events';

export class PendingInterval {
  start: number;
  end: number;
  /** Intervals merged in, the first included. */
  intervals = 0;
  private readonly limits: BacklogLimits;
  private readonly metrics = new Map<string, WireMetric>();
  private events: StatsdEvent[] = [];
  private readonly checks = new Map<string, ServiceCheck>();

  constructor(limits: BacklogLimits, first: IntervalPart, dropped: (reason: BacklogDropReason, n: number) => void) {
    this.limits = limits;
    this.start = first.start;
    this.end = first.end;
    this.merge(first, dropped);
  }

  get series(): number {
    return this.metrics.size;
  }

  /** Merges a later interval in. */
  merge(part: IntervalPart, dropped: (reason: BacklogDropReason, n: number) => void): void {
    this.intervals++;
    this.start = Math.min(this.start, part.start);
    this.end = Math.max(this.end, part.end);
    let overSeries = 0;
    for (const m of part.metrics) {
      const key = `${m.type}|${m.name}|${m.tags.join(',')}`;
      const held = this.metrics.get(key);
      if (held === undefined) {
        if (this.metrics.size >= this.limits.maxSeries) {
          overSeries++;
          continue;
        }
        this.metrics.set(key, copyMetric(m));
      } else if (!mergeMetric(held, m, this.limits.maxSetMembers)) {
        // not mergeable (an OTLP histogram whose bounds changed): the later one stands
        this.metrics.set(key, copyMetric(m));
        overSeries++;
      }
    }
    if (overSeries > 0) dropped('merge_max_series', overSeries);
    let overEvents = 0;
    for (const e of part.events) {
      if (this.events.length >= this.limits.maxEvents) overEvents++;
      else this.events.push(e);
    }
    for (const c of part.serviceChecks) {
      // a check's latest status is what counts
      const key = `${c.name}|${c.hostname ?? ''}|${c.tags.join(',')}`;
      if (!this.checks.has(key) && this.checks.size >= this.limits.maxEvents) overEvents++;
      else this.checks.set(key, c);
    }
    if (overEvents > 0) dropped('merge_max_events', overEvents);
  }

  /** The merged interval as one batch part. */
  toPart(): IntervalPart {
    return { start: this.start, end: this.end, metrics: [...this.metrics.values()], events: this.events, serviceChecks: [...this.checks.values()] };
  }
}

function copyMetric(m: WireMetric): WireMetric {
  switch (m.type) {
    case 's':
      return { ...m, members: [...m.members] };
    case 'ms':
    case 'h':
    case 'd': {
      const c = { ...m };
      if (m.samples) c.samples = [...m.samples];
      if (m.weights) c.weights = [...m.weights];
      return c;
    }
    case 'hist':
      return { ...m, counts: [...m.counts] };
    default:
      return { ...m };
  }
}

/** Merges `later` into `held` (same key); false when they cannot be merged. */
function mergeMetric(held: WireMetric, later: WireMetric, maxSetMembers: number): boolean {
  switch (held.type) {
    case 'c':
      held.value += (later as typeof held).value;
      return true;
    case 'g':
      held.value = (later as typeof held).value;
      return true;
    case 's': {
      const members = new Set(held.members);
      for (const m of (later as typeof held).members) {
        if (members.size >= maxSetMembers) break;
        members.add(m);
      }
      held.members = [...members];
      return true;
    }
    case 'ms':
    case 'h':
    case 'd': {
      const l = later as typeof held;
      const into = decodeSketch(held.sketch, held);
      mergeSketch(into, decodeSketch(l.sketch, l));
      held.sketch = encodeSketch(into);
      held.count += l.count;
      held.sum += l.sum;
      held.min = Math.min(held.min, l.min);
      held.max = Math.max(held.max, l.max);
      if (held.samples && l.samples && held.samples.length + l.samples.length <= SKETCH_EXACT_SAMPLES) {
        const hw = held.weights ?? new Array<number>(held.samples.length).fill(1);
        const lw = l.weights ?? new Array<number>(l.samples.length).fill(1);
        held.samples = held.samples.concat(l.samples);
        if (held.weights || l.weights) held.weights = hw.concat(lw);
      } else {
        delete held.samples;
        delete held.weights;
      }
      return true;
    }
    case 'hist': {
      const l = later as typeof held;
      if (l.bounds.length !== held.bounds.length || l.bounds.some((b, i) => b !== held.bounds[i])) return false;
      for (let i = 0; i < held.counts.length; i++) held.counts[i] += l.counts[i] ?? 0;
      held.count += l.count;
      held.sum += l.sum;
      return true;
    }
    case 'sum': {
      // a summary's count and sum are cumulative and its quantiles its own: the latest stands
      const l = later as typeof held;
      held.quantiles = l.quantiles;
      held.count = l.count;
      held.sum = l.sum;
      return true;
    }
  }
}
