/**
 * `plumb check-config` tells the truth, through the command as users run it: one case per
 * message. Token and TLS files that are missing, unreadable or empty, an unset or empty
 * tokensEnv, and a collector open to other hosts because every token source is empty all fail
 * (not only at start); --offline skips what only this machine can answer. Every error is
 * reported at once: schema errors do not hide semantic ones, and every mistake of a rule file
 * is listed. Unions say what they accept; durations refuse 0 and say that a bare number is
 * milliseconds.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPlumb } from '../helpers/processes.ts';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plumb-check-config-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function check(name: string, yaml: string, options: { env?: Record<string, string>; args?: string[] } = {}): Promise<{ code: number | null; lines: string[] }> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, yaml);
  const r = await runPlumb(['check-config', ...(options.args ?? []), file], { env: options.env });
  return { code: r.code, lines: r.stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '') };
}

describe('plumb check-config: files and variables the config names', () => {
  it('a missing token file', async () => {
    const r = await check('missing-token', `collector:\n  auth: { tokenFile: ${JSON.stringify(join(dir, 'nope'))} }\n`);
    expect(r.code).toBe(1);
    expect(r.lines).toContain(`collector.auth.tokenFile: PLUMB_ERR_SECRET_READ: cannot read ${JSON.stringify(join(dir, 'nope'))} (ENOENT)`);
  });

  it('an unreadable token file', async () => {
    const path = join(dir, 'a-directory');
    await mkdir(path, { recursive: true });
    const r = await check('unreadable-token', `collector:\n  auth: { tokenFile: ${JSON.stringify(path)} }\n`);
    expect(r.code).toBe(1);
    expect(r.lines).toContain(`collector.auth.tokenFile: PLUMB_ERR_SECRET_READ: cannot read ${JSON.stringify(path)} (EISDIR)`);
  });

  it('an empty token file, and the open collector it would make', async () => {
    const path = join(dir, 'empty-token');
    await writeFile(path, '# no token yet\n\n');
    const r = await check('empty-token', `collector:\n  listen: "0.0.0.0:9102"\n  auth: { tokenFile: ${JSON.stringify(path)} }\n`);
    expect(r.code).toBe(1);
    expect(r.lines).toContain(`collector.auth.tokenFile: ${JSON.stringify(path)} holds no token (one per line; # starts a comment)`);
    expect(r.lines).toContain(
      'collector.listen: PLUMB_ERR_INSECURE: every token source is empty, so 0.0.0.0:9102 would be reachable from other hosts with nothing authenticating its callers; put a token in one, listen on loopback, or set collector.insecure: true',
    );
  });

  it('tokensEnv naming a variable that is not set, or is empty', async () => {
    const yaml = 'collector:\n  listen: "0.0.0.0:9102"\n  auth: { tokensEnv: COLLECTOR_TEST_TOKENS }\n';
    const unset = await check('tokens-env-unset', yaml);
    expect(unset.code).toBe(1);
    expect(unset.lines).toContain('collector.auth.tokensEnv: the environment variable COLLECTOR_TEST_TOKENS is not set (it must hold comma-separated tokens)');
    expect(unset.lines.some((l) => l.startsWith('collector.listen: PLUMB_ERR_INSECURE: every token source is empty'))).toBe(true);
    const empty = await check('tokens-env-empty', yaml, { env: { COLLECTOR_TEST_TOKENS: ' , ' } });
    expect(empty.lines).toContain('collector.auth.tokensEnv: the environment variable COLLECTOR_TEST_TOKENS is empty (it must hold comma-separated tokens)');
    const set = await check('tokens-env-set', yaml, { env: { COLLECTOR_TEST_TOKENS: 'a-token' } });
    expect(set.code, set.lines.join('\n')).toBe(0);
  });

  it('missing TLS files, and TLS files that cannot be used', async () => {
    const missing = await check('tls-missing', `collector:\n  tls: { cert: ${JSON.stringify(join(dir, 'c.pem'))}, key: ${JSON.stringify(join(dir, 'k.pem'))} }\n`);
    expect(missing.code).toBe(1);
    expect(missing.lines).toContain(`collector.tls.cert: PLUMB_ERR_SECRET_READ: cannot read ${JSON.stringify(join(dir, 'c.pem'))} (ENOENT)`);
    expect(missing.lines).toContain(`collector.tls.key: PLUMB_ERR_SECRET_READ: cannot read ${JSON.stringify(join(dir, 'k.pem'))} (ENOENT)`);
    await writeFile(join(dir, 'junk.pem'), 'not a certificate\n');
    const junk = await check('tls-junk', `collector:\n  tls: { cert: ${JSON.stringify(join(dir, 'junk.pem'))}, key: ${JSON.stringify(join(dir, 'junk.pem'))} }\n`);
    expect(junk.code).toBe(1);
    expect(junk.lines.some((l) => l.startsWith('collector.tls: PLUMB_ERR_SECRET_READ: the certificate') && l.includes('cannot be used'))).toBe(true);
  });

  it("the agent's token and TLS files for the collectors", async () => {
    const r = await check('agent-files', `agent:\n  forward:\n    auth: { tokenFile: ${JSON.stringify(join(dir, 'agent-token'))} }\n    tls: { ca: ${JSON.stringify(join(dir, 'ca.pem'))} }\n`);
    expect(r.code).toBe(1);
    expect(r.lines).toContain(`agent.forward.auth.tokenFile: PLUMB_ERR_SECRET_READ: cannot read ${JSON.stringify(join(dir, 'agent-token'))} (ENOENT)`);
    expect(r.lines).toContain(`agent.forward.tls.ca: PLUMB_ERR_SECRET_READ: cannot read ${JSON.stringify(join(dir, 'ca.pem'))} (ENOENT)`);
  });

  it('--offline checks a config meant for another machine without its files', async () => {
    const r = await check('offline', `collector:\n  listen: "0.0.0.0:9102"\n  auth: { tokenFile: /etc/plumb-secrets/token-of-another-machine }\n`, { args: ['--offline'] });
    expect(r.code, r.lines.join('\n')).toBe(0);
  });
});

describe('plumb check-config: every error at once, each saying what is expected', () => {
  it('a schema error does not hide a semantic one, nor one file error another', async () => {
    const rules = join(dir, 'rules.yaml');
    await writeFile(rules, 'rules:\n  - alert: A\n    metric: x\n    aggregate: p99\n    window: 5m\n    op: ">>"\n    threshold: 1\n    fro: 5m\n  - alert: B\n    metric: y\n    aggregate: bogus\n    window: 5m\n    op: ">"\n    threshold: abc\n');
    const r = await check('all-at-once', `collector:\n  metrics:\n    maxSerie: 5\n    mappings:\n      - { match: "a.*", name: "x-y" }\n  alerts: { rulesFile: ${JSON.stringify(rules)} }\n`);
    expect(r.code).toBe(1);
    expect(r.lines).toContain('collector.metrics.maxSerie: unknown key (did you mean "maxSeries"?)');
    expect(r.lines).toContain('collector.metrics.mappings[0].name: "x-y" cannot become a Prometheus metric name');
    expect(r.lines).toContain(`${rules}: rule "A" (rules[0], line 6): op: expected one of > >= < <= == != (got ">>")`);
    expect(r.lines).toContain(`${rules}: rule "A" (rules[0], line 8): fro: unknown key (did you mean "for"?)`);
    expect(r.lines.filter((l) => l.startsWith(`${rules}: rule "B"`))).toHaveLength(2);
    expect(r.lines[0]).toMatch(/: 6 configuration error\(s\):$/);
  });

  it('a union says what it accepts, not "expected union value"', async () => {
    const r = await check('unions', 'log: { level: loud }\nagent:\n  statsd: { tcp: 5 }\n');
    expect(r.lines).toContain('log.level: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent" (got "loud")');
    expect(r.lines).toContain('agent.statsd.tcp: expected null, or host:port like "127.0.0.1:8125" (got 5)');
    expect(r.lines.join('\n')).not.toMatch(/union value/);
  });

  it('a duration refuses 0 and says that a bare number is milliseconds', async () => {
    const zero = await check('duration-zero', 'agent:\n  statsd: { flushInterval: 0s }\n  forward: { timeout: 0 }\n');
    expect(zero.lines).toContain('agent.statsd.flushInterval: expected a duration above 0 like "10s", "5m" or "1h" (a bare number is milliseconds) (got "0s")');
    expect(zero.lines).toContain('agent.forward.timeout: expected a duration above 0 like "10s", "5m" or "1h" (a bare number is milliseconds) (got 0)');
    const bare = await check('duration-bare', 'agent:\n  statsd: { flushInterval: 1500 }\n');
    expect(bare.code, bare.lines.join('\n')).toBe(0);
  });
});
