/**
 * Whole-config reload for a running process (SIGHUP, a change of the file, a new fleet bundle):
 * the file is read and validated whole, diffed against the running config, and each changed
 * component is handed its new settings; the rest keeps running untouched. A config with errors
 * changes nothing: every error is logged at once and recorded (ConfigState, /metrics). Keys that
 * cannot change while running keep their running values and are reported as needing a restart.
 */
import { readFileSync, watch, writeFileSync, renameSync, mkdirSync, type FSWatcher } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import YAML from 'yaml';
import type { PlumbAgent } from '../agent/agent.ts';
import type { PlumbCollector } from '../collector/collector.ts';
import type { Logger } from '../shared/log.ts';
import { ConfigError } from '../shared/config.ts';
import { errorMessage, PlumbError } from '../shared/errors.ts';
import { ConfigState, configHash, describeChange, diffConfig, keepRunning, planReload, type ConfigChange, type LastReload, type ReloadPlan, type ReloadRule } from '../shared/reload.ts';
import type { PlumbConfig } from './config.ts';
import { selfTracingLoopErrors } from './agent-config.ts';

/** What a running process holds: an agent alone reads no collector section. */
export type RolesConfig = Pick<PlumbConfig, 'agent' | 'log' | 'telemetry' | 'reload'> & { collector?: PlumbConfig['collector'] };

/** File holding the running config in each role's data dir, for `plumb check-config --diff`. */
export const RUNNING_CONFIG_FILE = 'running-config.json';

/** Keys of the agent section a fleet bundle may not set: identity, secrets, where the agent keeps its state, where bundles come from. */
export const BUNDLE_LOCAL_KEYS = ['id', 'hostname', 'dataDir', 'remoteConfig', 'forward.auth', 'forward.tls'] as const;

const OWN_RULES: readonly ReloadRule[] = [
  { path: 'log', component: null },
  { path: 'telemetry', component: null },
  { path: 'reload', component: 'reload' },
  { path: 'agent.remoteConfig', component: 'remote-config' },
];

export type Role = 'agent' | 'collector';

export async function reloadRules(roles: readonly Role[]): Promise<ReloadRule[]> {
  const rules = [...OWN_RULES];
  if (roles.includes('agent')) rules.push(...(await import('../agent/agent.ts')).AGENT_RELOAD_RULES);
  if (roles.includes('collector')) rules.push(...(await import('../collector/collector.ts')).COLLECTOR_RELOAD_RULES);
  return rules;
}

/** Only what the running roles read: an agent ignores the collector section and the other way round. */
export function relevantChanges(changes: readonly ConfigChange[], roles: readonly Role[]): ConfigChange[] {
  return changes.filter((c) => (c.path.startsWith('agent') ? roles.includes('agent') : c.path.startsWith('collector') ? roles.includes('collector') : true));
}

export interface ConfigSource {
  file: string | undefined;
  env: Record<string, string | undefined>;
}

export interface Bundle {
  /** YAML text of the agent keys the bundle sets. */
  text: string;
  /** Where it came from, for messages: `bundle web@3f2a…`. */
  source: string;
}

/** Errors of a bundle that sets keys only the local file may set. */
export function bundleLocalKeyErrors(raw: Record<string, unknown>, source: string): string[] {
  const errors: string[] = [];
  for (const key of BUNDLE_LOCAL_KEYS) {
    const [a, b] = key.split('.');
    const v = raw[a];
    const present = b === undefined ? v !== undefined : v !== null && typeof v === 'object' && (v as Record<string, unknown>)[b] !== undefined;
    if (present) errors.push(`${source}: agent.${key}: stays in the agent's own file (identity, secrets and local state are not part of a bundle)`);
  }
  return errors;
}

/**
 * The config text a process runs: the local file, with a fleet bundle's sections (if any) over
 * its agent section. Local-only keys stay the file's. Throws ConfigError with every problem.
 */
export function composeText(fileText: string, bundle: Bundle | null, fileName: string): string {
  if (bundle === null) return fileText;
  let fileRaw: Record<string, unknown>;
  let bundleRaw: unknown;
  try {
    fileRaw = (YAML.parse(fileText) as Record<string, unknown> | null) ?? {};
  } catch (err) {
    throw new ConfigError(fileName, [`YAML: ${errorMessage(err)}`]);
  }
  try {
    bundleRaw = YAML.parse(bundle.text) ?? {};
  } catch (err) {
    throw new ConfigError(bundle.source, [`YAML: ${errorMessage(err).split('\n')[0]}`]);
  }
  if (bundleRaw === null || typeof bundleRaw !== 'object' || Array.isArray(bundleRaw)) throw new ConfigError(bundle.source, ['a bundle is a mapping of agent keys (statsd:, logs:, forward:, …)']);
  const b = bundleRaw as Record<string, unknown>;
  const local = bundleLocalKeyErrors(b, bundle.source);
  if (local.length > 0) throw new ConfigError(bundle.source, local);
  const agent = { ...((fileRaw.agent as Record<string, unknown> | undefined) ?? {}) };
  const localForward = (agent.forward as Record<string, unknown> | undefined) ?? {};
  for (const [k, v] of Object.entries(b)) agent[k] = v;
  if (b.forward !== undefined && typeof b.forward === 'object' && b.forward !== null) {
    agent.forward = { ...(b.forward as Record<string, unknown>), ...(localForward.auth !== undefined ? { auth: localForward.auth } : {}), ...(localForward.tls !== undefined ? { tls: localForward.tls } : {}) };
  }
  return YAML.stringify({ ...fileRaw, agent });
}

