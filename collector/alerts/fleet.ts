/**
 * Alert rules across a fleet of collectors: who evaluates which rule, and how the evaluating
 * collector sees everyone's data.
 *
 * Rules are owned, data is queried. Every collector loads the same rule file and keeps, for each
 * rule's selector, the windows of the series it merges itself. A rule (a threshold rule, or an
 * SLO with its burn-rate alerts) is owned by the first *live* collector in its rendezvous order
 * over the members (shared/membership.ts). Each evaluation the owner asks every live member for
 * its partial aggregates of the rule's selectors over the rule's windows (per label set: counts,
 * sums, min/max/last, sketches; all mergeable), merges them with its own, and evaluates once.
 * Only the owner notifies. It journals the rule's state and sends it to the runner-up (the next
 * live collector in the same order), so when the owner dies the runner-up takes over at its next
 * evaluation with pending and firing alerts as they were.
 *
 * Liveness is probed, not negotiated: each collector asks every other one for GET /readyz once
 * per evaluation (unless its last probe is still waiting for an answer), beside the round (which
 * waits for the answers at most a quarter interval). Each member's probe stands alone: one member
 * slow to answer delays no verdict on another. A refused connection or a non-2xx answer (a stopping collector says 503) makes
 * a member down at once; a timeout only the third time in a row, so a slow answer on a busy
 * machine does not hand a rule to two collectors. A request from a member (it asks for partial
 * aggregates or sends a replica) shows it alive at once, so a collector that wrongly thought an
 * owner dead gives its rules back at its next round. A collector that just started owns nothing for
 * two evaluation intervals, time for the others to see it up and stop evaluating its rules; when
 * it starts owning a rule it first takes the newest copy of the rule's state from the live members.
 *
 * Internal routes (POST, JSON), checked against the fleet's shared secret (collector.fleet.token):
 *   /internal/v1/rules/partials  {now, wants: [store, window, sketch][], patterns?} → {coverage, partials, patterns?}
 *   /internal/v1/rules/state     {keys}                                  → {groups: [key, state][]}
 *   /internal/v1/rules/replica   {from, groups: [key, state][]}          → {taken}
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Agent, request } from 'undici';
import type { StatsState } from './buckets.ts';
import type { GroupState } from './persist.ts';
import type { Coverage } from './engine.ts';
import type { PatternsAnswer, PatternsRequest } from './patterns.ts';

export const RULES_PARTIALS_PATH = '/internal/v1/rules/partials';
export const RULES_STATE_PATH = '/internal/v1/rules/state';
export const RULES_REPLICA_PATH = '/internal/v1/rules/replica';

/** What the engine needs of the fleet's membership (shared/membership.ts's Membership has it). */
export interface FleetMembers {
  members(): readonly string[];
  self(): string | undefined;
  rank(key: string): string[];
}

/** One partial aggregate wanted: a store (by key), a window, with sketches or not. */
export type Want = [store: string, window: number, sketch: boolean];

/** A group's partial summary on the wire: [group key, labels, summary]. */
export type GroupWire = [string, Record<string, string>, StatsState];

export interface PartialsRequest {
  /** The asking collector's member URL ('' when it has none). */
  from: string;
  now: number;
  wants: Want[];
  /** Log-pattern rules' templates (patterns.ts); absent: none wanted. */
  patterns?: PatternsRequest;
}

export interface PartialsResponse {
  coverage: Coverage;
  /** One entry per want, in order; null when this collector has no such store (other rules). */
  partials: (GroupWire[] | null)[];
  /** Present when asked; null when this collector mines no patterns. */
  patterns?: PatternsAnswer | null;
}

export interface StateRequest {
  keys: string[];
}

export interface StateResponse {
  groups: [string, GroupState][];
}

export interface ReplicaRequest {
  from: string;
  groups: [string, GroupState][];
}

/** The engine's side of the internal routes. */
export interface RuleFleetHandler {
  partials(req: PartialsRequest): PartialsResponse;
  states(keys: readonly string[]): [string, GroupState][];
  replica(from: string, groups: [string, GroupState][]): number;
}

export interface RulePeersOptions {
  /** The fleet's shared secret; undefined: none is sent or required (loopback or insecure fleets). */
  token: string | undefined;
  /** Deadline of one request to another collector (ms). */
  timeout: number;
  /** Deadline of a liveness probe (ms). */
  probeTimeout: number;
}

