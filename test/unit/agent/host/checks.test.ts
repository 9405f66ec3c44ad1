/** Service checks against real local servers: HTTP, HTTPS with a self-signed certificate, TCP. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CHECK_CRITICAL,
  CHECK_OK,
  ServiceChecker,
  ServiceChecksSchema,
  checkSamples,
  serviceCheckStatuses,
  type CheckResult,
} from '../../../../agent/host/index.ts';
import { ConfigError, loadConfig } from '../../../../shared/config.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { waitFor } from '../../../helpers/wait.ts';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

let http: Server;
let base: string;
/** Requests to /hold wait here until the test lets them go. */
const held: ServerResponse[] = [];
let holdArrived = 0;

function route(req: IncomingMessage, res: ServerResponse): void {
  switch (req.url) {
    case '/ok':
      res.end('plumb says hello');
      return;
    case '/broken':
      res.statusCode = 500;
      res.end('internal error');
      return;
    case '/moved':
      res.writeHead(302, { location: '/ok' }).end();
      return;
    case '/echo-header':
      res.end(`token=${req.headers['x-token'] ?? ''} method=${req.method}`);
      return;
    case '/hold':
      holdArrived++;
      held.push(res);
      res.on('close', () => {
        const i = held.indexOf(res);
        if (i >= 0) held.splice(i, 1);
      });
      return;
    default:
      res.statusCode = 404;
      res.end();
  }
}

function release(): void {
  for (const res of held.splice(0)) if (!res.writableEnded) res.end('late but fine');
}

function checker(yaml: string, telemetry = new Telemetry()): ServiceChecker {
  return new ServiceChecker(loadConfig(ServiceChecksSchema, { text: yaml }), { telemetry, log: silentLogger() });
}

function httpCheck(name: string, path: string, extra = ''): string {
  return `  - name: ${name}\n    type: http\n    url: ${base}${path}\n${extra
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => `    ${l}\n`)
    .join('')}`;
}

async function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  http = createServer(route);
  base = `http://127.0.0.1:${await listen(http)}`;
});

afterAll(async () => {
  release();
  http.closeAllConnections();
  await new Promise((r) => http.close(r));
});

