/**
 * The tap's filter expressions: a small language over the tapped item's fields.
 *
 *   expr    := or
 *   or      := and ("or" and)*
 *   and     := unary ("and" unary)*
 *   unary   := "not" unary | "(" expr ")" | compare
 *   compare := path [op value]            a bare path: the field exists and is not false/null/""
 *   op      := == != =~ !~ > >= < <=
 *   value   := "string" | 'string' | number | /regex/flags | true | false | null
 *   path    := name ("." name | "[" index "]")*   name: letters, digits, _ @ - ; or "quoted"
 *
 * `==`/`!=` compare as JSON values (a number and a numeric string are equal); `=~`/`!~` test a
 * regular expression against the value as text (its first MAX_TEST_CHARS characters). A path that
 * reaches an array matches when any element does (`tags == "env:prod"`). A missing field makes
 * every comparison false except `!=` and `!~`. Regular expressions with nested quantifiers
 * (`(a+)+`) are refused: they can take exponential time, and the filter runs on the pipeline's
 * own thread.
 */
import { PlumbError } from './errors.ts';

/** Longest expression accepted. */
export const MAX_FILTER_CHARS = 2000;
/** Text a regular expression is tested against is cut here. */
export const MAX_TEST_CHARS = 4096;

export type Filter = (item: unknown) => boolean;

type Token =
  | { t: 'op'; v: string; at: number }
  | { t: 'word'; v: string; at: number }
  | { t: 'str'; v: string; at: number }
  | { t: 'num'; v: number; at: number }
  | { t: 're'; v: RegExp; at: number }
  | { t: 'punct'; v: string; at: number };

function fail(at: number, message: string): never {
  throw new PlumbError('PLUMB_ERR_TAP_FILTER', `filter, at character ${at + 1}: ${message}`);
}

