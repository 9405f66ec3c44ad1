/**
 * The status report as text: what `plumb status` prints once and `plumb top` redraws. Plain
 * columns, no colour unless asked (a pipe or a probe reads the same words a person does).
 */
import type { ComponentStatus, StatusReport } from '../shared/status.ts';

export type SortKey = 'graph' | 'id' | 'in' | 'out' | 'queue' | 'drops' | 'health';

export const SORT_KEYS: Record<string, SortKey> = { g: 'graph', n: 'id', i: 'in', o: 'out', u: 'queue', d: 'drops', h: 'health' };

export interface ViewOptions {
  sort?: SortKey;
  reverse?: boolean;
  color?: boolean;
  /** Terminal width; longer lines are cut. */
  width?: number;
}

const HEALTH_ORDER = { failed: 0, degraded: 1, ok: 2 } as const;

function dropsOf(c: ComponentStatus): number {
  let n = 0;
  for (const v of Object.values(c.drops)) n += v;
  return n;
}

function queueFill(c: ComponentStatus): number {
  return c.queue !== undefined && c.queue.bound > 0 ? c.queue.depth / c.queue.bound : -1;
}

export function sortComponents(list: readonly ComponentStatus[], key: SortKey, reverse = false): ComponentStatus[] {
  const by: Record<SortKey, (a: ComponentStatus, b: ComponentStatus) => number> = {
    graph: () => 0,
    id: (a, b) => a.id.localeCompare(b.id),
    in: (a, b) => b.in.perSecond - a.in.perSecond,
    out: (a, b) => b.out.perSecond - a.out.perSecond,
    queue: (a, b) => queueFill(b) - queueFill(a),
    drops: (a, b) => dropsOf(b) - dropsOf(a),
    health: (a, b) => HEALTH_ORDER[a.health] - HEALTH_ORDER[b.health],
  };
  const out = [...list].sort(by[key]);
  return reverse ? out.reverse() : out;
}

/** 1234567 → "1.2M"; rates keep one decimal below 100. */
export function compact(n: number, decimals = 0): string {
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return decimals > 0 && abs < 100 && n !== Math.trunc(n) ? n.toFixed(decimals) : String(Math.round(n));
}

function bytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)}GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)}MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)}KiB`;
  return `${n}B`;
}

function queueText(c: ComponentStatus): string {
  const q = c.queue;
  if (q === undefined) return '-';
  const pct = q.bound > 0 ? ` ${Math.round((q.depth / q.bound) * 100)}%` : '';
  return q.unit === 'bytes' ? `${bytes(q.depth)}/${bytes(q.bound)}${pct}` : `${compact(q.depth)}/${compact(q.bound)} ${q.unit}${pct}`;
}

function dropsText(c: ComponentStatus): string {
  const parts = Object.entries(c.drops)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${reason}=${compact(n)}`);
  return parts.length > 0 ? parts.join(' ') : '-';
}

function table(rows: string[][], right: ReadonlySet<number>): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : right.has(i) ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd(),
  );
}

const PAINT = { ok: '\x1b[32m', degraded: '\x1b[33m', failed: '\x1b[31;1m' } as const;

function ago(from: string, now: number): string {
  const s = Math.max(0, Math.round((now - Date.parse(from)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** The report as lines of text. */
export function renderStatus(report: StatusReport, options: ViewOptions = {}, now = Date.now()): string[] {
  const color = options.color === true;
  const paint = (h: keyof typeof PAINT, text: string): string => (color ? `${PAINT[h]}${text}\x1b[0m` : text);
  const lines: string[] = [];
  const verdict = report.healthy ? paint('ok', 'healthy') : paint('failed', 'UNHEALTHY');
  const cfg = report.config.path !== '' ? `config ${report.config.path} ${report.config.hash.slice(0, 8)}` : 'built-in config';
  lines.push(`plumb ${report.role} on ${report.hostname} (${report.version}), up ${ago(report.startedAt, now)}: ${verdict}; ${cfg}`);
  const last = report.config.lastReload;
  if (last !== undefined) lines.push(`last reload ${last.at}: ${last.result}${last.errors.length > 0 ? ` (${last.errors.length} errors)` : ''}`);
  lines.push('');
  const components = sortComponents(report.components, options.sort ?? 'graph', options.reverse);
  const rows = [['COMPONENT', 'KIND', 'TYPE', 'HEALTH', 'IN/S', 'OUT/S', 'IN', 'OUT', 'QUEUE', 'DROPS']];
  for (const c of components) {
    rows.push([c.id, c.kind, c.type, c.health, compact(c.in.perSecond, 1), compact(c.out.perSecond, 1), compact(c.in.total), compact(c.out.total), queueText(c), dropsText(c)]);
  }
  const text = table(rows, new Set([4, 5, 6, 7]));
  text.forEach((line, i) => {
    const c = i === 0 ? undefined : components[i - 1];
    lines.push(c !== undefined && color && c.health !== 'ok' ? paint(c.health, line) : line);
  });
  const problems = components.flatMap((c) => c.problems.map((p) => `  ${c.id}: ${p}`));
  if (problems.length > 0) lines.push('', 'PROBLEMS', ...problems);
  if (report.files !== undefined && report.files.length > 0) {
    const rows = [['FILE', 'OFFSET', 'SIZE', 'LAG', 'LAG S', 'ROTATIONS', 'PARSED', 'FAILED']];
    for (const f of report.files) {
      const total = f.parsed + f.failed;
      const pct = total > 0 ? ` (${((f.parsed / total) * 100).toFixed(1)}%)` : '';
      rows.push([f.path, bytes(f.offset), bytes(f.size), bytes(f.lagBytes), f.lagSeconds.toFixed(0), String(f.rotations), `${compact(f.parsed)}${pct}`, compact(f.failed)]);
    }
    lines.push('', ...table(rows, new Set([1, 2, 3, 4, 5, 6, 7])));
  }
  const s = report.statsd;
  if (s !== undefined) {
    const errors = Object.entries(s.parseErrors)
      .map(([r, n]) => `${r}=${compact(n)}`)
      .join(' ');
    lines.push('', `statsd: ${compact(s.linesPerSecond, 1)} lines/s, ${compact(s.series)} of ${compact(s.seriesCap)} series, parse errors: ${errors === '' ? 'none' : errors}`);
  }
  const width = options.width;
  return width !== undefined && width > 0 ? lines.map((l) => cut(l, width)) : lines;
}

/** Cuts a line to `width` visible characters (colour codes do not count). */
function cut(line: string, width: number): string {
  let visible = 0;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') {
      const end = line.indexOf('m', i);
      if (end > 0) {
        out += line.slice(i, end + 1);
        i = end;
        continue;
      }
    }
    if (visible >= width) continue;
    out += line[i];
    visible++;
  }
  return out;
}
