/**
 * collector.fleet: several collectors as one. Absent: a collector alone, exactly as before.
 *
 * Members come from one source, re-read whole every `interval`: a static list, a file of URLs,
 * or the A records of a DNS name (a Kubernetes headless Service). `self` is this collector's URL
 * as the others list it. Collectors talk to each other on /internal/v1/* with `token`.
 */
import { networkInterfaces } from 'node:os';
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration } from '../../shared/config.ts';
import { parseListen } from '../../shared/address.ts';
import { isLoopbackHost } from '../../shared/security.ts';

const URL_PATTERN = '^https?://[^\\s/]+/?$';

export const FleetSchema = Type.Optional(
  Type.Object(
    {
      members: Type.Optional(
        Type.Array(Type.String({ pattern: URL_PATTERN, errorMessage: 'a base URL like "http://10.0.0.1:9102"' }), {
          minItems: 1,
          description: 'static list of every collector\'s base URL (this one included)',
        }),
      ),
      membersFile: Type.Optional(Type.String({ minLength: 1, description: 'file with one collector URL per line, re-read every interval' })),
      dns: Type.Optional(
        Type.String({
          pattern: '^[A-Za-z0-9._-]+:\\d{1,5}$',
          errorMessage: '"name:port", e.g. "plumb-collector-headless.plumb.svc:9102"',
          description: 'every A record of name is a collector at <scheme>://<address>:<port> (a headless Service: one record per ready pod)',
        }),
      ),
      scheme: Type.Union([Type.Literal('http'), Type.Literal('https')], { default: 'http', errorMessage: '"http" or "https"', description: 'scheme of the members found by dns' }),
      self: Type.Optional(
        Type.String({ pattern: URL_PATTERN, errorMessage: 'a base URL like "http://10.0.0.1:9102"', description: 'this collector\'s URL as the member list names it (Kubernetes: http://$(POD_IP):9102); default from collector.listen' }),
      ),
      interval: Duration('5s', { description: 'how often the member list is read again, whole' }),
      token: Type.Optional(Type.String({ minLength: 1, description: 'shared secret collectors present to each other on /internal/v1/*' })),
      tokenFile: Type.Optional(Type.String({ minLength: 1, description: 'file holding the shared secret (one line)' })),
      ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM CA bundle to verify https members (default: the system\'s CAs)' })),
      timeout: Duration('10s', { description: 'a request to another collector fails after this long' }),
      handoffTimeout: Duration('20s', { description: 'on SIGTERM, how long the series this collector holds are offered to their new owners before it gives up (they then stay in its data dir)' }),
    },
    { additionalProperties: false, description: 'Several collectors as one: each series is merged by exactly one of them. Absent: a single collector.' },
  ),
);

export type FleetConfig = NonNullable<StaticDecode<typeof FleetSchema>>;

/** The keys fleetConfigErrors reads. */
export const FleetCheckSchema = Type.Object({ listen: Type.String(), insecure: Type.Boolean(), fleet: FleetSchema });

/** The first IPv4 address of this host that is not loopback (a pod's IP), if any. */
function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

/**
 * This collector's member URL: fleet.self; else one made from collector.listen when that names
 * a host; else, on a wildcard address, from this host's first non-loopback IPv4 address (in a
 * pod: the pod IP, which is what the headless Service lists).
 */
export function fleetSelf(c: { listen: string; tls?: unknown; fleet?: { self?: string } }, lookup: () => string | undefined = hostAddress): string | undefined {
  if (c.fleet?.self !== undefined) return c.fleet.self;
  let host: string;
  let port: number;
  try {
    ({ host, port } = parseListen(c.listen));
  } catch {
    return undefined;
  }
  if (host === '0.0.0.0' || host === '::' || host === '') {
    const address = lookup();
    if (address === undefined) return undefined;
    host = address;
  }
  return `${c.tls !== undefined ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** What the schema cannot say: one member source, a self URL, and a token unless the fleet is on loopback or marked insecure. */
export function fleetConfigErrors(c: { listen: string; insecure: boolean; tls?: unknown; fleet?: FleetConfig }, at: string): string[] {
  const f = c.fleet;
  if (f === undefined) return [];
  const errors: string[] = [];
  const sources = [f.members !== undefined, f.membersFile !== undefined, f.dns !== undefined].filter(Boolean).length;
  if (sources !== 1) errors.push(`${at}.fleet: set exactly one of members, membersFile or dns (got ${sources})`);
  if (f.token !== undefined && f.tokenFile !== undefined) errors.push(`${at}.fleet: set token or tokenFile, not both`);
  let loopback = false;
  try {
    loopback = isLoopbackHost(parseListen(c.listen).host);
  } catch {
    // the schema reports a malformed listen address
  }
  if (f.token === undefined && f.tokenFile === undefined && !loopback && !c.insecure) {
    errors.push(`${at}.fleet.token: collectors reachable from other hosts forward series to each other only with a shared secret; set ${at}.fleet.token or ${at}.fleet.tokenFile (or ${at}.insecure: true)`);
  }
  return errors;
}
