/**
 * How a sample of /metrics becomes a Graphite path (collector.metrics.sinks.graphite.naming).
 *
 * statsd (the default), for dashboards built on Etsy statsd's layout:
 *   counter  requests_total{code="200"}            → stats.counters.requests.200.count
 *   gauge    queue_depth{host="a"}                  → stats.gauges.queue_depth.a
 *   summary  latency{quantile="0.99"} / _sum / _count → stats.timers.latency.p99 / .sum / .count
 *   histogram size_bucket{le="0.5"} / _sum / _count → stats.timers.size.bucket.le_0_5 / .sum / .count
 * Label values follow the name in the order of their label names; characters a path node cannot
 * hold become "_".
 *
 * tags: Graphite 1.1 tagged series with the names and labels of /metrics, e.g.
 *   requests_total;code=200 · latency;quantile=0.99 · size_bucket;le=0.5
 */
import type { GraphiteNaming } from './config.ts';
import type { MetricSample } from './sample.ts';

/** The Graphite path (or tagged name) of a sample. */
export function graphitePath(s: MetricSample, naming: GraphiteNaming): string {
  return naming.scheme === 'tags' ? taggedName(s, naming.prefix) : statsdPath(s, naming);
}

function statsdPath(s: MetricSample, n: GraphiteNaming): string {
  const nodes: string[] = [];
  if (n.prefix !== '') nodes.push(n.prefix);
  let base = s.name;
  let suffix: string[] = [];
  let skip = '';
  switch (s.type) {
    case 'counter':
      nodes.push(n.counters);
      base = base.endsWith('_total') ? base.slice(0, -'_total'.length) : base;
      suffix = ['count'];
      break;
    case 'gauge':
      nodes.push(n.gauges);
      break;
    case 'summary': {
      nodes.push(n.timers);
      const q = labelValue(s, 'quantile');
      if (q !== undefined) {
        skip = 'quantile';
        suffix = [`p${node(String(Number((Number(q) * 100).toPrecision(12))))}`];
      } else if (base.endsWith('_sum')) {
        base = base.slice(0, -4);
        suffix = ['sum'];
      } else if (base.endsWith('_count')) {
        base = base.slice(0, -6);
        suffix = ['count'];
      }
      break;
    }
    case 'histogram':
      nodes.push(n.timers);
      if (base.endsWith('_bucket')) {
        base = base.slice(0, -7);
        skip = 'le';
        const le = labelValue(s, 'le') ?? '';
        suffix = ['bucket', le === '+Inf' ? 'le_inf' : `le_${node(le)}`];
      } else if (base.endsWith('_sum')) {
        base = base.slice(0, -4);
        suffix = ['sum'];
      } else if (base.endsWith('_count')) {
        base = base.slice(0, -6);
        suffix = ['count'];
      }
      break;
  }
  nodes.push(node(base));
  for (let i = 0; i < s.labels.length; i += 2) if (s.labels[i] !== skip) nodes.push(node(s.labels[i + 1]));
  for (const x of suffix) nodes.push(x);
  return nodes.join('.');
}

function taggedName(s: MetricSample, prefix: string): string {
  let out = prefix === '' ? s.name : `${prefix}.${s.name}`;
  for (let i = 0; i < s.labels.length; i += 2) out += `;${s.labels[i]}=${tagValue(s.labels[i + 1])}`;
  return out;
}

function labelValue(s: MetricSample, name: string): string | undefined {
  for (let i = 0; i < s.labels.length; i += 2) if (s.labels[i] === name) return s.labels[i + 1];
  return undefined;
}

/** A path node: letters, digits, "_" and "-"; anything else becomes "_". */
function node(v: string): string {
  const out = v.replace(/[^A-Za-z0-9_-]/g, '_');
  return out === '' ? '_' : out;
}

/** A tag value may not hold ";" or spaces, nor start with "~". */
function tagValue(v: string): string {
  return v.replace(/[;\s]/g, '_').replace(/^~/, '_');
}
