/**
 * `POST /v1/logs`: log events from agents, NDJSON (see shared/wire.ts LOGS_PATH). Each line is
 * checked (a JSON object with a string `@timestamp` that parses, a string `message` and a string
 * `event.id`); one bad line refuses the whole batch with 400 naming the line, so a sender never
 * has half a batch accepted without knowing which half.
 *
 * Replays: an agent that crashed after sending and before checkpointing sends the same events
 * again, with the same ids. Events whose id was accepted recently are acknowledged and not
 * passed on again (`SeenEvents`, journaled so it outlives a restart), so the sinks see each event once.
 *
 * The batch is acknowledged (200) only once the log router has it durably in every sink's
 * queue; a full queue answers 429 with Retry-After and nothing of the batch is kept, so the
 * agent sends the same batch again later.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Counter } from 'prom-client';
import type { Context } from '@opentelemetry/api';
import type { Telemetry } from '../../shared/telemetry.ts';
import { LogOnce, type Logger } from '../../shared/log.ts';
import { RetryableError, errorMessage } from '../../shared/errors.ts';
import { LOGS_PATH } from '../../shared/wire.ts';
import { releaseBuffer } from '../../shared/release.ts';
import { requestContext, type SelfTracing } from '../../shared/tracing.ts';
import { QueueBusyError, type AcceptedLogBatch } from '../logs/router.ts';
import { isNormalizedTimestamp, type DecodedEvents } from '../logs/event.ts';
import type { ReplayIds } from './dedupe.ts';
import type { TapPoint } from '../../shared/tap.ts';
import { pushAnnotated, type Observed, type PatternMiner } from '../patterns/miner.ts';

/** Where accepted events go; resolves once they are durable, throws a RetryableError (429) when full. */
export interface LogBatchSink {
  accept(batch: AcceptedLogBatch, parent?: Context): Promise<void>;
}

/** Sees every accepted event (the alert engine's log rules). */
export interface LogObserver {
  readonly observesLogs: boolean;
  observeLog(event: Record<string, unknown>, now: number): void;
}

export interface LogsIngestOptions {
  sink: LogBatchSink;
  observer: LogObserver | null;
  /** Ids of events accepted recently (a DurableIds over SeenEvents in the collector). */
  seen: ReplayIds;
  /** Adds pattern_id and pattern to each event before the sinks get it; null when off. */
  patterns?: PatternMiner | null;
  maxEventsPerBatch: number;
  retryAfterMs: number;
  telemetry: Telemetry;
  tracing: SelfTracing;
  log: Logger;
  /** The live tap of accepted events (shared/tap.ts). */
  tap?: TapPoint;
}

const MAX_ID_LENGTH = 512;

export async function logsIngestPlugin(app: FastifyInstance, options: LogsIngestOptions): Promise<void> {
  const handler = new LogsIngest(options);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/x-ndjson', 'application/jsonl', 'application/json'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post(LOGS_PATH, (request, reply) => handler.handle(request, reply));
}

/** A line of a batch refused on its own (the batch's other lines are taken). */
export interface LineError {
  line: number;
  reason: string;
  message: string;
}

type Checked = { events: Record<string, unknown>[]; lines: Buffer[]; ids: string[]; errors: LineError[] } | { error: string; reason: string; errors?: LineError[] };

/** Refused lines listed in a response; the rest are counted in `reasons`. */
const MAX_LISTED_ERRORS = 20;

class LogsIngest {
  private readonly o: LogsIngestOptions;
  private readonly retryAfterSeconds: string;
  private readonly once: LogOnce;
  private readonly batches: Counter<'kind' | 'outcome'>;
  private readonly events: Counter<'outcome'>;
  private readonly invalid: Counter<'reason'>;
  private readonly backpressure: Counter<'kind' | 'reason'>;

