/**
 * The agent's wiring: builds every stage from validated config and owns their lifecycle.
 * Sinks start before sources and sources stop before sinks, so nothing accepted is left behind.
 */
import os from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { aggregatorOptions, type AgentConfig } from './config.ts';
import { Aggregator, type EndedInterval } from './statsd/aggregator.ts';
import { StatsdServer } from './statsd/server.ts';
import { Forwarder } from './forward/forwarder.ts';
import { seriesOwner, shardInterval } from './forward/shard.ts';
import type { JsonWriter } from '../shared/json-stream.ts';
import { PendingInterval, type BacklogDropReason, type BacklogLimits, type IntervalPart } from './forward/backlog.ts';
import type { Telemetry } from '../shared/telemetry.ts';
import type { Logger } from '../shared/log.ts';
import { parseListen, formatAddress } from '../shared/address.ts';
import { PlumbError } from '../shared/errors.ts';
import { METRICS_PATH, type MetricBatch } from '../shared/wire.ts';
import { describeParseError } from './statsd/parser.ts';
import { HostCollector, ServiceChecker, checkSamples, serviceCheckStatuses, type HostSample } from './host/index.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { startZipkinReceiver, type ZipkinReceiver } from './traces/receiver.ts';
import { SpanBatcher, type SealedSpanBatch } from './traces/batcher.ts';
import { TRACES_PATH } from '../shared/zipkin.ts';
import { TRACING_OFF, SPAN_AGENT_FLUSH, type SelfTracing } from '../shared/tracing.ts';
import type { LogPipeline } from './logs/pipeline.ts';
import type { KubeMetadata } from './logs/kubernetes/metadata.ts';
import type { OtlpIntake } from '../shared/otlp/intake.ts';
import type { OtlpServer } from '../shared/otlp/http.ts';
import { httpServerOptions, installHttpLimits } from '../shared/http-limits.ts';
import { installAuth, resolveSecurity } from '../shared/security.ts';
import { agentHeader, type AgentIdentity } from '../shared/wire.ts';
import type { GrokDebugger } from './logs/grok-debug.ts';
import type { GrokService } from '../shared/console/grok.ts';
import { consoleRoutes } from '../shared/console/routes.ts';
import { MemoryGuard } from './memory/guard.ts';
import type { StatusContext, StatusModel } from '../shared/status.ts';
import { agentStatusModel } from './status.ts';
import { TapHub, registerTapRoute, type TapPoint } from '../shared/tap.ts';
import type { ReloadRule } from '../shared/reload.ts';

/**
 * Span batches the forwarder's traces lane may hold in memory at once; more wait in the batcher,
 * and then apps get 429. With the spool on, only batches not yet written to it count: during a
 * collector outage spans go to disk (bounded by the traces share of agent.forward.spool.maxBytes,
 * and kept across a crash) rather than piling up in the batcher's memory; once that share is
 * full the lane refuses and apps get 429 the same way.
 */
const SPAN_BATCHES_IN_FORWARDER = 4;
/** Sealed span batches are their JSON already. */
const JSON_TYPE = 'application/json';
/** How soon a span batch the forwarder had no room for is offered again. */
const SPAN_HANDOFF_RETRY_MS = 10;

export interface AgentContext {
  telemetry: Telemetry;
  log: Logger;
  /** plumb's own traces; off when absent. */
  tracing?: SelfTracing;
  /** plumb's version, named on every batch (x-plumb-agent) and shown by the console. */
  version?: string;
  /** Version and config identity for the status report (the CLI passes them). */
  status?: StatusContext;
  /** The process environment: where the Kubernetes API is ($KUBECONFIG, $KUBERNETES_SERVICE_HOST). */
  env?: Record<string, string | undefined>;
  /** `plumb all`: a collector runs in this process too (fewer parser threads by default). */
  collectorInProcess?: boolean;
}

/**
 * Which component owns which keys, for a whole-config reload (shared/reload.ts). Listeners,
 * the data directory and identity (id, hostname) are fixed for the life of the process; the
 * span and OTLP receivers too (their doors are listeners), and the memory budget.
 */
