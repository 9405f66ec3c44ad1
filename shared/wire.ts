/**
 * What agents send collectors. Bodies are JSON, gzip-compressed on the wire. Every batch has a
 * deterministic id so a collector can recognise a replay. Sketches travel as protobuf bytes
 * (base64) with their statistics; raw samples never leave the agent.
 */

export const METRICS_PATH = '/v1/metrics';

/**
 * Log events: NDJSON (`application/x-ndjson`, usually gzip), one event object per line, each
 * with a string `@timestamp`, a string `message` and `event.id`. An agent's event id is the
 * 32-hex-digit id of the file followed by the 12-hex-digit byte offset of the event in it, so a
 * replay after a crash carries the same ids and a collector can recognise it.
 */
export const LOGS_PATH = '/v1/logs';
export const LOG_EVENT_ID = /^[0-9a-f]{32}[0-9a-f]{12}$/;

/** Hex digits of the file identity that begins an agent's event id. */
export const LOG_EVENT_FILE_CHARS = 32;

/**
 * The byte offset an agent's event id carries (its last 12 hex digits), or -1 when the id is not
 * of that form: what `LOG_EVENT_ID.test(id)` then `parseInt(id.slice(32), 16)` give, in one pass
 * over the characters. The collector reads every event's id several times (dedupe, the file
 * sink's write records), and a regex run costs it more than the rest of the lookup.
 * `fileChecked`: the caller knows the first LOG_EVENT_FILE_CHARS characters are hex digits (the
 * id begins with a file key it checked before), so only the offset's are looked at.
 */
export function logEventOffset(id: string, fileChecked = false): number {
  if (id.length !== 44) return -1;
  if (!fileChecked) for (let i = 0; i < LOG_EVENT_FILE_CHARS; i++) if (hexDigit(id.charCodeAt(i)) < 0) return -1;
  let offset = 0;
  for (let i = LOG_EVENT_FILE_CHARS; i < 44; i++) {
    const d = hexDigit(id.charCodeAt(i));
    if (d < 0) return -1;
    offset = offset * 16 + d;
  }
  return offset;
}

/** The value of a lowercase hex digit, or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Every batch an agent posts names the agent in this header, URL-encoded:
 * `host=web-1&version=0.1.0&config=3f2a…&instance=web-1@1733…-a1b2c3`. Collectors list the
 * agents they hear from (Fleet page, GET /api/v1/fleet); nothing depends on it for delivery.
 */
export const AGENT_HEADER = 'x-plumb-agent';

export interface AgentIdentity {
  hostname: string;
  version: string;
  configHash: string;
  instance: string;
  /** Fleet configuration (agent.remoteConfig): the agent's group, */
  group?: string;
  /** the hash of the bundle it runs, */
  bundle?: string;
  /** and the hash of the last bundle it refused as invalid, with its error count. */
  refused?: string;
  refusedErrors?: number;
}

export function agentHeader(id: AgentIdentity): string {
  const p = new URLSearchParams({ host: id.hostname, version: id.version, config: id.configHash, instance: id.instance });
  if (id.group !== undefined) p.set('group', id.group);
  if (id.bundle !== undefined) p.set('bundle', id.bundle);
  if (id.refused !== undefined) p.set('refused', id.refused);
  if (id.refusedErrors !== undefined) p.set('refusedErrors', String(id.refusedErrors));
  return p.toString();
}

/** Null when the header is not an agent's (too long, or no instance). */
export function parseAgentHeader(value: string): AgentIdentity | null {
  if (value.length > 1024) return null;
  const p = new URLSearchParams(value);
  const instance = p.get('instance');
  if (instance === null || instance === '') return null;
  const id: AgentIdentity = { hostname: p.get('host') ?? '', version: p.get('version') ?? '', configHash: p.get('config') ?? '', instance };
  for (const k of ['group', 'bundle', 'refused'] as const) {
    const v = p.get(k);
    if (v !== null) id[k] = v;
  }
  const n = Number(p.get('refusedErrors'));
  if (Number.isInteger(n) && n > 0) id.refusedErrors = n;
  return id;
}

/**
 * Metric types as they appear on the wire. `ms`, `h` and `d` all carry a sketch; `hist` and
 * `sum` come from OTLP only (explicit-bucket histograms and summaries, which have no statsd form).
 */
export type MetricType = 'c' | 'g' | 's' | 'ms' | 'h' | 'd' | 'hist' | 'sum';

export interface WireCounter {
  type: 'c';
  name: string;
  tags: string[];
  /** Sum for the interval, already scaled by 1/sampleRate. */
  value: number;
}

export interface WireGauge {
  type: 'g';
  name: string;
  tags: string[];
  value: number;
}

export interface WireSet {
  type: 's';
  name: string;
  tags: string[];
  /** Distinct members seen in the interval (bounded per series by the agent). */
  members: string[];
}

export interface WireDistribution {
  type: 'ms' | 'h' | 'd';
  name: string;
  tags: string[];
  /** DDSketch protobuf, base64. */
  sketch: string;
  count: number;
  sum: number;
  min: number;
  max: number;
  /**
   * Every sample of the interval, when there were at most SKETCH_EXACT_SAMPLES (shared/sketch.ts),
   * so small series get exact nearest-rank quantiles; `weights` (1/sampleRate, default 1 each)
   * beside them when any is not 1.
   */
  samples?: number[];
  weights?: number[];
}

/**
 * An explicit-bucket histogram's counts for the interval (a delta): `counts[i]` values fell in
 * (bounds[i-1], bounds[i]], the last one above the last bound. Merged by adding counts, so the
 * bounds of one series must stay the same.
 */
export interface WireHistogram {
  type: 'hist';
  name: string;
  tags: string[];
  /** Upper bounds, strictly increasing. */
  bounds: number[];
  /** bounds.length + 1 counts. */
  counts: number[];
  count: number;
  sum: number;
}

/**
 * A summary as its source computed it: quantiles of its own window, and count and sum since its
 * start (cumulative). Quantiles cannot be merged; the latest value of each series is kept.
 */
export interface WireSummary {
  type: 'sum';
  name: string;
  tags: string[];
  /** [quantile 0..1, value] */
  quantiles: [number, number][];
  count: number;
  sum: number;
}

export type WireMetric = WireCounter | WireGauge | WireSet | WireDistribution | WireHistogram | WireSummary;

export interface StatsdEvent {
  title: string;
  text: string;
  timestamp: number | null;
  hostname: string | null;
  aggregationKey: string | null;
  priority: string | null;
  sourceType: string | null;
  alertType: string | null;
  tags: string[];
}

export interface ServiceCheck {
  name: string;
  status: 0 | 1 | 2 | 3;
  timestamp: number | null;
  hostname: string | null;
  tags: string[];
  message: string | null;
}

export interface MetricBatch {
  /** `${agent}:${seq}`: the same interval resent has the same id. */
  id: string;
  agent: string;
  seq: number;
  /** Interval covered, Unix milliseconds. */
  start: number;
  end: number;
  metrics: WireMetric[];
  events: StatsdEvent[];
  serviceChecks: ServiceCheck[];
}
