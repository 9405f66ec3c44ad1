#!/usr/bin/env node
/**
 * plumb's command line and the single composition root: the only place that knows both roles.
 *
 *   plumb agent --config F        run the agent
 *   plumb collector --config F    run the collector
 *   plumb all --config F          both in one process (the single-machine setup)
 *   plumb check-config F          validate a config file; every error with its key path
 *   plumb statsd-parse            statsd lines on stdin → one JSON object per line on stdout
 *   plumb grok --pattern P        log lines on stdin → one JSON match result per line
 *   plumb replay --from s3://…    archived log objects back into Elasticsearch
 */
// first: on too old a Node.js, one clear line before anything else loads
import './node-version.ts';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import type { PlumbAgent } from '../agent/agent.ts';
import type { PlumbCollector } from '../collector/collector.ts';
import { Telemetry } from '../shared/telemetry.ts';
import { createLogger, logFormat, type LogFormat, type Logger } from '../shared/log.ts';
import { ConfigError } from '../shared/config.ts';
import { PlumbError } from '../shared/errors.ts';
import type { PlumbConfig } from './config.ts';
import type { AgentFileConfig } from './agent-config.ts';
import { ConfigReloader, type ConfigSource, type Role, type RolesConfig } from './reload.ts';
import { ConfigState } from '../shared/reload.ts';
import { startSelfTracing } from '../shared/tracing.ts';
import type { GrokService } from '../shared/console/grok.ts';
import type { StatusContext } from '../shared/status.ts';
import { resolveRemote, type Remote, type RemoteFlags } from './remote.ts';

const USAGE = `Usage: plumb <command> [options]

Commands:
  agent --config FILE        run the agent (statsd, forwarding)
  collector --config FILE    run the collector (ingest, /metrics)
  all --config FILE          run agent and collector in one process
  check-config FILE [--offline] [--diff [--against OLD]]
                             validate FILE and print every error with its key path; the token and
                             TLS files and tokensEnv variable it names must be usable here, unless
                             --offline (a config for another machine); --diff: what a reload would
                             change against the running config (or OLD), key by key: live, or
                             needs restart
  statsd-parse               read statsd lines on stdin, write one JSON result per line
  grok --pattern P [--patterns-dir D]
                             match lines on stdin against a grok pattern, one JSON result per line
  grok --pattern P [--definitions F] [--min-match PCT] [--json] FILE
                             match report over a sample file: % matched, fields, first failures;
                             exit 1 below --min-match (100), 2 when the pattern or file is unusable
  tap COMPONENT [--filter EXPR] [--limit N] [--rate R] [--url URL]
                             NDJSON of what passes a component, live
  status [--url URL] [--json]
                             the pipeline's components with rates, queues and drops, tailed files and
                             statsd intake; exit code 1 when something is unhealthy, 2 when unreachable
  top [--url URL] [--interval 2s]
                             the same, redrawn; keys: n i o u d h g sort, r reverse, q quit
  replay --from s3://BUCKET/PREFIX --to elasticsearch --config FILE [--since T] [--until T] [--restart]
                             stream archived log objects back into Elasticsearch (same _ids: idempotent,
                             resumable); T is ISO 8601 or a duration back from now ("24h")

Options:
  --config FILE   configuration file (YAML); also PLUMB_CONFIG
  --log-format F  plumb's own log lines: json (pino), pretty, or auto (pretty on a terminal; the default)
  --url URL       status/top/tap: the agent or collector to ask (default http://127.0.0.1:8126, the agent)
  --token-file F  status/top/tap: bearer token file (else PLUMB_TOKEN, else --config's agent.forward.auth)
  --help          show this help
  --version       print the version

Environment: PLUMB_<SECTION>__<KEY>=value overrides a key, e.g.
  PLUMB_AGENT__STATSD__MAX_SERIES=50000 PLUMB_COLLECTOR__AUTH__TOKEN_FILE=/etc/plumb/tokens
`;

function version(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, '..', 'package.json'), join(here, '..', '..', 'package.json')]) {
    try {
      return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
    } catch {
      // try the next location (source tree vs dist/)
    }
  }
  return 'unknown';
}

interface Args {
  command: string | undefined;
  positional: string[];
  flags: Map<string, string | true>;
}

function parseArgs(argv: string[]): Args {
  const flags = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--') && !['help', 'version', 'offline', 'json', 'diff'].includes(a.slice(2))) flags.set(a.slice(2), argv[++i]);
      else flags.set(a.slice(2), true);
    } else {
      positional.push(a);
    }
  }
  return { command: positional.shift(), positional, flags };
}

function configPath(args: Args): string | undefined {
  const flag = args.flags.get('config');
  if (typeof flag === 'string') return flag;
  return process.env.PLUMB_CONFIG;
}

