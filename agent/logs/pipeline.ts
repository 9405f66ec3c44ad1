/**
 * The agent's log pipeline: tailer → parser threads (piscina) → forwarder → acknowledgement →
 * checkpoint.
 *
 * Each tailer batch becomes one parse task (its records packed into transferred buffers), whose
 * NDJSON result becomes one `POST /v1/logs`. Only when a collector acknowledged it is the batch
 * acknowledged to the tailer, which then lets its offsets reach the checkpoint. Everything in
 * between is bounded: at most `2 × threads` tasks are handed to the pool (the tailer waits for a
 * slot, so reading slows to the parsing speed), and batches handed out but not acknowledged are
 * capped by the tailer (`agent.tail.maxUnackedBatches`). Once a batch is parsed only its NDJSON is
 * kept until the acknowledgement; its records (the lines as strings) are let go.
 *
 * A task that overruns `chunkTimeout` (a pattern backtracking without end on some line) is
 * aborted — piscina stops that thread and starts a new one — and its records are parsed again
 * one per task with `lineTimeout`; a record that overruns again is kept, tagged
 * `_grokparsetimeout`, without fields.
 */
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Piscina } from 'piscina';
import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import type { Telemetry } from '../../shared/telemetry.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { errorMessage } from '../../shared/errors.ts';
import { backoffDelay } from '../../shared/retry.ts';
import { TRACING_OFF, SPAN_AGENT_FLUSH, type SelfTracing } from '../../shared/tracing.ts';
import { LOGS_PATH } from '../../shared/wire.ts';
import type { TapPoint } from '../../shared/tap.ts';
import type { BatchResult, Forwarder } from '../forward/forwarder.ts';
import { Tailer, type TailedFileStatus } from './tail/tailer.ts';
import type { KubernetesMeta } from './tail/formats.ts';
import { recordId, type TailBatch, type TailRecord } from './tail/record.ts';
import { packRecords, type ParseResult, type ParseTask, type ParserSetup } from './events.ts';
import { patternsDirs, poolSize, type LogsConfig } from './config.ts';

export interface LogPipelineConfig extends LogsConfig {
  dataDir: string;
  hostName: string;
  /** `plumb all`: the collector shares the main thread (the default thread count leaves it a core). */
  collectorInProcess?: boolean;
}

export interface LogPipelineDeps {
  telemetry: Telemetry;
  log: Logger;
  forwarder: Forwarder;
  tracing?: SelfTracing;
  /** Pod metadata from the Kubernetes API for kubelet log files (agent.kubernetes). */
  kubernetes?: { enrich(meta: KubernetesMeta): KubernetesMeta };
  /** Resolves when the next batch may be taken (the memory guard holds reading back meanwhile). */
  admit?: () => Promise<void>;
  /** Live taps of the records read and the events parsed (shared/tap.ts). */
  taps?: { files: TapPoint; parser: TapPoint };
}

/** How soon a batch the forwarder had no room for is offered again (its queue drains meanwhile). */
const FORWARD_FULL_RETRY_MS = 50;
const RETRY_BACKOFF = { initialMs: 100, maxMs: 5000 };