export const AGENT_RELOAD_RULES: readonly ReloadRule[] = [
  { path: 'agent.id', component: null },
  { path: 'agent.hostname', component: null },
  { path: 'agent.dataDir', component: null },
  { path: 'agent.http', component: null },
  { path: 'agent.statsd', component: null },
  ...['maxSeries', 'maxSetMembers', 'maxEvents', 'gaugeTtl', 'maxTimestampSkew', 'tagStyles', 'tags'].map((k) => ({ path: `agent.statsd.${k}`, component: 'agent:statsd' })),
  { path: 'agent.statsd.flushInterval', component: 'agent:statsd-interval' },
  { path: 'agent.forward', component: 'agent:forward' },
  { path: 'agent.logs', component: 'agent:logs' },
  { path: 'agent.tail', component: 'agent:logs' },
  { path: 'agent.grok', component: 'agent:logs' },
  { path: 'agent.host', component: 'agent:host' },
  { path: 'agent.checks', component: 'agent:checks' },
  { path: 'agent.traces', component: null },
  { path: 'agent.otlp', component: null },
  { path: 'agent.memory', component: null },
  { path: 'agent.kubernetes', component: null },
];

export class PlumbAgent {
  config: AgentConfig;
  private readonly ctx: AgentContext;
  readonly aggregator: Aggregator;
  readonly statsd: StatsdServer;
  forwarder: Forwarder;
  host: HostCollector | null;
  /**
   * Host metrics collected at each flush rather than on their own timer, when the two intervals
   * are equal (the default): two timers of one period drift against each other, so an interval
   * sometimes got two collections (the first one's gauges overwritten) and the next none.
   */
  private hostDriven: boolean;
  /** Per collector: intervals its lane had no room for, merged (forward/backlog.ts). */
  private readonly pending = new Map<string, PendingInterval>();
  private backlogLimits: BacklogLimits;
  private handoff: Promise<void> = Promise.resolve();
  private readonly intervalsMerged: { inc(): void };
  private readonly mergeDrop: (reason: BacklogDropReason | 'shutdown', n: number) => void;
  checks: ServiceChecker | null;
  /** Spans from applications, sealed into batches for the forwarder; null when the receiver is off. */
  readonly spanBatcher: SpanBatcher | null;
  /**
   * Tailed files → parser threads → collector; null when no log input is configured. Built by
   * start(): the parser pool (piscina) and the tailer are loaded only by an agent that tails.
   */
  logs: LogPipeline | null = null;
  kubernetes: KubeMetadata | undefined;
  /**
   * The grok debugger of the console and POST /api/v1/grok, in the log pipeline's parser
   * threads; loaded on first use, so an agent nobody debugs on carries no extra code.
   */
  readonly grokDebugger: GrokService = {
    inputs: () => this.config.logs.map((input, index) => ({ index, paths: typeof input.path === 'string' ? [input.path] : [...input.path], patterns: input.pattern === undefined ? [] : typeof input.pattern === 'string' ? [input.pattern] : [...input.pattern] })),
    run: async (request) => (await this.loadGrok()).run(request),
  };
  private grok: Promise<GrokDebugger> | null = null;
  /** While the forwarder is replaced by a reload: span batches wait in the batcher. */
  private swappingForwarder = false;
  /** One reconfiguration at a time. */
  private reconfiguring: Promise<unknown> = Promise.resolve();
  /** The fleet part of the x-plumb-agent header: group, bundle, refused bundle. */
  private fleet: Pick<AgentIdentity, 'group' | 'bundle' | 'refused' | 'refusedErrors'> = {};
  private zipkin: ZipkinReceiver | null = null;
  /** OTLP doors' shared intake; null unless agent.otlp.enabled. Opened by start(). */
  otlp: OtlpIntake | null = null;
  private otlpHttp: OtlpServer | null = null;
  private otlpGrpc: OtlpServer | null = null;
  private spanForwarding: { abort: AbortController; done: Promise<void> } | null = null;
  private readonly tracing: SelfTracing;
  /** Sheds load in a fixed order when RSS nears agent.memory.budget (memory/guard.ts). */
  readonly guard: MemoryGuard;
  private http: FastifyInstance | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  /** `${id}@${start}-${random}`: neither a restarted agent nor a twin with the same host name reuses batch ids. */
  readonly instance: string;
  private seq = 0;
  private readonly flushes: { inc(): void };
  httpAddress = '';
  private ready = false;
  /** GET /api/v1/status: the pipeline's components, files and statsd intake (status.ts). */
  readonly status: StatusModel;
  /** GET /api/v1/tap: what passes a component, live (shared/tap.ts). */
  readonly taps: TapHub;
  private readonly aggregatorTap: TapPoint;

