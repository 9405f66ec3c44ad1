/**
 * Fleet configuration as constant work: 50 simulated agents (the agent's own fetch loop, each
 * validating bundles through the same composition and schema a real agent uses) against a real
 * collector process serving a folder of bundles, plus a few reading the same bundle from S3
 * (s3rver). A changed bundle reaches every agent within two intervals; a bad one is refused by
 * every agent, with its errors, and shown in the collector's fleet view; with the collector and
 * S3 down the agents keep what they run, and a real agent restarted then starts with the bundle
 * kept in its data dir.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { RemoteConfig, bundleHash } from '../../agent/remote-config.ts';
import { loadComposed } from '../../cli/reload.ts';
import { bundleFrom } from '../../cli/fleet-config.ts';
import { loadAgentConfig } from '../../cli/agent-config.ts';
import { agentHeader } from '../../shared/wire.ts';
import { Telemetry } from '../../shared/telemetry.ts';
import { silentLogger } from '../../shared/log.ts';
import { errorsOf } from '../../cli/reload.ts';
import { stopProcess, type TrackedProcess } from '../helpers/processes.ts';
import { freeTcpPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';
import { cleanUp, configStatus, ready, startRole, tempDir } from '../helpers/reload.ts';

let s3: S3TestServer | null = null;
afterEach(async () => {
  await cleanUp();
  await s3?.destroy();
  s3 = null;
});

const INTERVAL = 1500;

/** A collector process serving the bundles in `bundles`. */
async function bundleServer(dir: string, bundles: string): Promise<{ collector: TrackedProcess; cbase: string }> {
  const cport = await freeTcpPort();
  const cdata = path.join(dir, 'collector');
  const cfile = path.join(dir, 'collector.yaml');
  await writeFile(cfile, `collector:\n  listen: "127.0.0.1:${cport}"\n  dataDir: ${JSON.stringify(cdata)}\n  patterns: { enabled: false }\n  configBundles: { dir: ${JSON.stringify(bundles)} }\n`);
  const collector = startRole('collector', cfile, cdata);
  const cbase = `http://127.0.0.1:${cport}`;
  await ready(cbase, collector);
  return { collector, cbase };
}

