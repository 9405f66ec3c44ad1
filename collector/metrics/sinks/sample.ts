/**
 * A metric sample as it waits in a metric sink's disk queue: one JSON array a line,
 *
 *   ["http_requests_total",["code","200","method","GET"],"counter",1027,1764000015000]
 *
 * name, label names and values (sorted by name, as Prometheus wants them), the family's type
 * (counter, gauge, summary, histogram), value, timestamp (Unix ms, the export interval's end). Values JSON cannot hold are strings: "NaN", "+Inf",
 * "-Inf", and "stale" for Prometheus' staleness marker.
 */
import type { SinkItem } from '../../sinks/sink.ts';

export type SampleType = 'counter' | 'gauge' | 'summary' | 'histogram';

/** Prometheus' staleness marker: a NaN with this bit pattern means "this series ended". */
export const STALE_NAN_BITS = 0x7ff0000000000002n;
export const STALE_NAN: number = new Float64Array(new BigUint64Array([STALE_NAN_BITS]).buffer)[0];

export interface MetricSample extends SinkItem {
  readonly name: string;
  /** name, value, name, value, … sorted by name. */
  readonly labels: readonly string[];
  /** The type of the family the sample belongs to. */
  readonly type: SampleType;
  readonly value: number;
  /** The staleness marker (value is NaN then). */
  readonly stale: boolean;
  /** Unix ms. */
  readonly timestamp: number;
}

/** The queued text of a sample's value. */
export function valueJson(v: number): string {
  if (Number.isFinite(v)) return String(v);
  if (Number.isNaN(v)) return '"NaN"';
  return v > 0 ? '"+Inf"' : '"-Inf"';
}

export const STALE_JSON = '"stale"';

/** The start of a series' lines: `["name",[labels…],"type"`; the exporter keeps one per live series. */
export function seriesPrefix(name: string, labelText: string, type: SampleType): string {
  const pairs = parseLabelText(labelText);
  return `[${JSON.stringify(name)},${JSON.stringify(pairs)},"${type}"`;
}

/** Splits queued NDJSON into samples; a line that is not a sample is skipped. */
export function decodeSamples(ndjson: Buffer, out: MetricSample[]): void {
  let start = 0;
  const end = ndjson.length;
  while (start < end) {
    let nl = ndjson.indexOf(0x0a, start);
    if (nl < 0) nl = end;
    if (nl > start) {
      const line = ndjson.subarray(start, nl);
      const s = decodeSample(line);
      if (s !== null) out.push(s);
    }
    start = nl + 1;
  }
}

function decodeSample(line: Buffer): MetricSample | null {
  let a: unknown;
  try {
    a = JSON.parse(line.toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(a) || a.length !== 5 || typeof a[0] !== 'string' || !Array.isArray(a[1]) || typeof a[2] !== 'string' || typeof a[4] !== 'number') return null;
  const raw = a[3] as unknown;
  let value: number;
  let stale = false;
  if (typeof raw === 'number') value = raw;
  else if (raw === 'stale') {
    value = STALE_NAN;
    stale = true;
  } else if (raw === '+Inf') value = Infinity;
  else if (raw === '-Inf') value = -Infinity;
  else value = NaN;
  return { line, name: a[0], labels: a[1] as string[], type: a[2] as SampleType, value, stale, timestamp: a[4] };
}

/** Label text of the exposition (`a="1",b="x\"y"`) as sorted [name, value, …] pairs. */
export function parseLabelText(text: string): string[] {
  if (text === '') return [];
  const pairs: [string, string][] = [];
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (let m = re.exec(text); m; m = re.exec(text)) pairs.push([m[1], m[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))]);
  pairs.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  const flat: string[] = [];
  for (const [k, v] of pairs) flat.push(k, v);
  return flat;
}
