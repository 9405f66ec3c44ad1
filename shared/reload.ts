/**
 * Whole-config reload, the part both roles share: what changed between the running config and a
 * new one (key paths, leaf by leaf), which component each change belongs to, and which keys
 * cannot change while running (listen ports, data directories, identity) and so wait for a
 * restart. Each role says which of its subtrees a component owns (`ReloadRule`); the longest
 * rule that covers a changed key decides. A key no rule covers is reported as needing a restart:
 * nothing is ever silently ignored.
 */
import { createHash } from 'node:crypto';
import type { Telemetry } from './telemetry.ts';
import type { ConfigStatus } from './status.ts';

export interface ConfigChange {
  /** Key path in the file's terms: `agent.logs[1].pattern`. */
  path: string;
  before: unknown;
  after: unknown;
}

export interface ReloadRule {
  /** Dotted subtree, no array indices: `agent.logs`, `collector.metrics.sinks`. */
  path: string;
  /** The component that restarts (or reconfigures) when something under `path` changes; null: needs a process restart. */
  component: string | null;
}

export interface ReloadPlan {
  changes: ConfigChange[];
  /** Components to restart or reconfigure, in the order their rules are listed. */
  components: string[];
  /** Changes that take effect only at the next start; the running value is kept meanwhile. */
  needsRestart: ConfigChange[];
  /** Paths of the needs-restart changes (up to any array index), which keep their running values. */
  keptPaths: string[];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}

/** Leaf-level differences between two decoded configs (objects by key, arrays by index). */
export function diffConfig(before: unknown, after: unknown, path = ''): ConfigChange[] {
  if (isPlainObject(before) && isPlainObject(after)) {
    const out: ConfigChange[] = [];
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) out.push(...diffConfig(before[key], after[key], childPath(path, key)));
    return out;
  }
  if (Array.isArray(before) && Array.isArray(after) && before.some(isPlainObject) && after.some(isPlainObject)) {
    const out: ConfigChange[] = [];
    for (let i = 0; i < Math.max(before.length, after.length); i++) out.push(...diffConfig(before[i], after[i], childPath(path, i)));
    return out;
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ path, before, after }];
}

/** `agent.logs[1].pattern` → `agent.logs.pattern`: the form rules are written in. */
function rulePathOf(path: string): string {
  return path.replace(/\[\d+\]/g, '');
}

function covers(rule: string, path: string): boolean {
  return path === rule || path.startsWith(`${rule}.`);
}

export function planReload(changes: readonly ConfigChange[], rules: readonly ReloadRule[]): ReloadPlan {
  const components = new Set<string>();
  const needsRestart: ConfigChange[] = [];
  const kept = new Set<string>();
  for (const change of changes) {
    const bare = rulePathOf(change.path);
    let best: ReloadRule | undefined;
    for (const r of rules) if (covers(r.path, bare) && (best === undefined || r.path.length > best.path.length)) best = r;
    if (best === undefined || best.component === null) {
      needsRestart.push(change);
      kept.add(topKey(change.path));
    } else {
      components.add(best.component);
    }
  }
  const order = rules.map((r) => r.component).filter((c): c is string => c !== null);
  return { changes: [...changes], components: [...new Set(order)].filter((c) => components.has(c)), needsRestart, keptPaths: [...kept] };
}

/** The longest dotted prefix without an array index: where an uncovered change's running value is kept. */
function topKey(path: string): string {
  const i = path.indexOf('[');
  return i < 0 ? path : path.slice(0, i);
}

/** `next` with the subtrees at `paths` (dotted, relative to the objects given) taken from `running`. */
export function keepRunning<T>(next: T, running: T, paths: readonly string[]): T {
  const out = structuredClone(next) as Record<string, unknown>;
  for (const path of paths) {
    const keys = path.split('.');
    let from: unknown = running;
    let to: Record<string, unknown> = out;
    for (let i = 0; i < keys.length; i++) {
      from = isPlainObject(from) ? from[keys[i]] : undefined;
      if (i === keys.length - 1) {
        if (from === undefined) delete to[keys[i]];
        else to[keys[i]] = structuredClone(from);
      } else {
        if (!isPlainObject(to[keys[i]])) to[keys[i]] = {};
        to = to[keys[i]] as Record<string, unknown>;
      }
    }
  }
  return out as T;
}

/** One line per change, for logs and `plumb check-config --diff`. */
export function describeChange(c: ConfigChange): string {
  const show = (v: unknown): string => (v === undefined ? '(absent)' : JSON.stringify(v));
  return `${c.path}: ${show(c.before)} → ${show(c.after)}`;
}

/** sha256 of the config's bytes, hex (the file's, then a fleet bundle's after a NUL when there is one). */
export function configHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export interface LastReload {
  at: string;
  result: 'success' | 'failure';
  errors: string[];
  /** What changed and was applied, by component. */
  applied: string[];
  /** Keys that changed but take effect only after a restart (their running values are kept). */
  needsRestart: string[];
  /** signal, file, bundle, api. */
  trigger: string;
}

/**
 * What the running config is and how reloading it went: the config section of GET /api/v1/status
 * on both roles, and plumb_config_reload_total{result}.
 */
export class ConfigState {
  path: string;
  hash: string;
  loadedAt: string;
  lastReload: LastReload | undefined;
  private readonly reloads: { inc(labels: { result: string }): void };

  constructor(path: string, hash: string, telemetry: Telemetry) {
    this.path = path;
    this.hash = hash;
    this.loadedAt = new Date().toISOString();
    const counter = telemetry.counter('plumb_config_reload_total', 'configuration reloads by result (success: applied, failure: the running config kept)', ['result']);
    for (const result of ['success', 'failure']) counter.inc({ result }, 0);
    this.reloads = counter;
    this.telemetry = telemetry;
    this.setInfo();
  }

  private readonly telemetry: Telemetry;

  private setInfo(): void {
    const g = this.telemetry.gauge('plumb_config_info', 'the running configuration: 1, labelled with the hash of its content', ['hash']);
    g.reset();
    g.set({ hash: this.hash }, 1);
  }

  succeeded(hash: string, record: Omit<LastReload, 'at' | 'result' | 'errors'>): LastReload {
    this.hash = hash;
    this.loadedAt = new Date().toISOString();
    this.lastReload = { at: this.loadedAt, result: 'success', errors: [], ...record };
    this.reloads.inc({ result: 'success' });
    this.setInfo();
    return this.lastReload;
  }

  failed(errors: string[], trigger: string): LastReload {
    this.lastReload = { at: new Date().toISOString(), result: 'failure', errors, applied: [], needsRestart: [], trigger };
    this.reloads.inc({ result: 'failure' });
    return this.lastReload;
  }

  status(): ConfigStatus {
    return { path: this.path, hash: this.hash, loadedAt: this.loadedAt, ...(this.lastReload ? { lastReload: this.lastReload } : {}) };
  }
}
