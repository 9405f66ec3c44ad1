/**
 * Line charts as inline SVG, drawn on the server: a page that shows a chart needs no script.
 * Lines are sampled points; a gap longer than `gapMs` breaks a line (the collector was down).
 */
import { esc, fmtNumber } from './html.ts';

export interface ChartSeries {
  name: string;
  points: readonly (readonly [at: number, value: number])[];
}

export interface ChartOptions {
  from: number;
  to: number;
  /** The y range shown at least; data beyond it widens it. */
  yMin: number;
  yMax: number;
  /** Horizontal reference lines (e.g. budget 0, burn rate 1). */
  marks?: readonly { value: number; label: string }[];
  title: string;
  gapMs?: number;
}

const W = 640;
const H = 180;
const PAD = { left: 48, right: 12, top: 14, bottom: 22 };
const COLOURS = ['#1f6feb', '#d1242f', '#9a6700', '#1a7f37', '#8250df', '#bc4c00'];

export function lineChart(series: readonly ChartSeries[], o: ChartOptions): string {
  let yMin = o.yMin;
  let yMax = o.yMax;
  for (const s of series) {
    for (const [, v] of s.points) {
      if (!Number.isFinite(v)) continue;
      if (v < yMin) yMin = v;
      if (v > yMax) yMax = v;
    }
  }
  if (yMax === yMin) yMax = yMin + 1;
  const span = Math.max(1, o.to - o.from);
  const x = (t: number): number => PAD.left + ((t - o.from) / span) * (W - PAD.left - PAD.right);
  const y = (v: number): number => PAD.top + (1 - (v - yMin) / (yMax - yMin)) * (H - PAD.top - PAD.bottom);
  const parts: string[] = [];
  parts.push(`<rect x="${PAD.left}" y="${PAD.top}" width="${W - PAD.left - PAD.right}" height="${H - PAD.top - PAD.bottom}" class="plot"/>`);
  for (const v of [yMin, (yMin + yMax) / 2, yMax]) {
    parts.push(`<text x="${PAD.left - 4}" y="${y(v) + 4}" text-anchor="end" class="tick">${esc(fmtNumber(Number(v.toPrecision(3))))}</text>`);
  }
  for (const m of o.marks ?? []) {
    if (m.value < yMin || m.value > yMax) continue;
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(m.value)}" y2="${y(m.value)}" class="mark"/><text x="${W - PAD.right - 2}" y="${y(m.value) - 3}" text-anchor="end" class="tick">${esc(m.label)}</text>`);
  }
  parts.push(`<text x="${PAD.left}" y="${H - 6}" class="tick">${esc(new Date(o.from).toISOString().slice(0, 16).replace('T', ' '))}</text>`);
  parts.push(`<text x="${W - PAD.right}" y="${H - 6}" text-anchor="end" class="tick">now</text>`);
  const gap = o.gapMs ?? Infinity;
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    let d = '';
    let last = -Infinity;
    for (const [t, v] of s.points) {
      if (!Number.isFinite(v) || t < o.from) {
        last = -Infinity;
        continue;
      }
      d += `${t - last > gap || d === '' ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
      last = t;
    }
    if (d !== '') parts.push(`<path d="${d.trim()}" fill="none" stroke="${colour}" stroke-width="2"><title>${esc(s.name)}</title></path>`);
    if (s.points.length === 1) {
      const [t, v] = s.points[0];
      if (Number.isFinite(v)) parts.push(`<circle cx="${x(t).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${colour}"/>`);
    }
  });
  // swatches drawn as SVG: the console's CSP allows no inline style attributes
  const legend = series.map((s, i) => `<span class="key"><svg width="12" height="6" aria-hidden="true"><rect width="12" height="6" fill="${COLOURS[i % COLOURS.length]}"/></svg> ${esc(s.name)}</span>`).join('');
  return `<figure class="chart"><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(o.title)}">${parts.join('')}</svg><figcaption>${esc(o.title)} ${legend}</figcaption></figure>`;
}
