/**
 * Liveness across a fleet of collectors (collector/alerts/fleet.ts, RulePeers): each member's
 * probe stands alone, so a member slow to answer its probe does not hide another member's death.
 * Three members over real HTTP: the rule's owner (answers, then dies: its port refuses), this
 * engine (ranked second: the runner-up) and a third member whose /readyz never answers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { rendezvousRank } from '../../../../shared/membership.ts';
import { RulePeers, RULES_STATE_PATH } from '../../../../collector/alerts/fleet.ts';
import { waitFor } from '../../../helpers/wait.ts';
import { harness } from './harness.ts';

const RULES = `
rules:
  - alert: DepthHigh
    metric: queue.depth
    aggregate: last
    window: 10s
    op: ">"
    threshold: 10
`;

const PROBE_TIMEOUT = 8000;

interface Member {
  url: string;
  server: http.Server;
  /** self: never probed; owner: answers until its server closes; slow: never answers /readyz. */
  role: 'owner' | 'self' | 'slow';
  probes: number;
}

const servers: http.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function member(): Promise<Member> {
  const m = { url: '', role: 'self', probes: 0 } as Member;
  m.server = http.createServer((req, res) => {
    if (req.url === '/readyz') {
      m.probes++;
      if (m.role === 'slow') return; // never answered: the prober gives up at its deadline
      res.end('{"status":"ready"}');
      return;
    }
    // as the rule's owner, the engine asks the live members for their copies of its state, then for their data
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(req.url === RULES_STATE_PATH ? '{"groups":[]}' : '{"coverage":{"since":0,"resumedAt":0,"bridge":0},"partials":[]}');
  });
  servers.push(m.server);
  await new Promise<void>((r) => m.server.listen(0, '127.0.0.1', r));
  m.url = `http://127.0.0.1:${(m.server.address() as AddressInfo).port}`;
  return m;
}

describe('rule peers: liveness probes', () => {
  it("a dead owner is seen at the runner-up's next rounds while another member's probe still waits for its deadline", async () => {
    const { engine, clock } = harness(RULES, { config: { evaluationInterval: '200ms' }, start: Date.now() });
    const all = [await member(), await member(), await member()];
    const members = all.map((m) => m.url);
    const key = (engine.fleetRules().rules as { key: string }[])[0].key;
    const [owner, self, slow] = rendezvousRank(key, members).map((url) => all.find((m) => m.url === url)!);
    owner.role = 'owner';
    slow.role = 'slow';
    // this engine is `self`: nobody probes it
    self.server.close();
    const peers = new RulePeers({ token: undefined, timeout: 1000, probeTimeout: PROBE_TIMEOUT });
    engine.attachFleet({ members: () => members, self: () => self.url, rank: (k) => rendezvousRank(k, members) }, peers);
    engine.fleetReady();
    clock.t += 1000;
    const owned = (): boolean => (engine.fleetRules().rules as { owned: boolean }[])[0].owned;
    const round = async (): Promise<void> => {
      clock.t += 200;
      await engine.evaluateRound(clock.t);
    };
    // Well inside the slow member's probe deadline: each wait below would last that long if every
    // probe waited for the slowest one.
    const within = { timeoutMs: PROBE_TIMEOUT / 4, intervalMs: 0 };

    // the owner answers its probes round after round while the slow member's first probe waits
    await waitFor(async () => (await round(), owner.probes >= 2), { ...within, what: 'the owner probed again while the slow member has not answered' });
    expect(owned()).toBe(false);

    // the owner dies: its port refuses from now on
    owner.server.closeAllConnections();
    await new Promise((r) => owner.server.close(r));
    await waitFor(async () => (await round(), owned()), { ...within, what: 'the runner-up to own the rule' });
    expect(peers.downMembers().map((d) => d.member)).toEqual([owner.url]);
    // the slow member was not asked again while its probe waited, and is still up (one timeout is not three)
    expect(slow.probes).toBe(1);
    expect(peers.isUp(slow.url)).toBe(true);

    slow.server.closeAllConnections();
    await engine.stop(1000);
  });
});
