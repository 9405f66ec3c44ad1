/**
 * Long-term stores on the receiving end of plumb's metric sinks, run from their Debian packages
 * on free loopback ports with data directories of their own (the packages' own services, if they
 * run, stay on their default ports and are never touched):
 *
 * - VictoriaMetrics (`victoria-metrics`): remote_write at /api/v1/write, PromQL at /api/v1/query;
 * - Prometheus with --web.enable-remote-write-receiver (`prometheus`);
 * - carbon-cache (`graphite-carbon`) with its whisper files read back by whisper-fetch
 *   (`python3-whisper`).
 *
 * Tests that need one skip with a message when its binary is missing.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROMETHEUS, findBinary } from './prometheus.ts';
import { freeTcpPort } from './ports.ts';
import { spawnTracked, stopProcess, type TrackedProcess } from './processes.ts';
import { waitFor } from './wait.ts';

export const VICTORIA_METRICS = findBinary('victoria-metrics');
export const CARBON_CACHE = findBinary('carbon-cache');
export const WHISPER_FETCH = findBinary('whisper-fetch');
export { PROMETHEUS };

export interface PromSeries {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromQLStore {
  /** Base URL of the HTTP API. */
  url: string;
  /** Where remote_write goes. */
  writeUrl: string;
  /** Instant query at `time` (Unix seconds; now when absent). */
  query(promql: string, time?: number): Promise<PromSeries[]>;
  /** Makes what was written visible to queries (VictoriaMetrics buffers for about a second). */
  flush(): Promise<void>;
  /** SIGKILL: the store dies mid-stream. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  output(): string;
  /** The server's process id (for its CPU time). */
  pid(): number | undefined;
}

async function queryApi(url: string, promql: string, time?: number): Promise<PromSeries[]> {
  const params = new URLSearchParams({ query: promql });
  if (time !== undefined) params.set('time', String(time));
  const res = await fetch(`${url}/api/v1/query?${params}`);
  const body = (await res.json()) as { status: string; error?: string; data: { resultType: string; result: PromSeries[] } };
  if (body.status !== 'success') throw new Error(`query ${promql} failed: ${body.error ?? res.status}`);
  return body.data.result;
}

/** A server process that can be killed and started again with the same arguments. */
async function runnable(what: string, bin: string, args: string[], cwd: string, ready: () => Promise<boolean>): Promise<{ kill(): Promise<void>; start(): Promise<void>; stop(): Promise<void>; output(): string; pid(): number | undefined }> {
  let proc: TrackedProcess | null = null;
  let log = '';
  const start = async (): Promise<void> => {
    proc = spawnTracked(bin, args, { cwd });
    const p = proc;
    await waitFor(
      async () => {
        if (p.exit) throw new Error(`${what} exited (${JSON.stringify(p.exit)}): ${(p.stdout() + p.stderr()).slice(-2000)}`);
        return ready();
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `${what} to be ready` },
    );
  };
  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const p = proc;
    proc = null;
    if (p) {
      await stopProcess(p, signal, 10_000);
      log += p.stdout() + p.stderr();
    }
  };
  await start();
  return { start, kill: () => end('SIGKILL'), stop: () => end('SIGTERM'), output: () => log + (proc ? proc.stdout() + proc.stderr() : ''), pid: () => (proc as TrackedProcess | null)?.child.pid };
}

async function ok(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).status === 200;
  } catch {
    return false;
  }
}

