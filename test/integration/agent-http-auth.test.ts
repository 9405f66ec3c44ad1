/**
 * The agent's API and console (status, the live tap of event content, the grok debugger) need a
 * token when agent.http.auth names one; /metrics and the probes stay open for scrapers and the
 * kubelet. Without agent.http.auth the port is open, as its default loopback listener is.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runPlumb, startAgent, startCollector, stopAllInProcess } from '../helpers/processes.ts';

const TOKEN = 'agent-http-token-7d2e';

afterAll(async () => {
  await stopAllInProcess();
});

describe('agent.http.auth', () => {
  it('guards /api/v1 and /ui with the token, leaves /metrics and the probes open', async () => {
    const collector = await startCollector('collector:\n  listen: "127.0.0.1:0"\n');
    const { url } = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0", auth: { tokens: ["${TOKEN}"] } }
  statsd: { listen: "127.0.0.1:0" }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"] }
`);
    const get = (path: string, token?: string) => fetch(new URL(path, url), { headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, redirect: 'manual' });
    for (const open of ['/metrics', '/healthz', '/readyz']) expect((await get(open)).status, open).toBe(200);
    const refused = await get('/api/v1/status');
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await refused.json()) as { message: string }).message).toMatch(/agent\.http\.auth/);
    expect((await get('/api/v1/status', 'wrong')).status).toBe(401);
    expect((await get('/api/v1/tap?component=statsd&limit=1', 'wrong')).status).toBe(401);
    const ok = await get('/api/v1/status', TOKEN);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { role: string }).role).toBe('agent');
    // a browser without the token is sent to the login form
    const page = await get('/ui/');
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toMatch(/^\/ui\/login/);
    // plumb status reaches it with the token, and says why it cannot without
    const without = await runPlumb(['status', '--url', url]);
    expect(without.code).toBe(2);
    const withToken = await runPlumb(['status', '--url', url], { env: { PLUMB_TOKEN: TOKEN } });
    expect(withToken.code, withToken.stderr).not.toBe(2);
  });

  it('check-config refuses a token file that is not there', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plumb-agent-auth-'));
    const file = join(dir, 'plumb.yaml');
    await writeFile(file, 'agent:\n  http: { auth: { tokenFile: /nonexistent/plumb-token } }\n');
    const r = await runPlumb(['check-config', file]);
    await rm(dir, { recursive: true, force: true });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/agent\.http\.auth\.tokenFile: .*cannot read "\/nonexistent\/plumb-token"/);
  });
});
