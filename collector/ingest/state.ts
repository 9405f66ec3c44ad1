/**
 * The ingest's durable state under <collector.dataDir>/state/: the metric store with its batch
 * ids (metrics/), span batch ids (trace-ids/) and log event ids (log-ids/), each a journal
 * (shared/journal.ts). Opened, and restored, before the listener; closed with a last checkpoint
 * after it.
 *
 * Cadence: a checkpoint every checkpointInterval (30s) when anything changed, or as soon as a
 * journal's WAL passes checkpointBytes (64mb), whichever comes first; so a restart replays at
 * most about that much.
 */
import { join, resolve } from 'node:path';
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration, Section, Size } from '../../shared/config.ts';
import type { JournalOptions } from '../../shared/journal.ts';
import type { Logger } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import type { MetricStore } from '../metrics/store.ts';
import { DurableIds, RecentIds } from './dedupe.ts';
import { SeenEvents } from './dedupe.ts';
import { MetricIntake, type SnapshotPart } from './metrics.ts';

export const JournalSchema = Section(
  {
    fsync: Type.Union([Type.Literal('batch'), Type.Literal('interval'), Type.Literal('never')], {
      default: 'batch',
      errorMessage: '"batch", "interval" or "never"',
      description: 'batch: a batch is synced to disk before it is applied and acknowledged (appends arriving meanwhile share the sync); interval: synced every fsyncInterval (survives a crash of the process, not of the machine); never: left to the OS.',
    }),
    fsyncInterval: Duration('1s', { description: 'How often the journal is synced under fsync: interval.' }),
    checkpointInterval: Duration('30s', { description: 'A snapshot of the state is written this often when anything changed…' }),
    checkpointBytes: Size('64mb', { description: '…or once a journal grows past this, whichever comes first; a restart replays at most about this much.' }),
  },
  { description: 'Durability of counters and replay detection: <collector.dataDir>/state/ holds a snapshot and a write-ahead journal per kind.' },
);

export type JournalConfig = StaticDecode<typeof JournalSchema>;

export interface IngestStateOptions {
  dataDir: string;
  journal: JournalConfig;
  dedupeWindow: number;
  logDedupeWindow: number;
}

export interface IngestStateContext {
  telemetry: Telemetry;
  log: Logger;
}

export class IngestState {
  readonly metrics: MetricIntake;
  readonly traceIds: DurableIds;
  readonly logIds: DurableIds;

  private constructor(metrics: MetricIntake, traceIds: DurableIds, logIds: DurableIds) {
    this.metrics = metrics;
    this.traceIds = traceIds;
    this.logIds = logIds;
  }

  /** `windows`: state kept at the metric store's cut (the alert engine's windows). */
  static async open(store: MetricStore, o: IngestStateOptions, ctx: IngestStateContext, windows?: SnapshotPart): Promise<IngestState> {
    const dir = join(resolve(o.dataDir), 'state');
    const journal = (name: string): JournalOptions => ({
      dir: join(dir, name),
      name,
      fsync: o.journal.fsync,
      fsyncIntervalMs: o.journal.fsyncInterval,
      checkpointBytes: o.journal.checkpointBytes,
      checkpointIntervalMs: o.journal.checkpointInterval,
    });
    const started = Date.now();
    const metrics = await MetricIntake.open(store, { ...journal('metrics'), dedupeWindow: o.dedupeWindow }, ctx, windows);
    let traceIds: DurableIds | undefined;
    try {
      traceIds = await DurableIds.open(new RecentIds(o.dedupeWindow), journal('trace-ids'), ctx);
      const logIds = await DurableIds.open(new SeenEvents(o.logDedupeWindow), journal('log-ids'), ctx);
      ctx.log.info({ dir, series: store.size, batchIds: metrics.recent.size, ms: Date.now() - started }, 'ingest state restored');
      return new IngestState(metrics, traceIds, logIds);
    } catch (err) {
      await metrics.close();
      await traceIds?.close();
      throw err;
    }
  }

  /** Closes the journals, each with a last checkpoint so the next start replays nothing. */
  async close(): Promise<void> {
    await Promise.all([this.metrics.close({ checkpoint: true }), this.traceIds.close({ checkpoint: true }), this.logIds.close({ checkpoint: true })]);
  }
}