  constructor(options: LogsIngestOptions) {
    this.o = options;
    this.retryAfterSeconds = String(Math.max(1, Math.ceil(options.retryAfterMs / 1000)));
    this.once = new LogOnce(options.log);
    const t = options.telemetry;
    this.batches = t.counter('plumb_ingest_batches_total', 'batches received from agents, by kind and outcome', ['kind', 'outcome']);
    this.events = t.counter('plumb_ingest_log_events_total', 'log events received, by outcome (accepted, duplicate)', ['outcome']);
    this.invalid = t.counter('plumb_ingest_invalid_logs_total', 'log lines refused as invalid, by reason (each refused on its own, the rest of its batch taken; a batch refused whole for its size or emptiness counts once)', ['reason']);
    this.backpressure = t.counter('plumb_ingest_backpressure_total', 'batches answered 429 because a queue was full or above its high-water mark, by kind and reason', ['kind', 'reason']);
  }

  async handle(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const t = this.take(request, reply);
    if (!('ndjson' in t)) return t;
    // Only what is needed after the queues have the batch outlives this await: the parsed
    // events and the body's text stay behind in take(), so they die young instead of being
    // promoted while the queue syncs to disk.
    try {
      await this.o.sink.accept({ id: t.batchId, ndjson: t.ndjson, count: t.ids.length, decoded: t.decoded }, this.o.tracing.enabled ? requestContext(request) : undefined);
    } catch (err) {
      if (err instanceof RetryableError) {
        const reason = err instanceof QueueBusyError ? err.reason : 'queue_full';
        this.batches.inc({ kind: 'logs', outcome: 'backpressure' });
        this.backpressure.inc({ kind: 'logs', reason });
        this.once.warn(`backpressure:${reason}`, { batch: t.batchId, reason, events: t.ids.length, error: err.message }, 'log batch answered 429 (counted in plumb_ingest_backpressure_total)');
        return reply.code(429).header('retry-after', this.retryAfterSeconds).send({ error: 'PLUMB_ERR_INGEST_BACKPRESSURE', message: `log sinks are full, retry later (${err.message})` });
      }
      this.o.log.error({ err: errorMessage(err), batch: t.batchId }, 'log batch could not be queued');
      return reply.code(503).send({ error: 'PLUMB_ERR_INGEST_UNAVAILABLE', message: 'log sinks cannot take the batch now; retry later' });
    }
    // The ids are journaled after the queues have the events and before the 2xx. A crash between
    // the queue's fsync and the journal's forgets these ids while the queues keep the events: the
    // agent sends the batch again and every sink gets it twice. Elasticsearch keeps one copy (same
    // _id) and the file sink skips ids it wrote recently; an S3 object may hold those lines twice.
    const recorded = this.o.seen.record(t.ids);
    this.o.patterns?.commit(t.observed, t.now);
    this.batches.inc({ kind: 'logs', outcome: t.duplicates > 0 ? 'partial_duplicate' : 'accepted' });
    this.events.inc({ outcome: 'accepted' }, t.ids.length);
    const observer = this.o.observer;
    if (observer !== null && t.events !== null) for (const ev of t.events) observer.observeLog(ev, t.now);
    await recorded;
    return reply.code(200).send({ accepted: t.ids.length, duplicate: t.duplicates, ...t.refused });
  }

