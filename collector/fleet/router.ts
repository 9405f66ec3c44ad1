/**
 * One owner per series: any collector takes any agent batch, keeps the series it owns and
 * forwards each other series' partial aggregate to its owner (shared/membership.ts), over
 * /internal/v1/metrics, before it answers the agent.
 *
 * Every part, the kept one included, carries the id `<batch id>><owner>`: derived only from the
 * agent's batch and the owner, so a batch the agent sends again — to this collector or, through a
 * load balancer, to another — yields the same part ids, and each owner's dedupe drops the parts
 * it already applied. The agent is answered 2xx only once every part is applied where it belongs;
 * otherwise 503, and its retry (from its memory queue or disk spool) is the one retry loop: the
 * collector keeps no second queue to lose or double count on a crash.
 */
import type { Logger } from '../../shared/log.ts';
import { LogOnce } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { checkKey, eventKey, seriesKey, type Membership } from '../../shared/membership.ts';
import { errorMessage } from '../../shared/errors.ts';
import type { MetricBatch } from '../../shared/wire.ts';
import type { MetricIntake } from '../ingest/metrics.ts';
import { INTERNAL_METRICS_PATH, type Peers } from './peers.ts';

/** The id of the part of batch `id` that `owner` applies. */
export function partId(id: string, owner: string): string {
  return `${id}>${owner}`;
}

export interface RoutedResult {
  /** Metrics applied here (owned by this collector). */
  kept: number;
  /** Metrics forwarded to their owners. */
  forwarded: number;
  refused: number;
  /** Every part was a duplicate: the whole batch had been applied before. */
  duplicate: boolean;
}

type Part = Pick<MetricBatch, 'metrics' | 'events' | 'serviceChecks'>;

export class FleetRouter {
  private readonly membership: Membership;
  private readonly peers: Peers;
  private readonly intake: MetricIntake;
  private readonly once: LogOnce;
  private readonly forwardedSeries;
  private readonly forwardedBytes;
  private readonly forwardFailures;
  private readonly keptSeries;
  private readonly receivedSeries;
  /** Forwarded series and bytes since start (for tests and the fleet status). */
  readonly totals = { forwardedSeries: 0, forwardedBytes: 0, keptSeries: 0, receivedSeries: 0 };

  constructor(membership: Membership, peers: Peers, intake: MetricIntake, ctx: { telemetry: Telemetry; log: Logger }) {
    this.membership = membership;
    this.peers = peers;
    this.intake = intake;
    this.once = new LogOnce(ctx.log);
    const t = ctx.telemetry;
    this.forwardedSeries = t.counter('plumb_fleet_forwarded_series_total', 'series (partial aggregates of one interval) forwarded to the collector that owns them, by peer', ['peer']);
    this.forwardedBytes = t.counter('plumb_fleet_forwarded_bytes_total', 'bytes (gzip) sent to other collectors: forwarded series and handoffs, by peer', ['peer']);
    this.forwardFailures = t.counter('plumb_fleet_forward_failures_total', 'forwards to another collector that failed (the agent is answered 503 and sends the batch again), by peer', ['peer']);
    this.keptSeries = t.counter('plumb_fleet_kept_series_total', 'series of agent batches this collector owns and applied itself');
    this.receivedSeries = t.counter('plumb_fleet_received_series_total', 'series other collectors forwarded to this one, their owner');
  }

  /** Applies the owned part of an agent batch and forwards the rest; throws when any part could not be placed. */
  async accept(batch: MetricBatch): Promise<RoutedResult> {
    const self = this.membership.self() ?? '';
    const parts = new Map<string, Part>();
    const partOf = (owner: string | undefined): Part => {
      const o = owner ?? self;
      let p = parts.get(o);
      if (p === undefined) parts.set(o, (p = { metrics: [], events: [], serviceChecks: [] }));
      return p;
    };
    for (const m of batch.metrics) partOf(this.membership.owner(seriesKey(m))).metrics.push(m);
    for (const e of batch.events) partOf(this.membership.owner(eventKey(e))).events.push(e);
    for (const c of batch.serviceChecks) partOf(this.membership.owner(checkKey(c))).serviceChecks.push(c);

    const result: RoutedResult = { kept: 0, forwarded: 0, refused: 0, duplicate: true };
    const work: Promise<void>[] = [];
    for (const [owner, part] of parts) {
      const sub: MetricBatch = { id: partId(batch.id, owner), agent: batch.agent, seq: batch.seq, start: batch.start, end: batch.end, ...part };
      if (owner === self) {
        work.push(
          this.intake.accept(sub).then((r) => {
            result.duplicate &&= r.duplicate;
            if (r.duplicate) return;
            result.kept += part.metrics.length;
            result.refused += r.refused;
            this.keptSeries.inc(part.metrics.length);
            this.totals.keptSeries += part.metrics.length;
          }),
        );
      } else {
        work.push(this.forward(owner, sub).then((dup) => {
          result.duplicate &&= dup;
          if (!dup) result.forwarded += part.metrics.length;
        }));
      }
    }
    const settled = await Promise.allSettled(work);
    const failed = settled.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return result;
  }

  private async forward(owner: string, sub: MetricBatch): Promise<boolean> {
    try {
      const res = await this.peers.post(owner, INTERNAL_METRICS_PATH, sub);
      this.forwardedBytes.inc({ peer: owner }, res.bytes);
      this.totals.forwardedBytes += res.bytes;
      const dup = (JSON.parse(res.body) as { duplicate?: boolean }).duplicate === true;
      if (!dup) {
        this.forwardedSeries.inc({ peer: owner }, sub.metrics.length);
        this.totals.forwardedSeries += sub.metrics.length;
      }
      return dup;
    } catch (err) {
      this.forwardFailures.inc({ peer: owner });
      this.once.warn(`forward:${owner}`, { peer: owner, batch: sub.id, err: errorMessage(err) }, 'series could not be forwarded to their owner; the agent is asked to send the batch again');
      throw err;
    }
  }

  /** A part another collector forwarded: applied here as it is, never forwarded again (members may briefly disagree; no ping-pong). */
  async receive(sub: MetricBatch): Promise<{ refused: number; duplicate: boolean }> {
    const r = await this.intake.accept(sub);
    if (!r.duplicate) {
      this.receivedSeries.inc(sub.metrics.length);
      this.totals.receivedSeries += sub.metrics.length;
    }
    return r;
  }

  /** Counts bytes a handoff sent. */
  countBytes(peer: string, bytes: number): void {
    this.forwardedBytes.inc({ peer }, bytes);
    this.totals.forwardedBytes += bytes;
  }
}
