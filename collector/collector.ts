/**
 * The collector's wiring: the HTTP server with ingest, exposition and API routes, built from
 * validated config. Sinks start before the listener opens; the listener closes before they stop.
 */
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance } from 'fastify';
import type { CollectorConfig } from './config.ts';
import type { Telemetry } from '../shared/telemetry.ts';
import type { Logger } from '../shared/log.ts';
import { parseListen, formatAddress } from '../shared/address.ts';
import { PlumbError } from '../shared/errors.ts';
import { MetricStore } from './metrics/store.ts';
import { MetricSinks } from './metrics/sinks/export.ts';
import { AlertEngine, alertRoutes, registerRuleFleetRoutes, RulePeers, WINDOW_CHUNK_PREFIX } from './alerts/index.ts';
import { installBodyHandling } from './ingest/http.ts';
import { registerMetricsIngest } from './ingest/metrics.ts';
import { tracesIngestPlugin } from './ingest/traces.ts';
import { IngestState } from './ingest/state.ts';
import { HeapGuard } from './ingest/limits.ts';
import { ZipkinExporter } from './traces/zipkin-exporter.ts';
import { SpanMetrics } from './traces/spanmetrics.ts';
import { TRACING_OFF, SPAN_INGEST, traceRoutes, type SelfTracing } from '../shared/tracing.ts';
import { TRACES_PATH } from '../shared/zipkin.ts';
import { LOGS_PATH, METRICS_PATH } from '../shared/wire.ts';
import { LogRouter } from './logs/router.ts';
import { PatternMiner } from './patterns/miner.ts';
import { patternRoutes } from './patterns/routes.ts';
import { logsIngestPlugin } from './ingest/logs.ts';
import { SpanIndex } from './traces/span-index.ts';
import { NO_SPAN_SINKS, SwappableSpanSinks, type SpanSinkSet } from './traces/swap.ts';
import { createOtlpSpanExport } from './traces/otlp.ts';
import { BodyBudget, httpServerOptions, installHttpLimits } from '../shared/http-limits.ts';
import { resolveSecurity, installAuth, credentialCheck, type Security } from '../shared/security.ts';
import os from 'node:os';
import type { OtlpIntake } from '../shared/otlp/intake.ts';
import type { OtlpServer } from '../shared/otlp/http.ts';
import type { Membership } from '../shared/membership.ts';
import { membershipFor } from './fleet/fleet.ts';
import { Peers, fleetToken } from './fleet/peers.ts';
import { FleetRouter } from './fleet/router.ts';
import { Handoff } from './fleet/handoff.ts';
import { fleetAnswer, registerFleetRoutes, type FleetRoutesOptions } from './fleet/routes.ts';
import { AgentsSeen } from './ingest/agents.ts';
import { SloHistory } from './alerts/slo-history.ts';
import { consoleRoutes } from '../shared/console/routes.ts';
import type { GrokService } from '../shared/console/grok.ts';
import type { FleetBody, FleetRulesBody } from '../shared/console/pages/fleet.ts';
import type { RulesBody } from '../shared/console/pages/alerts.ts';
import type { StatusContext, StatusModel } from '../shared/status.ts';
import { collectorStatusModel } from './status.ts';
import { TapHub, registerTapRoute } from '../shared/tap.ts';
import { SwappableLogSink } from './logs/swap.ts';
import { ConfigBundles } from './fleet/bundles.ts';
import type { ReloadRule } from '../shared/reload.ts';

export interface CollectorContext {
  telemetry: Telemetry;
  log: Logger;
  /** plumb's own traces; off when absent. */
  tracing?: SelfTracing;
  /** Where collector.auth.tokensEnv is looked up (the CLI passes process.env). */
  env?: Record<string, string | undefined>;
  /**
   * /readyz keeps answering 503 after start() until markReady() (`plumb all`: until the agent
   * in the same process, its Zipkin receiver included, accepts too).
   */
  holdReady?: boolean;
  /** plumb's version, shown by the console. */
  version?: string;
  /** The grok debugger the console and POST /api/v1/grok use (the CLI lends the agent's); none when absent. */
  grok?: () => GrokService | null;
  /** Version and config identity for the status report (the CLI passes them). */
  status?: StatusContext;
}