function source(args: Args): { file: string; text?: string } {
  const file = configPath(args);
  return file === undefined ? { text: '{}', file: '<defaults>' } : { file };
}

/** The whole file: both roles' schemas (and so the collector's modules) are loaded. */
async function load(args: Args): Promise<PlumbConfig> {
  const { loadPlumbConfig } = await import('./config.ts');
  return loadPlumbConfig({ ...source(args), env: process.env });
}

/** `plumb agent` reads only its part of the file, and loads none of the collector's code. */
async function loadAgent(args: Args): Promise<AgentFileConfig> {
  const { loadAgentConfig } = await import('./agent-config.ts');
  return loadAgentConfig({ ...source(args), env: process.env });
}

async function runRoles(roles: Role[], source: ConfigSource, log: Logger): Promise<void> {
  const telemetry = new Telemetry({ defaultMetrics: true });
  const { loadAtStart, FleetConfigLoop } = await import('./fleet-config.ts');
  const { loaded, bundle } = await loadAtStart(source, roles, log);
  const config = loaded.config;
  const state = new ConfigState(source.file === undefined ? '' : resolve(source.file), loaded.hash, telemetry);
  const status: StatusContext = { version: version(), config: () => state.status() };
  const tracing = await startSelfTracing(config.telemetry.tracing, { telemetry, log: log.child({ component: 'self-tracing' }) });
  let collector: PlumbCollector | null = null;
  let agent: PlumbAgent | null = null;
  // Collector first: in `all`, the agent's first flush must find it listening.
  if (roles.includes('collector') && config.collector !== undefined) {
    // Each role is loaded only when it runs: an agent-only host does not carry the collector.
    const { PlumbCollector } = await import('../collector/collector.ts');
    // in `plumb all`, ready means every door of the process accepts, the agent's included
    // the console's grok debugger: the agent's parser threads in `all`, else a thread of its own on first use
    const grok = roles.includes('agent') ? () => agent?.grokDebugger ?? null : standaloneGrok(config);
    collector = new PlumbCollector(config.collector, { telemetry, log: log.child({ role: 'collector' }), tracing, env: process.env, holdReady: roles.includes('agent'), version: version(), grok, status });
    await collector.start();
  }
  if (roles.includes('agent')) {
    // V8 reads this flag whenever it sizes the heap, so setting it before the agent holds any
    // data takes effect as if given on the command line (Node refuses it in NODE_OPTIONS).
    const { heapGrowthPercent, smallHeap } = await import('../agent/config.ts');
    const memory = config.agent.memory;
    if (smallHeap(memory.optimizeForSize, config.agent.logs.length > 0, collector !== null)) setFlagsFromString('--optimize-for-size');
    const growth = heapGrowthPercent(memory.heapGrowthPercent, config.agent.logs.length > 0, collector !== null);
    if (growth !== undefined) setFlagsFromString(`--heap-growing-percent=${growth}`);
    const { PlumbAgent } = await import('../agent/agent.ts');
    agent = new PlumbAgent(config.agent, { telemetry, log: log.child({ role: 'agent' }), tracing, version: version(), status, env: process.env, collectorInProcess: collector !== null });
    await agent.start();
  }
  collector?.markReady();
  let fleetConfig: InstanceType<typeof FleetConfigLoop> | null = null;
  const reloader = new ConfigReloader({ source, roles, agent, collector, log, state, running: loaded, bundle, onRemoteConfig: (c) => void fleetConfig?.start(c, reloader.bundle) });
  reloader.watch();
  if (agent !== null) {
    fleetConfig = new FleetConfigLoop({ reloader, agent, log, telemetry });
    await fleetConfig.start(config, bundle);
  }
  log.info({ roles, version: version(), config: state.path, hash: state.hash }, 'plumb started');
  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    reloader.close();
    try {
      await fleetConfig?.stop();
      await agent?.stop();
      await collector?.stop();
      await tracing.shutdown();
      log.info('stopped cleanly');
      log.flush?.();
      process.exit(0);
    } catch (err) {
      log.error({ err }, 'error while stopping');
      process.exit(1);
    }
  };
  process.on('SIGHUP', () => void reloader.reload('signal'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/** A collector alone has no parser threads: the grok debugger loads the engine and starts one thread on first use. */
function standaloneGrok(config: RolesConfig): () => GrokService {
  let loaded: Promise<GrokService> | null = null;
  const service: GrokService = {
    inputs: () => [],
    run: async (request) => {
      loaded ??= import('../agent/logs/grok-debug.ts').then(({ GrokDebugger }) => new GrokDebugger({ logs: [], grok: config.agent.grok, hostName: config.agent.hostname ?? '' }, () => null));
      return (await loaded).run(request);
    },
  };
  return () => service;
}

/**
 * What a reload with `next` would change: against the config a running process saved in its data
 * dir, or against the file given with --against. One line per changed key: the component that
 * takes it live, or "needs restart".
 */
async function checkConfigDiff(next: PlumbConfig, args: Args): Promise<number> {
  const against = args.flags.get('against');
  const { describeDiff, readRunning } = await import('./reload.ts');
  let old: RolesConfig;
  let roles: Role[] = ['collector', 'agent'];
  if (typeof against === 'string') {
    const { loadPlumbConfig } = await import('./config.ts');
    old = loadPlumbConfig({ file: against, env: process.env });
    process.stdout.write(`against ${against}:\n`);
  } else {
    const running = readRunning(next);
    if (running === null) {
      process.stderr.write(`plumb check-config --diff: no running config found in ${next.agent.dataDir} or ${next.collector.dataDir} (give an old file with --against FILE)\n`);
      return 2;
    }
    old = running.config;
    roles = running.roles;
    process.stdout.write(`against the running config (${running.roles.join(' + ')}, ${running.hash}, saved ${running.savedAt} in ${running.file}):\n`);
  }
  for (const line of await describeDiff(old, next, roles)) process.stdout.write(`  ${line}\n`);
  return 0;
}

/** Reads raw bytes (not text: invalid UTF-8 must reach the parser as it came) and answers line by line. */
async function statsdParse(): Promise<void> {
  const { parseLineToJson } = await import('../agent/statsd/parser.ts');
  let tail: Buffer = Buffer.alloc(0);
  const answer = async (line: Buffer): Promise<void> => {
    const end = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
    if (!process.stdout.write(JSON.stringify(parseLineToJson(line.subarray(0, end))) + '\n')) await once(process.stdout, 'drain');
  };
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    const buf = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      await answer(buf.subarray(start, nl));
      start = nl + 1;
    }
    tail = Buffer.from(buf.subarray(start));
  }
  if (tail.length > 0) await answer(tail);
}