describe('ServiceChecker, HTTP', () => {
  it('reports up, a 500, a wrong body and a timeout', async () => {
    const telemetry = new Telemetry();
    const c = checker(
      `timeout: 5s\nchecks:\n${httpCheck('ok', '/ok', 'bodyMatch: "says h[a-z]+"')}${httpCheck('broken', '/broken')}${httpCheck('wrong-body', '/ok', 'bodyMatch: goodbye')}${httpCheck('slow', '/hold', 'timeout: 2s')}`,
      telemetry,
    );
    const arrivedBefore = holdArrived;
    const results = await c.run();
    expect(holdArrived).toBe(arrivedBefore + 1);
    const byName = new Map(results.map((r) => [r.check, r]));
    expect(results.map((r) => r.check)).toEqual(['ok', 'broken', 'wrong-body', 'slow']);

    expect(byName.get('ok')).toMatchObject({ kind: 'http', up: true, status: 200 });
    expect(byName.get('ok')!.error).toBeUndefined();
    expect(byName.get('ok')!.certDaysLeft).toBeUndefined();
    expect(byName.get('ok')!.latencyMs).toBeGreaterThan(0);
    expect(byName.get('broken')).toMatchObject({ up: false, status: 500, error: 'status' });
    expect(byName.get('wrong-body')).toMatchObject({ up: false, status: 200, error: 'body' });
    expect(byName.get('slow')).toMatchObject({ up: false, error: 'timeout' });
    expect(byName.get('slow')!.status).toBeUndefined();

    const runs = await telemetry.registry.getSingleMetric('plumb_check_runs_total')!.get();
    const counts = Object.fromEntries(runs.values.map((v) => [`${v.labels.kind}:${v.labels.result}`, v.value]));
    expect(counts).toEqual({ 'http:up': 1, 'http:status': 1, 'http:body': 1, 'http:timeout': 1 });
  });

  it('probes every check at the same time', async () => {
    const c = checker(`timeout: 30s\nchecks:\n${httpCheck('hold-a', '/hold')}${httpCheck('hold-b', '/hold')}${httpCheck('ok', '/ok')}`);
    const running = c.run();
    // Run one after the other, the second request could not arrive before the first was answered.
    await waitFor(() => held.length === 2, { what: 'both held requests at the server together' });
    release();
    expect((await running).map((r) => [r.check, r.up])).toEqual([
      ['hold-a', true],
      ['hold-b', true],
      ['ok', true],
    ]);
  });

  it('sends the configured method, headers and body, and honours expectStatus', async () => {
    const results = await checker(
      `checks:\n${httpCheck('headers', '/echo-header', 'method: POST\nbody: "{}"\nheaders: { x-token: s3cret }\nbodyMatch: "^token=s3cret method=POST$"')}${httpCheck('redirect-ok', '/moved')}${httpCheck('redirect-strict', '/moved', 'expectStatus: [200]')}${httpCheck('want-500', '/broken', 'expectStatus: ["5xx"]')}`,
    ).run();
    expect(results.map((r) => [r.check, r.up, r.status])).toEqual([
      ['headers', true, 200],
      ['redirect-ok', true, 302],
      ['redirect-strict', false, 302],
      ['want-500', true, 500],
    ]);
  });

  it('delivers a fast result while a slow check is still waiting for its answer', async () => {
    const c = checker(`checks:\n${httpCheck('fast', '/ok', 'interval: 1h')}${httpCheck('patient', '/hold', 'timeout: 1m\ninterval: 1h')}`);
    const got: CheckResult[] = [];
    const arrivedBefore = holdArrived;
    c.start((results) => got.push(...results));
    try {
      await waitFor(() => got.some((r) => r.check === 'fast') && holdArrived > arrivedBefore, { what: 'the fast result and the slow request' });
      // The slow target has the request and has not answered: its result cannot exist yet.
      expect(got.map((r) => r.check)).toEqual(['fast']);
      release();
      await waitFor(() => got.some((r) => r.check === 'patient'), { what: 'the slow result' });
      expect(got.find((r) => r.check === 'patient')).toMatchObject({ up: true, status: 200 });
    } finally {
      await c.stop();
    }
  });

  it('reports a refused connection', async () => {
    const port = await closedPort();
    const [r] = await checker(`checks:\n  - { name: gone, type: http, url: "http://127.0.0.1:${port}/" }`).run();
    expect(r).toMatchObject({ up: false, error: 'refused' });
  });
});

describe.skipIf(!hasOpenssl)('ServiceChecker, HTTPS (self-signed certificate made with openssl)', () => {
  let dir: string;
  let server: ReturnType<typeof createHttpsServer>;
  let url: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'plumb-tls-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=localhost'], {
      stdio: 'ignore',
    });
    server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (_req, res) => res.end('secure hello'));
    url = `https://127.0.0.1:${await listen(server as unknown as Server)}/`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads the days left on the certificate, and refuses it when verification is on', async () => {
    const results = await checker(
      `checks:
  - { name: unverified, type: http, url: "${url}", tlsVerify: false, bodyMatch: secure }
  - { name: verified, type: http, url: "${url}" }
  - { name: expiring, type: http, url: "${url}", tlsVerify: false, certMinDays: 60 }`,
    ).run();
    const [unverified, verified, expiring] = results;
    expect(unverified).toMatchObject({ up: true, status: 200 });
    // Made a moment ago for 30 days.
    expect(unverified.certDaysLeft).toBeGreaterThan(29.9);
    expect(unverified.certDaysLeft).toBeLessThanOrEqual(30);
    expect(verified).toMatchObject({ up: false, error: 'tls' });
    expect(expiring).toMatchObject({ up: false, error: 'cert_expiring', status: 200 });

    const samples = checkSamples(results, 'web-1');
    const days = samples.filter((s) => s.name === 'plumb.check.cert_days_left').map((s) => s.tags.find((t) => t.startsWith('check:')));
    expect(days).toEqual(['check:unverified', 'check:expiring']);
  });
});

