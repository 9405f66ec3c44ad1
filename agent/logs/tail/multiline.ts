/**
 * Joins multi-line events (stack traces, pretty-printed dumps): a line matching `start` begins
 * an event, every other line continues the event before it and is joined to it with \n. An
 * event is emitted when the next one starts or when no line came for `timeout`; it holds at
 * most `maxBytes` and `maxLines` (what is past that is dropped and the event flagged
 * truncated), so a runaway event cannot hold memory. Events are assembled per stream: a
 * container's stdout and stderr do not continue each other.
 */
import { utf8Cut } from './lines.ts';
import type { Piece, Stream } from './formats.ts';

export interface MultilineRules {
  start: RegExp;
  maxBytes: number;
  maxLines: number;
  timeoutMs: number;
}

interface Pending {
  parts: string[];
  bytes: number;
  /** Continuation lines kept (the first line is not one). */
  lines: number;
  first: Piece;
  end: number;
  truncated: boolean;
  lastAt: number;
}

export class MultilineAssembler {
  private readonly rules: MultilineRules;
  private readonly pending = new Map<Stream | undefined, Pending>();

  constructor(rules: MultilineRules) {
    this.rules = rules;
  }

  push(piece: Piece, now: number, emit: (event: Piece) => void): void {
    const p = this.pending.get(piece.stream);
    if (p === undefined || this.rules.start.test(piece.text)) {
      if (p !== undefined) emit(this.finish(p));
      this.pending.set(piece.stream, this.begin(piece, now));
      return;
    }
    p.end = piece.end;
    p.lastAt = now;
    p.truncated ||= piece.truncated;
    if (p.lines >= this.rules.maxLines || p.bytes >= this.rules.maxBytes) {
      p.truncated = true;
      return;
    }
    p.lines++;
    const bytes = Buffer.byteLength(piece.text) + 1;
    if (p.bytes + bytes <= this.rules.maxBytes) {
      p.parts.push(piece.text);
      p.bytes += bytes;
    } else {
      const buf = Buffer.from(piece.text);
      p.parts.push(buf.toString('utf8', 0, utf8Cut(buf, 0, Math.max(0, this.rules.maxBytes - p.bytes - 1))));
      p.bytes = this.rules.maxBytes;
      p.truncated = true;
    }
  }

  /** Emits events that saw no line for the timeout. */
  flushExpired(now: number, emit: (event: Piece) => void): void {
    for (const [stream, p] of this.pending) {
      if (now - p.lastAt >= this.rules.timeoutMs) {
        this.pending.delete(stream);
        emit(this.finish(p));
      }
    }
  }

  flushAll(emit: (event: Piece) => void): void {
    const all = [...this.pending.values()].sort((a, b) => a.first.offset - b.first.offset);
    this.pending.clear();
    for (const p of all) emit(this.finish(p));
  }

  /** The earliest file offset held here, or -1. */
  pendingStart(): number {
    let min = -1;
    for (const p of this.pending.values()) if (min < 0 || p.first.offset < min) min = p.first.offset;
    return min;
  }

  clear(): void {
    this.pending.clear();
  }

  private begin(piece: Piece, now: number): Pending {
    let text = piece.text;
    let bytes = Buffer.byteLength(text);
    let truncated = piece.truncated;
    if (bytes > this.rules.maxBytes) {
      const buf = Buffer.from(text);
      text = buf.toString('utf8', 0, utf8Cut(buf, 0, this.rules.maxBytes));
      bytes = this.rules.maxBytes;
      truncated = true;
    }
    return { parts: [text], bytes, lines: 0, first: piece, end: piece.end, truncated, lastAt: now };
  }

  private finish(p: Pending): Piece {
    const f = p.first;
    return {
      text: p.parts.length === 1 ? p.parts[0] : p.parts.join('\n'),
      offset: f.offset,
      end: p.end,
      truncated: p.truncated,
      stream: f.stream,
      time: f.time,
      malformed: f.malformed,
    };
  }
}
