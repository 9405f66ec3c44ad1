/**
 * Fleet configuration as constant work: every `interval` (with jitter) the agent fetches the whole
 * bundle of its group from one source — the collector (GET /api/v1/config/<group>), an HTTP(S)
 * URL, or an S3 object — and hands it, when its hash changed, to `apply` (the whole-config reload
 * path). No pushes, no deltas: a missed fetch waits for the next one. The last bundle applied is
 * kept in the data dir, so a restart with the source down starts with it. A bundle that does not
 * validate is refused with every error (log, /metrics, the x-plumb-agent header the collectors'
 * fleet view reads) and not asked for again until its content changes.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration, Section } from '../shared/config.ts';
import type { Logger } from '../shared/log.ts';
import { errorMessage } from '../shared/errors.ts';
import type { Telemetry } from '../shared/telemetry.ts';

export const RemoteConfigSchema = Section(
  {
    source: Type.Union([Type.Null(), Type.Literal('collector'), Type.String({ pattern: '^(https?|s3)://' })], {
      default: null,
      description: 'where the bundle of this agent\'s group comes from: "collector" (the first of agent.forward.collectors that answers), an http(s):// URL, or s3://bucket/key; null: no fleet configuration',
      errorMessage: 'null, "collector", an http(s):// URL or s3://bucket/key',
    }),
    group: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._-]+$', default: 'default', description: 'the agent\'s group: the bundle it runs' }),
    interval: Duration('30s', { description: 'how often the bundle is fetched' }),
    jitter: Type.Number({ minimum: 0, maximum: 1, default: 0.2, description: 'each wait is interval × (1 ± jitter × random), so a fleet does not fetch in step' }),
    timeout: Duration('10s'),
    s3: Section({
      region: Type.String({ minLength: 1, default: 'us-east-1' }),
      endpoint: Type.Optional(Type.String({ pattern: '^https?://' })),
      forcePathStyle: Type.Boolean({ default: false }),
    }),
  },
  { description: 'Fleet configuration: the whole bundle of a group, fetched on a fixed interval and applied when it changed.' },
);

export type RemoteConfigConfig = StaticDecode<typeof RemoteConfigSchema>;

/** The bundle last applied, kept in the data dir. */
export const BUNDLE_FILE = 'config-bundle.yaml';

export function bundleHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export interface ApplyResult {
  ok: boolean;
  errors: string[];
}

export interface RemoteConfigDeps {
  log: Logger;
  telemetry: Telemetry;
  dataDir: string;
  /** Collector base URLs (agent.forward.collectors), for source "collector". */
  collectors: readonly string[];
  /** Bearer token for the collectors (agent.forward.auth). */
  token?: string;
  /** Validates and applies a bundle (the whole-config reload). */
  apply: (text: string, hash: string) => Promise<ApplyResult>;
  /** Told of the state the collectors' fleet view shows. */
  onState?: (state: RemoteConfigState) => void;
  /** Agent id for the collector's fleet view (x-plumb-agent is sent by the forwarder; this request names the agent too). */
  agentHeader?: () => string;
}

export interface RemoteConfigState {
  group: string;
  /** Hash of the bundle running (undefined: none yet). */
  bundle?: string;
  /** Hash of the last bundle refused, and its errors. */
  refused?: string;
  refusedErrors?: string[];
  lastFetch?: string;
  lastError?: string;
}

type FetchResult = { kind: 'unchanged' } | { kind: 'body'; text: string; etag: string | undefined };

export class RemoteConfig {
  private readonly config: RemoteConfigConfig;
  private readonly d: RemoteConfigDeps;
  readonly state: RemoteConfigState;
  private etag: string | undefined;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private inFlight: Promise<void> | null = null;
  private readonly fetches: { inc(labels: { result: string }): void };

  constructor(config: RemoteConfigConfig, deps: RemoteConfigDeps, applied?: string) {
    this.config = config;
    this.d = deps;
    this.state = { group: config.group, ...(applied !== undefined ? { bundle: applied } : {}) };
    const t = deps.telemetry;
    const fetches = t.counter('plumb_remote_config_fetches_total', 'fetches of the fleet config bundle, by result (applied, unchanged, refused, error)', ['result']);
    for (const result of ['applied', 'unchanged', 'refused', 'error']) fetches.inc({ result }, 0);
    this.fetches = fetches;
    t.gaugeFrom('plumb_remote_config_refused_errors', 'errors of the last bundle refused as invalid (0: the last bundle fetched was good)', () => this.state.refusedErrors?.length ?? 0);
  }

