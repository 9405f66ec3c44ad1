// plumb console: refreshes a page's <main> in place, posts the grok form to the API, and runs
// the live tap. Every page works without it (read-only pages then reload themselves).
'use strict';
(function () {
  const main = document.querySelector('main');
  if (!main) return;

  // ── refresh: fetch the same page, swap <main> (a form being edited is left alone) ──
  const seconds = Number(main.dataset.refresh || 0);
  if (seconds > 0) {
    let busy = false;
    setInterval(async () => {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const res = await fetch(location.href, { headers: { accept: 'text/html' }, credentials: 'same-origin' });
        if (res.ok) {
          const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
          const fresh = doc.querySelector('main');
          if (fresh) main.innerHTML = fresh.innerHTML;
        }
      } catch { /* next time */ }
      busy = false;
    }, seconds * 1000);
  }

  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

  // ── grok: post to the API and show the result without a reload ──
  const grokForm = document.getElementById('grok-form');
  if (grokForm) {
    grokForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const data = new FormData(grokForm);
      const body = {};
      const pattern = String(data.get('pattern') || '');
      if (pattern.trim() !== '') body.pattern = pattern;
      const lines = String(data.get('lines') || '').replace(/\r\n/g, '\n').replace(/\n$/, '');
      body.lines = lines === '' ? [] : lines.split('\n');
      const input = String(data.get('input') || '');
      if (/^\d+$/.test(input)) body.input = Number(input);
      const out = document.getElementById('grok-result');
      out.innerHTML = '<p class="muted">matching…</p>';
      try {
        const res = await fetch('/api/v1/grok', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin' });
        const answer = await res.json();
        out.innerHTML = res.ok ? grokHtml(answer) : `<div class="problem" role="alert">${esc(answer.message || res.statusText)}</div>`;
      } catch (err) {
        out.innerHTML = `<div class="problem" role="alert">${esc(err.message)}</div>`;
      }
    });
  }

  function grokHtml(a) {
    const total = a.lines.length;
    const pct = total === 0 ? '–' : `${((a.matched / total) * 100).toFixed(1)}%`;
    const tone = a.matched === total && total > 0 ? 'ok' : 'warn';
    const rows = a.lines.map((l, i) => {
      const cell = l.outcome === 'matched'
        ? `<dl class="fields">${Object.entries(l.fields || {}).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(typeof v === 'string' ? v : JSON.stringify(v))}</dd>`).join('')}</dl>`
        : `<span class="badge ${l.outcome === 'failed' ? 'bad' : 'warn'}">${l.outcome === 'failed' ? 'no match' : l.outcome === 'timeout' ? 'overran the line deadline' : 'not tried'}</span>`;
      return `<tr${l.outcome === 'matched' ? '' : ' class="bad"'} data-outcome="${l.outcome}"><td>${i + 1}</td><td><code class="line">${esc(l.line)}</code></td><td>${cell}</td></tr>`;
    }).join('');
    const timed = a.timedOut > 0 ? ` <span class="badge bad">${a.timedOut} overran ${a.timeouts.line} ms</span>` : '';
    const from = a.input ? ` <span class="muted">input agent.logs[${a.input.index}]${a.input.file ? `, last lines of ${esc(a.input.file)}` : ''}</span>` : '';
    const table = total === 0 ? '<p class="empty">No lines to match.</p>' : `<table class="grok"><thead><tr><th>#</th><th>line</th><th>fields</th></tr></thead><tbody>${rows}</tbody></table>`;
    return `<p class="summary"><span class="badge ${tone}">${a.matched} of ${total} matched (${pct})</span>${timed} pattern <code>${esc(a.patterns.join(' | '))}</code>${from}</p>${table}`;
  }
})();

// ── live tap: stream GET /api/v1/tap and show the newest lines ──
(function () {
  const form = document.getElementById('tap-form');
  if (!form) return;
  const out = document.getElementById('tap-out');
  const state = document.getElementById('tap-state');
  const stop = document.getElementById('tap-stop');
  const KEEP = 500;
  let abort = null;
  let shown = [];
  const show = () => { out.textContent = shown.join('\n'); out.scrollTop = out.scrollHeight; };
  stop.addEventListener('click', () => abort && abort.abort());
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (abort) abort.abort();
    abort = new AbortController();
    const mine = abort;
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v) !== '') params.set(k, String(v));
    shown = [];
    show();
    stop.disabled = false;
    state.textContent = 'Connecting…';
    let count = 0;
    try {
      const res = await fetch(`/api/v1/tap?${params}`, { signal: mine.signal, credentials: 'same-origin' });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw new Error(body.message || `${res.status} ${res.statusText}`);
      }
      state.textContent = 'Running.';
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let tail = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        tail += decoder.decode(value, { stream: true });
        const lines = tail.split('\n');
        tail = lines.pop();
        for (const line of lines) {
          if (line === '') continue;
          count++;
          try {
            const e = JSON.parse(line);
            shown.push(`${e.at} ${e.kind} ${e.component} ${JSON.stringify(e.item)}`);
          } catch {
            shown.push(line);
          }
        }
        if (shown.length > KEEP) shown = shown.slice(-KEEP);
        show();
        state.textContent = `Running: ${count} seen.`;
      }
      state.textContent = `Ended after ${count} (the limit, or the server closed the stream).`;
    } catch (err) {
      state.textContent = mine.signal.aborted ? `Stopped after ${count}.` : `Failed: ${err.message}`;
    } finally {
      if (abort === mine) {
        abort = null;
        stop.disabled = true;
      }
    }
  });
})();