  constructor(config: AgentConfig, ctx: AgentContext) {
    this.config = config;
    this.ctx = ctx;
    this.tracing = ctx.tracing ?? TRACING_OFF;
    const hostname = config.hostname ?? os.hostname();
    this.instance = `${config.id ?? hostname}@${Date.now()}-${randomBytes(3).toString('hex')}`;
    const s = config.statsd;
    this.aggregator = new Aggregator(aggregatorOptions(s), ctx.telemetry);
    this.statsd = new StatsdServer(
      {
        listen: s.listen,
        tcp: s.tcp,
        receiveBufferBytes: s.receiveBuffer,
        maxLineBytes: s.maxLineBytes,
        tcpMaxConnections: s.tcpMaxConnections,
        tcpIdleTimeoutMs: s.tcpIdleTimeout,
        unix: { path: s.socket.path, streamPath: s.socket.streamPath, mode: s.socket.mode, group: s.socket.group, receiveBufferBytes: s.socket.receiveBuffer },
      },
      this.aggregator,
      { telemetry: ctx.telemetry, log: ctx.log.child({ component: 'statsd' }) },
    );
    this.forwarder = this.buildForwarder();
    this.backlogLimits = { maxSeries: s.maxSeries, maxSetMembers: s.maxSetMembers, maxEvents: s.maxEvents };
    this.intervalsMerged = ctx.telemetry.counter('plumb_forward_intervals_merged_total', 'metric intervals merged into a pending interval because their collector\'s lane (spool or memory queue) was full');
    const mergeDropped = ctx.telemetry.counter('plumb_forward_merge_dropped_total', 'metrics, events and checks dropped from merged pending intervals, by reason (merge_max_series, merge_max_events, shutdown)', ['reason']);
    for (const reason of ['merge_max_series', 'merge_max_events', 'shutdown']) mergeDropped.inc({ reason }, 0);
    this.mergeDrop = (reason, n) => mergeDropped.inc({ reason }, n);
    ctx.telemetry.gaugeFrom('plumb_forward_pending_series', 'series held in merged pending intervals, waiting for room in their lane', () => {
      let n = 0;
      for (const p of this.pending.values()) n += p.series;
      return n;
    });
    this.guard = new MemoryGuard({ budgetBytes: config.memory.budget, checkIntervalMs: config.memory.checkInterval }, { telemetry: ctx.telemetry, log: ctx.log.child({ component: 'memory' }) });
    this.flushes = ctx.telemetry.counter('plumb_agent_flushes_total', 'statsd intervals ended and handed to the forwarder (empty ones included)');
    this.spanBatcher = config.traces.zipkin.enabled || config.otlp.enabled ? new SpanBatcher(config.traces.batch, { telemetry: ctx.telemetry, log: ctx.log, agent: this.instance }) : null;
    this.hostDriven = config.host.enabled && config.statsd.enabled && config.host.interval === config.statsd.flushInterval;
    this.host = this.buildHost();
    this.checks = this.buildChecks();
    this.status = agentStatusModel(this, ctx.telemetry, ctx.status);
    this.taps = new TapHub(ctx.telemetry);
    if (config.statsd.enabled) this.aggregator.tap = this.taps.point('statsd', 'metric');
    this.aggregatorTap = this.taps.point('aggregator', 'metric');
    if (config.host.enabled || this.checks !== null) this.taps.point('host', 'metric');
    if (config.logs.length > 0) {
      this.taps.point('files', 'event');
      this.taps.point('parser', 'event');
    }
    if (this.spanBatcher !== null) this.spanBatcher.tap = this.taps.point('span_batcher', 'span');
  }

  /** Fleet configuration state named on every batch from now on (agent.remoteConfig). */
  setFleetIdentity(fleet: Pick<AgentIdentity, 'group' | 'bundle' | 'refused' | 'refusedErrors'>): void {
    this.fleet = fleet;
  }

  /** The x-plumb-agent header: who this agent is and which config it runs (the config hash is the status report's, so a reload changes it). */
  identityHeader(): string {
    const ctx = this.ctx;
    return agentHeader({ hostname: this.config.hostname ?? os.hostname(), version: ctx.version ?? ctx.status?.version ?? 'unknown', configHash: ctx.status?.config().hash ?? '', instance: this.instance, ...this.fleet });
  }

  private buildForwarder(): Forwarder {
    const { config, ctx } = this;
    const f = config.forward;
    return new Forwarder(
      {
        collectors: f.collectors,
        timeoutMs: f.timeout,
        maxQueueBytes: f.maxQueueBytes,
        maxQueueBatches: f.maxQueueBatches,
        backoff: { initialMs: f.retryInitial, maxMs: f.retryMax },
        compress: f.compress,
        compressLevel: f.compressLevel,
        logsInFlight: f.logsInFlight,
        healthCheckIntervalMs: Math.max(100, f.healthCheckInterval),
        spool: f.spool.enabled
          ? { dir: join(config.dataDir, 'spool'), traces: config.traces.zipkin.enabled || config.otlp.enabled, maxBytes: f.spool.maxBytes, segmentBytes: f.spool.segmentBytes, fsync: f.spool.fsync, fsyncIntervalMs: f.spool.fsyncInterval }
          : undefined,
        auth: f.auth,
        tls: f.tls,
        // the config hash is the status report's (sha256 of the file), read at each batch: a reload changes it
        identity: () => this.identityHeader(),
      },
      { telemetry: ctx.telemetry, log: ctx.log.child({ component: 'forward' }), tracing: this.tracing },
    );
  }

