/**
 * The grok debugger behind POST /api/v1/grok, on a pool of its own (an agent without log
 * inputs): fields per line, failures, a configured input's pattern and last lines, and the
 * coded errors the route turns into 400 and 429.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GrokDebugger } from '../../../../agent/logs/grok-debug.ts';
import { plumbConfig } from '../../../helpers/processes.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'plumb-grok-debug-'));
const file = path.join(dir, 'app.log');
writeFileSync(file, `${Array.from({ length: 30 }, (_, i) => `INFO line ${i}`).join('\n')}\nno level here\n`);
const config = plumbConfig(`agent:\n  logs:\n    - path: ${path.join(dir, '*.log')}\n      pattern: "%{LOGLEVEL:level} line %{INT:n:int}"\n`).agent;
const grok = new GrokDebugger({ logs: config.logs, grok: config.grok, hostName: 'h' }, () => null);

afterAll(async () => {
  await grok.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('grok debugger', () => {
  it('answers fields per line and marks the lines no expression matched', async () => {
    const a = await grok.run({ pattern: ['%{IP:ip} %{WORD:verb}', '%{WORD:verb} only'], lines: ['10.1.2.3 GET', 'PUT only', 'zzz'] });
    expect(a.lines).toEqual([
      { line: '10.1.2.3 GET', outcome: 'matched', fields: { ip: '10.1.2.3', verb: 'GET' } },
      { line: 'PUT only', outcome: 'matched', fields: { verb: 'PUT' } },
      { line: 'zzz', outcome: 'failed' },
    ]);
    expect([a.matched, a.failed, a.timedOut]).toEqual([2, 1, 0]);
    expect(a.timeouts).toEqual({ chunk: config.grok.chunkTimeout, line: config.grok.lineTimeout });
  });

  it('uses a configured input’s pattern and the last lines of its newest file', async () => {
    expect(grok.inputs()).toEqual([{ index: 0, paths: [path.join(dir, '*.log')], patterns: ['%{LOGLEVEL:level} line %{INT:n:int}'] }]);
    const a = await grok.run({ input: 0 });
    expect(a.input).toEqual({ index: 0, paths: [path.join(dir, '*.log')], file });
    expect(a.lines).toHaveLength(20);
    expect(a.lines[0]).toEqual({ line: 'INFO line 11', outcome: 'matched', fields: { level: 'INFO', n: 11 } });
    expect(a.lines.at(-1)).toEqual({ line: 'no level here', outcome: 'failed' });
  });

  it('refuses a pattern that does not compile, an unknown input and a second request at once, with codes', async () => {
    await expect(grok.run({ pattern: '%{NO_SUCH_PATTERN:x}', lines: ['a'] })).rejects.toMatchObject({ code: 'PLUMB_ERR_GROK_PATTERN', message: expect.stringContaining('NO_SUCH_PATTERN') });
    await expect(grok.run({ lines: ['a'] })).rejects.toMatchObject({ code: 'PLUMB_ERR_GROK_PATTERN' });
    await expect(grok.run({ input: 3 })).rejects.toMatchObject({ code: 'PLUMB_ERR_GROK_INPUT' });
    const first = grok.run({ pattern: '%{WORD:w}', lines: ['x'] });
    await expect(grok.run({ pattern: '%{WORD:w}', lines: ['y'] })).rejects.toMatchObject({ code: 'PLUMB_ERR_HTTP_BUSY' });
    expect((await first).matched).toBe(1);
  });
});