const OPS = ['==', '!=', '=~', '!~', '>=', '<=', '>', '<'];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op !== undefined) {
      out.push({ t: 'op', v: op, at: i });
      i += op.length;
      continue;
    }
    if (c === '(' || c === ')' || c === '.' || c === '[' || c === ']') {
      out.push({ t: 'punct', v: c, at: i });
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let text = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          const e = src[j + 1];
          text += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
        } else text += src[j++];
      }
      if (j >= src.length) fail(i, `the string is not closed (a ${c} is missing)`);
      out.push({ t: 'str', v: text, at: i });
      i = j + 1;
      continue;
    }
    if (c === '/') {
      let j = i + 1;
      let inClass = false;
      while (j < src.length && (src[j] !== '/' || inClass)) {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        j++;
      }
      if (j >= src.length) fail(i, 'the regular expression is not closed (a / is missing)');
      const body = src.slice(i + 1, j);
      let k = j + 1;
      while (k < src.length && /[a-z]/.test(src[k])) k++;
      const flags = src.slice(j + 1, k);
      if (!/^[ims]*$/.test(flags)) fail(j + 1, `regular expression flags may be i, m, s (not "${flags}")`);
      if (nestedQuantifier(body)) fail(i, `/${body}/ repeats a group that itself repeats (like (a+)+): it can take exponential time, write it without the nesting`);
      let re: RegExp;
      try {
        re = new RegExp(body, flags);
      } catch (err) {
        fail(i, `/${body}/ is not a valid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
      }
      out.push({ t: 're', v: re, at: i });
      i = k;
      continue;
    }
    const num = /^-?\d+(\.\d+)?([eE][-+]?\d+)?/.exec(src.slice(i));
    if (num !== null && (c === '-' || /\d/.test(c))) {
      out.push({ t: 'num', v: Number(num[0]), at: i });
      i += num[0].length;
      continue;
    }
    const word = /^[A-Za-z_@][A-Za-z0-9_@-]*/.exec(src.slice(i));
    if (word !== null) {
      out.push({ t: 'word', v: word[0], at: i });
      i += word[0].length;
      continue;
    }
    fail(i, `unexpected "${c}"`);
  }
  return out;
}

/**
 * A group that is repeated and holds a repetition itself: `(a+)+`, `(\w*)*`, `(?:a|b+){2,}`.
 * Deliberately simple (character classes and escapes are skipped); it refuses some safe
 * patterns rather than accept a dangerous one.
 */
function nestedQuantifier(body: string): boolean {
  const stack: boolean[] = [];
  let inner = false;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '[') {
      while (i < body.length && body[i] !== ']') i += body[i] === '\\' ? 2 : 1;
      continue;
    }
    if (c === '(') {
      stack.push(inner);
      inner = false;
    } else if (c === ')') {
      const had: boolean = inner;
      inner = stack.pop() ?? false;
      const next = body[i + 1];
      const repeated = next === '*' || next === '+' || next === '{';
      if (had && repeated) return true;
      inner = inner || had || repeated;
    } else if (c === '*' || c === '+' || c === '{') {
      inner = true;
    }
  }
  return false;
}

type Node =
  | { k: 'and' | 'or'; a: Node; b: Node }
  | { k: 'not'; a: Node }
  | { k: 'cmp'; path: (string | number)[]; op: string | null; value: unknown };

class Parser {
  private i = 0;
  private readonly tokens: Token[];
  private readonly src: string;

  constructor(src: string) {
    this.src = src;
    this.tokens = tokenize(src);
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  private isWord(v: string): boolean {
    const t = this.peek();
    return t?.t === 'word' && t.v === v;
  }

  parse(): Node {
    if (this.tokens.length === 0) fail(0, 'empty expression; try field == "value"');
    const n = this.or();
    const t = this.peek();
    if (t !== undefined) fail(t.at, `unexpected ${describe(t)}; join conditions with "and" or "or"`);
    return n;
  }

  private or(): Node {
    let n = this.and();
    while (this.isWord('or')) {
      this.i++;
      n = { k: 'or', a: n, b: this.and() };
    }
    return n;
  }

  private and(): Node {
    let n = this.unary();
    while (this.isWord('and')) {
      this.i++;
      n = { k: 'and', a: n, b: this.unary() };
    }
    return n;
  }

  private unary(): Node {
    const t = this.peek();
    if (t === undefined) fail(this.src.length, 'the expression ends where a condition was expected');
    if (t.t === 'word' && t.v === 'not') {
      this.i++;
      return { k: 'not', a: this.unary() };
    }
    if (t.t === 'punct' && t.v === '(') {
      this.i++;
      const n = this.or();
      const close = this.peek();
      if (close?.t !== 'punct' || close.v !== ')') fail(close?.at ?? this.src.length, 'a ")" is missing');
      this.i++;
      return n;
    }
    return this.compare();
  }

  private compare(): Node {
    const path = this.path();
    const t = this.peek();
    if (t?.t !== 'op') return { k: 'cmp', path, op: null, value: null };
    this.i++;
    const v = this.peek();
    if (v === undefined) fail(this.src.length, `a value is missing after ${t.v}`);
    this.i++;
    if (t.v === '=~' || t.v === '!~') {
      if (v.t !== 're') fail(v.at, `${t.v} takes a regular expression like /^GET /`);
      return { k: 'cmp', path, op: t.v, value: v.v };
    }
    let value: unknown;
    if (v.t === 'str' || v.t === 'num') value = v.v;
    else if (v.t === 'word' && (v.v === 'true' || v.v === 'false' || v.v === 'null')) value = JSON.parse(v.v) as unknown;
    else fail(v.at, `expected a value ("text", a number, true, false or null) after ${t.v}, not ${describe(v)}${v.t === 'word' ? ' (quote text)' : ''}`);
    if ((t.v === '>' || t.v === '>=' || t.v === '<' || t.v === '<=') && typeof value !== 'number' && typeof value !== 'string') fail(v.at, `${t.v} compares numbers or text`);
    return { k: 'cmp', path, op: t.v, value };
  }

  private path(): (string | number)[] {
    const segments: (string | number)[] = [];
    const first = this.peek();
    if (first === undefined || (first.t !== 'word' && first.t !== 'str')) fail(first?.at ?? this.src.length, `expected a field name, not ${first === undefined ? 'the end' : describe(first)}`);
    if (first.t === 'word' && ['and', 'or'].includes(first.v)) fail(first.at, `expected a field name before "${first.v}"`);
    segments.push(first.v);
    this.i++;
    for (;;) {
      const t = this.peek();
      if (t?.t === 'punct' && t.v === '.') {
        this.i++;
        const name = this.peek();
        if (name === undefined || (name.t !== 'word' && name.t !== 'str')) fail(name?.at ?? this.src.length, 'expected a field name after "."');
        segments.push(name.v);
        this.i++;
      } else if (t?.t === 'punct' && t.v === '[') {
        this.i++;
        const idx = this.peek();
        if (idx?.t !== 'num' || !Number.isInteger(idx.v) || idx.v < 0) fail(idx?.at ?? this.src.length, 'expected an index like [0]');
        this.i++;
        const close = this.peek();
        if (close?.t !== 'punct' || close.v !== ']') fail(close?.at ?? this.src.length, 'a "]" is missing');
        this.i++;
        segments.push(idx.v);
      } else return segments;
    }
  }
}

function describe(t: Token): string {
  if (t.t === 'str') return `"${t.v}"`;
  if (t.t === 're') return String(t.v);
  return `"${String(t.v)}"`;
}

function resolve(item: unknown, path: readonly (string | number)[]): unknown {
  let v = item;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    if (Array.isArray(v) && typeof seg === 'string') {
      // a name applied to an array applies to each element: spans[].name
      v = v.map((e) => (e !== null && typeof e === 'object' ? (e as Record<string, unknown>)[seg] : undefined)).filter((e) => e !== undefined);
      continue;
    }
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function text(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v) ?? '';
  return s.length > MAX_TEST_CHARS ? s.slice(0, MAX_TEST_CHARS) : s;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'string') return b.trim() !== '' && Number(b) === a;
  if (typeof a === 'string' && typeof b === 'number') return a.trim() !== '' && Number(a) === b;
  return false;
}

function order(a: unknown, op: string, b: unknown): boolean {
  let x: number | string;
  let y: number | string;
  if (typeof b === 'number') {
    x = typeof a === 'number' ? a : typeof a === 'string' && a.trim() !== '' ? Number(a) : NaN;
    y = b;
    if (Number.isNaN(x)) return false;
  } else {
    if (typeof a !== 'string') return false;
    x = a;
    y = b as string;
  }
  return op === '>' ? x > y : op === '>=' ? x >= y : op === '<' ? x < y : x <= y;
}

function one(v: unknown, op: string, value: unknown): boolean {
  switch (op) {
    case '==':
      return equal(v, value);
    case '=~':
      return (value as RegExp).test(text(v));
    default:
      return order(v, op, value);
  }
}

function evaluate(n: Node, item: unknown): boolean {
  switch (n.k) {
    case 'and':
      return evaluate(n.a, item) && evaluate(n.b, item);
    case 'or':
      return evaluate(n.a, item) || evaluate(n.b, item);
    case 'not':
      return !evaluate(n.a, item);
    case 'cmp': {
      const v = resolve(item, n.path);
      if (n.op === null) return v !== undefined && v !== null && v !== false && v !== '' && !(Array.isArray(v) && v.length === 0);
      const negated = n.op === '!=' || n.op === '!~';
      const op = n.op === '!=' ? '==' : n.op === '!~' ? '=~' : n.op;
      if (v === undefined) return negated;
      const hit = Array.isArray(v) && !(Array.isArray(n.value)) ? v.some((e) => one(e, op, n.value)) : one(v, op, n.value);
      return negated ? !hit : hit;
    }
  }
}

/** Compiles an expression; throws PLUMB_ERR_TAP_FILTER naming the place and the problem. */
export function compileFilter(src: string): Filter {
  if (src.length > MAX_FILTER_CHARS) throw new PlumbError('PLUMB_ERR_TAP_FILTER', `filter: longer than ${MAX_FILTER_CHARS} characters`);
  const tree = new Parser(src).parse();
  return (item) => evaluate(tree, item);
}