  private buildHost(): HostCollector | null {
    const { config, ctx } = this;
    return config.host.enabled ? new HostCollector({ ...config.host, hostname: config.host.hostname ?? config.hostname }, { telemetry: ctx.telemetry, log: ctx.log.child({ component: 'host' }) }) : null;
  }

  private buildChecks(): ServiceChecker | null {
    const { config, ctx } = this;
    return config.checks.checks.length > 0 ? new ServiceChecker(config.checks, { telemetry: ctx.telemetry, log: ctx.log.child({ component: 'host' }) }) : null;
  }

  /** The parser pool (piscina) and the tailer are loaded only by an agent that tails. */
  private async startLogs(): Promise<void> {
    const config = this.config;
    if (config.logs.length === 0) return;
    const { LogPipeline } = await import('./logs/pipeline.ts');
    if (config.kubernetes.enabled && this.kubernetes === undefined) {
      const { resolveAccess } = await import('./logs/kubernetes/access.ts');
      const { KubeMetadata } = await import('./logs/kubernetes/metadata.ts');
      const access = resolveAccess(config.kubernetes.kubeconfig, this.ctx.env ?? {});
      this.kubernetes = new KubeMetadata(config.kubernetes, access, { telemetry: this.ctx.telemetry, log: this.ctx.log.child({ component: 'kubernetes' }) });
      this.kubernetes.start();
      this.ctx.log.info({ api: access.server, via: access.source }, 'Kubernetes metadata for logs');
    }
    this.logs = new LogPipeline(
      { logs: config.logs, tail: config.tail, grok: config.grok, dataDir: config.dataDir, hostName: config.hostname ?? os.hostname(), collectorInProcess: this.ctx.collectorInProcess === true },
      {
        telemetry: this.ctx.telemetry,
        log: this.ctx.log.child({ component: 'logs' }),
        forwarder: this.forwarder,
        tracing: this.tracing,
        admit: () => this.guard.whenReadingAllowed(),
        kubernetes: this.kubernetes,
        taps: { files: this.taps.point('files', 'event'), parser: this.taps.point('parser', 'event') },
      },
    );
    await this.logs.start();
  }

  private loadGrok(): Promise<GrokDebugger> {
    const hostName = this.config.hostname ?? os.hostname();
    this.grok ??= import('./logs/grok-debug.ts').then(({ GrokDebugger }) => new GrokDebugger({ logs: this.config.logs, grok: this.config.grok, hostName }, () => this.logs));
    return this.grok;
  }

  async start(): Promise<void> {
    this.guard.start();
    await this.forwarder.start();
    await this.startHttp();
    await this.startTraces();
    await this.startLogs();
    if (this.config.statsd.enabled) {
      await this.statsd.start();
      this.startFlushTimer();
    }
    this.host?.start(this.addSamples, this.hostDriven);
    this.status.start();
    await this.startChecks();
    this.ready = true;
  }

  private startFlushTimer(): void {
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = setInterval(() => void this.flush(), this.config.statsd.flushInterval);
    this.flushTimer.unref();
  }

  private readonly addSamples = (samples: HostSample[]): void => {
    const hostTap = this.taps.point('host', 'metric');
    if (hostTap.active) hostTap.publish(samples);
    for (const s of samples) this.aggregator.addSample(s.name, s.type, s.value, s.tags);
  };

  private async startChecks(): Promise<void> {
    if (!this.checks) return;
    const hostname = this.config.hostname ?? (this.host ? await this.host.hostname() : os.hostname());
    this.checks.start((results) => {
      this.addSamples(checkSamples(results, hostname));
      for (const c of serviceCheckStatuses(results, hostname)) this.aggregator.addServiceCheck(c);
    });
  }

  /**
   * Applies a new, already validated config to the running agent: only the components named
   * (from AGENT_RELOAD_RULES) are touched. The interval in hand is flushed before the statsd
   * settings change; a new forwarder takes over the old one's spool (what the old one did not
   * deliver within the deadline stays on disk and is sent by the new one); the log pipeline stops
   * with its acknowledged offsets checkpointed and the new one resumes from them.
   */
  async reconfigure(next: AgentConfig, components: readonly string[], deadlineMs = 10_000): Promise<void> {
    const run = this.reconfiguring.then(() => this.applyConfig(next, new Set(components), deadlineMs));
    this.reconfiguring = run.catch(() => undefined);
    return run;
  }