interface MemberHealth {
  up: boolean;
  /** Timeouts in a row. */
  timeouts: number;
  /** When it was last seen going down (Unix ms); -Infinity if never. */
  downSince: number;
}

/** Bytes and requests between collectors for rule evaluation, for self-metrics and the bench note. */
export interface PeerTraffic {
  sent: number;
  received: number;
  requests: number;
  failures: number;
}

/** What the engine uses of the other collectors: liveness and the three internal requests. */
export interface RulePeerClient {
  readonly traffic: PeerTraffic;
  probe(members: readonly string[], self: string | undefined, now: number): Promise<void>;
  isUp(member: string): boolean;
  markUp(member: string): void;
  downMembers(): { member: string; since: number }[];
  partials(member: string, body: PartialsRequest): Promise<PartialsResponse>;
  states(member: string, keys: string[]): Promise<StateResponse>;
  replicate(member: string, body: ReplicaRequest): Promise<void>;
  close(): Promise<void>;
}

/** Probe timeouts in a row that make a member down (a refused connection does at once). */
const TIMEOUTS_TO_DOWN = 3;

/** HTTP between collectors for rules, and each member's liveness as last probed. */
export class RulePeers implements RulePeerClient {
  private readonly options: RulePeersOptions;
  private readonly dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: 4 });
  private readonly health = new Map<string, MemberHealth>();
  /** The probe under way per member. */
  private readonly probing = new Map<string, Promise<void>>();
  readonly traffic: PeerTraffic = { sent: 0, received: 0, requests: 0, failures: 0 };

  constructor(options: RulePeersOptions) {
    this.options = options;
  }

  /**
   * Probes every member but `self` whose last probe has answered; resolves when every probe under
   * way has answered or timed out. Each member's probe stands alone, so one that hangs until its
   * deadline holds back no other member's verdict: a dead collector is seen at the next call.
   */
  probe(members: readonly string[], self: string | undefined, now: number): Promise<void> {
    for (const m of this.health.keys()) if (!members.includes(m)) this.health.delete(m);
    const waits: Promise<void>[] = [];
    for (const m of members) {
      if (m === self) continue;
      let p = this.probing.get(m);
      if (p === undefined) {
        p = this.probeOne(m, now);
        this.probing.set(m, p);
      }
      waits.push(p);
    }
    return Promise.all(waits).then(() => undefined);
  }

  private async probeOne(member: string, now: number): Promise<void> {
    const h = this.health.get(member) ?? { up: true, timeouts: 0, downSince: -Infinity };
    this.health.set(member, h);
    const outcome = await this.ready(member);
    this.probing.delete(member);
    if (this.health.get(member) !== h) return; // left the member list meanwhile
    if (outcome === 'up') {
      h.up = true;
      h.timeouts = 0;
      return;
    }
    if (outcome === 'timeout' && ++h.timeouts < TIMEOUTS_TO_DOWN && h.up) return;
    if (h.up) h.downSince = now;
    h.up = false;
  }

  /** `member` just sent a request: it is alive, whatever the last probe said. */
  markUp(member: string): void {
    const h = this.health.get(member);
    if (h === undefined) return;
    h.up = true;
    h.timeouts = 0;
  }

  /** Whether `member` answered its last probe (a member never probed counts as up). */
  isUp(member: string): boolean {
    return this.health.get(member)?.up ?? true;
  }

  /** Members found down, with when they went down. */
  downMembers(): { member: string; since: number }[] {
    return [...this.health].filter(([, h]) => !h.up).map(([member, h]) => ({ member, since: h.downSince }));
  }

  private async ready(member: string): Promise<'up' | 'down' | 'timeout'> {
    try {
      const res = await request(new URL('/readyz', member), {
        method: 'GET',
        dispatcher: this.dispatcher,
        headersTimeout: this.options.probeTimeout,
        bodyTimeout: this.options.probeTimeout,
        signal: AbortSignal.timeout(this.options.probeTimeout),
      });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 300 ? 'up' : 'down';
    } catch (err) {
      const name = (err as Error).name;
      return name === 'TimeoutError' || name === 'HeadersTimeoutError' || name === 'BodyTimeoutError' || name === 'AbortError' ? 'timeout' : 'down';
    }
  }

  async partials(member: string, body: PartialsRequest): Promise<PartialsResponse> {
    return (await this.post(member, RULES_PARTIALS_PATH, body)) as PartialsResponse;
  }

  async states(member: string, keys: string[]): Promise<StateResponse> {
    return (await this.post(member, RULES_STATE_PATH, { keys } satisfies StateRequest)) as StateResponse;
  }

  async replicate(member: string, body: ReplicaRequest): Promise<void> {
    await this.post(member, RULES_REPLICA_PATH, body);
  }

  private async post(member: string, path: string, body: unknown): Promise<unknown> {
    const payload = JSON.stringify(body);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.options.token !== undefined) headers.authorization = `Bearer ${this.options.token}`;
    this.traffic.requests++;
    this.traffic.sent += Buffer.byteLength(payload);
    try {
      const res = await request(new URL(path, member), {
        method: 'POST',
        body: payload,
        headers,
        dispatcher: this.dispatcher,
        headersTimeout: this.options.timeout,
        bodyTimeout: this.options.timeout,
        signal: AbortSignal.timeout(this.options.timeout),
      });
      const text = await res.body.text();
      this.traffic.received += Buffer.byteLength(text);
      if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`${member} answered ${res.statusCode} to ${path}: ${text.slice(0, 200)}`);
      return JSON.parse(text) as unknown;
    } catch (err) {
      this.traffic.failures++;
      throw err;
    }
  }

  /** Idempotent: a collector stopped twice (an embedder's cleanup after its own stop) closes once. */
  close(): Promise<void> {
    this.closing ??= this.dispatcher.close();
    return this.closing;
  }

  private closing: Promise<void> | null = null;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

