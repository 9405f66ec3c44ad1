/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`): the functions that took the most time
 * themselves (self) and, for those, including what they called (total).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  fn: string;
  where: string;
  selfPct: number;
  totalPct: number;
}

export interface ProfileSummary {
  file: string;
  /** Busy (non-idle) time sampled. */
  sampledMs: number;
  top: ProfileRow[];
  /** Self time grouped by source file (or V8/Node category). */
  byFile: { where: string; selfPct: number }[];
}

const REPO = resolve(import.meta.dirname, '..', '..');

/** A script's path relative to the checkout or to the folder it was compiled into. */
function placeIn(roots: string[], url: string): string {
  if (url === '') return '(native / V8)';
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  for (const root of roots) if (path.startsWith(root + '/')) return relative(root, path);
  return path;
}

/** The newest .cpuprofile in `dir`. */
export function newestProfile(dir: string): string | null {
  let best: string | null = null;
  let bestTime = 0;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.cpuprofile')) continue;
    const t = statSync(join(dir, f)).mtimeMs;
    if (t > bestTime) {
      best = join(dir, f);
      bestTime = t;
    }
  }
  return best;
}

/**
 * `codeRoots`: folders scripts were loaded from (the checkout, a build folder), shown relative.
 * `lastMs`: only the samples of the profile's last `lastMs` (leaves start-up out).
 */
export function summarizeProfile(file: string, codeRoots: string[] = [], lastMs = Infinity, topN = 15): ProfileSummary {
  const roots = [...codeRoots, REPO];
  const place = (url: string): string => placeIn(roots, url);
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const key = (n: ProfileNode): string => {
    const f = n.callFrame;
    // Native code without a name (a C++ binding, a builtin) is shown under the JS function that called it.
    if (f.url === '' && (f.functionName === '' || f.functionName === '(anonymous)')) {
      const up = parent.get(n.id);
      const caller = up === undefined ? undefined : byId.get(up);
      return `(native)\u0000called from ${caller ? caller.callFrame.functionName || '(anonymous)' : '?'}`;
    }
    return `${f.functionName || '(anonymous)'}\u0000${place(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const fileSelf = new Map<string, number>();
  let all = 0;
  const from = p.endTime - lastMs * 1000;
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    at += dt;
    if (at < from) continue;
    const leaf = byId.get(p.samples[i]);
    // Busy time only: a mostly idle process would otherwise be all "(idle)".
    if (!leaf || leaf.callFrame.functionName === '(idle)') continue;
    all += dt;
    const k = key(leaf);
    self.set(k, (self.get(k) ?? 0) + dt);
    const f = place(leaf.callFrame.url);
    fileSelf.set(f, (fileSelf.get(f) ?? 0) + dt);
    // Count each function once per sample on the way up (recursion must not double count).
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const kk = key(byId.get(id) as ProfileNode);
      if (seen.has(kk)) continue;
      seen.add(kk);
      total.set(kk, (total.get(kk) ?? 0) + dt);
    }
  }
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([k, v]) => {
      const [fn, where] = k.split('\u0000');
      return { fn, where, selfPct: v / all, totalPct: (total.get(k) ?? v) / all };
    });
  const byFile = [...fileSelf.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([where, v]) => ({ where, selfPct: v / all }));
  return { file: relative(REPO, file), sampledMs: all / 1000, top, byFile };
}
