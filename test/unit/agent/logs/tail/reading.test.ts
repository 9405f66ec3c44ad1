/**
 * What the tailer reads of real files, by option: ignoreOlder, where new and existing files
 * start, encodings other than UTF-8 (characters split across reads), the multiline modes with
 * their flush timeout, and the unterminated last line's timeout (never duplicated).
 */
import { appendFile, readFile, rename, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture, input, metric, numbered, options, range, rig, sorted, type Rig } from './harness.ts';
import { waitFor } from '../../../../helpers/wait.ts';
import { CHECKPOINT_FILE } from '../../../../../agent/logs/tail/checkpoint.ts';

const fx = fixture();
const started = fx.started;

async function checkpointNames(): Promise<string> {
  return readFile(path.join(fx.dataDir, CHECKPOINT_FILE), 'utf8').catch(() => '');
}

/** Waits until the tailer read `bytes` in all (a read happened between two writes). */
async function readUpTo(r: Rig, bytes: number): Promise<void> {
  await waitFor(async () => (await metric(r.telemetry, 'plumb_tail_read_bytes_total')) >= bytes, { what: `${bytes} bytes read` });
}

describe('ignoreOlder', () => {
  it('leaves files not modified for the duration unread, and reads what is appended to them later', async () => {
    const old = path.join(fx.dir, 'old.log');
    const fresh = path.join(fx.dir, 'fresh.log');
    await writeFile(old, numbered('old', 1, 5));
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(old, twoHoursAgo, twoHoursAgo);
    await writeFile(fresh, numbered('fresh', 1, 3));
    const r = await started(rig(fx.dataDir, [input({ path: path.join(fx.dir, '*.log'), ignoreOlder: '1h' })]));
    await waitFor(() => r.collector.records.length >= 3, { what: 'the fresh file' });
    await waitFor(async () => (await checkpointNames()).includes('old.log'), { what: 'the old file registered' });
    expect(await metric(r.telemetry, 'plumb_tail_files_ignored_total')).toBe(1);
    // Modified: picked up, from where it was when it was ignored.
    await appendFile(old, numbered('old', 6, 7));
    await waitFor(() => r.collector.records.length >= 5, { what: 'the appended lines' });
    expect(sorted(r.collector.texts())).toEqual(sorted([...range('fresh', 1, 3), ...range('old', 6, 7)]));
    expect(await metric(r.telemetry, 'plumb_tail_files_ignored_total')).toBe(1);
  });

  it('does not apply to a file with a checkpoint: it resumes at its offset', async () => {
    const file = path.join(fx.dir, 'a.log');
    await writeFile(file, numbered('a', 1, 3));
    const first = await started(rig(fx.dataDir, [input({ path: file, ignoreOlder: '1h' })]));
    await waitFor(() => first.collector.records.length >= 3, { what: 'three lines' });
    await first.tailer.stop(1000);
    await appendFile(file, numbered('a', 4, 5));
    const longAgo = new Date(Date.now() - 3 * 3600_000);
    await utimes(file, longAgo, longAgo);
    const second = await started(rig(fx.dataDir, [input({ path: file, ignoreOlder: '1h' })]));
    await waitFor(() => second.collector.records.length >= 2, { what: 'the two lines written while stopped' });
    expect(second.collector.texts()).toEqual(range('a', 4, 5));
  });
});

describe('where reading starts', () => {
  it('startAt and newFilesStartAt end: existing and new files from their end, the fresh file of a rotation from its beginning', async () => {
    const existing = path.join(fx.dir, 'existing.log');
    await writeFile(existing, numbered('existing', 1, 10));
    const r = await started(rig(fx.dataDir, [input({ path: path.join(fx.dir, '*.log'), startAt: 'end', newFilesStartAt: 'end' })]));
    await waitFor(async () => (await checkpointNames()).includes('existing.log'), { what: 'the first discovery' });
    // A new file, seen by a pass with lines in it: those are skipped, what follows is read.
    const later = path.join(fx.dir, 'later.log');
    await writeFile(later, numbered('later', 1, 4));
    await waitFor(async () => (await checkpointNames()).includes('later.log'), { what: 'the new file seen' });
    await appendFile(later, numbered('later', 5, 6));
    await appendFile(existing, numbered('existing', 11, 12));
    await waitFor(() => r.collector.records.length >= 4, { what: 'appended lines' });
    // Rotation: the file is renamed out of the glob and a new one created at its path.
    await rename(existing, path.join(fx.dir, 'existing.log.1'));
    await writeFile(existing, numbered('rotated', 1, 3));
    await waitFor(() => r.collector.records.length >= 7, { what: 'the fresh file of the rotation' });
    expect(sorted(r.collector.texts())).toEqual(sorted([...range('existing', 11, 12), ...range('later', 5, 6), ...range('rotated', 1, 3)]));
  });

  it('after a restart, a file that appeared while the agent was down follows newFilesStartAt; a checkpointed one resumes', async () => {
    const a = path.join(fx.dir, 'a.log');
    await writeFile(a, numbered('a', 1, 3));
    const first = await started(rig(fx.dataDir, [input({ path: path.join(fx.dir, '*.log'), startAt: 'end' })]));
    await waitFor(async () => (await checkpointNames()).includes('a.log'), { what: 'the first discovery' });
    await first.tailer.stop(1000);
    // While down: a grows, b appears. startAt end applied to the very first start only.
    await appendFile(a, numbered('a', 4, 5));
    await writeFile(path.join(fx.dir, 'b.log'), numbered('b', 1, 2));
    const second = await started(rig(fx.dataDir, [input({ path: path.join(fx.dir, '*.log'), startAt: 'end' })]));
    await waitFor(() => second.collector.records.length >= 4, { what: 'four lines' });
    expect(sorted(second.collector.texts())).toEqual(sorted([...range('a', 4, 5), ...range('b', 1, 2)]));
  });
});

