/**
 * Translation of Oniguruma (Ruby syntax) regular expressions, the dialect grok patterns are
 * written in, into JavaScript RegExp source for the `u` flag.
 *
 * Why `u`: it makes `.` and quantifiers work on code points (as Oniguruma does on UTF-8 text)
 * and gives us `\p{…}`, which POSIX brackets like `[[:alnum:]]` need to stay Unicode-aware.
 * Its cost is strictness about escapes (`\"`, `\-` outside a class, a lone `{`), so every
 * escape and literal is re-emitted in a form `u` accepts.
 *
 * What changes on the way:
 * - atomic groups `(?>X)` and possessive quantifiers `X*+` become `(?=(X))\N`: a lookahead
 *   is never re-entered on backtracking, so the captured text is consumed as one unit (the
 *   backreference is emitted as `(?:\N)` so a digit after it cannot extend the number);
 * - named groups become plain capturing groups, listed in `captures` with their names, so
 *   duplicate names are allowed; when a pattern has named groups, unnamed `(…)` groups do
 *   not capture (Oniguruma's rule), which also keeps the match array small;
 * - `\h` `\H` (hex digit), `\A` `\z` `\Z` `\G`, POSIX brackets, nested classes and `&&`;
 * - inline options: `(?i)` becomes a modifier group `(?i:…)`; `(?m)` (Ruby's dot-all) is
 *   applied while translating `.`; `(?x)` drops whitespace and comments while parsing;
 * - `.` becomes `[^\n]` (only `\n` ends a line in Ruby; JavaScript's `.` also stops at `\r`).
 *
 * `^` and `$` are line anchors in Ruby. They are emitted as `^`/`$`; `lineAnchors` tells the
 * caller to use the `m` flag when the subject contains a newline.
 * Constructs JavaScript cannot express (subexpression calls, absent operator, conditionals,
 * `\K`, `\X`) are rejected with a RegexTranslationError that says which and where.
 */

export class RegexTranslationError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at offset ${offset}`);
    this.name = 'RegexTranslationError';
    this.offset = offset;
  }
}

export interface TranslatedCapture {
  /** Group number in the JavaScript regex (index into the match array). */
  index: number;
  /** The group's name; undefined for an unnamed group in a pattern without named groups. */
  name: string | undefined;
}

export interface TranslatedRegex {
  source: string;
  /** User-visible capturing groups in order; helper groups for atomic emulation are not listed. */
  captures: TranslatedCapture[];
  /** The pattern uses `^` or `$` (line anchors in Ruby). */
  lineAnchors: boolean;
  /** Repeated groups holding captures (see TranslatedRepeat); empty for most patterns. */
  repeats: TranslatedRepeat[];
}

/**
 * JavaScript clears the captures inside a repeated group at every iteration, so in
 * `(?: (?:H=(?<host>\S+)|P=(?<proto>\S+)))*` only the last iteration's capture survives;
 * Oniguruma keeps each group's value from the last iteration it took part in. For such a
 * repeat the translation wraps the whole repetition in a capturing group (`span`) and supplies
 * a sticky regex for one iteration (`source`), so the caller can walk the matched span one
 * iteration at a time and recover the values (`pairs`: capture index in the iteration regex →
 * capture index in the main regex).
 */
export interface TranslatedRepeat {
  span: number;
  source: string;
  pairs: [number, number][];
}

interface Options {
  i: boolean;
  dotAll: boolean;
  extended: boolean;
}

type Node = AltNode | GroupNode | QuantNode | RawNode | BackrefNode;

interface AltNode {
  t: 'alt';
  alts: Node[][];
}

type GroupKind = 'capture' | 'noncap' | 'atomic' | 'ahead' | 'nahead' | 'behind' | 'nbehind';

interface GroupNode {
  t: 'group';
  kind: GroupKind;
  name: string | undefined;
  /** Set when the group switches case-insensitivity relative to its parent. */
  icase: boolean | undefined;
  body: AltNode;
  /** Order among unnamed capture groups (1-based), for numbered backreferences. */
  ordinal: number;
  jsIndex: number;
}

interface QuantNode {
  t: 'quant';
  atom: Node;
  min: number;
  max: number;
  mode: 'greedy' | 'lazy' | 'possessive';
  /** Written with braces: `{n,m}+` is a nested repeat in Ruby, not possessive. */
  interval: boolean;
}

interface RawNode {
  t: 'raw';
  src: string;
  /** Can take a quantifier directly (false for anchors and lookaround-like text). */
  atom: boolean;
}

interface BackrefNode {
  t: 'backref';
  num: number | undefined;
  name: string | undefined;
  offset: number;
}

const SYNTAX_CHARS = new Set(['^', '$', '\\', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '/']);

/** Fragments for POSIX bracket names, as class contents; Unicode-aware like Oniguruma's. */
const POSIX: Record<string, { set: string; negated?: string }> = {
  alnum: { set: '\\p{L}\\p{M}\\p{Nd}' },
  alpha: { set: '\\p{L}\\p{M}' },
  ascii: { set: '\\x00-\\x7F', negated: '\\u0080-\\u{10FFFF}' },
  blank: { set: '\\p{Zs}\\t' },
  cntrl: { set: '\\p{Cc}', negated: '\\P{Cc}' },
  digit: { set: '\\p{Nd}', negated: '\\P{Nd}' },
  graph: { set: '\\x21-\\x7E\\u00A1-\\u{10FFFF}' },
  lower: { set: '\\p{Ll}', negated: '\\P{Ll}' },
  print: { set: '\\x20-\\x7E\\u00A0-\\u{10FFFF}' },
  punct: { set: '\\p{P}$+<=>\\^`|~' },
  space: { set: '\\s', negated: '\\S' },
  upper: { set: '\\p{Lu}', negated: '\\P{Lu}' },
  xdigit: { set: '0-9A-Fa-f', negated: '\\P{AHex}' },
  word: { set: '\\p{L}\\p{M}\\p{Nd}\\p{Pc}' },
};

