/**
 * Whole-config reload through the user's doors: `plumb agent` and `plumb collector` processes
 * whose config file is rewritten while data flows (the file watch and SIGHUP), read back through
 * the collector's file sink, /metrics and the config section of GET /api/v1/status.
 *
 * - an input's pattern changed under a 1000 lines/s writer, an input added, another removed:
 *   every line reaches the sink exactly once, parsed by the pattern of its moment; the removed
 *   input's offset is checkpointed and nothing after it is read;
 * - `plumb check-config --diff` against the config a process runs (saved in its data dir) and
 *   against an old file: each changed key, with the component that takes it or "needs restart".
 * config-reload-traffic.test.ts has the collector's side, statsd and broken configs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NODE_BIN, runPlumb, spawnTracked, stopProcess } from '../helpers/processes.ts';
import { freeTcpPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { agentYaml, collectorYaml, configStatus, ndjsonUnder, nextReload, numbersOf, ready, startRole, upTo, cleanUp, LOG_WRITER, tempDir } from '../helpers/reload.ts';

afterEach(cleanUp);

describe('whole-config reload', () => {
  it('an input’s pattern changed under a 1000 lines/s writer, an input added and one removed: every line once, the removed input checkpointed', async () => {
    const dir = await tempDir();
    const [cport, hport] = [await freeTcpPort(), await freeTcpPort()];
    const sinkDir = path.join(dir, 'sink');
    const cfile = path.join(dir, 'collector.yaml');
    await writeFile(cfile, collectorYaml({ dataDir: path.join(dir, 'collector'), port: cport, sinkDir }));
    const collector = startRole('collector', cfile, path.join(dir, 'collector'));
    const cbase = `http://127.0.0.1:${cport}`;
    await ready(cbase, collector);

    const a = path.join(dir, 'a.log');
    const b = path.join(dir, 'b.log');
    const c = path.join(dir, 'c.log');
    await writeFile(b, upTo(300).map((n) => `bee ${n}\n`).join(''));
    await writeFile(c, upTo(200).map((n) => `sea ${n}\n`).join(''));
    const agentData = path.join(dir, 'agent');
    const afile = path.join(dir, 'agent.yaml');
    const input = (p: string, pattern: string): string => `    - path: ${JSON.stringify(p)}\n      pattern: ${JSON.stringify(pattern)}\n`;
    const write = (inputs: string): Promise<void> => writeFile(afile, agentYaml({ dataDir: agentData, http: hport, collector: cbase, inputs }));
    await write(input(a, '%{WORD:word} %{INT:n:int}') + input(c, '%{WORD:word} %{INT:n:int}'));
    const agent = startRole('agent', afile, agentData);
    const abase = `http://127.0.0.1:${hport}`;
    await ready(abase, agent);
    const started = (await configStatus(abase)).loadedAt;

    const writer = spawnTracked(NODE_BIN, [LOG_WRITER, '--file', a, '--rate', '1000', '--count', '4000', '--prefix', 'line']);
    await waitFor(async () => numbersOf(await ndjsonUnder(sinkDir), 'line').length >= 1000, { what: 'the first 1000 lines', timeoutMs: 20_000 });

    // new pattern for a.log, b.log added, c.log kept as it is
    await write(input(a, '%{WORD:kind} %{INT:num:int}') + input(c, '%{WORD:word} %{INT:n:int}') + input(b, '%{WORD:word} %{INT:n:int}'));
    const first = await nextReload(abase, started, 'the reload with the new pattern');
    expect(first).toMatchObject({ result: 'success', trigger: 'file', applied: ['agent:logs'], needsRestart: [] });
    await waitFor(async () => numbersOf(await ndjsonUnder(sinkDir), 'bee').length >= 300, { what: 'the added input’s lines', timeoutMs: 20_000 });

    // b.log removed (through SIGHUP this time, the watch is not needed for it)
    await write(input(a, '%{WORD:kind} %{INT:num:int}') + input(c, '%{WORD:word} %{INT:n:int}'));
    agent.child.kill('SIGHUP');
    const second = await nextReload(abase, first.at, 'the reload without b.log');
    expect(second.result).toBe('success');
    const checkpoint = JSON.parse(await readFile(path.join(agentData, 'tail-checkpoints.json'), 'utf8')) as { files: { path: string; offset: number }[] };
    expect(checkpoint.files.find((e) => e.path === b)?.offset).toBe((await readFile(b)).length);
    await appendFile(b, 'bee 301\nbee 302\n');

    expect((await writer.exited).code).toBe(0);
    await waitFor(async () => numbersOf(await ndjsonUnder(sinkDir), 'line').length >= 4000, { what: 'all 4000 lines', timeoutMs: 30_000 });
    await stopProcess(agent);
    await stopProcess(collector);
    const events = await ndjsonUnder(sinkDir);
    expect(numbersOf(events, 'line')).toEqual(upTo(4000));
    expect(numbersOf(events, 'sea')).toEqual(upTo(200));
    // b.log's lines until its removal, and not the two appended after it
    expect(numbersOf(events, 'bee')).toEqual(upTo(300));
    // what a reload back to the first pattern would do, against the config the agent ran last
    const probe = path.join(dir, 'probe.yaml');
    await writeFile(probe, agentYaml({ dataDir: agentData, http: hport, collector: cbase, inputs: input(a, '%{WORD:word} %{INT:n:int}') + input(c, '%{WORD:word} %{INT:n:int}') }));
    const diff = await runPlumb(['check-config', probe, '--offline', '--diff'], { env: { PLUMB_AGENT__DATA_DIR: agentData } });
    expect(diff.code).toBe(0);
    expect(diff.stdout).toContain('against the running config (agent');
    expect(diff.stdout.split('\n').map((l) => l.trim().replace(/\s+/g, ' '))).toContain('reload (agent:logs) agent.logs[0].pattern: "%{WORD:kind} %{INT:num:int}" → "%{WORD:word} %{INT:n:int}"');
    const lines = events.filter((e) => String(e.message).startsWith('line '));
    const oldShape = lines.filter((e) => e.word === 'line' && typeof e.n === 'number');
    const newShape = lines.filter((e) => e.kind === 'line' && typeof e.num === 'number');
    expect(oldShape.length).toBeGreaterThan(0);
    expect(newShape.length).toBeGreaterThan(0);
    expect(oldShape.length + newShape.length).toBe(4000);
    // each line parsed by the pattern of its moment: the old shape up to some line, the new after
    const lastOld = Math.max(...oldShape.map((e) => e.n as number));
    const firstNew = Math.min(...newShape.map((e) => e.num as number));
    expect(firstNew).toBe(lastOld + 1);
  }, 90_000);

  it('plumb check-config --diff: against the running config saved by a process, and against an old file', async () => {
    const dir = await tempDir();
    const old = path.join(dir, 'old.yaml');
    const next = path.join(dir, 'new.yaml');
    const data = path.join(dir, 'agent');
    await writeFile(old, `agent:\n  dataDir: ${JSON.stringify(data)}\n  statsd: { tags: ["a:1"] }\n`);
    await writeFile(next, `agent:\n  dataDir: ${JSON.stringify(data)}\n  statsd: { tags: ["a:2"], listen: "127.0.0.1:9999" }\n  forward: { collectors: ["http://10.0.0.1:9102"] }\n`);
    const r = await runPlumb(['check-config', next, '--offline', '--diff', '--against', old]);
    expect(r.code).toBe(0);
    const out = r.stdout.split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
    expect(out).toContain('reload (agent:statsd) agent.statsd.tags: ["a:1"] → ["a:2"]');
    expect(out).toContain('needs restart agent.statsd.listen: "127.0.0.1:8125" → "127.0.0.1:9999"');
    expect(out).toContain('reload (agent:forward) agent.forward.collectors: ["http://127.0.0.1:9102"] → ["http://10.0.0.1:9102"]');

    const none = await runPlumb(['check-config', next, '--offline', '--diff'], { env: { PLUMB_AGENT__DATA_DIR: path.join(dir, 'nothing-here'), PLUMB_COLLECTOR__DATA_DIR: path.join(dir, 'nothing-here') } });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no running config found');
  }, 30_000);
});
