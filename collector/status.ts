/**
 * The collector's status (GET /api/v1/status, `plumb status`, the console): ingest doors,
 * the metric store and span/log transforms, and every sink with its disk queue, read from the
 * collector's own counters and the sink runners. Health rules beyond the shared ones
 * (shared/status.ts):
 *
 * - a sink that is retrying or cannot reach its destination is degraded; retries or dead letters
 *   that rose within the window make it degraded too;
 * - an ingest door that answered 429 (a queue full, the heap guard) within the window is degraded;
 * - the metric store holding STORE_DEGRADED of collector.metrics.maxSeries is degraded.
 */
import os from 'node:os';
import type { PlumbCollector } from './collector.ts';
import type { SinkStatus } from './sinks/runner.ts';
import { StatusModel, otlpSourceSpec, type ComponentSpec, type Problem, type StatusContext, type StatusReport } from '../shared/status.ts';
import type { Telemetry } from '../shared/telemetry.ts';

/** The metric store this full (series / maxSeries) is degraded. */
export const STORE_DEGRADED = 0.9;

/** The collector's status report, as GET /api/v1/status answers it. */
export function collectorStatus(collector: PlumbCollector): Promise<StatusReport> {
  return collector.status.report();
}

export function collectorStatusModel(collector: PlumbCollector, telemetry: Telemetry, status: StatusContext | undefined): StatusModel {
  return new StatusModel({
    role: 'collector',
    hostname: os.hostname(),
    telemetry,
    status,
    specs: () => collectorSpecs(collector),
    metrics: ['plumb_metrics_series', 'plumb_metrics_refused_total', 'plumb_ingest_items_rejected_total', 'plumb_ingest_invalid_logs_total', 'plumb_ingest_spans_dropped_total', 'plumb_spanmetrics_series_dropped_total'],
  });
}

const BACKPRESSURE = 'plumb_ingest_backpressure_total';

