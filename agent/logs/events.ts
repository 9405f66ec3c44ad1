/**
 * From tailed records to events: how a batch of records travels to a parser thread (`packRecords`
 * → one transferred buffer plus typed arrays), and how each record becomes one event, serialized
 * as one NDJSON line (`EventBuilder`).
 *
 * An event, ECS-style:
 *   { "@timestamp", "message", …parsed fields, …static fields, "stream"?, "kubernetes"?,
 *     "host": { "name" }, "log": { "file": { "path" }, "offset", "flags"? },
 *     "event": { "id", "original"? }, "tags"? }
 *
 * - Parsed fields (grok captures, or the object of a `json` line) go at the top level, as
 *   Logstash puts them. A captured `message` replaces the line in `message`, and the line is
 *   kept in `event.original`. Parsed `host`/`log`/`event` objects are kept, with plumb's own
 *   keys written over theirs; parsed `tags` join plumb's.
 * - Static fields of the input win over parsed fields of the same name: they are what the
 *   operator said the source is.
 * - `@timestamp`: the configured timestamp field when it parses; otherwise the container
 *   runtime's time (cri/docker) or a json line's own `@timestamp`; otherwise the time the line
 *   was read. A field that is there but does not parse tags the event `_dateparsefailure`.
 * - Nothing matched: `_grokparsefailure`. Cut lines carry `log.flags: ["truncated"]`.
 */
import type { KubernetesMeta, Stream } from './tail/formats.ts';
import type { TailRecord } from './tail/record.ts';
import { eventId, offsetHex } from './tail/identity.ts';
import { compileGrok, type Grok, type GrokFields } from './grok/grok.ts';
import { PatternLibrary } from './grok/library.ts';
import { compileDateParser, type DateParser } from './grok/date.ts';

/**
 * `kubernetes.*` as Filebeat's add_kubernetes_metadata writes it: pod name and uid, namespace,
 * node, container name and image, labels, annotations and the namespace's labels; `container.id`
 * and `container.image.name` as ECS has them.
 */
function kubernetesFields(ev: Record<string, unknown>, k: KubernetesMeta): void {
  const api = k.api;
  const pod: Record<string, unknown> = { name: k.pod };
  const uid = api?.uid ?? k.podUid;
  if (uid !== undefined) pod.uid = uid;
  const container: Record<string, unknown> = { name: k.container };
  const kube: Record<string, unknown> = { pod, namespace: k.namespace, container };
  const containerId = k.containerId ?? api?.containerId;
  if (api !== undefined) {
    if (api.image !== undefined) container.image = api.image;
    if (api.nodeName !== undefined) kube.node = { name: api.nodeName };
    if (api.labels !== undefined) kube.labels = api.labels;
    if (api.annotations !== undefined) kube.annotations = api.annotations;
    if (api.namespaceLabels !== undefined) kube.namespace_labels = api.namespaceLabels;
  }
  ev.kubernetes = kube;
  if (containerId !== undefined || api?.image !== undefined) {
    const c: Record<string, unknown> = {};
    if (containerId !== undefined) c.id = containerId;
    if (api?.image !== undefined) c.image = { name: api.image };
    ev.container = c;
  }
}

export const TAG_GROK_FAILURE = '_grokparsefailure';
export const TAG_GROK_TIMEOUT = '_grokparsetimeout';
export const TAG_DATE_FAILURE = '_dateparsefailure';

/** What a record carries besides its text, offset and file; rare, so kept apart. */
export interface RecordExtra {
  stream: Stream | undefined;
  time: string | undefined;
  k8s: KubernetesMeta | undefined;
  json: Record<string, unknown> | undefined;
  tags: readonly string[];
}

