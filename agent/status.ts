/**
 * The agent's status (GET /api/v1/status, `plumb status`, the console): its pipeline as
 * components read from the agent's own counters, its tailed files with their lag, and statsd's
 * intake. Health rules beyond the shared ones (shared/status.ts):
 *
 * - forward: a collector that is down makes it degraded, all of them down failed; retries that
 *   rose within the window make it degraded;
 * - a forward lane whose batches are all on disk with its collectors down is degraded ("stuck");
 * - files: a file whose oldest unacknowledged byte waited more than agent.tail.lagThreshold is
 *   lagging (degraded);
 * - parser: grok timeouts that rose within the window make it degraded.
 *
 * statsd lines that do not parse are the sender's problem: they are counted in statsd.parseErrors,
 * not held against the agent's health.
 */
import os from 'node:os';
import type { PlumbAgent } from './agent.ts';
import { PARSE_ERROR_REASONS } from './statsd/parser.ts';
import { StatusModel, otlpSourceSpec, type ComponentSpec, type FileStatus, type Problem, type StatusContext, type StatusReport } from '../shared/status.ts';
import type { Telemetry } from '../shared/telemetry.ts';

const STATSD_LINES = { metric: 'plumb_statsd_lines_total' };
const STATSD_ERRORS = { metric: 'plumb_statsd_parse_errors_total' };

/** The agent's status report, as GET /api/v1/status answers it. */
export function agentStatus(agent: PlumbAgent): Promise<StatusReport> {
  return agent.status.report();
}

export function agentStatusModel(agent: PlumbAgent, telemetry: Telemetry, status: StatusContext | undefined): StatusModel {
  const c = agent.config;
  return new StatusModel({
    role: 'agent',
    hostname: c.hostname ?? os.hostname(),
    telemetry,
    status,
    specs: () => agentSpecs(agent),
    metrics: ['plumb_statsd_series', 'plumb_forward_dropped_total', 'plumb_forward_items_rejected_total', 'plumb_statsd_dropped_total', 'plumb_host_samples_total', 'plumb_forward_queued_total', 'plumb_forward_batches_total'],
    totals: (v) => new Map([['statsd\0lines', v.sum(STATSD_LINES)]]),
    sections: async (v, window, now) => {
      // the config of the moment: a reload may have replaced it
      const c = agent.config;
      const out: Partial<StatusReport> & { problems?: Map<string, Problem[]> } = {};
      if (c.statsd.enabled) {
        const lines = v.sum(STATSD_LINES);
        const parseErrors: Record<string, number> = {};
        for (const reason of PARSE_ERROR_REASONS) {
          const n = v.sum({ ...STATSD_ERRORS, where: { reason } });
          if (n > 0) parseErrors[reason] = n;
        }
        out.statsd = { linesPerSecond: Math.round(window.rate('statsd\0lines', now, lines) * 100) / 100, parseErrors, series: v.sum({ metric: 'plumb_statsd_series' }), seriesCap: c.statsd.maxSeries };
      }
      if (agent.logs !== null) {
        const files: FileStatus[] = agent.logs.files(now);
        out.files = files;
        const lagging = files.filter((f) => f.lagSeconds * 1000 > c.tail.lagThreshold);
        if (lagging.length > 0) {
          out.problems = new Map([['files', lagging.map((f) => ({ health: 'degraded' as const, text: `${f.path} lags ${f.lagBytes} bytes, ${Math.round(f.lagSeconds)}s behind` }))]]);
        }
      }
      return out;
    },
  });
}

