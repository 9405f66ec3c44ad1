/**
 * Who the collectors are, and who owns what among them.
 *
 * Membership is data, re-read whole on a fixed interval: a static list, a file of URLs, or the
 * A records of a DNS name (a Kubernetes headless Service has one per ready pod). Nothing is
 * pushed and nothing is negotiated: every agent and collector that reads the same list computes
 * the same owner for a key by rendezvous (highest random weight) hashing. Removing a member
 * moves only the keys it owned; adding one takes about 1/n of the keys from the others.
 */
import { readFile } from 'node:fs/promises';
import { resolve4 } from 'node:dns/promises';
import type { Logger } from './log.ts';
import type { Telemetry } from './telemetry.ts';
import type { ServiceCheck, StatsdEvent, WireMetric } from './wire.ts';

// ---- rendezvous hashing ----

/** FNV-1a over the UTF-16 code units of `s`: fast, and well spread once mixed. */
function fnv1a(s: string, seed = 0x811c9dc5): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The finalizer of MurmurHash3: every input bit flips about half the output bits. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A member's part of the weight, computed once per member rather than once per key. */
export function memberSeed(member: string): number {
  return mix(fnv1a(member));
}

/** The weight of `key` on the member whose seed is `seed`. */
export function rendezvousWeight(key: string, seed: number): number {
  return mix(fnv1a(key) ^ seed);
}

/**
 * Which member owns `key`: the index of the highest weight (ties go to the first).
 * `seeds` are memberSeed() of each member, in the same order.
 */
export function ownerIndex(key: string, seeds: readonly number[]): number {
  const hk = fnv1a(key);
  let best = 0;
  let bestWeight = -1;
  for (let i = 0; i < seeds.length; i++) {
    const w = mix(hk ^ seeds[i]);
    if (w > bestWeight) {
      bestWeight = w;
      best = i;
    }
  }
  return best;
}

/** The member of `members` (not empty) that owns `key`. */
export function ownerOf(key: string, members: readonly string[]): string {
  if (members.length === 0) throw new Error('ownerOf: no members');
  return members[ownerIndex(key, members.map(memberSeed))];
}

/** Every member in rendezvous order for `key`, best first: the owner, then the runner-up, … */
export function rendezvousRank(key: string, members: readonly string[]): string[] {
  return rankWithSeeds(key, members, members.map(memberSeed));
}

function rankWithSeeds(key: string, members: readonly string[], seeds: readonly number[]): string[] {
  const hk = fnv1a(key);
  const weighted = members.map((m, i) => ({ m, i, w: mix(hk ^ seeds[i]) }));
  // ties keep list order, like ownerIndex
  weighted.sort((a, b) => b.w - a.w || a.i - b.i);
  return weighted.map((x) => x.m);
}

// ---- routing keys: what is owned ----

/** A series is its name and tags; the statsd type does not split it (the collector keys it the same way). */
export function seriesKey(m: Pick<WireMetric, 'name' | 'tags'>): string {
  return m.tags.length === 0 ? m.name : `${m.name}|${m.tags.join(',')}`;
}

/** DogStatsD events are owned by title. */
export function eventKey(e: Pick<StatsdEvent, 'title'>): string {
  return `event|${e.title}`;
}

/** Service checks are owned by name. */
export function checkKey(c: Pick<ServiceCheck, 'name'>): string {
  return `check|${c.name}`;
}

// ---- membership ----

/** Looks up the IPv4 addresses of a name (node:dns's resolve4 unless a test injects one). */
export type Resolve4 = (hostname: string) => Promise<string[]>;

export interface MembershipOptions {
  /** Static list of member base URLs ("http://10.0.0.1:9102"). */
  members?: string[];
  /** "name:port": every A record of `name` is a member `<scheme>://<address>:<port>`. */
  dns?: string;
  /** A file with one member URL per line (blank lines and # comments ignored), re-read each interval. */
  membersFile?: string;
  /** How often the list is read again, whole (ms). */
  interval: number;
  /** This process's own URL as the others list it; absent for a process that is not a member (an agent). */
  self?: string;
  /** Scheme of members found by DNS (default http). */
  scheme?: 'http' | 'https';
  /** Injected DNS lookup (tests); default node:dns resolve4. */
  resolve4?: Resolve4;
}

export interface MembershipContext {
  log?: Logger;
  telemetry?: Telemetry;
}

/** A member URL as it is compared: no trailing slash, scheme and host in lower case. */
export function normalizeMember(url: string): string {
  const u = new URL(url.trim());
  return `${u.protocol}//${u.host}`.toLowerCase();
}

/** Every line of a members file that names a member. */
export function parseMembersFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l !== '');
}

/** "name:port" → its parts; throws on anything else. */
export function parseDnsTarget(target: string): { name: string; port: number } {
  const m = /^([A-Za-z0-9._-]+):(\d{1,5})$/.exec(target);
  if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new Error(`expected "name:port", e.g. "plumb-collector-headless.plumb.svc:9102" (got ${JSON.stringify(target)})`);
  return { name: m[1], port: Number(m[2]) };
}

