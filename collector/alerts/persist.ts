/**
 * Rule state that must outlive the process: each rule's alerts (pending with their active-since
 * time, firing, keepFiringFor deadlines, the last notification to Alertmanager) and the
 * engine's coverage (since when the windows hold everything this collector saw). It is kept per
 * ownership group (one threshold rule, or one SLO with its burn-rate alerts) in a journal under
 * <collector.dataDir>/state/alert-rules/: each evaluation appends one record with the groups
 * that changed, and checkpoints fold them into a snapshot (shared/journal.ts). The same group
 * state is what a rule's owner sends to its runner-up, so a takeover starts where it stopped.
 *
 * The windows themselves (buckets, sketches, SLO budget counts) are not here: they are large and
 * change with every batch, so they ride the metrics journal, at the same cut as the metric store
 * (see collector/ingest/metrics.ts).
 */
import { Journal, type JournalOptions, type JournalContext } from '../../shared/journal.ts';
import { errorMessage } from '../../shared/errors.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import type { Alert, AlertState } from './state.ts';

/** An alert as JSON; undefined and ±Infinity travel as null. */
export interface SavedAlert {
  key: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: AlertState;
  value: number | null;
  activeAt: number;
  firedAt: number | null;
  resolvedAt: number | null;
  keepFiringSince: number | null;
  lastSentAt: number | null;
  validUntil: number;
}

/** One ownership group's alerts after an evaluation. */
export interface GroupState {
  /** Time of the evaluation that produced it: the newest copy wins. */
  at: number;
  /** The collector that evaluated it ('' for a collector on its own). */
  owner: string;
  /** Unit identity → its alerts. */
  units: Record<string, SavedAlert[]>;
}

export interface RuleStateMeta {
  /** Since when the windows hold everything this collector received. */
  coveredSince: number;
  /** The last evaluation: how long the collector was away, at the next start. */
  lastEvaluation: number;
}

interface SnapshotChunk {
  k: 'group' | 'meta';
  key?: string;
  group?: GroupState;
  meta?: RuleStateMeta;
}

interface EvalRecord {
  meta: RuleStateMeta;
  groups: [string, GroupState | null][];
}

function orNull(v: number | undefined): number | null {
  return v === undefined || !Number.isFinite(v) ? null : v;
}

export function saveAlert(a: Alert): SavedAlert {
  return {
    key: a.key,
    labels: a.labels,
    annotations: a.annotations,
    state: a.state,
    value: orNull(a.value),
    activeAt: a.activeAt,
    firedAt: orNull(a.firedAt),
    resolvedAt: orNull(a.resolvedAt),
    keepFiringSince: orNull(a.keepFiringSince),
    lastSentAt: orNull(a.lastSentAt),
    validUntil: a.validUntil,
  };
}

export function loadAlert(s: SavedAlert): Alert {
  return {
    key: s.key,
    labels: s.labels,
    annotations: s.annotations,
    state: s.state,
    value: s.value ?? undefined,
    activeAt: s.activeAt,
    firedAt: s.firedAt ?? undefined,
    resolvedAt: s.resolvedAt ?? undefined,
    keepFiringSince: s.keepFiringSince ?? undefined,
    lastSentAt: s.lastSentAt ?? -Infinity,
    validUntil: s.validUntil,
  };
}

/** The journal of rule state; group states are kept in memory as well (they are small). */
export class RuleStateJournal {
  readonly groups = new Map<string, GroupState>();
  meta: RuleStateMeta | undefined;
  private journal: Journal | null = null;
  private readonly logOnce: LogOnce;
  /** The JSON last written per group, so an evaluation that changed nothing writes only the meta. */
  private readonly written = new Map<string, string>();

  private constructor(log: Logger) {
    this.logOnce = new LogOnce(log);
  }

  static async open(options: JournalOptions, ctx: JournalContext): Promise<RuleStateJournal> {
    const s = new RuleStateJournal(ctx.log);
    s.journal = await Journal.open(options, s, ctx);
    return s;
  }

  // ---- JournalHandler ----

  restore(chunks: Buffer[]): void {
    this.groups.clear();
    for (const c of chunks) {
      try {
        const chunk = JSON.parse(c.toString('utf8')) as SnapshotChunk;
        if (chunk.k === 'meta' && chunk.meta !== undefined) this.meta = chunk.meta;
        else if (chunk.k === 'group' && chunk.key !== undefined && chunk.group !== undefined) this.groups.set(chunk.key, chunk.group);
      } catch {
        // the journal verified the checksum; a chunk we cannot read is from a future version
      }
    }
    for (const [k, g] of this.groups) this.written.set(k, JSON.stringify(g));
  }

  replay(record: Buffer): void {
    const r = JSON.parse(record.toString('utf8')) as EvalRecord;
    this.meta = r.meta;
    for (const [key, g] of r.groups) {
      if (g === null) this.groups.delete(key);
      else this.groups.set(key, g);
      this.written.set(key, JSON.stringify(g));
    }
  }

  snapshot(): Buffer[] {
    const out: Buffer[] = [];
    if (this.meta !== undefined) out.push(Buffer.from(JSON.stringify({ k: 'meta', meta: this.meta } satisfies SnapshotChunk)));
    for (const [key, group] of this.groups) out.push(Buffer.from(JSON.stringify({ k: 'group', key, group } satisfies SnapshotChunk)));
    return out;
  }

  // ---- writes ----

  /**
   * Records an evaluation: the meta, and each group whose state differs from what was written
   * (null: the group is gone). Durable once the returned promise resolves; a failed write is
   * logged once and the next evaluation writes the difference again.
   */
  record(meta: RuleStateMeta, groups: Iterable<[string, GroupState | null]>): Promise<void> {
    this.meta = meta;
    const changed: [string, GroupState | null][] = [];
    const texts: [string, string][] = [];
    for (const [key, g] of groups) {
      const text = JSON.stringify(g);
      if (this.written.get(key) === text) continue;
      changed.push([key, g]);
      texts.push([key, text]);
      if (g === null) this.groups.delete(key);
      else this.groups.set(key, g);
    }
    const journal = this.journal;
    if (journal === null) return Promise.resolve();
    return journal
      .append(Buffer.from(JSON.stringify({ meta, groups: changed } satisfies EvalRecord)), () => {
        for (const [key, text] of texts) this.written.set(key, text);
      })
      .catch((err: unknown) => {
        for (const [key] of texts) this.written.delete(key);
        this.logOnce.warn('write', { err: errorMessage(err) }, 'alert rule state could not be written; the next evaluation tries again');
      });
  }

  /** Keeps other collectors' rule state (replicas) without touching the meta. */
  recordGroups(groups: [string, GroupState][]): Promise<void> {
    const meta = this.meta ?? { coveredSince: Date.now(), lastEvaluation: 0 };
    return this.record(meta, groups);
  }

  async close(): Promise<void> {
    await this.journal?.close({ checkpoint: true });
    this.journal = null;
  }
}
