/**
 * `POST /v1/metrics`: agent intervals into the metric store, each batch applied once, and durably.
 *
 * A new batch is written to the metrics journal (shared/journal.ts) before it is applied and
 * acknowledged; the journal's snapshot holds the whole store and the window of batch ids. After
 * a kill -9 the collector restores the snapshot and replays the journal, so its counters go on
 * from where they were and a batch the agent re-sends is still recognised as applied.
 */
import type { FastifyInstance } from 'fastify';
import type { Telemetry } from '../../shared/telemetry.ts';
import { Journal, PLUMB_ERR_JOURNAL_IO, type JournalOptions } from '../../shared/journal.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { PlumbError, errorMessage } from '../../shared/errors.ts';
import { METRICS_PATH, type MetricBatch } from '../../shared/wire.ts';
import type { MetricRefusal, MetricStore, RefusalReason, SeriesRef } from '../metrics/store.ts';
import { RecentIds } from './dedupe.ts';
import { metricBatchSchema } from './schemas.ts';
import { checkBatchItems, type ItemError, type UncheckedBatch } from './metric-items.ts';
import type { TapPoint } from '../../shared/tap.ts';

export interface AcceptResult {
  refused: number;
  duplicate: boolean;
  /** The metrics the store refused, by index in the batch. */
  refusals: MetricRefusal[];
}

/** Item errors listed in a response; the rest are only counted in its `reasons`. */
const MAX_LISTED_ERRORS = 100;

/** A journal record: the batch and the time it was applied at (lastSeen, window slots). */
interface BatchRecord {
  t: number;
  b: MetricBatch;
}

/** A journal record of the fleet: series handed over by another collector (h: its id, c: the series), or series this one handed away (d). */
interface HandoffRecord {
  t: number;
  h?: string;
  c?: unknown[];
  d?: SeriesRef[];
}

const IDS_CHUNK_PREFIX = '{"k":"ids"';

/**
 * State kept at the same cut as the metric store (the alert engine's windows): its chunks,
 * which begin with `prefix`, go into the journal's snapshot and come back at open; the batches
 * replayed after the snapshot reach it through the store's observer, at the time they were applied.
 */
export interface SnapshotPart {
  readonly prefix: string;
  snapshot(): Buffer[];
  restore(chunks: Buffer[]): void;
}

export interface MetricIntakeContext {
  telemetry: Telemetry;
  log: Logger;
}

/** The metric store behind its journal and its window of applied batch ids. */
export class MetricIntake {
  readonly store: MetricStore;
  readonly recent: RecentIds;
  private journal: Journal | null = null;
  /** Batches being journaled, so a copy arriving meanwhile waits for the outcome of the first. */
  private readonly inflight = new Map<string, Promise<AcceptResult>>();
  /** While series are handed away (hold()): new batches wait for it. */
  private gate: Promise<void> | null = null;
  /** Journal records skipped at open because their batch id was already in the restored window. */
  skippedReplays = 0;
  private readonly part: SnapshotPart | undefined;

  private constructor(store: MetricStore, dedupeWindow: number, part: SnapshotPart | undefined) {
    this.store = store;
    this.recent = new RecentIds(dedupeWindow);
    this.part = part;
  }

  /**
   * Restores the store and the id window from `options.dir`. Without a `part`, the store's
   * observer (alert rules) is not told of replayed samples; with one, the part's state was
   * restored at the snapshot's cut and the replayed batches after it are observed again, at
   * the time they were first applied.
   */
  static async open(store: MetricStore, options: JournalOptions & { dedupeWindow: number }, ctx: MetricIntakeContext, part?: SnapshotPart): Promise<MetricIntake> {
    const intake = new MetricIntake(store, options.dedupeWindow, part);
    const observer = store.observer;
    const onRefused = store.onRefused;
    if (part === undefined) store.observer = null;
    store.onRefused = null;
    try {
      intake.journal = await Journal.open(options, intake, ctx);
    } finally {
      store.observer = observer;
      store.onRefused = onRefused;
    }
    if (intake.skippedReplays > 0) ctx.log.info({ skipped: intake.skippedReplays }, 'metrics journal: records of batches already in the snapshot were skipped');
    return intake;
  }

  // ---- JournalHandler ----

  restore(chunks: Buffer[]): void {
    const storeChunks: Buffer[] = [];
    const partChunks: Buffer[] = [];
    const part = this.part;
    for (const c of chunks) {
      if (c.subarray(0, IDS_CHUNK_PREFIX.length).toString('latin1') === IDS_CHUNK_PREFIX) {
        for (const id of (JSON.parse(c.toString('utf8')) as { ids: string[] }).ids) this.recent.add(id);
      } else if (part !== undefined && c.subarray(0, part.prefix.length).toString('latin1') === part.prefix) {
        partChunks.push(c);
      } else {
        storeChunks.push(c);
      }
    }
    this.store.restore(storeChunks);
    part?.restore(partChunks);
  }