export class Membership {
  private readonly options: MembershipOptions;
  private readonly ctx: MembershipContext;
  private selfUrl: string | undefined;
  private list: readonly string[] = [];
  private seeds: readonly number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  /** Times the list was read and found different from the one before. */
  changes = 0;
  /** Reads that failed (the previous list stays). */
  failures = 0;
  /** When the list was last read successfully (Unix ms; 0: never). */
  lastRead = 0;
  /** Why the last read failed; null once one succeeds. */
  lastError: string | null = null;
  /** Called after a read found the list different from the one before. */
  onChange: ((members: readonly string[]) => void) | null = null;

  constructor(options: MembershipOptions, ctx: MembershipContext = {}) {
    const sources = [options.members !== undefined, options.dns !== undefined, options.membersFile !== undefined].filter(Boolean).length;
    if (sources !== 1) throw new Error('membership: exactly one of members, dns or membersFile is needed');
    if (options.dns !== undefined) parseDnsTarget(options.dns);
    this.options = options;
    this.ctx = ctx;
    this.selfUrl = options.self === undefined ? undefined : normalizeMember(options.self);
    if (options.members !== undefined) this.set(options.members);
    const t = ctx.telemetry;
    if (t) {
      t.gaugeFrom('plumb_fleet_members', 'collectors in the fleet as last read (static list, members file or DNS)', () => this.list.length);
      t.gaugeFrom('plumb_fleet_self_member', '1 when this collector is in the member list it read, else 0 (it owns nothing then)', () => (this.isMember() ? 1 : 0));
      t.countFrom(t.counter('plumb_fleet_membership_changes_total', 'times the member list was read and differed from the one before'), () => this.changes);
      t.countFrom(t.counter('plumb_fleet_membership_failures_total', 'member list reads that failed (the previous list is kept)'), () => this.failures);
    }
  }

  /** Reads the list once, then again every interval until stop(). */
  async start(): Promise<void> {
    if (this.timer !== null) return;
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), Math.max(10, this.options.interval));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.refreshing;
  }

  /** Reads the whole list again now; a failed read keeps the previous list. */
  refresh(): Promise<void> {
    this.refreshing ??= this.read().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async read(): Promise<void> {
    let next: string[];
    try {
      next = await this.fetchList();
    } catch (err) {
      this.failures++;
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      if (this.lastError !== reason) this.ctx.log?.warn({ source: this.source(), reason }, 'fleet membership could not be read; keeping the previous member list');
      this.lastError = reason;
      return;
    }
    this.lastError = null;
    this.lastRead = Date.now();
    this.set(next);
  }

  private async fetchList(): Promise<string[]> {
    const o = this.options;
    if (o.members !== undefined) return o.members;
    if (o.membersFile !== undefined) return parseMembersFile(await readFile(o.membersFile, 'utf8'));
    const { name, port } = parseDnsTarget(o.dns as string);
    let addresses: string[];
    try {
      addresses = await (o.resolve4 ?? resolve4)(name);
    } catch (err) {
      // no ready pod behind a headless Service: an empty answer, not a failure
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENODATA' || code === 'ENOTFOUND') addresses = [];
      else throw err;
    }
    return addresses.map((a) => `${o.scheme ?? 'http'}://${a}:${port}`);
  }

  private source(): string {
    const o = this.options;
    return o.dns !== undefined ? `dns ${o.dns}` : o.membersFile !== undefined ? `file ${o.membersFile}` : 'static list';
  }

  private set(list: readonly string[]): void {
    const next = [...new Set(list.map(normalizeMember))].sort();
    if (next.length === this.list.length && next.every((m, i) => m === this.list[i])) return;
    const before = this.list;
    this.list = next;
    this.seeds = next.map(memberSeed);
    if (this.lastRead > 0 || before.length > 0) this.changes++;
    this.ctx.log?.info({ members: next, self: this.selfUrl }, 'fleet members changed');
    this.onChange?.(next);
  }

  /** The members as last read: sorted, normalized base URLs. */
  members(): readonly string[] {
    return this.list;
  }

  /** This process's URL, normalized (undefined for a process that is not a member). */
  self(): string | undefined {
    return this.selfUrl;
  }

  /** Sets self once it is known (a server listening on port 0 learns its port only then). */
  setSelf(url: string): void {
    this.selfUrl = normalizeMember(url);
  }

  /** Whether self is in the list as last read. */
  isMember(): boolean {
    return this.selfUrl !== undefined && this.list.includes(this.selfUrl);
  }

  /** The members in rendezvous order for `key`, best first. */
  rank(key: string): string[] {
    return rankWithSeeds(key, this.list, this.seeds);
  }

  /** The member that owns `key`; undefined when the list is empty. */
  owner(key: string): string | undefined {
    if (this.list.length === 0) return undefined;
    return this.list[ownerIndex(key, this.seeds)];
  }

  /** Whether this process owns `key`. With no member list at all, it owns everything (a fleet of one). */
  owns(key: string): boolean {
    if (this.list.length === 0) return true;
    return this.owner(key) === this.selfUrl;
  }
}
