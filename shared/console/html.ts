/**
 * The console's HTML: escaping, the page frame (header, navigation, stylesheet, script) and the
 * number formats every page uses. Pages are strings built on the server; nothing here runs in
 * the browser.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe inside an element or a quoted attribute. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/** A page of the console, as listed in the navigation. */
export interface NavItem {
  path: string;
  title: string;
}

export interface FrameOptions {
  title: string;
  /** The navigation entry to mark as current. */
  current: string;
  nav: readonly NavItem[];
  /** Shown beside the name: role, host, version. */
  who: string;
  /** Seconds between refreshes of the page's content; 0: the page does not refresh. */
  refresh: number;
  body: string;
}

/**
 * The whole document. With JavaScript the script swaps `<main>` for a fresh copy every
 * `refresh` seconds; without it, the <noscript> refresh reloads the page.
 */
export function frame(o: FrameOptions): string {
  const links = o.nav.map((n) => `<a href="${esc(n.path)}"${n.path === o.current ? ' aria-current="page"' : ''}>${esc(n.title)}</a>`).join('');
  const noscriptRefresh = o.refresh > 0 ? `<noscript><meta http-equiv="refresh" content="${o.refresh}"></noscript>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(o.title)} · plumb</title><link rel="stylesheet" href="/ui/static/console.css">${noscriptRefresh}
<script src="/ui/static/console.js" defer></script></head>
<body><header><span class="brand">plumb</span><nav>${links}</nav><span class="who">${esc(o.who)}</span></header>
<main data-refresh="${o.refresh}">${o.body}</main></body></html>`;
}

/** 12345.6 → "12.3k", 0.25 → "0.25". */
export function fmtNumber(n: number | undefined | null): string {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  if (!Number.isFinite(n)) return n > 0 ? '∞' : '-∞';
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(1)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (Number.isInteger(n)) return String(n);
  return a >= 100 ? n.toFixed(0) : a >= 1 ? n.toFixed(1) : n.toPrecision(2);
}

export function fmtRate(perSecond: number | undefined): string {
  return `${fmtNumber(perSecond)}/s`;
}

export function fmtBytes(n: number | undefined | null): string {
  if (n === undefined || n === null || Number.isNaN(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1).replace(/\.0$/, '')} ${units[i]}`;
}

/** Seconds → "3s", "4m 10s", "2h 5m", "3d 4h". */
export function fmtSeconds(s: number | undefined | null): string {
  if (s === undefined || s === null || Number.isNaN(s)) return '–';
  if (s < 1) return s <= 0 ? '0s' : `${Math.round(s * 1000)}ms`;
  const t = Math.round(s);
  if (t < 60) return `${t}s`;
  if (t < 3600) return `${Math.floor(t / 60)}m ${t % 60}s`;
  if (t < 86400) return `${Math.floor(t / 3600)}h ${Math.floor((t % 3600) / 60)}m`;
  return `${Math.floor(t / 86400)}d ${Math.floor((t % 86400) / 3600)}h`;
}

/** An ISO time as "12s ago" (with the exact time in a tooltip); "never" when absent. */
export function fmtAgo(iso: string | number | null | undefined, now = Date.now()): string {
  if (iso === null || iso === undefined || iso === '' || iso === '0001-01-01T00:00:00Z') return '<span class="muted">never</span>';
  const at = typeof iso === 'number' ? iso : Date.parse(iso);
  if (Number.isNaN(at)) return esc(iso);
  const exact = new Date(at).toISOString();
  return `<time datetime="${exact}" title="${exact}">${fmtSeconds(Math.max(0, (now - at) / 1000))} ago</time>`;
}

export function fmtPercent(ratio: number | undefined | null, digits = 1): string {
  if (ratio === undefined || ratio === null || Number.isNaN(ratio)) return '–';
  return `${(ratio * 100).toFixed(digits)}%`;
}

/** A labelled badge; `tone` picks its colour (ok, warn, bad, muted). */
export function badge(text: string, tone: 'ok' | 'warn' | 'bad' | 'muted'): string {
  return `<span class="badge ${tone}">${esc(text)}</span>`;
}

/** `{a="1", b="2"}` for a label set; "" when empty. */
export function labelText(labels: Readonly<Record<string, string>> | undefined): string {
  const pairs = Object.entries(labels ?? {});
  if (pairs.length === 0) return '';
  return `{${pairs.map(([k, v]) => `${k}="${v}"`).join(', ')}}`;
}

/** A table row: its cells (already HTML) and a class that marks it (e.g. "bad" for a row in trouble). */
export interface Row {
  cells: string[];
  mark?: 'bad' | 'warn' | '';
  attrs?: string;
}

/** A table; cells are already HTML. An empty table says `empty` instead. */
export function table(head: readonly string[], rows: readonly (string[] | Row)[], empty: string, attrs = ''): string {
  if (rows.length === 0) return `<p class="empty">${esc(empty)}</p>`;
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const tr = rows.map((r) => {
    const row = Array.isArray(r) ? { cells: r } : r;
    const cls = row.mark ? ` class="${row.mark}"` : '';
    return `<tr${cls}${row.attrs ? ` ${row.attrs}` : ''}>${row.cells.map((c) => `<td>${c}</td>`).join('')}</tr>`;
  });
  return `<table${attrs}><thead><tr>${th}</tr></thead><tbody>${tr.join('')}</tbody></table>`;
}
