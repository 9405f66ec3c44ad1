/**
 * How a file changed under us, decided from what we knew (checkpoint entry, read position) and
 * what is on disk now (size, leading bytes, link count). The tailer acts on the verdicts:
 *
 * - rename: the path now names another file (or nothing) and ours still has a link: keep
 *   reading it through the open descriptor to its end; the path's new file is a new file.
 * - delete: same, but the file has no link left (deleted, perhaps recreated at the path).
 * - truncate (copytruncate, or truncated and rewritten): same inode, fewer bytes than we read
 *   or different leading bytes: read again from 0 under a new file id (a new generation), so
 *   the restarted offsets never repeat an old event id.
 * - reuse: a checkpointed inode now holds a file born later (the inode was freed and handed
 *   out again): a new file, read from 0.
 */
import type { CheckpointEntry } from './checkpoint.ts';
import type { RotationKind } from './metrics.ts';

export type PrefixVerdict = 'same' | 'different' | 'shorter';

export type ReopenVerdict = { action: 'resume'; offset: number } | { action: 'restart'; kind: RotationKind; generation: number };

/** A file found at a path with a checkpoint entry for its inode, not open: resume or start over? */
export function judgeReopen(entry: CheckpointEntry, prefix: PrefixVerdict, size: number, birthtimeMs: number): ReopenVerdict {
  if (prefix === 'same' && size >= entry.offset) return { action: 'resume', offset: entry.offset };
  if (bornAgain(entry.birthtimeMs, birthtimeMs)) return { action: 'restart', kind: 'reuse', generation: 0 };
  return { action: 'restart', kind: 'truncate', generation: entry.generation + 1 };
}

/** Whether an inode known as born at `knownMs` now holds a file born at another time (0: unknown). */
export function bornAgain(knownMs: number, birthtimeMs: number): boolean {
  return knownMs !== 0 && birthtimeMs !== 0 && Math.trunc(knownMs) !== Math.trunc(birthtimeMs);
}

/** An open file's periodic check: truncated (start over) or fine. */
export function judgeOpen(readOffset: number, size: number, prefix: PrefixVerdict | undefined): 'ok' | 'truncate' {
  if (size < readOffset) return 'truncate';
  if (prefix === 'different' || prefix === 'shorter') return 'truncate';
  return 'ok';
}

/** A file no longer at any matching path: was it renamed away or deleted? */
export function movedAwayKind(nlink: number): RotationKind {
  return nlink === 0 ? 'delete' : 'rename';
}
