/**
 * Configuration of the agent's log pipeline as a whole: the inputs (`agent.logs`, see
 * tail/config.ts), the tailer's limits (`agent.tail`) and the grok worker pool (`agent.grok`).
 * `logsConfigErrors` compiles every input's grok expressions and date formats once, so a
 * pattern that cannot work is refused when the configuration is loaded, naming the input and
 * the pattern, instead of when the first line arrives.
 */
import { Value } from '@sinclair/typebox/value';
import { availableParallelism } from 'node:os';
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration, Section } from '../../shared/config.ts';
import { errorMessage } from '../../shared/errors.ts';
import { LogInputsSchema, TailerOptionsSchema, tailConfigErrors, type LogInput, type TailerOptions } from './tail/config.ts';
import { compileDateParser, compileGrok, PatternLibrary } from './grok/index.ts';

export const GrokPoolSchema = Section(
  {
    patternsDir: Type.Union([Type.Null(), Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }))], {
      default: null,
      description: "pattern files (Logstash's `NAME regex` lines) or directories of them, loaded over the built-in library",
    }),
    workers: Type.Integer({
      minimum: 0,
      maximum: 64,
      default: 0,
      description: 'parser threads; 0 = one per CPU core, and in `plumb all` one fewer (at least one): the collector works on the same main thread as the tailer',
    }),
    chunkTimeout: Duration('5s', {
      description: 'a chunk of lines not parsed within this time is parsed again line by line; the line that still overruns is tagged _grokparsetimeout and its thread replaced',
    }),
    lineTimeout: Duration('1s', { description: 'the deadline for one line when a chunk is parsed again line by line' }),
  },
  { description: 'Grok parsing in worker threads.' },
);

export type GrokPoolConfig = StaticDecode<typeof GrokPoolSchema>;

/** The three sections the log pipeline reads, as mounted in the agent's schema. */
export const AgentLogsSchema = Type.Object(
  { logs: LogInputsSchema, tail: TailerOptionsSchema, grok: GrokPoolSchema },
  { additionalProperties: true },
);

export interface LogsConfig {
  logs: readonly LogInput[];
  tail: TailerOptions;
  grok: GrokPoolConfig;
}

/** agent.grok with every default (`plumb grok` without --config). */
export function defaultGrokPool(): GrokPoolConfig {
  return Value.Decode(GrokPoolSchema, Value.Default(GrokPoolSchema, {}));
}

/**
 * Parser threads to start. With the collector in the same process (`plumb all`) its work and the
 * tailer's share one main thread, so the default leaves that thread a core: on two cores a second
 * parser thread only contends with it, and each thread costs 25–30 MiB (bench/RESULTS.md).
 */
export function poolSize(grok: GrokPoolConfig, collectorInProcess = false, cores = availableParallelism()): number {
  if (grok.workers > 0) return grok.workers;
  return collectorInProcess ? Math.max(1, cores - 1) : cores;
}

export function patternsDirs(grok: GrokPoolConfig): string[] {
  return grok.patternsDir === null ? [] : typeof grok.patternsDir === 'string' ? [grok.patternsDir] : grok.patternsDir;
}

/** Inputs' patterns as a list (none: lines are kept as they are, without a grok failure tag). */
export function inputPatterns(input: LogInput): string[] {
  return input.pattern === undefined ? [] : typeof input.pattern === 'string' ? [input.pattern] : input.pattern;
}

/** Every problem of the log sections, each naming its key path. Compiles what will be compiled. */
export function logsConfigErrors(config: LogsConfig, prefix = 'agent'): string[] {
  const errors = tailConfigErrors(config.logs, config.tail, `${prefix}.logs`, `${prefix}.tail`);
  if (config.grok.lineTimeout > config.grok.chunkTimeout) errors.push(`${prefix}.grok.lineTimeout: longer than chunkTimeout (${config.grok.chunkTimeout} ms)`);
  let library: PatternLibrary | undefined;
  const dirs = patternsDirs(config.grok);
  try {
    library = PatternLibrary.builtin().clone();
    for (const dir of dirs) library.loadPath(dir);
  } catch (err) {
    errors.push(`${prefix}.grok.patternsDir: ${errorMessage(err)}`);
    library = undefined;
  }
  config.logs.forEach((input, i) => {
    const at = `${prefix}.logs[${i}]`;
    const patterns = inputPatterns(input);
    if (library !== undefined && patterns.length > 0) {
      try {
        compileGrok({ patterns, definitions: input.definitions, library });
      } catch (err) {
        errors.push(`${at}.pattern: ${errorMessage(err)}`);
      }
    }
    if (input.timestamp !== undefined) {
      try {
        compileDateParser(input.timestamp.format, { timezone: input.timestamp.timezone });
      } catch (err) {
        errors.push(`${at}.timestamp: ${errorMessage(err).replace(/^date: /, '')}`);
      }
    }
  });
  return errors;
}