  replay(record: Buffer): void {
    const r = JSON.parse(record.toString('utf8')) as BatchRecord | HandoffRecord;
    if (!('b' in r)) {
      if (r.d !== undefined) this.store.removeSeries(r.d);
      if (r.h !== undefined && !this.recent.has(r.h)) {
        this.store.mergeSeries(r.c ?? []);
        this.recent.add(r.h);
      }
      return;
    }
    const { t, b } = r;
    if (this.recent.has(b.id)) {
      this.skippedReplays++;
      return;
    }
    this.store.apply(b, t);
    this.recent.add(b.id);
  }

  snapshot(): Buffer[] {
    const ids = this.recent.snapshot().map((c) => Buffer.from(`${IDS_CHUNK_PREFIX},"ids":${c.toString('utf8')}}`));
    return [...ids, ...this.store.snapshot(), ...(this.part?.snapshot() ?? [])];
  }

  // ---- intake ----

  /** Journals the batch, then applies it; a batch id seen before is acknowledged as a duplicate. */
  accept(batch: MetricBatch): Promise<AcceptResult> {
    if (this.gate !== null) return this.gate.then(() => this.accept(batch));
    if (this.recent.has(batch.id)) return Promise.resolve({ refused: 0, duplicate: true, refusals: [] });
    const first = this.inflight.get(batch.id);
    if (first !== undefined) return first.then(() => ({ refused: 0, duplicate: true, refusals: [] }));
    const journal = this.journal;
    if (journal === null) return Promise.reject(new PlumbError(PLUMB_ERR_JOURNAL_IO, 'the metrics journal is not open'));
    const t = Date.now();
    const run = journal
      .append(Buffer.from(JSON.stringify({ t, b: batch } satisfies BatchRecord)), () => {
        const refusals: MetricRefusal[] = [];
        const refused = this.store.apply(batch, t, refusals);
        this.recent.add(batch.id);
        return { refused, duplicate: false, refusals };
      })
      .finally(() => this.inflight.delete(batch.id));
    this.inflight.set(batch.id, run);
    return run;
  }

  /**
   * Series another collector hands over (its scale-down): journaled, then merged into the store;
   * an id seen before (the same handoff sent again) is acknowledged as a duplicate.
   */
  acceptHandoff(id: string, chunks: unknown[]): Promise<{ merged: number; duplicate: boolean }> {
    if (this.recent.has(id)) return Promise.resolve({ merged: 0, duplicate: true });
    const first = this.inflight.get(id);
    if (first !== undefined) return first.then(() => ({ merged: 0, duplicate: true }));
    const journal = this.journal;
    if (journal === null) return Promise.reject(new PlumbError(PLUMB_ERR_JOURNAL_IO, 'the metrics journal is not open'));
    let merged = 0;
    const run = journal
      .append(Buffer.from(JSON.stringify({ t: Date.now(), h: id, c: chunks } satisfies HandoffRecord)), () => {
        merged = this.store.mergeSeries(chunks);
        this.recent.add(id);
        return { refused: 0, duplicate: false, refusals: [] };
      })
      .finally(() => this.inflight.delete(id));
    this.inflight.set(id, run);
    return run.then(() => ({ merged, duplicate: false }));
  }

  /**
   * Lets the batches being applied finish, then holds new ones until the returned release is
   * called (or `deadline`, Unix ms, passes): what is exported meanwhile is what gets removed.
   */
  async hold(deadline: number): Promise<() => void> {
    while (this.gate !== null) await this.gate;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const timer = setTimeout(() => release(), Math.max(0, deadline - Date.now()));
    const release = (): void => {
      clearTimeout(timer);
      if (this.gate === gate) this.gate = null;
      open();
    };
    this.gate = gate;
    await Promise.allSettled([...this.inflight.values()]);
    return release;
  }

  /** Removes series another collector now holds, durably: a restart does not bring them back. */
  async dropSeries(keys: SeriesRef[]): Promise<number> {
    const journal = this.journal;
    if (journal === null) throw new PlumbError(PLUMB_ERR_JOURNAL_IO, 'the metrics journal is not open');
    let removed = 0;
    await journal.append(Buffer.from(JSON.stringify({ t: Date.now(), d: keys } satisfies HandoffRecord)), () => {
      removed = this.store.removeSeries(keys);
    });
    return removed;
  }

  /** Writes a last snapshot when asked (a graceful stop) and closes the journal. */
  async close(options: { checkpoint?: boolean } = {}): Promise<void> {
    await this.journal?.close(options);
    this.journal = null;
  }
}

/** What takes an agent batch when the collector is one of a fleet: keeps its series, forwards the others (collector/fleet/router.ts). */
export interface BatchRouter {
  accept(batch: MetricBatch): Promise<{ kept: number; forwarded: number; refused: number; duplicate: boolean }>;
}