/**
 * Which component owns which keys, for a whole-config reload (shared/reload.ts). Listeners,
 * security (tokens, TLS), the data directory, the journal and the fleet are fixed for the life
 * of the process, and so are the settings that shape what the store already holds (quantiles,
 * windows, sketch accuracy).
 */
export const COLLECTOR_RELOAD_RULES: readonly ReloadRule[] = [
  ...['mappings', 'maxSeries', 'seriesTtl', 'maxEvents'].map((k) => ({ path: `collector.metrics.${k}`, component: 'collector:metric-store' })),
  ...['maxSeriesPerAgent', 'maxLabels', 'maxLabelLength'].map((k) => ({ path: `collector.limits.${k}`, component: 'collector:metric-store' })),
  { path: 'collector.metrics.sinks', component: 'collector:metric-sinks' },
  { path: 'collector.logs', component: 'collector:log-sinks' },
  { path: 'collector.logs.queue.retryAfter', component: null },
  ...['zipkin', 'elasticsearch', 'otlp'].map((k) => ({ path: `collector.traces.${k}`, component: 'collector:span-sinks' })),
  { path: 'collector.configBundles', component: 'collector:config-bundles' },
];

export class PlumbCollector {
  config: CollectorConfig;
  private readonly ctx: CollectorContext;
  readonly store: MetricStore;
  readonly spanMetrics: SpanMetrics | null;
  readonly alerts: AlertEngine;
  /** Log pattern mining (collector.patterns); null when off. */
  readonly patterns: PatternMiner | null;
  /** Log sinks and their disk queues; opened by start(). */
  logs: LogRouter | null = null;
  /** What ingest hands log batches to: the router of the moment (a reload may replace it). */
  private readonly logSink = new SwappableLogSink();
  /** One reconfiguration at a time. */
  private reconfiguring: Promise<unknown> = Promise.resolve();
  /** remote_write and Graphite sinks with their export clock; opened by start(). */
  metricSinks: MetricSinks | null = null;
  /** What ingest hands spans to: the span sinks of the moment (a reload may replace them). */
  private readonly spanSinks = new SwappableSpanSinks();
  private readonly tracing: SelfTracing;
  private app: FastifyInstance | null = null;
  private expireTimer: NodeJS.Timeout | null = null;
  /** Journaled counters and replay ids; restored by start() before the listener opens. */
  state: IngestState | null = null;
  private heapGuard: HeapGuard | null = null;
  /** The OTLP doors' intake; null unless collector.otlp.enabled. Opened by start(). */
  otlp: OtlpIntake | null = null;
  private otlpServers: OtlpServer[] = [];
  /** The other collectors and who owns what; null without collector.fleet (a collector alone). */
  membership: Membership | null = null;
  /** Forwards series to their owners; null without collector.fleet. */
  router: FleetRouter | null = null;
  private peers: Peers | null = null;
  private handoff: Handoff | null = null;
  /** The member list changed: series now owned by another member are to be handed over. */
  private rebalancePending = false;
  private rebalancing: Promise<void> | null = null;
  private wakeRebalance: (() => void) | null = null;
  /** Agents heard from, by the x-plumb-agent header of their batches. */
  readonly agentsSeen = new AgentsSeen();
  /** Fleet config bundles for agents (GET /api/v1/config/<group>). */
  readonly bundles: ConfigBundles;
  /** SLO budgets and burn rates over time, for the console's charts. */
  private readonly sloHistory: SloHistory;
  /** What GET /readyz says: 503 unless 'ready'. */
  private phase: 'starting' | 'ready' | 'stopping' = 'starting';
  address = '';
  /** GET /api/v1/status: ingest, transforms and sinks with their queues (status.ts). */
  readonly status: StatusModel;
  /** GET /api/v1/tap: what passes the ingest doors, live (shared/tap.ts). */
  readonly taps: TapHub;

  /** The Zipkin sink; null unless collector.traces.zipkin is configured. */
  get zipkinExporter(): ZipkinExporter | null {
    return this.spanSinks.sinks.zipkin;
  }

  /** Spans in Elasticsearch; null unless collector.traces.elasticsearch is configured. Opened by start(). */
  get spanIndex(): SpanIndex | null {
    return this.spanSinks.sinks.index;
  }

