/**
 * A parser thread of the piscina pool: builds the grok expressions and date parsers once from
 * `workerData` (a ParserSetup), then turns each task — a chunk of records — into NDJSON events.
 * The result's buffer is transferred back, not copied. `debugGrok` serves the grok debugger
 * from the same threads, so a pattern tried there meets the same engine, library and deadlines.
 */
import { workerData } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { EventBuilder, type ParseResult, type ParseTask, type ParserSetup } from './events.ts';
import { compileGrok } from './grok/grok.ts';
import { flattenFields } from './grok/cli.ts';
import { errorMessage } from '../../shared/errors.ts';

const builder = new EventBuilder(workerData as ParserSetup);

export default function parseChunk(task: ParseTask): unknown {
  const result = builder.parse(task);
  return move({
    get [transferableSymbol]() {
      return [result.ndjson.buffer];
    },
    get [valueSymbol](): ParseResult {
      return result;
    },
  } as never);
}

/** A grok debugger request as a parser thread runs it (see grok-debug.ts). */
export interface GrokDebugTask {
  patterns: string[];
  definitions: Record<string, string>;
  lines: string[];
}

export type GrokDebugOutcome = { error: string } | { fields: (Record<string, unknown> | null)[] };

/** Compiles the expression against this thread's library and matches each line: fields, or null. */
export function debugGrok(task: GrokDebugTask): GrokDebugOutcome {
  let grok;
  try {
    grok = compileGrok({ patterns: task.patterns, definitions: task.definitions, library: builder.library });
  } catch (err) {
    return { error: errorMessage(err) };
  }
  return { fields: task.lines.map((line) => {
    const f = grok.matchLine(line);
    return f === null ? null : flattenFields(f);
  }) };
}
