/**
 * The small template language of alert labels and annotations. It is deliberately not Go's
 * text/template: a placeholder is `{{ $value }}` or `{{ $labels.<name> }}`, optionally piped
 * through `humanize` (SI prefixes) or `humanizePercentage` (0.0123 → 1.23%). Nothing else is
 * evaluated, so a rule file cannot run code or loop. Templates compile once, at rule load.
 */

export interface TemplateContext {
  /** The evaluated value; undefined when the alert is about missing data. */
  value: number | undefined;
  labels: Readonly<Record<string, string>>;
}

type Part = string | { kind: 'value' | 'label'; label: string; filter: Filter };
type Filter = 'none' | 'humanize' | 'humanizePercentage';

export interface Template {
  readonly source: string;
  readonly constant: boolean;
  render(ctx: TemplateContext): string;
}

const PLACEHOLDER = /\{\{(.*?)\}\}/g;
const EXPRESSION = /^\s*\$(value|labels\.([A-Za-z_][A-Za-z0-9_]*))\s*(?:\|\s*(humanize|humanizePercentage)\s*)?$/;

/** Compiles a template; throws an Error naming the first placeholder it does not understand. */
export function compileTemplate(source: string): Template {
  const parts: Part[] = [];
  let last = 0;
  for (const m of source.matchAll(PLACEHOLDER)) {
    const e = EXPRESSION.exec(m[1]);
    if (!e) {
      throw new Error(`unsupported template ${JSON.stringify(m[0])}: use {{ $value }} or {{ $labels.name }}, optionally "| humanize" or "| humanizePercentage"`);
    }
    if (m.index > last) parts.push(source.slice(last, m.index));
    parts.push({ kind: e[2] === undefined ? 'value' : 'label', label: e[2] ?? '', filter: (e[3] as Filter | undefined) ?? 'none' });
    last = m.index + m[0].length;
  }
  const rest = source.slice(last);
  if (rest.includes('{{')) throw new Error(`unclosed template placeholder in ${JSON.stringify(source)}`);
  if (rest.length > 0) parts.push(rest);
  const constant = parts.every((p) => typeof p === 'string');
  return {
    source,
    constant,
    render: constant ? () => source : (ctx) => renderParts(parts, ctx),
  };
}

function renderParts(parts: readonly Part[], ctx: TemplateContext): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') out += p;
    else if (p.kind === 'label') out += ctx.labels[p.label] ?? '';
    else out += ctx.value === undefined ? 'no data' : formatValue(ctx.value, p.filter);
  }
  return out;
}

export function formatValue(v: number, filter: Filter = 'none'): string {
  if (!Number.isFinite(v)) return String(v);
  if (filter === 'humanizePercentage') return `${short(v * 100)}%`;
  if (filter === 'humanize') return humanize(v);
  return short(v);
}

/** Integers as they are; other numbers to 4 significant digits, without trailing zeros. */
function short(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

const BIG = ['', 'k', 'M', 'G', 'T', 'P', 'E'];
const SMALL = ['', 'm', 'µ', 'n', 'p'];

function humanize(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  let i = 0;
  let x = v;
  if (a >= 1) {
    while (Math.abs(x) >= 1000 && i < BIG.length - 1) [x, i] = [x / 1000, i + 1];
    return `${short(x)}${BIG[i]}`;
  }
  while (Math.abs(x) < 1 && i < SMALL.length - 1) [x, i] = [x * 1000, i + 1];
  return `${short(x)}${SMALL[i]}`;
}