/** Onigmo property names that JavaScript spells differently (or not at all). */
const PROPERTY_ALIASES: Record<string, string> = {
  alnum: '[\\p{L}\\p{M}\\p{Nd}]',
  alpha: '[\\p{L}\\p{M}]',
  blank: '[\\p{Zs}\\t]',
  cntrl: '\\p{Cc}',
  digit: '\\p{Nd}',
  lower: '\\p{Ll}',
  upper: '\\p{Lu}',
  punct: '\\p{P}',
  space: '\\s',
  word: '[\\p{L}\\p{M}\\p{Nd}\\p{Pc}]',
  xdigit: '\\p{AHex}',
  ascii: '[\\x00-\\x7F]',
  any: '[\\s\\S]',
};

export function translateOniguruma(pattern: string): TranslatedRegex {
  return new Translator(pattern).run();
}

class Translator {
  private readonly p: string;
  private pos = 0;
  private hasNamed = false;
  private lineAnchors = false;
  private unnamedCount = 0;
  private readonly groups: GroupNode[] = [];
  private readonly backrefs: BackrefNode[] = [];
  private lookbehindDepth = 0;
  private readonly repeats: TranslatedRepeat[] = [];
  /** Set while emitting the body of a repeat on its own: nested repeats get no spans. */
  private inRepeatBody = false;

  constructor(pattern: string) {
    this.p = pattern;
  }

  run(): TranslatedRegex {
    const root = this.parseAlternation({ i: false, dotAll: false, extended: false });
    if (this.pos < this.p.length) throw new RegexTranslationError('unmatched close parenthesis', this.pos);
    for (const ref of this.backrefs) {
      if (ref.num !== undefined && this.hasNamed) {
        throw new RegexTranslationError('numbered backreference in a pattern with named groups (use \\k<name>)', ref.offset);
      }
    }
    const out: string[] = [];
    const captures: TranslatedCapture[] = [];
    const counter = { n: 0 };
    this.emitAlt(root, out, captures, counter, false);
    // Backreferences are resolved last: their target's number is known only after emission.
    return { source: this.resolveBackrefs(out.join('')), captures, lineAnchors: this.lineAnchors, repeats: this.repeats };
  }

  // ---- parsing -------------------------------------------------------------------------------

  private parseAlternation(opts: Options): AltNode {
    const alts: Node[][] = [];
    let seq: Node[] = [];
    while (true) {
      const stop = this.parseSequence(opts, seq);
      if (stop === 'bar') {
        alts.push(seq);
        seq = [];
        this.pos++;
        continue;
      }
      alts.push(seq);
      return { t: 'alt', alts };
    }
  }

