/**
 * Scale-down without loss: on a graceful stop, a collector of a fleet offers every series it
 * holds (cumulative counters, sums and counts, window sketches, set members, gauges) to the
 * collector that owns it among the others, over /internal/v1/handoff. The receiver journals and
 * merges them (counters add, sketches merge slot by slot); the sender then journals their
 * removal, so a later start on the same data dir does not bring them back and count them twice.
 * Whatever is not acknowledged by the deadline stays in the data dir.
 */
import { retry } from '../../shared/retry.ts';
import { ownerOf, type Membership } from '../../shared/membership.ts';
import { errorMessage } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import type { MetricIntake } from '../ingest/metrics.ts';
import type { SeriesRef } from '../metrics/store.ts';
import { INTERNAL_HANDOFF_PATH, type Peers } from './peers.ts';

/** Series per handoff request: keeps each body far below collector.maxBodyBytes. */
const SERIES_PER_REQUEST = 5000;

export interface HandoffBody {
  /** Stable across retries of one handoff, distinct between handoffs: the receiver's dedupe key. */
  id: string;
  from: string;
  chunks: unknown[];
}

export interface HandoffResult {
  /** Series moved, by new owner. */
  moved: Record<string, number>;
  /** Series that could not be handed over by the deadline, or (rebalance) whose owner is not ready: kept here. */
  kept: number;
}

export class Handoff {
  private readonly sent;
  private readonly received;
  private readonly seriesSent;
  private readonly seriesReceived;
  private readonly log: Logger;

  constructor(ctx: { telemetry: Telemetry; log: Logger }) {
    const t = ctx.telemetry;
    this.log = ctx.log;
    this.sent = t.counter('plumb_fleet_handoffs_sent_total', 'handoff requests (series of a stopping collector, or moved after the member list changed) acknowledged by their new owner, by peer', ['peer']);
    this.received = t.counter('plumb_fleet_handoffs_received_total', 'handoff requests taken from a stopping collector or one that no longer owns the series');
    this.seriesSent = t.counter('plumb_fleet_handoff_series_sent_total', 'series handed to their new owner on a graceful stop or after the member list changed, by peer', ['peer']);
    this.seriesReceived = t.counter('plumb_fleet_handoff_series_received_total', 'series merged in from a stopping collector or one that no longer owns them');
  }

  /** Hands every series to its owner among the other members; gives up at `deadline` (Unix ms). */
  async handOver(intake: MetricIntake, membership: Membership, peers: Peers, deadline: number, countBytes: (peer: string, bytes: number) => void): Promise<HandoffResult> {
    const self = membership.self() ?? '';
    await membership.refresh();
    // only members that take data now: when the whole fleet stops, nobody waits for the others
    const listed = membership.members().filter((m) => m !== self);
    const ready = await Promise.all(listed.map((m) => peers.ready(m, 1000)));
    const others = listed.filter((_, i) => ready[i]);
    const result: HandoffResult = { moved: {}, kept: 0 };
    if (others.length === 0) {
      this.log.info({ series: intake.store.size, members: listed }, 'no other collector of the fleet is ready: series stay in the data dir');
      result.kept = intake.store.size;
      return result;
    }
    const groups = intake.store.exportSeries((route) => ownerOf(route, others));
    await this.send(groups, self, 'handoff', intake, peers, deadline, countBytes, result);
    this.log.info({ moved: result.moved, kept: result.kept }, 'series handed to their new owners');
    return result;
  }

