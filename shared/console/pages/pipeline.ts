/**
 * Pipeline page: the role's components as a graph (sources → transforms → queues → sinks, by
 * their inputs) with live rates in and out, queue depth against its bound and drops by reason;
 * a degraded or failed component is drawn in its colour with its problems. Below the graph, the
 * same as a table, and the outcome of the last config reload with every error it reported.
 */
import { badge, esc, fmtAgo, fmtNumber, fmtPercent, fmtRate, table, type Row } from '../html.ts';
import type { ComponentStatus, StatusReport } from '../../status.ts';

const NODE_W = 210;
const NODE_H = 74;
const COL_GAP = 60;
const ROW_GAP = 16;
const TONE = { ok: 'ok', degraded: 'warn', failed: 'bad' } as const;

/** Column of each component: its longest path from a component without inputs. */
function depths(components: readonly ComponentStatus[]): Map<string, number> {
  const byId = new Map(components.map((c) => [c.id, c]));
  const depth = new Map<string, number>();
  const visit = (id: string, seen: Set<string>): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    const c = byId.get(id);
    if (c === undefined || seen.has(id)) return 0;
    seen.add(id);
    const d = c.inputs.filter((i) => byId.has(i)).reduce((m, i) => Math.max(m, visit(i, seen) + 1), 0);
    depth.set(id, d);
    return d;
  };
  for (const c of components) visit(c.id, new Set());
  return depth;
}

function queueShare(c: ComponentStatus): number | undefined {
  return c.queue === undefined || c.queue.bound <= 0 ? undefined : c.queue.depth / c.queue.bound;
}

function dropsTotal(c: ComponentStatus): number {
  return Object.values(c.drops).reduce((n, v) => n + v, 0);
}

/** The graph as inline SVG: one box per component, a curve per input. */
export function pipelineGraph(components: readonly ComponentStatus[]): string {
  if (components.length === 0) return '';
  const depth = depths(components);
  const columns: ComponentStatus[][] = [];
  for (const c of components) (columns[depth.get(c.id) ?? 0] ??= []).push(c);
  const pos = new Map<string, { x: number; y: number }>();
  columns.forEach((col, ci) => col.forEach((c, ri) => pos.set(c.id, { x: 8 + ci * (NODE_W + COL_GAP), y: 8 + ri * (NODE_H + ROW_GAP) })));
  const width = 16 + columns.length * (NODE_W + COL_GAP) - COL_GAP;
  const height = 16 + Math.max(...columns.map((c) => c.length)) * (NODE_H + ROW_GAP) - ROW_GAP;
  const edges: string[] = [];
  for (const c of components) {
    const to = pos.get(c.id)!;
    for (const i of c.inputs) {
      const from = pos.get(i);
      if (from === undefined) continue;
      const x1 = from.x + NODE_W;
      const y1 = from.y + NODE_H / 2;
      const x2 = to.x;
      const y2 = to.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      edges.push(`<path class="edge" d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 4},${y2}" marker-end="url(#arrow)"/>`);
    }
  }
  const nodes = components.map((c) => {
    const { x, y } = pos.get(c.id)!;
    const share = queueShare(c);
    const drops = dropsTotal(c);
    const line3 = share !== undefined ? `queue ${fmtNumber(c.queue!.depth)} / ${fmtNumber(c.queue!.bound)} ${c.queue!.unit} (${fmtPercent(share, 0)})` : drops > 0 ? `${fmtNumber(drops)} dropped` : c.kind;
    const tip = [`${c.id} (${c.type}): ${c.health}`, ...c.problems].join('\n');
    return `<g class="node ${c.health}" data-component="${esc(c.id)}" transform="translate(${x},${y})"><title>${esc(tip)}</title>
<rect width="${NODE_W}" height="${NODE_H}" rx="8"/>
<text x="10" y="19" class="id">${esc(c.id.length > 26 ? `${c.id.slice(0, 25)}…` : c.id)}</text>
<text x="10" y="37" class="type">${esc(c.type)}${c.health !== 'ok' ? ` · ${c.health}` : ''}</text>
<text x="10" y="54" class="rates">in ${esc(fmtRate(c.in.perSecond))} · out ${esc(fmtRate(c.out.perSecond))}</text>
<text x="10" y="68" class="type">${esc(line3)}</text>
${share !== undefined ? `<rect class="qbar" x="${NODE_W - 58}" y="8" width="48" height="6"/><rect class="qfill${share >= 0.8 ? ' hot' : ''}" x="${NODE_W - 58}" y="8" width="${(48 * Math.min(1, share)).toFixed(1)}" height="6"/>` : ''}</g>`;
  });
  return `<div class="graph-wrap"><svg class="pipeline" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="pipeline graph">
<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L8,4 L0,8 z" class="arrowhead"/></marker></defs>
${edges.join('')}${nodes.join('')}</svg></div>`;
}

