/**
 * Line framings written by container runtimes, and the joining of the partial lines they split
 * long output into.
 *
 * - cri (containerd, CRI-O): `<RFC3339Nano time> <stdout|stderr> <P|F>[:tags] <log>`; P lines
 *   are pieces of one line, continued until an F line of the same stream.
 * - docker json-file: `{"log":"…\n","stream":"stdout","time":"…"}`; a `log` that does not end
 *   in \n is a piece, continued by the next line of the same stream.
 *
 * A line that does not follow its framing is kept whole as the event text and flagged
 * malformed: bad input is counted, never dropped.
 */
import path from 'node:path';
import { utf8Cut } from './lines.ts';

export type Stream = 'stdout' | 'stderr';

/** One physical line after framing was taken off. */
export interface FramedLine {
  time: string;
  stream: Stream;
  /** More of the same line follows in the next piece of this stream. */
  partial: boolean;
  log: string;
}

const TIME_START = /^\d{4}-\d\d-\d\dT/;

export function decodeCri(line: string): FramedLine | undefined {
  const a = line.indexOf(' ');
  if (a <= 0 || !TIME_START.test(line)) return undefined;
  const b = line.indexOf(' ', a + 1);
  if (b < 0) return undefined;
  const stream = line.slice(a + 1, b);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const c = line.indexOf(' ', b + 1);
  const tagEnd = c < 0 ? line.length : c;
  const flag = line.charCodeAt(b + 1);
  // The tag field is P or F, optionally followed by more tags after a colon.
  if ((flag !== 0x50 && flag !== 0x46) || (tagEnd !== b + 2 && line.charCodeAt(b + 2) !== 0x3a)) return undefined;
  return { time: line.slice(0, a), stream, partial: flag === 0x50, log: c < 0 ? '' : line.slice(c + 1) };
}

export function decodeDocker(line: string): FramedLine | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (doc === null || typeof doc !== 'object') return undefined;
  const { log, stream, time } = doc as { log?: unknown; stream?: unknown; time?: unknown };
  if (typeof log !== 'string' || (stream !== 'stdout' && stream !== 'stderr')) return undefined;
  const partial = !log.endsWith('\n');
  return { time: typeof time === 'string' ? time : '', stream, partial, log: partial ? log : log.slice(0, log.endsWith('\r\n') ? -2 : -1) };
}

/** Parses one line of a `json` input; undefined when it is not a JSON object. */
export function decodeJsonObject(line: string): Record<string, unknown> | undefined {
  if (line.length === 0 || line.charCodeAt(0) !== 0x7b) return undefined;
  try {
    const doc: unknown = JSON.parse(line);
    return doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export interface KubernetesMeta {
  pod: string;
  namespace: string;
  container: string;
  /** Present for /var/log/containers names, which carry it. */
  containerId: string | undefined;
  /** Present for /var/log/pods directories, which carry it. */
  podUid?: string;
  /** From the Kubernetes API (agent.kubernetes), when the pod is known there. */
  api?: PodMetadata;
}

/** What the Kubernetes API adds to a pod's events (label and annotation keys with dots as underscores). */
export interface PodMetadata {
  uid: string | undefined;
  nodeName: string | undefined;
  labels: Record<string, string> | undefined;
  annotations: Record<string, string> | undefined;
  namespaceLabels: Record<string, string> | undefined;
  image: string | undefined;
  containerId: string | undefined;
}

const CONTAINERS_NAME = /^([^_/]+)_([^_/]+)_(.+)-([0-9a-f]{64})\.log$/;
const PODS_DIR = /^([^_/]+)_([^_/]+)_([0-9a-f-]+)$/;

/**
 * Pod, namespace and container from the kubelet's file names:
 * `…/containers/<pod>_<namespace>_<container>-<id>.log` or
 * `…/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`.
 */
export function kubernetesFromPath(file: string): KubernetesMeta | undefined {
  const base = path.basename(file);
  const m = CONTAINERS_NAME.exec(base);
  if (m) return { pod: m[1], namespace: m[2], container: m[3], containerId: m[4] };
  const containerDir = path.dirname(file);
  const podDir = path.basename(path.dirname(containerDir));
  const p = PODS_DIR.exec(podDir);
  if (p && path.basename(path.dirname(path.dirname(containerDir))) === 'pods' && /^\d+\.log/.test(base)) {
    return { pod: p[2], namespace: p[1], container: path.basename(containerDir), containerId: undefined, podUid: p[3] };
  }
  return undefined;
}

/** A line or an event as it moves from framing through joining into a record. */
export interface Piece {
  text: string;
  offset: number;
  end: number;
  truncated: boolean;
  stream: Stream | undefined;
  time: string | undefined;
  malformed: boolean;
}

interface Pending {
  parts: string[];
  bytes: number;
  offset: number;
  end: number;
  truncated: boolean;
  time: string;
  lastAt: number;
}

/**
 * Joins the pieces of partial lines, per stream, into whole lines of at most `maxBytes`
 * (the rest dropped, the line flagged truncated). Holds at most one line per stream.
 */
export class PartialJoiner {
  private readonly maxBytes: number;
  private readonly pending = new Map<Stream, Pending>();

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  /** Adds a piece; returns the whole line when this piece ends it. */
  push(line: FramedLine, offset: number, end: number, truncated: boolean, now: number): Piece | undefined {
    let p = this.pending.get(line.stream);
    if (p === undefined) {
      if (!line.partial) return { text: line.log, offset, end, truncated, stream: line.stream, time: line.time, malformed: false };
      p = { parts: [], bytes: 0, offset, end, truncated, time: line.time, lastAt: now };
      this.pending.set(line.stream, p);
    }
    p.end = end;
    p.lastAt = now;
    p.truncated ||= truncated;
    if (p.bytes < this.maxBytes) {
      const bytes = Buffer.byteLength(line.log);
      if (p.bytes + bytes <= this.maxBytes) {
        p.parts.push(line.log);
        p.bytes += bytes;
      } else {
        const buf = Buffer.from(line.log);
        p.parts.push(buf.toString('utf8', 0, utf8Cut(buf, 0, this.maxBytes - p.bytes)));
        p.bytes = this.maxBytes;
        p.truncated = true;
      }
    } else if (line.log.length > 0) {
      p.truncated = true;
    }
    if (line.partial) return undefined;
    this.pending.delete(line.stream);
    return toPiece(p, line.stream);
  }

  /** Emits lines whose next piece has not come for `timeoutMs`. */
  flushExpired(now: number, timeoutMs: number, emit: (piece: Piece) => void): void {
    for (const [stream, p] of this.pending) {
      if (now - p.lastAt >= timeoutMs) {
        this.pending.delete(stream);
        emit(toPiece(p, stream));
      }
    }
  }

  flushAll(emit: (piece: Piece) => void): void {
    for (const [stream, p] of this.pending) emit(toPiece(p, stream));
    this.pending.clear();
  }

  /** The earliest file offset held here, or -1. */
  pendingStart(): number {
    let min = -1;
    for (const p of this.pending.values()) if (min < 0 || p.offset < min) min = p.offset;
    return min;
  }

  clear(): void {
    this.pending.clear();
  }
}

function toPiece(p: Pending, stream: Stream): Piece {
  return { text: p.parts.length === 1 ? p.parts[0] : p.parts.join(''), offset: p.offset, end: p.end, truncated: p.truncated, stream, time: p.time, malformed: false };
}
