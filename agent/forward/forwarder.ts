/**
 * Agent → collector delivery, in lanes that send side by side:
 *
 * - one metrics lane per configured collector: the agent shards each interval by series
 *   (shard.ts) and addresses one batch to each collector; a batch waits for its collector and is
 *   never re-routed, because a collector that died may have applied it already;
 * - a traces lane and a logs lane, sending to any healthy collector;
 * - metrics lanes found in the spool directory for collectors no longer configured: their
 *   batches go to any healthy collector, then the lane and its directory are removed.
 *
 * Each lane is a bounded memory queue; with agent.forward.spool.enabled the metrics and traces
 * lanes write every batch through to a disk spool before it counts as queued, so a crash or a
 * kill loses nothing that was queued. Logs stay in memory: the tailed file is their buffer.
 * A batch is acknowledged only by a 2xx; a 4xx other than 408/429 is permanent (dropped,
 * counted, logged: resending cannot fix it); anything else is retried with backoff and jitter,
 * honouring Retry-After.
 */
import { createHash } from 'node:crypto';
import { gunzip, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { access, readdir, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import type { Counter } from 'prom-client';
import type { Telemetry } from '../../shared/telemetry.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { PlumbError, errorMessage } from '../../shared/errors.ts';
import { Spool, SPOOL_FRAME_BYTES, type SpoolFsync } from '../../shared/spool.ts';
import type { BackoffOptions } from '../../shared/retry.ts';
import { TRACING_OFF, type SelfTracing } from '../../shared/tracing.ts';
import { Connection, type ForwardAuthOptions, type ForwardTlsOptions } from './connection.ts';
import { CollectorHealth } from './health.ts';
import { Lane, type BatchResult, type ForwardInstruments, type LaneContext } from './lane.ts';
import { ownerOf } from '../../shared/membership.ts';
import { encodeJson, JsonWriter } from '../../shared/json-stream.ts';
import { releaseBuffer } from '../../shared/release.ts';

export type { BatchResult } from './lane.ts';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

export interface ForwardSpoolOptions {
  /** Parent directory: each lane spools into <dir>/<lane>. */
  dir: string;
  /** Total for all lanes, split evenly between the metrics lanes and (when spans are received) the traces lane. */
  maxBytes: number;
  /**
   * Whether the agent receives spans (default true). Without them the traces lane gets no share; a traces spool
   * left by an earlier run is still opened (with one share) so its batches are sent.
   */
  traces?: boolean;
  segmentBytes: number;
  fsync: SpoolFsync;
  fsyncIntervalMs?: number;
}

export interface ForwarderOptions {
  collectors: string[];
  timeoutMs: number;
  /** Limits of each lane's memory queue. */
  maxQueueBytes: number;
  maxQueueBatches: number;
  backoff: BackoffOptions;
  compress: boolean;
  /** gzip level (1–9); 1 when absent. */
  compressLevel?: number;
  /** Log batches posted at once (1 when absent); the tailer takes their acknowledgements in any order. */
  logsInFlight?: number;
  /** How often every collector's /readyz is probed (default 5 s). */
  healthCheckIntervalMs?: number;
  /** Off when absent. */
  spool?: ForwardSpoolOptions;
  auth?: ForwardAuthOptions;
  tls?: ForwardTlsOptions;
  /** The x-plumb-agent header value naming this agent on every batch. */
  identity?: () => string;
}

export interface SendOptions {
  parent?: Context;
  /**
   * 'refuse': a full lane returns 'queue_full' (or 'spool_full') without counting a drop,
   * because the caller keeps the batch and offers it again (the span batcher, the log pipeline).
   */
  whenFull?: 'drop' | 'refuse';
  /** For a Buffer body: its media type (an object body is sent as JSON). */
  contentType?: string;
  /** Metrics: the collector the batch is addressed to (default: the owner of its id among the healthy ones). */
  collector?: string;
  /** A Buffer body that is already JSON as this forwarder sends it: written by jsonWriter() (gzipped when agent.forward.compress). */
  encoded?: boolean;
  /**
   * The caller holds a Buffer body for nothing else once it is queued: its memory is given back
   * then (shared/release.ts) instead of at a major GC, when the lane keeps only its gzip or has
   * written it to its spool.
   */
  release?: boolean;
}

export type SendOutcome = 'queued' | 'queue_full' | 'spool_full';

/** The lane name of a collector's metrics: a short hash of its URL, stable across restarts. */
export function metricsLaneName(collector: string): string {
  return `metrics-${createHash('sha256').update(collector).digest('hex').slice(0, 8)}`;
}

const TRACES_LANE = 'traces';
const LOGS_LANE = 'logs';

export class Forwarder {
  private readonly options: ForwarderOptions;
  private readonly log: Logger;
  private readonly telemetry: Telemetry;
  private readonly health: CollectorHealth;
  private readonly ctx: LaneContext;
  private readonly metricsLanes = new Map<string, Lane>();
  private tracesLane: Lane;
  private readonly logsLane: Lane;
  /** Lanes of collectors no longer configured, found at start. */
  private retiring: Lane[] = [];
  private connectionClosed = false;
  private running = false;
  private starting: Promise<void> | null = null;
  private readonly queued: Counter<'kind'>;

  constructor(options: ForwarderOptions, ctx: { telemetry: Telemetry; log: Logger; tracing?: SelfTracing }) {
    if (options.collectors.length === 0) throw new Error('agent.forward.collectors: at least one collector URL is needed');
    this.options = options;
    this.log = ctx.log;
    this.telemetry = ctx.telemetry;
    const t = ctx.telemetry;
    const instruments: ForwardInstruments = {
      sent: t.counter('plumb_forward_batches_total', 'batches acknowledged by a collector', ['kind']),
      dropped: t.counter('plumb_forward_dropped_total', 'batches dropped by the forwarder, by reason (queue_full, spool_full, rejected, invalid, shutdown)', ['kind', 'reason']),
      retries: t.counter('plumb_forward_retries_total', 'failed sends that will be retried, by reason', ['kind', 'reason']),
      itemsRejected: t.counter('plumb_forward_items_rejected_total', 'items of acknowledged batches that a collector refused one by one, by kind and reason (the rest of each batch applied)', ['kind', 'reason']),
      latency: t.histogram('plumb_forward_request_seconds', 'collector request latency', ['kind'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
    };
    // at 0 from the start: Prometheus' increase() cannot see a first drop on a series born at 1
    for (const kind of ['metrics', 'traces', 'logs']) {
      for (const reason of ['queue_full', 'spool_full', 'rejected', 'invalid', 'shutdown']) instruments.dropped.inc({ kind, reason }, 0);
    }
    this.queued = t.counter('plumb_forward_queued_total', 'batches taken into a lane (memory queue or spool), by kind', ['kind']);
    for (const kind of ['metrics', 'traces', 'logs']) this.queued.inc({ kind }, 0);
    this.health = new CollectorHealth(options.collectors, ctx);
    const connection = new Connection({ auth: options.auth, tls: options.tls, identity: options.identity });
    for (const c of options.collectors) {
      if (connection.hasToken && c.startsWith('http://')) {
        this.log.warn({ collector: c }, 'agent.forward.auth is set but this collector is plain http: the token travels unencrypted');
      }
    }
    this.ctx = {
      connection,
      health: this.health,
      timeoutMs: options.timeoutMs,
      backoff: options.backoff,
      instruments,
      log: ctx.log,
      warnOnce: new LogOnce(ctx.log),
      tracing: ctx.tracing ?? TRACING_OFF,
    };
    const limits = { maxQueueBatches: options.maxQueueBatches, maxQueueBytes: options.maxQueueBytes, spool: null };
    for (const c of options.collectors) this.metricsLanes.set(c, new Lane({ name: metricsLaneName(c), target: c, ...limits }, this.ctx));
    this.tracesLane = new Lane({ name: TRACES_LANE, target: null, ...limits }, this.ctx);
    this.logsLane = new Lane({ name: LOGS_LANE, target: null, ...limits, concurrency: options.logsInFlight ?? 1 }, this.ctx);
    this.health.onUp((c) => {
      this.metricsLanes.get(c)?.wake();
      for (const l of [this.tracesLane, this.logsLane, ...this.retiring]) l.wake();
    });

    const lanes = (): Lane[] => this.lanes();
    t.gaugeFrom('plumb_forward_queue_batches', 'batches waiting to be sent, in memory and in the spool, all lanes', () => this.queuedBatches);
    t.gaugeFrom('plumb_forward_queue_bytes', 'bytes waiting to be sent, in memory and in the spool, all lanes', () => this.lanes().reduce((n, l) => n + l.bytes, 0));
    t.gauge('plumb_forward_lane_queue_batches', 'batches in a lane\'s memory queue (spooled ones: plumb_spool_records{spool="forward_<lane>"})', ['lane'], function () {
      for (const l of lanes()) this.set({ lane: l.name }, l.memoryBatches);
    });
    t.gauge('plumb_forward_lane_queue_bytes', 'bytes in a lane\'s memory queue', ['lane'], function () {
      for (const l of lanes()) this.set({ lane: l.name }, l.memoryBytes);
    });
  }

  /** Each lane as the status model shows it: what it carries, its depth against its bound. */
  laneStatus(): { name: string; kind: 'metrics' | 'traces' | 'logs'; depth: number; bound: number; unit: 'batches' | 'bytes'; stuck: boolean }[] {
    const kindOf = (l: Lane): 'metrics' | 'traces' | 'logs' => (l === this.tracesLane ? 'traces' : l === this.logsLane ? 'logs' : 'metrics');
    return this.lanes().map((l) => ({ name: l.name, kind: kindOf(l), ...l.bound, stuck: l.stuck }));
  }

  /** The collectors and whether each is up. */
  collectorStates(): { collector: string; up: boolean }[] {
    return this.options.collectors.map((c) => ({ collector: c, up: this.health.isUp(c) }));
  }

  private lanes(): Lane[] {
    return [...this.metricsLanes.values(), this.tracesLane, this.logsLane, ...this.retiring];
  }

  /** Whether metric and span batches are written through to disk. */
  get spooling(): boolean {
    return this.options.spool !== undefined;
  }

  /** Batches not yet acknowledged, in memory and in the spool, all lanes. */
  get queuedBatches(): number {
    return this.lanes().reduce((n, l) => n + l.batches, 0);
  }

  /**
   * What holds up the lane that carries `kind`: with a spool, the batches waiting to be written
   * to it; without one, every batch not yet acknowledged.
   */
  laneBacklog(kind: 'traces' | 'logs'): number {
    const lane = kind === 'traces' ? this.tracesLane : this.logsLane;
    return lane.hasSpool ? lane.memoryBatches : lane.batches;
  }

  /** The collectors new metric intervals are sharded across: the healthy ones (all, when none is). */
  shardTargets(): string[] {
    return this.health.healthy();
  }

  /** Position of `collector` in agent.forward.collectors (part of a sharded batch's id). */
  collectorIndex(collector: string): number {
    return this.options.collectors.indexOf(collector);
  }

  /**
   * Serializes (an object as JSON; a Buffer is sent as it is) and queues a batch in its lane.
   * Resolves once it is queued (with a spool: written to it), or to why it was not (counted as a
   * drop unless `whenFull: 'refuse'`). `onDone` says how the batch left the lane.
   */
  async send(kind: string, path: string, id: string, body: unknown, onDone?: (result: BatchResult) => void, options: SendOptions = {}): Promise<SendOutcome> {
    if (this.starting) await this.starting;
    const lane = this.laneFor(kind, id, options.collector);
    const refuse = options.whenFull === 'refuse';
    if (refuse && lane.memoryBatches >= this.options.maxQueueBatches) return 'queue_full';
    const level = this.options.compressLevel ?? 1;
    const encoded = options.encoded === true && Buffer.isBuffer(body);
    const contentType = Buffer.isBuffer(body) && !encoded ? (options.contentType ?? 'application/octet-stream') : 'application/json';
    // an object is written into gzip slice by slice: never its whole JSON text at once
    const payload = encoded ? body : !Buffer.isBuffer(body) ? await encodeJson(body, this.options.compress, level) : this.options.compress ? await gzipAsync(body, { level }) : body;
    const outcome = await lane.enqueue({ kind, path, id, contentType, gzip: this.options.compress, body: payload }, { onDone, parent: options.parent ?? ROOT_CONTEXT }, refuse);
    if (outcome === 'queued') {
      this.queued.inc({ kind });
      // a lane with a spool has the batch on disk now, and reads it back from there to send it
      if (lane.hasSpool && (payload !== body || options.release === true)) releaseBuffer(payload);
      if (options.release === true && payload !== body) releaseBuffer(body as Buffer);
    }
    return outcome;
  }

  /** A writer of JSON text in the form send() takes with `encoded: true` (gzipped at the configured level when compressing). */
  jsonWriter(): JsonWriter {
    return new JsonWriter(this.options.compress, this.options.compressLevel ?? 1);
  }

  /** The JSON value of a body jsonWriter() wrote (a batch the lane refused, taken back by its sender). */
  async decodeJson(body: Buffer): Promise<unknown> {
    return JSON.parse((this.options.compress ? await gunzipAsync(body) : body).toString('utf8'));
  }

  private laneFor(kind: string, id: string, collector: string | undefined): Lane {
    if (kind === 'logs') return this.logsLane;
    if (kind !== 'metrics') return this.tracesLane;
    const target = collector ?? ownerOf(id, this.health.healthy());
    const lane = this.metricsLanes.get(target);
    if (!lane) throw new Error(`metrics batch ${id} addressed to ${target}, which is not in agent.forward.collectors`);
    return lane;
  }

  /** Opens the spools (re-routing lanes of collectors no longer configured) and starts every lane. */
  start(): Promise<void> {
    if (this.running) return this.starting ?? Promise.resolve();
    this.running = true;
    if (this.connectionClosed) {
      this.ctx.connection = new Connection({ auth: this.options.auth, tls: this.options.tls, identity: this.options.identity });
      this.connectionClosed = false;
    }
    const starting = this.openSpools().then(
      () => {
        this.health.start(this.ctx.connection, this.options.healthCheckIntervalMs ?? 5000, this.options.timeoutMs);
        for (const l of this.lanes()) l.start();
        for (const l of this.retiring) void l.finished().then(() => this.retireDrained());
      },
      (err: unknown) => {
        this.running = false;
        throw err;
      },
    );
    this.starting = starting;
    void starting.then(
      () => {
        if (this.starting === starting) this.starting = null;
      },
      () => undefined,
    );
    return starting;
  }

  private async openSpools(): Promise<void> {
    const s = this.options.spool;
    if (!s) return;
    // Split evenly, so one dead collector's backlog cannot take the room of the others.
    const share = Math.floor(s.maxBytes / (this.metricsLanes.size + (s.traces === false ? 0 : 1)));
    const open = async (name: string): Promise<Spool> => {
      const maxBytes = Math.max(share, SPOOL_FRAME_BYTES + 1);
      return Spool.open(
        {
          dir: join(s.dir, name),
          name: `forward_${name}`,
          maxBytes,
          segmentBytes: Math.min(s.segmentBytes, maxBytes),
          maxRecordBytes: maxBytes - SPOOL_FRAME_BYTES,
          fsync: s.fsync,
          fsyncIntervalMs: s.fsyncIntervalMs,
        },
        { telemetry: this.telemetry, log: this.log },
      );
    };
    const opened: Spool[] = [];
    try {
      for (const [c, lane] of this.metricsLanes) {
        const spool = await open(lane.name);
        opened.push(spool);
        this.metricsLanes.set(c, await this.respool(lane, spool));
      }
      if (s.traces !== false || (await exists(join(s.dir, TRACES_LANE)))) {
        const traces = await open(TRACES_LANE);
        opened.push(traces);
        this.tracesLane = await this.respool(this.tracesLane, traces);
      }
      const current = new Set([...this.metricsLanes.values()].map((l) => l.name));
      for (const name of await this.leftoverLanes(s.dir, current)) {
        const spool = await open(name);
        opened.push(spool);
        if (spool.records === 0) {
          await this.removeLane(name, spool);
          continue;
        }
        this.log.info({ lane: name, batches: spool.records }, 'spooled metrics of a collector no longer configured; sending them to the current collectors');
        this.retiring.push(new Lane({ name, target: null, maxQueueBatches: 1, maxQueueBytes: 0, spool, retire: true }, this.ctx));
      }
    } catch (err) {
      for (const sp of opened) await sp.close().catch(() => undefined);
      throw err;
    }
  }

  /** The same lane, writing through to `spool`; batches queued in memory before start move to it. */
  private async respool(lane: Lane, spool: Spool): Promise<Lane> {
    const next = new Lane(
      { name: lane.name, target: lane.target, maxQueueBatches: this.options.maxQueueBatches, maxQueueBytes: this.options.maxQueueBytes, spool },
      this.ctx,
    );
    for (const p of lane.takeMemory()) await next.enqueue(p.batch, { onDone: p.onDone, parent: p.parent }, false);
    return next;
  }

  private async leftoverLanes(dir: string, current: Set<string>): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new PlumbError('PLUMB_ERR_SPOOL_DIR', `agent.forward.spool: ${dir} cannot be listed (${errorMessage(err)}); make it readable and writable by the user plumb runs as`, { cause: err });
    }
    return names.filter((n) => /^metrics-[0-9a-f]{8}$/.test(n) && !current.has(n)).sort();
  }

  private async removeLane(name: string, spool: Spool): Promise<void> {
    await spool.close();
    await rm(spool.dir, { recursive: true, force: true }).catch((err: unknown) => this.log.warn({ lane: name, error: errorMessage(err) }, 'could not remove an empty spool directory'));
  }

  /**
   * Keeps sending until every lane is drained (or waits only for collectors that are down, with
   * its batches safe on disk) or the deadline passes, then stops. Spooled batches stay for the
   * next start; batches only in memory are counted as dropped (logs excepted: they are read
   * again from their files).
   */
  async stop(deadlineMs = 5000): Promise<void> {
    if (this.starting) await this.starting.catch(() => undefined);
    if (!this.running) return;
    const deadline = Date.now() + deadlineMs;
    while (Date.now() < deadline && !this.lanes().every((l) => l.batches === 0 || l.stuck)) {
      await this.retireDrained();
      await sleep(20);
    }
    this.running = false;
    await this.health.stop();
    const lanes = this.lanes();
    await Promise.all(lanes.map((l) => l.stop()));
    await this.retireDrained();
    let dropped = 0;
    const spooled: Record<string, number> = {};
    for (const lane of this.lanes()) {
      for (const p of lane.takeMemory()) {
        if (p.batch.kind !== 'logs') {
          dropped++;
          this.ctx.instruments.dropped.inc({ kind: p.batch.kind, reason: 'shutdown' });
        }
        p.onDone?.('dropped');
      }
      if (lane.spooled > 0) spooled[lane.name] = lane.spooled;
      await lane.detachSpool()?.close();
    }
    const left = Object.values(spooled).reduce((a, b) => a + b, 0);
    if (left > 0) this.log.warn({ spooled, batches: left }, 'forwarder stopped with undelivered batches; they are in the spool and are sent after the next start');
    if (dropped > 0) this.log.warn({ batches: dropped }, 'forwarder stopped with undelivered batches held in memory only (spool off); dropped');
    // The next start opens the spools again.
    const limits = { maxQueueBatches: this.options.maxQueueBatches, maxQueueBytes: this.options.maxQueueBytes, spool: null };
    for (const [c, lane] of this.metricsLanes) this.metricsLanes.set(c, new Lane({ name: lane.name, target: c, ...limits }, this.ctx));
    this.tracesLane = new Lane({ name: TRACES_LANE, target: null, ...limits }, this.ctx);
    this.retiring = [];
    await this.ctx.connection.close();
    this.connectionClosed = true;
  }

  /** Closes and removes retiring lanes that have sent everything. */
  private async retireDrained(): Promise<void> {
    for (const lane of this.retiring.filter((l) => l.retired)) {
      this.retiring = this.retiring.filter((l) => l !== lane);
      await lane.stop();
      const spool = lane.detachSpool();
      if (spool) await this.removeLane(lane.name, spool);
      this.log.info({ lane: lane.name }, 'spooled metrics of a removed collector delivered; lane removed');
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
