/**
 * Expands the inputs' globs into the files to follow. Runs on every discovery tick, so a file
 * that starts matching later is picked up while running. Directories are walked only as deep
 * as a pattern can reach; symbolic links are followed (Kubernetes' /var/log/containers holds
 * links into /var/log/pods); compressed rotations and `exclude` matches are left out. A file
 * reachable through several paths or inputs is followed once, by the first input that matches.
 */
import type { BigIntStats } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import type { Logger } from '../../../shared/log.ts';
import { LogOnce } from '../../../shared/log.ts';
import { errorMessage } from '../../../shared/errors.ts';
import { COMPRESSED_SUFFIXES, inputPaths, type LogInput } from './config.ts';
import { inodeKey, type Inode } from './identity.ts';

export interface Candidate extends Inode {
  path: string;
  /** Index of the input that matched. */
  input: number;
  size: number;
  /** Last modification (ignoreOlder). */
  mtimeMs: number;
}

interface Pattern {
  input: number;
  base: string;
  /** Directory levels below `base` a match can be at (1 = directly inside). 0: `base` is the file. */
  depth: number;
  match: (p: string) => boolean;
  exclude: ((p: string) => boolean) | undefined;
}

/** Files of one directory stat'ed at once. */
const STAT_BATCH = 32;
/** A `**` is followed this many directory levels down at most. */
const MAX_DEPTH = 16;

export class Discovery {
  private readonly patterns: Pattern[] = [];
  private readonly once: LogOnce;
  private readonly maxCandidates: number;
  /** Candidates beyond the limit in the last scan. */
  overflow = 0;

  constructor(inputs: readonly LogInput[], maxCandidates: number, log: Logger) {
    this.once = new LogOnce(log);
    this.maxCandidates = maxCandidates;
    inputs.forEach((input, i) => {
      const exclude = input.exclude.length > 0 ? picomatch(input.exclude, { basename: true }) : undefined;
      for (const p of inputPaths(input)) {
        const pattern = path.normalize(p);
        const scan = picomatch.scan(pattern);
        if (!scan.isGlob) {
          this.patterns.push({ input: i, base: pattern, depth: 0, match: () => true, exclude });
          continue;
        }
        const depth = scan.glob.includes('**') ? MAX_DEPTH : scan.glob.split('/').length;
        this.patterns.push({ input: i, base: scan.base === '' ? '/' : scan.base, depth, match: picomatch(pattern), exclude });
      }
    });
  }

  /** Every file the globs match now, keyed by device:inode. */
  async scan(): Promise<Map<string, Candidate>> {
    const found = new Map<string, Candidate>();
    this.overflow = 0;
    for (const p of this.patterns) {
      if (p.depth === 0) await this.consider(p, p.base, found);
      else await this.walk(p, p.base, 1, found);
    }
    return found;
  }

  private async walk(p: Pattern, dir: string, level: number, found: Map<string, Candidate>): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A directory that does not exist (yet) is normal: the application has not logged.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') this.once.warn(`readdir:${code}`, { dir, code, err: errorMessage(err) }, 'cannot list a log directory; its files are not followed');
      return;
    }
    const files: string[] = [];
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (level < p.depth) await this.walk(p, full, level + 1, found);
      } else if ((e.isFile() || e.isSymbolicLink()) && p.match(full)) {
        files.push(full);
      }
    }
    // A directory of hundreds of logs: their stats run a few at a time, not one after another.
    for (let i = 0; i < files.length; i += STAT_BATCH) {
      const batch = files.slice(i, i + STAT_BATCH);
      const stats = await Promise.all(batch.map((f) => this.statOf(p, f)));
      for (let j = 0; j < batch.length; j++) this.add(p, batch[j], stats[j], found);
    }
  }

  private async consider(p: Pattern, file: string, found: Map<string, Candidate>): Promise<void> {
    this.add(p, file, await this.statOf(p, file), found);
  }

  private async statOf(p: Pattern, file: string): Promise<BigIntStats | undefined> {
    if (isCompressed(file) || p.exclude?.(file)) return undefined;
    try {
      return await stat(file, { bigint: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') this.once.warn(`stat:${code}`, { file, code, err: errorMessage(err) }, 'cannot stat a log file; it is not followed');
      return undefined;
    }
  }

  private add(p: Pattern, file: string, st: BigIntStats | undefined, found: Map<string, Candidate>): void {
    if (st === undefined || !st.isFile()) return;
    const c: Candidate = { path: file, input: p.input, dev: st.dev.toString(), ino: st.ino.toString(), birthtimeMs: Number(st.birthtimeMs), size: Number(st.size), mtimeMs: Number(st.mtimeMs) };
    const key = inodeKey(c);
    if (found.has(key)) return;
    if (found.size >= this.maxCandidates) {
      this.overflow++;
      return;
    }
    found.set(key, c);
  }
}

export function isCompressed(file: string): boolean {
  const lower = file.toLowerCase();
  return COMPRESSED_SUFFIXES.some((s) => lower.endsWith(s));
}
