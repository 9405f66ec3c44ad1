/**
 * `plumb grok --pattern P [--definitions F] FILE`: how well a pattern matches a sample file, for
 * people and for CI — the share of lines matched, the fields captured and how often, the first
 * lines that failed. Lines are matched by the agent's grok debugger (agent/logs/grok-debug.ts):
 * the same engine and pattern library in a parser thread, with agent.grok's chunkTimeout and
 * lineTimeout (the ReDoS guard), a thousand lines at a time.
 *
 * Exit code: 0 when at least --min-match percent of the lines matched (100 by default), 1 when
 * fewer did, 2 when the pattern or a file cannot be used.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import os from 'node:os';
import type { Writable } from 'node:stream';
import { GrokDebugger } from '../agent/logs/grok-debug.ts';
import type { GrokPoolConfig } from '../agent/logs/config.ts';
import { GROK_MAX_LINES, GROK_MAX_LINE_CHARS } from '../shared/console/grok.ts';
import { errorMessage } from '../shared/errors.ts';

export interface GrokReportOptions {
  pattern: string;
  file: string;
  /** Pattern files (Logstash `NAME regex` lines) or directories: --definitions and --patterns-dir. */
  patternFiles: string[];
  /** agent.grok from --config, else the defaults. */
  grok: GrokPoolConfig;
  minMatchPercent: number;
  json: boolean;
  /** How many failed lines to show. */
  failures: number;
  out: Writable;
  err: Writable;
}

export interface GrokReport {
  file: string;
  pattern: string;
  lines: number;
  matched: number;
  failed: number;
  timedOut: number;
  matchedPercent: number;
  /** Field → lines that captured it. */
  fields: Record<string, number>;
  firstFailures: { line: number; text: string; outcome: string }[];
  timeouts: { chunk: number; line: number };
}

async function* chunks(file: string): AsyncGenerator<string[]> {
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let batch: string[] = [];
  for await (const line of rl) {
    batch.push(line.length > GROK_MAX_LINE_CHARS ? line.slice(0, GROK_MAX_LINE_CHARS) : line);
    if (batch.length >= GROK_MAX_LINES) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

function countFields(into: Record<string, number>, fields: Record<string, unknown>, prefix = ''): void {
  for (const [k, v] of Object.entries(fields)) {
    const name = prefix === '' ? k : `${prefix}.${k}`;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) countFields(into, v as Record<string, unknown>, name);
    else into[name] = (into[name] ?? 0) + 1;
  }
}

export async function runGrokReport(o: GrokReportOptions): Promise<number> {
  const dirs = [...(o.grok.patternsDir === null ? [] : typeof o.grok.patternsDir === 'string' ? [o.grok.patternsDir] : o.grok.patternsDir), ...o.patternFiles];
  const debug = new GrokDebugger({ logs: [], grok: { ...o.grok, patternsDir: dirs.length > 0 ? dirs : null }, hostName: os.hostname() }, () => null);
  const report: GrokReport = { file: o.file, pattern: o.pattern, lines: 0, matched: 0, failed: 0, timedOut: 0, matchedPercent: 0, fields: {}, firstFailures: [], timeouts: { chunk: o.grok.chunkTimeout, line: o.grok.lineTimeout } };
  try {
    for await (const lines of chunks(o.file)) {
      const answer = await debug.run({ pattern: o.pattern, lines });
      answer.lines.forEach((r, i) => {
        if (r.outcome === 'matched') countFields(report.fields, r.fields ?? {});
        else if (report.firstFailures.length < o.failures) report.firstFailures.push({ line: report.lines + i + 1, text: r.line, outcome: r.outcome });
      });
      report.lines += answer.lines.length;
      report.matched += answer.matched;
      report.failed += answer.failed;
      report.timedOut += answer.lines.length - answer.matched - answer.failed;
    }
  } catch (err) {
    o.err.write(`plumb grok: ${errorMessage(err)}\n`);
    return 2;
  } finally {
    await debug.stop();
  }
  report.matchedPercent = report.lines === 0 ? 100 : Math.round((report.matched / report.lines) * 10000) / 100;
  if (o.json) o.out.write(JSON.stringify(report, null, 2) + '\n');
  else o.out.write(renderReport(report));
  return report.matchedPercent >= o.minMatchPercent ? 0 : 1;
}

export function renderReport(r: GrokReport): string {
  const lines = [`${r.file}: ${r.matched} of ${r.lines} lines matched (${r.matchedPercent}%), ${r.failed} failed, ${r.timedOut} timed out or skipped`, `pattern: ${r.pattern}`];
  const fields = Object.entries(r.fields).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (fields.length > 0) {
    lines.push('', 'FIELD'.padEnd(Math.max(5, ...fields.map(([f]) => f.length))) + '  LINES');
    const w = Math.max(5, ...fields.map(([f]) => f.length));
    for (const [f, n] of fields) lines.push(`${f.padEnd(w)}  ${n}`);
  }
  if (r.firstFailures.length > 0) {
    lines.push('', `first lines that did not match (of ${r.lines - r.matched}):`);
    for (const f of r.firstFailures) lines.push(`  ${String(f.line).padStart(6)}${f.outcome === 'failed' ? '' : ` (${f.outcome})`}: ${f.text.length > 200 ? f.text.slice(0, 200) + '…' : f.text}`);
  }
  return lines.join('\n') + '\n';
}