describe('encodings', () => {
  it('latin1: bytes above 0x7f become their characters', async () => {
    const file = path.join(fx.dir, 'l1.log');
    await writeFile(file, Buffer.from('café crème\nna\xefve ø\n', 'latin1'));
    const r = await started(rig(fx.dataDir, [input({ path: file, encoding: 'latin1' })]));
    await waitFor(() => r.collector.records.length >= 2, { what: 'two lines' });
    expect(r.collector.texts()).toEqual(['café crème', 'naïve ø']);
    expect(r.collector.records[1].offset).toBe(11);
  });

  const wide = ['Ċ ਊ newline-like bytes', 'emoji 😀 pair', 'crlf ending'];

  function utf16(text: string, bigEndian: boolean, bom: boolean): Buffer {
    const le = Buffer.from(text, 'utf16le');
    const body = bigEndian ? Buffer.from(le).swap16() : le;
    return bom ? Buffer.concat([Buffer.from(bigEndian ? [0xfe, 0xff] : [0xff, 0xfe]), body]) : body;
  }

  for (const [encoding, bigEndian, bom] of [
    ['utf-16', false, true],
    ['utf-16', true, true],
    ['utf-16le', false, false],
    ['utf-16be', true, true],
  ] as const) {
    it(`${encoding} (${bigEndian ? 'big' : 'little'}-endian${bom ? ', byte order mark' : ''}): lines end only at U+000A, characters whole across reads`, async () => {
      const file = path.join(fx.dir, 'w.log');
      const text = `${wide[0]}\n${wide[1]}\n${wide[2]}\r\n`;
      const bytes = utf16(text, bigEndian, bom);
      // Written in pieces cut inside code units and inside the surrogate pair, each read before
      // the next is written.
      const cuts = [1, 3, 9, bytes.length - 17, bytes.length - 16, bytes.length - 1, bytes.length];
      await writeFile(file, bytes.subarray(0, cuts[0]));
      const r = await started(rig(fx.dataDir, [input({ path: file, encoding })]));
      await readUpTo(r, cuts[0]);
      for (let i = 1; i < cuts.length; i++) {
        await appendFile(file, bytes.subarray(cuts[i - 1], cuts[i]));
        await readUpTo(r, cuts[i]);
      }
      await waitFor(() => r.collector.records.length >= 3, { what: 'three lines' });
      expect(r.collector.texts()).toEqual(wide);
      const start = bom ? 2 : 0;
      expect(r.collector.records[0].offset).toBe(0);
      expect(r.collector.records[1].offset).toBe(start + Buffer.byteLength(`${wide[0]}\n`, 'utf16le'));
      expect(r.collector.records[2].endOffset).toBe(bytes.length);
    });
  }

  it('utf-16 from the end starts on a line boundary, and resumes there after a restart', async () => {
    const file = path.join(fx.dir, 'w.log');
    await writeFile(file, utf16('before\nਊ old\n', false, true));
    const first = await started(rig(fx.dataDir, [input({ path: file, encoding: 'utf-16', startAt: 'end' })]));
    await waitFor(async () => (await checkpointNames()).includes('w.log'), { what: 'the first discovery' });
    await appendFile(file, utf16('new ਊ\n', false, false));
    await waitFor(() => first.collector.records.length >= 1, { what: 'the new line' });
    await first.tailer.stop(1000);
    await appendFile(file, utf16('after restart\n', false, false));
    const second = await started(rig(fx.dataDir, [input({ path: file, encoding: 'utf-16' })]));
    await waitFor(() => second.collector.records.length >= 1, { what: 'the line after the restart' });
    expect([...first.collector.texts(), ...second.collector.texts()]).toEqual(['new ਊ', 'after restart']);
  });

  it('utf-8: a character split across reads is decoded whole, a byte order mark is not part of the first line', async () => {
    const file = path.join(fx.dir, 'u.log');
    const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('héllo 😀\nzwei\n')]);
    await writeFile(file, bytes.subarray(0, 5));
    const r = await started(rig(fx.dataDir, [input({ path: file })]));
    await readUpTo(r, 5);
    for (const cut of [11, 12, bytes.length]) {
      await appendFile(file, bytes.subarray((await readFile(file)).length, cut));
      await readUpTo(r, cut);
    }
    await waitFor(() => r.collector.records.length >= 2, { what: 'two lines' });
    expect(r.collector.texts()).toEqual(['héllo 😀', 'zwei']);
  });
});

