/**
 * The agent side of collector auth and TLS: the bearer token on every request, a custom CA
 * trusted (and nothing else), and clear errors for credentials that cannot be read.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import os from 'node:os';
import { Forwarder } from '../../../../agent/forward/forwarder.ts';
import { Connection, loadToken } from '../../../../agent/forward/connection.ts';
import { findBinary } from '../../../helpers/prometheus.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { metricValue } from '../../../helpers/metrics.ts';
import { waitFor } from '../../../helpers/wait.ts';

const OPENSSL = findBinary('openssl');
const dir = mkdtempSync(join(os.tmpdir(), 'plumb-tls-'));
const file = (name: string) => join(dir, name);

function openssl(args: string[]): void {
  execFileSync(OPENSSL as string, args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, a server certificate it signed for 127.0.0.1/localhost, and an unrelated CA. */
function makeCertificates(): void {
  for (const ca of ['ca', 'other-ca']) {
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '2', '-subj', `/CN=plumb test ${ca}`]);
  }
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=collector.test']);
  writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:collector.test\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext']);
}

interface Seen {
  authorization: string | undefined;
  batchId: string | undefined;
}

let server: https.Server;
let url = '';
const seen: Seen[] = [];
const forwarders: Forwarder[] = [];

beforeAll(async () => {
  if (!OPENSSL) return;
  makeCertificates();
  server = https.createServer({ cert: readFileSync(file('server.pem')), key: readFileSync(file('server.key')) }, (req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST') seen.push({ authorization: req.headers.authorization, batchId: req.headers['x-plumb-batch-id'] as string | undefined });
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const f of forwarders.splice(0)) await f.stop(100);
  seen.length = 0;
});

afterAll(async () => {
  if (server) {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  rmSync(dir, { recursive: true, force: true });
});

function forwarder(collectors: string[], over: { auth?: { token?: string; tokenFile?: string }; tls?: { ca?: string; serverName?: string } }) {
  const telemetry = new Telemetry();
  const f = new Forwarder(
    { collectors, timeoutMs: 2000, maxQueueBytes: 1 << 20, maxQueueBatches: 10, backoff: { initialMs: 10, maxMs: 50 }, compress: true, ...over },
    { telemetry, log: silentLogger() },
  );
  forwarders.push(f);
  return { f, telemetry };
}

describe.skipIf(!OPENSSL)('forwarder over TLS', () => {
  it('trusts a collector certificate signed by agent.forward.tls.ca and sends the bearer token from tokenFile', async () => {
    writeFileSync(file('token'), '  s3cret-token\n');
    const { f } = forwarder([url], { auth: { tokenFile: file('token') }, tls: { ca: file('ca.pem') } });
    await f.start();
    await f.send('metrics', '/v1/metrics', 'over-tls', { x: 1 });
    await waitFor(() => seen.length === 1);
    expect(seen[0]).toEqual({ authorization: 'Bearer s3cret-token', batchId: 'over-tls' });
  });

  it('verifies the certificate against serverName when the URL host differs', async () => {
    const { f } = forwarder([url], { auth: { token: 'abc' }, tls: { ca: file('ca.pem'), serverName: 'collector.test' } });
    await f.start();
    await f.send('traces', '/v1/traces', 'named', {});
    await waitFor(() => seen.length === 1);
    expect(seen[0].authorization).toBe('Bearer abc');
  });

  it('refuses a collector whose certificate another CA signed: nothing is sent, the failure is retried', async () => {
    const { f, telemetry } = forwarder([url], { tls: { ca: file('other-ca.pem') } });
    await f.start();
    await f.send('metrics', '/v1/metrics', 'untrusted', {});
    await waitFor(async () => (await metricValue(telemetry.registry, 'plumb_forward_retries_total', { kind: 'metrics', reason: 'network' })) >= 2);
    expect(seen).toEqual([]);
  });
});

describe('forwarder credentials', () => {
  it('names the key when the token file is missing or empty', () => {
    expect(() => loadToken({ tokenFile: join(dir, 'no-such-token') })).toThrow(/agent\.forward\.auth\.tokenFile: cannot read .*no-such-token \(ENOENT\)/);
    writeFileSync(file('empty-token'), '\n  \n');
    expect(() => loadToken({ tokenFile: file('empty-token') })).toThrow(/agent\.forward\.auth\.tokenFile: .*empty-token is empty/);
    expect(() => loadToken({ token: 'a', tokenFile: file('empty-token') })).toThrow(/agent\.forward\.auth: set token or tokenFile, not both/);
  });

  it('never puts the token in an error message', () => {
    writeFileSync(file('two-words'), 'secret-part other-part\n');
    let message = '';
    try {
      loadToken({ tokenFile: file('two-words') });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/agent\.forward\.auth\.tokenFile/);
    expect(message).not.toContain('secret-part');
  });

  it('reports credential files with PLUMB_ERR_SECRET_READ, and a file that is not PEM at start', () => {
    const codeOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return (err as { code?: string }).code;
      }
      return undefined;
    };
    expect(codeOf(() => loadToken({ tokenFile: join(dir, 'no-such-token') }))).toBe('PLUMB_ERR_SECRET_READ');
    writeFileSync(file('not-pem.pem'), 'hello\n');
    expect(() => new Connection({ tls: { ca: file('not-pem.pem') } })).toThrow(/agent\.forward\.tls: the CA, certificate or key cannot be used/);
    expect(codeOf(() => new Connection({ tls: { ca: file('not-pem.pem') } }))).toBe('PLUMB_ERR_SECRET_READ');
  });

  it('names the key of a TLS file that cannot be read, and wants cert and key together', () => {
    expect(() => new Connection({ tls: { ca: join(dir, 'missing-ca.pem') } })).toThrow(/agent\.forward\.tls\.ca: cannot read .*missing-ca\.pem \(ENOENT\)/);
    expect(() => new Connection({ tls: { cert: join(dir, 'x.pem') } })).toThrow(/agent\.forward\.tls\.key: a client certificate needs both tls\.cert and tls\.key/);
  });
});
