/**
 * Whole-config reload of a collector and an agent under traffic, through their processes: the
 * collector's log sink moved to another folder (the two folders together hold every line once),
 * statsd counters counting exactly across a reload of the agent's tags, broken configs refused
 * with every error at once while the running one keeps working, and a listen port change
 * reported as needing a restart; the collector's Zipkin sink moved to another server while spans
 * flow (the two servers together hold every span once).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NODE_BIN, spawnTracked, stopProcess } from '../helpers/processes.ts';
import { freeTcpPort, freeUdpPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { startZipkinServer, type ZipkinTestServer } from '../helpers/zipkin-server.ts';
import { agentYaml, collectorYaml, configStatus, metric, ndjsonUnder, nextReload, numbersOf, ready, startRole, upTo, cleanUp, LOG_WRITER, tempDir } from '../helpers/reload.ts';

afterEach(cleanUp);

describe('whole-config reload under traffic', () => {
  it('a collector sink changed under traffic, statsd counting across a reload of the agent, broken configs kept out with every error, a port change reported as needing a restart', async () => {
    const dir = await tempDir();
    const [cport, hport, newPort] = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
    const udp = await freeUdpPort();
    const sink1 = path.join(dir, 'sink-1');
    const sink2 = path.join(dir, 'sink-2');
    const cdata = path.join(dir, 'collector');
    const cfile = path.join(dir, 'collector.yaml');
    await writeFile(cfile, collectorYaml({ dataDir: cdata, port: cport, sinkDir: sink1 }));
    const collector = startRole('collector', cfile, cdata);
    const cbase = `http://127.0.0.1:${cport}`;
    await ready(cbase, collector);

    const logFile = path.join(dir, 'app.log');
    const agentData = path.join(dir, 'agent');
    const afile = path.join(dir, 'agent.yaml');
    const inputs = `    - path: ${JSON.stringify(logFile)}\n      pattern: "%{WORD:word} %{INT:n:int}"\n`;
    const agentText = (tags: string[]): string => agentYaml({ dataDir: agentData, http: hport, collector: cbase, statsd: udp, tags, inputs });
    await writeFile(afile, agentText(['phase:one']));
    const agent = startRole('agent', afile, agentData);
    const abase = `http://127.0.0.1:${hport}`;
    await ready(abase, agent);

    const writer = spawnTracked(NODE_BIN, [LOG_WRITER, '--file', logFile, '--rate', '1000', '--count', '4000', '--prefix', 'line']);
    // statsd: 30 increments every 10 ms while the config changes under it
    const socket = createSocket('udp4');
    let sent = 0;
    let sending = true;
    const sender = (async () => {
      while (sending) {
        const batch = Array.from({ length: 30 }, () => 'reload.hits:1|c').join('\n');
        await new Promise<void>((resolve, reject) => socket.send(batch, udp, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
        sent += 30;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await waitFor(async () => numbersOf(await ndjsonUnder(sink1), 'line').length >= 500, { what: 'lines in the first sink', timeoutMs: 20_000 });

    // the collector's sink moves to another folder
    const cStart = (await configStatus(cbase)).loadedAt;
    await writeFile(cfile, collectorYaml({ dataDir: cdata, port: cport, sinkDir: sink2 }));
    const moved = await nextReload(cbase, cStart, 'the collector reload');
    expect(moved).toMatchObject({ result: 'success', applied: ['collector:log-sinks'] });

    // the agent's statsd tags change while counting
    const aStart = (await configStatus(abase)).loadedAt;
    await writeFile(afile, agentText(['phase:two']));
    expect(await nextReload(abase, aStart, 'the agent reload')).toMatchObject({ result: 'success', applied: ['agent:statsd'] });
    await waitFor(async () => (await metric(cbase, 'reload_hits_total', '{phase="two"')) > 0, { what: 'counts under the new tag', timeoutMs: 20_000 });

    // a broken agent config: every error at once, the running config kept
    const before = await configStatus(abase);
    await writeFile(afile, agentText(['phase:two']).replace('flushInterval: 500ms', 'flushInterval: 0s, maxSeries: -1, colour: blue'));
    const broken = await nextReload(abase, before.lastReload!.at, 'the broken config refused');
    expect(broken.result).toBe('failure');
    expect(broken.errors).toEqual(
      expect.arrayContaining([expect.stringContaining('agent.statsd.flushInterval'), expect.stringContaining('agent.statsd.maxSeries'), expect.stringContaining('agent.statsd.colour: unknown key')]),
    );
    expect((await configStatus(abase)).hash).toBe(before.hash);
    expect(await metric(abase, 'plumb_config_reload_total', '{result="failure"}')).toBe(1);
    await waitFor(() => agent.stderr().includes('configuration refused (3 error(s))'), { what: 'the refusal logged' });

    // a broken collector config with a listen change: refused too; then the listen change alone needs a restart
    await writeFile(cfile, collectorYaml({ dataDir: cdata, port: newPort, sinkDir: sink2, extra: '  metrics: { window: nope }\n' }));
    const cBroken = await nextReload(cbase, moved.at, 'the broken collector config refused');
    expect(cBroken).toMatchObject({ result: 'failure', errors: [expect.stringContaining('collector.metrics.window')] });
    await writeFile(cfile, collectorYaml({ dataDir: cdata, port: newPort, sinkDir: sink2 }));
    const port = await nextReload(cbase, cBroken.at, 'the port change');
    expect(port).toMatchObject({ result: 'success', applied: [], needsRestart: ['collector.listen'] });
    expect(collector.stderr()).toContain('needs a restart to take effect');

    sending = false;
    await sender;
    socket.close();
    expect((await writer.exited).code).toBe(0);
    const lines = async (): Promise<number[]> => numbersOf([...(await ndjsonUnder(sink1)), ...(await ndjsonUnder(sink2))], 'line');
    await waitFor(async () => (await lines()).length >= 4000, { what: 'all 4000 lines', timeoutMs: 30_000 });
    // the agent flushes what it counted on the way out
    expect((await stopProcess(agent)).code).toBe(0);
    await waitFor(async () => (await metric(cbase, 'reload_hits_total')) >= sent, { what: `all ${sent} increments`, timeoutMs: 10_000 }).catch(() => undefined);
    expect(await metric(cbase, 'reload_hits_total')).toBe(sent);
    expect(await metric(cbase, 'reload_hits_total', '{phase="one"')).toBeGreaterThan(0);
    expect(await lines()).toEqual(upTo(4000));
    expect(numbersOf(await ndjsonUnder(sink2), 'line').length).toBeGreaterThan(0);
    expect((await stopProcess(collector)).code).toBe(0);
  }, 90_000);

  it('the Zipkin sink moved to another server while spans flow: every span reaches one of the two, none twice', async () => {
    const dir = await tempDir();
    const cport = await freeTcpPort();
    const zipkins: ZipkinTestServer[] = [await startZipkinServer(), await startZipkinServer()];
    const cdata = path.join(dir, 'collector');
    const cfile = path.join(dir, 'collector.yaml');
    let sending = true;
    const text = (z: ZipkinTestServer, more = ''): string =>
      collectorYaml({ dataDir: cdata, port: cport, sinkDir: path.join(dir, 'logs'), extra: `  traces:\n    zipkin: { url: ${JSON.stringify(z.url)}, gzip: false, retryInitial: 50ms }\n${more}` });
    try {
      await writeFile(cfile, text(zipkins[0]));
      const collector = startRole('collector', cfile, cdata);
      const cbase = `http://127.0.0.1:${cport}`;
      await ready(cbase, collector);

      // an agent's way: batches of 20 spans, each posted until a 2xx (same batch id on a retry)
      const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');
      let batches = 0;
      let refused = 0;
      const sender = (async () => {
        while (sending) {
          const seq = batches;
          const spans = Array.from({ length: 20 }, (_, j) => ({ traceId: hex(seq + 1, 32), id: hex(seq * 20 + j + 1, 16), name: 'op', timestamp: Date.now() * 1000, duration: 5, localEndpoint: { serviceName: 'reload' } }));
          const body = JSON.stringify({ id: `b${seq}`, agent: 'reload-test', seq, spans });
          let accepted = false;
          while (!accepted && sending) {
            const r = await fetch(`${cbase}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).catch(() => null);
            await r?.arrayBuffer();
            accepted = r?.ok === true;
            if (!accepted) {
              refused++;
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
          }
          if (accepted) batches++;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      await zipkins[0].waitForSpans(400, 20_000);

      const start = (await configStatus(cbase)).loadedAt;
      await writeFile(cfile, text(zipkins[1]));
      expect(await nextReload(cbase, start, 'the Zipkin sink moved')).toMatchObject({ result: 'success', applied: ['collector:span-sinks'], needsRestart: [] });
      // spans keep flowing, now to the second server
      await zipkins[1].waitForSpans(400, 20_000);

      // new span sinks that cannot open (the span queues' folder is a file): the previous sinks are back, the error reported
      await writeFile(path.join(cdata, 'spans'), 'not a folder');
      const moved = (await configStatus(cbase)).lastReload!.at;
      await writeFile(cfile, text(zipkins[0], '    elasticsearch: { node: "http://127.0.0.1:9" }\n'));
      const failed = await nextReload(cbase, moved, 'the span sinks that cannot open');
      expect(failed.result).toBe('failure');
      expect(failed.errors).toEqual([expect.stringContaining('applying the new configuration failed')]);
      const onSecond = zipkins[1].spans.length;
      await zipkins[1].waitForSpans(onSecond + 200, 20_000);
      sending = false;
      await sender;

      const expected = Array.from({ length: batches * 20 }, (_, i) => hex(i + 1, 16));
      const ids = (): string[] => [...zipkins[0].spans, ...zipkins[1].spans].map((s) => s.id);
      await waitFor(() => ids().length >= expected.length, { what: `all ${expected.length} spans`, timeoutMs: 20_000 });
      expect(ids().sort()).toEqual(expected);
      expect(refused).toBe(0);
      expect(await metric(cbase, 'plumb_config_reload_total', '{result="success"}')).toBe(1);
      expect(await metric(cbase, 'plumb_config_reload_total', '{result="failure"}')).toBe(1);
      expect(collector.stderr()).toContain('span sinks restarted for the new config');
      expect((await stopProcess(collector)).code).toBe(0);
      expect(ids().length).toBe(expected.length);
    } finally {
      sending = false;
      for (const z of zipkins) await z.stop();
    }
  }, 60_000);
});
