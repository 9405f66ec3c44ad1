/** collector.patterns: online log template mining (miner.ts). */
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Section, Duration } from '../../shared/config.ts';

export const PatternsSchema = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'learn message templates of every log event and add pattern_id and pattern to it' }),
    sourceFields: Type.Array(Type.String({ minLength: 1 }), {
      default: ['service.name', 'service', 'event.dataset', 'kubernetes.container.name', 'log.file.path'],
      description: 'event fields (dotted paths) naming the source whose templates an event belongs to; the first string found wins, else "unknown"',
    }),
    field: Type.String({ minLength: 1, default: 'message', description: 'the field whose text is mined' }),
    depth: Type.Integer({ minimum: 3, maximum: 10, default: 4, description: 'parse tree depth (Drain\'s depth): root, length layer, then depth - 2 leading tokens' }),
    similarity: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.7, description: 'share of equal tokens for a message to join a template (Drain\'s st)' }),
    maxChildren: Type.Integer({ minimum: 2, default: 100, description: 'children of a tree node before further tokens share its <*> branch' }),
    maxLeafPatterns: Type.Integer({ minimum: 1, default: 100, description: 'templates in one leaf of the tree (a message is compared with at most this many); past it the leaf\'s least recently seen is forgotten and counted' }),
    maxPatterns: Type.Integer({ minimum: 1, default: 50_000, description: 'templates kept over all sources; past it the least recently seen is forgotten and counted' }),
    masks: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'extra regexes whose matches count as variables (<*>), applied before the built-in ones' }),
    maxMessageBytes: Type.Integer({ minimum: 64, default: 4096, description: 'only this many leading characters of a message are mined' }),
    metricSeries: Type.Integer({ minimum: 0, default: 2000, description: 'most {source, pattern_id} series of plumb_log_pattern_events_total; events of further patterns are counted under source="_overflow"' }),
    saveInterval: Duration('30s', { allowZero: true, description: 'how often the templates are saved to <dataDir>/patterns.json, so ids, counts and first-seen survive a restart; 0: only at stop' }),
  },
  { description: 'Log pattern mining: a Drain-style fixed-depth parse tree per source, on the collector.' },
);

export type PatternsConfig = StaticDecode<typeof PatternsSchema>;

/** Regexes that do not compile, by key. */
export function patternsConfigErrors(c: PatternsConfig, path: string): string[] {
  const errors: string[] = [];
  c.masks.forEach((m, i) => {
    try {
      new RegExp(m, 'g');
    } catch (err) {
      errors.push(`${path}.masks[${i}]: not a valid regular expression (${(err as Error).message})`);
    }
  });
  return errors;
}
