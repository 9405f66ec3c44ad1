/**
 * Chunk records (TailRecord.chunk): a plain file's whole lines handed out as bytes and split by
 * the parser thread must give exactly the events, ids and counts that one record per line
 * gives — through CRLF, blank lines, a byte order mark, lines cut at maxLineBytes (on a
 * character boundary), lines split across reads, and latin1.
 */
import { appendFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventBuilder, packRecords } from '../../../../../agent/logs/events.ts';
import { chunkLines, recordTexts } from '../../../../../agent/logs/tail/record.ts';
import { waitFor } from '../../../../helpers/wait.ts';
import { fixture, input, metric, options, rig, type Rig } from './harness.ts';

const NOW = Date.parse('2026-11-24T12:00:00.000Z');
const MAX_LINE = 40;

function events(r: Rig, maxLineBytes: number, split = false): string[] {
  const builder = new EventBuilder({ inputs: [{ pattern: '%{WORD:first} %{GREEDYDATA:rest}', definitions: {}, fields: { env: 'test' } }], patternsDirs: [], hostName: 'h', maxLineBytes });
  const out: string[] = [];
  for (const b of r.collector.batches) {
    const records = split ? b.records.flatMap(chunkLines) : b.records;
    const { task } = packRecords(records, NOW);
    const text = Buffer.from(builder.parse(task).ndjson).toString('utf8');
    out.push(...text.split('\n').filter((l) => l !== ''));
  }
  return out;
}

describe('chunk records', () => {
  const fx = fixture();

  async function both(file: string, encoding: 'utf-8' | 'latin1', write: () => Promise<void>): Promise<{ lines: Rig; chunks: Rig }> {
    const opts = options({ readChunkBytes: '1kib', maxLineBytes: MAX_LINE });
    const inputs = [input({ path: file, encoding })];
    const lines = await fx.started(rig(path.join(fx.dataDir, 'lines'), inputs, opts));
    const chunks = await fx.started(rig(path.join(fx.dataDir, 'chunks'), inputs, opts, undefined, true));
    await write();
    return { lines, chunks };
  }

  it('give the same events, ids and counts as one record per line (UTF-8)', async () => {
    const file = path.join(fx.dir, 'app.log');
    const long = 'long ' + 'x'.repeat(3000);
    const wide = 'wide ' + 'é'.repeat(30) + '€€€';
    const body = [long, 'alpha one', '', 'beta two\r', '\r', wide, 'gamma ' + 'ü'.repeat(10)].join('\n') + '\n';
    await writeFile(file, '\ufeffbom first\n');
    const { lines, chunks } = await both(file, 'utf-8', async () => {
      // appended in pieces that cut lines and characters between reads
      const bytes = Buffer.from(body.repeat(20));
      for (let at = 0; at < bytes.length; at += 777) await appendFile(file, bytes.subarray(at, at + 777));
    });
    await waitFor(async () => (await metric(chunks.telemetry, 'plumb_tail_lines_total')) === 1 + 7 * 20 && (await metric(lines.telemetry, 'plumb_tail_lines_total')) === 1 + 7 * 20, { what: 'every line read by both' });
    expect(chunks.collector.records.some((r) => r.chunk !== undefined)).toBe(true);
    const want = events(lines, MAX_LINE);
    expect(want).toHaveLength(1 + 5 * 20);
    expect(events(chunks, MAX_LINE)).toEqual(want);
    // line by line (after a chunk overran its deadline) gives the same again
    expect(events(chunks, MAX_LINE, true)).toEqual(want);
    for (const name of ['plumb_tail_lines_total', 'plumb_tail_lines_truncated_total', 'plumb_tail_records_total']) {
      expect(await metric(chunks.telemetry, name), name).toBe(await metric(lines.telemetry, name));
    }
    const first = JSON.parse(want[0]) as { message: string };
    expect(first.message).toBe('bom first');
    const cut = want.map((l) => JSON.parse(l) as { message: string; log: { flags?: string[] } }).filter((e) => e.log.flags !== undefined);
    expect(cut.length).toBe(2 * 20);
    for (const e of cut) expect(Buffer.byteLength(e.message)).toBeLessThanOrEqual(MAX_LINE);
    // a live tap sees the same lines
    const tapped = chunks.collector.records.flatMap(recordTexts).map((l) => l.text).filter((t) => t !== '');
    expect(tapped.length).toBe(1 + 5 * 20);
  });

  it('give the same events as one record per line (latin1)', async () => {
    const file = path.join(fx.dir, 'legacy.log');
    const { lines, chunks } = await both(file, 'latin1', async () => {
      await writeFile(file, Buffer.from(['caf\xe9 ouvert', 'na\xefve ' + '\xff'.repeat(60), 'fin'].join('\n') + '\n', 'latin1'));
    });
    await waitFor(async () => (await metric(chunks.telemetry, 'plumb_tail_lines_total')) === 3 && (await metric(lines.telemetry, 'plumb_tail_lines_total')) === 3, { what: 'every line read by both' });
    const want = events(lines, MAX_LINE);
    expect(want).toHaveLength(3);
    expect((JSON.parse(want[0]) as { message: string }).message).toBe('café ouvert');
    expect(events(chunks, MAX_LINE)).toEqual(want);
  });
});