/** A batch of records as sent to a parser thread. Buffers are transferred, not copied. */
export interface ParseTask {
  /** UTF-8 of every record's text, back to back. */
  text: Uint8Array;
  /** Each text's length in UTF-16 code units (what `String#slice` counts after decoding). */
  lengths: Uint32Array;
  offsets: Float64Array;
  inputs: Uint16Array;
  /** Index into `fileIds`/`paths`. */
  files: Uint32Array;
  fileIds: string[];
  paths: string[];
  /** 1 where the record was cut. */
  truncated: Uint8Array;
  /** Per record, or null for all when no record has any. */
  extras: (RecordExtra | null)[] | null;
  /** Read time for records without a time of their own. */
  now: number;
  /** Parse every record as if its grok pattern had overrun (the thread replaced for it is gone). */
  timedOut?: boolean;
}

export interface ParseResult {
  /** One JSON object per line, each line ending in "\n". */
  ndjson: Uint8Array;
  events: number;
  grokFailures: number;
  dateFailures: number;
  timeouts: number;
  /** Events grok could not match (failures and timeouts), by file id; absent when none. */
  failedByFile?: Record<string, number>;
}

/** Packs records for a parser thread; returns the task and the buffers to transfer. */
export function packRecords(records: readonly TailRecord[], now: number): { task: ParseTask; transfer: ArrayBuffer[] } {
  const n = records.length;
  const lengths = new Uint32Array(n);
  const offsets = new Float64Array(n);
  const inputs = new Uint16Array(n);
  const files = new Uint32Array(n);
  const truncated = new Uint8Array(n);
  const fileIds: string[] = [];
  const paths: string[] = [];
  const fileIndex = new Map<string, number>();
  let extras: (RecordExtra | null)[] | null = null;
  const text = new TextPacker(records);
  // a batch's records come in runs of one file: the index is looked up when the file changes
  let lastId = '';
  let lastPath = '';
  let f = -1;
  for (let i = 0; i < n; i++) {
    const r = records[i];
    text.add(r.text);
    lengths[i] = r.text.length;
    offsets[i] = r.offset;
    inputs[i] = r.input;
    truncated[i] = r.truncated ? 1 : 0;
    if (f < 0 || r.fileId !== lastId || r.path !== lastPath) {
      lastId = r.fileId;
      lastPath = r.path;
      const key = `${r.fileId}\0${r.path}`;
      const known = fileIndex.get(key);
      if (known === undefined) {
        f = fileIds.length;
        fileIndex.set(key, f);
        fileIds.push(r.fileId);
        paths.push(r.path);
      } else {
        f = known;
      }
    }
    files[i] = f;
    if (r.stream !== undefined || r.time !== undefined || r.k8s !== undefined || r.json !== undefined || r.tags.length > 0) {
      extras ??= new Array<RecordExtra | null>(n).fill(null);
      extras[i] = { stream: r.stream, time: r.time, k8s: r.k8s, json: r.json, tags: r.tags };
    }
  }
  const bytes = text.bytes();
  const task: ParseTask = { text: bytes, lengths, offsets, inputs, files, fileIds, paths, truncated, extras, now };
  return { task, transfer: [bytes.buffer as ArrayBuffer, lengths.buffer, offsets.buffer, inputs.buffer, files.buffer, truncated.buffer] };
}

/**
 * The records' texts as UTF-8, one after the other, in an ArrayBuffer of its own (a Buffer from
 * Node's shared pool cannot be transferred: that would pull the pool from under every other
 * Buffer in the thread). Each text is encoded straight into place; the buffer is sized for ASCII
 * and grows only when a text may not fit.
 */
class TextPacker {
  private buf: Buffer;
  private at = 0;

  constructor(records: readonly TailRecord[]) {
    let chars = 0;
    for (const r of records) chars += r.text.length;
    this.buf = Buffer.allocUnsafeSlow(chars + (chars >> 4) + 64);
  }

  add(text: string): void {
    let buf = this.buf;
    // a UTF-16 unit is at most 3 bytes of UTF-8: only a text that might not fit is measured
    if (buf.length - this.at < text.length * 3) {
      const need = Buffer.byteLength(text, 'utf8');
      if (buf.length - this.at < need) {
        const grown = Buffer.allocUnsafeSlow(Math.max(buf.length * 2, this.at + need));
        buf.copy(grown, 0, 0, this.at);
        this.buf = buf = grown;
      }
    }
    this.at += buf.write(text, this.at, 'utf8');
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.at);
  }
}

