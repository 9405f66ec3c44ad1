import { describe, expect, it } from 'vitest';
import { loadPlumbConfig } from '../../../../cli/config.ts';
import { ConfigError } from '../../../../shared/config.ts';
import { fleetSelf } from '../../../../collector/fleet/config.ts';

function errors(yaml: string): string[] {
  try {
    loadPlumbConfig({ text: yaml });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.errors;
    throw err;
  }
}

describe('collector.fleet config', () => {
  it('is absent by default: a collector alone', () => {
    expect(loadPlumbConfig({ text: '' }).collector.fleet).toBeUndefined();
  });

  it('takes defaults for interval, scheme and timeouts', () => {
    const c = loadPlumbConfig({ text: 'collector: { listen: "127.0.0.1:9102", fleet: { members: ["http://127.0.0.1:9102", "http://127.0.0.1:9103"] } }' }).collector;
    expect(c.fleet).toMatchObject({ interval: 5000, scheme: 'http', timeout: 10_000, handoffTimeout: 20_000 });
    expect(fleetSelf(c)).toBe('http://127.0.0.1:9102');
  });

  it('needs exactly one member source', () => {
    expect(errors('collector: { fleet: { } }')).toContain('collector.fleet: set exactly one of members, membersFile or dns (got 0)');
    expect(errors('collector: { fleet: { members: ["http://a:1"], dns: "x:9102" } }')).toContain('collector.fleet: set exactly one of members, membersFile or dns (got 2)');
  });

  it('needs a token off loopback; self on a wildcard address comes from the host\'s address', () => {
    const e = errors('collector: { listen: "0.0.0.0:9102", auth: { tokens: [t] }, fleet: { dns: "plumb-collector-headless:9102" } }');
    expect(e.some((l) => l.startsWith('collector.fleet.token:'))).toBe(true);
    expect(fleetSelf({ listen: '0.0.0.0:9102', fleet: {} }, () => '10.1.2.3')).toBe('http://10.1.2.3:9102');
    expect(fleetSelf({ listen: '0.0.0.0:9102', fleet: { self: 'http://pod:9102' } }, () => '10.1.2.3')).toBe('http://pod:9102');
    expect(errors('collector: { listen: "0.0.0.0:9102", auth: { tokens: [t] }, fleet: { dns: "h:9102", self: "http://10.1.2.3:9102", tokenFile: /etc/plumb/fleet-token } }')).toEqual([]);
  });

  it('names bad values by key', () => {
    const e = errors('collector: { fleet: { members: ["not a url"], dns: "nope", interval: soon } }');
    expect(e.some((l) => l.startsWith('collector.fleet.members[0]:'))).toBe(true);
    expect(e.some((l) => l.startsWith('collector.fleet.dns: expected "name:port"'))).toBe(true);
    expect(e.some((l) => l.startsWith('collector.fleet.interval:'))).toBe(true);
  });
});