describe('ServiceChecker, TCP', () => {
  it('is up on a listening port and refused on a closed one', async () => {
    const open = createTcpServer((s) => s.end());
    const openPort = await listen(open);
    const closed = await closedPort();
    try {
      const [up, down] = await checker(`checks:
  - { name: open, type: tcp, host: 127.0.0.1, port: ${openPort}, timeout: 5s }
  - { name: closed, type: tcp, host: 127.0.0.1, port: ${closed}, timeout: 5s }`).run();
      expect(up).toMatchObject({ check: 'open', kind: 'tcp', up: true });
      expect(up.latencyMs).toBeGreaterThan(0);
      expect(down).toMatchObject({ check: 'closed', kind: 'tcp', up: false, error: 'refused' });
    } finally {
      await new Promise((r) => open.close(r));
    }
  });
});

describe('check results as samples and service checks', () => {
  const results: CheckResult[] = [
    { check: 'api', kind: 'http', up: true, latencyMs: 12.5, status: 200, certDaysLeft: 40, tags: ['team:web'] },
    { check: 'api-500', kind: 'http', up: false, latencyMs: 3, status: 500, error: 'status', message: 'status 500, expected 2xx' },
    { check: 'db', kind: 'tcp', up: false, latencyMs: 5000, error: 'timeout', message: 'no answer within 5000ms' },
  ];

  it('become gauges tagged with host and check; latency only where the target answered', () => {
    const samples = checkSamples(results, 'web-1');
    expect(samples).toEqual([
      { name: 'plumb.check.up', type: 'g', value: 1, tags: ['host:web-1', 'check:api', 'kind:http', 'team:web'] },
      { name: 'plumb.check.latency_ms', type: 'g', value: 12.5, tags: ['host:web-1', 'check:api', 'kind:http', 'team:web'] },
      { name: 'plumb.check.cert_days_left', type: 'g', value: 40, tags: ['host:web-1', 'check:api', 'kind:http', 'team:web'] },
      { name: 'plumb.check.up', type: 'g', value: 0, tags: ['host:web-1', 'check:api-500', 'kind:http'] },
      { name: 'plumb.check.latency_ms', type: 'g', value: 3, tags: ['host:web-1', 'check:api-500', 'kind:http'] },
      { name: 'plumb.check.up', type: 'g', value: 0, tags: ['host:web-1', 'check:db', 'kind:tcp'] },
    ]);
  });

  it('become service checks: OK, or CRITICAL with the reason', () => {
    const statuses = serviceCheckStatuses(results, 'web-1', 1_700_000_000_500);
    expect(statuses.map((s) => [s.status, s.message])).toEqual([
      [CHECK_OK, null],
      [CHECK_CRITICAL, 'status: status 500, expected 2xx'],
      [CHECK_CRITICAL, 'timeout: no answer within 5000ms'],
    ]);
    expect(statuses[0]).toEqual({ name: 'plumb.check', status: 0, timestamp: 1_700_000_000, hostname: 'web-1', tags: ['check:api', 'kind:http', 'team:web'], message: null });
  });
});

describe('ServiceChecksSchema and its rules', () => {
  it('rejects unknown keys with the path', () => {
    expect(() => loadConfig(ServiceChecksSchema, { text: 'checks:\n  - { name: a, type: tcp, host: x, port: 1, tiemout: 1s }' })).toThrow(/checks\[0\]\.tiemout: unknown key \(did you mean "timeout"\?\)/);
  });

  it('reports every cross-key problem at once', () => {
    const config = loadConfig(ServiceChecksSchema, {
      text: `maxChecks: 3
checks:
  - { name: a, type: http }
  - { name: a, type: tcp, host: db }
  - { name: b, type: http, url: "http://x/", bodyMatch: "(" }
  - { name: c, type: tcp, host: db, port: 5432, timeout: 1m, interval: 10s }`,
    });
    let err: unknown;
    try {
      new ServiceChecker(config, { telemetry: new Telemetry(), log: silentLogger() });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const errors = (err as ConfigError).errors;
    expect(errors).toHaveLength(6);
    expect(errors[0]).toMatch(/^checks\.checks: 4 checks configured, more than maxChecks \(3\)/);
    expect(errors.slice(1).map((e) => e.slice(0, e.indexOf(':')))).toEqual(['checks.checks[0].url', 'checks.checks[1].name', 'checks.checks[1].port', 'checks.checks[2].bodyMatch', 'checks.checks[3].timeout']);
  });
});

/** A port nothing listens on: bind one, then close it. */
async function closedPort(): Promise<number> {
  const s = createTcpServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}
