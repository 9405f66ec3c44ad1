/**
 * Live tap page: choose a component, a filter and a rate, and watch what passes it. The script
 * reads GET /api/v1/tap as a stream (NDJSON) and shows the newest lines; without JavaScript the
 * form opens the same stream, ended by its limit, as plain NDJSON.
 */
import { esc } from '../html.ts';
import type { StatusReport } from '../../status.ts';

export interface TapForm {
  component: string;
  filter: string;
  rate: string;
  limit: string;
}

/** `tappable`: the components with a tap point; the report adds what each is. */
export function tapPage(report: StatusReport, tappable: readonly string[], form: TapForm): string {
  const byId = new Map(report.components.map((c) => [c.id, c]));
  const options = tappable
    .map((id) => {
      const c = byId.get(id);
      return `<option value="${esc(id)}"${id === form.component ? ' selected' : ''}>${esc(id)}${c !== undefined ? ` (${esc(c.kind)}, ${esc(c.type)})` : ''}</option>`;
    })
    .join('');
  return `<h1>Live tap</h1>
<form class="inline" method="get" action="/api/v1/tap" id="tap-form">
<label>Component <select name="component">${options}</select></label>
<label>Filter <input name="filter" value="${esc(form.filter)}" placeholder='e.g. level == "ERROR"' spellcheck="false" autocomplete="off"></label>
<label>At most per second <input name="rate" type="number" min="1" max="1000" value="${esc(form.rate)}"></label>
<label>Stop after <input name="limit" type="number" min="1" max="100000" value="${esc(form.limit)}"></label>
<button type="submit" id="tap-start">Start</button> <button type="button" class="secondary" id="tap-stop" disabled>Stop</button>
</form>
<p class="hint">Shows what passes the component as it passes: events, metric samples or spans. The tap samples down to the rate given; it adds no load when nobody watches.</p>
<p id="tap-state" class="summary muted">Not running.</p>
<pre class="tap" id="tap-out" aria-live="polite"></pre>`;
}
