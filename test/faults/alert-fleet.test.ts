/**
 * Alert rules over a fleet of three collectors (static member list, shared token, rules
 * evaluated every 200 ms), with series posted straight to the collector that is to hold them:
 *
 * - a ratio rule whose numerator lives on one collector and denominator on another fires when
 *   the merged ratio crosses its threshold, and not before; an `absent` rule whose series lives
 *   on a collector other than the rule's owner does not fire, and fires once the series stops
 *   everywhere; each notification exactly once, from the owner alone;
 * - the collector owning a rule is killed (kill -9) while the rule is pending: the runner-up takes
 *   it over with its pending state and it fires at the moment it would have without the kill
 *   (± one evaluation interval), exactly once at the webhook.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFile } from 'node:fs/promises';
import { collectorRole, faultRun, freeTcpPort, report, waitFor, type FaultRun, type Role } from './harness.ts';
import { MetricPoster, counter, gauge } from '../helpers/metric-poster.ts';
import { scrape } from '../helpers/prometheus.ts';
import { startWebhookServer, type WebhookServer } from '../helpers/webhook-server.ts';
import { sumOf } from './harness.ts';
import { ownerOf, rendezvousRank, seriesKey } from '../../shared/membership.ts';

const TOKEN = 'fleet-secret-for-tests';
const INTERVAL = 200;
/**
 * A test's own deadline: the sum of the waits it allows itself (three cold starts 45 s, the fleet
 * agreeing 15 s, then about a minute of its own waits at most), not vitest's 60 s default, which
 * three cold starts on a loaded two-core machine can use up before the test begins.
 */
const TEST_TIMEOUT = 120_000;

let run: FaultRun;
afterEach(async () => {
  await run?.cleanup();
});

interface FleetRule {
  name: string;
  key: string;
  owner: string | null;
  runnerUp: string | null;
  owned: boolean;
}

interface FleetRules {
  rules: FleetRule[];
  takeovers: number;
  owned: number;
  down: { member: string; since: string }[];
}

async function fleetRules(role: Role): Promise<FleetRules> {
  const res = await fetch(`${role.url}/api/v1/fleet/rules`, { signal: AbortSignal.timeout(2000) });
  return (await res.json()) as FleetRules;
}

async function alerts(role: Role): Promise<{ labels: Record<string, string>; state: string; activeAt: string }[]> {
  const res = await fetch(`${role.url}/api/v1/alerts`, { signal: AbortSignal.timeout(2000) });
  return ((await res.json()) as { data: { alerts: { labels: Record<string, string>; state: string; activeAt: string }[] } }).data.alerts;
}