  /** The OTLP span sink; null unless collector.traces.otlp is configured. Opened by start(). */
  get spanExport(): SpanIndex | null {
    return this.spanSinks.sinks.export;
  }

  constructor(config: CollectorConfig, ctx: CollectorContext) {
    this.config = config;
    this.ctx = ctx;
    const m = config.metrics;
    this.store = new MetricStore(
      {
        quantiles: m.quantiles,
        windowMs: m.window,
        seriesTtlMs: m.seriesTtl,
        mappings: m.mappings,
        maxSeries: m.maxSeries,
        maxSetMembers: m.maxSetMembers,
        relativeAccuracy: m.relativeAccuracy,
        maxEvents: m.maxEvents,
        maxSeriesPerAgent: config.limits.maxSeriesPerAgent,
        maxLabels: config.limits.maxLabels,
        maxLabelLength: config.limits.maxLabelLength,
      },
      ctx.telemetry,
    );
    this.tracing = ctx.tracing ?? TRACING_OFF;
    const t = config.traces;
    const tracesCtx = { telemetry: ctx.telemetry, log: ctx.log, tracing: this.tracing };
    this.spanMetrics = t.spanMetrics.enabled ? new SpanMetrics(t.spanMetrics, tracesCtx) : null;
    const j = config.journal;
    this.patterns = config.patterns.enabled ? new PatternMiner(config.patterns, { telemetry: ctx.telemetry, log: ctx.log.child({ component: 'patterns' }), dataDir: resolve(config.dataDir) }) : null;
    this.alerts = new AlertEngine({
      patterns: this.patterns,
      config: config.alerts,
      telemetry: ctx.telemetry,
      log: ctx.log.child({ component: 'alerts' }),
      // one definition of stale: a gauge counts for alerts exactly as long as /metrics shows it
      staleAfter: m.seriesTtl,
      persist: {
        dir: join(resolve(config.dataDir), 'state', 'alert-rules'),
        fsync: j.fsync,
        fsyncIntervalMs: j.fsyncInterval,
        checkpointBytes: Math.min(j.checkpointBytes, 4 * 1024 * 1024),
        checkpointIntervalMs: j.checkpointInterval,
      },
    });
    this.bundles = new ConfigBundles(config.configBundles, ctx.telemetry);
    const alerts = this.alerts;
    this.sloHistory = new SloHistory(() => alerts.slos(), Math.max(1000, config.alerts.evaluationInterval));
    this.store.observer = {
      wants: (statsdName, name) => alerts.wantsMetric(statsdName, name),
      observe: (o, now) => alerts.observeMetric(o, now),
      observeCumulative: (o, now) => alerts.observeCumulative(o, now),
    };
    this.status = collectorStatusModel(this, ctx.telemetry, ctx.status);
    this.taps = new TapHub(ctx.telemetry);
  }

  /** Re-reads the alert rule file (SIGHUP); a broken file keeps the running rules. */
  async reload(): Promise<void> {
    const result = await this.alerts.reload();
    if (result.ok) this.ctx.log.info({ rules: result.rules }, 'alert rules reloaded');
    else this.ctx.log.error({ errors: result.errors }, 'alert rule file has errors; the previous rules keep running');
  }

  /**
   * Applies a new, already validated config to the running collector: only the components named
   * (from COLLECTOR_RELOAD_RULES) are touched. Sinks drain until the reload deadline; what their
   * disk queues still hold is taken over by the new sinks, which open the same queues.
   */
  async reconfigure(next: CollectorConfig, components: readonly string[], deadlineMs = 10_000): Promise<void> {
    const run = this.reconfiguring.then(() => this.applyConfig(next, new Set(components), deadlineMs));
    this.reconfiguring = run.catch(() => undefined);
    return run;
  }

