/**
 * Variables the miner masks before it compares messages: each match becomes `<*>`. Order
 * matters (a date before the numbers inside it). They are the generic ones (times, addresses,
 * hex, numbers); more can be added per deployment in collector.patterns.masks.
 */

const WILDCARD = '<*>';

/** Masks whose matches may hold whitespace: they run over the whole message. */
const SPANNING_MASKS: readonly RegExp[] = [
  // "Fri Jun 17 07:07:00 2005", as syslog and many daemons print it
  /\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}(?:\s+\d{4})?\b/g,
  // ISO 8601 / RFC 3339
  /\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\b/g,
];

/**
 * Masks that never match whitespace and look at most one character around a match, for a
 * character that is never whitespace (`\b`, `(?<![\w.])`, `(?![\w])`): a whitespace neighbour
 * and the edge of the string look the same to them. Applied to each whitespace-separated token
 * on its own, they give the same tokens as applied to the whole message (see MessageMasker).
 */
const TOKEN_MASKS: readonly RegExp[] = [
  /\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b/g,
  // UUIDs
  /\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b/g,
  // IPv4, with a port
  /(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?(?![\w.])/g,
  /\b0x[0-9a-fA-F]+\b/g,
  // file paths of two or more parts
  /(?<![\w/.])(?:\/[\w.+@%-]+){2,}\/?/g,
  // identifiers around a long number: blk_-1727475099218615100, job_200811092030_0001
  /(?<![\w-])[\w-]*\d{5,}[\w-]*/g,
  // numbers standing alone (not inside words such as "ssh2" or "blk_123")
  /(?<![\w])-?\d+(?:\.\d+)?(?![\w])/g,
];

export const DEFAULT_MASKS: readonly RegExp[] = [...SPANNING_MASKS, ...TOKEN_MASKS];

const TOKEN_LOCAL = new Set<RegExp>(TOKEN_MASKS);

/** Slots of the token memory (a power of two): direct-mapped by a hash of the token's text. */
const SLOTS = 1 << 13;
/** Longer tokens are masked each time, not remembered. */
const CACHE_TOKEN_CHARS = 64;

/**
 * Masks a message and splits it into tokens. The result is what applying every mask in order to
 * the whole message (`text.replace(mask, '<*>')` each) and splitting it on whitespace (`\s+`)
 * gives; it is computed with less work:
 *
 * - the trailing masks that are token-local (TOKEN_MASKS) run on each token instead of the whole
 *   message: none can match whitespace and none can tell a whitespace neighbour from the edge of
 *   the string, so each pass finds the same matches token by token, and a replacement (`<*>`)
 *   never adds whitespace;
 * - one scan of the message finds the tokens and what they hold: a token without a digit, `/`
 *   or `-` is left as it is (each token mask needs one of them), and with all the built-in token
 *   masks an integer is `<*>` (the number mask takes it whole, no mask before it matches it);
 * - a token's masked form is remembered (logs repeat the same words, paths, versions and
 *   addresses), and a remembered token is answered with the same string each time, which also
 *   makes the tree's comparisons of equal tokens cheap.
 *
 * Masks before them (deployment masks, the date forms that hold spaces) run on the whole message.
 */
export class MessageMasker {
  private readonly whole: readonly Mask[];
  private readonly perToken: readonly Mask[];
  /** Integers are `<*>` without running the masks (the built-in token masks, all, in order). */
  private readonly integers: boolean;
  private readonly hashes = new Int32Array(SLOTS);
  private readonly lengths = new Int32Array(SLOTS);
  /** Each slot's token text, CACHE_TOKEN_CHARS code units a slot. */
  private readonly chars = new Uint16Array(SLOTS * CACHE_TOKEN_CHARS);
  private readonly values: string[] = new Array<string>(SLOTS).fill('');

  constructor(masks: readonly RegExp[]) {
    let split = masks.length;
    while (split > 0 && TOKEN_LOCAL.has(masks[split - 1])) split--;
    const all = masks.map(toMask);
    this.whole = all.slice(0, split);
    this.perToken = all.slice(split);
    this.integers = this.perToken.length === TOKEN_MASKS.length && this.perToken.every((m, i) => m.replace === TOKEN_MASKS[i]);
  }

  tokenize(message: string): string[] {
    const text = replaceAll(message, this.whole);
    const tokens: string[] = [];
    const n = text.length;
    let i = 0;
    while (i < n) {
      let c = text.charCodeAt(i);
      if (isSpace(c)) {
        i++;
        continue;
      }
      const start = i;
      let hash = 0;
      for (;;) {
        hash = (Math.imul(hash, 31) + c) | 0;
        if (++i >= n) break;
        c = text.charCodeAt(i);
        if (isSpace(c)) break;
      }
      tokens.push(this.token(text, start, i, hash));
    }
    return tokens;
  }

  /**
   * A remembered token is answered before anything else is read of it; what it holds (its kind)
   * is read only for a token not remembered. Integers are not remembered when they are `<*>`
   * outright, so a hit is never one of them and the order of the two tests does not matter.
   */
  private token(text: string, start: number, end: number, hash: number): string {
    const length = end - start;
    const slot = hash & (SLOTS - 1);
    if (length <= CACHE_TOKEN_CHARS && this.hashes[slot] === hash && this.lengths[slot] === length && this.sameChars(slot, text, start, length)) return this.values[slot];
    const kind = kindOf(text, start, end);
    if (kind === INTEGER && this.integers) return WILDCARD;
    if (length > CACHE_TOKEN_CHARS) return this.mask(text.slice(start, end), kind);
    // a copy of its own, not a slice that would keep the whole message alive
    const token = `${text.slice(start, end)} `.slice(0, -1);
    const masked = this.mask(token, kind);
    this.hashes[slot] = hash;
    this.lengths[slot] = length;
    const base = slot * CACHE_TOKEN_CHARS;
    for (let k = 0; k < length; k++) this.chars[base + k] = text.charCodeAt(start + k);
    this.values[slot] = masked;
    return masked;
  }

  private sameChars(slot: number, text: string, start: number, length: number): boolean {
    const chars = this.chars;
    const base = slot * CACHE_TOKEN_CHARS;
    for (let k = 0; k < length; k++) if (chars[base + k] !== text.charCodeAt(start + k)) return false;
    return true;
  }

  private mask(token: string, kind: number): string {
    return kind === PLAIN || this.perToken.length === 0 ? token : replaceAll(token, this.perToken);
  }
}

/** No token mask can match: no digit, '/' or '-' (each mask needs one; `<*>` holds none). */
const PLAIN = 0;
/**
 * Digits with an optional leading '-': the number mask (or, from five digits, the long
 * identifier mask) takes it whole, and no mask before them matches it (they need ':', '.',
 * 'x', '/' or a hex run followed by '-').
 */
const INTEGER = 1;
const OTHER = 2;

/** PLAIN, INTEGER or OTHER: which masks a token can need (see below). */
function kindOf(text: string, start: number, end: number): number {
  let digits = 0;
  let marks = 0;
  let rest = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x30 && c <= 0x39) digits++;
    else if (c === 0x2f || c === 0x2d) marks++;
    else rest++;
  }
  if (digits === 0 && marks === 0) return PLAIN;
  if (digits > 0 && rest === 0 && (marks === 0 || (marks === 1 && text.charCodeAt(start) === 0x2d))) return INTEGER;
  return OTHER;
}

