/**
 * `plumb grok`: try a grok expression against lines on standard input, one JSON object per
 * line out: {"match":true,"fields":{…}} or {"match":false}. Nested field names print with dots
 * ([a][b] → "a.b"); :int and :float captures print as numbers; a field captured more than once
 * prints as an array.
 */
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
  try {
    for await (const line of lines) {
      const fields = grok.matchLine(line);
      pending += fields === null ? '{"match":false}\n' : `{"match":true,"fields":${JSON.stringify(flattenFields(fields))}}\n`;
      if (pending.length >= WRITE_BATCH) {
        // A reader that went away (`plumb grok … | head`) ends the run quietly.
        if (output.destroyed) break;
        const ok = output.write(pending);
        pending = '';
        if (!ok) await drained(output);
      }
    }
    if (pending !== '' && !output.destroyed && !output.write(pending)) await drained(output);
  } finally {
    lines.close();
  }
  return 0;
}

/** Resolves when the stream wants more, or is gone. */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      cleanup();
      resolve();
    };
    const fail = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const cleanup = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', fail);
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', fail);
  });
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
