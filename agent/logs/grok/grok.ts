/**
 * The grok engine: expressions such as `%{IPORHOST:clientip} %{NUMBER:bytes:int}` are expanded
 * against a pattern library, translated from Oniguruma to JavaScript and compiled once. A
 * compiled Grok matches lines (unanchored, like Logstash: the expression may match anywhere)
 * and returns the named captures as fields.
 *
 * Matching does no work per line beyond `RegExp.exec` and copying captures: the capture group
 * → field/type table is built at compile time, captures are read from the match array by
 * index, and unnamed groups do not capture at all.
 *
 * Field semantics follow Logstash's grok filter with its defaults: only named captures become
 * fields; a capture that did not participate or captured "" is left out; a name captured more
 * than once yields an array of the values in order; `[a][b]` names nest; `:int` and `:float`
 * convert as Ruby's to_i/to_f do (leading number, else 0).
 */
import { Buffer, isAscii } from 'node:buffer';
import { PatternLibrary, syntaxProblem } from './library.ts';
import { translateOniguruma } from './oniguruma.ts';
import { GrokPatternError } from './pattern-error.ts';
import { PATTERN_REFERENCE, VALUE_FLOAT, VALUE_INT, fieldPath, parseCaptureName, type ValueType } from './reference.ts';

export type GrokScalar = string | number;
export type GrokValue = GrokScalar | GrokScalar[] | GrokFields;
export interface GrokFields {
  [field: string]: GrokValue;
}

export interface GrokOptions {
  /** One expression, or several tried in order; the first that matches wins. */
  patterns: string | readonly string[];
  /** Extra definitions, NAME → expression, over the library (Logstash's pattern_definitions). */
  definitions?: Readonly<Record<string, string>>;
  /** Pattern files or directories of them, loaded over the library (Logstash's patterns_dir). */
  patternsDir?: string | readonly string[];
  /** Start from the built-in patterns (default true). Ignored when `library` is given. */
  builtinPatterns?: boolean;
  /** A library to start from instead of the built-in one (it is not modified). */
  library?: PatternLibrary;
  /** Keep captures that matched the empty string (default false, as in Logstash). */
  keepEmptyCaptures?: boolean;
}

export interface GrokChunkResult {
  /** Each line's text, without its "\n" (nor a "\r" just before it). */
  lines: string[];
  /** Byte offset in the chunk where each line starts. */
  offsets: number[];
  /** Fields per line, or null where no expression matched. */
  fields: (GrokFields | null)[];
  /** How many lines matched. */
  matched: number;
}

/** Bounds that keep a runaway definition from exhausting memory at start-up. */
const MAX_DEPTH = 64;
const MAX_EXPANDED_LENGTH = 2_000_000;
/** Prefix of the group names that carry grok captures through translation (not valid Oniguruma). */
const CAPTURE_MARK = '\u0001';

interface FieldSpec {
  key: string;
  /** Nested path, or null for a top-level key. */
  path: string[] | null;
  /** Captured by more than one group of the expression: values collect into an array. */
  multi: boolean;
}

interface CompiledExpression {
  regex: RegExp;
  /** Same source with the `m` flag, for text containing newlines; null when no `^`/`$`. */
  multiline: RegExp | null;
  /** Per capture slot: group index in the match array, field, value type. */
  slotGroup: number[];
  slotField: FieldSpec[];
  slotType: ValueType[];
  /** Builds the fields object from a match; generated per expression (see buildExtractor). */
  extract: (m: RegExpExecArray) => GrokFields;
  /** Repeated groups whose captures JavaScript would forget (see TranslatedRepeat), or null. */
  repeats: RepeatSpec[] | null;
}

interface RepeatSpec {
  span: number;
  /** One iteration, sticky. */
  body: RegExp;
  /** Capture index in `body` → capture index in the main regex. */
  pairs: [number, number][];
}

export class Grok {
  readonly expressions: readonly string[];
  /** The JavaScript regular expression for each expression (for benchmarks and debugging). */
  readonly regexes: readonly RegExp[];
  /** Field names the expressions can produce, nested paths joined with dots. */
  readonly fieldNames: readonly string[];
  /** The top-level keys a match can have (a nested name's first part). */
  readonly topLevelFields: readonly string[];
  private readonly compiled: CompiledExpression[];
  private readonly keepEmpty: boolean;
  /** Some expression uses ^ or $, so a line with a newline needs the multi-line variant. */
  private readonly anchored: boolean;

