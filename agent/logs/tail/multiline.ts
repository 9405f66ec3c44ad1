/**
 * Joins multi-line events (stack traces, pretty-printed dumps, statements over several lines),
 * lines joined with \n. Modes:
 *
 * - start: a line matching `start` begins an event, every other line continues the event before it.
 * - The others (Vector's names): with no event open, a line matching `start` (any line when
 *   `start` is unset) opens one, and a line that does not is an event of its own. An open event
 *   then takes the next lines by `condition`:
 *   - continue-through: a line matching it joins; the first that does not ends the event and is
 *     looked at as a line with no event open.
 *   - continue-past: a line matching it joins, and so does the first line that does not, which
 *     ends the event (an opening line that does not match is an event of its own).
 *   - halt-before: a line not matching it joins; the first that matches ends the event and is
 *     looked at as a line with no event open.
 *   - halt-with: every line joins; the first that matches ends the event with it (an opening
 *     line that matches is an event of its own).
 *
 * An event is also emitted when no line came for `timeout` (a writer that went quiet); it holds at
 * most `maxBytes` and `maxLines` (what is past that is dropped and the event flagged
 * truncated), so a runaway event cannot hold memory. Events are assembled per stream: a
 * container's stdout and stderr do not continue each other.
 */
import { utf8Cut } from './lines.ts';
import type { MultilineMode } from './config.ts';
import type { Piece, Stream } from './formats.ts';

export interface MultilineRules {
  mode: MultilineMode;
  /** Required for mode start; for the others, unset means any line opens an event. */
  start: RegExp | undefined;
  /** Required for every mode but start. */
  condition: RegExp | undefined;
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
    const r = this.rules;
    const p = this.pending.get(piece.stream);
    if (r.mode === 'start') {
      if (p === undefined || (r.start as RegExp).test(piece.text)) {
        if (p !== undefined) emit(this.finish(p));
        this.pending.set(piece.stream, this.begin(piece, now));
      } else {
        this.add(p, piece, now);
      }
      return;
    }
    if (p === undefined) {
      this.open(piece, now, emit);
      return;
    }
    const matches = (r.condition as RegExp).test(piece.text);
    switch (r.mode) {
      case 'continue-through':
      case 'halt-before':
        if (matches === (r.mode === 'continue-through')) {
          this.add(p, piece, now);
        } else {
          this.pending.delete(piece.stream);
          emit(this.finish(p));
          this.open(piece, now, emit);
        }
        return;
      case 'continue-past':
      case 'halt-with':
        this.add(p, piece, now);
        if (matches === (r.mode === 'halt-with')) {
          this.pending.delete(piece.stream);
          emit(this.finish(p));
        }
        return;
    }
  }

  /** A line with no event open on its stream (every mode but start). */
  private open(piece: Piece, now: number, emit: (event: Piece) => void): void {
    const r = this.rules;
    if (r.start !== undefined && !r.start.test(piece.text)) {
      emit(this.finish(this.begin(piece, now)));
      return;
    }
    const p = this.begin(piece, now);
    // An opening line that already ends its event: the end marker itself (halt-with), or no
    // continuation marker (continue-past).
    if ((r.mode === 'halt-with' || r.mode === 'continue-past') && (r.condition as RegExp).test(piece.text) === (r.mode === 'halt-with')) {
      emit(this.finish(p));
      return;
    }
    this.pending.set(piece.stream, p);
  }

  private add(p: Pending, piece: Piece, now: number): void {
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