const WORKER_FILE = fileURLToPath(new URL(`./parse-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

export class LogPipeline {
  readonly tailer: Tailer;
  private readonly config: LogPipelineConfig;
  private readonly deps: LogPipelineDeps;
  private readonly tracing: SelfTracing;
  private readonly once: LogOnce;
  private readonly threads: number;
  private readonly maxInFlight: number;
  private pool: Piscina | null = null;
  private inFlight = 0;
  private readonly perFile = new Map<string, { parsed: number; failed: number }>();
  private slotWaiters: (() => void)[] = [];
  private running = false;
  private readonly events: { inc(labels: Record<string, string>, n?: number): void };
  private readonly parseSeconds: { observe(v: number): void };
  private readonly replaced: { inc(n?: number): void };

  constructor(config: LogPipelineConfig, deps: LogPipelineDeps) {
    this.config = config;
    this.deps = deps;
    this.tracing = deps.tracing ?? TRACING_OFF;
    this.once = new LogOnce(deps.log);
    this.threads = poolSize(config.grok, config.collectorInProcess === true);
    this.maxInFlight = this.threads * 2;
    this.tailer = new Tailer(
      { inputs: config.logs, options: config.tail, dataDir: config.dataDir, idSeed: config.hostName },
      { telemetry: deps.telemetry, log: deps.log, next: (batch) => this.take(batch) },
    );
    const t = deps.telemetry;
    this.events = t.counter('plumb_logs_events_total', 'log events by outcome: parsed (grok matched, or no pattern), grok_failure, grok_timeout; date_failure also counts parsed events whose date did not parse', ['outcome']);
    this.parseSeconds = t.histogram('plumb_logs_parse_seconds', 'time to parse one chunk of lines in a parser thread, queue wait included', [], [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]);
    this.replaced = t.counter('plumb_logs_parser_timeouts_total', 'parse tasks that overran their deadline (the thread was replaced)');
    t.gaugeFrom('plumb_logs_parse_inflight', 'chunks handed to parser threads and not yet parsed', () => this.inFlight);
    t.gaugeFrom('plumb_logs_parser_threads', 'parser threads in the pool', () => this.pool?.threads.length ?? 0);
  }

  async start(): Promise<void> {
    if (this.running) return;
    const setup: ParserSetup = {
      inputs: this.config.logs.map((i) => ({ pattern: i.pattern, definitions: i.definitions, timestamp: i.timestamp, fields: i.fields })),
      patternsDirs: patternsDirs(this.config.grok),
      hostName: this.config.hostName,
    };
    this.pool = new Piscina({
      filename: WORKER_FILE,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      workerData: setup,
      // A thread holds compiled patterns and one chunk at a time: a small young generation
      // keeps each thread's memory low without slowing the parse.
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    this.pool.on('error', (err: unknown) => this.once.warn('pool', { err: errorMessage(err) }, 'a parser thread failed; it is replaced'));
    this.running = true;
    await this.tailer.start();
    this.deps.log.info({ inputs: this.config.logs.length, threads: this.threads }, 'log pipeline started');
  }

  /** Stops reading, waits for batches in flight to be acknowledged (within the deadline), stops the threads. */
  async stop(deadlineMs = 5000): Promise<void> {
    if (!this.running) return;
    const deadline = Date.now() + deadlineMs;
    await this.tailer.stop(deadlineMs);
    this.running = false;
    for (const w of this.slotWaiters) w();
    this.slotWaiters = [];
    const pool = this.pool;
    this.pool = null;
    if (pool !== null) await Promise.race([pool.destroy(), sleep(Math.max(0, deadline - Date.now()))]);
  }

  /** The tailer's consumer: takes a batch once a parse slot is free, then works on it apart. */
  private async take(batch: TailBatch): Promise<void> {
    const taps = this.deps.taps;
    if (taps !== undefined && taps.files.active) taps.files.publish(batch.records.map((r) => ({ path: r.path, fileId: r.fileId, offset: r.offset, text: r.text })));
    // the tailer reads no further while its batch waits here
    if (this.deps.admit !== undefined) await this.deps.admit();
    while (this.inFlight >= this.maxInFlight && this.running) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    if (!this.running) throw new Error('log pipeline stopped');
    this.inFlight++;
    const kube = this.deps.kubernetes;
    if (kube !== undefined) for (const r of batch.records) if (r.k8s !== undefined) r.k8s = kube.enrich(r.k8s);
    void this.process(batch);
  }

  private releaseSlot(): void {
    this.inFlight--;
    const w = this.slotWaiters.shift();
    w?.();
  }

  private async process(batch: TailBatch): Promise<void> {
    let result: ParseResult | undefined;
    for (let attempt = 0; result === undefined && this.running; attempt++) {
      try {
        result = await this.parse(batch.records);
      } catch (err) {
        // Not a timeout (those are handled inside): a thread that died or failed to start.
        this.once.warn('parse', { err: errorMessage(err), lines: batch.records.length }, 'parsing a chunk of log lines failed; retrying');
        await sleep(backoffDelay(attempt, RETRY_BACKOFF));
      }
    }
    this.releaseSlot();
    if (result === undefined) return; // stopping: never acknowledged, read again on the next start
    const taps = this.deps.taps;
    if (taps !== undefined && taps.parser.active) taps.parser.publish(parsedEvents(result));
    // parsed, grok_failure and grok_timeout split the events; date_failure overlaps parsed
    const parsed = result.events - result.grokFailures - result.timeouts;
    if (parsed > 0) this.events.inc({ outcome: 'parsed' }, parsed);
    if (result.grokFailures > 0) this.events.inc({ outcome: 'grok_failure' }, result.grokFailures);
    if (result.dateFailures > 0) this.events.inc({ outcome: 'date_failure' }, result.dateFailures);
    if (result.timeouts > 0) this.events.inc({ outcome: 'grok_timeout' }, result.timeouts);
    this.countByFile(batch.records, result.failedByFile);
    // The forwarder holds on to what is given to it here until the collector answers: the
    // events' NDJSON and the batch's seq (all the ack needs), not the batch and its records.
    return this.forward(batch.seq, `${recordId(batch.records[0])}+${batch.records.length}`, batch.records.length, result);
  }

  /** Parsed and failed events per file, for the status model (records of a file come in runs). */
  private countByFile(records: readonly TailRecord[], failed: Record<string, number> | undefined): void {
    let i = 0;
    while (i < records.length) {
      const id = records[i].fileId;
      let j = i + 1;
      while (j < records.length && records[j].fileId === id) j++;
      let c = this.perFile.get(id);
      if (c === undefined) {
        // bounded: ids the tailer no longer shows go first
        if (this.perFile.size >= 2 * this.config.tail.maxFiles) this.prunePerFile();
        this.perFile.set(id, (c = { parsed: 0, failed: 0 }));
      }
      c.parsed += j - i;
      i = j;
    }
    if (failed !== undefined) {
      for (const [id, n] of Object.entries(failed)) {
        const c = this.perFile.get(id);
        if (c === undefined) continue;
        c.parsed -= n;
        c.failed += n;
      }
    }
  }

  private prunePerFile(): void {
    const live = new Set(this.tailer.files().map((f) => f.id));
    for (const id of this.perFile.keys()) if (!live.has(id)) this.perFile.delete(id);
    if (this.perFile.size >= 2 * this.config.tail.maxFiles) this.perFile.clear();
  }

  /** The followed files with their lag and how their events parsed. */
  files(now = Date.now()): (TailedFileStatus & { parsed: number; failed: number })[] {
    return this.tailer.files(now).map((f) => ({ ...f, parsed: this.perFile.get(f.id)?.parsed ?? 0, failed: this.perFile.get(f.id)?.failed ?? 0 }));
  }

  private async parse(records: readonly TailRecord[]): Promise<ParseResult> {
    const started = performance.now();
    try {
      return await this.runTask(records, this.config.grok.chunkTimeout);
    } catch (err) {
      if (!isAbort(err)) throw err;
      this.replaced.inc();
      this.once.warn('chunk-timeout', { lines: records.length, timeoutMs: this.config.grok.chunkTimeout, first: records[0]?.path }, 'a chunk of lines overran its parse deadline; parsing it again line by line');
      return await this.parseLineByLine(records);
    } finally {
      this.parseSeconds.observe((performance.now() - started) / 1000);
    }
  }

  private async parseLineByLine(records: readonly TailRecord[]): Promise<ParseResult> {
    const parts: ParseResult[] = [];
    for (const record of records) {
      try {
        parts.push(await this.runTask([record], this.config.grok.lineTimeout));
      } catch (err) {
        if (!isAbort(err)) throw err;
        this.replaced.inc();
        this.once.warn(`line-timeout:${record.path}`, { path: record.path, offset: record.offset, timeoutMs: this.config.grok.lineTimeout }, 'a line overran its parse deadline; kept without fields and tagged _grokparsetimeout');
        parts.push(await this.runTask([record], this.config.grok.lineTimeout, true));
      }
    }
    return concatResults(parts);
  }

  /**
   * Runs a named function of the parser threads (the grok debugger's) in this pool, with a
   * deadline: a task that overruns it is aborted and its thread replaced, as for log chunks.
   * Null when the pipeline is not running.
   */
  async runNamed<T>(name: string, task: unknown, timeoutMs: number): Promise<T | null> {
    const pool = this.pool;
    if (pool === null) return null;
    try {
      return (await pool.run(task, { name, signal: AbortSignal.timeout(timeoutMs) })) as T;
    } catch (err) {
      if (isAbort(err)) this.replaced.inc();
      throw err;
    }
  }

  private async runTask(records: readonly TailRecord[], timeoutMs: number, timedOut = false): Promise<ParseResult> {
    const pool = this.pool;
    if (pool === null) throw new Error('log pipeline stopped');
    const { task, transfer } = packRecords(records, Date.now());
    if (timedOut) task.timedOut = true;
    return (await pool.run(task satisfies ParseTask, { transferList: transfer, signal: AbortSignal.timeout(timeoutMs) })) as ParseResult;
  }

  /** Hands the events to the forwarder, waiting while its queue is full; acknowledges batch `seq` on delivery. */
  private async forward(seq: number, id: string, lines: number, result: ParseResult): Promise<void> {
    const body = Buffer.from(result.ndjson.buffer, result.ndjson.byteOffset, result.ndjson.byteLength);
    const span = this.tracing.tracer.startSpan(SPAN_AGENT_FLUSH, { kind: SpanKind.INTERNAL, attributes: { 'plumb.kind': 'logs', 'plumb.events': result.events } });
    const onDone = (outcome: BatchResult): void => {
      span.end();
      if (outcome === 'delivered') this.tailer.ack(seq);
      else if (outcome === 'rejected') {
        // A collector refused it for good (counted by the forwarder): sending it again cannot
        // help, and holding it would stop the files behind it forever.
        this.once.warn('rejected', { batch: id, lines }, 'a collector refused a log batch permanently; moving past it');
        this.tailer.ack(seq);
      }
      // dropped (shutting down): not acknowledged, read again on the next start
    };
    while (this.running) {
      const outcome = await this.deps.forwarder.send('logs', LOGS_PATH, id, body, onDone, {
        whenFull: 'refuse',
        contentType: 'application/x-ndjson',
        parent: trace.setSpan(ROOT_CONTEXT, span),
        // nothing here reads the NDJSON once it is queued (a parser tap read it already)
        release: true,
      });
      if (outcome !== 'queue_full') return;
      await sleep(FORWARD_FULL_RETRY_MS);
    }
    span.end();
  }
}

/** Only while someone taps the parser: its events as objects. */
function* parsedEvents(result: ParseResult): Generator<unknown> {
  const text = Buffer.from(result.ndjson.buffer, result.ndjson.byteOffset, result.ndjson.byteLength).toString('utf8');
  for (const line of text.split('\n')) if (line !== '') yield JSON.parse(line) as unknown;
}

export function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
}

function concatResults(parts: readonly ParseResult[]): ParseResult {
  const total = parts.reduce((n, p) => n + p.ndjson.byteLength, 0);
  const ndjson = new Uint8Array(total);
  let at = 0;
  const sum: ParseResult = { ndjson, events: 0, grokFailures: 0, dateFailures: 0, timeouts: 0 };
  for (const p of parts) {
    ndjson.set(p.ndjson, at);
    at += p.ndjson.byteLength;
    sum.events += p.events;
    sum.grokFailures += p.grokFailures;
    sum.dateFailures += p.dateFailures;
    sum.timeouts += p.timeouts;
    if (p.failedByFile !== undefined) {
      sum.failedByFile ??= {};
      for (const [id, n] of Object.entries(p.failedByFile)) sum.failedByFile[id] = (sum.failedByFile[id] ?? 0) + n;
    }
  }
  return sum;
}
