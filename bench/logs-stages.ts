/**
 * `npm run bench:logs-stages`: what each step of the log path costs per line, in one process,
 * over the same 200 000 combined-format lines, beside the raw regex ceiling measured in the same
 * run. Each step is the project's own code for it, timed alone (best of 3, µs per line):
 *
 * agent    read + split (LineSplitter over 1 MiB reads) · pack (records → transferred buffers) ·
 *          transfer (a worker thread round trip of those buffers, 1000 lines a task) · match
 *          (grok) · date (the timestamp field) · build + serialize (EventBuilder.parse, less
 *          match and date) · gzip (the forwarder's level)
 * parser   the parser thread's own steps, as EventBuilder.parse does them for a plain grok line:
 * thread   match · date (a repeated text's parse reused) · serialize (JSON.stringify of the line
 *          and of the match's fields) · event id · NDJSON → bytes (join + one UTF-8 encode a
 *          task) · result back (a worker round trip of a ParseResult, its buffer transferred) ·
 *          GC (the 'gc' performance entries during the whole parse) · the rest (the whole less
 *          the steps above: string joins, decode + slice of the task's text, counting)
 * collector gunzip · validate (checkBatch: JSON.parse and checks) · dedupe (SeenEvents
 *          has + add) · pattern mining (the door's acceptedBatch: observe, the annotated
 *          lines, the fields for the sinks; less the same without mining) · queue append + fsync
 *          (one write and fsync per batch of 1000) · queue decode (from the door's fields, as
 *          the sinks now get them; and by scanning the lines, splitEvents, as after a restart) ·
 *          file write + fsync (per 1 MiB)
 *
 * HTTP and the event loop between steps are not here: bench/logs-path.ts measures the whole.
 * Options: --write (append a section to bench/RESULTS.md); --agent (the agent's rows only).
 */
import { appendFileSync, closeSync, fsyncSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { gunzipSync, gzipSync, constants as zlib } from 'node:zlib';
import { Worker } from 'node:worker_threads';
import { PerformanceObserver } from 'node:perf_hooks';
import { tmpdir } from 'node:os';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Value } from '@sinclair/typebox/value';
import { compileGrok } from '../agent/logs/grok/index.ts';
import { compileDateParser } from '../agent/logs/grok/date.ts';
import { EventBuilder, IsoTime, packRecords, type ParseTask } from '../agent/logs/events.ts';
import { LineSplitter } from '../agent/logs/tail/lines.ts';
import { offsetHex } from '../agent/logs/tail/identity.ts';
import { NO_TAGS, type TailRecord } from '../agent/logs/tail/record.ts';
import { acceptedBatch, checkBatch } from '../collector/ingest/logs.ts';
import { SeenEvents } from '../collector/ingest/dedupe.ts';
import { PatternMiner } from '../collector/patterns/miner.ts';
import { PatternsSchema } from '../collector/patterns/config.ts';
import { decodeEvents, splitEvents, type DecodedEvents, type LogEvent } from '../collector/logs/event.ts';
import { Telemetry } from '../shared/telemetry.ts';
import { silentLogger } from '../shared/log.ts';
import { generateAccessLog, sampleLines } from './access-log.ts';
import { machineInfo } from './statsd/procfs.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = join(ROOT, 'bench', '.work');
const PATTERN = '%{COMBINEDAPACHELOG}';
const TIMESTAMP = { field: 'timestamp', format: 'dd/MMM/yyyy:HH:mm:ss Z' };
const LINES = 200_000;
const CHUNK = 1000;

/** CPU time of this process (every thread), µs. */
function cpuMicros(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

/** Best of 3 of CPU µs per line for `run`, which handles `lines` lines (CPU time: the machine is shared). */
function timed(lines: number, run: () => void): number {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = cpuMicros();
    run();
    best = Math.min(best, (cpuMicros() - t) / lines);
  }
  return best;
}

async function timedAsync(lines: number, run: () => Promise<void>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = cpuMicros();
    await run();
    best = Math.min(best, (cpuMicros() - t) / lines);
  }
  return best;
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

