/**
 * The collector's door through the user's door: `plumb check-config` and `plumb collector`
 * refuse an open collector beyond loopback; tokens, TLS with a CA made here by openssl, and
 * client certificates (mTLS) decide who gets in; and no token or key ever shows up in what
 * plumb prints or answers.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runPlumb, startCollector, startPlumb, stopAllInProcess, stopAllProcesses, stopProcess, tempDataDir, type TrackedProcess } from '../helpers/processes.ts';
import { freeTcpPort, freeUdpPort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { parseExposition, samplesOf, scrape, valueOf } from '../helpers/prometheus.ts';

const BATCH = (seq: number) => JSON.stringify({ id: `sec:${seq}`, agent: 'sec', seq, start: 0, end: 1000, metrics: [{ type: 'c', name: 'sec.requests', tags: [], value: 1 }], events: [], serviceChecks: [] });

let dir = '';
/** PEM files: a CA, the collector's certificate (127.0.0.1 and localhost) and key, a client certificate it signed, and one from a CA nobody trusts. */
const pki = { ca: '', serverCert: '', serverKey: '', clientCert: '', clientKey: '', rogueCert: '', rogueKey: '' };

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA and a certificate it signs; `ext` is the v3 extension text for the leaf. */
function makeCa(name: string): void {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-ca.key`, '-out', `${name}-ca.pem`, '-days', '2', '-subj', `/CN=plumb test ${name} CA`]);
}

function makeLeaf(ca: string, name: string, cn: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}-ca.pem`, '-CAkey', `${ca}-ca.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
}

beforeAll(() => {
  dir = tempDataDir('plumb-pki-');
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    throw new Error('openssl is needed to make the test certificates (apt-get install openssl)');
  }
  makeCa('test');
  makeCa('rogue');
  makeLeaf('test', 'server', 'plumb-collector', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  makeLeaf('test', 'client', 'plumb-agent', 'extendedKeyUsage=clientAuth\n');
  makeLeaf('rogue', 'rogue', 'plumb-agent', 'extendedKeyUsage=clientAuth\n');
  Object.assign(pki, {
    ca: join(dir, 'test-ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
    rogueCert: join(dir, 'rogue.pem'),
    rogueKey: join(dir, 'rogue.key'),
  });
});

afterEach(async () => {
  await stopAllInProcess();
  await stopAllProcesses();
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

function writeConfig(name: string, yaml: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One request through undici with the given TLS material (CA to trust, client certificate). */
async function call(url: string, options: { method?: string; path?: string; token?: string; ca?: string; cert?: string; key?: string; body?: string } = {}): Promise<Answer> {
  const dispatcher = new Agent({
    connect: {
      ...(options.ca ? { ca: readFileSync(options.ca) } : {}),
      ...(options.cert ? { cert: readFileSync(options.cert) } : {}),
      ...(options.key ? { key: readFileSync(options.key) } : {}),
    },
  });
  try {
    const method = options.method ?? (options.body !== undefined ? 'POST' : 'GET');
    const res = await request(`${url}${options.path ?? '/v1/metrics'}`, {
      method: method as 'GET' | 'POST',
      dispatcher,
      headers: { ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {}) },
      ...(options.body !== undefined ? { body: options.body } : {}),
    });
    return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
  } finally {
    await dispatcher.close();
  }
}

describe('a collector beyond loopback with nothing that authenticates', () => {
  it('check-config and plumb collector refuse it with PLUMB_ERR_INSECURE, naming the keys that fix it', async () => {
    const file = writeConfig('open', 'collector:\n  listen: "0.0.0.0:0"\n');
    const check = await runPlumb(['check-config', file]);
    const start = await runPlumb(['collector', '--config', file]);
    for (const r of [check, start]) {
      expect(r.code).toBe(1);
      const line = r.stderr.split('\n').find((l) => l.includes('PLUMB_ERR_INSECURE'));
      expect(line, r.stderr).toBeDefined();
      for (const key of ['collector.listen', 'collector.auth', 'collector.tls', 'collector.insecure: true']) expect(line).toContain(key);
    }
    // the same through an environment override of a loopback file
    const env = await runPlumb(['check-config', writeConfig('loopback', 'collector:\n  listen: "127.0.0.1:9102"\n')], { env: { PLUMB_COLLECTOR__LISTEN: '0.0.0.0:9102' } });
    expect(env.code).toBe(1);
    expect(env.stderr).toContain('PLUMB_ERR_INSECURE');
  });

  it('insecure: true starts it, with one warning', async () => {
    const port = await freeTcpPort();
    const p = startPlumb(['collector', '--config', writeConfig('insecure', `collector:\n  listen: "0.0.0.0:${port}"\n  insecure: true\n`)]);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, { what: 'the insecure collector', timeoutMs: 15_000 });
    expect((await call(`http://127.0.0.1:${port}`, { body: BATCH(1) })).status).toBe(200);
    await stopProcess(p);
    const warnings = p.stderr().split('\n').filter((l) => l.includes('"level":40'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('collector.insecure is true');
  });

  it('a TLS file that cannot be read stops start-up with the key and the path', async () => {
    const missing = join(dir, 'missing-cert.pem');
    const r = await runPlumb(['collector', '--config', writeConfig('bad-tls', `collector:\n  listen: "127.0.0.1:0"\n  tls: { cert: ${JSON.stringify(missing)}, key: ${JSON.stringify(pki.serverKey)} }\n`)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`PLUMB_ERR_SECRET_READ: collector.tls.cert: cannot read "${missing}" (ENOENT)`);
    // a key that does not belong to the certificate
    const mismatch = await runPlumb(['collector', '--config', writeConfig('bad-pair', `collector:\n  listen: "127.0.0.1:0"\n  tls: { cert: ${JSON.stringify(pki.serverCert)}, key: ${JSON.stringify(pki.clientKey)} }\n`)]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toMatch(/PLUMB_ERR_SECRET_READ: collector\.tls: .*cannot be used/);
    expect(mismatch.stderr).not.toContain('PRIVATE KEY');
  });
});

describe('bearer tokens over plain HTTP', () => {
  it('only requests with one of the tokens get in; refusals are 401s, counted', async () => {
    const c = await startCollector('collector:\n  listen: "127.0.0.1:0"\n  auth: { tokens: ["old-token-1111", "new-token-2222"] }\n');
    expect((await call(c.url, { body: BATCH(1) })).status).toBe(401);
    const wrong = await call(c.url, { body: BATCH(2), token: 'old-token-111' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(JSON.parse(wrong.text)).toMatchObject({ error: 'PLUMB_ERR_UNAUTHORIZED' });
    expect((await call(c.url, { body: BATCH(3), token: 'old-token-1111' })).status).toBe(200);
    expect((await call(c.url, { body: BATCH(4), token: 'new-token-2222' })).status).toBe(200);
    const m = parseExposition((await call(c.url, { path: '/metrics' })).text);
    expect(valueOf(m, 'plumb_ingest_rejected_total', { status: '401' })).toBe(2);
    expect(valueOf(m, 'sec_requests_total')).toBe(2);
  });
});

describe('TLS with a CA made for the test', () => {
  it('serves HTTPS that a client trusting the CA accepts, and one that does not refuses', async () => {
    const c = await startCollector(`collector:\n  listen: "127.0.0.1:0"\n  auth: { tokens: ["tls-token-3333"] }\n  tls: { cert: ${JSON.stringify(pki.serverCert)}, key: ${JSON.stringify(pki.serverKey)} }\n`);
    expect(c.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect((await call(c.url, { ca: pki.ca, body: BATCH(1), token: 'tls-token-3333' })).status).toBe(200);
    expect((await call(c.url, { ca: pki.ca, body: BATCH(2) })).status).toBe(401);
    await expect(call(c.url, { body: BATCH(3), token: 'tls-token-3333' })).rejects.toThrow(/certificate/i);
    // plain HTTP to the TLS port gets nothing in
    await expect(fetch(`${c.url.replace('https:', 'http:')}/v1/metrics`, { method: 'POST', body: BATCH(4) }).then((r) => r.status)).rejects.toThrow();
    expect((await call(c.url, { ca: pki.ca, path: '/healthz' })).status).toBe(200);
  });
});

describe('mTLS: clientAuth require', () => {
  it('a client certificate signed by clientCa is the credential; without one, or with a stranger\'s, ingest is refused; probes stay open', async () => {
    const c = await startCollector(
      `collector:\n  listen: "127.0.0.1:0"\n  tls: { cert: ${JSON.stringify(pki.serverCert)}, key: ${JSON.stringify(pki.serverKey)}, clientCa: ${JSON.stringify(pki.ca)}, clientAuth: require }\n`,
    );
    expect((await call(c.url, { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, body: BATCH(1) })).status).toBe(200);
    const none = await call(c.url, { ca: pki.ca, body: BATCH(2) });
    expect(none.status).toBe(401);
    expect(JSON.parse(none.text)).toMatchObject({ error: 'PLUMB_ERR_UNAUTHORIZED', message: expect.stringContaining('client certificate') });
    expect((await call(c.url, { ca: pki.ca, cert: pki.rogueCert, key: pki.rogueKey, body: BATCH(3) })).status).toBe(401);
    expect((await call(c.url, { ca: pki.ca, path: '/api/v1/sinks' })).status).toBe(401);
    for (const path of ['/healthz', '/readyz', '/metrics']) expect((await call(c.url, { ca: pki.ca, path })).status, path).toBe(200);
    const m = parseExposition((await call(c.url, { ca: pki.ca, path: '/metrics' })).text);
    expect(valueOf(m, 'plumb_ingest_rejected_total', { status: '401' })).toBe(3);
    expect(valueOf(m, 'sec_requests_total')).toBe(1);
  });
});

describe('secrets stay out of output and answers', () => {
  it('no token and no key material in stdout, stderr, check-config or any API answer', async () => {
    const tokens = { listed: 'listed-secret-4444aaaa', file: 'file-secret-5555bbbb', env: 'env-secret-6666cccc' };
    const tokenFile = join(dir, 'tokens.txt');
    writeFileSync(tokenFile, `# agents\n${tokens.file}\n`);
    mkdirSync(join(dir, 'data-secrets'), { recursive: true });
    const port = await freeTcpPort();
    const yaml = [
      'collector:',
      `  listen: "127.0.0.1:${port}"`,
      `  auth: { tokens: ["${tokens.listed}"], tokenFile: ${JSON.stringify(tokenFile)}, tokensEnv: COLLECTOR_TOKENS }`,
      `  tls: { cert: ${JSON.stringify(pki.serverCert)}, key: ${JSON.stringify(pki.serverKey)}, clientCa: ${JSON.stringify(pki.ca)}, clientAuth: request }`,
      'log: { level: trace }',
      '',
    ].join('\n');
    const file = writeConfig('secrets', yaml);
    const url = `https://127.0.0.1:${port}`;
    const p: TrackedProcess = startPlumb(['collector', '--config', file], { env: { COLLECTOR_TOKENS: tokens.env } });
    await waitFor(async () => (await call(url, { ca: pki.ca, path: '/healthz' })).status === 200, { what: 'the collector over TLS', timeoutMs: 15_000 }).catch((err: Error) => {
      throw new Error(`${err.message}\n${p.stderr()}`);
    });
    const answers: string[] = [];
    let seq = 0;
    for (const token of [...Object.values(tokens), 'wrong-token-7777']) {
      for (const path of ['/api/v1/sinks', '/api/v1/alerts', '/api/v1/rules', '/api/v1/events']) answers.push((await call(url, { ca: pki.ca, path, token })).text);
      const a = await call(url, { ca: pki.ca, body: BATCH(++seq), token });
      expect(a.status, token).toBe(token.startsWith('wrong') ? 401 : 200);
      answers.push(a.text);
    }
    // clientAuth request: a certificate from clientCa stands in for a token
    expect((await call(url, { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, body: BATCH(seq + 1) })).status).toBe(200);
    answers.push((await call(url, { ca: pki.ca, path: '/metrics' })).text);
    await stopProcess(p);
    // check-config on the same file, fine and broken
    const ok = await runPlumb(['check-config', file], { env: { COLLECTOR_TOKENS: tokens.env } });
    expect(ok.code, ok.stderr).toBe(0);
    const broken = await runPlumb(['check-config', writeConfig('secrets-broken', yaml.replace('clientAuth: request', 'clientAuth: maybe').replace(`["${tokens.listed}"]`, `"${tokens.listed}"`) + 'collector2: {}\n')]);
    expect(broken.code).toBe(1);
    const everything = [p.stdout(), p.stderr(), ok.stdout, ok.stderr, broken.stdout, broken.stderr, ...answers].join('\n');
    expect(p.stderr()).toContain('collector listening');
    for (const secret of [...Object.values(tokens), ...readFileSync(pki.serverKey, 'utf8').split('\n').filter((l) => l.length > 40)]) {
      expect(everything.includes(secret), `a secret (${secret.slice(0, 6)}…) appears in plumb's output or answers`).toBe(false);
    }
    expect(everything).not.toContain('PRIVATE KEY');
  });
});

// ---------------- agent → collector, both real processes ----------------

interface Running {
  url: string;
  process: TrackedProcess;
}

/** `plumb collector` on a free loopback port, with `extra` YAML lines under collector:. */
async function runCollector(name: string, extra: string[], tls: boolean): Promise<Running> {
  const port = await freeTcpPort();
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const file = writeConfig(`collector-${name}`, ['collector:', `  listen: "127.0.0.1:${port}"`, ...extra.map((l) => `  ${l}`), 'log: { level: warn }', ''].join('\n'));
  const p = startPlumb(['collector', '--config', file]);
  await waitFor(async () => (await call(url, { ca: pki.ca, path: '/healthz' })).status === 200, { what: `collector ${name}`, timeoutMs: 15_000 }).catch((err: Error) => {
    throw new Error(`${err.message}\n${p.stderr()}`);
  });
  return { url, process: p };
}

interface RunningAgent extends Running {
  statsdPort: number;
}

/** `plumb agent` forwarding to `collector`, flushing every 200 ms, with `forward` YAML lines under agent.forward:. */
async function runAgent(name: string, collector: string, forward: string[]): Promise<RunningAgent> {
  const httpPort = await freeTcpPort();
  const statsdPort = await freeUdpPort();
  const yaml = [
    'agent:',
    `  id: ${name}`,
    `  http: { listen: "127.0.0.1:${httpPort}" }`,
    `  statsd: { listen: "127.0.0.1:${statsdPort}", flushInterval: 200ms }`,
    '  host: { enabled: false }',
    '  traces: { zipkin: { enabled: false } }',
    '  forward:',
    `    collectors: ["${collector}"]`,
    '    retryInitial: 50ms',
    '    retryMax: 500ms',
    ...forward.map((l) => `    ${l}`),
    'log: { level: warn }',
    '',
  ].join('\n');
  const p = startPlumb(['agent', '--config', writeConfig(`agent-${name}`, yaml)]);
  const url = `http://127.0.0.1:${httpPort}`;
  await waitFor(async () => (await fetch(`${url}/healthz`)).ok, { what: `agent ${name}`, timeoutMs: 15_000 }).catch((err: Error) => {
    throw new Error(`${err.message}\n${p.stderr()}`);
  });
  return { url, process: p, statsdPort };
}

async function sendStatsd(port: number, line: string): Promise<void> {
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => socket.send(line, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  } finally {
    socket.close();
  }
}

async function collectorMetrics(c: Running): Promise<ReturnType<typeof parseExposition>> {
  const a = await call(c.url, { ca: pki.ca, path: '/metrics' });
  expect(a.status).toBe(200);
  return parseExposition(a.text);
}

/** Sum over every label set of an agent's self-metric. */
async function agentCount(a: RunningAgent, name: string, labels: Record<string, string> = {}): Promise<number> {
  return samplesOf(await scrape(a.url), name, labels).reduce((n, s) => n + s.value, 0);
}

/** The agent counted `sec.<name>:<value>|c` and the collector shows it. */
async function delivered(c: Running, a: RunningAgent, name: string, value: number): Promise<void> {
  await sendStatsd(a.statsdPort, `sec.${name}:${value}|c`);
  await waitFor(async () => valueOf(await collectorMetrics(c), `sec_${name}_total`) === value, { what: `sec.${name} on the collector`, timeoutMs: 20_000 }).catch((err: Error) => {
    throw new Error(`${err.message}\nagent stderr:\n${a.process.stderr()}\ncollector stderr:\n${c.process.stderr()}`);
  });
}

/** The agent sent `sec.<name>`, the collector refused it (`refusal` moved on the agent), and it is not on the collector. */
async function refused(c: Running, a: RunningAgent, name: string, refusal: { metric: string; labels?: Record<string, string> }): Promise<void> {
  await sendStatsd(a.statsdPort, `sec.${name}:1|c`);
  await waitFor(async () => (await agentCount(a, refusal.metric, refusal.labels)) >= 1, { what: `agent ${name}: ${refusal.metric}`, timeoutMs: 20_000 });
  expect(valueOf(await collectorMetrics(c), `sec_${name}_total`)).toBeUndefined();
}

describe('agent → collector with a bearer token', () => {
  it('agents with either token (rotation) deliver; without one or with a wrong one, nothing gets in and the collector counts 401s', async () => {
    const tokenFile = join(dir, 'collector-tokens');
    writeFileSync(tokenFile, '# old, until every agent has the new one\nold-agent-token-8888\nnew-agent-token-9999\n');
    const agentTokenFile = join(dir, 'agent-token');
    writeFileSync(agentTokenFile, 'old-agent-token-8888\n');
    const c = await runCollector('tokens', [`auth: { tokenFile: ${JSON.stringify(tokenFile)} }`], false);
    const [oldToken, newToken, none, wrong] = await Promise.all([
      runAgent('old', c.url, [`auth: { tokenFile: ${JSON.stringify(agentTokenFile)} }`]),
      runAgent('new', c.url, ['auth: { token: new-agent-token-9999 }']),
      runAgent('none', c.url, []),
      runAgent('wrong', c.url, ['auth: { token: old-agent-token-888 }']),
    ]);
    await delivered(c, oldToken, 'old', 5);
    await delivered(c, newToken, 'new', 7);
    const rejected = { metric: 'plumb_forward_dropped_total', labels: { kind: 'metrics', reason: 'rejected' } };
    await refused(c, none, 'none', rejected);
    await refused(c, wrong, 'wrong', rejected);
    const m = await collectorMetrics(c);
    expect(valueOf(m, 'plumb_ingest_rejected_total', { status: '401' })).toBeGreaterThanOrEqual(2);
    // what the agents posted with the tokens is all there is
    expect(samplesOf(m, 'sec_none_total')).toEqual([]);
    expect(samplesOf(m, 'sec_wrong_total')).toEqual([]);
    expect(valueOf(m, 'sec_old_total')).toBe(5);
    expect(valueOf(m, 'sec_new_total')).toBe(7);
  });
});

describe('agent → collector over TLS with the test CA', () => {
  it('an agent trusting the CA delivers; one that does not trust it gets nothing in', async () => {
    const c = await runCollector('tls', ['auth: { tokens: ["tls-agent-token-aaaa"] }', `tls: { cert: ${JSON.stringify(pki.serverCert)}, key: ${JSON.stringify(pki.serverKey)} }`], true);
    const [trusting, byName, untrusting] = await Promise.all([
      runAgent('trusting', c.url, ['auth: { token: tls-agent-token-aaaa }', `tls: { ca: ${JSON.stringify(pki.ca)} }`]),
      // the certificate names localhost too: the agent may check that name instead of the URL's host
      runAgent('byname', c.url, ['auth: { token: tls-agent-token-aaaa }', `tls: { ca: ${JSON.stringify(pki.ca)}, serverName: localhost }`]),
      runAgent('untrusting', c.url, ['auth: { token: tls-agent-token-aaaa }']),
    ]);
    await delivered(c, trusting, 'trusting', 3);
    await delivered(c, byName, 'byname', 4);
    await refused(c, untrusting, 'untrusting', { metric: 'plumb_forward_retries_total', labels: { kind: 'metrics' } });
  });
});

describe('agent → collector with mTLS (clientAuth: require)', () => {
  it('an agent with a client certificate from clientCa delivers; without one it is refused', async () => {
    const c = await runCollector('mtls', [`tls: { cert: ${JSON.stringify(pki.serverCert)}, key: ${JSON.stringify(pki.serverKey)}, clientCa: ${JSON.stringify(pki.ca)}, clientAuth: require }`], true);
    const [withCert, withoutCert, stranger] = await Promise.all([
      runAgent('withcert', c.url, [`tls: { ca: ${JSON.stringify(pki.ca)}, cert: ${JSON.stringify(pki.clientCert)}, key: ${JSON.stringify(pki.clientKey)} }`]),
      runAgent('withoutcert', c.url, [`tls: { ca: ${JSON.stringify(pki.ca)} }`]),
      runAgent('stranger', c.url, [`tls: { ca: ${JSON.stringify(pki.ca)}, cert: ${JSON.stringify(pki.rogueCert)}, key: ${JSON.stringify(pki.rogueKey)} }`]),
    ]);
    await delivered(c, withCert, 'withcert', 2);
    const rejected = { metric: 'plumb_forward_dropped_total', labels: { kind: 'metrics', reason: 'rejected' } };
    await refused(c, withoutCert, 'withoutcert', rejected);
    await refused(c, stranger, 'stranger', rejected);
    expect(valueOf(await collectorMetrics(c), 'plumb_ingest_rejected_total', { status: '401' })).toBeGreaterThanOrEqual(2);
  });
});
