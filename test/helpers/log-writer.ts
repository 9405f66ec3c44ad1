/**
 * A log-writing application for tests of the tailer: appends numbered lines to a file at a
 * steady rate and rotates the file every N lines or every interval, as logrotate would, by
 * rename or by copytruncate, or truncates it in place. On exit (after --count lines, after
 * --duration, or on SIGTERM/SIGINT) it prints one JSON line to stdout:
 * {"written": <lines>, "rotations": <count>, "last": <last number>, "truncations": [<first line after each>]}.
 *
 *   node test/helpers/log-writer.ts --file /tmp/x/app.log [--rate 1000] [--rotate-every 500]
 *        [--rotate-interval 400ms] [--mode rename|copytruncate|truncate] [--keep 5]
 *        [--count 10000] [--duration 5s] [--prefix line] [--pad 0]
 *
 * SIGHUP reopens the file by its name, as applications do when logrotate's postrotate
 * script signals them after renaming the file (`create`). "truncate" empties the file in
 * place without a copy: the lines since the last read are gone by design, and "truncations"
 * tells a test where each new content begins.
 *
 * Line n reads `<prefix> <n>` (n from 1), optionally padded with `.` to --pad bytes, so a
 * reader can check it got every number exactly once. --rate 0 writes as fast as it can.
 * Rotation by rename keeps the descriptor of the renamed file until the rename is done and the
 * new file opened, like an application reopening on SIGHUP; rotated files are shifted
 * (file.1 → file.2 …) and the oldest beyond --keep deleted.
 */
import { closeSync, copyFileSync, existsSync, ftruncateSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    file: { type: 'string' },
    rate: { type: 'string', default: '1000' },
    'rotate-every': { type: 'string', default: '0' },
    'rotate-interval': { type: 'string', default: '0' },
    mode: { type: 'string', default: 'rename' },
    keep: { type: 'string', default: '5' },
    count: { type: 'string', default: '0' },
    duration: { type: 'string', default: '0' },
    prefix: { type: 'string', default: 'line' },
    pad: { type: 'string', default: '0' },
  },
});

function usage(message: string): never {
  process.stderr.write(`log-writer: ${message}\n`);
  process.exit(2);
}

function durationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (!m) usage(`--duration: not a duration (${text})`);
  return Number(m[1]) * (m[2] === 'm' ? 60_000 : m[2] === 's' ? 1000 : m[2] === 'ms' ? 1 : 1000);
}

const file = values.file ?? usage('--file is required');
const rate = Number(values.rate);
const rotateEvery = Number(values['rotate-every']);
const rotateIntervalMs = durationMs(values['rotate-interval']);
const mode = values.mode;
const keep = Number(values.keep);
const count = Number(values.count);
const runFor = durationMs(values.duration);
const prefix = values.prefix;
const pad = Number(values.pad);
if (mode !== 'rename' && mode !== 'copytruncate' && mode !== 'truncate') usage('--mode must be rename, copytruncate or truncate');
for (const [name, v] of Object.entries({ rate, rotateEvery, keep, count, pad })) {
  if (!Number.isFinite(v) || v < 0) usage(`--${name}: must be a number ≥ 0`);
}
if (keep < 1 && (rotateEvery > 0 || rotateIntervalMs > 0)) usage('--keep must be at least 1 when rotating');

let fd = openSync(file, 'a');
let written = 0;
let rotations = 0;
let sinceRotation = 0;
let stopping = false;
let reopen = false;
const truncations: number[] = [];

function line(n: number): string {
  const text = `${prefix} ${n}`;
  return (pad > text.length ? text + '.'.repeat(pad - text.length) : text) + '\n';
}

/** file.(keep-1) → file.keep … file.1 → file.2; the oldest falls off. */
function shift(): void {
  const oldest = `${file}.${keep}`;
  if (existsSync(oldest)) unlinkSync(oldest);
  for (let i = keep - 1; i >= 1; i--) {
    if (existsSync(`${file}.${i}`)) renameSync(`${file}.${i}`, `${file}.${i + 1}`);
  }
}

function rotate(): void {
  if (mode === 'truncate') {
    ftruncateSync(fd, 0);
    truncations.push(written + 1);
    rotations++;
    sinceRotation = 0;
    return;
  }
  shift();
  if (mode === 'rename') {
    renameSync(file, `${file}.1`);
    const renamed = fd;
    fd = openSync(file, 'a');
    closeSync(renamed);
  } else {
    copyFileSync(file, `${file}.1`);
    ftruncateSync(fd, 0);
    truncations.push(written + 1);
  }
  rotations++;
  sinceRotation = 0;
}

function writeLines(upTo: number): void {
  let chunk = '';
  while (written < upTo) {
    chunk += line(written + 1);
    written++;
    sinceRotation++;
    if (rotateEvery > 0 && sinceRotation >= rotateEvery) {
      writeSync(fd, chunk);
      chunk = '';
      rotate();
    } else if (chunk.length >= 64 * 1024) {
      writeSync(fd, chunk);
      chunk = '';
    }
  }
  if (chunk.length > 0) writeSync(fd, chunk);
}

function finish(): void {
  closeSync(fd);
  process.stdout.write(`${JSON.stringify({ written, rotations, last: written, truncations })}\n`);
}

process.once('SIGTERM', () => (stopping = true));
process.once('SIGINT', () => (stopping = true));
process.on('SIGHUP', () => (reopen = true));

const started = performance.now();
const TICK_MS = 10;
let nextRotation = rotateIntervalMs > 0 ? rotateIntervalMs : Infinity;
while (!stopping) {
  if (reopen) {
    reopen = false;
    const old = fd;
    fd = openSync(file, 'a');
    closeSync(old);
  }
  const elapsed = performance.now() - started;
  if (runFor > 0 && elapsed >= runFor) break;
  if (elapsed >= nextRotation) {
    rotate();
    nextRotation += rotateIntervalMs;
  }
  let target = rate > 0 ? Math.floor((rate * elapsed) / 1000) : written + 1000;
  if (count > 0) target = Math.min(target, count);
  writeLines(target);
  if (count > 0 && written >= count) break;
  // Yields to signals between ticks; at --rate 0 only as long as it takes to notice one.
  await sleep(rate > 0 ? TICK_MS : 0);
}
finish();
