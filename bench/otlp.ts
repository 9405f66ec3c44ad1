/**
 * OTLP against Zipkin JSON through agent → collector, side by side in one run (`npm run bench:otlp`):
 *
 *   node bench/otlp.ts [--seconds 10] [--warmup 3] [--concurrency 8] [--spans 100] [--points 1000]
 *
 * Three variants, each with a fresh `plumb agent` and `plumb collector` from this checkout
 * (default settings except ports; statsd and host metrics off; OTLP on over HTTP):
 * - zipkin-json: `concurrency` clients POST Zipkin v2 JSON to the agent's Zipkin receiver,
 *   `spans` spans a request (the spans of bench/traces.ts);
 * - otlp-protobuf: the same spans as OTLP/HTTP protobuf requests (encoded once, up front, with
 *   shared/otlp's exporter mapping) to the agent's POST /v1/traces;
 * - otlp-metrics: OTLP/HTTP protobuf metric requests of `points` data points each (a third delta
 *   sums, a third gauges, a third explicit-bucket histograms, 100 series a metric) to /v1/metrics.
 * Spans are counted where the collector exports them (a Zipkin stand-in in this process), points
 * by the collector's plumb_ingest_metrics_total. CPU time of each plumb process comes from
 * /proc over the measured window; agent RSS at its end. Variants run one after the other, so
 * other load on the machine (reported) affects them alike only roughly: compare within a run.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeRequest } from '../shared/otlp/codec.ts';
import { spansToOtlp, ZIPKIN_FIELDS } from '../shared/otlp/traces.ts';
import type { ZipkinSpan } from '../shared/zipkin.ts';
import { startZipkin, freePort, startPlumb, waitForOk, stopChild, cpuSeconds, machineCpu, rssMiB, bodies, startLoad, numericOptions } from './span-load.ts';


interface Options {
  seconds: number;
  warmup: number;
  concurrency: number;
  spans: number;
  points: number;
}

function options(argv: string[]): Options {
  return numericOptions<Options>({ seconds: 10, warmup: 3, concurrency: 8, spans: 100, points: 1000 }, argv);
}


/**
 * The same spans as OTLP/HTTP protobuf request bodies, as an SDK sends them: without the
 * `plumb.zipkin` attribute the exporter adds for another plumb.
 */
function otlpBodies(json: Buffer[]): Buffer[] {
  return json.map((b) => {
    const req = spansToOtlp(JSON.parse(b.toString('utf8')) as ZipkinSpan[]) as { resourceSpans: { scopeSpans: { spans: { attributes?: { key: string }[] }[] }[] }[] };
    for (const rs of req.resourceSpans) for (const ss of rs.scopeSpans) for (const span of ss.spans) span.attributes = span.attributes?.filter((kv) => kv.key !== ZIPKIN_FIELDS);
    return Buffer.from(encodeRequest('traces', req));
  });
}

/** `count` metric requests of `points` points: delta sums, gauges, explicit-bucket histograms. */
function metricBodies(count: number, points: number): Buffer[] {
  const out: Buffer[] = [];
  const now = BigInt(Date.now()) * 1_000_000n;
  const perKind = Math.floor(points / 3);
  for (let b = 0; b < count; b++) {
    const metrics: Record<string, unknown>[] = [];
    const series = (k: number) => [{ key: 'route', value: { stringValue: `/api/${k % 100}` } }, { key: 'code', value: { intValue: 200 } }];
    const dps = (n: number, make: (k: number) => Record<string, unknown>) => Array.from({ length: n }, (_, k) => ({ attributes: series(k), startTimeUnixNano: String(now), timeUnixNano: String(now + 1_000_000_000n), ...make(k) }));
    for (let m = 0; m < Math.ceil(perKind / 100); m++) {
      const n = Math.min(100, perKind - m * 100);
      metrics.push({ name: `bench.requests.${m}`, unit: '{request}', sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: dps(n, (k) => ({ asInt: 1 + (k % 7) })) } });
      metrics.push({ name: `bench.inflight.${m}`, gauge: { dataPoints: dps(n, (k) => ({ asDouble: k / 3 })) } });
      metrics.push({
        name: `bench.latency.${m}`,
        unit: 'ms',
        histogram: { aggregationTemporality: 1, dataPoints: dps(n, (k) => ({ count: 10, sum: 123.5 + k, explicitBounds: [5, 10, 25, 50, 100, 250, 500, 1000], bucketCounts: [1, 1, 2, 2, 2, 1, 1, 0, 0] })) },
      });
    }
    out.push(Buffer.from(encodeRequest('metrics', { resourceMetrics: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: `svc-${b % 4}` } }] }, scopeMetrics: [{ scope: { name: 'bench' }, metrics }] }] })));
  }
  return out;
}