async function main(): Promise<void> {
  const write = process.argv.includes('--write');
  const agentOnly = process.argv.includes('--agent');
  const facts = await generateAccessLog(WORK, 1_070_000);
  const lines = await sampleLines(facts.path, LINES);
  const rows: { process: string; step: string; micros: number }[] = [];
  const row = (proc: string, step: string, micros: number): void => {
    rows.push({ process: proc, step, micros });
    process.stderr.write(`${proc} ${step}: ${micros.toFixed(3)} µs/line\n`);
  };

  // ceiling
  const grok = compileGrok({ patterns: PATTERN });
  const re = grok.regexes[0];
  const ceiling = timed(lines.length, () => {
    for (let i = 0; i < lines.length; i++) re.exec(lines[i]);
  });
  row('-', 'raw regex ceiling (RegExp#exec)', ceiling);

  // agent: read + split over the first LINES lines' bytes of the file
  const buf = Buffer.allocUnsafe(1 << 20);
  row('agent', 'read + split (1 MiB reads, LineSplitter, one string a line)', timed(facts.lines, () => {
    const fd = openSync(facts.path, 'r');
    const splitter = new LineSplitter(64 * 1024);
    let offset = 0;
    let n = 0;
    const sink = (): void => {
      n++;
    };
    for (;;) {
      const got = readSync(fd, buf, 0, buf.length, null);
      if (got === 0) break;
      splitter.push(buf, got, offset, sink);
      offset += got;
    }
    closeSync(fd);
    if (n !== facts.lines) throw new Error(`split ${n} lines`);
  }));

  const records: TailRecord[] = lines.map((text, i) => ({ fileId: 'f'.repeat(32), path: '/var/log/nginx/access.log', input: 0, offset: i * 200, endOffset: i * 200 + 199, text, truncated: false, stream: undefined, time: undefined, k8s: undefined, json: undefined, tags: NO_TAGS, fields: {} }));
  const batches = chunks(records, CHUNK);
  row('agent', 'pack (records → transferable buffers)', timed(lines.length, () => {
    for (const b of batches) packRecords(b, 0);
  }));

  // transfer: a worker that sends back what it got, buffers moved both ways
  const worker = new Worker(`const { parentPort } = require('node:worker_threads'); parentPort.on('message', (t) => parentPort.postMessage(t, [t.text.buffer]));`, { eval: true });
  row('agent', 'transfer (worker round trip of a packed task)', await timedAsync(lines.length, async () => {
    for (const b of batches) {
      const { task, transfer } = packRecords(b, 0);
      const back = new Promise((resolve) => worker.once('message', resolve));
      worker.postMessage(task, transfer);
      await back;
    }
  }) - (rows[rows.length - 1]?.micros ?? 0));
  await worker.terminate();

  row('agent', 'match (grok matchLine)', timed(lines.length, () => {
    for (let i = 0; i < lines.length; i++) grok.matchLine(lines[i]);
  }));
  const date = compileDateParser(TIMESTAMP.format);
  const stamps = lines.map((l) => String(grok.matchLine(l)?.timestamp));
  const iso = new IsoTime();
  row('agent', 'date (timestamp field → epoch ms → ISO text)', timed(lines.length, () => {
    for (let i = 0; i < stamps.length; i++) iso.format(date.parse(stamps[i]) as number);
  }));
  const builder = new EventBuilder({ inputs: [{ pattern: PATTERN, definitions: {}, fields: {}, timestamp: TIMESTAMP }], patternsDirs: [], hostName: 'web-1' });
  const tasks: ParseTask[][] = [0, 1, 2].map(() => batches.map((b) => packRecords(b, Date.now()).task));
  let round = 0;
  let ndjsonBatches: Buffer[] = [];
  // GC time inside the timed rounds, from V8's own 'gc' entries (they arrive after each round)
  let gcMillis = 0;
  const gcSeen = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMillis += e.duration;
  });
  gcSeen.observe({ entryTypes: ['gc'] });
  let bestGc = Infinity;
  let whole = Infinity;
  for (let k = 0; k < 3; k++) {
    await new Promise((resolve) => setImmediate(resolve));
    gcMillis = 0;
    const t = cpuMicros();
    ndjsonBatches = tasks[round++].map((t) => Buffer.from(builder.parse(t).ndjson));
    const micros = (cpuMicros() - t) / lines.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
    if (micros < whole) {
      whole = micros;
      bestGc = (gcMillis * 1000) / lines.length;
    }
  }
  gcSeen.disconnect();
  const matchMicros = rows[rows.length - 2].micros;
  const dateMicros = rows[rows.length - 1].micros;
  row('agent', 'build + serialize (EventBuilder.parse less match and date)', whole - matchMicros - dateMicros);
  row('agent', 'parser thread total (EventBuilder.parse)', whole);

  // The parser thread's steps one by one (see the header), over the same lines.
  const fields = lines.map((l) => grok.matchLine(l));
  const stepDate = timed(lines.length, () => {
    let last = '';
    let ms = 0;
    for (let i = 0; i < stamps.length; i++) {
      if (stamps[i] !== last) {
        last = stamps[i];
        ms = date.parse(stamps[i]) as number;
      }
      iso.format(ms);
    }
  });
  const serialize = timed(lines.length, () => {
    for (let i = 0; i < lines.length; i++) {
      JSON.stringify(lines[i]);
      JSON.stringify(fields[i]);
    }
  });
  const id = timed(lines.length, () => {
    for (let i = 0; i < records.length; i++) offsetHex(records[i].offset);
  });
  const eventLines = ndjsonBatches.map((b) => b.toString('utf8').slice(0, -1).split('\n'));
  const bytes = timed(lines.length, () => {
    for (const ev of eventLines) Buffer.from([...ev, ''].join('\n'));
  });
  const echo = new Worker(`const { parentPort } = require('node:worker_threads'); parentPort.on('message', (r) => parentPort.postMessage(r, [r.ndjson.buffer]));`, { eval: true });
  let back = Infinity;
  for (let k = 0; k < 3; k++) {
    // copies made outside the timed part: each round transfers buffers of its own
    const results = ndjsonBatches.map((b) => ({ ndjson: new Uint8Array(b), events: CHUNK, grokFailures: 0, dateFailures: 0, timeouts: 0 }));
    const t = cpuMicros();
    for (const result of results) {
      const answer = new Promise((resolve) => echo.once('message', resolve));
      echo.postMessage(result, [result.ndjson.buffer]);
      await answer;
    }
    back = Math.min(back, (cpuMicros() - t) / lines.length);
  }
  await echo.terminate();
  const steps = { match: matchMicros, date: stepDate, serialize, id, bytes, back, gc: bestGc };
  row('parser thread', 'match (grok matchLine)', steps.match);
  row('parser thread', 'date (a repeated text\'s parse reused, ISO text)', steps.date);
  row('parser thread', 'serialize (JSON.stringify of the line and of the match\'s fields)', steps.serialize);
  row('parser thread', 'event id (the offset\'s hex)', steps.id);
  row('parser thread', 'NDJSON → bytes (join + UTF-8 encode, per task)', steps.bytes);
  row('parser thread', 'result back (worker round trip of a ParseResult, buffer transferred)', steps.back);
  row('parser thread', 'GC (V8 gc entries during EventBuilder.parse)', steps.gc);
  row('parser thread', 'the rest (EventBuilder.parse less match, date, serialize, id, bytes, GC)', whole - steps.match - steps.date - steps.serialize - steps.id - steps.bytes - steps.gc);
  process.stderr.write(`raw regex ÷ parser thread (EventBuilder.parse): ${(ceiling / whole).toFixed(3)}; with the result's way back: ${(ceiling / (whole + steps.back)).toFixed(3)}\n`);
  if (agentOnly) {
    process.stdout.write(JSON.stringify({ date: new Date().toISOString(), loadAverage: os.loadavg(), rows }, null, 2) + '\n');
    return;
  }
  const eventBytes = ndjsonBatches.reduce((n, b) => n + b.length, 0) / lines.length;
  let gz6: Buffer[] = [];
  row('agent', 'gzip level 6 (zlib default)', timed(lines.length, () => {
    gz6 = ndjsonBatches.map((b) => gzipSync(b));
  }));
  let gz1: Buffer[] = [];
  row('agent', 'gzip level 1', timed(lines.length, () => {
    gz1 = ndjsonBatches.map((b) => gzipSync(b, { level: zlib.Z_BEST_SPEED }));
  }));
  const gz6Bytes = gz6.reduce((n, b) => n + b.length, 0) / lines.length;
  const gz1Bytes = gz1.reduce((n, b) => n + b.length, 0) / lines.length;

  row('collector', 'gunzip (level 6 body)', timed(lines.length, () => {
    for (const b of gz6) gunzipSync(b);
  }));
  row('collector', 'validate (checkBatch: JSON.parse of every line and its checks)', timed(lines.length, () => {
    for (const b of ndjsonBatches) checkBatch(b, 100_000);
  }));
  const miner = new PatternMiner(Value.Decode(PatternsSchema, Value.Default(PatternsSchema, { saveInterval: 0 })), { telemetry: new Telemetry(), log: silentLogger(), dataDir: mkdtempSync(join(tmpdir(), 'plumb-stages-')) });
  const checked = ndjsonBatches.map((b) => checkBatch(b, 100_000)).map((c) => {
    if ('error' in c) throw new Error(c.error);
    return c;
  });
  row('collector', 'dedupe (SeenEvents has + add)', timed(lines.length, () => {
    const seen = new SeenEvents(1_000_000);
    for (const c of checked) for (const id of c.ids) if (!seen.has(id)) seen.add(id);
  }));
  let annotated: Buffer[] = [];
  let decodedFields: (DecodedEvents | undefined)[] = [];
  const all = checked.map((c) => c.lines.map((_, i) => i));
  const validateMicros = rows.find((r) => r.step.startsWith('validate'))?.micros ?? 0;
  // Each round validates the bodies anew (the door marks the events it mined, and a round must
  // not keep the others' events alive for the collector to trace); the validation is taken off.
  const build = (m: PatternMiner | null) => (): void => {
    const built = ndjsonBatches.map((b, k) => acceptedBatch(checkBatch(b, 100_000) as (typeof checked)[number], all[k], m, 0));
    annotated = built.map((b) => b.ndjson);
    decodedFields = built.map((b) => b.decoded);
  };
  const without = timed(lines.length, build(null));
  row('collector', 'pattern mining (acceptedBatch with mining less without: observe + annotated lines)', timed(lines.length, build(miner)) - without);
  row('collector', 'batch for the sinks without mining (acceptedBatch: NDJSON + the fields for the decoder)', without - validateMicros);
  const dir = mkdtempSync(join(tmpdir(), 'plumb-stages-'));
  try {
    row('collector', 'queue append + fsync (per batch of 1000)', timed(lines.length, () => {
      const fd = openSync(join(dir, 'queue'), 'w');
      for (const b of annotated) {
        writeSync(fd, b);
        fsyncSync(fd);
      }
      closeSync(fd);
    }));
    row('collector', 'queue decode (from the fields the door read)', timed(lines.length, () => {
      for (let k = 0; k < annotated.length; k++) decodeEvents(annotated[k], [] as LogEvent[], decodedFields[k]);
    }));
    row('collector', 'queue decode (scan: splitEvents, as after a restart)', timed(lines.length, () => {
      for (const b of annotated) splitEvents(b);
    }));
    row('collector', 'file write + fsync (per 1 MiB)', timed(lines.length, () => {
      const fd = openSync(join(dir, 'file'), 'w');
      let pending = 0;
      for (const b of annotated) {
        writeSync(fd, b);
        pending += b.length;
        if (pending >= 1 << 20) {
          fsyncSync(fd);
          pending = 0;
        }
      }
      fsyncSync(fd);
      closeSync(fd);
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const result = {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    machine: machineInfo(),
    loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
    lines: lines.length,
    eventBytes: Math.round(eventBytes),
    gzipBytes: { level6: Math.round(gz6Bytes), level1: Math.round(gz1Bytes) },
    rows: rows.map((r) => ({ ...r, micros: Number(r.micros.toFixed(3)), toCeiling: Number((r.micros / ceiling).toFixed(2)) })),
  };
  process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  if (write) appendFileSync(join(ROOT, 'bench', 'RESULTS.md'), render(result));
}

function render(r: { date: string; machine: unknown; loadAverage: number[]; lines: number; eventBytes: number; gzipBytes: { level6: number; level1: number }; rows: { process: string; step: string; micros: number; toCeiling: number }[] }): string {
  return `
## Log path, step by step (\`bench/logs-stages.ts\`) — ${r.date}

**Machine** ${JSON.stringify(r.machine)}; load average ${r.loadAverage.join(' / ')} (shared machine: compare the ratios, not the µs).

**Method** \`npm run bench:logs-stages -- --write\`: each step of the log path run alone in one process over the same ${r.lines.toLocaleString('en-US')} generated combined-format lines (read + split over the whole 1 070 000-line file), CPU time of the process (all threads), best of 3; \`%{COMBINEDAPACHELOG}\` with a \`timestamp\` date (\`${TIMESTAMP.format}\`). Events are ${r.eventBytes} B of NDJSON each; gzip makes them ${r.gzipBytes.level6} B (level 6) or ${r.gzipBytes.level1} B (level 1).

| process | step | µs / line | × raw regex |
|---|---|---|---|
${r.rows.map((x) => `| ${x.process} | ${x.step} | ${x.micros} | ${x.toCeiling} |`).join('\n')}
`;
}

await main();
