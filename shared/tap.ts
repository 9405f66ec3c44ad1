/**
 * The live tap: GET /api/v1/tap?component=<id>&filter=<expr>&limit=<n>&rate=<per s> streams, as
 * NDJSON, what passes one component: `{component, at, kind: "event"|"metric"|"span", item}`.
 *
 * Components publish through a TapPoint. While nobody taps a point its `active` is false and the
 * component's one check (`if (point.active)`) is all it costs: items are only turned into objects
 * for a tap that wants them. Every tap is bounded:
 *
 * - `rate` items a second at most (token bucket, default 100, at most MAX_RATE); more are dropped;
 * - `limit` items in all (default 1000, at most MAX_LIMIT), then the stream ends;
 * - a buffer of BUFFER_ITEMS items per client; what a slow client cannot take is dropped;
 * - at most `maxTaps` open at once (then 429);
 * - a filter evaluates at most FILTER_BUDGET items a second; items beyond are skipped unseen.
 *
 * Drops are counted (plumb_tap_dropped_total{reason}) and told to the client at most once a
 * second as a line `{component, at, kind: "dropped", item: {rate, buffer, filter_budget}}`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import { PlumbError } from './errors.ts';
import { compileFilter, type Filter } from './tap-filter.ts';
import type { Telemetry } from './telemetry.ts';

export type TapKind = 'event' | 'metric' | 'span';

export const TAP_PATH = '/api/v1/tap';
export const DEFAULT_RATE = 100;
export const MAX_RATE = 10_000;
export const DEFAULT_LIMIT = 1000;
export const MAX_LIMIT = 1_000_000;
export const BUFFER_ITEMS = 1000;
export const FILTER_BUDGET = 50_000;
export const DEFAULT_MAX_TAPS = 4;

type DropReason = 'rate' | 'buffer' | 'filter_budget';

/** Where one component's items can be seen. */
export class TapPoint {
  readonly component: string;
  readonly kind: TapKind;
  /** True while at least one tap is open here; check it before building anything to publish. */
  active = false;
  readonly taps = new Set<Tap>();

  constructor(component: string, kind: TapKind) {
    this.component = component;
    this.kind = kind;
  }

  /** Offers items to every tap here. Call only when `active`. */
  publish(items: Iterable<unknown>): void {
    const at = new Date().toISOString();
    // a generator is read once: several taps share one list
    const list = this.taps.size > 1 && !Array.isArray(items) ? [...items] : items;
    for (const tap of this.taps) tap.offer(list, at);
  }

  /** One item. */
  publishOne(item: unknown): void {
    this.publish([item]);
  }
}

export interface TapOptions {
  filter?: string;
  limit?: number;
  rate?: number;
}

/** One client's tap: filter, token bucket, limit, buffer. */
export class Tap {
  readonly point: TapPoint;
  private readonly filter: Filter | null;
  private readonly rate: number;
  private remaining: number;
  private tokens: number;
  private refilledAt = Date.now();
  private budget = FILTER_BUDGET;
  private budgetAt = Date.now();
  private readonly buffer: string[] = [];
  private readonly dropped: Record<DropReason, number> = { rate: 0, buffer: 0, filter_budget: 0 };
  private droppedShown = 0;
  private droppedTotal = 0;
  private noticeAt = 0;
  private readonly counter: Counter<'reason'>;
  private wake: (() => void) | null = null;
  closed = false;

  constructor(point: TapPoint, options: Required<Omit<TapOptions, 'filter'>> & { filter: Filter | null }, counter: Counter<'reason'>) {
    this.point = point;
    this.filter = options.filter;
    this.rate = options.rate;
    this.remaining = options.limit;
    this.tokens = options.rate;
    this.counter = counter;
  }

  private drop(reason: DropReason, n = 1): void {
    this.dropped[reason] += n;
    this.droppedTotal += n;
    this.counter.inc({ reason }, n);
  }

