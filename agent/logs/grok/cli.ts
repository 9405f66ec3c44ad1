/**
 * `plumb grok`: try a grok expression against lines on standard input, one JSON object per
 * line out: {"match":true,"fields":{…}} or {"match":false}. Nested field names print with dots
 * ([a][b] → "a.b"); :int and :float captures print as numbers; a field captured more than once
 * prints as an array.
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { errorMessage } from '../../../shared/errors.ts';
import { compileGrok, type Grok, type GrokFields, type GrokValue } from './grok.ts';

export interface GrokCliOptions {
  /** The grok expression, e.g. "%{COMBINEDAPACHELOG}". */
  pattern: string;
  /** A pattern file or a directory of pattern files, loaded over the built-in patterns. */
  patternsDir?: string;
}

/** Output is written in pieces of about this many characters. */
const WRITE_BATCH = 64 * 1024;

/**
 * Runs the tool. Returns the exit code: 0 after all input was read (whether lines matched or
 * not), 1 when the expression or the patterns cannot be compiled (the reason goes to `errors`).
 */
export async function runGrokCli(options: GrokCliOptions, input: Readable, output: Writable, errors: Writable = process.stderr): Promise<number> {
  let grok: Grok;
  try {
    grok = compileGrok({ patterns: options.pattern, ...(options.patternsDir !== undefined ? { patternsDir: options.patternsDir } : {}) });
  } catch (err) {
    errors.write(`plumb grok: ${errorMessage(err)}\n`);
    return 1;
  }
  const lines = createInterface({ input, crlfDelay: Infinity });
  let pending = '';
  for await (const line of lines) {
    const fields = grok.matchLine(line);
    pending += fields === null ? '{"match":false}\n' : `{"match":true,"fields":${JSON.stringify(flattenFields(fields))}}\n`;
    if (pending.length >= WRITE_BATCH) {
      const ok = output.write(pending);
      pending = '';
      if (!ok) await once(output, 'drain');
    }
  }
  if (pending !== '') {
    if (!output.write(pending)) await once(output, 'drain');
  }
  return 0;
}

/** Nested objects become dotted keys; arrays and scalars are kept. */
export function flattenFields(fields: GrokFields): Record<string, string | number | (string | number)[]> {
  const out: Record<string, string | number | (string | number)[]> = {};
  flattenInto(out, '', fields);
  return out;
}

function flattenInto(out: Record<string, string | number | (string | number)[]>, prefix: string, value: GrokFields): void {
  for (const [key, v] of Object.entries(value) as [string, GrokValue][]) {
    const name = prefix === '' ? key : `${prefix}.${key}`;
    if (typeof v === 'object' && !Array.isArray(v)) flattenInto(out, name, v);
    else out[name] = v;
  }
}