/** What `\s` matches in a JavaScript regex (and so what split(/\s+/) splits on). */
function isSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/**
 * A mask, a non-global copy that only tests (no lastIndex to reset), and for the built-in date
 * masks a cheaper test that must pass for the regex to match at all.
 */
interface Mask {
  readonly replace: RegExp;
  readonly test: RegExp;
  readonly mayMatch: ((text: string) => boolean) | null;
}

function toMask(re: RegExp): Mask {
  return { replace: re, test: new RegExp(re.source, re.flags.replace(/[gy]/g, '')), mayMatch: SPANNING_MASKS.includes(re) ? mayHoldDateTime : null };
}

/**
 * Whether `text` holds a clock time `dd:dd:dd` right after whitespace or a 'T', which both
 * built-in date masks need (`\s+\d{2}:…` and `[T ]\d{2}:…`). An access log's
 * `[24/Nov/2026:00:00:00 +0000]` fails it (its time follows a ':').
 */
function mayHoldDateTime(text: string): boolean {
  for (let q = text.indexOf(':', 3); q >= 0 && q + 5 < text.length; q = text.indexOf(':', q + 1)) {
    if (text.charCodeAt(q + 3) !== 0x3a) continue;
    if (isDigit(text.charCodeAt(q - 1)) && isDigit(text.charCodeAt(q - 2)) && isDigit(text.charCodeAt(q + 1)) && isDigit(text.charCodeAt(q + 2)) && isDigit(text.charCodeAt(q + 4)) && isDigit(text.charCodeAt(q + 5))) {
      const before = text.charCodeAt(q - 3);
      if (before === 0x54 || isSpace(before)) return true;
    }
  }
  return false;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Each mask's matches become `<*>`, in order. A mask is tested before it replaces: most do not
 * match, and a test costs a fraction of a replace that finds nothing.
 */
function replaceAll(text: string, masks: readonly Mask[]): string {
  for (let i = 0; i < masks.length; i++) {
    const m = masks[i];
    if ((m.mayMatch === null || m.mayMatch(text)) && m.test.test(text)) text = text.replace(m.replace, WILDCARD);
  }
  return text;
}