  /** Parses items into seq until `|`, `)` or the end. An isolated option consumes the rest. */
  private parseSequence(opts: Options, seq: Node[]): 'bar' | 'end' {
    const p = this.p;
    while (this.pos < p.length) {
      const c = p[this.pos];
      if (opts.extended) {
        if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
          this.pos++;
          continue;
        }
        if (c === '#') {
          const nl = p.indexOf('\n', this.pos);
          this.pos = nl === -1 ? p.length : nl + 1;
          continue;
        }
      }
      if (c === '|') return 'bar';
      if (c === ')') return 'end';
      if (c === '*' || c === '+' || c === '?' || (c === '{' && this.intervalAt(this.pos) !== undefined)) {
        if (seq.length === 0) throw new RegexTranslationError('target of repeat operator is not specified', this.pos);
        this.parseQuantifier(seq);
        continue;
      }
      if (c === '(') {
        const isolated = this.parseGroup(opts, seq);
        if (isolated) return 'end';
        continue;
      }
      if (c === '[') {
        seq.push({ t: 'raw', src: this.parseClass(), atom: true });
        continue;
      }
      if (c === '\\') {
        seq.push(this.parseEscape());
        continue;
      }
      this.pos++;
      if (c === '.') {
        seq.push({ t: 'raw', src: opts.dotAll ? '[\\s\\S]' : '[^\\n]', atom: true });
      } else if (c === '^' || c === '$') {
        this.lineAnchors = true;
        seq.push({ t: 'raw', src: c, atom: false });
      } else {
        // Literal; take a whole code point so a quantifier applies to all of it.
        let ch = c;
        const code = c.charCodeAt(0);
        if (code >= 0xd800 && code <= 0xdbff && this.pos < p.length) {
          const next = p.charCodeAt(this.pos);
          if (next >= 0xdc00 && next <= 0xdfff) {
            ch += p[this.pos];
            this.pos++;
          }
        }
        seq.push({ t: 'raw', src: literal(ch), atom: true });
      }
    }
    return 'end';
  }

  /** `{n}`, `{n,}`, `{,m}`, `{n,m}` at i, or undefined when the brace is a literal. */
  private intervalAt(i: number): { min: number; max: number; end: number } | undefined {
    const m = /^\{(\d*)(?:(,)(\d*))?\}/.exec(this.p.slice(i, i + 24));
    if (m === null) return undefined;
    if (m[1] === '' && (m[3] === undefined || m[3] === '')) return undefined;
    const min = m[1] === '' ? 0 : Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    return { min, max, end: i + m[0].length };
  }

  private parseQuantifier(seq: Node[]): void {
    const p = this.p;
    const start = this.pos;
    const c = p[this.pos];
    let min: number;
    let max: number;
    let interval = false;
    if (c === '*') {
      min = 0;
      max = Infinity;
      this.pos++;
    } else if (c === '+') {
      min = 1;
      max = Infinity;
      this.pos++;
    } else if (c === '?') {
      min = 0;
      max = 1;
      this.pos++;
    } else {
      const iv = this.intervalAt(this.pos)!;
      min = iv.min;
      max = iv.max;
      interval = true;
      this.pos = iv.end;
    }
    if (min > max) throw new RegexTranslationError('upper bound of a repeat is smaller than the lower bound', start);
    let mode: QuantNode['mode'] = 'greedy';
    if (p[this.pos] === '?') {
      mode = 'lazy';
      this.pos++;
    } else if (p[this.pos] === '+' && !interval) {
      mode = 'possessive';
      this.pos++;
    }
    const prev = seq[seq.length - 1];
    // Ruby reduces `X?*`, `X+*`, `X**` to `X*`; anything else stacked is a nested repeat.
    if (prev.t === 'quant' && !prev.interval && !interval && prev.mode === 'greedy' && mode === 'greedy' && max === Infinity && min === 0) {
      prev.min = 0;
      prev.max = Infinity;
      return;
    }
    seq[seq.length - 1] = { t: 'quant', atom: prev, min, max, mode, interval };
  }

  /** Parses a group starting at `(`. Returns true when it was an isolated option `(?i)`. */
  private parseGroup(opts: Options, seq: Node[]): boolean {
    const p = this.p;
    const start = this.pos;
    this.pos++;
    let kind: GroupKind = 'capture';
    let name: string | undefined;
    let inner = opts;
    let icase: boolean | undefined;
    if (p[this.pos] === '?') {
      this.pos++;
      const c = p[this.pos];
      if (c === '#') {
        const end = p.indexOf(')', this.pos);
        if (end === -1) throw new RegexTranslationError('end pattern in group', start);
        this.pos = end + 1;
        return false;
      } else if (c === ':') {
        kind = 'noncap';
        this.pos++;
      } else if (c === '>') {
        kind = 'atomic';
        this.pos++;
      } else if (c === '=') {
        kind = 'ahead';
        this.pos++;
      } else if (c === '!') {
        kind = 'nahead';
        this.pos++;
      } else if (c === '<' && (p[this.pos + 1] === '=' || p[this.pos + 1] === '!')) {
        kind = p[this.pos + 1] === '=' ? 'behind' : 'nbehind';
        this.pos += 2;
      } else if (c === '<' || c === "'" || (c === 'P' && p[this.pos + 1] === '<')) {
        if (c === 'P') this.pos++;
        const close = p[this.pos] === "'" ? "'" : '>';
        const end = p.indexOf(close, this.pos + 1);
        if (end === -1) throw new RegexTranslationError('invalid group name', this.pos);
        name = p.slice(this.pos + 1, end);
        if (name === '') throw new RegexTranslationError('group name is empty', this.pos);
        this.pos = end + 1;
        this.hasNamed = true;
      } else if (c === '~') {
        throw new RegexTranslationError('the absent operator (?~…) is not supported', start);
      } else if (c === '(') {
        throw new RegexTranslationError('conditional groups (?(cond)…) are not supported', start);
      } else {
        const m = /^([imx]*)(?:-([imx]*))?([:)])/.exec(p.slice(this.pos, this.pos + 12));
        if (m === null) throw new RegexTranslationError('undefined group option', start);
        inner = { ...opts };
        for (const f of m[1]) setOption(inner, f, true);
        for (const f of m[2] ?? '') setOption(inner, f, false);
        if (inner.i !== opts.i) icase = inner.i;
        this.pos += m[0].length;
        if (m[3] === ')') {
          // Isolated option: applies to the rest of the enclosing group, alternatives included.
          const body = this.parseAlternation(inner);
          seq.push(this.newGroup('noncap', undefined, icase, body));
          return true;
        }
        kind = 'noncap';
      }
    }
    const group = this.newGroup(kind, name, icase, { t: 'alt', alts: [] });
    if (kind === 'capture' && name === undefined) group.ordinal = ++this.unnamedCount;
    const behind = kind === 'behind' || kind === 'nbehind';
    if (behind) this.lookbehindDepth++;
    group.body = this.parseAlternation(inner);
    if (behind) this.lookbehindDepth--;
    if (p[this.pos] !== ')') throw new RegexTranslationError('end pattern with unmatched parenthesis', start);
    this.pos++;
    // Atomic groups inside a lookbehind cannot use the lookahead+backreference trick (a
    // lookbehind matches right to left); there they only lose their no-backtrack promise.
    if (kind === 'atomic' && this.lookbehindDepth > 0) group.kind = 'noncap';
    seq.push(group);
    return false;
  }

  private newGroup(kind: GroupKind, name: string | undefined, icase: boolean | undefined, body: AltNode): GroupNode {
    const g: GroupNode = { t: 'group', kind, name, icase, body, ordinal: 0, jsIndex: 0 };
    this.groups.push(g);
    return g;
  }

  private parseEscape(): Node {
    const p = this.p;
    const start = this.pos;
    this.pos++;
    if (this.pos >= p.length) throw new RegexTranslationError('end pattern at escape', start);
    const c = p[this.pos++];
    switch (c) {
      case 'd':
      case 'D':
      case 'w':
      case 'W':
      case 's':
      case 'S':
        return { t: 'raw', src: `\\${c}`, atom: true };
      case 'b':
      case 'B':
        return { t: 'raw', src: `\\${c}`, atom: false };
      case 'h':
        return { t: 'raw', src: '\\p{AHex}', atom: true };
      case 'H':
        return { t: 'raw', src: '\\P{AHex}', atom: true };
      case 'A':
      case 'G':
        return { t: 'raw', src: '(?<![\\s\\S])', atom: false };
      case 'z':
        return { t: 'raw', src: '(?![\\s\\S])', atom: false };
      case 'Z':
        return { t: 'raw', src: '(?=\\n?(?![\\s\\S]))', atom: false };
      case 'R':
        return { t: 'raw', src: '(?:\\r\\n|[\\n\\v\\f\\r\\u0085\\u2028\\u2029])', atom: true };
      case 'k':
        return this.parseNamedBackref(start);
      case 'g':
        throw new RegexTranslationError('subexpression calls (\\g<…>) are not supported', start);
      case 'K':
        throw new RegexTranslationError('\\K (keep) is not supported', start);
      case 'X':
        throw new RegexTranslationError('\\X (grapheme cluster) is not supported', start);
      case 'p':
      case 'P':
        return { t: 'raw', src: this.parseProperty(c === 'P', start, false), atom: true };
      default:
        break;
    }
    if (c >= '1' && c <= '9') {
      let digits = c;
      while (this.pos < p.length && p[this.pos] >= '0' && p[this.pos] <= '9') digits += p[this.pos++];
      const ref: BackrefNode = { t: 'backref', num: Number(digits), name: undefined, offset: start };
      this.backrefs.push(ref);
      return ref;
    }
    this.pos--;
    const cp = this.parseCharEscape(start);
    return { t: 'raw', src: literal(String.fromCodePoint(cp)), atom: true };
  }

  /** Escapes that stand for one character (shared by classes); pos is at the letter. */
  private parseCharEscape(start: number): number {
    const p = this.p;
    const c = p[this.pos++];
    switch (c) {
      case 't':
        return 0x09;
      case 'n':
        return 0x0a;
      case 'r':
        return 0x0d;
      case 'f':
        return 0x0c;
      case 'v':
        return 0x0b;
      case 'a':
        return 0x07;
      case 'e':
        return 0x1b;
      case 'x': {
        if (p[this.pos] === '{') {
          const end = p.indexOf('}', this.pos);
          const hex = end === -1 ? '' : p.slice(this.pos + 1, end);
          if (!/^[0-9A-Fa-f]{1,8}$/.test(hex) || parseInt(hex, 16) > 0x10ffff) throw new RegexTranslationError('invalid code point value', start);
          this.pos = end + 1;
          return parseInt(hex, 16);
        }
        const m = /^[0-9A-Fa-f]{1,2}/.exec(p.slice(this.pos, this.pos + 2));
        if (m === null) throw new RegexTranslationError('invalid hexadecimal escape', start);
        this.pos += m[0].length;
        return parseInt(m[0], 16);
      }
      case 'u': {
        const m = /^[0-9A-Fa-f]{4}/.exec(p.slice(this.pos, this.pos + 4));
        if (m === null) throw new RegexTranslationError('invalid Unicode escape', start);
        this.pos += 4;
        return parseInt(m[0], 16);
      }
      case '0': {
        const m = /^[0-7]{0,2}/.exec(p.slice(this.pos, this.pos + 2))!;
        this.pos += m[0].length;
        return m[0] === '' ? 0 : parseInt(m[0], 8);
      }
      case 'c':
      case 'C':
      case 'M':
        throw new RegexTranslationError(`control/meta escape \\${c} is not supported`, start);
      default: {
        // Any other escaped character stands for itself (Oniguruma warns for letters, too).
        const cp = p.codePointAt(this.pos - 1)!;
        if (cp > 0xffff) this.pos++;
        return cp;
      }
    }
  }

  private parseNamedBackref(start: number): Node {
    const p = this.p;
    const open = p[this.pos];
    const close = open === '<' ? '>' : open === "'" ? "'" : undefined;
    const end = close === undefined ? -1 : p.indexOf(close, this.pos + 1);
    if (end === -1) throw new RegexTranslationError('invalid backreference', start);
    const name = p.slice(this.pos + 1, end);
    this.pos = end + 1;
    const ref: BackrefNode = /^\d+$/.test(name)
      ? { t: 'backref', num: Number(name), name: undefined, offset: start }
      : { t: 'backref', num: undefined, name, offset: start };
    this.backrefs.push(ref);
    return ref;
  }

  /** `\p{Name}`, `\p{^Name}`, `\P{Name}` → a JavaScript atom (or class item when inClass). */
  private parseProperty(negated: boolean, start: number, inClass: boolean): string {
    const p = this.p;
    if (p[this.pos] !== '{') throw new RegexTranslationError('invalid character property', start);
    const end = p.indexOf('}', this.pos);
    if (end === -1) throw new RegexTranslationError('invalid character property', start);
    let name = p.slice(this.pos + 1, end);
    this.pos = end + 1;
    if (name.startsWith('^')) {
      negated = !negated;
      name = name.slice(1);
    }
    const alias = PROPERTY_ALIASES[name.toLowerCase()];
    if (alias !== undefined) {
      if (!negated && (!inClass || !alias.startsWith('['))) return alias;
      if (!negated) return alias.slice(1, -1);
      const posix = POSIX[name.toLowerCase()];
      if (posix?.negated !== undefined) return inClass ? posix.negated : `[${posix.negated}]`;
      if (!inClass && alias.startsWith('[')) return `[^${alias.slice(1, -1)}]`;
      throw new RegexTranslationError(`negated property \\p{^${name}} is not supported here`, start);
    }
    for (const candidate of [name, `Script=${name}`]) {
      const src = `\\${negated ? 'P' : 'p'}{${candidate}}`;
      try {
        new RegExp(src, 'u');
        return src;
      } catch {
        // try the next spelling
      }
    }
    throw new RegexTranslationError(`unknown character property ${name}`, start);
  }

  /** Parses a bracket expression at `[` and returns JavaScript source for it. */
  private parseClass(): string {
    const { negated, operands } = this.parseClassBody();
    const cls = (o: ClassOperand, flip = false): string => `[${o.negated !== flip ? '^' : ''}${o.src}]`;
    if (operands.length === 1) return cls(operands[0], negated);
    // Intersection: every operand must match the same character.
    const lookaheads = operands.slice(0, -1).map((o) => `(?=${cls(o)})`).join('');
    const last = cls(operands[operands.length - 1]);
    if (!negated) return `(?:${lookaheads}${last})`;
    return `(?:(?!${lookaheads}${last})[\\s\\S])`;
  }

  /** Returns the class contents (possibly several `&&` operands) without brackets. */
  private parseClassBody(): { negated: boolean; operands: ClassOperand[] } {
    const p = this.p;
    const start = this.pos;
    this.pos++; // [
    let negated = false;
    if (p[this.pos] === '^') {
      negated = true;
      this.pos++;
    }
    type Item = { k: 'char'; cp: number } | { k: 'set'; src: string } | { k: 'dash' } | { k: 'negset'; src: string; at: number };
    const operands: ClassOperand[] = [];
    let items: Item[] = [];
    let first = true;
    const flush = (): void => {
      if (items.length === 1 && items[0].k === 'negset') {
        operands.push({ src: items[0].src, negated: true });
        items = [];
        return;
      }
      let out = '';
      for (let i = 0; i < items.length; i++) {
        const it = items[i];
        const next = items[i + 1];
        const after = items[i + 2];
        if (it.k === 'char' && next?.k === 'dash' && after?.k === 'char') {
          if (after.cp < it.cp) throw new RegexTranslationError('empty range in char class', start);
          out += `${classChar(it.cp)}-${classChar(after.cp)}`;
          i += 2;
        } else if (it.k === 'char') {
          out += classChar(it.cp);
        } else if (it.k === 'set') {
          out += it.src;
        } else if (it.k === 'negset') {
          throw new RegexTranslationError('a negated nested character class must stand alone between && operators', it.at);
        } else {
          out += '\\-';
        }
      }
      operands.push({ src: out, negated: false });
      items = [];
    };
    while (true) {
      if (this.pos >= p.length) throw new RegexTranslationError('premature end of char-class', start);
      const c = p[this.pos];
      if (c === ']' && !first) {
        this.pos++;
        break;
      }
      first = false;
      if (c === '&' && p[this.pos + 1] === '&') {
        this.pos += 2;
        flush();
        continue;
      }
      if (c === '[') {
        const posix = /^\[:(\^?)([a-z]+):\]/.exec(p.slice(this.pos, this.pos + 12));
        if (posix !== null) {
          const def = POSIX[posix[2]];
          if (def === undefined) throw new RegexTranslationError(`unknown POSIX bracket [:${posix[2]}:]`, this.pos);
          if (posix[1] === '^') {
            if (def.negated === undefined) throw new RegexTranslationError(`negated POSIX bracket [:^${posix[2]}:] is not supported`, this.pos);
            items.push({ k: 'set', src: def.negated });
          } else {
            items.push({ k: 'set', src: def.set });
          }
          this.pos += posix[0].length;
          continue;
        }
        const nestedAt = this.pos;
        const nested = this.parseClassBody();
        if (nested.operands.length !== 1) {
          throw new RegexTranslationError('intersections inside nested character classes are not supported', nestedAt);
        }
        const inner = nested.operands[0];
        if (nested.negated !== inner.negated) items.push({ k: 'negset', src: inner.src, at: nestedAt });
        else items.push({ k: 'set', src: inner.src });
        continue;
      }
      if (c === '-') {
        this.pos++;
        items.push({ k: 'dash' });
        continue;
      }
      if (c === '\\') {
        const escAt = this.pos;
        this.pos++;
        const e = p[this.pos];
        if (e === undefined) throw new RegexTranslationError('premature end of char-class', start);
        if ('dDwWsS'.includes(e)) {
          this.pos++;
          items.push({ k: 'set', src: `\\${e}` });
        } else if (e === 'h' || e === 'H') {
          this.pos++;
          items.push({ k: 'set', src: e === 'h' ? '\\p{AHex}' : '\\P{AHex}' });
        } else if (e === 'p' || e === 'P') {
          this.pos++;
          items.push({ k: 'set', src: this.parseProperty(e === 'P', escAt, true) });
        } else if (e === 'b') {
          this.pos++;
          items.push({ k: 'char', cp: 0x08 });
        } else {
          items.push({ k: 'char', cp: this.parseCharEscape(escAt) });
        }
        continue;
      }
      const cp = p.codePointAt(this.pos)!;
      this.pos += cp > 0xffff ? 2 : 1;
      items.push({ k: 'char', cp });
    }
    flush();
    return { negated, operands };
  }

  // ---- emission ------------------------------------------------------------------------------

  private emitAlt(alt: AltNode, out: string[], captures: TranslatedCapture[], counter: { n: number }, inBehind: boolean): void {
    for (let i = 0; i < alt.alts.length; i++) {
      if (i > 0) out.push('|');
      for (const node of alt.alts[i]) this.emitNode(node, out, captures, counter, inBehind);
    }
  }

  private emitNode(node: Node, out: string[], captures: TranslatedCapture[], counter: { n: number }, inBehind: boolean): void {
    switch (node.t) {
      case 'raw':
        out.push(node.src);
        return;
      case 'backref':
        out.push(`\u0000${this.backrefs.indexOf(node)}\u0000`);
        return;
      case 'alt':
        this.emitAlt(node, out, captures, counter, inBehind);
        return;
      case 'group':
        this.emitGroup(node, out, captures, counter, inBehind);
        return;
      case 'quant':
        this.emitQuant(node, out, captures, counter, inBehind);
        return;
    }
  }

  private emitGroup(g: GroupNode, out: string[], captures: TranslatedCapture[], counter: { n: number }, inBehind: boolean): void {
    const mod = g.icase === undefined ? '' : g.icase ? 'i' : '-i';
    const behind = inBehind || g.kind === 'behind' || g.kind === 'nbehind';
    if (g.kind === 'atomic') {
      const helper = ++counter.n;
      out.push(mod === '' ? '(?=(' : `(?=(?${mod}:(`);
      this.emitAlt(g.body, out, captures, counter, behind);
      out.push(mod === '' ? `))(?:\\${helper})` : `)))(?:\\${helper})`);
      return;
    }
    let open: string;
    const capturing = g.kind === 'capture' && (g.name !== undefined || !this.hasNamed);
    if (capturing) {
      g.jsIndex = ++counter.n;
      captures.push({ index: g.jsIndex, name: g.name });
      open = '(';
    } else {
      open = { capture: '(?:', noncap: '(?:', atomic: '(?:', ahead: '(?=', nahead: '(?!', behind: '(?<=', nbehind: '(?<!' }[g.kind];
    }
    if (mod !== '') {
      // A modifier group nests inside so the capture/lookaround keeps its own kind.
      out.push(open, `(?${mod}:`);
      this.emitAlt(g.body, out, captures, counter, behind);
      out.push('))');
      return;
    }
    out.push(open);
    this.emitAlt(g.body, out, captures, counter, behind);
    out.push(')');
  }

  private emitQuant(q: QuantNode, out: string[], captures: TranslatedCapture[], counter: { n: number }, inBehind: boolean): void {
    let repeat: TranslatedRepeat | undefined;
    let firstCapture = 0;
    if (q.max > 1 && !inBehind && !this.inRepeatBody && this.hasCapture(q.atom) && !hasBackref(q.atom)) {
      // One iteration on its own, numbered from 1, emitted before the main copy so that the
      // main copy's group numbers are the ones left on the nodes.
      const body: string[] = [];
      const bodyCaptures: TranslatedCapture[] = [];
      this.inRepeatBody = true;
      this.emitNode(q.atom, body, bodyCaptures, { n: 0 }, false);
      this.inRepeatBody = false;
      const text = body.join('');
      repeat = { span: ++counter.n, source: needsWrap(q.atom) ? `(?:${text})` : text, pairs: bodyCaptures.map((c) => [c.index, 0]) };
      firstCapture = captures.length;
      out.push('(');
    }
    const suffix = quantText(q.min, q.max) + (q.mode === 'lazy' ? '?' : '');
    const possessive = q.mode === 'possessive' && !inBehind;
    let helper = 0;
    if (possessive) {
      helper = ++counter.n;
      out.push('(?=(');
    }
    const inner: string[] = [];
    this.emitNode(q.atom, inner, captures, counter, inBehind);
    const text = inner.join('');
    out.push(needsWrap(q.atom) ? `(?:${text})` : text, suffix);
    if (possessive) out.push(`))(?:\\${helper})`);
    if (repeat !== undefined) {
      out.push(')');
      const mainCaptures = captures.slice(firstCapture);
      if (mainCaptures.length === repeat.pairs.length) {
        repeat.pairs.forEach((p, i) => (p[1] = mainCaptures[i].index));
        this.repeats.push(repeat);
      }
    }
  }

  private hasCapture(node: Node): boolean {
    switch (node.t) {
      case 'group':
        return (node.kind === 'capture' && (node.name !== undefined || !this.hasNamed)) || this.hasCapture(node.body);
      case 'alt':
        return node.alts.some((seq) => seq.some((n) => this.hasCapture(n)));
      case 'quant':
        return this.hasCapture(node.atom);
      default:
        return false;
    }
  }

  private resolveBackrefs(source: string): string {
    if (this.backrefs.length === 0) return source;
    // The source holds NUL-delimited backreference indexes: text, index, text, index, ...
    const parts = source.split('\u0000');
    for (let k = 1; k < parts.length; k += 2) {
      const ref = this.backrefs[Number(parts[k])];
      let target: GroupNode | undefined;
      if (ref.name !== undefined) {
        const named = this.groups.filter((g) => g.name === ref.name && g.jsIndex > 0);
        target = named[named.length - 1];
        if (target === undefined) throw new RegexTranslationError(`undefined name <${ref.name}> reference`, ref.offset);
      } else {
        target = this.groups.find((g) => g.ordinal === ref.num && g.jsIndex > 0);
        if (target === undefined) throw new RegexTranslationError(`invalid backreference \\${ref.num}`, ref.offset);
      }
      parts[k] = `(?:\\${target.jsIndex})`;
    }
    return parts.join('');
  }
}