/**
 * UTF-8 bytes in an ArrayBuffer of their own. A short Buffer is a slice of Node's shared pool,
 * and transferring that pool would pull it from under every other Buffer in the thread.
 */
function ownedBytes(text: string): Uint8Array {
  const buf = Buffer.from(text, 'utf8');
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) return new Uint8Array(buf.buffer);
  return new Uint8Array(buf);
}

/** The parts of the configuration a parser thread needs. */
export interface ParserInput {
  pattern?: string | readonly string[];
  definitions: Readonly<Record<string, string>>;
  timestamp?: { field: string; format: string | readonly string[]; timezone?: string };
  fields: Readonly<Record<string, string>>;
}

export interface ParserSetup {
  inputs: readonly ParserInput[];
  patternsDirs: readonly string[];
  hostName: string;
}

interface InputParser {
  grok: Grok | null;
  date: DateParser | null;
  timestampField: string[] | null;
  fields: Readonly<Record<string, string>>;
  hasFields: boolean;
  /**
   * The static fields as JSON members (`,"k":"v"…`) when the event of a plain grok line can be
   * written from the match's own JSON (see `EventBuilder.grokLine`), else null.
   */
  directFields: string | null;
  /** The last timestamp text parsed and its time: a chunk's lines mostly share their second. */
  lastStamp: string | undefined;
  lastMs: number | undefined;
}

/** Reserved top-level keys that plumb itself fills. */
const OWN_OBJECTS = new Set(['host', 'log', 'event']);

/**
 * Top-level keys that the general path treats apart (or fills itself). A grok expression or
 * static field using none of them needs none of its special cases.
 */
const SPECIAL_KEYS = new Set(['@timestamp', 'message', 'message_value', 'tags', 'host', 'log', 'event', 'stream', 'kubernetes', 'container', '__proto__']);

/** Keys that JavaScript orders before all others in an object (array indexes). */
const INDEX_KEY = /^(?:0|[1-9]\d*)$/;

/**
 * The static fields as JSON members, or null when an event of this input must go through the
 * general path: a captured or static key that path treats apart, an index-like key (objects put
 * those first, so the order would differ), or a static field over a captured one.
 */
function directFieldsOf(grok: Grok | null, fields: Readonly<Record<string, string>>): string | null {
  if (grok === null) return null;
  const captured = new Set(grok.topLevelFields);
  for (const key of captured) if (SPECIAL_KEYS.has(key) || INDEX_KEY.test(key)) return null;
  let json = '';
  for (const key in fields) {
    if (SPECIAL_KEYS.has(key) || INDEX_KEY.test(key) || captured.has(key)) return null;
    json += `,${JSON.stringify(key)}:${JSON.stringify(fields[key])}`;
  }
  return json;
}

/** Turns records into NDJSON events; one per parser thread, built from the validated configuration. */
export class EventBuilder {
  private readonly parsers: InputParser[];
  private readonly hostName: string;
  /** Built-in patterns with agent.grok.patternsDir over them (the grok debugger compiles against it too). */
  readonly library: PatternLibrary;
  private readonly iso = new IsoTime();
  /** `,"host":{…},"log":{"file":{"path":` — what every direct event has before its path. */
  private readonly hostJson: string;
  /** Per file of the task (see `parse`): `…"path":"<path>"},"offset":` */
  private readonly fileHead: string[] = [];
  /** Per file of the task: `},"event":{"id":"<file id>`, and the same after a truncated record's flags. */
  private readonly fileMid: string[] = [];
  private readonly fileMidTruncated: string[] = [];
  /** The start of a plain grok event timed at reading (the task's time), and the last one timed by its own field (see `headAt`). */
  private nowHead = '';
  private headMs = NaN;
  private head = '';