  /**
   * After the member list changed (a collector joined, or came back on a new address): hands the
   * series this collector holds whose owner is now another ready member to that owner, the same
   * way a graceful stop does, and stops exposing them once the owner acknowledged them. Batches
   * being applied are let finish first, and new ones wait until the handoff ends (at `deadline`
   * at the latest), so no increment lands on a series between its export and its removal.
   */
  async rebalance(intake: MetricIntake, membership: Membership, peers: Peers, deadline: number, countBytes: (peer: string, bytes: number) => void): Promise<HandoffResult> {
    const self = membership.self() ?? '';
    const result: HandoffResult = { moved: {}, kept: 0 };
    const members = membership.members();
    if (!membership.isMember()) return result; // not listed (yet, or any more): the graceful stop hands its series over
    const moving = new Set<string>();
    for (const m of members) if (m !== self) moving.add(m);
    if (intake.store.countRoutes((route) => moving.has(ownerOf(route, members))) === 0) return result;
    const ready = new Set<string>();
    await Promise.all([...moving].map(async (m) => {
      if (await peers.ready(m, 1000)) ready.add(m);
    }));
    result.kept = intake.store.countRoutes((route) => {
      const owner = ownerOf(route, members);
      return moving.has(owner) && !ready.has(owner);
    });
    if (ready.size === 0) return result;
    const release = await intake.hold(deadline);
    try {
      const groups = intake.store.exportSeries((route) => {
        const owner = ownerOf(route, members);
        return ready.has(owner) ? owner : undefined;
      });
      await this.send(groups, self, 'rebalance', intake, peers, deadline, countBytes, result);
    } finally {
      release();
    }
    this.log.info({ moved: result.moved, kept: result.kept, members }, 'series handed to their new owners after the member list changed');
    return result;
  }

  private async send(groups: Map<string, { chunks: unknown[]; keys: SeriesRef[] }>, self: string, kind: string, intake: MetricIntake, peers: Peers, deadline: number, countBytes: (peer: string, bytes: number) => void, result: HandoffResult): Promise<void> {
    const base = `${kind}:${self}@${Date.now()}`;
    const signal = AbortSignal.timeout(Math.max(0, deadline - Date.now()));
    await Promise.all(
      [...groups].map(async ([peer, group]) => {
        // chunks are whole families; split a group into requests of about SERIES_PER_REQUEST series
        const requests: { chunks: unknown[]; keys: typeof group.keys }[] = [];
        let cur: { chunks: unknown[]; keys: typeof group.keys } = { chunks: [], keys: [] };
        let k = 0;
        for (const chunk of group.chunks as { series: unknown[] }[]) {
          for (let i = 0; i < chunk.series.length; i += SERIES_PER_REQUEST) {
            const series = chunk.series.slice(i, i + SERIES_PER_REQUEST);
            cur.chunks.push({ ...chunk, series });
            cur.keys.push(...group.keys.slice(k, k + series.length));
            k += series.length;
            if (cur.keys.length >= SERIES_PER_REQUEST) {
              requests.push(cur);
              cur = { chunks: [], keys: [] };
            }
          }
        }
        if (cur.keys.length > 0) requests.push(cur);
        for (let n = 0; n < requests.length; n++) {
          const req = requests[n];
          const body: HandoffBody = { id: `${base}#${n}>${peer}`, from: self, chunks: req.chunks };
          try {
            const res = await retry(() => peers.post(peer, INTERNAL_HANDOFF_PATH, body, signal), { initialMs: 100, maxMs: 2000, signal });
            countBytes(peer, res.bytes);
            await intake.dropSeries(req.keys);
            this.sent.inc({ peer });
            this.seriesSent.inc({ peer }, req.keys.length);
            result.moved[peer] = (result.moved[peer] ?? 0) + req.keys.length;
          } catch (err) {
            result.kept += req.keys.length;
            this.log.warn({ peer, series: req.keys.length, err: errorMessage(err) }, 'series could not be handed over before the deadline; they stay in the data dir');
          }
        }
      }),
    );
  }

  /** The receiving side: journal and merge. */
  async take(intake: MetricIntake, body: HandoffBody): Promise<{ merged: number; duplicate: boolean }> {
    const r = await intake.acceptHandoff(body.id, body.chunks);
    if (!r.duplicate) {
      this.received.inc();
      this.seriesReceived.inc(r.merged);
      this.log.info({ from: body.from, series: r.merged }, 'series handed over by another collector');
    }
    return r;
  }
}
