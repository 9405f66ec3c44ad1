/**
 * Config loading for every role: YAML file → PLUMB_* environment overrides → defaults → validation.
 * Validation walks the whole tree and reports every error at once, each naming its key path.
 * Components declare their own schema with the helpers below and receive typed, decoded config.
 */
import { readFileSync } from 'node:fs';
import { Type, type TSchema, type StaticDecode, Kind, type TObject } from '@sinclair/typebox';
import { Value, ValueErrorType } from '@sinclair/typebox/value';
import YAML from 'yaml';
import { PlumbError } from './errors.ts';
import { DURATION_PATTERN, SIZE_PATTERN, parseDuration, parseSize } from './units.ts';

/**
 * A duration in config ("10s", "5m", "1h30m", "250ms"); decodes to milliseconds. A bare number is
 * taken as milliseconds (documented; "10" is 10 ms, not 10 s). 0 is refused unless the key says
 * what 0 means (allowZero): a 0 interval or timeout would spin or never wait.
 */
export function Duration(defaultValue?: string, options: { description?: string; allowZero?: boolean } = {}) {
  const { allowZero, ...rest } = options;
  const pattern = allowZero ? DURATION_PATTERN : `^(?=.*[1-9])${DURATION_PATTERN.slice(1)}`;
  return Type.Transform(
    Type.Union([Type.String({ pattern }), allowZero ? Type.Number({ minimum: 0 }) : Type.Number({ exclusiveMinimum: 0 })], {
      ...rest,
      ...(defaultValue !== undefined ? { default: defaultValue } : {}),
      errorMessage: allowZero ? 'a duration like "10s", "5m" or "1h" (a bare number is milliseconds)' : 'a duration above 0 like "10s", "5m" or "1h" (a bare number is milliseconds)',
    }),
  )
    .Decode((v) => (typeof v === 'number' ? v : (parseDuration(v) as number)))
    .Encode((v) => `${v}ms`);
}

/** A byte size in config ("5mb", "64kib", or a number of bytes); decodes to bytes. */
export function Size(defaultValue?: string | number, options: { description?: string } = {}) {
  return Type.Transform(
    Type.Union([Type.String({ pattern: SIZE_PATTERN }), Type.Integer({ minimum: 0 })], {
      ...options,
      ...(defaultValue !== undefined ? { default: defaultValue } : {}),
      errorMessage: 'a size like "512kb" or "5mb"',
    }),
  )
    .Decode((v) => (typeof v === 'number' ? v : (parseSize(v) as number)))
    .Encode((v) => v);
}

/** A closed object: unknown keys are errors. Missing sections take their defaults. */
export function Section<P extends Record<string, TSchema>>(properties: P, options: { description?: string; optional?: boolean } = {}) {
  return Type.Object(properties, {
    additionalProperties: false,
    description: options.description,
    ...(options.optional ? {} : { default: {} }),
  });
}

export class ConfigError extends PlumbError {
  readonly errors: string[];
  constructor(source: string, errors: string[]) {
    super('PLUMB_ERR_CONFIG_INVALID', `${source}: ${errors.length} configuration error(s):\n  ${errors.join('\n  ')}`);
    this.errors = errors;
    this.name = 'ConfigError';
  }
}

export interface LoadOptions {
  /** Path of the YAML file, used in messages. */
  file?: string;
  /** YAML text; read from `file` when absent. */
  text?: string;
  /** Environment to take PLUMB_* overrides from (the CLI passes process.env). */
  env?: Record<string, string | undefined>;
}

/**
 * A check beyond the schema (a regex that must compile, keys that depend on each other) for the
 * subtree at `path` ("" for the whole file). It runs whenever that subtree is valid by `schema`,
 * even if other parts of the file are not, so one run reports every error.
 */
export interface ConfigCheck {
  path: string;
  schema: TSchema;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- receives the decoded subtree
  run: (value: any) => string[];
}

/** Environment variables that steer the CLI rather than override a key. */
const RESERVED_ENV = new Set(['PLUMB_CONFIG']);