  offer(items: Iterable<unknown>, at: string): void {
    if (this.closed) return;
    const now = Date.now();
    if (now - this.refilledAt >= 1) {
      this.tokens = Math.min(this.rate, this.tokens + ((now - this.refilledAt) / 1000) * this.rate);
      this.refilledAt = now;
    }
    if (now - this.budgetAt >= 1000) {
      this.budget = FILTER_BUDGET;
      this.budgetAt = now;
    }
    for (const item of items) {
      if (this.remaining <= 0) break;
      if (this.filter !== null) {
        if (this.budget <= 0) {
          this.drop('filter_budget');
          continue;
        }
        this.budget--;
        if (!this.filter(item)) continue;
      }
      if (this.tokens < 1) {
        this.drop('rate');
        continue;
      }
      if (this.buffer.length >= BUFFER_ITEMS) {
        this.drop('buffer');
        continue;
      }
      this.tokens--;
      this.remaining--;
      this.buffer.push(JSON.stringify({ component: this.point.component, at, kind: this.point.kind, item }));
    }
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  /** True once the limit is reached and everything buffered is taken. */
  get done(): boolean {
    return this.remaining <= 0 && this.buffer.length === 0;
  }

  /** Waits until there is something to write, or `ms` passed. */
  async next(ms: number): Promise<void> {
    if (this.buffer.length > 0 || this.closed || this.done) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** What to write now: buffered lines, and a drop notice at most once a second. */
  take(): string {
    let out = this.buffer.length > 0 ? this.buffer.join('\n') + '\n' : '';
    this.buffer.length = 0;
    const now = Date.now();
    if (this.droppedTotal > this.droppedShown && now - this.noticeAt >= 1000) {
      this.noticeAt = now;
      this.droppedShown = this.droppedTotal;
      out += JSON.stringify({ component: this.point.component, at: new Date(now).toISOString(), kind: 'dropped', item: { ...this.dropped } }) + '\n';
    }
    return out;
  }

  close(): void {
    this.closed = true;
    this.notify();
  }
}

/** A role's tap points and its open taps. */
export class TapHub {
  private readonly points = new Map<string, TapPoint>();
  private readonly maxTaps: number;
  private open = 0;
  private readonly dropped: Counter<'reason'>;
  private readonly opened: Counter<'outcome'>;

  constructor(telemetry: Telemetry, maxTaps = DEFAULT_MAX_TAPS) {
    this.maxTaps = maxTaps;
    this.dropped = telemetry.counter('plumb_tap_dropped_total', 'items a live tap dropped, by reason (rate: over its rate; buffer: its client too slow; filter_budget: more than the filter may look at in a second)', ['reason']);
    this.opened = telemetry.counter('plumb_taps_total', 'live taps asked for, by outcome (opened, busy, invalid)', ['outcome']);
    telemetry.gaugeFrom('plumb_taps_open', 'live taps streaming now', () => this.open);
  }

  /** The point for `component` (created on first use). */
  point(component: string, kind: TapKind): TapPoint {
    let p = this.points.get(component);
    if (p === undefined) this.points.set(component, (p = new TapPoint(component, kind)));
    return p;
  }

  get components(): string[] {
    return [...this.points.keys()].sort();
  }

  /** Opens a tap; throws PlumbError (unknown component, bad filter, too many taps). */
  tap(component: string, options: TapOptions): Tap {
    const point = this.points.get(component);
    if (point === undefined) {
      this.opened.inc({ outcome: 'invalid' });
      throw new PlumbError('PLUMB_ERR_TAP_COMPONENT', `no component "${component}" to tap here; one of: ${this.components.join(', ')}`);
    }
    let filter: Filter | null;
    try {
      filter = options.filter !== undefined && options.filter.trim() !== '' ? compileFilter(options.filter) : null;
    } catch (err) {
      this.opened.inc({ outcome: 'invalid' });
      throw err;
    }
    if (this.open >= this.maxTaps) {
      this.opened.inc({ outcome: 'busy' });
      throw new PlumbError('PLUMB_ERR_TAP_BUSY', `${this.maxTaps} taps are open already; close one and try again`);
    }
    const tap = new Tap(point, { filter, limit: clamp(options.limit ?? DEFAULT_LIMIT, 1, MAX_LIMIT), rate: clamp(options.rate ?? DEFAULT_RATE, 1, MAX_RATE) }, this.dropped);
    this.open++;
    this.opened.inc({ outcome: 'opened' });
    point.taps.add(tap);
    point.active = true;
    return tap;
  }

  /** Ends every open tap (the role is stopping: its server must be able to close). */
  closeAll(): void {
    for (const p of this.points.values()) for (const t of [...p.taps]) t.close();
  }

  release(tap: Tap): void {
    tap.close();
    const point = tap.point;
    if (point.taps.delete(tap)) this.open--;
    point.active = point.taps.size > 0;
  }
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(n)));
}

function number(v: unknown, name: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new PlumbError('PLUMB_ERR_TAP_FILTER', `${name}: expected a positive number, not ${JSON.stringify(v)}`);
  return n;
}

/**
 * GET /api/v1/tap on a role's server (behind whatever auth the server has). The stream ends at
 * the limit, when the client goes away, or when the server stops.
 */
export function registerTapRoute(app: FastifyInstance, hub: TapHub): void {
  app.get(TAP_PATH, async (request: FastifyRequest, reply: FastifyReply) => {
    const q = request.query as Record<string, string | undefined>;
    let tap: Tap;
    try {
      if (q.component === undefined || q.component === '') throw new PlumbError('PLUMB_ERR_TAP_COMPONENT', `component is required; one of: ${hub.components.join(', ')}`);
      tap = hub.tap(q.component, { filter: q.filter, limit: number(q.limit, 'limit'), rate: number(q.rate, 'rate') });
    } catch (err) {
      if (!(err instanceof PlumbError)) throw err;
      const status = err.code === 'PLUMB_ERR_TAP_BUSY' ? 429 : err.code === 'PLUMB_ERR_TAP_COMPONENT' ? 404 : 400;
      return reply.code(status).send({ error: err.code, message: err.message });
    }
    const res = reply.raw;
    reply.hijack();
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    // the client learns the tap is open now, not at the first item
    res.flushHeaders();
    let gone = false;
    const onClose = (): void => {
      gone = true;
      hub.release(tap);
    };
    res.on('close', onClose);
    try {
      while (!gone && !tap.closed) {
        await tap.next(1000);
        const text = tap.take();
        if (text !== '' && !res.write(text)) {
          await new Promise<void>((resolve) => {
            res.once('drain', resolve);
            res.once('close', resolve);
          });
        }
        if (tap.done) break;
      }
    } finally {
      hub.release(tap);
      if (!gone) res.end();
    }
  });
}