  /** Checks the body and builds the batch for the queues; a reply when there is nothing to queue. */
  private take(request: FastifyRequest, reply: FastifyReply): Taken | FastifyReply {
    const checked = checkBatch(request.body as Buffer, this.o.maxEventsPerBatch);
    if ('error' in checked) {
      this.batches.inc({ kind: 'logs', outcome: 'invalid' });
      if (checked.errors === undefined) this.invalid.inc({ reason: checked.reason });
      else for (const e of checked.errors) this.invalid.inc({ reason: e.reason });
      this.once.warn(`invalid:${checked.reason}`, { batch: request.headers['x-plumb-batch-id'], error: checked.error }, 'log batch refused');
      return reply.code(400).send({ error: 'PLUMB_ERR_INGEST_BODY', message: checked.error, ...(checked.errors === undefined ? {} : refusedLines(checked.errors)) });
    }
    if (checked.errors.length > 0) {
      // one bad line costs only itself: the rest of the batch is taken, the bad ones listed
      for (const e of checked.errors) this.invalid.inc({ reason: e.reason });
      this.events.inc({ outcome: 'rejected' }, checked.errors.length);
      const first = checked.errors[0];
      this.once.warn(`invalid-line:${first.reason}`, { batch: request.headers['x-plumb-batch-id'], error: `line ${first.line}: ${first.message}`, lines: checked.errors.length }, 'log lines refused; the rest of the batch taken (counted in plumb_ingest_invalid_logs_total)');
    }
    const refused = checked.errors.length === 0 ? {} : refusedLines(checked.errors);
    const batchId = String(request.headers['x-plumb-batch-id'] ?? '');
    const fresh: number[] = [];
    for (let i = 0; i < checked.ids.length; i++) if (!this.o.seen.has(checked.ids[i])) fresh.push(i);
    const duplicates = checked.ids.length - fresh.length;
    if (duplicates > 0) this.events.inc({ outcome: 'duplicate' }, duplicates);
    if (fresh.length === 0) {
      this.batches.inc({ kind: 'logs', outcome: 'duplicate' });
      return reply.code(200).send({ accepted: 0, duplicate: duplicates, ...refused });
    }
    const miner = this.o.patterns ?? null;
    const now = Date.now();
    const { ndjson, decoded, observed } = acceptedBatch(checked, fresh, miner, now);
    // Its lines are copied into `ndjson` and its events parsed: the body's memory goes back now,
    // not at the next major GC (its lines' views read as empty from here on).
    releaseBuffer(request.body as Buffer);
    const tap = this.o.tap;
    if (tap?.active === true) tap.publish(fresh.map((i) => checked.events[i]));
    const observer = this.o.observer;
    return {
      batchId,
      ndjson,
      decoded,
      ids: fresh.map((i) => checked.ids[i]),
      events: observer !== null && observer.observesLogs ? fresh.map((i) => checked.events[i]) : null,
      observed,
      duplicates,
      refused,
      now,
    };
  }
}

/** A checked batch as the queues get it, and what the answer and the journal need after. */
interface Taken {
  batchId: string;
  ndjson: Buffer;
  decoded: DecodedEvents | undefined;
  /** Ids of the fresh events, in order. */
  ids: string[];
  /** The fresh events, only for an observer that reads them. */
  events: Record<string, unknown>[] | null;
  observed: Observed[];
  duplicates: number;
  refused: Record<string, unknown>;
  now: number;
}

const NEWLINE = Buffer.from('\n');

/**
 * The NDJSON the sinks get for the fresh events of a checked batch, each line with its pattern
 * when mining is on, and what the sinks' decoder needs of each event (DecodedEvents).
 */
export function acceptedBatch(checked: { events: Record<string, unknown>[]; lines: Buffer[]; ids: string[] }, fresh: readonly number[], miner: PatternMiner | null, now: number): { ndjson: Buffer; decoded: DecodedEvents | undefined; observed: Observed[] } {
  const parts: Buffer[] = [];
  const observed: Observed[] = [];
  // the fields the sinks route by, read here once so their decoder need not scan the lines
  let decoded: { ends: number[]; ids: string[]; timestamps: string[]; hosts: string[] } | undefined = { ends: [], ids: [], timestamps: [], hosts: [] };
  let bytes = 0;
  for (const i of fresh) {
    const line = checked.lines[i];
    const ev = checked.events[i];
    const o = miner === null ? null : miner.observe(ev, now);
    const first = parts.length;
    if (o !== null) {
      pushAnnotated(parts, line, ev, o);
      ev.pattern_id = o.id;
      ev.pattern = o.template;
      observed.push(o);
    } else {
      parts.push(line);
    }
    if (decoded !== undefined) {
      for (let k = first; k < parts.length; k++) bytes += parts[k].length;
      const ts = ev['@timestamp'] as string;
      if (isNormalizedTimestamp(ts)) {
        decoded.ends.push(bytes);
        decoded.ids.push(checked.ids[i]);
        decoded.timestamps.push(ts);
        decoded.hosts.push(hostName(ev));
        bytes += 1;
      } else {
        decoded = undefined;
      }
    }
    parts.push(NEWLINE);
  }
  return { ndjson: Buffer.concat(parts), decoded, observed };
}