  constructor(options: GrokOptions) {
    const list = typeof options.patterns === 'string' ? [options.patterns] : [...options.patterns];
    if (list.length === 0) throw new GrokPatternError('<none>', 'grok needs at least one expression to match');
    const library = buildLibrary(options);
    this.expressions = list;
    this.keepEmpty = options.keepEmptyCaptures ?? false;
    this.compiled = list.map((expr) => compileExpression(expr, library, this.keepEmpty));
    this.regexes = this.compiled.map((c) => c.regex);
    this.anchored = this.compiled.some((c) => c.multiline !== null);
    const names = new Set<string>();
    for (const c of this.compiled) for (const f of c.slotField) names.add(f.path === null ? f.key : f.path.join('.'));
    this.fieldNames = [...names];
    const top = new Set<string>();
    for (const c of this.compiled) for (const f of c.slotField) top.add(f.path === null ? f.key : f.path[0]);
    this.topLevelFields = [...top];
  }

  /** Fields of the first expression that matches, or null when none does. Never throws. */
  matchLine(line: string): GrokFields | null {
    const compiled = this.compiled;
    const multi = this.anchored && line.indexOf('\n') !== -1;
    for (let i = 0; i < compiled.length; i++) {
      const c = compiled[i];
      const re = multi && c.multiline !== null ? c.multiline : c.regex;
      const m = re.exec(line);
      if (m !== null) {
        if (c.repeats !== null) recoverRepeatedCaptures(c.repeats, m);
        return c.extract(m);
      }
    }
    return null;
  }

  /** Index of the first expression that matches, or -1. */
  matchIndex(line: string): number {
    const multi = this.anchored && line.indexOf('\n') !== -1;
    for (let i = 0; i < this.compiled.length; i++) {
      const c = this.compiled[i];
      if ((multi && c.multiline !== null ? c.multiline : c.regex).test(line)) return i;
    }
    return -1;
  }

  /**
   * Matches every line of a chunk of UTF-8 text ("\n"-separated; a last line without "\n"
   * counts too), between byte offsets start and end. Meant for a worker thread handed a
   * transferred buffer of many lines.
   */
  matchChunk(chunk: Uint8Array, start = 0, end = chunk.length): GrokChunkResult {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const result: GrokChunkResult = { lines: [], offsets: [], fields: [], matched: 0 };
    if (isAscii(buf.subarray(start, end))) {
      // One decode for the whole chunk; in ASCII, character offsets are byte offsets.
      const text = buf.toString('latin1', start, end);
      let pos = 0;
      while (pos < text.length) {
        let nl = text.indexOf('\n', pos);
        if (nl === -1) nl = text.length;
        const stop = nl > pos && text.charCodeAt(nl - 1) === 0x0d ? nl - 1 : nl;
        this.addLine(result, text.slice(pos, stop), start + pos);
        pos = nl + 1;
      }
      return result;
    }
    let pos = start;
    while (pos < end) {
      let nl = buf.indexOf(0x0a, pos);
      if (nl === -1 || nl >= end) nl = end;
      const stop = nl > pos && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      this.addLine(result, buf.toString('utf8', pos, stop), pos);
      pos = nl + 1;
    }
    return result;
  }

  private addLine(result: GrokChunkResult, line: string, offset: number): void {
    const f = this.matchLine(line);
    if (f !== null) result.matched++;
    result.lines.push(line);
    result.offsets.push(offset);
    result.fields.push(f);
  }
}

/** Compiles grok expressions once; the result is reused for every line. Throws GrokPatternError. */
export function compileGrok(options: GrokOptions): Grok {
  return new Grok(options);
}

function buildLibrary(options: GrokOptions): PatternLibrary {
  const extraDirs = options.patternsDir === undefined ? [] : typeof options.patternsDir === 'string' ? [options.patternsDir] : options.patternsDir;
  const defs = Object.entries(options.definitions ?? {});
  const base = options.library ?? (options.builtinPatterns === false ? new PatternLibrary() : PatternLibrary.builtin());
  if (extraDirs.length === 0 && defs.length === 0) return base;
  const lib = options.library ? base.clone() : base;
  for (const dir of extraDirs) lib.loadPath(dir);
  for (const [name, expr] of defs) lib.define(name, expr, '<definitions>');
  return lib;
}

interface ExpandContext {
  library: PatternLibrary;
  /** Patterns defined on the spot with %{NAME=expression}. */
  local: Map<string, string>;
  captures: { field: string; type: ValueType }[];
  length: number;
}

function describe(expr: string): string {
  return JSON.stringify(expr.length > 80 ? `${expr.slice(0, 77)}...` : expr);
}

