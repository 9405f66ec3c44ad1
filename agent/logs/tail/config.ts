/**
 * Configuration of the file tailer: one `LogInputSchema` per configured input (which files, how
 * their lines are framed, what is added to each event) and `TailerOptionsSchema` for the limits
 * and timings shared by all inputs. Rules the schema cannot express (absolute paths, valid
 * regular expressions, sane limits) are checked by `tailConfigErrors`, which the Tailer runs
 * before it opens anything.
 */
import path from 'node:path';
import { Type, type StaticDecode } from '@sinclair/typebox';
import { Duration, Section, Size } from '../../../shared/config.ts';

const OneOrMany = (description: string) =>
  Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
    description,
    errorMessage: 'a string or a list of strings',
  });

export const MultilineModes = ['start', 'continue-through', 'continue-past', 'halt-before', 'halt-with'] as const;
export type MultilineMode = (typeof MultilineModes)[number];

export const MultilineSchema = Section(
  {
    mode: Type.Union(
      MultilineModes.map((m) => Type.Literal(m)),
      {
        default: 'start',
        errorMessage: '"start", "continue-through", "continue-past", "halt-before" or "halt-with"',
        description:
          'start: a line matching `start` begins an event, other lines continue it. The others (Vector\'s modes) open an event with a line matching `start` (any line when unset) and decide by `condition` which lines join it: continue-through joins lines that match; continue-past joins lines that match and the one after them; halt-before joins lines up to the first that matches, which begins the next event; halt-with joins lines up to and including the first that matches',
      },
    ),
    start: Type.Optional(Type.String({ minLength: 1, description: 'regular expression matching the first line of an event (mode start: required; other lines continue the event before them)' })),
    condition: Type.Optional(Type.String({ minLength: 1, description: 'regular expression deciding which lines join an open event (every mode but start: required)' })),
    maxBytes: Size('256kib', { description: 'an event is cut (and flagged truncated) at this size; later continuation lines are dropped' }),
    maxLines: Type.Integer({ minimum: 1, maximum: 100_000, default: 500, description: 'continuation lines past this count are dropped and the event flagged truncated' }),
    timeout: Duration('2s', { description: 'an event is emitted when no line arrived for it this long (the last trace of a writer that went quiet)' }),
  },
  { optional: true },
);

export const TimestampSchema = Section(
  {
    field: Type.String({ minLength: 1, default: 'timestamp', description: 'parsed field that holds the event time' }),
    format: OneOrMany(
      'how that field is written, e.g. "dd/MMM/yyyy:HH:mm:ss Z"; or a list, tried in order (syslog writes days 1-9 as "Jul  1": ["MMM  d HH:mm:ss", "MMM dd HH:mm:ss"])',
    ),
    timezone: Type.Optional(Type.String({ minLength: 1, description: 'zone for formats without an offset' })),
  },
  { optional: true },
);

export const LogFormats = ['plain', 'cri', 'docker', 'json'] as const;
export type LogFormat = (typeof LogFormats)[number];

export const LogEncodings = ['utf-8', 'latin1', 'utf-16le', 'utf-16be', 'utf-16'] as const;
export type LogEncoding = (typeof LogEncodings)[number];

const StartAt = (description: string) =>
  Type.Union([Type.Literal('beginning'), Type.Literal('end')], { default: 'beginning', errorMessage: '"beginning" or "end"', description });