function collectorSpecs(collector: PlumbCollector): ComponentSpec[] {
  const c = collector.config;
  const specs: ComponentSpec[] = [];
  const otlp = c.otlp.enabled;
  const metricsIn = { metric: 'plumb_ingest_metrics_total' };
  specs.push({
    id: 'ingest_metrics',
    kind: 'source',
    type: 'plumb_agent',
    inputs: [],
    in: metricsIn,
    out: metricsIn,
    drops: (v) => v.by({ metric: 'plumb_ingest_items_rejected_total', where: { kind: 'metrics' } }, 'reason'),
    rising: [{ what: 'batches answered 429', selector: { metric: BACKPRESSURE, where: { kind: 'metrics' } } }],
  });
  const logEvents = { metric: 'plumb_ingest_log_events_total' };
  specs.push({
    id: 'ingest_logs',
    kind: 'source',
    type: 'plumb_agent',
    inputs: [],
    in: logEvents,
    out: { ...logEvents, where: { outcome: 'accepted' } },
    drops: (v) => prefixed('invalid_', v.by({ metric: 'plumb_ingest_invalid_logs_total' }, 'reason')),
    rising: [{ what: 'batches answered 429', selector: { metric: BACKPRESSURE, where: { kind: 'logs' } } }],
  });
  const spans = { metric: 'plumb_ingest_spans_total' };
  const spansDropped = { metric: 'plumb_ingest_spans_dropped_total' };
  specs.push({
    id: 'ingest_traces',
    kind: 'source',
    type: 'plumb_agent',
    inputs: [],
    in: [spans, spansDropped],
    out: spans,
    drops: (v) => v.by(spansDropped, 'reason'),
    rising: [{ what: 'batches answered 429', selector: { metric: BACKPRESSURE, where: { kind: 'traces' } } }],
  });
  if (otlp) {
    specs.push(otlpSourceSpec());
  }
  const refused = { metric: 'plumb_metrics_refused_total' };
  const maxSeries = c.metrics.maxSeries;
  specs.push({
    id: 'metric_store',
    kind: 'transform',
    type: 'aggregate',
    inputs: otlp ? ['ingest_metrics', 'otlp'] : ['ingest_metrics'],
    in: metricsIn,
    out: (v) => Math.max(0, v.sum(metricsIn) - v.sum(refused)),
    drops: (v) => v.by(refused, 'reason'),
    extra: (v) => {
      const series = v.sum({ metric: 'plumb_metrics_series' });
      return series >= STORE_DEGRADED * maxSeries ? [{ health: 'degraded', text: `${series} series of collector.metrics.maxSeries ${maxSeries}` }] : [];
    },
  });
  const traceIn = otlp ? ['ingest_traces', 'otlp'] : ['ingest_traces'];
  const logIn = otlp ? ['ingest_logs', 'otlp'] : ['ingest_logs'];
  if (collector.spanMetrics !== null) {
    specs.push({
      id: 'span_metrics',
      kind: 'transform',
      type: 'span_metrics',
      inputs: traceIn,
      in: spans,
      out: spans,
      drops: { max_series: { metric: 'plumb_spanmetrics_series_dropped_total' } },
    });
  }
  if (collector.patterns !== null) {
    const patterns = { metric: 'plumb_log_pattern_events_total' };
    specs.push({ id: 'patterns', kind: 'transform', type: 'log_patterns', inputs: logIn, in: patterns, out: patterns });
  }
  for (const s of collector.logs?.status() ?? []) specs.push(runnerSpec(`logs_${s.name}`, logIn, () => collector.logs?.status().find((x) => x.name === s.name)));
  for (const s of collector.spanIndex?.status() ?? []) specs.push(runnerSpec(`spans_${s.name.replace(/_spans$/, '')}`, traceIn, () => collector.spanIndex?.status().find((x) => x.name === s.name)));
  for (const s of collector.metricSinks?.status() ?? []) specs.push(runnerSpec(`metrics_${s.name}`, ['metric_store'], () => collector.metricSinks?.status().find((x) => x.name === s.name)));
  const zipkin = c.traces.zipkin;
  if (collector.zipkinExporter !== null && zipkin !== undefined) {
    const events = { metric: 'plumb_sink_events_total', where: { sink: 'zipkin' } };
    specs.push({
      id: 'zipkin',
      kind: 'sink',
      type: 'zipkin',
      inputs: traceIn,
      in: events,
      out: { ...events, where: { sink: 'zipkin', outcome: 'sent' } },
      drops: (v) => {
        const by = v.by(events, 'outcome');
        return { rejected: by.rejected ?? 0, dropped: by.dropped ?? 0, queue_full: by.refused ?? 0 };
      },
      rising: [{ what: 'retried writes', selector: { metric: 'plumb_sink_retries_total', where: { sink: 'zipkin' } } }],
      queue: () => {
        const q = collector.zipkinExporter?.queueDepth();
        return q === undefined ? undefined : { depth: q, bound: zipkin.maxQueuedSpans, unit: 'events' };
      },
    });
  }
  return specs;
}

/** A sink drained by the shared sink runner: its counters, its disk queue, its state. */
function runnerSpec(id: string, inputs: string[], current: () => SinkStatus | undefined): ComponentSpec {
  const name = current()?.name ?? id;
  const events = { metric: 'plumb_sink_events_total', where: { sink: name } };
  return {
    id,
    kind: 'sink',
    type: name.replace(/_spans$/, ''),
    inputs,
    in: events,
    out: { metric: 'plumb_sink_events_total', where: { sink: name }, except: { outcome: ['dead_letter'] } },
    drops: {
      dead_letter: { metric: 'plumb_sink_dead_letter_total', where: { sink: name } },
      queue_full: { metric: 'plumb_sink_queue_refused_total', where: { sink: name } },
    },
    rising: [{ what: 'retried writes', selector: { metric: 'plumb_sink_retries_total', where: { sink: name } } }],
    queue: () => {
      const s = current();
      return s === undefined ? undefined : { depth: s.queue.bytes, bound: s.queue.maxBytes, unit: 'bytes' };
    },
    extra: () => sinkProblems(current()),
  };
}

function sinkProblems(s: SinkStatus | undefined): Problem[] {
  if (s === undefined) return [];
  const why = s.lastError !== null ? `: ${s.lastError.message}` : '';
  if (s.state === 'retrying') return [{ health: 'degraded', text: `retrying${why}` }];
  if (s.state === 'unavailable') return [{ health: 'degraded', text: `destination unavailable${why}` }];
  return [];
}

function prefixed(prefix: string, by: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(by)) out[prefix + k] = n;
  return out;
}
