/**
 * Label matchers of a rule's `where:` mapping. A value is an equality unless it starts with an
 * operator: "!=x" (not equal), "=~re" (regex matches), "!~re" (regex does not match). A leading
 * "=" forces equality, so "==~x" matches the literal value "=~x". Regexes are anchored at both
 * ends, as in Prometheus, and a missing label reads as the empty string.
 */

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  readonly name: string;
  readonly op: MatchOp;
  readonly value: string;
  readonly re: RegExp | undefined;
}

/** Parses one `where` entry; throws an Error whose message says what is wrong with the value. */
export function parseMatcher(name: string, raw: unknown): Matcher {
  if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') {
    throw new Error('expected a string such as "api", "!=api", "=~api|web" or "!~test.*"');
  }
  const text = String(raw);
  let op: MatchOp = '=';
  let value = text;
  if (text.startsWith('=~')) [op, value] = ['=~', text.slice(2)];
  else if (text.startsWith('!~')) [op, value] = ['!~', text.slice(2)];
  else if (text.startsWith('!=')) [op, value] = ['!=', text.slice(2)];
  else if (text.startsWith('=')) value = text.slice(1);
  let re: RegExp | undefined;
  if (op === '=~' || op === '!~') {
    try {
      re = new RegExp(`^(?:${value})$`);
    } catch (err) {
      throw new Error(`invalid regular expression ${JSON.stringify(value)} (${(err as Error).message})`, { cause: err });
    }
  }
  return { name, op, value, re };
}

export function matches(matchers: readonly Matcher[], get: (name: string) => string): boolean {
  for (let i = 0; i < matchers.length; i++) {
    const m = matchers[i];
    const v = get(m.name);
    switch (m.op) {
      case '=':
        if (v !== m.value) return false;
        break;
      case '!=':
        if (v === m.value) return false;
        break;
      case '=~':
        if (!m.re!.test(v)) return false;
        break;
      case '!~':
        if (m.re!.test(v)) return false;
        break;
    }
  }
  return true;
}

/** How a matcher list reads in the rules API and in log lines: {service="api",code=~"5.."}. */
export function formatMatchers(matchers: readonly Matcher[]): string {
  if (matchers.length === 0) return '';
  return `{${matchers.map((m) => `${m.name}${m.op}${JSON.stringify(m.value)}`).join(',')}}`;
}

/** Labels an absent-data alert can name: only the equalities say which series is missing. */
export function equalityLabels(matchers: readonly Matcher[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of matchers) if (m.op === '=' && m.value !== '') out[m.name] = m.value;
  return out;
}