export function loadConfig<T extends TSchema>(schema: T, options: LoadOptions, checks: readonly ConfigCheck[] = []): StaticDecode<T> {
  const source = options.file ?? '<config>';
  let raw: unknown;
  let text = options.text;
  if (text === undefined && options.file !== undefined) {
    try {
      text = readFileSync(options.file, 'utf8');
    } catch (err) {
      throw new PlumbError('PLUMB_ERR_CONFIG_READ', `${source}: cannot read the configuration file (${(err as Error).message})`);
    }
  }
  try {
    const doc = YAML.parseDocument(text ?? '', { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      throw new ConfigError(source, doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
    }
    raw = doc.toJS() ?? {};
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(source, [`YAML: ${(err as Error).message}`]);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(source, ['the top level must be a mapping of keys']);
  }
  const errors: string[] = [];
  applyEnvOverrides(schema, raw as Record<string, unknown>, options.env ?? {}, errors);
  setAsideMisplacedLists(schema, raw, '', errors);
  const withDefaults = Value.Default(schema, Value.Clone(raw));
  collectUnknownKeys(schema, withDefaults, '', errors);
  const schemaErrors: string[] = [];
  for (const e of Value.Errors(schema, withDefaults)) {
    if (e.message === 'Unexpected property') continue; // reported above, with a suggestion
    const path = pointerToPath(e.path);
    const expected = (e.schema as { errorMessage?: string }).errorMessage ?? (e.schema[Kind] === 'Union' ? describeUnion(e.schema) : undefined);
    const missing = e.type === ValueErrorType.ObjectRequiredProperty;
    const msg = missing ? `missing${expected ? `: expected ${expected}` : ''}` : expected ? `expected ${expected}` : e.message.charAt(0).toLowerCase() + e.message.slice(1);
    const line = `${path || '(top level)'}: ${msg}${e.value !== undefined && typeof e.value !== 'object' ? ` (got ${JSON.stringify(e.value)})` : ''}`;
    if (!schemaErrors.includes(line)) schemaErrors.push(line);
  }
  // A union reports both branches' failures; keep the most specific line per path.
  errors.push(...dedupeByPath(schemaErrors));
  for (const check of checks) {
    const subtree = check.path === '' ? withDefaults : check.path.split('.').reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), withDefaults);
    // Unknown keys and type errors (both reported above) must not hide what the check would find in the rest.
    const checkable = withoutSchemaErrors(check.schema, Value.Clean(check.schema, Value.Clone(subtree)));
    if (checkable !== undefined) {
      for (const line of check.run(Value.Decode(check.schema, checkable))) if (!errors.includes(line)) errors.push(line);
    }
  }
  if (errors.length > 0) throw new ConfigError(source, errors);
  return Value.Decode(schema, withDefaults);
}

/**
 * The value with every schema error set aside, so a semantic check can still look at the rest:
 * a wrong value falls back to its key's default, or is left out when the key is optional. When
 * neither works (a required key without a default is wrong) the check cannot run: undefined.
 * The value is a private clone; it is changed in place.
 */
function withoutSchemaErrors(schema: TSchema, value: unknown): unknown {
  let previous = '';
  for (let round = 0; round < 200; round++) {
    const first = Value.Errors(schema, value).First();
    if (first === undefined) return value;
    const where = `${first.path} ${first.message}`;
    if (where === previous) return undefined;
    previous = where;
    const keys = first.path.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (keys.length === 0) return undefined;
    const parent = keys.slice(0, -1).reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), value);
    if (parent === null || typeof parent !== 'object' || Array.isArray(parent)) return undefined;
    const last = keys[keys.length - 1];
    const fallback = (first.schema as { default?: unknown }).default;
    if (fallback !== undefined) (parent as Record<string, unknown>)[last] = Value.Clone(fallback);
    else delete (parent as Record<string, unknown>)[last];
  }
  return undefined;
}

/** What a union accepts, for its error line: `one of "a", "b"`, or its members' kinds. */
function describeUnion(schema: TSchema): string {
  const members = (schema.anyOf as TSchema[] | undefined) ?? [];
  if (members.length > 0 && members.every((m) => m.const !== undefined)) return `one of ${members.map((m) => JSON.stringify(m.const)).join(', ')}`;
  const kinds = members.map((m) => {
    if (m.const !== undefined) return JSON.stringify(m.const);
    if (typeof m.errorMessage === 'string') return m.errorMessage as string;
    switch (m[Kind]) {
      case 'Null':
        return 'null';
      case 'String':
        return m.pattern === undefined ? 'a string' : 'a string of the expected form';
      case 'Integer':
        return 'an integer';
      case 'Number':
        return 'a number';
      case 'Boolean':
        return 'true or false';
      case 'Array':
        return 'a list';
      case 'Object':
        return 'a mapping';
      default:
        return String(m[Kind]).toLowerCase();
    }
  });
  return [...new Set(kinds)].join(' or ');
}

function dedupeByPath(errors: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const line of errors) {
    const path = line.slice(0, line.indexOf(': '));
    if (seen.has(path) && !line.includes('unknown key')) continue;
    seen.add(path);
    out.push(line);
  }
  return out;
}

function pointerToPath(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join('')
    .replace(/^\./, '');
}

function objectMembers(schema: TSchema): TObject[] {
  if (schema[Kind] === 'Object') return [schema as TObject];
  if (schema[Kind] === 'Union') return (schema.anyOf as TSchema[]).flatMap(objectMembers);
  return [];
}

/**
 * A list written where a mapping belongs is reported here and removed (its key takes its
 * default for the other checks): filling defaults would otherwise turn it into a mapping of
 * "0", "1"… and the error would read as unknown keys.
 */