describe('multiline modes on files', () => {
  const cases = [
    {
      mode: 'continue-through',
      multiline: { mode: 'continue-through', start: '^\\S', condition: '^\\s' },
      lines: ['java.lang.Error: boom', '  at a(A.java:1)', '  at b(B.java:2)', 'INFO next', 'Error: last', '  at z()'],
      events: ['java.lang.Error: boom\n  at a(A.java:1)\n  at b(B.java:2)', 'INFO next', 'Error: last\n  at z()'],
    },
    {
      mode: 'continue-past',
      multiline: { mode: 'continue-past', condition: '\\\\$' },
      lines: ['one', 'two \\', 'three \\', 'four', 'five \\', 'six \\'],
      events: ['one', 'two \\\nthree \\\nfour', 'five \\\nsix \\'],
    },
    {
      mode: 'halt-before',
      multiline: { mode: 'halt-before', condition: '^\\[\\d' },
      lines: ['[1] a', 'b', '[2] c', '[3] d', 'e', 'f'],
      events: ['[1] a\nb', '[2] c', '[3] d\ne\nf'],
    },
    {
      mode: 'halt-with',
      multiline: { mode: 'halt-with', condition: ';$' },
      lines: ['SELECT *', 'FROM t;', 'COMMIT;', 'UPDATE t', 'SET a = 1'],
      events: ['SELECT *\nFROM t;', 'COMMIT;', 'UPDATE t\nSET a = 1'],
    },
  ];
  for (const c of cases) {
    it(`${c.mode}: events as defined, the last one flushed once the writer is quiet for the timeout`, async () => {
      const file = path.join(fx.dir, 'm.log');
      await writeFile(file, c.lines.join('\n') + '\n');
      const r = await started(rig(fx.dataDir, [input({ path: file, multiline: { ...c.multiline, timeout: '150ms' } })]));
      await waitFor(() => r.collector.records.length >= c.events.length, { what: `${c.events.length} events` });
      expect(r.collector.texts()).toEqual(c.events);
      const recs = r.collector.records;
      for (let i = 1; i < recs.length; i++) expect(recs[i].offset).toBe(recs[i - 1].endOffset);
      // Acknowledged through the last event's end: a restart reads nothing again.
      await r.tailer.stop(1000);
      const again = await started(rig(fx.dataDir, [input({ path: file, multiline: { ...c.multiline, timeout: '150ms' } })]));
      await appendFile(file, 'SENTINEL;\n');
      await waitFor(() => again.collector.records.length >= 1, { what: 'the sentinel' });
      expect(again.collector.texts()).toEqual(['SENTINEL;']);
    });
  }
});

describe('unterminatedTimeout', () => {
  it('hands out a last line without a newline after the timeout, once, and reads what follows as new lines', async () => {
    const file = path.join(fx.dir, 'u.log');
    await writeFile(file, 'first\nno newline yet');
    const r = await started(rig(fx.dataDir, [input({ path: file })], options({ unterminatedTimeout: '200ms' })));
    await waitFor(() => r.collector.records.length >= 2, { what: 'the unterminated line' });
    expect(r.collector.records[1]).toMatchObject({ text: 'no newline yet', offset: 6, endOffset: 20 });
    // The newline arrives, then more: the newline alone is a blank line (not forwarded).
    await appendFile(file, '\nsecond\nthird part');
    await waitFor(() => r.collector.records.length >= 4, { what: 'the next lines' });
    await appendFile(file, ' and the rest\n');
    await waitFor(() => r.collector.records.length >= 5, { what: 'the rest' });
    expect(r.collector.texts()).toEqual(['first', 'no newline yet', 'second', 'third part', ' and the rest']);
    // Committed through what was handed out: a restart hands out nothing again.
    await r.tailer.stop(1000);
    await appendFile(file, 'after\n');
    const again = await started(rig(fx.dataDir, [input({ path: file })], options({ unterminatedTimeout: '200ms' })));
    await waitFor(() => again.collector.records.length >= 1, { what: 'the line after the restart' });
    expect(again.collector.texts()).toEqual(['after']);
  });

  it('waits for the rest of a character the writer is halfway through', async () => {
    const file = path.join(fx.dir, 'u.log');
    const euro = Buffer.from('€');
    await writeFile(file, Buffer.concat([Buffer.from('price 5'), euro.subarray(0, 2)]));
    const r = await started(rig(fx.dataDir, [input({ path: path.join(fx.dir, '*.log') })], options({ unterminatedTimeout: '100ms' })));
    await readUpTo(r, 9);
    // A witness written after it, whose unterminated line is handed out: the split one was due first.
    await writeFile(path.join(fx.dir, 'witness.log'), 'witness');
    await waitFor(() => r.collector.texts().includes('witness'), { what: 'the witness line' });
    expect(r.collector.texts()).toEqual(['witness']);
    await appendFile(file, euro.subarray(2));
    await waitFor(() => r.collector.records.length >= 2, { what: 'the whole line' });
    expect(r.collector.texts()).toEqual(['witness', 'price 5€']);
  });
});