/** host.name as the sinks' decoder reads it: the string, else ''. */
function hostName(ev: Record<string, unknown>): string {
  const host = ev.host;
  if (host === null || typeof host !== 'object') return '';
  const name = (host as Record<string, unknown>).name;
  return typeof name === 'string' ? name : '';
}

/** The refused lines of a batch as a response lists them (the agent counts `reasons`). */
function refusedLines(errors: readonly LineError[]): Record<string, unknown> {
  const reasons: Record<string, number> = {};
  for (const e of errors) reasons[e.reason] = (reasons[e.reason] ?? 0) + 1;
  const out: Record<string, unknown> = { refused: errors.length, errors: errors.slice(0, MAX_LISTED_ERRORS), reasons };
  if (errors.length > MAX_LISTED_ERRORS) out.errorsOmitted = errors.length - MAX_LISTED_ERRORS;
  return out;
}

/**
 * Splits and checks a body; every problem names its line (1-based). A bad line is refused on
 * its own and the others are taken; only a body with no good line, or too many, is refused whole.
 */
export function checkBatch(body: Buffer, maxEvents: number): Checked {
  if (!Buffer.isBuffer(body) || body.length === 0) return { error: 'the body is empty; send one JSON object per line', reason: 'empty' };
  const events: Record<string, unknown>[] = [];
  const lines: Buffer[] = [];
  const ids: string[] = [];
  const errors: LineError[] = [];
  let pos = 0;
  let lineNo = 0;
  const refuse = (reason: string, message: string): void => void errors.push({ line: lineNo, reason, message });
  // The body is decoded once and each line's text sliced from it: a '\n' byte is always a
  // newline in UTF-8 (never inside a character), so byte lines and text lines correspond.
  const text = body.toString('utf8');
  let textPos = 0;
  let lastTimestamp = '';
  while (pos < body.length) {
    let nl = body.indexOf(0x0a, pos);
    if (nl === -1) nl = body.length;
    let end = nl;
    if (end > pos && body[end - 1] === 0x0d) end--;
    let textNl = text.indexOf('\n', textPos);
    if (textNl === -1) textNl = text.length;
    const textStart = textPos;
    const textEnd = textNl > textPos && text.charCodeAt(textNl - 1) === 0x0d ? textNl - 1 : textNl;
    textPos = textNl + 1;
    lineNo++;
    const line = body.subarray(pos, end);
    pos = nl + 1;
    if (line.length === 0) continue;
    if (events.length + errors.length >= maxEvents) return { error: `more than ${maxEvents} events in one batch (collector.logs limit maxEventsPerBatch); send smaller batches`, reason: 'too_many' };
    let doc: unknown;
    try {
      doc = JSON.parse(text.slice(textStart, textEnd));
    } catch (err) {
      refuse('json', `not valid JSON (${(err as Error).message})`);
      continue;
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      refuse('not_object', 'expected a JSON object');
      continue;
    }
    const ev = doc as Record<string, unknown>;
    const ts = ev['@timestamp'];
    // a batch's events often share a timestamp: a string already found valid is not parsed again
    if (typeof ts !== 'string' || (ts !== lastTimestamp && Number.isNaN(Date.parse(ts)))) {
      refuse('timestamp', `"@timestamp" must be a date-time string (RFC 3339), got ${JSON.stringify(ts)?.slice(0, 60)}`);
      continue;
    }
    if (typeof ev.message !== 'string') {
      refuse('message', '"message" must be a string');
      continue;
    }
    const event = ev.event;
    const id = event !== null && typeof event === 'object' ? (event as Record<string, unknown>).id : undefined;
    if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
      refuse('event_id', `"event.id" must be a non-empty string of at most ${MAX_ID_LENGTH} characters`);
      continue;
    }
    lastTimestamp = ts;
    events.push(ev);
    lines.push(line);
    ids.push(id);
  }
  if (events.length === 0 && errors.length > 0) {
    const first = errors[0];
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more line(s))` : '';
    return { error: `line ${first.line}: ${first.message}${more}`, reason: first.reason, errors };
  }
  if (events.length === 0) return { error: 'the body holds no events; send one JSON object per line', reason: 'empty' };
  return { events, lines, ids, errors };
}