  private async applyConfig(next: CollectorConfig, c: Set<string>, deadlineMs: number): Promise<void> {
    const prev = this.config;
    this.config = next;
    const log = this.ctx.log.child({ component: 'reload' });
    if (c.has('collector:config-bundles')) this.bundles.reconfigure(next.configBundles);
    if (c.has('collector:metric-store')) {
      const m = next.metrics;
      const l = next.limits;
      this.store.reconfigure({ mappings: m.mappings, maxSeries: m.maxSeries, seriesTtlMs: m.seriesTtl, maxEvents: m.maxEvents, maxSeriesPerAgent: l.maxSeriesPerAgent, maxLabels: l.maxLabels, maxLabelLength: l.maxLabelLength });
    }
    const sinkCtx = { telemetry: this.ctx.telemetry, log: this.ctx.log, dataDir: next.dataDir, tracing: this.tracing };
    if (c.has('collector:metric-sinks') && this.metricSinks !== null) {
      await this.metricSinks.stop(Date.now() + Math.min(deadlineMs, prev.metrics.sinks.stopTimeout));
      this.metricSinks = null;
      try {
        this.metricSinks = await MetricSinks.create(next.metrics.sinks, this.store, sinkCtx);
      } catch (err) {
        this.metricSinks = await MetricSinks.create(prev.metrics.sinks, this.store, sinkCtx);
        this.metricSinks.start();
        this.config = { ...this.config, metrics: { ...this.config.metrics, sinks: prev.metrics.sinks } };
        throw err;
      }
      this.metricSinks.start();
      log.info('metric sinks restarted for the new config');
    }
    if (c.has('collector:log-sinks') && this.logs !== null) {
      let failure: unknown;
      await this.logSink.replace(async () => {
        await this.logs?.stop(Date.now() + Math.min(deadlineMs, prev.logs.stopTimeout));
        let router: LogRouter;
        try {
          router = await LogRouter.create(next.logs, sinkCtx);
        } catch (err) {
          failure = err;
          router = await LogRouter.create(prev.logs, sinkCtx);
          this.config = { ...this.config, logs: prev.logs };
        }
        router.start();
        this.logs = router;
        return router;
      });
      if (failure !== undefined) throw failure;
      log.info({ sinks: this.logs.sinks }, 'log sinks restarted for the new config');
    }
    if (c.has('collector:span-sinks') && this.app !== null) {
      let failure: unknown;
      await this.spanSinks.replace(async (old) => {
        await stopSpanSinks(old, Date.now() + deadlineMs);
        try {
          return await this.openSpanSinks(next);
        } catch (err) {
          failure = err;
          this.config = { ...this.config, traces: { ...this.config.traces, zipkin: prev.traces.zipkin, elasticsearch: prev.traces.elasticsearch, otlp: prev.traces.otlp } };
          return this.openSpanSinks(prev);
        }
      });
      if (failure !== undefined) throw failure;
      const s = this.spanSinks.sinks;
      log.info({ zipkin: s.zipkin !== null, elasticsearch: s.index !== null, otlp: s.export !== null }, 'span sinks restarted for the new config');
    }
  }

  /** The span sinks collector.traces asks for, started; what was opened is stopped again if one fails. */
  private async openSpanSinks(config: CollectorConfig): Promise<SpanSinkSet> {
    const t = config.traces;
    const ctx = { telemetry: this.ctx.telemetry, log: this.ctx.log, dataDir: config.dataDir, tracing: this.tracing };
    const sinks: SpanSinkSet = { zipkin: null, index: null, export: null };
    try {
      if (t.zipkin !== undefined) sinks.zipkin = new ZipkinExporter(t.zipkin, ctx);
      if (t.elasticsearch !== undefined) sinks.index = await SpanIndex.create(t.elasticsearch, ctx);
      if (t.otlp !== undefined) sinks.export = await createOtlpSpanExport(t.otlp, ctx);
    } catch (err) {
      await stopSpanSinks(sinks, Date.now());
      throw err;
    }
    // sinks before sources: started only once all of them opened
    sinks.zipkin?.start();
    sinks.index?.start();
    sinks.export?.start();
    return sinks;
  }

  /** Base URL agents post to. */
  get url(): string {
    return `${this.config.tls ? 'https' : 'http'}://${this.address}`;
  }

