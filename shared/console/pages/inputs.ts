/**
 * Inputs page (agent): each tailed file with its identity, how far it is read (offset against
 * size), its lag in bytes and seconds, rotations seen and the share of its lines grok parsed; a
 * file lagging past agent.tail.lagThreshold is marked. Then statsd: lines per second, parse
 * errors by reason, series against the cap.
 */
import { badge, esc, fmtBytes, fmtNumber, fmtPercent, fmtSeconds, table, type Row } from '../html.ts';
import type { StatusReport } from '../../status.ts';

function bar(share: number, hot: boolean): string {
  const s = Number.isFinite(share) ? Math.max(0, Math.min(1, share)) : 0;
  return `<span class="bar${hot ? ' hot' : ''}"><i class="w${Math.round(s * 20) * 5}"></i></span>`;
}

export function inputsPage(report: StatusReport, lagThresholdMs: number): string {
  const parts: string[] = ['<h1>Inputs</h1>'];
  const files = report.files ?? [];
  const rows: Row[] = files.map((f) => {
    const lagging = f.lagSeconds * 1000 > lagThresholdMs;
    const lines = f.parsed + f.failed;
    const parsedShare = lines === 0 ? NaN : f.parsed / lines;
    return {
      cells: [
        `<code>${esc(f.path)}</code>${lagging ? ` ${badge('lagging', 'bad')}` : ''}`,
        `<code title="${esc(f.id)}">${esc(f.id.slice(0, 12))}</code>`,
        `${bar(f.size === 0 ? 1 : f.offset / f.size, false)} ${esc(fmtBytes(f.offset))} of ${esc(fmtBytes(f.size))}`,
        `${esc(fmtBytes(f.lagBytes))}`,
        `${lagging ? '<strong class="error">' : ''}${esc(fmtSeconds(f.lagSeconds))}${lagging ? '</strong>' : ''}`,
        esc(fmtNumber(f.rotations)),
        lines === 0 ? '<span class="muted">no lines yet</span>' : `${esc(fmtPercent(parsedShare))} <span class="muted">${esc(fmtNumber(f.failed))} failed</span>`,
      ],
      mark: lagging ? 'bad' : parsedShare < 1 ? 'warn' : '',
      attrs: `data-file="${esc(f.path)}"${lagging ? ' data-lagging="true"' : ''}`,
    };
  });
  parts.push(
    `<h2>Files</h2><p class="hint">Lagging: the oldest byte not yet acknowledged by a collector waited longer than ${esc(fmtSeconds(lagThresholdMs / 1000))} (agent.tail.lagThreshold).</p>`,
    table(['file', 'identity', 'read (acknowledged)', 'lag', 'lag time', 'rotations', 'parsed'], rows, report.files === undefined ? 'This role tails no files.' : 'No file matches the configured inputs yet.', ' class="files"'),
  );
  const s = report.statsd;
  parts.push('<h2>statsd</h2>');
  if (s === undefined) {
    parts.push('<p class="empty">statsd is off on this role.</p>');
  } else {
    const share = s.seriesCap > 0 ? s.series / s.seriesCap : 0;
    const errors = Object.entries(s.parseErrors).filter(([, v]) => v > 0);
    parts.push(`<table class="statsd"><tbody>
<tr><th>lines per second</th><td>${esc(fmtNumber(s.linesPerSecond))}/s</td></tr>
<tr${share >= 0.9 ? ' class="bad"' : ''}><th>series this interval</th><td>${bar(share, share >= 0.9)} ${esc(fmtNumber(s.series))} of ${esc(fmtNumber(s.seriesCap))} (agent.statsd.maxSeries)</td></tr>
<tr${errors.length > 0 ? ' class="warn"' : ''}><th>parse errors by reason</th><td>${errors.length === 0 ? '<span class="muted">none</span>' : errors.map(([r, v]) => `<span class="drop">${esc(r)}: ${esc(fmtNumber(v))}</span>`).join('<br>')}</td></tr>
</tbody></table>`);
  }
  return parts.join('');
}
