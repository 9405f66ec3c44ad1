/**
 * Agents this collector has heard from, for the console's Fleet page and GET /api/v1/fleet:
 * each plumb agent names itself on every batch in the `x-plumb-agent` header (host name,
 * version, config hash, instance). Bounded: past MAX_AGENTS, the agent heard from longest ago
 * is forgotten. Kept in memory: after a restart the list fills again within a flush interval.
 */
import type { FastifyInstance } from 'fastify';
import { AGENT_HEADER, parseAgentHeader } from '../../shared/wire.ts';

const MAX_AGENTS = 10_000;

export interface AgentSeen {
  hostname: string;
  version: string;
  configHash: string;
  instance: string;
  /** The address the last batch came from. */
  address: string;
  firstSeen: string;
  lastBatch: string;
  /** What the last batch carried: metrics, logs or traces. */
  lastKind: string;
  batches: number;
  /** Fleet configuration (agent.remoteConfig): group, hash of the bundle running, hash and error count of the last one refused. */
  group?: string;
  bundle?: string;
  refused?: string;
  refusedErrors?: number;
}

export class AgentsSeen {
  private readonly agents = new Map<string, AgentSeen & { lastMs: number }>();

  /** Installs the hook that notes each accepted batch on the given ingest paths. */
  install(app: FastifyInstance, paths: Readonly<Record<string, string>>): void {
    const kinds = new Map(Object.entries(paths).map(([kind, path]) => [path, kind]));
    app.addHook('onResponse', async (request, reply) => {
      if (request.method !== 'POST' || reply.statusCode >= 300) return;
      const header = request.headers[AGENT_HEADER];
      if (typeof header !== 'string') return;
      const kind = kinds.get(request.url.split('?', 1)[0]);
      if (kind === undefined) return;
      this.note(header, kind, request.ip, Date.now());
    });
  }

  note(header: string, kind: string, address: string, now: number): void {
    const id = parseAgentHeader(header);
    if (id === null) return;
    // a restarted agent has a new instance but the same id (agent.id, or its host name)
    const at0 = id.instance.lastIndexOf('@');
    const key = at0 > 0 ? id.instance.slice(0, at0) : id.instance;
    const at = new Date(now).toISOString();
    let a = this.agents.get(key);
    if (a === undefined) {
      if (this.agents.size >= MAX_AGENTS) {
        const oldest = this.agents.keys().next().value;
        if (oldest !== undefined) this.agents.delete(oldest);
      }
      a = { ...id, address, firstSeen: at, lastBatch: at, lastKind: kind, batches: 0, lastMs: now };
    } else {
      this.agents.delete(key); // re-inserted below: the map stays ordered by last batch
    }
    a.address = address;
    a.lastBatch = at;
    a.lastMs = now;
    a.lastKind = kind;
    a.batches++;
    a.version = id.version;
    a.instance = id.instance;
    a.hostname = id.hostname;
    a.configHash = id.configHash;
    a.group = id.group;
    a.bundle = id.bundle;
    a.refused = id.refused;
    a.refusedErrors = id.refusedErrors;
    if (kind === 'config') a.batches--; // a bundle fetch is not a batch
    this.agents.set(key, a);
  }

  /** Most recently heard from first. */
  list(): AgentSeen[] {
    return [...this.agents.values()].reverse().map(({ lastMs: _lastMs, ...a }) => a);
  }
}
