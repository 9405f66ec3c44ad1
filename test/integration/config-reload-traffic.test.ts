/**
 * Whole-config reload of a collector and an agent under traffic, through their processes: the
 * collector's log sink moved to another folder (the two folders together hold every line once),
 * statsd counters counting exactly across a reload of the agent's tags, broken configs refused
 * with every error at once while the running one keeps working, and a listen port change
 * reported as needing a restart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSocket } from 'node:dgram';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NODE_BIN, spawnTracked, stopProcess } from '../helpers/processes.ts';
import { freeTcpPort, freeUdpPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
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

});