function compileExpression(expr: string, library: PatternLibrary, keepEmpty: boolean): CompiledExpression {
  const ctx: ExpandContext = { library, local: new Map(), captures: [], length: 0 };
  const label = `grok expression ${describe(expr)}`;
  // The expression's own syntax first, so an error offset points into the text as written.
  const own = syntaxProblem(expr);
  if (own !== undefined) throw new GrokPatternError(expr, `${label} is not a valid regular expression: ${own}`);
  const onig = expand(expr, ctx, [], label);
  let translated;
  let regex: RegExp;
  let multiline: RegExp | null = null;
  try {
    translated = translateOniguruma(onig);
    regex = new RegExp(translated.source, 'u');
    if (translated.lineAnchors) multiline = new RegExp(translated.source, 'mu');
  } catch (err) {
    throw new GrokPatternError(expr, `${label} cannot be compiled: ${(err as Error).message}`, { cause: err });
  }
  const slotGroup: number[] = [];
  const slotName: { field: string; type: ValueType }[] = [];
  for (const cap of translated.captures) {
    if (cap.name === undefined) continue;
    const spec = cap.name.startsWith(CAPTURE_MARK) ? ctx.captures[Number(cap.name.slice(1))] : { field: cap.name, type: 0 as ValueType };
    slotGroup.push(cap.index);
    slotName.push(spec);
  }
  const counts = new Map<string, number>();
  for (const s of slotName) counts.set(s.field, (counts.get(s.field) ?? 0) + 1);
  const specs = new Map<string, FieldSpec>();
  const slotField = slotName.map((s) => {
    let spec = specs.get(s.field);
    if (spec === undefined) {
      const path = fieldPath(s.field);
      if (path.includes('__proto__')) throw new GrokPatternError(expr, `${label}: field name ${s.field} is not allowed`);
      spec = { key: path[0], path: path.length > 1 ? path : null, multi: counts.get(s.field)! > 1 };
      specs.set(s.field, spec);
    }
    return spec;
  });
  const fieldGroups = new Set(slotGroup);
  const repeats: RepeatSpec[] = [];
  for (const r of translated.repeats) {
    const pairs = r.pairs.filter(([, main]) => fieldGroups.has(main));
    if (pairs.length === 0) continue;
    try {
      repeats.push({ span: r.span, body: new RegExp(r.source, 'uy'), pairs });
    } catch {
      // The iteration alone does not compile (it leaned on context); keep JavaScript's values.
    }
  }
  const slotType = slotName.map((s) => s.type);
  const extract = buildExtractor(slotGroup, slotField, slotType, keepEmpty);
  return { regex, multiline, slotGroup, slotField, slotType, extract, repeats: repeats.length > 0 ? repeats : null };
}