export function registerMetricsIngest(app: FastifyInstance, intake: MetricIntake, options: { maxMetricsPerBatch: number; router?: BatchRouter | null; tap?: TapPoint }, telemetry: Telemetry, log: Logger): void {
  const tap = options.tap;
  const batches = telemetry.counter('plumb_ingest_batches_total', 'batches received from agents, by kind and outcome', ['kind', 'outcome']);
  const samples = telemetry.counter('plumb_ingest_metrics_total', 'metric samples received from agents');
  telemetry.gaugeFrom('plumb_ingest_dedupe_ids', 'batch ids remembered for replay detection', () => intake.recent.size);
  const once = new LogOnce(log);
  intake.store.onRefused = (reason: RefusalReason, metric, agent) => {
    once.warn(`refused:${reason}`, { reason, agent, metric: metric.name, tags: metric.tags.length }, 'metric refused (counted in plumb_metrics_refused_total)');
  };
  const rejected = telemetry.counter('plumb_ingest_items_rejected_total', 'items of a metric batch refused by the schema while the rest applied, by kind and reason', ['kind', 'reason']);
  const countRejected = (errors: ItemError[], agent: string): void => {
    if (errors.length === 0) return;
    const byKind = new Map<string, number>();
    for (const e of errors) {
      const key = `${e.path.slice(1, e.path.indexOf('/', 1))}\n${e.reason}`;
      byKind.set(key, (byKind.get(key) ?? 0) + 1);
    }
    for (const [key, n] of byKind) {
      const [kind, reason] = key.split('\n');
      rejected.inc({ kind, reason }, n);
    }
    const first = errors[0];
    once.warn(`rejected:${first.reason}`, { agent, path: first.path, reason: first.reason, error: first.message, items: errors.length }, 'items of a metric batch refused; the rest applied (counted in plumb_ingest_items_rejected_total)');
  };
  app.post<{ Body: UncheckedBatch }>(METRICS_PATH, { schema: { body: metricBatchSchema(options.maxMetricsPerBatch) } }, async (request, reply) => {
    const received = request.body.metrics.length;
    const checked = checkBatchItems(request.body);
    const batch = checked.batch;
    // An event without a date happened when it arrived.
    const arrived = Math.floor(Date.now() / 1000);
    for (const e of batch.events) e.timestamp ??= arrived;
    if (tap?.active === true) tap.publish(batch.metrics);
    const router = options.router;
    if (router) {
      try {
        const r = await router.accept(batch);
        batches.inc({ kind: 'metrics', outcome: r.duplicate ? 'duplicate' : 'applied' });
        if (r.duplicate) return { accepted: 0, refused: 0, duplicate: true };
        samples.inc(received);
        countRejected(checked.errors, batch.agent);
        // refusals by the owners' stores are counted there, not itemised here
        const answer = itemsResponse(batch.metrics.length - r.refused, checked.errors, [], checked.metricIndex);
        answer.refused = (answer.refused as number) + r.refused;
        return answer;
      } catch (err) {
        // a part could not be journaled here or placed at its owner: the agent sends the batch again, and parts already placed are recognised by their ids
        batches.inc({ kind: 'metrics', outcome: 'failed' });
        once.warn('route', { batch: batch.id, err: errorMessage(err) }, 'a metric batch could not be placed with every owner; the agent will send it again');
        return reply.code(503).header('retry-after', '1').send({ error: 'PLUMB_ERR_FORWARD_RETRYABLE', message: 'the collector cannot place every series with its owner now; retry later' });
      }
    }
    let result: AcceptResult;
    try {
      result = await intake.accept(batch);
    } catch (err) {
      batches.inc({ kind: 'metrics', outcome: 'failed' });
      once.warn('journal', { batch: batch.id, err: errorMessage(err) }, 'a metric batch could not be journaled; the agent will send it again');
      return reply.code(503).header('retry-after', '1').send({ error: PLUMB_ERR_JOURNAL_IO, message: 'the collector cannot make the batch durable now; retry later' });
    }
    if (result.duplicate) {
      batches.inc({ kind: 'metrics', outcome: 'duplicate' });
      return { accepted: 0, refused: 0, duplicate: true };
    }
    batches.inc({ kind: 'metrics', outcome: 'applied' });
    samples.inc(received);
    countRejected(checked.errors, batch.agent);
    return itemsResponse(batch.metrics.length - result.refused, checked.errors, result.refusals, checked.metricIndex);
  });
}

/**
 * The answer to an applied batch. Like Elasticsearch's bulk response it names each refused item
 * (JSON pointer, reason code, message), up to MAX_LISTED_ERRORS of them; `reasons` counts all.
 */
function itemsResponse(accepted: number, errors: ItemError[], refusals: MetricRefusal[], metricIndex: number[]): Record<string, unknown> {
  const refused = errors.length + refusals.length;
  if (refused === 0) return { accepted, refused: 0, duplicate: false };
  const all = errors.concat(refusals.map((r) => ({ path: `/metrics/${metricIndex[r.index]}`, reason: r.reason, message: `refused by the metric store: ${r.reason}` })));
  const reasons: Record<string, number> = {};
  for (const e of all) reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
  const out: Record<string, unknown> = { accepted, refused, duplicate: false, errors: all.slice(0, MAX_LISTED_ERRORS), reasons };
  if (all.length > MAX_LISTED_ERRORS) out.errorsOmitted = all.length - MAX_LISTED_ERRORS;
  return out;
}
