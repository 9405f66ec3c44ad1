/**
 * GET /api/v1/config/<group>: the fleet config bundle of a group, `<collector.configBundles.dir>/<group>.yaml`,
 * for agents with agent.remoteConfig.source "collector". The server keeps no per-agent state for
 * it: each file is read again only when its size or modification time changed (one stat per
 * request), and an agent that already has the content (If-None-Match) gets a bodiless 304.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Section } from '../../shared/config.ts';
import type { Telemetry } from '../../shared/telemetry.ts';

export const ConfigBundlesSchema = Section(
  {
    dir: Type.Union([Type.Null(), Type.String({ minLength: 1 })], { default: null, description: 'folder of fleet config bundles, one <group>.yaml per agent group; null: GET /api/v1/config/<group> answers 404' }),
  },
  { description: 'Fleet configuration served to agents (agent.remoteConfig.source: collector).' },
);

export type ConfigBundlesConfig = StaticDecode<typeof ConfigBundlesSchema>;

const GROUP = /^[A-Za-z0-9._-]{1,128}$/;

interface Cached {
  size: number;
  mtimeMs: number;
  body: Buffer;
  etag: string;
}

export class ConfigBundles {
  dir: string | null;
  private readonly cache = new Map<string, Cached>();
  private readonly served: { inc(labels: { result: string }): void };

  constructor(config: ConfigBundlesConfig, telemetry: Telemetry) {
    this.dir = config.dir;
    const served = telemetry.counter('plumb_config_bundle_requests_total', 'GET /api/v1/config/<group> answers, by result (sent, not_modified, not_found)', ['result']);
    for (const result of ['sent', 'not_modified', 'not_found']) served.inc({ result }, 0);
    this.served = served;
  }

  /** A reload may point at another folder. */
  reconfigure(config: ConfigBundlesConfig): void {
    this.dir = config.dir;
    this.cache.clear();
  }

  private async load(group: string): Promise<Cached | null> {
    if (this.dir === null || !GROUP.test(group)) return null;
    const file = join(this.dir, `${group}.yaml`);
    let st;
    try {
      st = await stat(file);
    } catch {
      this.cache.delete(group);
      return null;
    }
    const hit = this.cache.get(group);
    if (hit !== undefined && hit.size === st.size && hit.mtimeMs === st.mtimeMs) return hit;
    const body = await readFile(file);
    const entry = { size: st.size, mtimeMs: st.mtimeMs, body, etag: `"${createHash('sha256').update(body).digest('hex')}"` };
    this.cache.set(group, entry);
    return entry;
  }

  /** `note` sees the x-plumb-agent header of each fetch (the fleet view's group and bundle state). */
  register(app: FastifyInstance, note?: (header: string, address: string) => void): void {
    app.get<{ Params: { group: string } }>('/api/v1/config/:group', async (request, reply) => {
      const header = request.headers['x-plumb-agent'];
      if (typeof header === 'string') note?.(header, request.ip);
      const b = await this.load(request.params.group);
      if (b === null) {
        this.served.inc({ result: 'not_found' });
        return reply.code(404).send({ error: 'PLUMB_ERR_CONFIG_READ', message: `no bundle for group "${request.params.group}" (collector.configBundles.dir)` });
      }
      reply.header('etag', b.etag).header('cache-control', 'no-cache');
      if (request.headers['if-none-match'] === b.etag) {
        this.served.inc({ result: 'not_modified' });
        return reply.code(304).send();
      }
      this.served.inc({ result: 'sent' });
      return reply.type('application/yaml').send(b.body);
    });
  }
}
