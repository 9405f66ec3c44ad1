/**
 * Wiring of the agent's fleet configuration (agent/remote-config.ts) into the process: the bundle
 * kept in the data dir is composed into the config at start (so an agent whose source is down
 * starts as it last ran), and each new bundle goes through the whole-config reload.
 */
import { resolve } from 'node:path';
import type { PlumbAgent } from '../agent/agent.ts';
import { RemoteConfig, bundleHash } from '../agent/remote-config.ts';
import { loadToken } from '../agent/forward/connection.ts';
import type { Logger } from '../shared/log.ts';
import type { Telemetry } from '../shared/telemetry.ts';
import { errorMessage } from '../shared/errors.ts';
import { errorsOf, loadComposed, type Bundle, type ConfigReloader, type ConfigSource, type Loaded, type Role, type RolesConfig } from './reload.ts';

export function bundleFrom(text: string, group: string): Bundle {
  return { text, source: `bundle ${group}@${bundleHash(text).slice(0, 12)}` };
}

/** The config to start with: the file, with the kept bundle over it when there is one and it still validates. */
export async function loadAtStart(source: ConfigSource, roles: readonly Role[], log: Logger): Promise<{ loaded: Loaded; bundle: Bundle | null }> {
  const plain = await loadComposed(source, null, roles);
  const rc = plain.config.agent.remoteConfig;
  if (!roles.includes('agent') || rc.source === null) return { loaded: plain, bundle: null };
  const kept = await RemoteConfig.persisted(resolve(plain.config.agent.dataDir));
  if (kept === null) return { loaded: plain, bundle: null };
  const bundle = bundleFrom(kept, rc.group);
  try {
    const loaded = await loadComposed(source, bundle, roles);
    log.info({ group: rc.group, bundle: bundleHash(kept).slice(0, 16) }, 'fleet config: starting with the bundle kept in the data dir');
    return { loaded, bundle };
  } catch (err) {
    log.error({ errors: errorsOf(err) }, 'fleet config: the kept bundle does not validate with this file; starting without it');
    return { loaded: plain, bundle: null };
  }
}

export class FleetConfigLoop {
  private loop: RemoteConfig | null = null;
  private readonly o: { reloader: ConfigReloader; agent: PlumbAgent; log: Logger; telemetry: Telemetry };

  constructor(o: { reloader: ConfigReloader; agent: PlumbAgent; log: Logger; telemetry: Telemetry }) {
    this.o = o;
  }

  /** (Re)starts the loop for `config` (at start, and when agent.remoteConfig changed). */
  async start(config: RolesConfig, applied: Bundle | null): Promise<void> {
    await this.stop();
    const rc = config.agent.remoteConfig;
    const { reloader, agent, log } = this.o;
    agent.setFleetIdentity({});
    if (rc.source === null) return;
    let token: string | undefined;
    try {
      token = loadToken(config.agent.forward.auth);
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'fleet config: cannot read the collectors\' token; fetching without it');
    }
    const appliedHash = applied === null ? undefined : bundleHash(applied.text);
    this.loop = new RemoteConfig(
      rc,
      {
        log: log.child({ component: 'fleet-config' }),
        telemetry: this.o.telemetry,
        dataDir: resolve(config.agent.dataDir),
        collectors: config.agent.forward.collectors,
        ...(token !== undefined ? { token } : {}),
        apply: async (text) => {
          const { record } = await reloader.applyBundle(bundleFrom(text, rc.group));
          return { ok: record.result === 'success', errors: record.errors };
        },
        onState: (s) => agent.setFleetIdentity({ group: s.group, bundle: s.bundle, refused: s.refused, refusedErrors: s.refusedErrors?.length }),
        agentHeader: () => agent.identityHeader(),
      },
      appliedHash,
    );
    agent.setFleetIdentity({ group: rc.group, bundle: appliedHash });
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop?.stop();
    this.loop = null;
  }
}
