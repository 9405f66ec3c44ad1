/**
 * Spans per second through agent → collector → Zipkin, and what the collector spends doing it.
 *
 *   node bench/traces.ts [--seconds 15] [--warmup 3] [--concurrency 8] [--spans 100] [--batch 1000]
 *
 * The agent and the collector run as separate `plumb` processes from this checkout, on default
 * settings except the ports, the agent's statsd and host metrics (off) and the spans per
 * forwarded batch (`--batch`, agent.traces.batch.maxBatchSpans). This process plays
 * the applications and Zipkin:
 * - load: `concurrency` clients POST Zipkin v2 JSON to the agent's receiver, `spans` spans per
 *   request (each span ~450 bytes: name, kind, ids, timing, endpoint, six tags), as fast as they
 *   are answered; a 429 is retried after 20 ms, as a Zipkin reporter would after backing off;
 * - Zipkin: a server that takes `POST /api/v2/spans`, gunzips and counts the spans (without
 *   storing them) and answers 202.
 * After a warm-up, the measured window reads the spans Zipkin received and the CPU time of each
 * plumb process from /proc. At the end the load stops and the run waits until Zipkin has every
 * span the agent accepted: a run that loses spans fails.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { startZipkin, freePort, startPlumb, waitForOk, stopChild, cpuSeconds, machineCpu, rssMiB, bodies, startLoad, numericOptions } from './span-load.ts';


interface Options {
  seconds: number;
  warmup: number;
  concurrency: number;
  spans: number;
  batch: number;
}

function options(argv: string[]): Options {
  return numericOptions<Options>({ seconds: 15, warmup: 3, concurrency: 8, spans: 100, batch: 1000 }, argv);
}

// ---- the run ----

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const zipkin = await startZipkin();
  const [collectorPort, agentHttp, receiverPort] = [await freePort(), await freePort(), await freePort()];
  const collectorUrl = `http://127.0.0.1:${collectorPort}`;
  const collector = startPlumb('collector', { PLUMB_COLLECTOR__LISTEN: `127.0.0.1:${collectorPort}`, PLUMB_COLLECTOR__TRACES__ZIPKIN: `{url: "${zipkin.url}"}` });
  const agent = startPlumb('agent', {
    PLUMB_AGENT__HTTP__LISTEN: `127.0.0.1:${agentHttp}`,
    PLUMB_AGENT__STATSD__ENABLED: 'false',
    PLUMB_AGENT__HOST__ENABLED: 'false',
    PLUMB_AGENT__FORWARD__COLLECTORS: `["${collectorUrl}"]`,
    PLUMB_AGENT__TRACES__ZIPKIN__LISTEN: `127.0.0.1:${receiverPort}`,
    PLUMB_AGENT__TRACES__BATCH__MAX_BATCH_SPANS: String(o.batch),
  });
  try {
    await waitForOk(`${collectorUrl}/readyz`);
    await waitForOk(`http://127.0.0.1:${agentHttp}/readyz`);
    const load = startLoad(`http://127.0.0.1:${receiverPort}/api/v2/spans`, bodies(64, o.spans), { contentType: 'application/json', concurrency: o.concurrency, itemsPerRequest: o.spans, ok: 202, otherwise: 'throw' });
    await sleep(o.warmup * 1000);

    const t0 = performance.now();
    const s0 = zipkin.spans();
    const a0 = load.accepted;
    const r0 = load.refused;
    const c0 = cpuSeconds(collector.pid!);
    const g0 = cpuSeconds(agent.pid!);
    const b0 = process.cpuUsage();
    const m0 = machineCpu();
    await sleep(o.seconds * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    const delivered = zipkin.spans() - s0;
    const accepted = load.accepted - a0;
    const refused = load.refused - r0;
    const collectorCpu = cpuSeconds(collector.pid!) - c0;
    const agentCpu = cpuSeconds(agent.pid!) - g0;
    const b1 = process.cpuUsage(b0);
    const benchCpu = (b1.user + b1.system) / 1e6;
    const m1 = machineCpu();
    const machineBusy = (m1.busy - m0.busy) / (m1.total - m0.total);
    const rss = { collector: rssMiB(collector.pid!), agent: rssMiB(agent.pid!) };

    await load.stop();
    const drainStart = performance.now();
    while (zipkin.spans() < load.accepted && performance.now() - drainStart < 60_000) await sleep(50);
    const lost = load.accepted - zipkin.spans();

    const result = {
      machine: `${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.versions.node}`,
      options: o,
      seconds: Number(elapsed.toFixed(2)),
      deliveredSpansPerSecond: Math.round(delivered / elapsed),
      acceptedSpansPerSecond: Math.round(accepted / elapsed),
      refused429SpansPerSecond: Math.round(refused / elapsed),
      collectorCpuCores: Number((collectorCpu / elapsed).toFixed(2)),
      collectorCpuMicrosPerSpan: Number(((collectorCpu / delivered) * 1e6).toFixed(2)),
      agentCpuCores: Number((agentCpu / elapsed).toFixed(2)),
      agentCpuMicrosPerSpan: Number(((agentCpu / accepted) * 1e6).toFixed(2)),
      loadAndZipkinCpuCores: Number((benchCpu / elapsed).toFixed(2)),
      machineCpuBusy: `${Math.round(machineBusy * 100)}% of ${os.cpus().length} cores`,
      // CPU used by other processes on the machine during the window (noise in the numbers above)
      otherCpuCores: Number((machineBusy * os.cpus().length - (collectorCpu + agentCpu + benchCpu) / elapsed).toFixed(2)),
      rssMiB: { collector: Math.round(rss.collector), agent: Math.round(rss.agent) },
      acceptedTotal: load.accepted,
      deliveredTotal: zipkin.spans(),
      lost,
    };
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    if (lost !== 0) process.exitCode = 1;
  } finally {
    await stopChild(agent);
    await stopChild(collector);
    await new Promise<void>((resolve) => zipkin.server.close(() => resolve()));
  }
}

await main();
