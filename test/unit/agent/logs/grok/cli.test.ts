import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGrokCli } from '../../../../../agent/logs/grok/index.ts';

class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString('utf8');
    done();
  }
}

async function run(options: { pattern: string; patternsDir?: string }, input: string): Promise<{ code: number; out: unknown[]; err: string }> {
  const out = new Collect();
  const err = new Collect();
  const code = await runGrokCli(options, Readable.from([input]), out, err);
  return { code, out: out.text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)), err: err.text };
}

describe('runGrokCli', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'plumb-grok-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes one JSON object per input line', async () => {
    const input = [
      '10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.1" 200 2326 "-" "curl/8"',
      'not an access log line',
      '10.0.0.2 - bob [10/Oct/2000:13:55:37 -0700] "POST /b HTTP/1.0" 404 - "-" "x"',
    ].join('\n');
    const r = await run({ pattern: '%{COMBINEDAPACHELOG}' }, input);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toHaveLength(3);
    expect(r.out[0]).toEqual({
      match: true,
      fields: {
        clientip: '10.0.0.1', ident: '-', auth: '-', timestamp: '10/Oct/2000:13:55:36 -0700', verb: 'GET', request: '/a',
        httpversion: '1.1', response: '200', bytes: '2326', referrer: '"-"', agent: '"curl/8"',
      },
    });
    expect(r.out[1]).toEqual({ match: false });
    expect(r.out[2]).toMatchObject({ match: true, fields: { clientip: '10.0.0.2', auth: 'bob', response: '404' } });
  });

  it('flattens nested names with dots, prints typed captures as numbers and unnamed ones not at all', async () => {
    const r = await run({ pattern: '%{IP:[client][ip]} %{INT:[http][status]:int} %{NUMBER:took:float} %{WORD} %{WORD:tag} %{WORD:tag}' }, '10.0.0.1 503 0.25 skip a b\r\n');
    expect(r.out).toEqual([{ match: true, fields: { 'client.ip': '10.0.0.1', 'http.status': 503, took: 0.25, tag: ['a', 'b'] } }]);
  });

  it('uses pattern files from patternsDir', async () => {
    await writeFile(join(dir, 'app'), 'APPLINE %{LOGLEVEL:level} \\[%{DATA:component}\\] %{GREEDYDATA:msg}\n');
    const r = await run({ pattern: '%{APPLINE}', patternsDir: dir }, 'ERROR [db] connection refused\n');
    expect(r.out).toEqual([{ match: true, fields: { level: 'ERROR', component: 'db', msg: 'connection refused' } }]);
  });

  it('stops quietly when the reader has gone away', async () => {
    const out = new Collect();
    out.destroy();
    const lines = Array.from({ length: 20000 }, (_, i) => `line ${i}`).join('\n');
    expect(await runGrokCli({ pattern: 'line %{INT:n}' }, Readable.from([lines]), out, new Collect())).toBe(0);
  });

  it('returns 1 and explains a bad pattern on the error stream', async () => {
    const unknown = await run({ pattern: '%{NO_SUCH_PATTERN:x}' }, 'a\n');
    expect(unknown.code).toBe(1);
    expect(unknown.out).toEqual([]);
    expect(unknown.err).toMatch(/^plumb grok: .*unknown pattern NO_SUCH_PATTERN/);
    const broken = await run({ pattern: '(%{WORD:x}' }, 'a\n');
    expect(broken.code).toBe(1);
    expect(broken.err).toMatch(/grok expression "\(%\{WORD:x\}" is not a valid regular expression: .*offset 0/);
  });

  it('waits for a slow reader instead of buffering without bound', async () => {
    const out = new PassThrough({ highWaterMark: 1024 });
    const lines = Array.from({ length: 5000 }, (_, i) => `line ${i}`).join('\n');
    const reading = (async () => {
      let text = '';
      for await (const chunk of out) text += chunk.toString();
      return text;
    })();
    expect(await runGrokCli({ pattern: 'line %{INT:n:int}' }, Readable.from([lines]), out, new Collect())).toBe(0);
    out.end();
    const received = await reading;
    const parsed = received.trim().split('\n').map((l) => JSON.parse(l));
    expect(parsed).toHaveLength(5000);
    expect(parsed[4999]).toEqual({ match: true, fields: { n: 4999 } });
  });
});
