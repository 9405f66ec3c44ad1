/**
 * Prometheus on the reading end: parse the text exposition a test scraped, lint it with
 * `promtool check metrics`, and run a real Prometheus server that scrapes a target and answers
 * its HTTP query API. The binaries come from the Debian `prometheus` package; tests that need
 * them skip with a message when they are missing.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { spawnTracked, stopProcess, type TrackedProcess } from './processes.ts';
import { freeTcpPort } from './ports.ts';
import { waitFor } from './wait.ts';

/** Absolute path of `name` on PATH (or /usr/bin), or null when it is not installed. */
export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

export const PROMTOOL = findBinary('promtool');
export const PROMETHEUS = findBinary('prometheus');

// ---- the text exposition ----

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** `# TYPE` per metric family. */
  types: Map<string, string>;
}

/** Parses Prometheus text format 0.0.4 (label escapes `\\`, `\"`, `\n` undone). Throws on a malformed line. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n];
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (m) types.set(m[1], m[2]);
      continue;
    }
    samples.push(parseSampleLine(line, n + 1));
  }
  return { samples, types };
}

function parseSampleLine(line: string, lineNo: number): Sample {
  const fail = (why: string): never => {
    throw new Error(`exposition line ${lineNo}: ${why}: ${JSON.stringify(line)}`);
  };
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) fail('no metric name');
  const name = nameMatch![0];
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
      if (!key) fail('bad label name');
      i += key![0].length;
      if (line[i] !== '=' || line[i + 1] !== '"') fail('expected ="');
      i += 2;
      let value = '';
      while (true) {
        const c = line[i];
        if (c === undefined) fail('unterminated label value');
        if (c === '"') break;
        if (c === '\\') {
          const e = line[i + 1];
          if (e === 'n') value += '\n';
          else if (e === '\\' || e === '"') value += e;
          else fail(`bad escape \\${e}`);
          i += 2;
        } else {
          value += c;
          i++;
        }
      }
      i++;
      if (key![0] in labels) fail(`label ${key![0]} repeated`);
      labels[key![0]] = value;
      if (line[i] === ',') i++;
      else if (line[i] !== '}') fail('expected , or }');
    }
    i++;
  }
  if (line[i] !== ' ') fail('expected a space before the value');
  const rest = line.slice(i + 1).split(' ');
  const value = parseValue(rest[0]);
  if (value === undefined || rest.length > 2) fail('bad value');
  return { name, labels, value: value! };
}

function parseValue(text: string): number | undefined {
  // prom-client writes "Nan"; Prometheus reads NaN in any case
  if (text.toLowerCase() === 'nan') return NaN;
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

/** The samples named `name` whose labels include all of `labels`. */
export function samplesOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return exposition.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample named `name` with exactly `labels`, or undefined when there is none. */
export function valueOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.keys(labels).length;
  const found = samplesOf(exposition, name, labels).filter((s) => Object.keys(s.labels).length === want);
  if (found.length > 1) throw new Error(`${name}${JSON.stringify(labels)} appears ${found.length} times`);
  return found[0]?.value;
}

/** GETs `${baseUrl}/metrics` and returns the text (throws on a non-200 answer). */
export async function scrapeText(baseUrl: string): Promise<string> {
  const res = await fetch(`${baseUrl}/metrics`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${baseUrl}/metrics answered ${res.status}: ${text.slice(0, 300)}`);
  return text;
}

export async function scrape(baseUrl: string): Promise<Exposition> {
  return parseExposition(await scrapeText(baseUrl));
}

// ---- promtool ----

export interface PromtoolResult {
  /** 0: valid and lint-clean; 1: not parseable; 3: lint problems (promtool 2.x). */
  code: number | null;
  output: string;
}

/** Runs `promtool check metrics` on `text`. Call only when PROMTOOL is not null. */
export async function promtoolCheckMetrics(text: string): Promise<PromtoolResult> {
  if (PROMTOOL === null) throw new Error('promtool is not installed');
  const p = spawnTracked(PROMTOOL, ['check', 'metrics']);
  p.child.stdin?.on('error', () => undefined);
  p.child.stdin?.end(text);
  const exit = await p.exited;
  const lines = (p.stdout() + p.stderr()).trim().split('\n').filter((l) => l !== '');
  // node_exporter's memory families keep /proc/meminfo's field names (node_memory_MemTotal_bytes):
  // plumb exposes them spelled the same so node_exporter's dashboards work; that lint is expected.
  const ours = lines.filter((l) => !NODE_EXPORTER_CASE.test(l));
  const code = exit.code === 3 && ours.length === 0 ? 0 : exit.code;
  return { code, output: ours.join('\n') };
}

const NODE_EXPORTER_CASE = /^node_memory_[A-Za-z0-9_]+_bytes metric names should be written in 'snake_case' not 'camelCase'$/;

// ---- a real Prometheus server ----

export interface PrometheusUnderTest {
  url: string;
  /** Instant query through the HTTP API; the `data.result` vector. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  /** Scrape state of every target (health, last error). */
  targets(): Promise<{ scrapeUrl: string; health: string; lastError: string }[]>;
  stop(): Promise<void>;
}

/**
 * Starts Prometheus on a free loopback port with a temporary config scraping `targets`
 * (host:port) every `scrapeInterval`, storing its TSDB in a temporary directory.
 */
export async function startPrometheus(options: { targets: string[]; scrapeInterval?: string }): Promise<PrometheusUnderTest> {
  if (PROMETHEUS === null) throw new Error('prometheus is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'plumb-prometheus-'));
  const interval = options.scrapeInterval ?? '1s';
  const config = [
    'global:',
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    'scrape_configs:',
    '  - job_name: plumb',
    `    scrape_interval: ${interval}`,
    `    scrape_timeout: ${interval}`,
    '    static_configs:',
    `      - targets: [${options.targets.map((t) => JSON.stringify(t)).join(', ')}]`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), config);
  const port = await freeTcpPort();
  const url = `http://127.0.0.1:${port}`;
  const proc: TrackedProcess = spawnTracked(
    PROMETHEUS,
    [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    { cwd: dir },
  );
  const stop = async (): Promise<void> => {
    await stopProcess(proc, 'SIGTERM', 10_000);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (proc.exit) throw new Error(`prometheus exited (${JSON.stringify(proc.exit)}): ${proc.stderr().slice(-2000)}`);
        const res = await fetch(`${url}/-/ready`);
        return res.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'Prometheus to be ready' },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    async query(promql) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await res.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      if (body.status !== 'success') throw new Error(`query ${promql} failed: ${body.error ?? res.status}`);
      return body.data.result;
    },
    async targets() {
      const res = await fetch(`${url}/api/v1/targets`);
      const body = (await res.json()) as { data: { activeTargets: { scrapeUrl: string; health: string; lastError: string }[] } };
      return body.data.activeTargets.map((t) => ({ scrapeUrl: t.scrapeUrl, health: t.health, lastError: t.lastError }));
    },
    stop,
  };
}