export const LogInputSchema = Section(
  {
    path: OneOrMany(
      'absolute paths or globs; files that match later are picked up while running. Rotations may match: a renamed file and a copytruncate copy are recognised (by inode and fingerprint) and not read twice',
    ),
    exclude: Type.Array(Type.String({ minLength: 1 }), { default: [], description: 'globs of paths to leave out (compressed files are never matched; a .gz of a known file is read only to finish it)' }),
    format: Type.Union(
      LogFormats.map((f) => Type.Literal(f)),
      { default: 'plain', errorMessage: '"plain", "cri", "docker" or "json"' },
    ),
    // A first deployment reads what is already in the files: an operator expects the logs that
    // led up to installing the agent (a crash-looping pod's first lines) to arrive, and event ids
    // are deterministic, so a re-read after a lost data directory is deduplicated downstream.
    // "end" is the opt-out for hosts with large histories nobody wants shipped.
    startAt: StartAt('where to start in files that exist at the very first start (no checkpoint file yet); end: after their last complete line'),
    // New files are application logs that just began, or the fresh file of a rotation: reading
    // them from the end would drop their first lines. "end" is for directories where files
    // arrive whole (copied in) and only what is appended later matters.
    newFilesStartAt: StartAt(
      'where to start in files that appear later (while running, or while the agent was down) and have no checkpoint; a file created at a path a followed file had (a rotation) is always read from the beginning',
    ),
    ignoreOlder: Duration('0s', {
      allowZero: true,
      description: 'files without a checkpoint not modified for this long are not read; they are registered at their end and read from there when they change (0: off)',
    }),
    encoding: Type.Union(
      LogEncodings.map((e) => Type.Literal(e)),
      {
        default: 'utf-8',
        errorMessage: '"utf-8", "latin1", "utf-16le", "utf-16be" or "utf-16"',
        description: 'how the file is written; converted to UTF-8 when read. utf-16: little- or big-endian by the byte order mark (little-endian without one). A byte order mark is not part of the first line',
      },
    ),
    multiline: Type.Optional(MultilineSchema),
    pattern: Type.Optional(OneOrMany('grok pattern(s), tried in order')),
    definitions: Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), {
      default: {},
      description: "extra grok patterns for this input, NAME → expression (Logstash's pattern_definitions)",
    }),
    timestamp: Type.Optional(TimestampSchema),
    fields: Type.Record(Type.String({ minLength: 1 }), Type.String(), { default: {}, description: 'static fields added to every event' }),
  },
  { optional: true },
);

export const LogInputsSchema = Type.Array(LogInputSchema, { default: [] });

export const TailerOptionsSchema = Section({
  discoverInterval: Duration('1s', { description: 'how often globs are expanded and open files checked for rotation' }),
  pollInterval: Duration('250ms', { description: 'how long a file at its end waits before it is read again' }),
  maxOpenFiles: Type.Integer({ minimum: 1, default: 512, description: 'files held open at once; more are refused (and counted) until others close' }),
  maxFiles: Type.Integer({ minimum: 1, default: 10_000, description: 'files remembered (open, closed or checkpointed); the longest unseen are forgotten first' }),
  maxLineBytes: Size('64kib', { description: 'longer lines are cut to this size and flagged truncated' }),
  readChunkBytes: Size('256kib', { description: 'bytes read from a file at a time (each read is a round trip to the I/O thread pool: larger chunks cost the main thread less a line)' }),
  fingerprintBytes: Size('1kib', { description: 'leading bytes hashed to tell a file from a new one that reuses its inode' }),
  batchMaxRecords: Type.Integer({ minimum: 1, default: 1000, description: 'a batch is handed out when it holds this many records' }),
  batchMaxBytes: Size('1mib', { description: 'or when its records\' text reaches this size' }),
  maxUnackedBatches: Type.Integer({ minimum: 1, default: 32, description: 'batches handed out and not yet acknowledged; reading pauses at this count' }),
  unterminatedTimeout: Duration('0s', {
    allowZero: true,
    description: 'a last line without a newline is handed out after the file did not grow for this long; what follows it later is a line of its own (0: off, held until a newline comes or the file is rotated)',
  }),
  partialTimeout: Duration('5s', { description: 'a cri/docker partial line with no continuation for this long is emitted as it is' }),
  rotateWait: Duration('5s', { description: 'a rotated or deleted file is read to its end and closed after no growth for this long; an unterminated last line is then emitted' }),
  closeInactive: Duration('5m', { description: 'a file that did not grow for this long is closed (and reopened when it grows), freeing its descriptor' }),
  checkpointInterval: Duration('5s', { description: 'how often acknowledged offsets are written to disk' }),
  forgetAfter: Duration('24h', { description: 'checkpoints of files not seen for this long are dropped' }),
  lagThreshold: Duration('30s', { description: 'a file whose oldest unacknowledged byte has waited longer than this is lagging: GET /api/v1/status marks the files component degraded' }),
});

