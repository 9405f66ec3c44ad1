/**
 * Grok debugger page: a form (sample lines and a pattern, or a configured input) that works
 * without JavaScript by posting to /ui/grok; with it, the script posts to /api/v1/grok and
 * shows the same table without reloading.
 */
import { badge, esc, fmtPercent, table, type Row } from '../html.ts';
import type { GrokAnswer, GrokInputInfo } from '../grok.ts';

export interface GrokForm {
  pattern: string;
  lines: string;
  input: string;
}

export function grokPage(inputs: readonly GrokInputInfo[] | null, form: GrokForm, answer: GrokAnswer | null, error: string | null): string {
  if (inputs === null) {
    return '<h1>Grok debugger</h1><p class="empty">This role has no grok engine to run patterns on.</p>';
  }
  const options = inputs
    .map((i) => `<option value="${i.index}"${form.input === String(i.index) ? ' selected' : ''}>agent.logs[${i.index}] ${esc(i.paths.join(', '))}${i.patterns.length > 0 ? '' : ' (no pattern)'}</option>`)
    .join('');
  const picker =
    inputs.length > 0
      ? `<label>Configured input <select name="input"><option value="">none: use the pattern below</option>${options}</select></label><p class="hint">With an input: its pattern and definitions (a pattern typed below replaces its pattern), and its file's last lines when no lines are given.</p>`
      : '';
  const formHtml = `<form method="post" action="/ui/grok" id="grok-form">${picker}
<label>Pattern <input name="pattern" value="${esc(form.pattern)}" placeholder="%{COMMONAPACHELOG}" spellcheck="false" autocomplete="off"></label>
<label>Sample lines <textarea name="lines" rows="8" spellcheck="false" placeholder="one log line per line">${esc(form.lines)}</textarea></label>
<button type="submit">Match</button></form>`;
  return `<h1>Grok debugger</h1>${formHtml}<div id="grok-result">${grokResult(answer, error)}</div>`;
}

/** The result block; the script renders the same markup from the API's JSON (console.js). */
export function grokResult(answer: GrokAnswer | null, error: string | null): string {
  if (error !== null) return `<div class="problem" role="alert">${esc(error)}</div>`;
  if (answer === null) return '';
  const total = answer.lines.length;
  const rows: Row[] = answer.lines.map((l, i) => ({
    cells: [
      String(i + 1),
      `<code class="line">${esc(l.line)}</code>`,
      l.outcome === 'matched'
        ? `<dl class="fields">${Object.entries(l.fields ?? {})
            .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(typeof v === 'string' ? v : JSON.stringify(v))}</dd>`)
            .join('')}</dl>`
        : badge(l.outcome === 'failed' ? 'no match' : l.outcome === 'timeout' ? 'overran the line deadline' : 'not tried', l.outcome === 'failed' ? 'bad' : 'warn'),
    ],
    mark: l.outcome === 'matched' ? '' : 'bad',
    attrs: `data-outcome="${l.outcome}"`,
  }));
  const from = answer.input !== undefined ? ` <span class="muted">input agent.logs[${answer.input.index}]${answer.input.file !== undefined ? `, last lines of ${esc(answer.input.file)}` : ''}</span>` : '';
  return `<p class="summary">${badge(`${answer.matched} of ${total} matched (${fmtPercent(total === 0 ? NaN : answer.matched / total)})`, answer.matched === total && total > 0 ? 'ok' : 'warn')}${answer.timedOut > 0 ? ` ${badge(`${answer.timedOut} overran ${answer.timeouts.line} ms`, 'bad')}` : ''} pattern <code>${esc(answer.patterns.join(' | '))}</code>${from}</p>
${table(['#', 'line', 'fields'], rows, 'No lines to match.', ' class="grok"')}`;
}