  private async applyConfig(next: AgentConfig, c: Set<string>, deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    const log = this.ctx.log.child({ component: 'reload' });
    this.config = next;
    const s = next.statsd;
    this.backlogLimits = { maxSeries: s.maxSeries, maxSetMembers: s.maxSetMembers, maxEvents: s.maxEvents };
    const forward = c.has('agent:forward');
    const logs = forward || c.has('agent:logs');
    if (logs && this.logs !== null) {
      await this.logs.stop(Math.max(0, deadline - Date.now()));
      this.logs = null;
      log.info('log pipeline stopped for the new config (acknowledged offsets checkpointed)');
    }
    if (logs && this.grok !== null) {
      // the console's debugger lists the inputs it was built with
      const grok = this.grok;
      this.grok = null;
      await (await grok).stop();
    }
    if (forward || c.has('agent:statsd')) {
      // the interval in hand goes out under the settings it was counted with
      await this.flush();
      this.aggregator.reconfigure(aggregatorOptions(s));
    }
    if (forward) {
      this.swappingForwarder = true;
      // in the hand-off chain: a flush that ends meanwhile hands its interval to the new forwarder
      const swap = this.handoff.then(async () => {
        await this.forwarder.stop(Math.max(0, deadline - Date.now()));
        this.forwarder = this.buildForwarder();
        await this.forwarder.start();
      });
      this.handoff = swap.catch(() => undefined);
      try {
        await swap;
      } finally {
        this.swappingForwarder = false;
      }
      log.info({ collectors: next.forward.collectors }, 'forwarder restarted for the new config');
    }
    if (logs) await this.startLogs();
    if (c.has('agent:statsd-interval') && this.flushTimer !== null) this.startFlushTimer();
    if (c.has('agent:host') || c.has('agent:statsd-interval')) {
      await this.host?.stop();
      this.hostDriven = next.host.enabled && next.statsd.enabled && next.host.interval === next.statsd.flushInterval;
      this.host = this.buildHost();
      this.host?.start(this.addSamples, this.hostDriven);
    }
    if (c.has('agent:checks')) {
      await this.checks?.stop();
      this.checks = this.buildChecks();
      await this.startChecks();
    }
  }

  /**
   * Ends the current interval and queues it for the collectors: each series goes to the healthy
   * collector with the highest rendezvous weight, one batch per collector with id
   * `${instance}:${seq}:${collector index}`. Resolves once the batches are queued (with the
   * spool on: on disk).
   */
  async flush(): Promise<void> {
    const err = this.aggregator.lastError;
    const ended = this.aggregator.end();
    // Right after an interval ends, so each interval gets exactly one collection.
    if (this.hostDriven) this.host?.tick();
    if (err) this.ctx.log.warn({ reason: err.reason, line: err.line }, `statsd line rejected: ${describeParseError(err.reason)}`);
    // One hand-off at a time, so a pending merged interval is never sent twice.
    const handoff = this.handoff.then(() => this.handOffEnded(ended));
    this.handoff = handoff.catch(() => undefined);
    await handoff;
    this.flushes.inc();
  }

