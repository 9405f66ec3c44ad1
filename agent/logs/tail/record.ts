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
  /** The line, or the joined event, without its final newline. */
  text: string;
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
  /** Length of the records' text (UTF-16 code units: bytes, for ASCII). */
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