const wantsSchema = {
  type: 'object',
  required: ['now', 'wants'],
  properties: {
    from: { type: 'string', maxLength: 2048 },
    now: { type: 'number' },
    wants: { type: 'array', maxItems: 100_000, items: { type: 'array', minItems: 3, maxItems: 3, items: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] } },
    patterns: {
      type: 'object',
      required: ['activeSince', 'firstSeen'],
      properties: { activeSince: { type: ['number', 'null'] }, firstSeen: { type: 'array', maxItems: 100_000, items: { type: 'string', maxLength: 4096 } } },
    },
  },
} as const;

const keysSchema = {
  type: 'object',
  required: ['keys'],
  properties: { keys: { type: 'array', maxItems: 100_000, items: { type: 'string', maxLength: 64 } } },
} as const;

const replicaSchema = {
  type: 'object',
  required: ['from', 'groups'],
  properties: { from: { type: 'string', maxLength: 2048 }, groups: { type: 'array', maxItems: 100_000, items: { type: 'array', minItems: 2, maxItems: 2 } } },
} as const;

/**
 * Registers the internal rule routes. With a token, a request without `Authorization: Bearer
 * <token>` is answered 401 before its body is read.
 */
export function registerRuleFleetRoutes(app: FastifyInstance, handler: RuleFleetHandler, token: string | undefined): void {
  const expected = token === undefined ? null : digest(`Bearer ${token}`);
  const check = async (request: { headers: Record<string, string | string[] | undefined> }, reply: { code(n: number): { send(b: unknown): unknown } }): Promise<unknown> => {
    if (expected === null) return undefined;
    const offered = request.headers.authorization;
    if (typeof offered !== 'string' || !timingSafeEqual(digest(offered), expected)) {
      return reply.code(401).send({ error: 'PLUMB_ERR_UNAUTHORIZED', message: "internal routes need the fleet's shared secret (collector.fleet.token)" });
    }
    return undefined;
  };
  app.post<{ Body: PartialsRequest }>(RULES_PARTIALS_PATH, { onRequest: check, schema: { body: wantsSchema } }, async (req) => handler.partials(req.body));
  app.post<{ Body: StateRequest }>(RULES_STATE_PATH, { onRequest: check, schema: { body: keysSchema } }, async (req) => ({ groups: handler.states(req.body.keys) }) satisfies StateResponse);
  app.post<{ Body: ReplicaRequest }>(RULES_REPLICA_PATH, { onRequest: check, schema: { body: replicaSchema } }, async (req) => ({ taken: handler.replica(req.body.from, req.body.groups) }));
}