  /** The bundle kept in the data dir by an earlier run, if any. */
  static async persisted(dataDir: string): Promise<string | null> {
    try {
      return await readFile(join(dataDir, BUNDLE_FILE), 'utf8');
    } catch {
      return null;
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // the first fetch soon, but not the whole fleet at once after a rollout
    this.schedule(Math.random() * Math.min(1000, this.config.interval) * this.config.jitter);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.inFlight = this.tick().finally(() => {
        this.inFlight = null;
        const j = this.config.jitter;
        this.schedule(this.config.interval * (1 + j * (2 * Math.random() - 1)));
      });
    }, delayMs);
    this.timer.unref();
  }

  /** One fetch, and an apply when the content changed. */
  async tick(): Promise<void> {
    let got: FetchResult;
    try {
      got = await this.fetch();
    } catch (err) {
      this.state.lastError = errorMessage(err);
      this.fetches.inc({ result: 'error' });
      this.d.log.warn({ source: this.config.source, group: this.config.group, err: this.state.lastError }, 'fleet config: fetch failed; the running config is kept, next try in one interval');
      return;
    }
    this.state.lastFetch = new Date().toISOString();
    this.state.lastError = undefined;
    if (got.kind === 'unchanged') {
      this.fetches.inc({ result: 'unchanged' });
      return;
    }
    const hash = bundleHash(got.text);
    if (hash === this.state.bundle || hash === this.state.refused) {
      this.etag = got.etag;
      this.fetches.inc({ result: hash === this.state.bundle ? 'unchanged' : 'refused' });
      return;
    }
    const result = await this.d.apply(got.text, hash);
    this.etag = got.etag;
    if (result.ok) {
      this.state.bundle = hash;
      this.state.refused = undefined;
      this.state.refusedErrors = undefined;
      this.fetches.inc({ result: 'applied' });
      await this.persist(got.text);
      this.d.log.info({ group: this.config.group, bundle: hash.slice(0, 16) }, 'fleet config: bundle applied');
    } else {
      this.state.refused = hash;
      this.state.refusedErrors = result.errors;
      this.fetches.inc({ result: 'refused' });
      this.d.log.error({ group: this.config.group, bundle: hash.slice(0, 16), errors: result.errors }, `fleet config: bundle refused (${result.errors.length} error(s)); the running config is kept`);
    }
    this.d.onState?.(this.state);
  }

  private async persist(text: string): Promise<void> {
    try {
      await mkdir(this.d.dataDir, { recursive: true });
      const file = join(this.d.dataDir, BUNDLE_FILE);
      await writeFile(`${file}.tmp`, text, { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    } catch (err) {
      this.d.log.warn({ err: errorMessage(err) }, 'fleet config: cannot keep the bundle in the data dir; a restart with the source down starts without it');
    }
  }

  private fetch(): Promise<FetchResult> {
    const source = this.config.source;
    if (source === null) return Promise.resolve({ kind: 'unchanged' });
    if (source.startsWith('s3://')) return this.fetchS3(source);
    if (source === 'collector') return this.fetchCollectors();
    return this.fetchHttp(source, {});
  }

  /** The collectors in order; the first that answers decides. */
  private async fetchCollectors(): Promise<FetchResult> {
    let last: unknown;
    const headers: Record<string, string> = {};
    if (this.d.token !== undefined) headers.authorization = `Bearer ${this.d.token}`;
    const agent = this.d.agentHeader?.();
    if (agent !== undefined) headers['x-plumb-agent'] = agent;
    for (const c of this.d.collectors) {
      try {
        return await this.fetchHttp(`${c.replace(/\/+$/, '')}/api/v1/config/${encodeURIComponent(this.config.group)}`, headers);
      } catch (err) {
        last = err;
      }
    }
    throw last ?? new Error('no collector configured');
  }

  private async fetchHttp(url: string, extra: Record<string, string>): Promise<FetchResult> {
    const headers: Record<string, string> = { ...extra };
    if (this.etag !== undefined) headers['if-none-match'] = this.etag;
    const r = await fetch(url, { headers, signal: AbortSignal.timeout(this.config.timeout) });
    if (r.status === 304) {
      await r.body?.cancel();
      return { kind: 'unchanged' };
    }
    if (!r.ok) {
      await r.body?.cancel();
      throw new Error(`${url}: HTTP ${r.status}`);
    }
    return { kind: 'body', text: await r.text(), etag: r.headers.get('etag') ?? undefined };
  }

  private s3: Promise<import('@aws-sdk/client-s3').S3Client> | null = null;

  private async fetchS3(source: string): Promise<FetchResult> {
    const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(source);
    if (m === null) throw new Error(`${source}: expected s3://bucket/key`);
    const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
    const s = this.config.s3;
    this.s3 ??= Promise.resolve(
      new S3Client({
        region: s.region,
        forcePathStyle: s.forcePathStyle,
        maxAttempts: 1,
        requestHandler: { requestTimeout: this.config.timeout, connectionTimeout: Math.min(this.config.timeout, 10_000) },
        ...(s.endpoint !== undefined ? { endpoint: s.endpoint } : {}),
      }),
    );
    const client = await this.s3;
    try {
      const out = await client.send(new GetObjectCommand({ Bucket: m[1], Key: m[2], ...(this.etag !== undefined ? { IfNoneMatch: this.etag } : {}) }));
      return { kind: 'body', text: (await out.Body?.transformToString('utf8')) ?? '', etag: out.ETag };
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 304) return { kind: 'unchanged' };
      throw err;
    }
  }
}