export type LogInput = StaticDecode<typeof LogInputSchema>;
export type MultilineConfig = StaticDecode<typeof MultilineSchema>;
export type TailerOptions = StaticDecode<typeof TailerOptionsSchema>;

/** Compressed files are never matched: their bytes are not lines (a .gz rotation of a known file is read through gunzip to finish it). */
export const COMPRESSED_SUFFIXES: readonly string[] = ['.gz', '.bz2', '.xz', '.zst', '.zip', '.lz4', '.z', '.tgz', '.7z'];

/** Paths of one input as a list. */
export function inputPaths(input: LogInput): string[] {
  return typeof input.path === 'string' ? [input.path] : input.path;
}

/**
 * Rules across keys, one message per problem, each naming its key path. `inputsPrefix` and
 * `optionsPrefix` are where the composition root mounted the two sections.
 */
export function tailConfigErrors(inputs: readonly LogInput[], options: TailerOptions, inputsPrefix = 'agent.logs', optionsPrefix = 'agent.tail'): string[] {
  const errors: string[] = [];
  inputs.forEach((input, i) => {
    const at = `${inputsPrefix}[${i}]`;
    for (const p of inputPaths(input)) {
      if (!path.isAbsolute(p)) errors.push(`${at}.path: "${p}" is not absolute; write the full path, e.g. /var/log/${p.replace(/^\.?\/*/, '')}`);
    }
    if (input.multiline !== undefined) {
      const ml = input.multiline;
      if (ml.mode === 'start' && ml.start === undefined) errors.push(`${at}.multiline.start: required with mode "start" (a regular expression matching an event's first line)`);
      if (ml.mode !== 'start' && ml.condition === undefined) errors.push(`${at}.multiline.condition: required with mode "${ml.mode}" (a regular expression deciding which lines join an event)`);
      if (ml.mode === 'start' && ml.condition !== undefined) errors.push(`${at}.multiline.condition: not used with mode "start"; choose a mode such as "halt-before" or drop it`);
      for (const key of ['start', 'condition'] as const) {
        const re = ml[key];
        if (re === undefined) continue;
        try {
          new RegExp(re);
        } catch (err) {
          errors.push(`${at}.multiline.${key}: not a valid regular expression (${(err as Error).message})`);
        }
      }
      if (input.multiline.maxBytes < 1) errors.push(`${at}.multiline.maxBytes: must be at least 1 byte`);
      if (input.format === 'json') errors.push(`${at}.multiline: cannot be combined with format "json" (one object per line)`);
    }
  });
  if (options.maxLineBytes < 16) errors.push(`${optionsPrefix}.maxLineBytes: must be at least 16 bytes`);
  if (options.readChunkBytes < 1024) errors.push(`${optionsPrefix}.readChunkBytes: must be at least 1kib`);
  if (options.fingerprintBytes < 16 || options.fingerprintBytes > 65_536) errors.push(`${optionsPrefix}.fingerprintBytes: must be between 16 bytes and 64kib`);
  if (options.batchMaxBytes < 1024) errors.push(`${optionsPrefix}.batchMaxBytes: must be at least 1kib`);
  if (options.maxOpenFiles > options.maxFiles) errors.push(`${optionsPrefix}.maxOpenFiles: larger than maxFiles (${options.maxFiles}); raise maxFiles`);
  for (const key of ['discoverInterval', 'pollInterval', 'checkpointInterval'] as const) {
    if (options[key] <= 0) errors.push(`${optionsPrefix}.${key}: must be longer than 0`);
  }
  return errors;
}