  async start(): Promise<void> {
    this.phase = 'starting';
    // tokens, certificates and the loopback rule first: a collector that would start open fails before opening anything
    const security = resolveSecurity(this.config, this.ctx.env ?? {}, this.ctx.log);
    // rules and their saved alerts first; evaluation once the windows are back (below)
    await this.alerts.start({ evaluate: false });
    this.logs = await LogRouter.create(this.config.logs, { telemetry: this.ctx.telemetry, log: this.ctx.log, dataDir: this.config.dataDir, tracing: this.tracing });
    this.logs.start();
    this.logSink.router = this.logs;
    const logs = this.logSink;
    this.patterns?.start();
    // sinks before the listener: the exporter takes spans as soon as agents can post
    this.spanSinks.sinks = await this.openSpanSinks(this.config);
    const spanSinks = this.spanSinks;
    const fleet = this.config.fleet;
    if (fleet !== undefined) {
      const fleetLog = this.ctx.log.child({ component: 'fleet' });
      this.peers ??= new Peers(fleet);
      this.handoff ??= new Handoff({ telemetry: this.ctx.telemetry, log: fleetLog });
      this.membership = membershipFor({ ...this.config, fleet }, { telemetry: this.ctx.telemetry, log: fleetLog });
      await this.membership.start();
    }
    const stateCtx = { telemetry: this.ctx.telemetry, log: this.ctx.log.child({ component: 'ingest-state' }) };
    const alerts = this.alerts;
    const windows = { prefix: WINDOW_CHUNK_PREFIX, snapshot: () => alerts.windowChunks(), restore: (chunks: Buffer[]) => alerts.restoreWindows(chunks) };
    const state = (this.state = await IngestState.open(this.store, this.config, stateCtx, windows));
    // in a fleet, each rule is evaluated by one collector over every collector's data
    const ruleToken = fleet === undefined ? undefined : fleetToken(fleet);
    if (this.membership !== null && fleet !== undefined) {
      const interval = this.config.alerts.evaluationInterval;
      alerts.attachFleet(this.membership, new RulePeers({ token: ruleToken, timeout: Math.min(fleet.timeout, Math.max(1000, 2 * interval)), probeTimeout: Math.min(fleet.timeout, Math.max(2000, interval)) }));
    }
    alerts.startEvaluating();
    // after the state is restored: the first export carries what the journal brought back
    this.metricSinks = await MetricSinks.create(this.config.metrics.sinks, this.store, { telemetry: this.ctx.telemetry, log: this.ctx.log, dataDir: this.config.dataDir, tracing: this.tracing });
    this.metricSinks.start();
    this.heapGuard = new HeapGuard(this.config.limits, this.ctx.telemetry, this.ctx.log.child({ component: 'limits' }));
    this.heapGuard.start();
    const app = Fastify({ logger: false, bodyLimit: this.config.maxBodyBytes, ...httpServerOptions(this.config.http, security.https) }) as unknown as FastifyInstance;
    installHttpLimits(app, this.config.http, this.ctx.telemetry, 'collector');
    installAuth(app, security, { internal: fleet !== undefined });
    this.heapGuard.install(app);
    const budget = new BodyBudget(this.config.limits.maxBodyBytesInFlight, this.ctx.telemetry, 'collector');
    installBodyHandling(app, this.ctx.telemetry, budget, this.config.limits.retryAfter);
    traceRoutes(app, this.tracing, SPAN_INGEST, [METRICS_PATH, TRACES_PATH, LOGS_PATH]);
    const membership = this.membership;
    this.agentsSeen.install(app, { metrics: METRICS_PATH, logs: LOGS_PATH, traces: TRACES_PATH });
    this.bundles.register(app, (header, address) => this.agentsSeen.note(header, 'config', address, Date.now()));
    const agentsSeen = this.agentsSeen;
    let fleetBody: () => Record<string, unknown> = () => ({ fleet: false, self: null, members: [], agents: agentsSeen.list() });
    if (membership !== null && fleet !== undefined && this.peers !== null && this.handoff !== null) {
      this.router = new FleetRouter(membership, this.peers, state.metrics, { telemetry: this.ctx.telemetry, log: this.ctx.log.child({ component: 'fleet' }) });
      const fleetOptions: FleetRoutesOptions = {
        config: fleet,
        membership,
        router: this.router,
        handoff: this.handoff,
        intake: state.metrics,
        authorization: this.peers.expectedAuthorization,
        maxMetricsPerBatch: this.config.maxMetricsPerBatch,
        accepting: () => this.phase !== 'stopping',
        moreStatus: () => ({ rules: this.alerts.fleetOwnership(), agents: agentsSeen.list() }),
      };
      registerFleetRoutes(app, fleetOptions);
      fleetBody = () => fleetAnswer(fleetOptions);
    } else {
      app.get('/api/v1/fleet', async () => fleetBody());
    }
    registerMetricsIngest(app, state.metrics, { maxMetricsPerBatch: this.config.maxMetricsPerBatch, router: this.router, tap: this.taps.point('ingest_metrics', 'metric') }, this.ctx.telemetry, this.ctx.log.child({ component: 'metrics-ingest' }));
    await app.register(tracesIngestPlugin, {
      recent: state.traceIds,
      sink: spanSinks.zipkin,
      index: spanSinks.durable,
      spanMetrics: this.spanMetrics,
      maxSpansPerBatch: this.config.traces.maxSpansPerBatch,
      tap: this.taps.point('ingest_traces', 'span'),
      retryAfterMs: this.config.traces.retryAfter,
      telemetry: this.ctx.telemetry,
      tracing: this.tracing,
    });
    await app.register(logsIngestPlugin, {
      sink: logs,
      observer: { get observesLogs() { return alerts.observesLogs; }, observeLog: (event, now) => alerts.observeLog(event, now) },
      seen: state.logIds,
      patterns: this.patterns,
      maxEventsPerBatch: this.config.maxEventsPerBatch,
      retryAfterMs: this.config.logs.queue.retryAfter,
      telemetry: this.ctx.telemetry,
      tracing: this.tracing,
      log: this.ctx.log.child({ component: 'logs-ingest' }),
      tap: this.taps.point('ingest_logs', 'event'),
    });
    app.get('/api/v1/sinks', async () => ({ sinks: this.logs?.status() ?? [], spans: [this.spanIndex, this.spanExport].flatMap((s) => s?.status() ?? []), metrics: this.metricSinks?.status() ?? [] }));
    app.get('/metrics', async (_req, reply) => {
      reply.type('text/plain; version=0.0.4; charset=utf-8');
      // The store's series go out in pieces as the socket takes them (500k series are ~25 MB of
      // text); the span metrics, ALERTS and self-metrics after them are small and read now.
      const now = Date.now();
      this.store.expire(now);
      const tail = (this.spanMetrics?.renderSpanMetrics() ?? '') + this.alerts.metricsText() + (await this.ctx.telemetry.metrics());
      return Readable.from(exposition(this.store.renderChunks(now), tail), { objectMode: false });
    });
    app.get('/healthz', async () => ({ status: 'ok' }));

    app.get('/readyz', async (_req, reply) => reply.code(this.phase === 'ready' ? 200 : 503).send({ status: this.phase }));
    app.get('/api/v1/events', async () => ({ events: this.store.recentEvents() }));
    app.get('/api/v1/status', async () => this.status.report());
    registerTapRoute(app, this.taps);
    await app.register(alertRoutes(this.alerts));
    if (this.membership !== null) registerRuleFleetRoutes(app, this.alerts, ruleToken);
    await app.register(patternRoutes(this.patterns));
    this.sloHistory.start();
    const sloHistory = this.sloHistory;
    await app.register(
      consoleRoutes({
        role: 'collector',
        hostname: os.hostname(),
        version: this.ctx.version ?? 'unknown',
        grok: this.ctx.grok ?? (() => null),
        status: () => this.status.report(),
        tapComponents: () => this.taps.components,
        login: security.tokenDigests.length > 0,
        secure: security.https !== null,
        alerts: { rules: () => alerts.rulesJSON() as unknown as RulesBody, history: (slo) => sloHistory.samples(slo) },
        fleet: {
          fleet: () => fleetBody() as unknown as FleetBody,
          rules: () => alerts.fleetRules() as unknown as FleetRulesBody,
          // agents flush every 10 s by default: three missed flushes
          staleAfterMs: 30_000,
        },
      }),
    );
    const addr = parseListen(this.config.listen);
    try {
      await app.listen({ host: addr.host, port: addr.port });
    } catch (err) {
      throw new PlumbError('PLUMB_ERR_LISTEN', `collector.listen: cannot listen on ${this.config.listen}: ${(err as Error).message}`);
    }
    const a = app.server.address() as { address: string; port: number };
    this.address = formatAddress(a.address, a.port);
    this.app = app;
    // listening on port 0: the member URL is known only now
    if (this.membership !== null && fleet?.self === undefined && parseListen(this.config.listen).port === 0) this.membership.setSelf(this.url);
    alerts.fleetReady();
    if (this.membership !== null) {
      this.membership.onChange = () => this.scheduleRebalance();
      this.scheduleRebalance();
    }
    this.expireTimer = setInterval(() => this.store.expire(), 10_000);
    this.expireTimer.unref();
    this.status.start();
    await this.startOtlp(security);
    if (this.phase === 'starting' && this.ctx.holdReady !== true) this.phase = 'ready';
    this.ctx.log.info({ listen: this.address }, 'collector listening');
  }