/** Three collectors knowing each other, all with `rules` and one webhook. */
async function fleet(rules: string, hook: WebhookServer): Promise<Role[]> {
  const rulesFile = run.path('rules.yaml');
  await writeFile(rulesFile, rules);
  const ports = [await freeTcpPort(), await freeTcpPort(), await freeTcpPort()];
  const members = ports.map((p) => `http://127.0.0.1:${p}`);
  const roles: Role[] = [];
  for (const [i, port] of ports.entries()) {
    roles.push(
      await collectorRole(run, {
        name: `collector-${i}`,
        port,
        config: {
          fleet: { members, token: TOKEN, interval: '1s' },
          alerts: { rulesFile, evaluationInterval: `${INTERVAL}ms`, resolution: '1s', watch: false, webhooks: [{ url: hook.url }], externalUrl: `http://collector-${i}` },
        },
        start: false,
      }),
    );
  }
  // three cold starts at once on a small, busy machine: a longer start deadline than one start needs
  await Promise.all(
    roles.map(async (r) => {
      try {
        await r.start(45_000);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${r.output().slice(-3000)}`, { cause: err });
      }
    }),
  );
  // Every collector sees the other two up and names the same owner and runner-up for each rule,
  // the first two of its rendezvous order. Agreeing on the owners is not enough: a collector that
  // probed another before it listened holds it down until its next probe, and meanwhile names the
  // third collector as runner-up; a test that took that view would kill the owner and wait in vain
  // for the wrong collector to take over.
  const views = await waitFor(
    async () => {
      const all = await Promise.all(roles.map((r) => fleetRules(r)));
      const order = all.map((v) => v.rules.map((r) => `${r.owner} ${r.runnerUp}`).join(','));
      const settled = all.every((v) => v.down.length === 0) && order.every((o) => o === order[0]) && all.reduce((n, v) => n + v.owned, 0) === all[0].rules.length;
      return settled ? all : undefined;
    },
    { what: 'the three collectors to see each other up and agree on who owns each rule and who is runner-up', timeoutMs: 15_000 },
  );
  for (const r of views[0].rules) expect([r.owner, r.runnerUp], r.name).toEqual(rendezvousRank(r.key, members).slice(0, 2));
  return roles;
}

/**
 * Tags that put series `name` on collector `on`: the fleet merges each series on its rendezvous
 * owner (a batch posted elsewhere is forwarded there), so a test that wants a series on a given
 * collector picks its tags.
 */
function tagsOn(name: string, on: Role, roles: Role[]): string[] {
  const members = roles.map((r) => r.url);
  for (let i = 0; ; i++) if (ownerOf(seriesKey({ name, tags: [`shard:${i}`] }), members) === on.url) return [`shard:${i}`];
}

function byUrl(roles: Role[], url: string | null): Role {
  const r = roles.find((x) => x.url === url);
  if (r === undefined) throw new Error(`no collector ${url}`);
  return r;
}

describe('fault: alert rules across a fleet of three collectors', () => {
  it('a ratio over two collectors fires only when it should; absent only when the series is gone everywhere', async () => {
    run = faultRun('alert-fleet-split');
    const hook = await startWebhookServer();
    run.defer(() => hook.stop());
    // The ratio climbs through the threshold over about a second as the 5 s window fills, and its
    // numerator and denominator reach the owner from different collectors up to a round apart: a
    // rule without `for` may flap once at the crossing (seen: firing, resolved 180 ms later,
    // firing again). `for: 1s` asks for a settled crossing, as a production rule would.
    const roles = await fleet(
      `rules:
  - alert: ErrorRatioHigh
    ratio:
      numerator: { metric: http.errors }
      denominator: { metric: http.requests }
    window: 5s
    op: ">"
    threshold: 0.1
    for: 1s
  - alert: HeartbeatMissing
    metric: heartbeat
    aggregate: count
    window: 3s
    absent: true
`,
      hook,
    );
    const view = await fleetRules(roles[0]);
    const ratioOwner = byUrl(roles, view.rules.find((r) => r.name === 'ErrorRatioHigh')!.owner);
    const absentOwner = byUrl(roles, view.rules.find((r) => r.name === 'HeartbeatMissing')!.owner);
    // numerator and denominator on two different collectors; the heartbeat on one that does not own its rule
    const [numHolder, denHolder] = roles;
    const beatHolder = roles.find((r) => r !== absentOwner)!;
    const numTags = tagsOn('http.errors', numHolder, roles);
    const denTags = tagsOn('http.requests', denHolder, roles);
    const beatTags = tagsOn('heartbeat', beatHolder, roles);
    const posters = roles.map((_, i) => new MetricPoster(`agent-${i}`));
    let errorsPerBatch = 1;
    let heartbeat = true;
    let posting = true;
    const feeding = (async () => {
      while (posting) {
        await Promise.all([
          posters[0].post(numHolder.url, posters[0].batch([counter('http.errors', errorsPerBatch, numTags)]), TOKEN),
          posters[1].post(denHolder.url, posters[1].batch([counter('http.requests', 100, denTags)]), TOKEN),
          heartbeat ? posters[2].post(beatHolder.url, posters[2].batch([counter('heartbeat', 1, beatTags)]), TOKEN) : Promise.resolve(true),
        ]);
        await sleep(INTERVAL);
      }
    })();
    run.defer(async () => {
      posting = false;
      await feeding;
    });

    // Before the posting began the heartbeat was really absent (the collectors took a while to start),
    // and the absent rule may have fired then; from the first heartbeat on, nothing may fire.
    await waitFor(async () => (await Promise.all(roles.map((r) => alerts(r)))).every((l) => l.length === 0), { what: 'no alert anywhere once the heartbeat flows' });
    const quietFrom = hook.deliveries.length;
    // 1 %: below the threshold, on the merged series; the heartbeat is there, only elsewhere
    const rounds = async (role: Role): Promise<number> => sumOf(await scrape(role.url), 'plumb_alerts_evaluations_total');
    const start = await rounds(ratioOwner);
    await waitFor(async () => (await rounds(ratioOwner)) >= start + 15, { what: '15 evaluation rounds', timeoutMs: 20_000 });
    for (const r of roles) expect((await alerts(r)).map((a) => a.labels.alertname)).toEqual([]);
    expect(hook.deliveries.slice(quietFrom).filter((d) => d.alerts.some((x) => x.status === 'firing')), JSON.stringify(hook.deliveries)).toEqual([]);
    const firedBefore = (name: string): number => hook.notices(name, 'firing').length;
    const beatsBefore = firedBefore('HeartbeatMissing');

    // 30 %: fires, on the owner only, once
    errorsPerBatch = 30;
    const ratioAt = Date.now();
    const fired = await waitFor(() => hook.notices('ErrorRatioHigh', 'firing')[0], { what: 'ErrorRatioHigh firing', timeoutMs: 15_000 });
    // which collector sent what (each one's externalUrl is in its notices' generatorURL), for a failure
    const sent = (): string => JSON.stringify(hook.deliveries.map((d) => ({ at: d.at, alerts: d.alerts.map((x) => [x.status, x.labels.alertname, x.startsAt, x.generatorURL]) })));
    expect(firedBefore('ErrorRatioHigh'), sent()).toBe(1);
    expect((await alerts(ratioOwner)).find((a) => a.labels.alertname === 'ErrorRatioHigh')?.state, `${ratioOwner.name} ${sent()}`).toBe('firing');
    for (const r of roles) if (r !== ratioOwner) expect(await alerts(r)).toEqual([]);

    // the heartbeat stops everywhere: absent fires, once
    heartbeat = false;
    const stopped = Date.now();
    const missing = await waitFor(() => hook.notices('HeartbeatMissing', 'firing')[beatsBefore], { what: 'HeartbeatMissing firing', timeoutMs: 15_000 });
    // a window counts 1 s buckets by their start, and the last heartbeat went out up to a round before
    expect(missing.at - stopped).toBeGreaterThanOrEqual(3000 - 1000 - INTERVAL);
    await sleep(1000);
    expect(hook.notices('ErrorRatioHigh', 'firing'), sent()).toHaveLength(1);
    expect(hook.notices('HeartbeatMissing', 'firing'), sent()).toHaveLength(beatsBefore + 1);

    // what the owner spends per round on the others' data
    const m = await scrape(ratioOwner.url);
    const evals = sumOf(m, 'plumb_alerts_evaluations_total');
    report({
      scenario: 'alert-fleet-split',
      sent: 2,
      delivered: 2,
      lost: 0,
      duplicated: 0,
      recoveryMs: fired.at - ratioAt,
      notes: {
        evalMeanMs: +((sumOf(m, 'plumb_alerts_evaluation_duration_seconds_sum') / sumOf(m, 'plumb_alerts_evaluation_duration_seconds_count')) * 1000).toFixed(2),
        bytesPerRound: Math.round(sumOf(m, 'plumb_alerts_fleet_bytes_total') / evals),
        absentFiredAfterMs: missing.at - stopped,
      },
    });
  }, TEST_TIMEOUT);

  it('kill -9 of the owner mid-`for`: the runner-up fires when the owner would have, once', async () => {
    run = faultRun('alert-fleet-kill');
    const hook = await startWebhookServer();
    run.defer(() => hook.stop());
    const FOR = 4000;
    const roles = await fleet(
      `rules:
  - alert: DepthHigh
    metric: queue.depth
    aggregate: last
    window: 10s
    op: ">"
    threshold: 10
    for: 4s
`,
      hook,
    );
    const rule = (await fleetRules(roles[0])).rules[0];
    const owner = byUrl(roles, rule.owner);
    const runnerUp = byUrl(roles, rule.runnerUp);
    // the gauge lives on the third collector, so the kill takes no data with it
    const holder = roles.find((r) => r !== owner && r !== runnerUp)!;
    const depthTags = tagsOn('queue.depth', holder, roles);
    const poster = new MetricPoster('agent');
    let posting = true;
    const feeding = (async () => {
      while (posting) {
        await poster.post(holder.url, poster.batch([gauge('queue.depth', 50, depthTags)]), TOKEN);
        await sleep(INTERVAL);
      }
    })();
    run.defer(async () => {
      posting = false;
      await feeding;
    });
    const pending = await waitFor(async () => (await alerts(owner)).find((a) => a.state === 'pending'), { what: 'DepthHigh pending on its owner' });
    const activeAt = Date.parse(pending.activeAt);
    await sleep(1500);
    // rules also move while the fleet starts up, one collector at a time
    const takeoversBefore = (await fleetRules(runnerUp)).takeovers;
    await owner.kill();
    const killed = Date.now();
    const moved = await waitFor(async () => ((await fleetRules(runnerUp)).rules[0].owned ? Date.now() : undefined), { what: 'the runner-up to own the rule', intervalMs: 20 });
    const afterMove = await waitFor(async () => (await alerts(runnerUp)).find((a) => a.labels.alertname === 'DepthHigh'), { what: 'DepthHigh on the runner-up', timeoutMs: 2000 }).catch(async () => {
      const rulesApi = await (await fetch(`${runnerUp.url}/api/v1/rules`)).json();
      throw new Error(`no DepthHigh on the runner-up: ${JSON.stringify(await fleetRules(runnerUp))} ${JSON.stringify(rulesApi)} ${runnerUp.output().slice(-3000)}`);
    });
    expect(afterMove.activeAt).toBe(pending.activeAt);
    const fired = await waitFor(() => hook.notices('DepthHigh', 'firing')[0], { what: 'DepthHigh firing', timeoutMs: 15_000 });
    await sleep(1500);
    expect(hook.notices('DepthHigh', 'firing'), JSON.stringify(hook.deliveries)).toHaveLength(1);
    expect((await fleetRules(runnerUp)).takeovers).toBe(takeoversBefore + 1);
    const fleetApi = (await (await fetch(`${runnerUp.url}/api/v1/fleet`)).json()) as { rules: { owned: number; takeovers: number; down: string[] } };
    expect(fleetApi.rules).toMatchObject({ owned: 1, takeovers: takeoversBefore + 1, down: [owner.url] });
    expect((await fleetRules(holder)).rules[0].owned).toBe(false);
    const offMs = fired.at - (activeAt + FOR);
    // the round that found the alert due (startsAt: when it fired), and the round's remaining work and delivery after it
    const decidedOffMs = Date.parse(fired.alert.startsAt) - (activeAt + FOR);
    report({ scenario: 'alert-fleet-kill', sent: 1, delivered: 1, lost: 0, duplicated: 0, recoveryMs: moved - killed, notes: { ruleMovedMs: moved - killed, firedOffMs: offMs, decidedOffMs, deliveredAfterMs: offMs - decidedOffMs } });
    // the moment it would have fired without the kill, within one evaluation interval (and the webhook's delivery)
    expect(offMs).toBeGreaterThanOrEqual(0);
    expect(offMs, `fired ${decidedOffMs} ms after it was due, delivered ${offMs - decidedOffMs} ms after that`).toBeLessThanOrEqual(INTERVAL + 250);
    // Each member's probe stands alone, so the dead owner is seen at the runner-up's first round
    // after the kill (one interval away, two if a round was under way), and the takeover waits at
    // most the rule requests' deadline (max(1 s, 2 intervals)) for the live members' copies of its state.
    expect(moved - killed).toBeLessThanOrEqual(2 * INTERVAL + Math.max(1000, 2 * INTERVAL));
  }, TEST_TIMEOUT);
});
