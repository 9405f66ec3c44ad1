/**
 * statsd over UDP vs DogStatsD over a Unix datagram socket, in one run against one plumb agent
 * that listens on both: the C load generator sends the same datagrams to each door in turn, at
 * the same paced rates and flat out, and the agent's own counters say what arrived.
 *
 *   npm run bench:statsd-uds                 # 10 s per run
 *   npm run bench:statsd-uds -- --quick      # 3 s per run, a smoke test
 *   options: --seconds N, --rates 100000,400000,0 (0 = flat out), --series N, --from-source, --no-record
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { buildLoadgen, runLoadgen, type LoadgenResult } from './statsd/loadgen.ts';
import { buildCode, codeVersion, removeBuild, sourcePaths } from './statsd/build.ts';
import { Sink, freePort } from './statsd/targets.ts';
import { machineInfo, processCpuSeconds, processMemory } from './statsd/procfs.ts';
import { killAll, track } from './statsd/processes.ts';

const BENCH = import.meta.dirname;
const REPO = resolve(BENCH, '..');
const WORK = join(BENCH, '.work', 'uds');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const quick = process.argv.includes('--quick');
const seconds = Number(arg('--seconds') ?? (quick ? 3 : 10));
const rates = (arg('--rates') ?? '100000,200000,400000,0').split(',').map(Number);
const series = Number(arg('--series') ?? 1000);
const record = !process.argv.includes('--no-record');
const log = (line: string): void => console.error(line);

type Transport = 'udp' | 'unix';

interface Run {
  transport: Transport;
  askedRate: number;
  sent: LoadgenResult;
  processed: number;
  parseErrors: number;
  kernelDrops: number;
  agentCpu: number;
}

function metricValue(text: string, name: string, labels = ''): number {
  let total = 0;
  const re = new RegExp(`^${name}(\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm');
  for (let m = re.exec(text); m !== null; m = re.exec(text)) if (labels === '' || (m[1] ?? '').includes(labels)) total += Number(m[2]);
  return total;
}

async function main(): Promise<void> {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const loadgen = buildLoadgen(join(BENCH, '.work'));
  const code = process.argv.includes('--from-source') ? sourcePaths() : buildCode(log);
  const sink = new Sink();
  await sink.start();
  const udpPort = await freePort();
  const httpPort = await freePort();
  const socketPath = join(WORK, 'dsd.socket');
  const configFile = join(WORK, 'agent.yaml');
  writeFileSync(
    configFile,
    [
      'agent:',
      `  dataDir: ${JSON.stringify(join(WORK, 'data'))}`,
      `  http: { listen: "127.0.0.1:${httpPort}" }`,
      '  host: { enabled: false }',
      `  statsd: { listen: "127.0.0.1:${udpPort}", receiveBuffer: 4mb, flushInterval: 10s, socket: { path: ${JSON.stringify(socketPath)}, receiveBuffer: 4mb } }`,
      `  forward: { collectors: ["http://127.0.0.1:${sink.port}"] }`,
      'log: { level: warn }',
      '',
    ].join('\n'),
  );
  const agent: ChildProcess = track(spawn(process.execPath, [code.agentMain, 'agent', '--config', configFile], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] }));
  let agentErr = '';
  agent.stderr?.setEncoding('utf8').on('data', (d: string) => (agentErr += d));
  const base = `http://127.0.0.1:${httpPort}`;
  const scrape = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();
  for (let i = 0; ; i++) {
    if (agent.exitCode !== null) throw new Error(`agent exited: ${agentErr}`);
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {
      // not up yet
    }
    if (i > 200) throw new Error('agent did not come up in 20 s');
    await sleep(100);
  }
  const before = await scrape();
  const machine = machineInfo();
  const grantedUnix = metricValue(before, 'plumb_statsd_unix_receive_buffer_bytes');
  const grantedUdp = metricValue(before, 'plumb_statsd_receive_buffer_bytes');
  const runs: Run[] = [];
  const started = new Date();
  try {
    for (const rate of rates) {
      for (const transport of ['udp', 'unix'] as const) {
        const t0 = await scrape();
        const cpu0 = processCpuSeconds(agent.pid as number);
        const sent = await runLoadgen(loadgen, { port: udpPort, unixPath: transport === 'unix' ? socketPath : undefined, rate, seconds, series });
        // wait until the agent has read what is queued: its line counter stops moving
        let last = -1;
        let text = '';
        for (let i = 0; i < 100; i++) {
          text = await scrape();
          const n = metricValue(text, 'plumb_statsd_lines_total');
          if (n === last) break;
          last = n;
          await sleep(200);
        }
        const cpu1 = processCpuSeconds(agent.pid as number);
        const run: Run = {
          transport,
          askedRate: rate,
          sent,
          processed: metricValue(text, 'plumb_statsd_lines_total') - metricValue(t0, 'plumb_statsd_lines_total'),
          parseErrors: metricValue(text, 'plumb_statsd_parse_errors_total') - metricValue(t0, 'plumb_statsd_parse_errors_total'),
          kernelDrops: metricValue(text, 'plumb_statsd_socket_drops_total') - metricValue(t0, 'plumb_statsd_socket_drops_total'),
          agentCpu: (cpu1 - cpu0) / sent.elapsed,
        };
        runs.push(run);
        log(`${transport} asked ${rate || 'flat out'}: sent ${sent.lines} lines in ${sent.elapsed.toFixed(1)} s, processed ${run.processed}, loss ${fmtPct(loss(run))}, agent CPU ${(run.agentCpu * 100).toFixed(0)}%`);
      }
    }
  } finally {
    const rss = processMemory(agent.pid as number);
    agent.kill('SIGTERM');
    await once(agent, 'exit');
    await sink.stop();
    if (!process.argv.includes('--from-source')) removeBuild();
    log(`agent VmHWM ${(rss.peakRssBytes / 1e6).toFixed(0)} MB`);
  }
  const version = codeVersion();
  const md = [
    `## statsd: UDP vs Unix datagram socket — ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC (\`bench/statsd-uds.ts\`${quick ? ', quick' : ''})`,
    '',
    `Machine: ${machine.cpus} CPUs (${machine.cpuModel}), Linux ${machine.kernel}, Node ${machine.node}; net.core.rmem_max ${machine.rmemMax}, net.unix.max_dgram_qlen ${readSysctl('/proc/sys/net/unix/max_dgram_qlen')}. Code: ${version.commit}${version.dirty.length ? ` (+ uncommitted: ${version.dirty.join(', ')})` : ''}.`,
    '',
    `Method: one \`plumb agent\` (compiled${process.argv.includes('--from-source') ? ': no, from source' : ''}) listening on UDP 127.0.0.1 and on a Unix datagram socket, both with receiveBuffer 4mb (granted: UDP rb ${grantedUdp}, unix ${grantedUnix}), forwarding to a stand-in collector. The C load generator (\`bench/loadgen.c\`, \`--unix\` for the socket) sends the same pool of 1400-byte datagrams (${series} series, ~59 lines each, DogStatsD tags) for ${seconds} s per run, first over UDP then over the socket, at each asked rate (lines/s; 0 = flat out), on the same machine while other work may run. Sent: the generator's count; processed: the agent's \`plumb_statsd_lines_total\` delta after its counter stops moving. A blocking sender on a Unix socket waits while the agent's queue is full, so it may send less than asked: "achieved" is what it sent per second.`,
    '',
    '| asked lines/s | transport | achieved lines/s | processed lines/s | loss | kernel drops (UDP) | agent CPU (1 core = 100%) | sender max late |',
    '|---|---|---|---|---|---|---|---|',
    ...runs.map((r) =>
      `| ${r.askedRate ? fmtRate(r.askedRate) : 'flat out'} | ${r.transport} | ${fmtRate(r.sent.lines / r.sent.elapsed)} | ${fmtRate(r.processed / r.sent.elapsed)} | ${fmtPct(loss(r))} | ${r.transport === 'udp' ? r.kernelDrops : '–'} | ${(r.agentCpu * 100).toFixed(0)}% | ${(r.sent.maxLateUs / 1000).toFixed(1)} ms |`,
    ),
    '',
  ].join('\n');
  console.log(md);
  if (record) {
    appendFileSync(join(BENCH, 'RESULTS.md'), `\n${md}\n`);
    log('appended to bench/RESULTS.md');
  }
}

function loss(r: Run): number {
  return r.sent.lines === 0 ? 0 : Math.max(0, 1 - r.processed / r.sent.lines);
}
function fmtPct(f: number): string {
  return `${(f * 100).toFixed(f > 0 && f < 0.001 ? 3 : 2)}%`;
}
function fmtRate(r: number): string {
  return r >= 1e6 ? `${(r / 1e6).toFixed(2)}M` : `${Math.round(r / 1000)}k`;
}
function readSysctl(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '?';
  }
}

main().catch((err: unknown) => {
  console.error(err);
  killAll();
  process.exitCode = 1;
});