function setAsideMisplacedLists(schema: TSchema, value: unknown, path: string, errors: string[]): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    const items = schema[Kind] === 'Array' ? (schema.items as TSchema) : ((schema.anyOf as TSchema[] | undefined) ?? []).find((m) => m[Kind] === 'Array')?.items;
    if (items !== undefined) value.forEach((item, i) => setAsideMisplacedLists(items as TSchema, item, `${path}[${i}]`, errors));
    return;
  }
  const objects = objectMembers(schema);
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const sub = objects.find((o) => key in o.properties)?.properties[key];
    if (sub === undefined) continue;
    const takesList = sub[Kind] === 'Array' || ((sub.anyOf as TSchema[] | undefined) ?? []).some((m) => m[Kind] === 'Array' || m[Kind] === 'Unknown' || m[Kind] === 'Any');
    if (Array.isArray(child) && !takesList && objectMembers(sub).length > 0) {
      errors.push(`${join(path, key)}: expected a mapping of keys, not a list`);
      delete (value as Record<string, unknown>)[key];
      continue;
    }
    setAsideMisplacedLists(sub, child, join(path, key), errors);
  }
}

function collectUnknownKeys(schema: TSchema, value: unknown, path: string, errors: string[]): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    // A list where a mapping belongs is a type error, reported as one; its items have no keys to check.
    if (schema[Kind] === 'Array') value.forEach((item, i) => collectUnknownKeys(schema.items as TSchema, item, `${path}[${i}]`, errors));
    else if (schema[Kind] === 'Union') {
      const list = (schema.anyOf as TSchema[]).find((m) => m[Kind] === 'Array');
      if (list !== undefined) value.forEach((item, i) => collectUnknownKeys(list.items as TSchema, item, `${path}[${i}]`, errors));
    }
    return;
  }
  const objects = objectMembers(schema);
  if (objects.length === 0) {
    if (schema[Kind] === 'Record') {
      const inner = Object.values(schema.patternProperties as Record<string, TSchema>)[0];
      for (const [k, v] of Object.entries(value)) collectUnknownKeys(inner, v, join(path, k), errors);
    }
    return;
  }
  const known = new Set(objects.flatMap((o) => Object.keys(o.properties)));
  const closed = objects.every((o) => o.additionalProperties === false);
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    if (!known.has(key)) {
      if (closed) {
        const hint = suggest(key, [...known]);
        errors.push(`${join(path, key)}: unknown key${hint ? ` (did you mean "${hint}"?)` : ''}`);
      }
      continue;
    }
    const sub = objects.find((o) => key in o.properties)!.properties[key];
    collectUnknownKeys(sub, child, join(path, key), errors);
  }
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** The candidate closest to a mistyped key, if one is close enough to be what was meant. */
export function suggest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(key.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

/**
 * PLUMB_AGENT__STATSD__MAX_SERIES=5000 sets agent.statsd.maxSeries. Segments are separated by a
 * double underscore and matched to schema keys ignoring case and single underscores; values are
 * read as YAML scalars or flow collections, so numbers, booleans and ["a","b"] lists work.
 */
function applyEnvOverrides(schema: TSchema, target: Record<string, unknown>, env: Record<string, string | undefined>, errors: string[]): void {
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith('PLUMB_') || RESERVED_ENV.has(name) || text === undefined) continue;
    const segments = name.slice('PLUMB_'.length).split('__');
    let node: TSchema = schema;
    let holder: Record<string, unknown> | unknown[] = target;
    const path: string[] = [];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      const last = i === segments.length - 1;
      let key: string | number | undefined;
      let next: TSchema | undefined;
      if (node[Kind] === 'Array' && /^\d+$/.test(seg)) {
        key = Number(seg);
        next = node.items as TSchema;
      } else {
        const wanted = seg.toLowerCase().replace(/_/g, '');
        for (const o of objectMembers(node)) {
          const k = Object.keys(o.properties).find((p) => p.toLowerCase() === wanted);
          if (k !== undefined) {
            key = k;
            next = o.properties[k];
            break;
          }
        }
      }
      if (key === undefined || next === undefined) {
        errors.push(`${name}: environment override names no configuration key (no "${seg.toLowerCase()}" under ${path.join('.') || 'the top level'})`);
        break;
      }
      path.push(String(key));
      if (last) {
        (holder as Record<string | number, unknown>)[key] = parseEnvValue(text);
      } else {
        const existing = (holder as Record<string | number, unknown>)[key];
        if (existing === undefined || existing === null || typeof existing !== 'object') {
          (holder as Record<string | number, unknown>)[key] = next[Kind] === 'Array' ? [] : {};
        }
        holder = (holder as Record<string | number, unknown>)[key] as Record<string, unknown>;
        node = next;
      }
    }
  }
}

function parseEnvValue(text: string): unknown {
  try {
    const v = YAML.parse(text);
    return v === null ? text : v;
  } catch {
    return text;
  }
}
