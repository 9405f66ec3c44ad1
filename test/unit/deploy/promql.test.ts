import { describe, expect, it } from 'vitest';
import { dashboardQueries, selectedNames, substituteVariables } from './promql.ts';

const names = (expr: string) => [...selectedNames(expr).names].sort();

describe('selectedNames', () => {
  it('finds metric names, not functions, aggregations, label names or durations', () => {
    expect(names('sum by (job, kind) (rate(plumb_forward_batches_total{job=~"$agent_job", kind!="x"}[5m])) > 0')).toEqual(['plumb_forward_batches_total']);
    expect(names('histogram_quantile(0.99, sum by (le) (rate(a_bucket[$__rate_interval])))')).toEqual(['a_bucket']);
    expect(names('up{job="plumb-agent"} == 0 and on (instance) b offset 5m')).toEqual(['b', 'up']);
    expect(names('-max by (host, device) (system_io_wbytes_s{host=~"$host"}) / ignoring (x) group_left (y) system_load_15')).toEqual(['system_io_wbytes_s', 'system_load_15']);
    expect(names('sum without (instance) (x) * 1e3 + 0.5')).toEqual(['x']);
  });

  it('reads __name__ matchers and sets aside names built from Grafana variables', () => {
    const s = selectedNames('rate({__name__="${timer}_count", job="a"}[1m]) / rate({__name__="known_sum"}[1m]) + {__name__=~"re.*"}');
    expect([...s.names]).toEqual(['known_sum']);
    expect([...s.templated]).toEqual(['${timer}_count']);
  });

  it('unwraps Grafana variable queries', () => {
    expect(names('label_values(system_uptime, host)')).toEqual(['system_uptime']);
    expect(names('label_values({job=~"$j", __name__=~".+_total"}, __name__)')).toEqual([]);
    expect(names('metrics(plumb_.*)')).toEqual([]);
    expect(names('query_result(topk(5, foo))')).toEqual(['foo']);
  });
});

describe('dashboardQueries and substituteVariables', () => {
  it('collects panel targets (inside rows too) and query variables', () => {
    const dashboard = {
      panels: [
        { title: 'A', targets: [{ expr: 'a', refId: 'A' }] },
        { title: 'row', type: 'row', panels: [{ title: 'B', targets: [{ expr: 'b', refId: 'A' }] }] },
      ],
      templating: { list: [{ name: 'host', type: 'query', query: { query: 'label_values(c, host)' } }, { name: 'ds', type: 'datasource', query: 'prometheus' }] },
    };
    expect(dashboardQueries(dashboard).map((q) => q.expr)).toEqual(['a', 'b', 'label_values(c, host)']);
  });

  it('replaces variables with values Prometheus accepts', () => {
    expect(substituteVariables('rate({__name__="${timer}_count", job=~"$job"}[$__rate_interval])', { timer: 't', job: 'j' })).toBe('rate({__name__="t_count", job=~"j"}[1m])');
    expect(substituteVariables('label_values(up{job="$job"}, instance)', { job: 'j' })).toBe('up{job="j"}');
    expect(() => substituteVariables('x{a="$missing"}', {})).toThrow(/\$missing/);
  });
});