  /**
   * After a change of the member list, hands the series whose owner is now another ready member
   * to it (one pass at a time). A pass that moved something is followed by one more, for series
   * a collector that read the list later still sent here meanwhile.
   */
  private scheduleRebalance(): void {
    this.rebalancePending = true;
    this.rebalancing ??= (async () => {
      while (this.rebalancePending && this.phase !== 'stopping') {
        this.rebalancePending = false;
        const fleet = this.config.fleet;
        const { state, membership, peers, handoff, router } = this;
        if (fleet === undefined || state === null || membership === null || peers === null || handoff === null) return;
        const r = await handoff
          .rebalance(state.metrics, membership, peers, Date.now() + Math.min(fleet.handoffTimeout, fleet.timeout), (peer, bytes) => router?.countBytes(peer, bytes))
          .catch((err: unknown) => {
            this.ctx.log.error({ err }, 'handing series to their new owners failed; they stay here until the next change');
            return null;
          });
        if (r !== null && (Object.keys(r.moved).length > 0 || r.kept > 0)) {
          // once more after an interval, for late forwards and owners not ready yet (stop() cuts the wait short)
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.max(100, fleet.interval));
            this.wakeRebalance = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.wakeRebalance = null;
          this.rebalancePending = true;
        }
      }
    })().finally(() => {
      this.rebalancing = null;
    });
  }

  /** The OTLP doors, with the same credentials, TLS, body limit and heap guard as the main listener. */
  private async startOtlp(security: Security): Promise<void> {
    const o = this.config.otlp;
    const state = this.state;
    const logs = this.logSink;
    if (!o.enabled || state === null || this.logs === null) return;
    // the loopback rule applies to every address the collector takes data on
    for (const [on, listen] of [[o.http.enabled, o.http.listen], [o.grpc.enabled, o.grpc.listen]] as const) {
      if (on) resolveSecurity({ ...this.config, listen }, this.ctx.env ?? {}, this.ctx.log, 'collector');
    }
    // loaded only when asked for: protobufjs and gRPC cost start-up time
    const [{ OtlpIntake }, { startOtlpHttp }, { startOtlpGrpc }, { CollectorOtlpSink }] = await Promise.all([
      import('../shared/otlp/intake.ts'),
      import('../shared/otlp/http.ts'),
      import('../shared/otlp/grpc.ts'),
      import('./ingest/otlp.ts'),
    ]);
    const alerts = this.alerts;
    const sink = new CollectorOtlpSink({
      metrics: state.metrics,
      router: this.router,
      index: this.spanSinks.durable,
      zipkin: this.spanSinks.zipkin,
      spanMetrics: this.spanMetrics,
      logs,
      seenLogIds: state.logIds,
      observer: { get observesLogs() { return alerts.observesLogs; }, observeLog: (event, now) => alerts.observeLog(event, now) },
    });
    const otlp = (this.otlp = new OtlpIntake(
      sink,
      {
        metrics: { resourceLabels: o.metrics.resourceLabels, relativeAccuracy: this.config.metrics.relativeAccuracy, maxStreams: o.metrics.maxStreams, streamTtlMs: o.metrics.streamTtl },
        hostName: os.hostname(),
        role: 'collector',
      },
      this.ctx.telemetry,
    ));
    otlp.start();
    const log = this.ctx.log.child({ component: 'otlp' });
    const heapGuard = this.heapGuard;
    if (o.http.enabled) {
      this.otlpServers.push(
        await startOtlpHttp({
          config: o,
          intake: otlp,
          log,
          at: 'collector.otlp',
          serverOptions: httpServerOptions(this.config.http, security.https),
          configure: (app) => {
            installHttpLimits(app, this.config.http, this.ctx.telemetry, 'otlp');
            installAuth(app, security);
            heapGuard?.install(app);
          },
        }),
      );
    }
    if (o.grpc.enabled) {
      const tls = security.https ? { cert: security.https.cert, key: security.https.key, ca: security.https.ca, requireClientCert: security.clientAuth === 'require' } : null;
      this.otlpServers.push(await startOtlpGrpc({ config: o, intake: otlp, log, at: 'collector.otlp', tls, authorize: credentialCheck(security) }));
    }
  }

  /** host:port of the OTLP/HTTP and OTLP/gRPC doors, in that order ('' when off). */
  get otlpAddresses(): { http: string; grpc: string } {
    const o = this.config.otlp;
    const http = o.http.enabled ? (this.otlpServers[0]?.address ?? '') : '';
    const grpc = o.grpc.enabled ? (this.otlpServers[o.http.enabled ? 1 : 0]?.address ?? '') : '';
    return { http, grpc };
  }

  /** /readyz answers 200 from now on (for a collector started with holdReady). */
  markReady(): void {
    if (this.phase === 'starting' && this.app !== null) this.phase = 'ready';
  }

  /**
   * Closes the listener (requests in flight finish); in a fleet, hands the series it holds to
   * their owners among the other members; then drains the sinks until the deadline.
   */
  async stop(deadlineMs = 10_000 + (this.config.fleet?.handoffTimeout ?? 0)): Promise<void> {
    await this.reconfiguring;
    const deadline = Date.now() + deadlineMs;
    this.phase = 'stopping';
    this.status.stop();
    this.taps.closeAll();
    if (this.expireTimer) clearInterval(this.expireTimer);
    this.expireTimer = null;
    this.heapGuard?.stop();
    this.sloHistory.stop();
    for (const server of this.otlpServers) await server.stop();
    this.otlpServers = [];
    this.otlp?.stop();
    this.otlp = null;
    await this.app?.close();
    this.app = null;
    const fleet = this.config.fleet;
    if (this.membership !== null) this.membership.onChange = null;
    this.wakeRebalance?.();
    await this.rebalancing;
    if (this.state !== null && this.membership !== null && this.peers !== null && this.handoff !== null && fleet !== undefined) {
      const router = this.router;
      await this.handoff
        .handOver(this.state.metrics, this.membership, this.peers, Math.min(deadline, Date.now() + fleet.handoffTimeout), (peer, bytes) => router?.countBytes(peer, bytes))
        .catch((err: unknown) => this.ctx.log.error({ err }, 'handing series over failed; they stay in the data dir'));
    }
    this.router = null;
    // no request is in flight now: a last checkpoint, so the next start replays nothing
    await this.state?.close();
    this.state = null;
    await this.logs?.stop(deadline);
    this.logs = null;
    await this.metricSinks?.stop(deadline);
    this.metricSinks = null;
    this.patterns?.stop();
    await stopSpanSinks(this.spanSinks.sinks, deadline);
    this.spanSinks.sinks = NO_SPAN_SINKS;
    await this.alerts.stop(Math.max(0, deadline - Date.now()));
    await this.membership?.stop();
    this.membership = null;
    await this.peers?.close();
    this.peers = null;
  }
}

/** Drains the span sinks until the deadline (the span index and the OTLP export keep what is left in their disk queues). */
async function stopSpanSinks(sinks: SpanSinkSet, deadline: number): Promise<void> {
  await sinks.zipkin?.stop(deadline);
  await sinks.index?.stop(deadline);
  await sinks.export?.stop(deadline);
}

/** The /metrics body: the store's pieces, then the rest of the exposition. */
function* exposition(store: Iterable<string>, tail: string): Generator<string, void, undefined> {
  yield* store;
  if (tail !== '') yield tail;
}