  /**
   * The usual hand-off: each series is written as JSON straight into its collector's (gzipped)
   * body and released, so a large interval never exists as wire objects, nor as one JSON text.
   * The tap, a merged pending interval and the memory guard's merging need the metrics as
   * objects: only then is the interval turned into them (handOff).
   */
  private async handOffEnded(ended: EndedInterval): Promise<void> {
    const empty = ended.seriesCount === 0 && ended.events.length === 0 && ended.serviceChecks.length === 0;
    if (empty && this.pending.size === 0) return;
    const merging = this.guard.mergeInterval();
    if (merging || this.pending.size > 0 || this.aggregatorTap.active) {
      const interval = await ended.toWire();
      if (this.aggregatorTap.active) this.aggregatorTap.publish(interval.metrics);
      return this.handOff(interval, merging);
    }
    const targets = this.forwarder.shardTargets();
    // taken only if something is sent, like handOff's
    const seq = this.seq + 1;
    const ids = targets.map((c) => `${this.instance}:${seq}:${this.forwarder.collectorIndex(c)}`);
    const side = shardInterval({ metrics: [], events: ended.events, serviceChecks: ended.serviceChecks }, targets);
    const writers: (JsonWriter | null)[] = targets.map(() => null);
    const written = targets.map(() => 0);
    // the same text, key for key, as JSON.stringify of handOff's MetricBatch
    const open = (i: number): JsonWriter => {
      const w = this.forwarder.jsonWriter();
      w.write(`{"id":${JSON.stringify(ids[i])},"agent":${JSON.stringify(this.instance)},"seq":${seq},"start":${ended.start},"end":${ended.end},"metrics":[`);
      writers[i] = w;
      return w;
    };
    const counts = await ended.encode(
      {
        owner: seriesOwner(targets),
        write: (i, json) => (writers[i] ?? open(i)).write(written[i]++ === 0 ? json : `,${json}`),
        drain: (i) => (writers[i] as JsonWriter).drain(),
      },
      targets.length,
    );
    const bodies: (Buffer | null)[] = [];
    for (let i = 0; i < targets.length; i++) {
      const part = side[i];
      if (counts[i] === 0 && part.events.length === 0 && part.serviceChecks.length === 0) {
        bodies.push(null);
        continue;
      }
      const w = writers[i] ?? open(i);
      w.write(`],"events":${JSON.stringify(part.events)},"serviceChecks":${JSON.stringify(part.serviceChecks)}}`);
      bodies.push(await w.end());
    }
    if (bodies.every((b) => b === null)) return;
    this.seq = seq;
    const sends: Promise<unknown>[] = [];
    bodies.forEach((body, i) => {
      if (body === null) return;
      const collector = targets[i];
      const id = ids[i];
      const span = this.tracing.tracer.startSpan(SPAN_AGENT_FLUSH, { attributes: { 'plumb.kind': 'metrics', 'plumb.batch.id': id, 'plumb.metrics': counts[i] } }, ROOT_CONTEXT);
      sends.push(
        this.forwarder
          .send('metrics', METRICS_PATH, id, body, undefined, { parent: trace.setSpan(ROOT_CONTEXT, span), collector, whenFull: 'refuse', encoded: true, release: true })
          .then(async (outcome) => {
            span.setAttribute('plumb.outcome', outcome);
            if (outcome === 'queued') return;
            // the lane had no room: the part is read back from its body and merged, as handOff does
            const batch = (await this.forwarder.decodeJson(body)) as MetricBatch;
            const part: IntervalPart = { start: batch.start, end: batch.end, metrics: batch.metrics, events: batch.events, serviceChecks: batch.serviceChecks };
            this.pending.set(collector, new PendingInterval(this.backlogLimits, part, this.mergeDrop));
            this.intervalsMerged.inc();
            this.ctx.log.warn({ collector, reason: outcome }, 'forward lane full: metric intervals are merged until it has room (resolution, not data, is lost)');
          })
          .finally(() => span.end()),
      );
    });
    await Promise.all(sends);
  }

  /**
   * Queues one batch per collector. A lane that is full (its spool, or its memory queue) does not
   * drop the batch: it is merged into that collector's pending interval, sent whole at a later
   * flush once the lane has room again (see forward/backlog.ts).
   */
  private async handOff(interval: IntervalPart, merging: boolean): Promise<void> {
    const empty = (p: Omit<IntervalPart, 'start' | 'end'>): boolean => p.metrics.length === 0 && p.events.length === 0 && p.serviceChecks.length === 0;
    if (empty(interval) && this.pending.size === 0) return;
    const targets = this.forwarder.shardTargets();
    const parts = shardInterval(interval, targets);
    const byCollector = new Map<string, IntervalPart>();
    targets.forEach((c, i) => {
      if (!empty(parts[i])) byCollector.set(c, { start: interval.start, end: interval.end, ...parts[i] });
    });
    if (merging) {
      // Near the memory budget: one merged interval per collector grows only with new series,
      // where queued batches would grow with every flush.
      for (const [collector, part] of byCollector) {
        const pending = this.pending.get(collector);
        if (pending === undefined) this.pending.set(collector, new PendingInterval(this.backlogLimits, part, this.mergeDrop));
        else pending.merge(part, this.mergeDrop);
        this.intervalsMerged.inc();
      }
      return;
    }
    const seq = ++this.seq;
    const sends: Promise<unknown>[] = [];
    for (const collector of new Set([...this.pending.keys(), ...byCollector.keys()])) {
      let part = byCollector.get(collector);
      const pending = this.pending.get(collector);
      if (pending !== undefined) {
        if (part !== undefined) {
          pending.merge(part, this.mergeDrop);
          this.intervalsMerged.inc();
        }
        part = pending.toPart();
      }
      if (part === undefined) continue;
      const id = `${this.instance}:${seq}:${this.forwarder.collectorIndex(collector)}`;
      const batch: MetricBatch = { id, agent: this.instance, seq, ...part };
      const span = this.tracing.tracer.startSpan(SPAN_AGENT_FLUSH, { attributes: { 'plumb.kind': 'metrics', 'plumb.batch.id': id, 'plumb.metrics': batch.metrics.length } }, ROOT_CONTEXT);
      const whole = part;
      sends.push(
        this.forwarder
          .send('metrics', METRICS_PATH, id, batch, undefined, { parent: trace.setSpan(ROOT_CONTEXT, span), collector, whenFull: 'refuse' })
          .then((outcome) => {
            span.setAttribute('plumb.outcome', outcome);
            if (outcome === 'queued') {
              this.pending.delete(collector);
            } else if (pending === undefined) {
              this.pending.set(collector, new PendingInterval(this.backlogLimits, whole, this.mergeDrop));
              this.intervalsMerged.inc();
              this.ctx.log.warn({ collector, reason: outcome }, 'forward lane full: metric intervals are merged until it has room (resolution, not data, is lost)');
            }
          })
          .finally(() => span.end()),
      );
    }
    await Promise.all(sends);
  }

