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
  /** Series that could not be handed over by the deadline (kept in the data dir). */
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
    this.sent = t.counter('plumb_fleet_handoffs_sent_total', 'handoff requests (series of a stopping collector) acknowledged by their new owner, by peer', ['peer']);
    this.received = t.counter('plumb_fleet_handoffs_received_total', 'handoff requests taken from a stopping collector');
    this.seriesSent = t.counter('plumb_fleet_handoff_series_sent_total', 'series handed to their new owner on a graceful stop, by peer', ['peer']);
    this.seriesReceived = t.counter('plumb_fleet_handoff_series_received_total', 'series merged in from a stopping collector');
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
    const base = `handoff:${self}@${Date.now()}`;
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
    this.log.info({ moved: result.moved, kept: result.kept }, 'series handed to their new owners');
    return result;
  }

  /** The receiving side: journal and merge. */
  async take(intake: MetricIntake, body: HandoffBody): Promise<{ merged: number; duplicate: boolean }> {
    const r = await intake.acceptHandoff(body.id, body.chunks);
    if (!r.duplicate) {
      this.received.inc();
      this.seriesReceived.inc(r.merged);
      this.log.info({ from: body.from, series: r.merged }, 'series handed over by a stopping collector');
    }
    return r;
  }
}
