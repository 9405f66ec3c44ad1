/**
 * Who may talk to the collector: the loopback rule as check-config and start-up apply it, and
 * bearer tokens on a real in-process collector (list, file, environment, rotation, 401s counted,
 * open probe and scrape paths, nothing decompressed before the token is checked).
 */
import { Writable } from 'node:stream';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../../../shared/security.ts';
import { PlumbCollector } from '../../../collector/collector.ts';
import { loadPlumbConfig } from '../../../cli/config.ts';
import { ConfigError } from '../../../shared/config.ts';
import { PlumbError } from '../../../shared/errors.ts';
import { Telemetry } from '../../../shared/telemetry.ts';
import { createLogger, silentLogger } from '../../../shared/log.ts';
import { plumbConfig, tempDataDir } from '../../helpers/processes.ts';
import { scrape, valueOf } from '../../helpers/prometheus.ts';

const BATCH = { id: 'a:1', agent: 'a', seq: 1, start: 0, end: 1000, metrics: [{ type: 'c', name: 'sec.hits', tags: [], value: 3 }], events: [], serviceChecks: [] };

function configErrors(yaml: string): string[] {
  try {
    loadPlumbConfig({ text: yaml, env: {} });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.errors;
    throw err;
  }
}

describe('the loopback rule', () => {
  it('knows loopback addresses from the rest', () => {
    for (const h of ['127.0.0.1', '127.3.2.1', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'collector.internal', 'localhost.example.com', '']) expect(isLoopbackHost(h), h).toBe(false);
  });

  it('refuses a collector bound beyond loopback with no authentication, naming every way out', () => {
    for (const listen of ['0.0.0.0:9102', ':9102', '[::]:9102', '10.1.2.3:9102', 'collector.internal:9102']) {
      const errors = configErrors(`collector:\n  listen: "${listen}"\n`);
      expect(errors, listen).toHaveLength(1);
      expect(errors[0]).toMatch(/^collector\.listen: PLUMB_ERR_INSECURE: /);
      for (const key of ['collector.auth', 'collector.tls', 'collector.listen', 'collector.insecure: true']) expect(errors[0]).toContain(key);
    }
  });

  it('accepts loopback, tokens, a token file or variable, mTLS, or insecure: true', () => {
    const ok = [
      'collector: { listen: "127.0.0.1:9102" }',
      'collector: { listen: "localhost:9102" }',
      'collector: { listen: "[::1]:9102" }',
      'collector: { listen: "0.0.0.0:9102", auth: { tokens: ["t0ken-one"] } }',
      'collector: { listen: "0.0.0.0:9102", auth: { tokenFile: /etc/plumb/tokens } }',
      'collector: { listen: "0.0.0.0:9102", auth: { tokensEnv: COLLECTOR_TOKENS } }',
      'collector: { listen: "0.0.0.0:9102", tls: { cert: c.pem, key: k.pem, clientCa: ca.pem, clientAuth: require } }',
      'collector: { listen: "0.0.0.0:9102", insecure: true }',
    ];
    for (const yaml of ok) expect(configErrors(yaml), yaml).toEqual([]);
  });

  it('does not count TLS without client certificates, or clientAuth: request, as authentication', () => {
    expect(configErrors('collector: { listen: "0.0.0.0:9102", tls: { cert: c.pem, key: k.pem } }')[0]).toMatch(/PLUMB_ERR_INSECURE/);
    expect(configErrors('collector: { listen: "0.0.0.0:9102", tls: { cert: c.pem, key: k.pem, clientCa: ca.pem, clientAuth: request } }')[0]).toMatch(/PLUMB_ERR_INSECURE/);
  });

  it('needs clientCa for client certificates', () => {
    expect(configErrors('collector: { tls: { cert: c.pem, key: k.pem, clientAuth: require } }')).toEqual([expect.stringMatching(/^collector\.tls\.clientCa: required when clientAuth is "require"/)]);
  });

  it('reports a malformed token without printing it', () => {
    const errors = configErrors('collector:\n  auth: { tokens: [8128551234] }\n');
    expect(errors).toEqual(['collector.auth.tokens: every token must be a string (quote it in YAML)']);
    const single = configErrors('collector:\n  auth: { tokens: 8128551234 }\n');
    expect(single.join('\n')).not.toContain('8128551234');
  });
});

const running: PlumbCollector[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (let c = running.pop(); c; c = running.pop()) await c.stop(2000);
  for (let d = dirs.pop(); d; d = dirs.pop()) rmSync(d, { recursive: true, force: true });
});