async function ingestedPoints(collectorUrl: string): Promise<number> {
  const text = await (await fetch(`${collectorUrl}/metrics`)).text();
  const m = /^plumb_ingest_metrics_total (\S+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

type Variant = 'zipkin-json' | 'otlp-protobuf' | 'otlp-metrics';

async function runVariant(variant: Variant, o: Options, spanJson: Buffer[], spanOtlp: Buffer[], metricOtlp: Buffer[]): Promise<Record<string, unknown>> {
  const zipkin = await startZipkin();
  const [collectorPort, agentHttp, receiverPort, otlpPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const collectorUrl = `http://127.0.0.1:${collectorPort}`;
  const collector = startPlumb('collector', { PLUMB_COLLECTOR__LISTEN: `127.0.0.1:${collectorPort}`, PLUMB_COLLECTOR__TRACES__ZIPKIN: `{url: "${zipkin.url}"}` });
  const agent = startPlumb('agent', {
    PLUMB_AGENT__HTTP__LISTEN: `127.0.0.1:${agentHttp}`,
    PLUMB_AGENT__STATSD__ENABLED: 'false',
    PLUMB_AGENT__HOST__ENABLED: 'false',
    PLUMB_AGENT__FORWARD__COLLECTORS: `["${collectorUrl}"]`,
    PLUMB_AGENT__TRACES__ZIPKIN__LISTEN: `127.0.0.1:${receiverPort}`,
    PLUMB_AGENT__OTLP__ENABLED: 'true',
    PLUMB_AGENT__OTLP__HTTP__LISTEN: `127.0.0.1:${otlpPort}`,
    PLUMB_AGENT__OTLP__GRPC__ENABLED: 'false',
  });
  try {
    await waitForOk(`${collectorUrl}/readyz`, 60_000);
    await waitForOk(`http://127.0.0.1:${agentHttp}/readyz`, 60_000);
    const metrics = variant === 'otlp-metrics';
    const perRequest = metrics ? 3 * Math.floor(o.points / 3) : o.spans;
    const load =
      variant === 'zipkin-json'
        ? startLoad(`http://127.0.0.1:${receiverPort}/api/v2/spans`, spanJson, { contentType: 'application/json', concurrency: o.concurrency, itemsPerRequest: perRequest, ok: 202, otherwise: 'throw' })
        : startLoad(`http://127.0.0.1:${otlpPort}/v1/${metrics ? 'metrics' : 'traces'}`, metrics ? metricOtlp : spanOtlp, { contentType: 'application/x-protobuf', concurrency: o.concurrency, itemsPerRequest: perRequest, ok: 200, otherwise: 'throw' });
    const delivered = metrics ? () => ingestedPoints(collectorUrl) : () => Promise.resolve(zipkin.spans());
    await sleep(o.warmup * 1000);
    const t0 = performance.now();
    const s0 = await delivered();
    const a0 = load.accepted;
    const r0 = load.refused;
    const c0 = cpuSeconds(collector.pid!);
    const g0 = cpuSeconds(agent.pid!);
    const m0 = machineCpu();
    await sleep(o.seconds * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    const out = (await delivered()) - s0;
    const accepted = load.accepted - a0;
    const refused = load.refused - r0;
    const collectorCpu = cpuSeconds(collector.pid!) - c0;
    const agentCpu = cpuSeconds(agent.pid!) - g0;
    const m1 = machineCpu();
    const machineBusy = (m1.busy - m0.busy) / (m1.total - m0.total);
    const agentRss = rssMiB(agent.pid!);
    await load.stop();
    const drainStart = performance.now();
    while ((await delivered()) < load.accepted && performance.now() - drainStart < 60_000) await sleep(100);
    const lost = load.accepted - (await delivered());
    const unit = metrics ? 'point' : 'span';
    return {
      variant,
      [`accepted ${unit}s/s`]: Math.round(accepted / elapsed),
      [`delivered ${unit}s/s`]: Math.round(out / elapsed),
      [`refused (429/503) ${unit}s/s`]: Math.round(refused / elapsed),
      [`agent CPU µs/${unit}`]: Number(((agentCpu / accepted) * 1e6).toFixed(2)),
      [`collector CPU µs/${unit}`]: Number(((collectorCpu / Math.max(1, out)) * 1e6).toFixed(2)),
      'agent CPU cores': Number((agentCpu / elapsed).toFixed(2)),
      'collector CPU cores': Number((collectorCpu / elapsed).toFixed(2)),
      'agent RSS MiB': Math.round(agentRss),
      'machine busy': `${Math.round(machineBusy * 100)}% of ${os.cpus().length} cores`,
      lost,
    };
  } finally {
    await stopChild(agent);
    await stopChild(collector);
    await new Promise<void>((resolve) => zipkin.server.close(() => resolve()));
  }
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const spanJson = bodies(64, o.spans);
  const spanOtlp = otlpBodies(spanJson);
  const metricOtlp = metricBodies(16, o.points);
  const results: Record<string, unknown>[] = [];
  for (const v of ['zipkin-json', 'otlp-protobuf', 'otlp-metrics'] as const) results.push(await runVariant(v, o, spanJson, spanOtlp, metricOtlp));
  const report = {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.versions.node}`,
    options: o,
    bodyBytes: { zipkinJson: Math.round(spanJson.reduce((n, b) => n + b.length, 0) / spanJson.length), otlpProtobuf: Math.round(spanOtlp.reduce((n, b) => n + b.length, 0) / spanOtlp.length), otlpMetrics: Math.round(metricOtlp.reduce((n, b) => n + b.length, 0) / metricOtlp.length) },
    results,
  };
  process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  if (results.some((r) => r.lost !== 0)) process.exitCode = 1;
}

await main();
