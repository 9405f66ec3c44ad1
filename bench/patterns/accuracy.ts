/**
 * Grouping accuracy as the log-parsing literature measures it (Zhu et al., "Tools and
 * Benchmarks for Automated Log Parsing", ICSE-SEIP 2019): a line is parsed correctly when the
 * set of lines its parsed group holds equals the set of lines of its ground-truth group. The
 * accuracy is the share of such lines.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOGHUB_DIR = join(import.meta.dirname, '..', 'loghub');
export const DATASETS = ['HDFS', 'Apache', 'OpenSSH', 'Linux'] as const;
export type Dataset = (typeof DATASETS)[number];

export interface Labelled {
  truth: string[];
  messages: string[];
}

/** The committed sample: one `EventId<TAB>Content` line per log line. */
export function loadSample(name: Dataset): Labelled {
  const truth: string[] = [];
  const messages: string[] = [];
  for (const line of readFileSync(join(LOGHUB_DIR, `${name}_2k.tsv`), 'utf8').split('\n')) {
    if (line === '') continue;
    const tab = line.indexOf('\t');
    truth.push(line.slice(0, tab));
    messages.push(line.slice(tab + 1));
  }
  return { truth, messages };
}

/** `parsed[i]` is any key naming the group line i was put in. */
export function groupingAccuracy(truth: readonly string[], parsed: readonly unknown[]): number {
  const truthSize = new Map<string, number>();
  for (const t of truth) truthSize.set(t, (truthSize.get(t) ?? 0) + 1);
  const groups = new Map<unknown, number[]>();
  for (let i = 0; i < parsed.length; i++) {
    let g = groups.get(parsed[i]);
    if (g === undefined) groups.set(parsed[i], (g = []));
    g.push(i);
  }
  let correct = 0;
  for (const lines of groups.values()) {
    const t = truth[lines[0]];
    if (lines.every((i) => truth[i] === t) && truthSize.get(t) === lines.length) correct += lines.length;
  }
  return correct / truth.length;
}