/** --log-format pretty|json, else the config's log.format; auto: pretty on a terminal. */
function logFormatOf(args: Args, configured: string): LogFormat {
  const flag = args.flags.get('log-format');
  if (flag !== undefined && flag !== 'json' && flag !== 'pretty' && flag !== 'auto') throw new PlumbError('PLUMB_ERR_CONFIG_INVALID', `--log-format ${String(flag)}: one of json, pretty, auto`);
  return logFormat(typeof flag === 'string' ? flag : configured, process.stderr.isTTY === true);
}

/** --url, --token-file, PLUMB_TOKEN and --config's agent section: where status/top/tap ask. */
async function remoteOf(args: Args): Promise<Remote> {
  const url = args.flags.get('url');
  const tokenFile = args.flags.get('token-file');
  const file = configPath(args);
  let config: RemoteFlags['config'];
  if (file !== undefined) {
    const c = await loadAgent(args);
    config = { listen: c.agent.http.listen, token: c.agent.forward.auth.token, tokenFile: c.agent.forward.auth.tokenFile };
  }
  return resolveRemote({ url: typeof url === 'string' ? url : undefined, tokenFile: typeof tokenFile === 'string' ? tokenFile : undefined, env: process.env, config });
}

/** "2s", "500ms", "2" (seconds) → milliseconds. */
function parseSeconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (m === null) throw new PlumbError('PLUMB_ERR_CONFIG_INVALID', `--interval ${text}: expected a duration like "2s" or "500ms"`);
  return Math.max(100, m[2] === 'ms' ? Number(m[1]) : Number(m[1]) * 1000);
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.flags.has('version') || args.command === 'version') {
    process.stdout.write(`plumb ${version()}\n`);
    return 0;
  }
  if (args.flags.has('help') || args.command === undefined || args.command === 'help') {
    process.stdout.write(USAGE);
    return args.command === undefined && !args.flags.has('help') ? 1 : 0;
  }
  switch (args.command) {
    case 'check-config': {
      const file = args.positional[0] ?? configPath(args);
      if (file === undefined) {
        process.stderr.write('plumb check-config: give the file to check\n');
        return 2;
      }
      // the files and variables it names are checked on this machine too, unless told the config is for another
      const { loadPlumbConfig } = await import('./config.ts');
      const checked = loadPlumbConfig({ file, env: process.env, machine: !args.flags.has('offline') });
      process.stdout.write(`${file}: ok\n`);
      if (args.flags.has('diff')) return checkConfigDiff(checked, args);
      return 0;
    }
    case 'statsd-parse':
      await statsdParse();
      return 0;
    case 'status': {
      const { runStatus } = await import('./status.ts');
      return runStatus({ remote: await remoteOf(args), json: args.flags.has('json'), out: process.stdout });
    }
    case 'top': {
      const { runTop } = await import('./top.ts');
      const interval = args.flags.get('interval');
      return runTop({ remote: await remoteOf(args), intervalMs: typeof interval === 'string' ? parseSeconds(interval) : 2000, input: process.stdin, out: process.stdout });
    }
    case 'grok': {
      const pattern = args.flags.get('pattern');
      if (typeof pattern !== 'string') {
        process.stderr.write('plumb grok: --pattern is required, e.g. --pattern "%{COMBINEDAPACHELOG}"\n');
        return 2;
      }
      const dir = args.flags.get('patterns-dir');
      const file = args.positional[0];
      if (file !== undefined) {
        // a report over a sample file, by the agent's own grok threads and deadlines
        const defs = args.flags.get('definitions');
        const min = args.flags.get('min-match');
        const minMatchPercent = typeof min === 'string' ? Number(min.replace(/%$/, '')) : 100;
        if (!Number.isFinite(minMatchPercent) || minMatchPercent < 0 || minMatchPercent > 100) {
          process.stderr.write(`plumb grok: --min-match ${String(min)}: a percentage from 0 to 100\n`);
          return 2;
        }
        const grok = configPath(args) !== undefined ? (await loadAgent(args)).agent.grok : (await import('../agent/logs/config.ts')).defaultGrokPool();
        const { runGrokReport } = await import('./grok-report.ts');
        return runGrokReport({
          pattern,
          file,
          patternFiles: [defs, dir].filter((d): d is string => typeof d === 'string'),
          grok,
          minMatchPercent,
          json: args.flags.has('json'),
          failures: 10,
          out: process.stdout,
          err: process.stderr,
        });
      }
      const { runGrokCli } = await import('../agent/logs/grok/cli.ts');
      return runGrokCli({ pattern, patternsDir: typeof dir === 'string' ? dir : undefined }, process.stdin, process.stdout);
    }
    case 'tap': {
      const component = args.positional[0];
      if (component === undefined) {
        process.stderr.write('plumb tap: name the component to tap (plumb status lists them), e.g. plumb tap parser --filter \'level == "error"\'\n');
        return 2;
      }
      const str = (name: string): string | undefined => {
        const v = args.flags.get(name);
        return typeof v === 'string' ? v : undefined;
      };
      const { runTap } = await import('./tap.ts');
      return runTap({ remote: await remoteOf(args), component, filter: str('filter'), limit: str('limit'), rate: str('rate'), out: process.stdout, err: process.stderr });
    }
    case 'replay': {
      const from = args.flags.get('from');
      const to = args.flags.get('to') ?? 'elasticsearch';
      if (typeof from !== 'string' || !from.startsWith('s3://')) {
        process.stderr.write('plumb replay: --from s3://bucket/prefix is required\n');
        return 2;
      }
      if (to !== 'elasticsearch') {
        process.stderr.write(`plumb replay: --to ${String(to)}: only "elasticsearch" is supported\n`);
        return 2;
      }
      const config = await load(args);
      const { runReplay } = await import('../collector/logs/replay.ts');
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      process.once('SIGTERM', () => abort.abort());
      const since = args.flags.get('since');
      const until = args.flags.get('until');
      const summary = await runReplay(
        {
          from,
          to: 'elasticsearch',
          ...(typeof since === 'string' ? { since } : {}),
          ...(typeof until === 'string' ? { until } : {}),
          logs: config.collector.logs,
          dataDir: config.collector.dataDir,
          restart: args.flags.has('restart'),
        },
        { out: process.stderr, isTTY: process.stderr.isTTY === true, signal: abort.signal, log: createLogger({ level: config.log.level, name: 'plumb', format: logFormatOf(args, config.log.format) }) },
      );
      return summary.exitCode;
    }
    case 'agent':
    case 'collector':
    case 'all': {
      // an agent leaves the collector's section unread
      const config: RolesConfig = args.command === 'agent' ? { ...(await loadAgent(args)), collector: undefined } : await load(args);
      const log = createLogger({ level: config.log.level, name: 'plumb', format: logFormatOf(args, config.log.format) });
      const roles = args.command === 'all' ? (['collector', 'agent'] as const) : ([args.command] as const);
      await runRoles([...roles], { file: configPath(args), env: process.env }, log);
      return -1; // keep running until a signal
    }
    default:
      process.stderr.write(`plumb: unknown command "${args.command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof PlumbError) {
      process.stderr.write(`plumb: ${err.code}: ${err.message}\n`);
    } else {
      process.stderr.write(`plumb: ${(err as Error).stack ?? String(err)}\n`);
    }
    process.exit(1);
  },
);