export interface Loaded {
  config: RolesConfig;
  hash: string;
}

/** Reads, composes and validates; throws ConfigError/PlumbError with every error. */
export async function loadComposed(source: ConfigSource, bundle: Bundle | null, roles: readonly Role[]): Promise<Loaded> {
  const file = source.file;
  let fileText = '{}';
  if (file !== undefined) {
    try {
      fileText = readFileSync(file, 'utf8');
    } catch (err) {
      throw new PlumbError('PLUMB_ERR_CONFIG_READ', `${file}: cannot read the configuration file (${errorMessage(err)})`);
    }
  }
  const name = file ?? '<defaults>';
  const text = composeText(fileText, bundle, bundle === null ? name : `${name} + ${bundle.source}`);
  const options = { text, file: bundle === null ? name : `${name} + ${bundle.source}`, env: source.env };
  // an agent alone loads none of the collector's modules, not even to validate its section
  const config: RolesConfig = roles.includes('collector') ? (await import('./config.ts')).loadPlumbConfig(options) : { ...(await import('./agent-config.ts')).loadAgentConfig(options), collector: undefined };
  if (roles.includes('agent')) {
    const loop = selfTracingLoopErrors(config);
    if (loop.length > 0) throw new ConfigError(name, loop);
  }
  return { config, hash: configHash(`${fileText}\0${bundle?.text ?? ''}`) };
}

export function errorsOf(err: unknown): string[] {
  if (err instanceof ConfigError) return [...err.errors];
  return [errorMessage(err)];
}