async function collectorWith(yaml: string, options: { env?: Record<string, string>; log?: ReturnType<typeof createLogger> } = {}): Promise<{ url: string; telemetry: Telemetry; collector: PlumbCollector }> {
  const config = plumbConfig(yaml).collector;
  dirs.push((config.dataDir = tempDataDir()));
  const telemetry = new Telemetry();
  const collector = new PlumbCollector(config, { telemetry, log: options.log ?? silentLogger(), env: options.env ?? {} });
  await collector.start();
  running.push(collector);
  return { url: collector.url, telemetry, collector };
}

function post(url: string, token?: string, body: string | Buffer = JSON.stringify(BATCH), headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/v1/metrics`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: typeof body === 'string' ? body : new Uint8Array(body),
  });
}

describe('bearer tokens', () => {
  it('refuses ingest and API calls without a valid token with 401, counted; takes every configured token', async () => {
    const { url } = await collectorWith('collector:\n  listen: "127.0.0.1:0"\n  auth: { tokens: ["first-token-aaaa", "second-token-bbbb"] }\n');
    const none = await post(url);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
    expect(await none.json()).toEqual({ error: 'PLUMB_ERR_UNAUTHORIZED', message: expect.stringContaining('Authorization: Bearer') });
    expect((await post(url, 'first-token-aaab')).status).toBe(401);
    expect((await post(url, 'first-token-aaaa-and-more')).status).toBe(401);
    expect((await post(url, 'x')).status).toBe(401);
    expect((await post(url, undefined, JSON.stringify(BATCH), { authorization: 'Basic Zmlyc3QtdG9rZW4tYWFhYQ==' })).status).toBe(401);
    for (const path of ['/api/v1/sinks', '/api/v1/alerts', '/api/v1/rules', '/api/v1/events']) {
      expect((await fetch(`${url}${path}`)).status, path).toBe(401);
      expect((await fetch(`${url}${path}`, { headers: { authorization: 'Bearer second-token-bbbb' } })).status, path).toBe(200);
    }
    // rotation: both tokens are good
    expect((await post(url, 'first-token-aaaa')).status).toBe(200);
    expect((await post(url, 'second-token-bbbb', JSON.stringify({ ...BATCH, id: 'a:2', seq: 2 }))).status).toBe(200);
    expect((await post(url, undefined, JSON.stringify(BATCH), { authorization: 'bearer   first-token-aaaa' })).status).toBe(200);
    // scrapes and probes need nothing
    for (const path of ['/metrics', '/healthz', '/readyz']) expect((await fetch(`${url}${path}`)).status, path).toBe(200);
    const m = await scrape(url);
    expect(valueOf(m, 'plumb_ingest_rejected_total', { status: '401' })).toBe(9);
    expect(valueOf(m, 'sec_hits_total')).toBe(6); // a:1 and a:2; the third post replays a:1
  });

  it('the console asks a browser for a token once (login form, cookie); the cookie counts on /ui/ and /api/, never on ingest', async () => {
    const { url } = await collectorWith('collector:\n  listen: "127.0.0.1:0"\n  auth: { tokens: ["console-token-dddd"] }\n');
    const page = await fetch(`${url}/ui/alerts`, { redirect: 'manual' });
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe('/ui/login?next=%2Fui%2Falerts');
    expect((await fetch(`${url}/ui/login`)).status).toBe(200);
    expect((await fetch(`${url}/ui/static/console.css`)).status).toBe(200);
    const login = await fetch(`${url}/ui/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=console-token-dddd&next=%2Fui%2Ffleet' });
    expect(login.status).toBe(303);
    expect(login.headers.get('location')).toBe('/ui/fleet');
    const cookie = login.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^plumb_token=console-token-dddd; Path=\/; HttpOnly; SameSite=Strict$/);
    const jar = { cookie: cookie.split(';')[0] };
    expect((await fetch(`${url}/ui/fleet`, { headers: jar })).status).toBe(200);
    expect((await fetch(`${url}/api/v1/rules`, { headers: jar })).status).toBe(200);
    expect((await post(url, undefined, JSON.stringify(BATCH), jar)).status).toBe(401);
    const wrong = await fetch(`${url}/ui/fleet`, { headers: { cookie: 'plumb_token=not-the-token' }, redirect: 'manual' });
    expect(wrong.status).toBe(302);
    expect(wrong.headers.get('location')).toMatch(/failed=1/);
    expect((await fetch(`${url}/api/v1/rules`, { headers: { cookie: 'plumb_token=not-the-token' } })).status).toBe(401);
  });

  it('checks the token before reading the body: a bad gzip body without a token is a 401, not a 400', async () => {
    const { url } = await collectorWith('collector:\n  listen: "127.0.0.1:0"\n  auth: { tokens: ["gzip-token-cccc"] }\n');
    const junk = Buffer.from('this is not gzip at all');
    expect((await post(url, undefined, junk, { 'content-encoding': 'gzip' })).status).toBe(401);
    expect((await post(url, 'gzip-token-cccc', junk, { 'content-encoding': 'gzip' })).status).toBe(400);
    expect((await post(url, 'gzip-token-cccc', gzipSync(JSON.stringify(BATCH)), { 'content-encoding': 'gzip' })).status).toBe(200);
  });

  it('reads tokens from a file (comments and blank lines ignored) and from an environment variable', async () => {
    const dir = tempDataDir('plumb-tokens-');
    dirs.push(dir);
    const file = join(dir, 'tokens');
    writeFileSync(file, '# current\nfile-token-dddd\n\n  # next, during rotation\n  file-token-eeee  \n');
    const { url } = await collectorWith(`collector:\n  listen: "127.0.0.1:0"\n  auth: { tokenFile: ${JSON.stringify(file)}, tokensEnv: AGENT_TOKENS }\n`, { env: { AGENT_TOKENS: 'env-token-ffff, env-token-gggg' } });
    for (const t of ['file-token-dddd', 'file-token-eeee', 'env-token-ffff', 'env-token-gggg']) expect((await post(url, t)).status, t).toBe(200);
    for (const t of ['# current', '#', 'env-token-ffff,']) expect((await post(url, t)).status, t).toBe(401);
  });

  it('does not start when a token source is unreadable or empty, and says which key and path', async () => {
    const dir = tempDataDir('plumb-tokens-');
    dirs.push(dir);
    const missing = join(dir, 'nope');
    await expect(collectorWith(`collector:\n  listen: "127.0.0.1:0"\n  auth: { tokenFile: ${JSON.stringify(missing)} }\n`)).rejects.toMatchObject({
      code: 'PLUMB_ERR_SECRET_READ',
      message: expect.stringMatching(new RegExp(`^collector\\.auth\\.tokenFile: cannot read "${missing}" \\(ENOENT\\)`)),
    });
    const empty = join(dir, 'empty');
    writeFileSync(empty, '# nothing yet\n\n');
    await expect(collectorWith(`collector:\n  listen: "127.0.0.1:0"\n  auth: { tokenFile: ${JSON.stringify(empty)} }\n`)).rejects.toMatchObject({ code: 'PLUMB_ERR_SECRET_READ', message: expect.stringContaining('holds no token') });
    await expect(collectorWith('collector:\n  listen: "127.0.0.1:0"\n  auth: { tokensEnv: AGENT_TOKENS }\n', { env: { AGENT_TOKENS: ' , ' } })).rejects.toMatchObject({
      code: 'PLUMB_ERR_SECRET_READ',
      message: expect.stringContaining('collector.auth.tokensEnv: the environment variable AGENT_TOKENS'),
    });
  });

  it('with no token configured, ingest and API are open (loopback)', async () => {
    const { url } = await collectorWith('collector:\n  listen: "127.0.0.1:0"\n');
    expect((await post(url)).status).toBe(200);
    expect((await fetch(`${url}/api/v1/sinks`)).status).toBe(200);
  });
});

describe('start-up beyond loopback', () => {
  it('an embedder that skips the config checks still gets PLUMB_ERR_INSECURE, before anything listens', async () => {
    const config = plumbConfig('collector:\n  listen: "0.0.0.0:0"\n  insecure: true\n').collector;
    config.insecure = false;
    dirs.push((config.dataDir = tempDataDir()));
    const collector = new PlumbCollector(config, { telemetry: new Telemetry(), log: silentLogger() });
    const err = (await collector.start().catch((e: unknown) => e)) as PlumbError;
    expect(err).toBeInstanceOf(PlumbError);
    expect(err.code).toBe('PLUMB_ERR_INSECURE');
    expect(err.message).toMatch(/^collector\.listen: 0\.0\.0\.0:0 is reachable from other hosts/);
    expect(collector.address).toBe('');
  });

  it('insecure: true starts and warns once', async () => {
    let out = '';
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => ((out += chunk.toString()), done()) });
    const log = createLogger({ level: 'info', destination: sink });
    await collectorWith('collector:\n  listen: "0.0.0.0:0"\n  insecure: true\n', { log });
    const warnings = out.split('\n').filter((l) => l.includes('"level":40'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('collector.insecure is true');
  });
});