/** Replaces every %{…} reference with its (recursively expanded) definition. */
function expand(text: string, ctx: ExpandContext, stack: string[], owner: string): string {
  let out = '';
  let last = 0;
  let at = text.indexOf('%{');
  while (at !== -1) {
    const m = PATTERN_REFERENCE.exec(text.slice(at));
    if (m === null || m.index !== 0) {
      // `%{` not followed by a word is a literal brace to Oniguruma; anything else is a typo.
      if (/^%\{\w/.test(text.slice(at, at + 3))) {
        const snippet = text.slice(at, at + 40);
        throw new GrokPatternError(stack[stack.length - 1] ?? text, `${owner}: malformed pattern reference ${JSON.stringify(snippet)}`);
      }
      at = text.indexOf('%{', at + 2);
      continue;
    }
    const [whole, name, sub, inline] = m;
    out += text.slice(last, at);
    if (inline !== undefined) ctx.local.set(name, inline);
    const body = ctx.local.get(name) ?? ctx.library.get(name)?.expression;
    if (body === undefined) {
      throw new GrokPatternError(
        stack[stack.length - 1] ?? name,
        `${owner} refers to unknown pattern ${name}; define it or load the pattern file that does`,
      );
    }
    if (stack.includes(name)) {
      const cycle = [...stack.slice(stack.indexOf(name)), name].join(' -> ');
      throw new GrokPatternError(name, `grok pattern ${name} refers back to itself: ${cycle}`);
    }
    if (stack.length >= MAX_DEPTH) {
      throw new GrokPatternError(name, `grok pattern references nest deeper than ${MAX_DEPTH} levels: ${stack.join(' -> ')}`);
    }
    const def = ctx.library.get(name);
    const innerOwner = `grok pattern ${name}${def && !ctx.local.has(name) ? ` (${def.source})` : ''}`;
    const inner = expand(body, ctx, [...stack, name], innerOwner);
    if (sub !== undefined) {
      const cap = parseCaptureName(sub);
      ctx.captures.push(cap);
      out += `(?<${CAPTURE_MARK}${ctx.captures.length - 1}>${inner})`;
    } else {
      out += `(?:${inner})`;
    }
    ctx.length += inner.length;
    if (ctx.length > MAX_EXPANDED_LENGTH) {
      throw new GrokPatternError(name, `${owner} expands to more than ${MAX_EXPANDED_LENGTH} characters`);
    }
    last = at + whole.length;
    at = text.indexOf('%{', last);
  }
  return last === 0 ? text : out + text.slice(last);
}

const EXTRACT_HELPERS = { toInt: rubyToInt, toFloat: rubyToFloat, put, setPath };

/**
 * Generates the function that turns a match into fields, one straight-line statement per
 * capture with the field name as a constant key. Compared with a loop over the slot tables,
 * V8 then sees the same property stores in the same order on every call (monomorphic, a stable
 * object shape) instead of one megamorphic keyed store. Keys are embedded with JSON.stringify,
 * group indexes are integers, so configuration cannot inject code.
 */
function buildExtractor(groups: number[], fields: FieldSpec[], types: ValueType[], keepEmpty: boolean): (m: RegExpExecArray) => GrokFields {
  const paths: string[][] = [];
  let body = 'const o = {};\nlet v;\n';
  for (let i = 0; i < groups.length; i++) {
    const f = fields[i];
    const value = types[i] === VALUE_INT ? 'h.toInt(v)' : types[i] === VALUE_FLOAT ? 'h.toFloat(v)' : 'v';
    body += `v = m[${groups[i]}];\nif (v !== undefined${keepEmpty ? '' : ' && v.length !== 0'}) `;
    if (f.path !== null) {
      paths.push(f.path);
      body += `h.setPath(o, h.paths[${paths.length - 1}], ${value}, ${f.multi});\n`;
    } else if (f.multi) {
      body += `h.put(o, ${JSON.stringify(f.key)}, ${value});\n`;
    } else {
      body += `o[${JSON.stringify(f.key)}] = ${value};\n`;
    }
  }
  body += 'return o;';
  const factory = new Function('h', `'use strict';\nreturn function extractFields(m) {\n${body}\n};`) as (h: unknown) => (m: RegExpExecArray) => GrokFields;
  return factory({ ...EXTRACT_HELPERS, paths });
}

/**
 * Gives captures inside repeated groups Oniguruma's value (from the last iteration the group
 * took part in) where JavaScript left them undefined: walks the repeated span one iteration at
 * a time with the iteration regex. When that walk does not cover the span exactly (the
 * original match split it differently), the match keeps JavaScript's values.
 */
function recoverRepeatedCaptures(repeats: RepeatSpec[], m: RegExpExecArray): void {
  for (let r = 0; r < repeats.length; r++) {
    const spec = repeats[r];
    const span = m[spec.span];
    if (span === undefined || span.length === 0) continue;
    const pairs = spec.pairs;
    let missing = false;
    for (let i = 0; i < pairs.length; i++) if (m[pairs[i][1]] === undefined) missing = true;
    if (!missing) continue;
    const last: (string | undefined)[] = new Array(pairs.length);
    let pos = 0;
    while (pos < span.length) {
      spec.body.lastIndex = pos;
      const it = spec.body.exec(span);
      if (it === null || it[0].length === 0) break;
      for (let i = 0; i < pairs.length; i++) {
        const v = it[pairs[i][0]];
        if (v !== undefined) last[i] = v;
      }
      pos += it[0].length;
    }
    if (pos !== span.length) continue;
    for (let i = 0; i < pairs.length; i++) {
      if (m[pairs[i][1]] === undefined && last[i] !== undefined) m[pairs[i][1]] = last[i]!;
    }
  }
}

function put(obj: GrokFields, key: string, value: GrokScalar): void {
  const prev = obj[key];
  if (prev === undefined) obj[key] = value;
  else if (Array.isArray(prev)) prev.push(value);
  else if (typeof prev === 'object') obj[key] = value;
  else obj[key] = [prev, value];
}

function setPath(out: GrokFields, path: string[], value: GrokScalar, multi: boolean): void {
  let obj = out;
  for (let i = 0; i < path.length - 1; i++) {
    let next = obj[path[i]];
    if (next === undefined || typeof next !== 'object' || Array.isArray(next)) {
      next = {};
      obj[path[i]] = next;
    }
    obj = next;
  }
  const key = path[path.length - 1];
  if (multi) put(obj, key, value);
  else obj[key] = value;
}

/** Ruby's String#to_i: the leading integer, else 0. */
export function rubyToInt(text: string): number {
  const n = parseInt(text, 10);
  return Number.isNaN(n) ? 0 : n;
}

/** Ruby's String#to_f: the leading decimal number, else 0. */
export function rubyToFloat(text: string): number {
  const n = parseFloat(text);
  return Number.isFinite(n) ? n : 0;
}