describe('fleet configuration', () => {
  it('50 agents follow their group’s bundle within two intervals, refuse a bad one everywhere, and keep running on what they have when the sources are down', async () => {
    const dir = await tempDir();
    const bundles = path.join(dir, 'bundles');
    await mkdir(bundles);
    const v1 = 'statsd:\n  tags: ["env:one"]\n';
    await writeFile(path.join(bundles, 'web.yaml'), v1);
    const { collector, cbase } = await bundleServer(dir, bundles);

    s3 = await startS3Server({ bucket: 'fleet' });
    await s3.client.send(new PutObjectCommand({ Bucket: 'fleet', Key: 'web.yaml', Body: v1 }));
    process.env.AWS_ACCESS_KEY_ID = s3.credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.credentials.secretAccessKey;

    // every simulated agent validates against the same local file a real agent would have
    const local = path.join(dir, 'agent.yaml');
    await writeFile(local, `agent:\n  statsd: { enabled: false }\n  host: { enabled: false }\n  traces: { zipkin: { enabled: false } }\n`);
    const telemetry = new Telemetry();
    const loops: RemoteConfig[] = [];
    const make = (i: number, source: string): RemoteConfig => {
      const config = loadAgentConfig({ text: `agent:\n  remoteConfig: { source: ${JSON.stringify(source)}, group: web, interval: ${INTERVAL}ms, jitter: 0.2, timeout: 2s, s3: { endpoint: ${JSON.stringify(s3!.url)}, forcePathStyle: true } }\n`, file: 'sim' }).agent.remoteConfig;
      const loop: RemoteConfig = new RemoteConfig(config, {
        log: silentLogger(),
        telemetry,
        dataDir: path.join(dir, `agent-${i}`),
        collectors: [cbase],
        apply: async (text) => {
          try {
            await loadComposed({ file: local, env: {} }, bundleFrom(text, 'web'), ['agent']);
            return { ok: true, errors: [] };
          } catch (err) {
            return { ok: false, errors: errorsOf(err) };
          }
        },
        agentHeader: (): string => agentHeader({ hostname: `sim-${i}`, version: 'test', configHash: '', instance: `sim-${i}@1`, group: 'web', ...(loop.state.bundle ? { bundle: loop.state.bundle } : {}), ...(loop.state.refused ? { refused: loop.state.refused, refusedErrors: loop.state.refusedErrors?.length } : {}) }),
      });
      return loop;
    };
    for (let i = 0; i < 45; i++) loops.push(make(i, 'collector'));
    for (let i = 45; i < 50; i++) loops.push(make(i, 's3://fleet/web.yaml'));
    for (const l of loops) l.start();
    try {
      await waitFor(() => loops.every((l) => l.state.bundle === bundleHash(v1)), { what: 'every agent on the first bundle', timeoutMs: 20_000 });

      // a change reaches all of them within two intervals
      const v2 = 'statsd:\n  tags: ["env:two"]\n  maxSeries: 5000\n';
      const changed = Date.now();
      await writeFile(path.join(bundles, 'web.yaml'), v2);
      await s3.client.send(new PutObjectCommand({ Bucket: 'fleet', Key: 'web.yaml', Body: v2 }));
      await waitFor(() => loops.every((l) => l.state.bundle === bundleHash(v2)), { what: 'every agent on the second bundle', timeoutMs: 2 * INTERVAL * 1.2 + 1000, intervalMs: 10 });
      const propagation = Date.now() - changed;
      process.stdout.write(`fleet config: 50 agents on the new bundle ${propagation} ms after the change (interval ${INTERVAL} ms, jitter 0.2)\n`);
      expect(propagation).toBeLessThanOrEqual(2 * INTERVAL * 1.2);

      // a bad bundle: refused by every agent, with each error, the good one kept
      const bad = 'statsd:\n  tags: ["env:three"]\n  maxSeries: -1\n  colour: blue\n';
      await writeFile(path.join(bundles, 'web.yaml'), bad);
      await s3.client.send(new PutObjectCommand({ Bucket: 'fleet', Key: 'web.yaml', Body: bad }));
      await waitFor(() => loops.every((l) => l.state.refused === bundleHash(bad)), { what: 'every agent refusing the bad bundle', timeoutMs: 4 * INTERVAL + 2000 });
      for (const l of loops) {
        expect(l.state.bundle).toBe(bundleHash(v2));
        expect(l.state.refusedErrors).toEqual([expect.stringContaining('agent.statsd.colour: unknown key'), expect.stringContaining('agent.statsd.maxSeries')]);
      }
      expect((await telemetry.metrics()).match(/plumb_remote_config_refused_errors (\d+)/)?.[1]).toBe('2');
      // the collector's fleet view: group, running bundle and the refusal of each agent fetching from it
      await waitFor(
        async () => {
          const fleet = (await (await fetch(`${cbase}/api/v1/fleet`)).json()) as { agents: { hostname: string; group?: string; bundle?: string; refused?: string; refusedErrors?: number }[] };
          const sims = fleet.agents.filter((a) => a.hostname.startsWith('sim-'));
          return sims.length === 45 && sims.every((a) => a.group === 'web' && a.bundle === bundleHash(v2) && a.refused === bundleHash(bad) && a.refusedErrors === 2);
        },
        { what: 'the fleet view showing each agent’s refusal', timeoutMs: 4 * INTERVAL + 2000 },
      );

      // the server's cost: unchanged fetches are 304s
      const metrics = await (await fetch(`${cbase}/metrics`)).text();
      expect(Number(/plumb_config_bundle_requests_total\{result="not_modified"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);

      // the collector and S3 down: every agent keeps the last good bundle
      await stopProcess(collector);
      await s3.stop();
      const errorsBefore = Number(/plumb_remote_config_fetches_total\{result="error"\} (\d+)/.exec(await telemetry.metrics())?.[1] ?? 0);
      await waitFor(async () => Number(/plumb_remote_config_fetches_total\{result="error"\} (\d+)/.exec(await telemetry.metrics())?.[1] ?? 0) >= errorsBefore + 50, { what: 'a failed fetch from each', timeoutMs: 4 * INTERVAL + 5000 });
      for (const l of loops) expect(l.state.bundle).toBe(bundleHash(v2));
    } finally {
      for (const l of loops) await l.stop();
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
    }
  }, 90_000);

  it('a real agent keeps the bundle in its data dir and starts with it while its source is down', async () => {
    const dir = await tempDir();
    const bundles = path.join(dir, 'bundles');
    await mkdir(bundles);
    const bundle = 'statsd:\n  tags: ["env:kept"]\n';
    await writeFile(path.join(bundles, 'edge.yaml'), bundle);
    const hport = await freeTcpPort();
    const { collector, cbase } = await bundleServer(dir, bundles);
    const adata = path.join(dir, 'agent');
    const afile = path.join(dir, 'agent.yaml');
    const text = `agent:\n  dataDir: ${JSON.stringify(adata)}\n  http: { listen: "127.0.0.1:${hport}" }\n  statsd: { enabled: false }\n  host: { enabled: false }\n  traces: { zipkin: { enabled: false } }\n  forward: { collectors: [${JSON.stringify(cbase)}] }\n  remoteConfig: { source: collector, group: edge, interval: 500ms }\n`;
    await writeFile(afile, text);
    const abase = `http://127.0.0.1:${hport}`;
    const composed = createHash('sha256').update(`${text}\0${bundle}`).digest('hex');
    let agent = startRole('agent', afile, adata);
    await ready(abase, agent);
    await waitFor(async () => (await configStatus(abase)).hash === composed, { what: 'the agent running the bundle', timeoutMs: 20_000 });
    expect((await configStatus(abase)).lastReload).toMatchObject({ result: 'success', trigger: 'bundle', applied: ['agent:statsd'] });
    await stopProcess(agent);
    await stopProcess(collector);

    agent = startRole('agent', afile, adata);
    await ready(abase, agent);
    expect((await configStatus(abase)).hash).toBe(composed);
    expect(agent.stderr()).toContain('starting with the bundle kept in the data dir');
    await waitFor(() => agent.stderr().includes('fleet config: fetch failed'), { what: 'a failed fetch while the collector is down' });
    expect((await configStatus(abase)).hash).toBe(composed);
  }, 90_000);
});
