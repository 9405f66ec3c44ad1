import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { alertRoutes } from '../../../../collector/alerts/routes.ts';
import { compileTemplate, formatValue } from '../../../../collector/alerts/template.ts';
import { harness } from './harness.ts';

const RULES = `
rules:
  - alert: QueueDeep
    metric: queue.depth
    aggregate: max
    window: 1m
    op: ">"
    threshold: 10
    for: 1m
    labels: { severity: page }
    annotations: { summary: "{{ $labels.queue }} holds {{ $value }}" }
  - alert: QueueDeepNow
    metric: queue.depth
    where: { queue: "!=ignored" }
    aggregate: max
    window: 1m
    op: ">"
    threshold: 10
`;

function evaluated() {
  const h = harness(RULES);
  h.engine.observeMetric({ statsdName: 'queue.depth', name: 'queue_depth', labels: { queue: 'say "hi"\nthere' }, type: 'g', value: 42 }, 100_000);
  h.engine.evaluate(100_500);
  return h;
}

describe('Prometheus exposition', () => {
  it('renders ALERTS and ALERTS_FOR_STATE per alert, labels escaped, with HELP and TYPE', () => {
    const text = evaluated().engine.metricsText();
    const lines = text.split('\n');
    expect(lines).toContain('# TYPE ALERTS gauge');
    expect(lines).toContain('# TYPE ALERTS_FOR_STATE gauge');
    expect(lines).toContain('ALERTS{alertname="QueueDeep",alertstate="pending",queue="say \\"hi\\"\\nthere",severity="page"} 1');
    expect(lines).toContain('ALERTS{alertname="QueueDeepNow",alertstate="firing",queue="say \\"hi\\"\\nthere"} 1');
    // The value of ALERTS_FOR_STATE is when the alert became active, in Unix seconds.
    expect(lines).toContain('ALERTS_FOR_STATE{alertname="QueueDeep",queue="say \\"hi\\"\\nthere",severity="page"} 100');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('has no SLO samples without SLOs, but keeps the families declared', () => {
    const text = evaluated().engine.metricsText();
    expect(text).toContain('# TYPE plumb_slo_burn_rate gauge');
    expect(text).not.toMatch(/^plumb_slo_burn_rate\{/m);
  });
});

describe('HTTP API', () => {
  it('serves /api/v1/alerts and /api/v1/rules in the shape of Prometheus', async () => {
    const h = evaluated();
    const app = Fastify();
    await app.register(alertRoutes(h.engine));
    const alerts = await app.inject({ method: 'GET', url: '/api/v1/alerts' });
    expect(alerts.statusCode).toBe(200);
    const a = alerts.json() as { status: string; data: { alerts: Record<string, unknown>[] } };
    expect(a.status).toBe('success');
    expect(a.data.alerts).toContainEqual({
      labels: { alertname: 'QueueDeep', queue: 'say "hi"\nthere', severity: 'page' },
      annotations: { summary: 'say "hi"\nthere holds 42' },
      state: 'pending',
      activeAt: new Date(100_500).toISOString(),
      value: '42',
    });

    const rules = await app.inject({ method: 'GET', url: '/api/v1/rules' });
    const r = rules.json() as { data: { groups: { name: string; interval: number; rules: Record<string, unknown>[] }[] } };
    expect(r.data.groups[0].interval).toBe(15);
    expect(r.data.groups[0].rules[0]).toMatchObject({
      name: 'QueueDeep',
      query: 'max(queue.depth[1m]) > 10',
      duration: 60,
      keepFiringFor: 0,
      labels: { severity: 'page' },
      annotations: { summary: '{{ $labels.queue }} holds {{ $value }}' },
      state: 'pending',
      health: 'ok',
      lastError: '',
      lastEvaluation: new Date(100_500).toISOString(),
      type: 'alerting',
    });
    expect(r.data.groups[0].rules[1]).toMatchObject({ query: 'max(queue.depth{queue!="ignored"}[1m]) > 10', state: 'firing' });
    await app.close();
  });
});

describe('templates', () => {
  it('fills $value and $labels and formats numbers compactly', () => {
    const t = compileTemplate('{{$labels.host}}: {{ $value }} ({{ $value | humanize }}, {{ $value|humanizePercentage }})');
    expect(t.render({ value: 0.0123456, labels: { host: 'a' } })).toBe('a: 0.01235 (12.35m, 1.235%)');
    expect(t.render({ value: 1234567, labels: {} })).toBe(': 1234567 (1.235M, 123456700%)');
    expect(t.render({ value: undefined, labels: {} })).toBe(': no data (no data, no data)');
    expect(formatValue(NaN)).toBe('NaN');
  });

  it('rejects anything that is not a placeholder it knows', () => {
    for (const bad of ['{{ .Value }}', '{{ $labels }}', '{{ $value | printf "%.2f" }}', '{{ range . }}', 'open {{ $value']) {
      expect(() => compileTemplate(bad), bad).toThrow(/template/);
    }
    expect(compileTemplate('plain text').constant).toBe(true);
  });
});
