/**
 * The console's pages as HTML, from given state: what stands out (a failed sink, a lagging
 * file, a firing alert, a reload that failed) and that nothing from the outside reaches the
 * page unescaped.
 */
import { describe, expect, it } from 'vitest';
import { pipelinePage } from '../../../../shared/console/pages/pipeline.ts';
import { inputsPage } from '../../../../shared/console/pages/inputs.ts';
import { alertsPage, type RulesBody } from '../../../../shared/console/pages/alerts.ts';
import { fleetPage } from '../../../../shared/console/pages/fleet.ts';
import { esc, fmtBytes, fmtNumber, fmtSeconds } from '../../../../shared/console/html.ts';
import type { ComponentStatus, StatusReport } from '../../../../shared/status.ts';

const NOW = Date.parse('2026-12-07T12:00:00Z');

function component(id: string, over: Partial<ComponentStatus> = {}): ComponentStatus {
  return { id, kind: 'source', type: id, inputs: [], health: 'ok', problems: [], in: { total: 100, perSecond: 10 }, out: { total: 100, perSecond: 10 }, drops: {}, ...over };
}

function report(over: Partial<StatusReport> = {}): StatusReport {
  return {
    role: 'collector',
    hostname: 'c-1',
    version: '0.1.0',
    startedAt: '2026-12-07T11:00:00Z',
    healthy: false,
    config: { path: '/etc/plumb.yaml', hash: 'ab'.repeat(32), loadedAt: '2026-12-07T11:00:00Z' },
    components: [
      component('ingest_logs'),
      component('queue_es', { kind: 'queue', type: 'disk', inputs: ['ingest_logs'], health: 'degraded', problems: ['queue at 91% of its bound'], queue: { depth: 91, bound: 100, unit: 'bytes' } }),
      component('sink_es', { kind: 'sink', type: 'elasticsearch', inputs: ['queue_es'], health: 'failed', problems: ['<unreachable> http://es:9200'], drops: { dead_letter: 3, queue_full: 0 } }),
    ],
    ...over,
  };
}

describe('pipeline page', () => {
  it('draws every component with its inputs, and the one in trouble in its colour with its problems', () => {
    const html = pipelinePage(report(), NOW);
    expect(html).toContain('<g class="node failed" data-component="sink_es"');
    expect(html).toContain('<g class="node degraded" data-component="queue_es"');
    expect(html.match(/class="edge"/g)).toHaveLength(2);
    // the table lists the failed one first, marked, with its problem escaped and its drops by reason
    const rows = [...html.matchAll(/<tr class="(\w*)" data-component="([\w_]+)" data-health="(\w+)"/g)].map((m) => [m[2], m[1], m[3]]);
    expect(rows[0]).toEqual(['sink_es', 'bad', 'failed']);
    expect(html).toContain('&lt;unreachable&gt; http://es:9200');
    expect(html).not.toContain('<unreachable>');
    expect(html).toContain('dead_letter: 3');
    expect(html).not.toContain('queue_full: 0');
    expect(html).toContain('91 / 100 bytes');
    expect(html).toMatch(/2 components in trouble/);
  });

  it('shows every error of a reload that failed, and only the config otherwise', () => {
    const failed = report({ config: { path: '/etc/plumb.yaml', hash: 'cd'.repeat(32), loadedAt: '2026-12-07T11:00:00Z', lastReload: { at: '2026-12-07T11:59:00Z', result: 'failure', errors: ['agent.logs[0].pattern: bad', 'collector.listen: <in use>'] } } });
    const html = pipelinePage(failed, NOW);
    expect(html).toContain('data-reload="failure"');
    expect(html).toContain('<li>agent.logs[0].pattern: bad</li><li>collector.listen: &lt;in use&gt;</li>');
    const ok = pipelinePage(report({ config: { ...failed.config, lastReload: { at: '2026-12-07T11:59:00Z', result: 'success', errors: [] } } }), NOW);
    expect(ok).not.toContain('data-reload');
    expect(ok).toContain('applied');
  });
});

describe('inputs page', () => {
  it('marks a file whose lag passed the threshold, and shows offset, lag and the parsed share', () => {
    const r = report({
      role: 'agent',
      files: [
        { path: '/var/log/app.log', id: '0123456789abcdef0123', offset: 1024, size: 4096, lagBytes: 3072, lagSeconds: 95, rotations: 2, parsed: 90, failed: 10 },
        { path: '/var/log/quiet.log', id: 'fedcba', offset: 10, size: 10, lagBytes: 0, lagSeconds: 0, rotations: 0, parsed: 0, failed: 0 },
      ],
      statsd: { linesPerSecond: 1500, parseErrors: { bad_type: 4, no_value: 0 }, series: 950, seriesCap: 1000 },
    });
    const html = inputsPage(r, 30_000);
    expect(html).toMatch(/<tr class="bad" data-file="\/var\/log\/app.log" data-lagging="true">/);
    expect(html).toContain('1 KiB of 4 KiB');
    expect(html).toContain('3 KiB');
    expect(html).toContain('1m 35s');
    expect(html).toContain('90.0%');
    expect(html).toMatch(/<tr data-file="\/var\/log\/quiet.log">/);
    expect(html).toContain('bad_type: 4');
    expect(html).not.toContain('no_value');
    expect(html).toContain('950 of 1000');
  });
});

