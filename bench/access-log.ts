/**
 * The generated web server access log the log benchmarks read (combined format, about 196
 * bytes a line), with the facts that check a run: line count, bytes, and the sum and an
 * order-independent hash of every line's byte offset.
 */
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';

export interface FileFacts {
  path: string;
  lines: number;
  bytes: number;
  offsetSum: number;
  offsetHash: number;
}

/** One offset's contribution to the order-independent hash of a set of offsets. */
export function mix(offset: number): number {
  return Math.imul((offset % 4294967296) ^ Math.floor(offset / 4294967296), 2654435761) >>> 0;
}

const IPS = Array.from({ length: 997 }, (_, i) => (i % 11 === 0 ? `2001:db8::${(i * 13).toString(16)}` : `${10 + (i % 200)}.${(i * 7) % 256}.${(i * 13) % 256}.${(i * 31) % 256}`));
const PATHS = ['/', '/index.html', '/api/v1/users/12345', '/static/app.3f9a1c.js', '/cart?id=7&ref=home', '/images/logo.png', '/search?q=blue+shoes&page=2', '/api/v1/orders/998877/items'];
const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'curl/8.5.0',
  'Googlebot/2.1 (+http://www.google.com/bot.html)',
];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

export function accessLine(i: number): string {
  const t = new Date(Date.UTC(2026, 10, 24) + i * 7);
  const p2 = (n: number) => String(n).padStart(2, '0');
  const stamp = `${p2(t.getUTCDate())}/${MONTHS[t.getUTCMonth()]}/${t.getUTCFullYear()}:${p2(t.getUTCHours())}:${p2(t.getUTCMinutes())}:${p2(t.getUTCSeconds())} +0000`;
  const user = i % 17 === 0 ? `user${i % 1000}` : '-';
  const method = i % 10 === 0 ? 'POST' : 'GET';
  const status = [200, 200, 200, 200, 304, 301, 404, 500][i % 8];
  const referrer = i % 3 === 0 ? '-' : `https://shop.example${PATHS[(i >> 2) % PATHS.length]}`;
  return `${IPS[i % IPS.length]} - ${user} [${stamp}] "${method} ${PATHS[i % PATHS.length]} HTTP/1.1" ${status} ${(i * 37) % 50_000} "${referrer}" "${AGENTS[i % AGENTS.length]}"\n`;
}

/** Writes `lines` lines to <dir>/access-<lines>.log once; later calls reuse the file. */
export async function generateAccessLog(dir: string, lines: number): Promise<FileFacts> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `access-${lines}.log`);
  const factsPath = `${path}.json`;
  if (existsSync(path) && existsSync(factsPath)) {
    const facts = JSON.parse(readFileSync(factsPath, 'utf8')) as FileFacts;
    if (statSync(path).size === facts.bytes) return facts;
  }
  process.stderr.write(`generating ${lines} lines into ${path}\n`);
  const out = createWriteStream(path);
  let offset = 0;
  let offsetSum = 0;
  let offsetHash = 0;
  let buf = '';
  for (let i = 0; i < lines; i++) {
    const line = accessLine(i);
    offsetSum += offset;
    offsetHash ^= mix(offset);
    offset += Buffer.byteLength(line);
    buf += line;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
  const facts: FileFacts = { path, lines, bytes: offset, offsetSum, offsetHash };
  writeFileSync(factsPath, JSON.stringify(facts));
  return facts;
}

/** The first `n` lines of a file, without their newlines. */
export async function sampleLines(path: string, n: number): Promise<string[]> {
  const lines: string[] = [];
  let rest = '';
  for await (const chunk of createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const parts = (rest + (chunk as string)).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) {
      lines.push(p);
      if (lines.length >= n) return lines;
    }
  }
  return lines;
}