function agentSpecs(agent: PlumbAgent): ComponentSpec[] {
  const c = agent.config;
  const specs: ComponentSpec[] = [];
  const metricsInputs: string[] = [];
  if (c.statsd.enabled) {
    specs.push({
      id: 'statsd',
      kind: 'source',
      type: 'statsd',
      inputs: [],
      in: [STATSD_LINES, STATSD_ERRORS],
      out: STATSD_LINES,
      drops: {
        socket_buffer: { metric: 'plumb_statsd_socket_drops_total' },
        line_too_long: [{ metric: 'plumb_statsd_tcp_lines_too_long_total' }, { metric: 'plumb_statsd_unix_oversized_total' }],
      },
    });
    metricsInputs.push('statsd');
  }
  if (c.host.enabled) {
    specs.push({ id: 'host', kind: 'source', type: 'host_metrics', inputs: [], in: { metric: 'plumb_host_samples_total' }, out: { metric: 'plumb_host_samples_total' } });
    metricsInputs.push('host');
  }
  if (agent.checks !== null) {
    specs.push({ id: 'checks', kind: 'source', type: 'service_checks', inputs: [], in: { metric: 'plumb_check_runs_total' }, out: { metric: 'plumb_check_runs_total' } });
    metricsInputs.push('checks');
  }
  const traceInputs: string[] = [];
  if (c.traces.zipkin.enabled) {
    specs.push({
      id: 'zipkin',
      kind: 'source',
      type: 'zipkin',
      inputs: [],
      in: [{ metric: 'plumb_traces_spans_received_total' }, { metric: 'plumb_traces_spans_refused_total' }, { metric: 'plumb_traces_spans_dropped_total' }],
      out: { metric: 'plumb_traces_spans_received_total' },
      drops: { refused_429: { metric: 'plumb_traces_spans_refused_total' } },
    });
    traceInputs.push('zipkin');
  }
  if (c.otlp.enabled) {
    specs.push(otlpSourceSpec());
    traceInputs.push('otlp');
    metricsInputs.push('otlp');
  }
  if (metricsInputs.length > 0 && (c.statsd.enabled || c.host.enabled || agent.checks !== null)) {
    const aggIn = metricsInputs.filter((i) => i !== 'otlp');
    const dropped = { metric: 'plumb_statsd_dropped_total' };
    specs.push({
      id: 'aggregator',
      kind: 'transform',
      type: 'statsd_aggregate',
      inputs: aggIn,
      in: [STATSD_LINES, { metric: 'plumb_host_samples_total' }],
      out: (v) => v.sum([STATSD_LINES, { metric: 'plumb_host_samples_total' }]) - v.sum(dropped),
      drops: (v) => v.by(dropped, 'reason'),
    });
  }
  const logs = agent.logs;
  if (logs !== null) {
    specs.push({ id: 'files', kind: 'source', type: 'file', inputs: [], in: { metric: 'plumb_tail_lines_total' }, out: { metric: 'plumb_tail_records_total' } });
    const events = { metric: 'plumb_logs_events_total', except: { outcome: ['date_failure'] } };
    specs.push({
      id: 'parser',
      kind: 'transform',
      type: 'grok',
      inputs: ['files'],
      in: events,
      out: events,
      rising: [{ what: 'lines that overran the grok deadline', selector: { metric: 'plumb_logs_events_total', where: { outcome: 'grok_timeout' } } }],
    });
  }
  if (agent.spanBatcher !== null) {
    const b = c.traces.batch;
    const batcher = agent.spanBatcher;
    specs.push({
      id: 'span_batcher',
      kind: 'queue',
      type: 'span_batches',
      inputs: traceInputs,
      in: { metric: 'plumb_traces_batches_total' },
      out: { metric: 'plumb_forward_queued_total', where: { kind: 'traces' } },
      drops: { refused_429: { metric: 'plumb_traces_batcher_refused_spans_total' } },
      queue: () => ({ depth: batcher.queued, bound: b.maxQueuedBatches, unit: 'batches' }),
    });
  }
  const lanes = agent.forwarder.laneStatus();
  const upstream: Record<string, string[]> = {
    metrics: specs.some((s) => s.id === 'aggregator') ? ['aggregator'] : metricsInputs,
    logs: logs !== null ? ['parser'] : [],
    traces: agent.spanBatcher !== null ? ['span_batcher'] : [],
  };
  const laneIds: string[] = [];
  for (const kind of ['metrics', 'logs', 'traces'] as const) {
    const ofKind = lanes.filter((l) => l.kind === kind);
    if (ofKind.length === 0 || upstream[kind].length === 0) continue;
    const id = `forward_${kind}`;
    laneIds.push(id);
    specs.push({
      id,
      kind: 'queue',
      type: ofKind.some((l) => l.unit === 'bytes' && agent.forwarder.spooling && kind !== 'logs') ? 'spool' : 'memory',
      inputs: upstream[kind],
      in: { metric: 'plumb_forward_queued_total', where: { kind } },
      out: { metric: 'plumb_forward_batches_total', where: { kind } },
      drops: (v) => v.by({ metric: 'plumb_forward_dropped_total', where: { kind } }, 'reason'),
      queue: () => {
        // the fullest lane of this kind speaks for it (one metrics lane per collector)
        const now = agent.forwarder.laneStatus().filter((l) => l.kind === kind);
        let worst = now[0];
        for (const l of now) if (l.bound > 0 && l.depth / l.bound > worst.depth / Math.max(1, worst.bound)) worst = l;
        return worst === undefined ? undefined : { depth: worst.depth, bound: worst.bound, unit: worst.unit };
      },
      extra: () => {
        const stuck = agent.forwarder.laneStatus().filter((l) => l.kind === kind && l.stuck && l.depth > 0);
        return stuck.map((l) => ({ health: 'degraded' as const, text: `lane ${l.name}: everything is on disk and its collectors are down` }));
      },
    });
  }
  specs.push({
    id: 'forward',
    kind: 'sink',
    type: 'plumb_collector',
    inputs: laneIds,
    in: { metric: 'plumb_forward_batches_total' },
    out: { metric: 'plumb_forward_batches_total' },
    drops: (v) => v.by({ metric: 'plumb_forward_items_rejected_total' }, 'reason'),
    rising: [{ what: 'retried sends', selector: { metric: 'plumb_forward_retries_total' } }],
    extra: () => forwardProblems(agent),
  });
  return specs;
}

function forwardProblems(agent: PlumbAgent): Problem[] {
  const problems: Problem[] = [];
  const states = agent.forwarder.collectorStates();
  const down = states.filter((s) => !s.up);
  if (down.length > 0 && down.length === states.length) problems.push({ health: 'failed', text: `no collector is reachable (${down.map((d) => d.collector).join(', ')})` });
  else for (const d of down) problems.push({ health: 'degraded', text: `collector ${d.collector} is down` });
  return problems;
}