  constructor(setup: ParserSetup) {
    const library = PatternLibrary.builtin().clone();
    for (const dir of setup.patternsDirs) library.loadPath(dir);
    this.library = library;
    this.hostName = setup.hostName;
    this.parsers = setup.inputs.map((input) => {
      const patterns = input.pattern === undefined ? [] : typeof input.pattern === 'string' ? [input.pattern] : input.pattern;
      return {
        grok: patterns.length > 0 ? compileGrok({ patterns, definitions: input.definitions, library }) : null,
        date: input.timestamp !== undefined ? compileDateParser(input.timestamp.format, { timezone: input.timestamp.timezone }) : null,
        timestampField: input.timestamp !== undefined ? fieldPath(input.timestamp.field) : null,
        fields: input.fields,
        hasFields: Object.keys(input.fields).length > 0,
        directFields: null as string | null,
        lastStamp: undefined as string | undefined,
        lastMs: undefined as number | undefined,
      };
    });
    for (const p of this.parsers) p.directFields = directFieldsOf(p.grok, p.fields);
    this.hostJson = `,"host":{"name":${JSON.stringify(setup.hostName)}},"log":{"file":{"path":`;
  }

  /** Parses a whole task into NDJSON. */
  parse(task: ParseTask): ParseResult {
    const text = Buffer.from(task.text.buffer, task.text.byteOffset, task.text.byteLength).toString('utf8');
    const now = new Date(task.now).toISOString();
    const out: string[] = [];
    let pos = 0;
    let grokFailures = 0;
    let dateFailures = 0;
    let timeouts = 0;
    let failedByFile: Record<string, number> | undefined;
    for (const p of this.parsers) p.lastStamp = undefined;
    const { fileHead, fileMid, fileMidTruncated } = this;
    fileHead.length = fileMid.length = fileMidTruncated.length = 0;
    for (let f = 0; f < task.paths.length; f++) {
      fileHead.push(`${this.hostJson}${JSON.stringify(task.paths[f])}},"offset":`);
      fileMid.push(`},"event":{"id":"${task.fileIds[f]}`);
      fileMidTruncated.push(`,"flags":["truncated"]},"event":{"id":"${task.fileIds[f]}`);
    }
    const timedOut = task.timedOut === true;
    this.nowHead = '{"@timestamp":"' + now + '","message":';
    for (let i = 0; i < task.lengths.length; i++) {
      const line = text.slice(pos, pos + task.lengths[i]);
      pos += task.lengths[i];
      const f = task.files[i];
      const input = task.inputs[i];
      const extra = task.extras === null ? null : task.extras[i];
      let outcome: number;
      if (extra === null && !timedOut && this.parsers[input].directFields !== null) {
        outcome = this.grokLine(out, this.parsers[input], line, task.offsets[i], fileHead[f], task.truncated[i] === 1 ? fileMidTruncated[f] : fileMid[f]);
      } else {
        const e = this.event(input, line, task.offsets[i], task.fileIds[f], task.paths[f], task.truncated[i] === 1, extra, now, timedOut);
        out.push(e.json, '\n');
        outcome = e.outcome;
      }
      if (outcome === 0) continue;
      if (outcome & GROK_FAILED) grokFailures++;
      if (outcome & DATE_FAILED) dateFailures++;
      if (outcome & TIMED_OUT) timeouts++;
      if (outcome & (GROK_FAILED | TIMED_OUT)) {
        failedByFile ??= {};
        failedByFile[task.fileIds[f]] = (failedByFile[task.fileIds[f]] ?? 0) + 1;
      }
    }
    const result: ParseResult = { ndjson: ownedBytes(out.join('')), events: task.lengths.length, grokFailures, dateFailures, timeouts };
    if (failedByFile !== undefined) result.failedByFile = failedByFile;
    return result;
  }