/** Saves the running config where `plumb check-config --diff` finds it (owner-only: it may name secrets). */
export function saveRunning(dataDir: string, config: RolesConfig, hash: string, roles: readonly Role[]): void {
  try {
    mkdirSync(dataDir, { recursive: true });
    const file = join(dataDir, RUNNING_CONFIG_FILE);
    writeFileSync(`${file}.tmp`, JSON.stringify({ hash, roles, savedAt: new Date().toISOString(), config }), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  } catch {
    // only check-config --diff reads it; the process runs without
  }
}

export interface ReloaderOptions {
  source: ConfigSource;
  roles: readonly Role[];
  agent: PlumbAgent | null;
  collector: PlumbCollector | null;
  log: Logger;
  state: ConfigState;
  running: Loaded;
  bundle: Bundle | null;
  /** A change of agent.remoteConfig: the fleet loop is rebuilt with the new settings. */
  onRemoteConfig?: (config: RolesConfig) => void;
}

export interface ReloadOutcome {
  record: LastReload;
  plan: ReloadPlan | null;
}

export class ConfigReloader {
  private readonly o: ReloaderOptions;
  private readonly log: Logger;
  running: Loaded;
  bundle: Bundle | null;
  private chain: Promise<unknown> = Promise.resolve();
  private watcher: FSWatcher | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private rules: ReloadRule[] | null = null;

  constructor(o: ReloaderOptions) {
    this.o = o;
    this.log = o.log.child({ component: 'config' });
    this.running = o.running;
    this.bundle = o.bundle;
    this.save();
  }

  /** Reloads the file (and the bundle in hand); one at a time, in order. */
  reload(trigger: string): Promise<ReloadOutcome> {
    return this.enqueue(() => this.run(trigger, this.bundle));
  }

  /**
   * Applies a fleet bundle over the local file. Refused (nothing changes, the bundle is not kept)
   * when the result has errors.
   */
  applyBundle(bundle: Bundle): Promise<ReloadOutcome> {
    return this.enqueue(() => this.run('bundle', bundle));
  }

  private enqueue(job: () => Promise<ReloadOutcome>): Promise<ReloadOutcome> {
    const run = this.chain.then(job);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async run(trigger: string, bundle: Bundle | null): Promise<ReloadOutcome> {
    const { state, roles } = this.o;
    let next: Loaded;
    try {
      next = await loadComposed(this.o.source, bundle, roles);
    } catch (err) {
      const errors = errorsOf(err);
      this.log.error({ trigger, errors }, `configuration refused (${errors.length} error(s)); the running configuration is kept`);
      return { record: state.failed(errors, trigger), plan: null };
    }
    this.rules ??= await reloadRules(roles);
    const changes = relevantChanges(diffConfig(this.running.config, next.config), roles);
    const plan = planReload(changes, this.rules);
    const effective = keepRunning(next.config, this.running.config, plan.keptPaths);
    for (const c of plan.needsRestart) this.log.warn({ key: c.path }, `${describeChange(c)}: needs a restart to take effect; the running value is kept`);
    try {
      const deadline = effective.reload.deadline;
      const agentParts = plan.components.filter((c) => c.startsWith('agent:'));
      const collectorParts = plan.components.filter((c) => c.startsWith('collector:'));
      if (this.o.collector !== null && effective.collector !== undefined && collectorParts.length > 0) await this.o.collector.reconfigure(effective.collector, collectorParts, deadline);
      if (this.o.agent !== null && agentParts.length > 0) await this.o.agent.reconfigure(effective.agent, agentParts, deadline);
      if (this.o.collector !== null && trigger !== 'bundle') await this.reloadRules();
    } catch (err) {
      const errors = [`applying the new configuration failed: ${errorMessage(err)}`];
      this.log.error({ trigger, errors }, 'configuration reload failed while applying; components that could not take the new settings kept the old ones');
      return { record: state.failed(errors, trigger), plan };
    }
    const before = this.running.config;
    this.running = { config: effective, hash: next.hash };
    this.bundle = bundle;
    if (plan.components.includes('reload')) this.rewatch(before);
    if (plan.components.includes('remote-config')) this.o.onRemoteConfig?.(effective);
    this.save();
    const record = state.succeeded(next.hash, { applied: plan.components, needsRestart: plan.needsRestart.map((c) => c.path), trigger });
    this.log.info({ trigger, hash: next.hash, applied: plan.components, changes: plan.changes.length, needsRestart: record.needsRestart }, plan.changes.length === 0 ? 'configuration reloaded: nothing changed' : 'configuration reloaded');
    return { record, plan };
  }

  /** The alert rule file is read apart from the config (it is its own file). */
  private async reloadRules(): Promise<void> {
    await this.o.collector?.reload();
  }

  private save(): void {
    const c = this.running.config;
    if (this.o.roles.includes('agent')) saveRunning(resolve(c.agent.dataDir), c, this.running.hash, this.o.roles);
    if (c.collector !== undefined) saveRunning(resolve(c.collector.dataDir), c, this.running.hash, this.o.roles);
  }

  /**
   * Watches the file's directory (editors and ConfigMaps replace the file rather than write it)
   * and reloads when the file's content changed, after reload.debounce of quiet.
   */
  watch(): void {
    const file = this.o.source.file;
    if (file === undefined || !this.running.config.reload.watch || this.watcher !== null) return;
    const name = basename(file);
    let last = this.fileHash();
    try {
      this.watcher = watch(dirname(resolve(file)), (_event, changed) => {
        if (changed !== null && changed !== name && !changed.startsWith('..')) return;
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => {
          const now = this.fileHash();
          if (now === last || now === null) return;
          last = now;
          void this.reload('file');
        }, this.running.config.reload.debounce);
        this.debounce.unref();
      });
      this.watcher.unref();
    } catch (err) {
      this.log.warn({ file, err: errorMessage(err) }, 'cannot watch the configuration file; reload with SIGHUP');
    }
  }

  private fileHash(): string | null {
    try {
      return configHash(readFileSync(this.o.source.file!, 'utf8'));
    } catch {
      return null;
    }
  }

  private rewatch(before: RolesConfig): void {
    if (before.reload.watch === this.running.config.reload.watch) return;
    this.close();
    this.watch();
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = null;
  }
}

/** `plumb check-config --diff`: what a reload would change, by component, against `old`. */
export async function describeDiff(old: RolesConfig, next: RolesConfig, roles: readonly Role[]): Promise<string[]> {
  const plan = planReload(relevantChanges(diffConfig(old, next), roles), await reloadRules(roles));
  if (plan.changes.length === 0) return ['no change'];
  const lines: string[] = [];
  const rules = await reloadRules(roles);
  for (const c of plan.changes) {
    const bare = c.path.replace(/\[\d+\]/g, '');
    let best: ReloadRule | undefined;
    for (const r of rules) if ((bare === r.path || bare.startsWith(`${r.path}.`)) && (best === undefined || r.path.length > best.path.length)) best = r;
    const how = best?.component ? `reload (${best.component})` : 'needs restart';
    lines.push(`${how.padEnd(32)} ${describeChange(c)}`);
  }
  return lines;
}

export interface RunningSnapshot {
  hash: string;
  roles: Role[];
  savedAt: string;
  config: RolesConfig;
  file: string;
}

/** The running config a process saved in one of the data dirs `config` names (newest first), if any. */
export function readRunning(config: PlumbConfig): RunningSnapshot | null {
  const found: RunningSnapshot[] = [];
  for (const dir of new Set([resolve(config.agent.dataDir), resolve(config.collector.dataDir)])) {
    const file = join(dir, RUNNING_CONFIG_FILE);
    try {
      found.push({ ...(JSON.parse(readFileSync(file, 'utf8')) as Omit<RunningSnapshot, 'file'>), file });
    } catch {
      // none there
    }
  }
  found.sort((a, b) => b.savedAt.localeCompare(a.savedAt));
  return found[0] ?? null;
}
