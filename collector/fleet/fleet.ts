/**
 * The collector's part in a fleet: the member list (shared/membership.ts) built from
 * collector.fleet, and what GET /api/v1/fleet reports about it.
 */
import { Membership, type Resolve4 } from '../../shared/membership.ts';
import type { Logger } from '../../shared/log.ts';
import type { Telemetry } from '../../shared/telemetry.ts';
import { fleetSelf, type FleetConfig } from './config.ts';

export interface FleetContext {
  telemetry: Telemetry;
  log: Logger;
  /** Injected DNS lookup (tests). */
  resolve4?: Resolve4;
}

export interface FleetStatus {
  self: string | undefined;
  /** Whether self is in the member list (a collector left out of it owns nothing and forwards everything). */
  member: boolean;
  members: readonly string[];
  source: string;
  interval: number;
  /** When the list was last read (ISO time; null: never). */
  lastRead: string | null;
  lastError: string | null;
}

export function membershipFor(config: { listen: string; tls?: unknown; fleet: FleetConfig }, ctx: FleetContext): Membership {
  const f = config.fleet;
  const self = fleetSelf(config);
  if (self === undefined) ctx.log.warn({ listen: config.listen }, 'collector.fleet.self is not set and this host has no IPv4 address to make it from: this collector owns nothing and forwards every series');
  return new Membership(
    { members: f.members, membersFile: f.membersFile, dns: f.dns, scheme: f.scheme, interval: f.interval, self, resolve4: ctx.resolve4 },
    { telemetry: ctx.telemetry, log: ctx.log },
  );
}

export function fleetStatus(m: Membership, f: FleetConfig): FleetStatus {
  return {
    self: m.self(),
    member: m.isMember(),
    members: m.members(),
    source: f.dns !== undefined ? `dns:${f.dns}` : f.membersFile !== undefined ? `file:${f.membersFile}` : 'static',
    interval: f.interval,
    lastRead: m.lastRead === 0 ? null : new Date(m.lastRead).toISOString(),
    lastError: m.lastError,
  };
}
