/**
 * Dated index names: "plumb-logs-%{+yyyy.MM.dd}" → "plumb-logs-2026.11.24" for an event whose
 * @timestamp (UTC) falls on that day. The pattern is compiled once into parts that slice the
 * normalized timestamp, so naming costs a few string concatenations per event.
 */

/** A compiled pattern: literal text and slices of "yyyy-MM-ddTHH:mm:ss…Z". */
export interface IndexPattern {
  /** Text and [start, end) slices of the timestamp, in order. */
  readonly parts: readonly (string | readonly [number, number])[];
  /** The pattern with every date replaced by "*", for the index template. */
  readonly wildcard: string;
  readonly dated: boolean;
}

const TOKENS: Record<string, readonly [number, number]> = {
  yyyy: [0, 4],
  yy: [2, 4],
  MM: [5, 7],
  dd: [8, 10],
  HH: [11, 13],
};

const FORBIDDEN = /[\\/*?"<>| ,#:A-Z]/;

export function parseIndexPattern(pattern: string): { pattern?: IndexPattern; error?: string } {
  const parts: (string | readonly [number, number])[] = [];
  let wildcard = '';
  let dated = false;
  let rest = pattern;
  while (rest.length > 0) {
    const open = rest.indexOf('%{');
    if (open < 0) {
      parts.push(rest);
      wildcard += rest;
      break;
    }
    if (open > 0) {
      parts.push(rest.slice(0, open));
      wildcard += rest.slice(0, open);
    }
    const close = rest.indexOf('}', open);
    if (close < 0) return { error: `unclosed "%{" in ${JSON.stringify(pattern)}` };
    const spec = rest.slice(open + 2, close);
    if (!spec.startsWith('+')) return { error: `only dates are supported in an index name, like %{+yyyy.MM.dd} (got %{${spec}})` };
    let fmt = spec.slice(1);
    if (fmt === '') return { error: 'empty date format in %{+}' };
    while (fmt.length > 0) {
      const token = ['yyyy', 'yy', 'MM', 'dd', 'HH'].find((t) => fmt.startsWith(t));
      if (token !== undefined) {
        parts.push(TOKENS[token]);
        fmt = fmt.slice(token.length);
      } else if (/^[.\-_]/.test(fmt)) {
        parts.push(fmt[0]);
        fmt = fmt.slice(1);
      } else {
        return { error: `unsupported date format ${JSON.stringify(spec.slice(1))}: use yyyy, yy, MM, dd, HH and . - _` };
      }
    }
    dated = true;
    wildcard += '*';
    rest = rest.slice(close + 1);
  }
  const literal = parts.filter((p) => typeof p === 'string').join('');
  if (FORBIDDEN.test(literal)) return { error: `an index name must be lowercase, without spaces or any of \\ / * ? " < > | , # : (got ${JSON.stringify(pattern)})` };
  if (/^[-_+.]/.test(pattern)) return { error: `an index name must not start with -, _, + or . (got ${JSON.stringify(pattern)})` };
  return { pattern: { parts, wildcard, dated } };
}

/** The index for an event whose normalized UTC timestamp is `ts` ("2026-11-24T10:00:00.123Z"). */
export function renderIndex(pattern: IndexPattern, ts: string): string {
  if (!pattern.dated) return pattern.parts[0] as string;
  let out = '';
  for (const p of pattern.parts) out += typeof p === 'string' ? p : ts.slice(p[0], p[1]);
  return out;
}
