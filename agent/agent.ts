/**
 * The agent's wiring: builds every stage from validated config and owns their lifecycle.
 * Sinks start before sources and sources stop before sinks, so nothing accepted is left behind.
 */
import os from 'node:os';
import Fastify, { type FastifyInstance } from 'fastify';
import type { AgentConfig } from './config.ts';
import { Aggregator } from './statsd/aggregator.ts';
import { StatsdServer } from './statsd/server.ts';
import { Forwarder } from './forward/forwarder.ts';
import type { Telemetry } from '../shared/telemetry.ts';
import type { Logger } from '../shared/log.ts';
import { parseListen, formatAddress } from '../shared/address.ts';
import { PlumbError } from '../shared/errors.ts';
import { METRICS_PATH, type MetricBatch } from '../shared/wire.ts';
import { describeParseError } from './statsd/parser.ts';
import { HostCollector, ServiceChecker, checkSamples, serviceCheckStatuses, type HostSample } from './host/index.ts';

export interface AgentContext {
  telemetry: Telemetry;
  log: Logger;
}

export class PlumbAgent {
  readonly config: AgentConfig;
  private readonly ctx: AgentContext;
  readonly aggregator: Aggregator;
  readonly statsd: StatsdServer;
  readonly forwarder: Forwarder;
  readonly host: HostCollector | null;
  readonly checks: ServiceChecker | null;
  private http: FastifyInstance | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  /** `${id}@${start}`: a restarted agent never reuses an earlier run's batch ids. */
  readonly instance: string;
  private seq = 0;
  httpAddress = '';
  private ready = false;

  constructor(config: AgentConfig, ctx: AgentContext) {
    this.config = config;
    this.ctx = ctx;
    const hostname = config.hostname ?? os.hostname();
    this.instance = `${config.id ?? hostname}@${Date.now()}`;
    const s = config.statsd;
    this.aggregator = new Aggregator(
      {
        maxSeries: s.maxSeries,
        maxSetMembers: s.maxSetMembers,
        relativeAccuracy: s.relativeAccuracy,
        tagStyles: s.tagStyles,
        maxEvents: s.maxEvents,
        gaugeTtlMs: s.gaugeTtl,
        extraTags: s.tags,
      },
      ctx.telemetry,
    );
    this.statsd = new StatsdServer(
      { listen: s.listen, tcp: s.tcp, receiveBufferBytes: s.receiveBuffer, maxLineBytes: s.maxLineBytes },
      this.aggregator,
      { telemetry: ctx.telemetry, log: ctx.log.child({ component: 'statsd' }) },
    );
    const f = config.forward;
    this.forwarder = new Forwarder(
      {
        collectors: f.collectors,
        timeoutMs: f.timeout,
        maxQueueBytes: f.maxQueueBytes,
        maxQueueBatches: f.maxQueueBatches,
        backoff: { initialMs: f.retryInitial, maxMs: f.retryMax },
        compress: f.compress,
      },
      { telemetry: ctx.telemetry, log: ctx.log.child({ component: 'forward' }) },
    );
    const hostCtx = { telemetry: ctx.telemetry, log: ctx.log.child({ component: 'host' }) };
    this.host = config.host.enabled ? new HostCollector({ ...config.host, hostname: config.host.hostname ?? config.hostname }, hostCtx) : null;
    this.checks = config.checks.checks.length > 0 ? new ServiceChecker(config.checks, hostCtx) : null;
  }

  async start(): Promise<void> {
    this.forwarder.start();
    await this.startHttp();
    if (this.config.statsd.enabled) {
      await this.statsd.start();
      this.flushTimer = setInterval(() => void this.flush(), this.config.statsd.flushInterval);
      this.flushTimer.unref();
    }
    const addSamples = (samples: HostSample[]): void => {
      for (const s of samples) this.aggregator.addSample(s.name, s.type, s.value, s.tags);
    };
    this.host?.start(addSamples);
    if (this.checks) {
      const hostname = this.config.hostname ?? (this.host ? await this.host.hostname() : os.hostname());
      this.checks.start((results) => {
        addSamples(checkSamples(results, hostname));
        for (const c of serviceCheckStatuses(results, hostname)) this.aggregator.addServiceCheck(c);
      });
    }
    this.ready = true;
  }

  /** Ends the current interval and queues it for the collector. */
  async flush(): Promise<void> {
    const interval = this.aggregator.flush();
    const err = this.aggregator.lastError;
    if (err) this.ctx.log.warn({ reason: err.reason, line: err.line }, `statsd line rejected: ${describeParseError(err.reason)}`);
    if (interval.metrics.length === 0 && interval.events.length === 0 && interval.serviceChecks.length === 0) return;
    const seq = ++this.seq;
    const batch: MetricBatch = { id: `${this.instance}:${seq}`, agent: this.instance, seq, ...interval };
    await this.forwarder.send('metrics', METRICS_PATH, batch.id, batch);
  }

  private async startHttp(): Promise<void> {
    const app = Fastify({ logger: false });
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/readyz', async (_req, reply) => {
      if (!this.ready) return reply.code(503).send({ status: 'starting' });
      return { status: 'ready', forwardQueue: this.forwarder.queuedBatches };
    });
    app.get('/metrics', async (_req, reply) => {
      reply.type('text/plain; version=0.0.4; charset=utf-8');
      return this.ctx.telemetry.metrics();
    });
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

  /** Stop intake, flush the interval in hand, drain the forwarder within the deadline. */
  async stop(deadlineMs = 10_000): Promise<void> {
    this.ready = false;
    if (this.flushTimer) clearInterval(this.flushTimer);
    this.flushTimer = null;
    await this.statsd.stop();
    await this.host?.stop();
    await this.checks?.stop();
    await this.flush();
    await this.forwarder.stop(deadlineMs);
    await this.http?.close();
    this.http = null;
  }
}
