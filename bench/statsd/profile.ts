/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`): the functions that took the most time
 * themselves (self) and including what they called (total), and for plumb's own functions the
 * source lines that took it. Compiled code is mapped back to the .ts sources through the build's
 * source maps.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
  /** Samples per source line (1-based) of this node's self time. */
  positionTicks?: { line: number; ticks: number }[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotLine {
  /** `file.ts:line` */
  where: string;
  /** Share of the function's self time. */
  share: number;
  text: string;
}

export interface ProfileRow {
  fn: string;
  where: string;
  selfPct: number;
  totalPct: number;
  /** plumb's own functions: lines of their own body that took their self time, most first. */
  hotLines: HotLine[];
  /** The share of self time on the function's own lines (the rest is inlined callee code). */
  ownLinesShare: number;
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

/** Turns script URLs and positions into places a reader can open: checkout-relative .ts lines when a source map says so. */
class Locator {
  private readonly roots: string[];
  private readonly maps = new Map<string, { map: SourceMap; dir: string } | null>();
  private readonly sources = new Map<string, string[]>();

  constructor(roots: string[]) {
    this.roots = roots;
  }

  private relative(path: string): string {
    for (const root of this.roots) if (path.startsWith(root + '/')) return relative(root, path);
    return path;
  }

  private mapFor(path: string): { map: SourceMap; dir: string } | null {
    let m = this.maps.get(path);
    if (m === undefined) {
      m = null;
      const file = `${path}.map`;
      if (existsSync(file)) {
        try {
          m = { map: new SourceMap(JSON.parse(readFileSync(file, 'utf8'))), dir: dirname(path) };
        } catch {
          m = null;
        }
      }
      this.maps.set(path, m);
    }
    return m;
  }

  /** The original file (absolute), 1-based line and 0-based column of a 0-based position in a script, if mapped. */
  original(url: string, line0: number, col0: number): { path: string; line: number; column: number } | null {
    if (!url.startsWith('file://')) return null;
    const path = fileURLToPath(url);
    const m = this.mapFor(path);
    if (!m) return null;
    const e = m.map.findEntry(line0, col0) as { originalSource?: string; originalLine?: number; originalColumn?: number };
    if (e.originalSource === undefined || e.originalLine === undefined) return null;
    const src = e.originalSource.startsWith('file://') ? fileURLToPath(e.originalSource) : e.originalSource;
    return { path: isAbsolute(src) ? src : resolve(m.dir, src), line: e.originalLine + 1, column: e.originalColumn ?? 0 };
  }

  private text(path: string): string[] {
    let lines = this.sources.get(path);
    if (!lines) {
      lines = existsSync(path) ? readFileSync(path, 'utf8').split('\n') : [];
      this.sources.set(path, lines);
    }
    return lines;
  }

  /**
   * The original lines a function's own body spans (first and last, 1-based), found by matching
   * braces from its start; a body without braces (a one-expression arrow) is its first line.
   * Approximate: string and comment contents are skipped, template literals are not parsed.
   */
  extent(url: string, line0: number, col0: number): { path: string; first: number; last: number } | null {
    const o = this.original(url, line0, col0);
    if (!o) return null;
    const lines = this.text(o.path);
    let depth = 0;
    let opened = false;
    for (let l = o.line - 1; l < lines.length; l++) {
      const t = lines[l];
      let quote = '';
      for (let c = l === o.line - 1 ? o.column : 0; c < t.length; c++) {
        const ch = t[c];
        if (quote) {
          if (ch === '\\') c++;
          else if (ch === quote) quote = '';
          continue;
        }
        if (ch === '/' && t[c + 1] === '/') break;
        if (ch === "'" || ch === '"' || ch === '`') quote = ch;
        else if (ch === ';' && !opened) return { path: o.path, first: o.line, last: o.line };
        else if (ch === '{') {
          depth++;
          opened = true;
        } else if (ch === '}') {
          depth--;
          if (opened && depth === 0) return { path: o.path, first: o.line, last: l + 1 };
        }
      }
      if (!opened && l > o.line + 3) break;
    }
    return { path: o.path, first: o.line, last: o.line };
  }

  /** `file:line` for a function's start, original when mapped. */
  place(url: string, line0: number, col0: number): string {
    if (url === '') return '(native / V8)';
    const o = this.original(url, line0, col0);
    if (o) return `${this.relative(o.path)}:${o.line}`;
    const path = url.startsWith('file://') ? fileURLToPath(url) : url;
    return `${this.relative(path)}:${line0 + 1}`;
  }

  file(url: string): string {
    if (url === '') return '(native / V8)';
    const o = this.original(url, 0, 0);
    return this.relative(o ? o.path : url.startsWith('file://') ? fileURLToPath(url) : url);
  }

  /** Whether the URL is plumb's own code (in the checkout or compiled from it), not a dependency. */
  own(url: string): boolean {
    if (!url.startsWith('file://')) return false;
    const path = fileURLToPath(url);
    return !path.includes('/node_modules/') && this.roots.some((r) => path.startsWith(r + '/'));
  }

  /** A 1-based line of an executed script, mapped to its original file, line and text. */
  line(url: string, line1: number): { path: string; line: number; where: string; text: string } {
    // The last mapping on the line, so leading indentation doesn't fall back to the line before.
    const o = this.original(url, line1 - 1, 10_000);
    const path = o ? o.path : fileURLToPath(url);
    const line = o ? o.line : line1;
    const text = (this.text(path)[line - 1] ?? '').trim();
    return { path, line, where: `${this.relative(path)}:${line}`, text: text.length > 110 ? `${text.slice(0, 107)}…` : text };
  }
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
 * `codeRoots`: folders scripts were loaded from (a build folder; the checkout is always one),
 * shown relative. `lastMs`: only the samples of the profile's last `lastMs` (leaves start-up
 * out; line-level ticks are not timed and cover the whole profile).
 */
