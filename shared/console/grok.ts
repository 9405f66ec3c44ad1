/**
 * The grok debugger's contract, shared by the HTTP route both roles serve (POST /api/v1/grok),
 * the console page and the agent's implementation (agent/logs/grok-debug.ts), which runs the
 * request in the log pipeline's parser threads.
 */

/** Bounds of one request: the debugger shares threads with the pipeline. */
export const GROK_MAX_LINES = 1000;
export const GROK_MAX_LINE_CHARS = 16 * 1024;
export const GROK_MAX_BODY_BYTES = 1024 * 1024;

export interface GrokRequest {
  /** Expression(s), tried in order; absent: the chosen input's. */
  pattern?: string | string[];
  /** Extra definitions NAME → expression; with `input`, over the input's own. */
  definitions?: Record<string, string>;
  /** Index of a configured input (agent.logs[i]): its pattern and definitions, and its file's last lines when `lines` is empty. */
  input?: number;
  lines?: string[];
}

export interface GrokLineResult {
  line: string;
  /** matched: fields captured; failed: no expression matched; timeout: overran the line deadline; skipped: not tried (too many timeouts). */
  outcome: 'matched' | 'failed' | 'timeout' | 'skipped';
  fields?: Record<string, unknown>;
}

export interface GrokAnswer {
  patterns: string[];
  /** The input whose pattern or lines were used. */
  input?: { index: number; paths: string[]; file?: string };
  matched: number;
  failed: number;
  timedOut: number;
  lines: GrokLineResult[];
  /** Deadlines applied (agent.grok.chunkTimeout and lineTimeout), ms. */
  timeouts: { chunk: number; line: number };
}

export interface GrokInputInfo {
  index: number;
  paths: string[];
  patterns: string[];
}

/** What a role offers the debugger; thrown errors are PlumbErrors with a code. */
export interface GrokService {
  inputs(): GrokInputInfo[];
  run(request: GrokRequest): Promise<GrokAnswer>;
}