  /** host:port the Zipkin receiver is bound to ('' when it is off or not started). */
  get zipkinAddress(): string {
    return this.zipkin?.address ?? '';
  }

  /** Sinks before sources: the batcher and its hand-off to the forwarder, then the receiver. */
  private async startTraces(): Promise<void> {
    const batcher = this.spanBatcher;
    if (batcher === null) return;
    batcher.start();
    const abort = new AbortController();
    this.spanForwarding = { abort, done: batcher.forwardTo((batch) => this.forwardSpans(batch), abort.signal, SPAN_HANDOFF_RETRY_MS) };
    const guard = this.guard;
    const onSpans = (spans: Parameters<SpanBatcher['onSpans']>[0]): boolean => !guard.refuseSpans(spans.length) && batcher.onSpans(spans);
    if (this.config.traces.zipkin.enabled) this.zipkin = await startZipkinReceiver(this.config.traces.zipkin, { telemetry: this.ctx.telemetry, log: this.ctx.log }, onSpans);
    const o = this.config.otlp;
    if (o.enabled) {
      // loaded only when asked for: protobufjs and gRPC cost start-up time
      const [{ OtlpIntake }, { startOtlpHttp }, { startOtlpGrpc }, { AgentOtlpSink }] = await Promise.all([
        import('../shared/otlp/intake.ts'),
        import('../shared/otlp/http.ts'),
        import('../shared/otlp/grpc.ts'),
        import('./otlp/sink.ts'),
      ]);
      const otlp = (this.otlp = new OtlpIntake(
        new AgentOtlpSink(this.forwarder, batcher, this.instance, () => !guard.refuseOtlp()),
        {
          metrics: { resourceLabels: o.metrics.resourceLabels, relativeAccuracy: this.config.statsd.relativeAccuracy, maxStreams: o.metrics.maxStreams, streamTtlMs: o.metrics.streamTtl },
          hostName: this.config.hostname ?? os.hostname(),
          role: 'agent',
        },
        this.ctx.telemetry,
      ));
      otlp.start();
      const log = this.ctx.log.child({ component: 'otlp' });
      if (o.http.enabled) {
        const limits = this.config.http;
        const telemetry = this.ctx.telemetry;
        this.otlpHttp = await startOtlpHttp({ config: o, intake: otlp, log, at: 'agent.otlp', serverOptions: httpServerOptions(limits), configure: (app) => installHttpLimits(app, limits, telemetry, 'otlp') });
      }
      if (o.grpc.enabled) this.otlpGrpc = await startOtlpGrpc({ config: o, intake: otlp, log, at: 'agent.otlp' });
    }
  }

  /** host:port of the OTLP/HTTP and OTLP/gRPC receivers ('' when off). */
  get otlpHttpAddress(): string {
    return this.otlpHttp?.address ?? '';
  }

  get otlpGrpcAddress(): string {
    return this.otlpGrpc?.address ?? '';
  }

  /**
   * Hands a sealed span batch to the forwarder. A full forwarder refuses rather than drops, so
   * the batch stays with the batcher, its queue fills and applications are answered 429.
   */
  private async forwardSpans(batch: SealedSpanBatch): Promise<boolean> {
    if (this.swappingForwarder || this.forwarder.laneBacklog('traces') >= SPAN_BATCHES_IN_FORWARDER) return false;
    const span = this.tracing.tracer.startSpan(SPAN_AGENT_FLUSH, { attributes: { 'plumb.kind': 'traces', 'plumb.batch.id': batch.id, 'plumb.spans': batch.count } }, ROOT_CONTEXT);
    try {
      const outcome = await this.forwarder.send('traces', TRACES_PATH, batch.id, batch.body, undefined, { parent: trace.setSpan(ROOT_CONTEXT, span), whenFull: 'refuse', contentType: JSON_TYPE });
      span.setAttribute('plumb.outcome', outcome);
      return outcome === 'queued';
    } finally {
      span.end();
    }
  }