/** VictoriaMetrics single-node on a free port; queries see samples as soon as they are written. */
export async function startVictoriaMetrics(): Promise<PromQLStore> {
  if (VICTORIA_METRICS === null) throw new Error('victoria-metrics is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'plumb-vm-'));
  const port = await freeTcpPort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    `-storageDataPath=${join(dir, 'data')}`,
    `-httpListenAddr=127.0.0.1:${port}`,
    '-retentionPeriod=1y',
    '-search.latencyOffset=0s',
    '-search.disableCache',
    '-loggerLevel=ERROR',
  ];
  const p = await runnable('victoria-metrics', VICTORIA_METRICS, args, dir, () => ok(`${url}/health`));
  return {
    url,
    writeUrl: `${url}/api/v1/write`,
    query: (q, t) => queryApi(url, q, t),
    flush: async () => {
      await fetch(`${url}/internal/force_flush`).catch(() => undefined);
    },
    kill: p.kill,
    restart: p.start,
    output: p.output,
    pid: p.pid,
    stop: async () => {
      await p.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Prometheus as a remote_write receiver (no scraping) on a free port. */
export async function startPrometheusReceiver(): Promise<PromQLStore> {
  if (PROMETHEUS === null) throw new Error('prometheus is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'plumb-prom-rw-'));
  await writeFile(join(dir, 'prometheus.yml'), 'global:\n  scrape_interval: 1m\nscrape_configs: []\n');
  const port = await freeTcpPort();
  const url = `http://127.0.0.1:${port}`;
  const args = [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--web.enable-remote-write-receiver',
    '--log.level=warn',
  ];
  const p = await runnable('prometheus', PROMETHEUS, args, dir, () => ok(`${url}/-/ready`));
  return {
    url,
    writeUrl: `${url}/api/v1/write`,
    query: (q, t) => queryApi(url, q, t),
    flush: async () => {},
    kill: p.kill,
    restart: p.start,
    output: p.output,
    pid: p.pid,
    stop: async () => {
      await p.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface CarbonUnderTest {
  host: string;
  /** Plaintext line receiver port. */
  port: number;
  /** The whisper file of a plain path ("a.b.c") or a tagged name ("x;k=v"). */
  whisperFile(path: string): string;
  /** Points stored for `path` from `from` to `until` (Unix seconds), as whisper-fetch reads them: [ts, value] with values not null. */
  fetch(path: string, from: number, until: number): Promise<[number, number][]>;
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
  output(): string;
  /** The carbon-cache process id (for its CPU time). */
  pid(): number | undefined;
}

/** carbon-cache in the foreground (--debug) with its own storage dir, whisper files at 1 s resolution. */
export async function startCarbon(options: { retention?: string } = {}): Promise<CarbonUnderTest> {
  if (CARBON_CACHE === null || WHISPER_FETCH === null) throw new Error('carbon-cache or whisper-fetch is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'plumb-carbon-'));
  const [line, pickle, query] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
  for (const d of ['whisper', 'log', 'lists']) await mkdir(join(dir, d));
  await writeFile(
    join(dir, 'carbon.conf'),
    [
      '[cache]',
      `STORAGE_DIR = ${dir}`,
      `LOCAL_DATA_DIR = ${join(dir, 'whisper')}`,
      `WHITELISTS_DIR = ${join(dir, 'lists')}`,
      `CONF_DIR = ${dir}`,
      `LOG_DIR = ${join(dir, 'log')}`,
      `PID_DIR = ${dir}`,
      'ENABLE_LOGROTATION = False',
      'USER =',
      'MAX_CACHE_SIZE = inf',
      'MAX_UPDATES_PER_SECOND = inf',
      'MAX_CREATES_PER_MINUTE = inf',
      'LINE_RECEIVER_INTERFACE = 127.0.0.1',
      `LINE_RECEIVER_PORT = ${line}`,
      'ENABLE_UDP_LISTENER = False',
      'PICKLE_RECEIVER_INTERFACE = 127.0.0.1',
      `PICKLE_RECEIVER_PORT = ${pickle}`,
      'CACHE_QUERY_INTERFACE = 127.0.0.1',
      `CACHE_QUERY_PORT = ${query}`,
      'LOG_UPDATES = False',
      'LOG_CREATES = False',
      // no graphite-web here to keep a tag index
      'ENABLE_TAGS = False',
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'storage-schemas.conf'), `[all]\npattern = .*\nretentions = ${options.retention ?? '1s:6h'}\n`);
  const args = [`--config=${join(dir, 'carbon.conf')}`, '--debug', 'start'];
  const listening = async (): Promise<boolean> => {
    const net = await import('node:net');
    return new Promise((resolve) => {
      const s = net.createConnection({ host: '127.0.0.1', port: line });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  };
  const p = await runnable('carbon-cache', CARBON_CACHE, args, dir, listening);
  const whisperFile = (path: string): string => {
    if (!path.includes(';')) return join(dir, 'whisper', ...path.split('.')) + '.wsp';
    // carbon stores a tagged series under the sha256 of its name with the tags sorted
    const [name, ...tags] = path.split(';');
    const normal = [name, ...tags.sort((a, b) => (a.split('=')[0] < b.split('=')[0] ? -1 : 1))].join(';');
    const h = createHash('sha256').update(normal).digest('hex');
    return join(dir, 'whisper', '_tagged', h.slice(0, 3), h.slice(3, 6), `${h}.wsp`);
  };
  return {
    host: '127.0.0.1',
    port: line,
    whisperFile,
    async fetch(path, from, until) {
      const file = whisperFile(path);
      if (!existsSync(file)) return [];
      const r = spawnTracked(WHISPER_FETCH, ['--json', `--from=${from}`, `--until=${until}`, file]);
      const exit = await r.exited;
      if (exit.code !== 0) throw new Error(`whisper-fetch ${file}: ${r.stderr()}`);
      const body = JSON.parse(r.stdout()) as { start: number; step: number; values: (number | null)[] };
      const out: [number, number][] = [];
      body.values.forEach((v, i) => {
        if (v !== null) out.push([body.start + i * body.step, v]);
      });
      return out;
    },
    kill: p.kill,
    restart: p.start,
    output: p.output,
    pid: p.pid,
    stop: async () => {
      await p.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