  /**
   * The event of a plain grok line (no container/json extras, no captured or static key that the
   * general path treats apart) written as text: the match's fields keep their order and values,
   * so `JSON.stringify` of the fields object gives the members that the general path's object
   * would have between `message` and the static fields, and what follows them (host, log,
   * event, tags) depends only on the file, the offset and the outcome. Same bytes as `event`,
   * and a newline. The pieces go onto the task's list, joined once for the whole task: joining
   * them per line costs ~4× more under V8's --optimize-for-size (agent.memory.optimizeForSize).
   * Returns what went wrong (GROK_FAILED, DATE_FAILED), 0 when nothing did.
   */
  private grokLine(out: string[], p: InputParser, line: string, offset: number, fileHead: string, fileMid: string): number {
    const fields = (p.grok as Grok).matchLine(line);
    let head = this.nowHead;
    let members = '';
    let tags = '';
    let outcome = 0;
    if (fields === null) {
      tags = TAGS_GROK_FAILURE;
      outcome = GROK_FAILED;
    } else {
      if (p.date !== null) {
        const raw = lookup(fields, p.timestampField as string[]);
        if (raw !== undefined) {
          const ms = typeof raw === 'string' || typeof raw === 'number' ? this.parseStamp(p, String(raw)) : undefined;
          if (ms !== undefined) head = this.headAt(ms);
          else {
            tags = TAGS_DATE_FAILURE;
            outcome = DATE_FAILED;
          }
        }
      }
      members = JSON.stringify(fields);
      // "{}" has no members; otherwise "{…}" less its braces, after a comma
      members = members.length === 2 ? '' : ',' + members.slice(1, -1);
    }
    out.push(head, JSON.stringify(line), members, p.directFields as string, fileHead, String(offset), fileMid, offsetHex(offset), tags === '' ? '"}}\n' : '"}' + tags + '}\n');
    return outcome;
  }

  /** `{"@timestamp":"<ms as ISO text>","message":`, remembered for the last time asked: lines of the same second share it. */
  private headAt(ms: number): string {
    if (ms !== this.headMs) {
      this.headMs = ms;
      this.head = '{"@timestamp":"' + this.iso.format(ms) + '","message":';
    }
    return this.head;
  }

  /** `date.parse`, reusing the last parse when the text is the same (reset for every task). */
  private parseStamp(p: InputParser, raw: string): number | undefined {
    if (raw === p.lastStamp) return p.lastMs;
    const ms = (p.date as DateParser).parse(raw);
    p.lastStamp = raw;
    p.lastMs = ms;
    return ms;
  }