  /**
   * Receiver first (no new spans; requests in flight finish), then the batcher seals its open
   * batch and keeps handing batches to the forwarder until none is left or the deadline passes.
   * Batches still held then go to the forwarder's queue if it has room, else counted as dropped.
   * With the spool on they all go to it at once: it keeps them across the restart.
   */
  private async stopTraces(deadline: number): Promise<void> {
    const batcher = this.spanBatcher;
    if (batcher === null) return;
    await this.zipkin?.stop();
    this.zipkin = null;
    await this.otlpHttp?.stop();
    this.otlpHttp = null;
    await this.otlpGrpc?.stop();
    this.otlpGrpc = null;
    this.otlp?.stop();
    batcher.stop();
    const forwarding = this.spanForwarding;
    this.spanForwarding = null;
    if (forwarding === null) return;
    while (batcher.queued > 0 && Date.now() < deadline && !this.forwarder.spooling) await sleep(10);
    forwarding.abort.abort();
    await forwarding.done;
    for (const batch of batcher.drain()) await this.forwarder.send('traces', TRACES_PATH, batch.id, batch.body, undefined, { contentType: JSON_TYPE });
  }

  private async startHttp(): Promise<void> {
    // GET routes only: fastify's own 1 MiB bodyLimit is the per-request size
    const app = Fastify({ logger: false, ...httpServerOptions(this.config.http) });
    installHttpLimits(app, this.config.http, this.ctx.telemetry, 'agent');
    // its API and console (status, tap: event content, grok) need a token when agent.http.auth names one
    const h = this.config.http;
    installAuth(app, resolveSecurity({ listen: h.listen, insecure: true, auth: h.auth }, this.ctx.env ?? {}, this.ctx.log, 'agent.http', { loopbackRule: false }), { at: 'agent.http' });
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      if (!this.ready) return reply.code(503).send({ status: 'starting' });
      return { status: 'ready', forwardQueue: this.forwarder.queuedBatches };
    });
    app.get('/metrics', async (_req, reply) => {
      reply.type('text/plain; version=0.0.4; charset=utf-8');
      return this.ctx.telemetry.metrics();
    });
    await app.register(
      consoleRoutes({
        role: 'agent',
        hostname: this.config.hostname ?? os.hostname(),
        version: this.ctx.version ?? 'unknown',
        grok: () => this.grokDebugger,
        status: () => this.status.report(),
        inputs: { lagThresholdMs: this.config.tail.lagThreshold },
        tapComponents: () => this.taps.components,
      }),
    );
    app.get('/api/v1/status', async () => this.status.report());
    registerTapRoute(app, this.taps);
    const addr = parseListen(this.config.http.listen);
    try {
      await app.listen({ host: addr.host, port: addr.port });
    } catch (err) {
      throw new PlumbError('PLUMB_ERR_LISTEN', `agent.http.listen: cannot listen on ${this.config.http.listen}: ${(err as Error).message}`);
    }
    const a = app.server.address() as { address: string; port: number };
    this.httpAddress = formatAddress(a.address, a.port);
    this.http = app;
  }

  /**
   * Stop intake, flush the interval in hand, drain the forwarder within the deadline; with the
   * spool on, what is not delivered by then stays on disk for the next start.
   */
  async stop(deadlineMs = 10_000): Promise<void> {
    await this.reconfiguring;
    const deadline = Date.now() + deadlineMs;
    this.ready = false;
    // a stopping agent drains: nothing may wait on the guard
    this.guard.stop();
    this.status.stop();
    this.taps.closeAll();
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = null;
    await this.stopTraces(deadline);
    // Waits for the batches in flight to be acknowledged (the forwarder still runs), so their
    // offsets reach the checkpoint; what is not acknowledged by then is read again next start.
    await this.logs?.stop(Math.max(0, (deadline - Date.now()) / 2));
    await this.kubernetes?.stop();
    this.kubernetes = undefined;
    await this.statsd.stop();
    await this.host?.stop();
    await this.checks?.stop();
    await this.flush();
    for (const [collector, p] of this.pending) {
      this.mergeDrop('shutdown', p.series);
      this.ctx.log.warn({ collector, series: p.series, intervals: p.intervals }, 'stopped with merged metric intervals its lane had no room for; dropped');
    }
    this.pending.clear();
    await this.forwarder.stop(Math.max(0, deadline - Date.now()));
    await this.http?.close();
    this.http = null;
    if (this.grok !== null) await (await this.grok).stop();
  }
}