describe('alerts page', () => {
  it('lists firing alerts first and shows a pending one’s for progress', () => {
    const body: RulesBody = {
      data: {
        groups: [
          {
            name: 'plumb',
            interval: 15,
            lastEvaluation: '2026-12-07T11:59:59Z',
            rules: [
              { state: 'pending', name: 'Slow', query: 'max(q[1m]) > 5', duration: 600, alerts: [{ labels: { alertname: 'Slow' }, state: 'pending', activeAt: '2026-12-07T11:55:00Z', value: '7' }], health: 'ok', lastError: '', lastEvaluation: '2026-12-07T11:59:59Z', evaluationTime: 0 },
              { state: 'firing', name: 'Backlog', query: 'max(q[1m]) > 10', duration: 0, alerts: [{ labels: { alertname: 'Backlog', queue: '<q>' }, state: 'firing', activeAt: '2026-12-07T11:50:00Z', value: '20' }], health: 'ok', lastError: '', lastEvaluation: '2026-12-07T11:59:59Z', evaluationTime: 0 },
            ],
          },
        ],
        slos: [],
        lastReload: { ok: false, at: null, errors: ['rules[1].for: not a duration'] },
      },
    };
    const html = alertsPage({ rules: () => body, history: () => [] }, NOW);
    expect(html.indexOf('data-rule="Backlog"')).toBeLessThan(html.indexOf('data-rule="Slow"'));
    expect(html).toContain('{queue=&quot;&lt;q&gt;&quot;}');
    expect(html).toContain('<progress max="1" value="0.500"></progress> 5m 0s of 10m 0s');
    expect(html).toContain('rules[1].for: not a duration');
    expect(html).toContain('1 firing');
  });
});

describe('fleet page', () => {
  it('marks an agent that went silent and one whose config differs from the rest', () => {
    const agent = (hostname: string, configHash: string, lastBatch: string) => ({ hostname, version: '0.1.0', configHash, instance: `${hostname}@1`, address: '10.0.0.1', lastBatch, lastKind: 'metrics', batches: 5 });
    const html = fleetPage(
      {
        fleet: () => ({ fleet: false, self: null, members: [], agents: [agent('a', 'aaaa', '2026-12-07T11:59:58Z'), agent('b', 'aaaa', '2026-12-07T11:50:00Z'), agent('c', 'bbbb', '2026-12-07T11:59:58Z')] }),
        rules: () => ({ down: [], rules: [] }),
        staleAfterMs: 30_000,
      },
      NOW,
    );
    expect(html).toMatch(/<tr class="bad" data-agent="b">.*silent/);
    expect(html).toMatch(/data-agent="c">.*differs/);
    expect(html).not.toMatch(/data-agent="a">[^]*?differs[^]*?data-agent="b"/);
  });
});

describe('fleet page in a fleet', () => {
  it('lists every collector with its state and the rules it evaluates, and this one’s series', () => {
    const html = fleetPage(
      {
        fleet: () => ({ fleet: true, self: 'http://c1:9102', members: ['http://c1:9102', 'http://c2:9102'], source: 'static', lastRead: '2026-12-07T11:59:50Z', lastError: null, series: { held: 1200, owned: 600 }, agents: [] }),
        rules: () => ({ down: [{ member: 'http://c2:9102', since: '2026-12-07T11:58:00Z' }], rules: [{ name: 'Backlog', type: 'alert', owner: 'http://c1:9102' }, { name: 'Latency', type: 'alert', owner: 'http://c2:9102' }] }),
        staleAfterMs: 30_000,
      },
      NOW,
    );
    expect(html).toMatch(/<tr>.*http:\/\/c1:9102.*this collector.*up.*<code>Backlog<\/code>.*600 owned of 1200 held/);
    expect(html).toMatch(/<tr class="bad">.*http:\/\/c2:9102.*down.*<code>Latency<\/code>/);
    expect(html).toContain('No agent has sent a batch');
  });
});

describe('formats', () => {
  it('escapes and formats', () => {
    expect(esc(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    expect([fmtNumber(12_345), fmtNumber(0.25), fmtNumber(NaN), fmtBytes(1536), fmtSeconds(3725)]).toEqual(['12.3k', '0.25', '–', '1.5 KiB', '1h 2m']);
  });
});
