/**
 * A parser thread of the piscina pool: builds the grok expressions and date parsers once from
 * `workerData` (a ParserSetup), then turns each task — a chunk of records — into NDJSON events.
 * The result's buffer is transferred back, not copied.
 */
import { workerData } from 'node:worker_threads';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { EventBuilder, type ParseResult, type ParseTask, type ParserSetup } from './events.ts';

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
