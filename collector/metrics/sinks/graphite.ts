/**
 * Graphite's carbon plaintext protocol: `path value timestamp\n` lines over one TCP connection,
 * paths named as collector.metrics.sinks.graphite.naming says (graphite-naming.ts).
 *
 * The connection is opened when the runner opens the sink, and again before the next write
 * after it broke; a failed connect or write is retried by the runner with backoff (the queue on
 * disk is the bounded buffer meanwhile). A write counts as delivered once the kernel has taken
 * its lines: carbon answers nothing, so lines in flight when carbon dies can be lost; what is
 * still queued is not. Samples Graphite cannot hold (NaN, ±Inf, Prometheus' staleness markers)
 * are not sent; they count as delivered and in plumb_graphite_skipped_samples_total.
 */
import net from 'node:net';
import type { Span } from '@opentelemetry/api';
import type { Counter } from 'prom-client';
import { RetryableError, errorMessage } from '../../../shared/errors.ts';
import { SINK_CODES } from '../../../shared/retry.ts';
import type { Telemetry } from '../../../shared/telemetry.ts';
import type { Sink, SinkWriteResult } from '../../sinks/sink.ts';
import type { GraphiteSinkConfig } from './config.ts';
import { graphitePath } from './graphite-naming.ts';
import type { MetricSample } from './sample.ts';

export class GraphiteSink implements Sink<MetricSample> {
  readonly name: string;
  readonly batch: { maxBytes: number; maxWaitMs: number };
  readonly backoff: { initialMs: number; maxMs: number };
  private readonly config: GraphiteSinkConfig;
  private socket: net.Socket | null = null;
  /** Why the connection broke, if it did since the last write. */
  private broken: Error | null = null;
  private readonly connections: Counter<'sink' | 'outcome'>;
  private readonly skipped: Counter<'sink' | 'reason'>;

  constructor(config: GraphiteSinkConfig, ctx: { telemetry: Telemetry }) {
    this.config = config;
    this.name = config.name;
    this.batch = { maxBytes: config.batchBytes, maxWaitMs: config.batchWait };
    this.backoff = { initialMs: config.retryInitial, maxMs: config.retryMax };
    this.connections = ctx.telemetry.counter('plumb_graphite_connections_total', 'Connections to carbon, by outcome (connected, failed, broken).', ['sink', 'outcome']);
    this.skipped = ctx.telemetry.counter('plumb_graphite_skipped_samples_total', 'Samples not sent to Graphite because it cannot hold them, by reason (nan, inf, stale).', ['sink', 'reason']);
    for (const outcome of ['connected', 'failed', 'broken']) this.connections.inc({ sink: this.name, outcome }, 0);
    for (const reason of ['nan', 'inf', 'stale']) this.skipped.inc({ sink: this.name, reason }, 0);
  }

  async open(signal: AbortSignal): Promise<void> {
    await this.connect(signal);
  }

  async write(items: readonly MetricSample[], signal: AbortSignal, _span: Span): Promise<SinkWriteResult<MetricSample>> {
    const lines: string[] = [];
    let nan = 0;
    let inf = 0;
    let stale = 0;
    for (const s of items) {
      if (s.stale) stale++;
      else if (Number.isNaN(s.value)) nan++;
      else if (!Number.isFinite(s.value)) inf++;
      else lines.push(`${graphitePath(s, this.config.naming)} ${s.value} ${Math.floor(s.timestamp / 1000)}\n`);
    }
    if (lines.length > 0) {
      const socket = this.socket !== null && this.broken === null ? this.socket : await this.connect(signal);
      await this.send(socket, Buffer.from(lines.join('')), signal);
    }
    if (nan > 0) this.skipped.inc({ sink: this.name, reason: 'nan' }, nan);
    if (inf > 0) this.skipped.inc({ sink: this.name, reason: 'inf' }, inf);
    if (stale > 0) this.skipped.inc({ sink: this.name, reason: 'stale' }, stale);
    return { delivered: items.length, duplicate: 0, rejected: [], retry: [] };
  }

  async close(): Promise<void> {
    const s = this.socket;
    this.socket = null;
    if (s === null || s.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        s.destroy();
        resolve();
      }, 1000);
      s.end(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private async connect(signal: AbortSignal): Promise<net.Socket> {
    this.socket?.destroy();
    this.socket = null;
    this.broken = null;
    const { host, port, timeout } = this.config;
    const socket = net.createConnection({ host, port });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no connection within ${timeout} ms`)), timeout);
        const onAbort = (): void => reject(new Error('aborted'));
        signal.addEventListener('abort', onAbort, { once: true });
        socket.once('connect', () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve();
        });
        socket.once('error', (err) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          reject(err);
        });
      });
    } catch (err) {
      socket.destroy();
      this.connections.inc({ sink: this.name, outcome: 'failed' });
      throw new RetryableError(SINK_CODES.retryable, `cannot connect to carbon at ${host}:${port}: ${errorMessage(err)}`, { cause: err });
    }
    this.connections.inc({ sink: this.name, outcome: 'connected' });
    socket.setKeepAlive(true, 30_000);
    socket.on('error', (err) => this.markBroken(socket, err));
    socket.on('close', () => this.markBroken(socket, new Error('connection closed by carbon')));
    // carbon never writes back; reading keeps the socket from stalling on a peer that does
    socket.on('data', () => undefined);
    this.socket = socket;
    return socket;
  }

  private markBroken(socket: net.Socket, err: Error): void {
    if (this.socket !== socket || this.broken !== null) return;
    this.broken = err;
    this.connections.inc({ sink: this.name, outcome: 'broken' });
  }

  private send(socket: net.Socket, data: Buffer, signal: AbortSignal): Promise<void> {
    const { host, port, timeout } = this.config;
    return new Promise<void>((resolve, reject) => {
      const fail = (err: Error): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.off('close', onClose);
        socket.destroy();
        reject(new RetryableError(SINK_CODES.retryable, `writing to carbon at ${host}:${port} failed: ${err.message}`, { cause: err }));
      };
      const onAbort = (): void => fail(new Error('aborted'));
      const onClose = (): void => fail(this.broken ?? new Error('connection closed'));
      const timer = setTimeout(() => fail(new Error(`the socket did not drain within ${timeout} ms`)), timeout);
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('close', onClose);
      socket.write(data, (err) => {
        if (err) return fail(err);
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.off('close', onClose);
        resolve();
      });
    });
  }
}
