/** What the tailer hands out: batches of records, each naming the bytes it came from. */
import { eventId } from './identity.ts';
import type { KubernetesMeta, Stream } from './formats.ts';

export interface TailRecord {
  /** Identity of the file (stable across renames and restarts; new after a truncation). */
  fileId: string;
  /** Where the file was when the record was read. */
  path: string;
  /** Index of the input (in the configured list) that matched the file. */
  input: number;
  /** Byte offset of the record's first byte in the file. */
  offset: number;
  /** Byte offset after the record's last newline. */
  endOffset: number;
  /** The line, or the joined event, without its final newline; '' for a chunk. */
  text: string;
  /**
   * A run of whole lines as the file holds them, each ending in "\n", from `offset` to
   * `endOffset` (plain UTF-8 or latin1 files without multiline): the parser thread splits them,
   * so the tailer hands over bytes instead of a string and a record per line.
   */
  chunk?: Buffer;
  /** Lines in the chunk (blank ones included). */
  lines?: number;
  /** The chunk's bytes are latin1 (else UTF-8). */
  latin1?: boolean;
  /** Some of the line or event was cut (maxLineBytes, multiline limits). */
  truncated: boolean;
  /** cri/docker: which stream the container wrote to. */
  stream: Stream | undefined;
  /** cri/docker: the runtime's timestamp, as written (RFC 3339). */
  time: string | undefined;
  /** From kubelet log file names. */
  k8s: KubernetesMeta | undefined;
  /** json: the parsed object (undefined when the line was not one; see tags). */
  json: Record<string, unknown> | undefined;
  /** Problems with the input: "malformed" (cri/docker framing), "json_invalid". Shared, do not mutate. */
  tags: readonly string[];
  /** The input's static fields. Shared by every record of the input, do not mutate. */
  fields: Readonly<Record<string, string>>;
}

export interface TailBatch {
  /** Increases by one per batch for the life of the Tailer; what `ack` recognises. */
  readonly seq: number;
  readonly records: readonly TailRecord[];
  /** Records, a chunk counting its non-blank lines. */
  readonly count: number;
  /** Length of the records' text (UTF-16 code units: bytes, for ASCII), or of their chunks' bytes. */
  readonly bytes: number;
}

/** Receives batches. The tailer reads no further until the promise settles (backpressure). */
export type TailConsumer = (batch: TailBatch) => Promise<void>;

export const NO_TAGS: readonly string[] = Object.freeze([]);
export const MALFORMED_TAGS: readonly string[] = Object.freeze(['malformed']);
export const JSON_INVALID_TAGS: readonly string[] = Object.freeze(['json_invalid']);

/** The record's deterministic id: a replay of the same bytes gets the same id. */
export function recordId(record: TailRecord): string {
  return eventId(record.fileId, record.offset);
}

/**
 * A chunk record as one record per line, each still a chunk of its line's bytes (the parser
 * thread cuts, trims and skips them as usual): for parsing line by line after a chunk overran
 * its deadline. Other records come back as they are.
 */
export function chunkLines(record: TailRecord): TailRecord[] {
  const chunk = record.chunk;
  if (chunk === undefined) return [record];
  const out: TailRecord[] = [];
  for (let p = 0; p < chunk.length; ) {
    let nl = chunk.indexOf(0x0a, p);
    if (nl === -1) nl = chunk.length - 1;
    const len = nl - p;
    if (len > 1 || (len === 1 && chunk[p] !== 0x0d)) {
      out.push({ ...record, offset: record.offset + p, endOffset: record.offset + nl + 1, chunk: chunk.subarray(p, nl + 1), lines: 1 });
    }
    p = nl + 1;
  }
  return out;
}

/** The lines of a record as text, for a live tap (not the parser's path: no cutting). */
export function recordTexts(record: TailRecord): { offset: number; text: string }[] {
  const chunk = record.chunk;
  if (chunk === undefined) return [{ offset: record.offset, text: record.text }];
  return chunkLines(record).map((r) => {
    const c = r.chunk as Buffer;
    let end = c.length - 1;
    if (end > 0 && c[end - 1] === 0x0d) end--;
    return { offset: r.offset, text: c.toString(record.latin1 === true ? 'latin1' : 'utf8', 0, end) };
  });
}
