/**
 * The grok debugger behind POST /api/v1/grok: sample lines and an expression (or a configured
 * input's expression, and its file's last lines) matched in the log pipeline's own parser
 * threads, so the answer is the pipeline's: same engine, same pattern library and
 * agent.grok.patternsDir, same deadlines. All lines go as one task with chunkTimeout; when it
 * overruns, the thread is replaced and each line is tried alone with lineTimeout, as the
 * pipeline does. After a few lines overrun, the rest are not tried (a runaway pattern would
 * otherwise hold a thread for lineTimeout per line).
 *
 * Without log inputs there is no pipeline: a pool of one thread is started on the first request
 * and let go when idle. One request runs at a time; another meanwhile is refused (busy).
 */
import { open, glob, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { PlumbError, errorMessage } from '../../shared/errors.ts';
import type { GrokAnswer, GrokInputInfo, GrokLineResult, GrokRequest, GrokService } from '../../shared/console/grok.ts';
import { GROK_MAX_LINES, GROK_MAX_LINE_CHARS } from '../../shared/console/grok.ts';
import { inputPatterns, patternsDirs, type GrokPoolConfig } from './config.ts';
import { inputPaths, type LogInput } from './tail/config.ts';
import type { ParserSetup } from './events.ts';
import type { GrokDebugOutcome, GrokDebugTask } from './parse-worker.ts';
import { isAbort, type LogPipeline } from './pipeline.ts';

const WORKER_FILE = fileURLToPath(new URL(`./parse-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/** Lines overrunning lineTimeout after which the rest are skipped. */
const MAX_LINE_TIMEOUTS = 3;
/** Lines read from the end of an input's file when the request gives none. */
const SAMPLE_LINES = 20;
const SAMPLE_BYTES = 64 * 1024;
/** A task that only waits for a parser thread to be up, and how long a thread may take to start. */
const WARM_UP: GrokDebugTask = { patterns: ['%{WORD}'], definitions: {}, lines: [] };
const THREAD_START_MS = 30_000;
/** A pool of its own (no log inputs) lets its thread go after this long unused. */
const IDLE_MS = 60_000;

export interface GrokDebugConfig {
  logs: readonly LogInput[];
  grok: GrokPoolConfig;
  hostName: string;
}

type Runner = (task: GrokDebugTask, timeoutMs: number) => Promise<GrokDebugOutcome>;

export class GrokDebugger implements GrokService {
  private readonly config: GrokDebugConfig;
  /** The running log pipeline, if any (it is built when the agent starts). */
  private readonly pipeline: () => LogPipeline | null;
  private ownPool: Piscina | null = null;
  private busy = false;

  constructor(config: GrokDebugConfig, pipeline: () => LogPipeline | null) {
    this.config = config;
    this.pipeline = pipeline;
  }

  inputs(): GrokInputInfo[] {
    return this.config.logs.map((input, index) => ({ index, paths: inputPaths(input), patterns: inputPatterns(input) }));
  }

  async run(request: GrokRequest): Promise<GrokAnswer> {
    if (this.busy) throw new PlumbError('PLUMB_ERR_HTTP_BUSY', 'the grok debugger is running another request; try again in a moment');
    this.busy = true;
    try {
      return await this.evaluate(request);
    } finally {
      this.busy = false;
    }
  }

  async stop(): Promise<void> {
    const pool = this.ownPool;
    this.ownPool = null;
    await pool?.destroy();
  }

  private async evaluate(request: GrokRequest): Promise<GrokAnswer> {
    let patterns = request.pattern === undefined ? [] : typeof request.pattern === 'string' ? [request.pattern] : request.pattern;
    patterns = patterns.filter((p) => p.trim() !== '');
    let definitions = request.definitions ?? {};
    let lines = request.lines ?? [];
    let input: GrokAnswer['input'];
    if (request.input !== undefined) {
      const configured = this.config.logs[request.input];
      if (configured === undefined) throw new PlumbError('PLUMB_ERR_GROK_INPUT', `agent.logs[${request.input}]: no such input (${this.config.logs.length} configured)`);
      if (patterns.length === 0) patterns = inputPatterns(configured);
      definitions = { ...configured.definitions, ...definitions };
      input = { index: request.input, paths: inputPaths(configured) };
      if (lines.length === 0) {
        const sample = await lastLines(input.paths);
        input.file = sample.file;
        lines = sample.lines;
      }
    }
    if (patterns.length === 0) throw new PlumbError('PLUMB_ERR_GROK_PATTERN', 'give a pattern, e.g. "%{COMMONAPACHELOG}", or an input that has one');
    lines = lines.slice(0, GROK_MAX_LINES).map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
    const timeouts = { chunk: this.config.grok.chunkTimeout, line: this.config.grok.lineTimeout };
    const runner = this.runner();
    const results: GrokLineResult[] = [];
    let outcome: GrokDebugOutcome | null = null;
    try {
      outcome = await runner({ patterns, definitions, lines }, timeouts.chunk);
    } catch (err) {
      if (!isAbort(err)) throw err;
    }
    if (outcome !== null && 'error' in outcome) throw new PlumbError('PLUMB_ERR_GROK_PATTERN', outcome.error);
    if (outcome !== null) {
      outcome.fields.forEach((f, i) => results.push(f === null ? { line: lines[i], outcome: 'failed' } : { line: lines[i], outcome: 'matched', fields: f }));
    } else {
      // the whole overran: line by line, as the pipeline re-parses a chunk that overran
      let overran = 0;
      let replaced = true;
      for (const line of lines) {
        if (overran >= MAX_LINE_TIMEOUTS) {
          results.push({ line, outcome: 'skipped' });
          continue;
        }
        // the overrun thread was replaced: wait for the new one to start, so a line's deadline measures matching, not a thread's start
        if (replaced) await runner(WARM_UP, THREAD_START_MS).catch(() => undefined);
        replaced = false;
        try {
          const one = await runner({ patterns, definitions, lines: [line] }, timeouts.line);
          if ('error' in one) throw new PlumbError('PLUMB_ERR_GROK_PATTERN', one.error);
          const f = one.fields[0];
          results.push(f === null ? { line, outcome: 'failed' } : { line, outcome: 'matched', fields: f });
        } catch (err) {
          if (!isAbort(err)) throw err;
          overran++;
          replaced = true;
          results.push({ line, outcome: 'timeout' });
        }
      }
    }
    const count = (o: GrokLineResult['outcome']): number => results.reduce((n, r) => n + (r.outcome === o ? 1 : 0), 0);
    return { patterns, ...(input !== undefined ? { input } : {}), matched: count('matched'), failed: count('failed'), timedOut: count('timeout'), lines: results, timeouts };
  }

  private runner(): Runner {
    const pipeline = this.pipeline();
    if (pipeline !== null) {
      return async (task, timeoutMs) => {
        const r = await pipeline.runNamed<GrokDebugOutcome>('debugGrok', task, timeoutMs);
        if (r === null) throw new PlumbError('PLUMB_ERR_HTTP_BUSY', 'the log pipeline is stopping');
        return r;
      };
    }
    if (this.ownPool === null) {
      const setup: ParserSetup = { inputs: [], patternsDirs: patternsDirs(this.config.grok), hostName: this.config.hostName };
      this.ownPool = new Piscina({ filename: WORKER_FILE, minThreads: 0, maxThreads: 1, idleTimeout: IDLE_MS, workerData: setup, resourceLimits: { maxYoungGenerationSizeMb: 8 } });
    }
    const pool = this.ownPool;
    return async (task, timeoutMs) => (await pool.run(task, { name: 'debugGrok', signal: AbortSignal.timeout(timeoutMs) })) as GrokDebugOutcome;
  }
}

/** The last lines of the most recently modified file an input reads (a literal path or a glob). */
async function lastLines(paths: readonly string[]): Promise<{ file: string; lines: string[] }> {
  let newest: { file: string; mtime: number; size: number } | undefined;
  for (const p of paths) {
    try {
      for await (const file of glob(p)) {
        const s = await stat(file).catch(() => null);
        if (s !== null && s.isFile() && (newest === undefined || s.mtimeMs > newest.mtime)) newest = { file, mtime: s.mtimeMs, size: s.size };
      }
    } catch (err) {
      throw new PlumbError('PLUMB_ERR_GROK_INPUT', `cannot list ${JSON.stringify(p)}: ${errorMessage(err)}`);
    }
  }
  if (newest === undefined) throw new PlumbError('PLUMB_ERR_GROK_INPUT', `no file matches ${paths.map((p) => JSON.stringify(p)).join(', ')} yet; paste sample lines instead`);
  const start = Math.max(0, newest.size - SAMPLE_BYTES);
  const buf = Buffer.alloc(newest.size - start);
  const fh = await open(newest.file, 'r').catch((err: unknown) => {
    throw new PlumbError('PLUMB_ERR_GROK_INPUT', `cannot read ${JSON.stringify(newest.file)}: ${errorMessage(err)}`);
  });
  try {
    await fh.read(buf, 0, buf.length, start);
  } finally {
    await fh.close();
  }
  const text = buf.toString('utf8');
  const lines = text.split('\n');
  if (start > 0) lines.shift(); // cut in the middle of a line
  if (lines.at(-1) === '') lines.pop();
  return { file: newest.file, lines: lines.slice(-SAMPLE_LINES).map((l) => l.slice(0, GROK_MAX_LINE_CHARS)) };
}