interface ClassOperand {
  src: string;
  negated: boolean;
}

function setOption(opts: Options, flag: string, on: boolean): void {
  if (flag === 'i') opts.i = on;
  else if (flag === 'm') opts.dotAll = on;
  else opts.extended = on;
}

function hasBackref(node: Node): boolean {
  switch (node.t) {
    case 'backref':
      return true;
    case 'group':
      return hasBackref(node.body);
    case 'alt':
      return node.alts.some((seq) => seq.some(hasBackref));
    case 'quant':
      return hasBackref(node.atom);
    default:
      return false;
  }
}

function needsWrap(node: Node): boolean {
  if (node.t === 'raw') return !node.atom;
  if (node.t === 'backref') return false;
  if (node.t === 'group') return node.kind !== 'capture' && node.kind !== 'noncap';
  return true;
}

function quantText(min: number, max: number): string {
  if (min === 0 && max === Infinity) return '*';
  if (min === 1 && max === Infinity) return '+';
  if (min === 0 && max === 1) return '?';
  if (max === Infinity) return `{${min},}`;
  if (min === max) return `{${min}}`;
  return `{${min},${max}}`;
}

/** A literal character outside a class, escaped as the `u` flag requires. */
function literal(ch: string): string {
  if (SYNTAX_CHARS.has(ch)) return `\\${ch}`;
  const cp = ch.codePointAt(0)!;
  if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, '0')}`;
  return ch;
}

/** A literal character inside a class. */
function classChar(cp: number): string {
  const ch = String.fromCodePoint(cp);
  if (SYNTAX_CHARS.has(ch) || ch === '-') return `\\${ch}`;
  if (cp < 0x20 || cp === 0x7f) return `\\x${cp.toString(16).padStart(2, '0')}`;
  if (cp >= 0xd800 && cp <= 0xdfff) return `\\u${cp.toString(16)}`;
  return ch;
}