  /** One event as a JSON line (no newline) and what went wrong with it. */
  event(input: number, line: string, offset: number, fileId: string, path: string, truncated: boolean, extra: RecordExtra | null, now: string, timedOut: boolean): { json: string; outcome: number } {
    const p = this.parsers[input];
    let outcome = 0;
    let parsed: Record<string, unknown> | null = extra?.json ?? null;
    const tags: string[] = [];
    if (extra !== null) for (const t of extra.tags) tags.push(t);
    if (p.grok !== null) {
      let subject = line;
      if (parsed !== null && typeof parsed.message === 'string') subject = parsed.message;
      if (timedOut) {
        tags.push(TAG_GROK_TIMEOUT);
        outcome |= TIMED_OUT;
      } else {
        const fields: GrokFields | null = p.grok.matchLine(subject);
        if (fields === null) {
          tags.push(TAG_GROK_FAILURE);
          outcome |= GROK_FAILED;
        } else {
          parsed = parsed === null ? fields : Object.assign({}, parsed, fields);
        }
      }
    }
    let timestamp: string | undefined;
    if (p.date !== null && parsed !== null) {
      const raw = lookup(parsed, p.timestampField as string[]);
      if (raw !== undefined) {
        const ms = typeof raw === 'string' || typeof raw === 'number' ? this.parseStamp(p, String(raw)) : undefined;
        if (ms !== undefined) timestamp = this.iso.format(ms);
        else {
          tags.push(TAG_DATE_FAILURE);
          outcome |= DATE_FAILED;
        }
      }
    }
    if (timestamp === undefined && parsed !== null && typeof parsed['@timestamp'] === 'string') {
      const ms = Date.parse(parsed['@timestamp']);
      if (!Number.isNaN(ms)) timestamp = new Date(ms).toISOString();
    }
    if (timestamp === undefined && extra?.time !== undefined) {
      const ms = Date.parse(extra.time);
      if (!Number.isNaN(ms)) timestamp = new Date(ms).toISOString();
    }

    const ev: Record<string, unknown> = { '@timestamp': timestamp ?? now, message: line };
    let original: string | undefined;
    let hostIn: unknown;
    let logIn: unknown;
    let eventIn: unknown;
    if (parsed !== null) {
      for (const key in parsed) {
        const v = parsed[key];
        if (key === 'message') {
          if (typeof v === 'string' && v !== line) {
            original = line;
            ev.message = v;
          } else if (typeof v !== 'string' && v !== undefined) ev.message_value = v;
        } else if (key === '@timestamp') continue;
        else if (key === 'tags') {
          if (Array.isArray(v)) for (const t of v) tags.push(String(t));
          else if (typeof v === 'string') tags.push(v);
        } else if (OWN_OBJECTS.has(key)) {
          if (key === 'host') hostIn = v;
          else if (key === 'log') logIn = v;
          else eventIn = v;
        } else if (key !== '__proto__') ev[key] = v;
      }
    }
    if (p.hasFields) for (const key in p.fields) ev[key] = p.fields[key];
    if (extra !== null) {
      if (extra.stream !== undefined) ev.stream = extra.stream;
      if (extra.k8s !== undefined) kubernetesFields(ev, extra.k8s);
    }
    const host = plainCopy(hostIn);
    host.name = this.hostName;
    ev.host = host;
    const log = plainCopy(logIn);
    log.file = { path };
    log.offset = offset;
    if (truncated) log.flags = ['truncated'];
    ev.log = log;
    const event = plainCopy(eventIn);
    event.id = eventId(fileId, offset);
    if (original !== undefined) event.original = original;
    ev.event = event;
    if (tags.length > 0) ev.tags = tags;
    return { json: JSON.stringify(ev), outcome };
  }
}

/**
 * `new Date(ms).toISOString()`, remembering the last second: the lines of a chunk are mostly
 * from the same few seconds, and formatting a date is a good part of an event's cost.
 */
export class IsoTime {
  private second = NaN;
  private prefix = '';

  format(ms: number): string {
    // years 1970–9999 keep toISOString's fixed width; anything else goes the long way
    if (!(ms >= 0 && ms < MAX_FIXED_WIDTH_MS) || !Number.isInteger(ms)) return new Date(ms).toISOString();
    const rest = ms % 1000;
    const second = ms - rest;
    if (second !== this.second) {
      this.second = second;
      this.prefix = new Date(second).toISOString().slice(0, 20);
    }
    return this.prefix + (rest < 10 ? '00' : rest < 100 ? '0' : '') + String(rest) + 'Z';
  }
}

const MAX_FIXED_WIDTH_MS = Date.UTC(10000, 0, 1);

const TAGS_GROK_FAILURE = `,"tags":${JSON.stringify([TAG_GROK_FAILURE])}`;
const TAGS_DATE_FAILURE = `,"tags":${JSON.stringify([TAG_DATE_FAILURE])}`;

const GROK_FAILED = 1;
const DATE_FAILED = 2;
const TIMED_OUT = 4;

function plainCopy(v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return {};
  const out: Record<string, unknown> = {};
  for (const k in v as Record<string, unknown>) if (k !== '__proto__') out[k] = (v as Record<string, unknown>)[k];
  return out;
}

/** "timestamp", "a.b" or "[a][b]" as a path. */
function fieldPath(name: string): string[] {
  if (name.startsWith('[')) return name.slice(1, -1).split('][');
  return [name];
}

function lookup(obj: Record<string, unknown>, path: readonly string[]): unknown {
  let v: unknown = obj;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  if (path.length === 1 && v === undefined && path[0].includes('.')) return lookup(obj, path[0].split('.'));
  return v;
}