export function summarizeProfile(file: string, codeRoots: string[] = [], lastMs = Infinity, topN = 15): ProfileSummary {
  const locate = new Locator([...codeRoots, REPO]);
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const keyCache = new Map<number, string>();
  const key = (n: ProfileNode): string => {
    let k = keyCache.get(n.id);
    if (k !== undefined) return k;
    const f = n.callFrame;
    if (f.url === '' && (f.functionName === '' || f.functionName === '(anonymous)')) {
      // Native code without a name (a C++ binding, a builtin) is shown under the JS function that called it.
      const up = parent.get(n.id);
      const caller = up === undefined ? undefined : byId.get(up);
      k = `(native)\u0000called from ${caller ? caller.callFrame.functionName || '(anonymous)' : '?'}`;
    } else {
      k = `${f.functionName || '(anonymous)'}\u0000${locate.place(f.url, f.lineNumber, f.columnNumber)}`;
    }
    keyCache.set(n.id, k);
    return k;
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
    const f = locate.file(leaf.callFrame.url);
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

  // Line ticks per function, for plumb's own functions. V8 reports the line of inlined code
  // without saying which script it is in, so only lines inside the function's own body count;
  // the rest of its self time is code inlined from its callees.
  const lineTicks = new Map<string, { all: number; lines: Map<string, { ticks: number; text: string }> }>();
  for (const n of p.nodes) {
    if (!n.positionTicks || !locate.own(n.callFrame.url)) continue;
    const body = locate.extent(n.callFrame.url, n.callFrame.lineNumber, n.callFrame.columnNumber);
    if (!body) continue;
    const k = key(n);
    let entry = lineTicks.get(k);
    if (!entry) lineTicks.set(k, (entry = { all: 0, lines: new Map() }));
    for (const t of n.positionTicks) {
      entry.all += t.ticks;
      const l = locate.line(n.callFrame.url, t.line);
      if (l.path !== body.path || l.line < body.first || l.line > body.last) continue;
      const e = entry.lines.get(l.where);
      if (e) e.ticks += t.ticks;
      else entry.lines.set(l.where, { ticks: t.ticks, text: l.text });
    }
  }

  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([k, v]) => {
      const [fn, where] = k.split('\u0000');
      const entry = lineTicks.get(k);
      let hotLines: HotLine[] = [];
      let ownLinesShare = 0;
      if (entry && entry.all > 0) {
        hotLines = [...entry.lines.entries()]
          .sort((a, b) => b[1].ticks - a[1].ticks)
          .slice(0, 4)
          .map(([w, e]) => ({ where: w, share: e.ticks / entry.all, text: e.text }));
        ownLinesShare = [...entry.lines.values()].reduce((a, e) => a + e.ticks, 0) / entry.all;
      }
      return { fn, where, selfPct: v / all, totalPct: (total.get(k) ?? v) / all, hotLines, ownLinesShare };
    });
  const byFile = [...fileSelf.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([where, v]) => ({ where, selfPct: v / all }));
  return { file: relative(REPO, file), sampledMs: all / 1000, top, byFile };
}
