/**
 * The tailer's line splitter alone, per encoding: 64 MiB of syslog-like lines pushed in 64 KiB
 * chunks through one reused buffer, as the tailer reads them. Prints the best of five runs per
 * encoding (ms and MB/s). `node bench/line-split.ts`
 */
import { LineSplitter } from '../agent/logs/tail/lines.ts';
import { codecFor, type Codec } from '../agent/logs/tail/encoding.ts';

const LINE = 'Dec  7 10:15:02 web-1 nginx[1234]: 198.51.100.7 - - "GET /cart HTTP/1.1" 200 512 ü\n';
const TOTAL = 64 * 1024 * 1024;
const CHUNK = 64 * 1024;

function bytesFor(codec: Codec): Buffer {
  const text = LINE.repeat(Math.ceil(TOTAL / LINE.length));
  if (codec.unit === 1) return Buffer.from(text, codec.name === 'latin1' ? 'latin1' : 'utf8');
  const le = Buffer.from(text, 'utf16le');
  return codec.bigEndian ? le.swap16() : le;
}

function once(codec: Codec, data: Buffer): number {
  const s = new LineSplitter(64 * 1024);
  s.codec = codec;
  let chars = 0;
  const sink = (t: string): void => {
    chars += t.length;
  };
  const buf = Buffer.allocUnsafe(CHUNK);
  const t0 = process.hrtime.bigint();
  for (let off = 0; off < data.length; off += CHUNK) s.push(buf, data.copy(buf, 0, off, off + CHUNK), off, sink);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (chars === 0) throw new Error('no lines');
  return ms;
}

for (const name of ['utf-8', 'latin1', 'utf-16le', 'utf-16be'] as const) {
  const codec = codecFor(name, undefined) as Codec;
  const data = bytesFor(codec);
  let best = Infinity;
  for (let i = 0; i < 5; i++) best = Math.min(best, once(codec, data));
  console.log(`${name.padEnd(9)} ${best.toFixed(0).padStart(5)} ms  ${(data.length / 1e6 / (best / 1000)).toFixed(0).padStart(5)} MB/s  (${(data.length / 1048576).toFixed(0)} MiB)`);
}
