import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Membership, normalizeMember, ownerOf, parseMembersFile, rendezvousRank, type Resolve4 } from '../../../shared/membership.ts';
import { Telemetry } from '../../../shared/telemetry.ts';
import { waitFor } from '../../helpers/wait.ts';

const M = ['http://10.0.0.1:9102', 'http://10.0.0.2:9102', 'http://10.0.0.3:9102'];
const keys = Array.from({ length: 5000 }, (_, i) => `latency|route:/r${i % 37},pod:web-${i}`);

const running: Membership[] = [];
afterEach(async () => {
  for (const m of running.splice(0)) await m.stop();
});

function membership(...args: ConstructorParameters<typeof Membership>): Membership {
  const m = new Membership(...args);
  running.push(m);
  return m;
}

/** A DNS server in a function: answers what `records` holds now, or fails with `fail`. */
function fakeDns(records: Record<string, string[]>): Resolve4 & { calls: number; fail: string | null } {
  const fn = Object.assign(
    async (name: string): Promise<string[]> => {
      fn.calls++;
      if (fn.fail !== null) throw Object.assign(new Error(fn.fail), { code: fn.fail });
      const r = records[name];
      if (r === undefined) throw Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' });
      return [...r];
    },
    { calls: 0, fail: null as string | null },
  );
  return fn;
}

describe('rendezvous ranking', () => {
  it('ranks every member once, owner first, whatever the order of the list', () => {
    for (const k of keys.slice(0, 200)) {
      const r = rendezvousRank(k, M);
      expect([...r].sort()).toEqual(M);
      expect(r[0]).toBe(ownerOf(k, M));
      expect(rendezvousRank(k, [...M].reverse())).toEqual(r);
    }
  });

  it('is stable under membership change: the runner-up takes over when the owner leaves, other keys stay', () => {
    for (const k of keys) {
      const r = rendezvousRank(k, M);
      const without = M.filter((m) => m !== M[1]);
      const after = rendezvousRank(k, without);
      expect(after).toEqual(r.filter((m) => m !== M[1]));
    }
  });

  it('spreads owners evenly over three members', () => {
    const counts = new Map<string, number>();
    for (const k of keys) counts.set(ownerOf(k, M), (counts.get(ownerOf(k, M)) ?? 0) + 1);
    for (const m of M) expect(Math.abs((counts.get(m) ?? 0) - keys.length / 3)).toBeLessThan((keys.length / 3) * 0.08);
  });
});

describe('Membership', () => {
  it('static list: sorted and normalized members, owner and rank agree with the functions', async () => {
    const m = membership({ members: ['http://10.0.0.3:9102/', 'HTTP://10.0.0.1:9102', 'http://10.0.0.2:9102', 'http://10.0.0.1:9102'], interval: 1000, self: 'http://10.0.0.2:9102' });
    await m.start();
    expect(m.members()).toEqual(M);
    expect(m.self()).toBe('http://10.0.0.2:9102');
    expect(m.isMember()).toBe(true);
    for (const k of keys.slice(0, 100)) {
      expect(m.owner(k)).toBe(ownerOf(k, M));
      expect(m.rank(k)).toEqual(rendezvousRank(k, M));
      expect(m.owns(k)).toBe(ownerOf(k, M) === 'http://10.0.0.2:9102');
    }
  });

  it('DNS: one member per A record, re-read whole every interval; a failed read keeps the list, no answer empties it', async () => {
    const records: Record<string, string[]> = { 'plumb-collector-headless.plumb.svc': ['10.0.0.3', '10.0.0.1'] };
    const dns = fakeDns(records);
    const telemetry = new Telemetry();
    const m = membership({ dns: 'plumb-collector-headless.plumb.svc:9102', interval: 20, self: 'http://10.0.0.1:9102', resolve4: dns }, { telemetry });
    await m.start();
    expect(m.members()).toEqual(['http://10.0.0.1:9102', 'http://10.0.0.3:9102']);
    const owner = m.owner(keys[0]);

    records['plumb-collector-headless.plumb.svc'] = ['10.0.0.2', '10.0.0.1', '10.0.0.3'];
    await waitFor(() => m.members().length === 3, { what: 'the third A record to be read' });
    expect(m.members()).toEqual(M);
    // rank stability across the change: the key's owner is unchanged unless the new member took it
    expect([owner, 'http://10.0.0.2:9102']).toContain(m.owner(keys[0]));

    dns.fail = 'ETIMEOUT';
    const calls = dns.calls;
    await waitFor(() => dns.calls > calls + 2 && m.failures > 0, { what: 'failed reads' });
    expect(m.members()).toEqual(M);
    expect(m.lastError).toBe('ETIMEOUT');

    dns.fail = null;
    delete records['plumb-collector-headless.plumb.svc'];
    await waitFor(() => m.members().length === 0, { what: 'no ready pod: no members' });
    expect(m.owner('x')).toBeUndefined();
    expect(m.owns('x')).toBe(true);
    expect(m.isMember()).toBe(false);
    const text = await telemetry.metrics();
    expect(text).toMatch(/plumb_fleet_members 0/);
    expect(text).toMatch(/plumb_fleet_membership_changes_total [1-9]/);
    expect(text).toMatch(/plumb_fleet_membership_failures_total [1-9]/);
  });

  it('members file: re-read every interval; a collector left out of it owns nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plumb-members-'));
    try {
      const file = join(dir, 'members');
      writeFileSync(file, `# the fleet\n${M.join('\n')}\n`);
      const m = membership({ membersFile: file, interval: 20, self: M[2] });
      await m.start();
      expect(m.members()).toEqual(M);
      expect(keys.some((k) => m.owns(k))).toBe(true);
      writeFileSync(file, `${M[0]}\n${M[1]}\n`);
      await waitFor(() => m.members().length === 2, { what: 'the shorter list' });
      expect(m.isMember()).toBe(false);
      expect(keys.some((k) => m.owns(k))).toBe(false);
      rmSync(file);
      const failures = m.failures;
      await waitFor(() => m.failures > failures, { what: 'a failed read' });
      expect(m.members()).toEqual([M[0], M[1]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an ambiguous source and a malformed DNS target', () => {
    expect(() => new Membership({ members: M, dns: 'x:1', interval: 1 })).toThrow(/exactly one/);
    expect(() => new Membership({ interval: 1 })).toThrow(/exactly one/);
    expect(() => new Membership({ dns: 'no-port', interval: 1 })).toThrow(/name:port/);
  });

  it('parses members files and normalizes URLs', () => {
    expect(parseMembersFile('a\n\n # c\nb # d\r\n')).toEqual(['a', 'b']);
    expect(normalizeMember('HTTPS://Host:443/')).toBe('https://host');
    expect(normalizeMember('http://h:9102/x')).toBe('http://h:9102');
  });
});