function componentRow(c: ComponentStatus): Row {
  const share = queueShare(c);
  const drops = Object.entries(c.drops).filter(([, v]) => v > 0);
  return {
    cells: [
      `<strong>${esc(c.id)}</strong><div class="muted">${esc(c.kind)} · ${esc(c.type)}${c.inputs.length > 0 ? ` · from ${c.inputs.map(esc).join(', ')}` : ''}</div>`,
      badge(c.health, TONE[c.health]) + (c.problems.length > 0 ? `<ul class="problems">${c.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul>` : ''),
      `<span class="num">${esc(fmtRate(c.in.perSecond))}</span> <span class="muted">${esc(fmtNumber(c.in.total))} total</span>`,
      `<span class="num">${esc(fmtRate(c.out.perSecond))}</span> <span class="muted">${esc(fmtNumber(c.out.total))} total</span>`,
      share === undefined
        ? '<span class="muted">–</span>'
        : `<span class="bar${share >= 0.8 ? ' hot' : ''}" title="${esc(fmtPercent(share))}"><i class="w${Math.round(Math.min(1, share) * 20) * 5}"></i></span> ${esc(fmtNumber(c.queue!.depth))} / ${esc(fmtNumber(c.queue!.bound))} ${esc(c.queue!.unit)}`,
      drops.length === 0 ? '<span class="muted">none</span>' : drops.map(([r, v]) => `<span class="drop">${esc(r)}: ${esc(fmtNumber(v))}</span>`).join('<br>'),
    ],
    mark: c.health === 'failed' ? 'bad' : c.health === 'degraded' ? 'warn' : '',
    attrs: `data-component="${esc(c.id)}" data-health="${c.health}"`,
  };
}

export function reloadNote(report: StatusReport, now: number): string {
  const r = report.config.lastReload;
  const loaded = `<p class="summary">Config <code>${esc(report.config.path)}</code> <code title="sha256">${esc(report.config.hash.slice(0, 12))}</code>, loaded ${fmtAgo(report.config.loadedAt, now)}${r !== undefined && r.result === 'success' ? `; last reload ${fmtAgo(r.at, now)} ${badge('applied', 'ok')}` : ''}</p>`;
  if (r === undefined || r.result === 'success') return loaded;
  return `${loaded}<div class="problem" data-reload="failure"><strong>The last config reload (${fmtAgo(r.at, now)}) failed; the running config stays.</strong><ul>${r.errors.map((e) => `<li>${esc(e)}</li>`).join('')}</ul></div>`;
}

export function pipelinePage(report: StatusReport, now = Date.now()): string {
  const troubled = report.components.filter((c) => c.health !== 'ok');
  const summary = `<p class="summary">${report.healthy ? badge('healthy', 'ok') : badge(`${troubled.length} component${troubled.length === 1 ? '' : 's'} in trouble`, troubled.some((c) => c.health === 'failed') ? 'bad' : 'warn')} ${esc(report.role)} on ${esc(report.hostname)}, up since ${fmtAgo(report.startedAt, now)}</p>`;
  const order = { failed: 0, degraded: 1, ok: 2 } as const;
  const rows = [...report.components].sort((a, b) => order[a.health] - order[b.health]).map(componentRow);
  return `<h1>Pipeline</h1>${reloadNote(report, now)}${summary}${pipelineGraph(report.components)}
${table(['component', 'health', 'in', 'out', 'queue', 'drops by reason'], rows, 'This role runs no components.', ' class="components"')}`;
}
