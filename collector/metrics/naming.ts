/**
 * statsd names and tags → Prometheus names and labels, with statsd_exporter-style mapping rules:
 * a glob (`*` matches one dot-separated part) or a regex, capturing into `$1`, `$2`… in the
 * metric name and label values. The first matching rule wins; a rule may also drop the metric.
 */
import { Type, type Static } from '@sinclair/typebox';

export const MappingSchema = Type.Object(
  {
    match: Type.String({ minLength: 1 }),
    matchType: Type.Union([Type.Literal('glob'), Type.Literal('regex')], { default: 'glob' }),
    name: Type.Optional(Type.String({ minLength: 1 })),
    labels: Type.Record(Type.String(), Type.String(), { default: {} }),
    action: Type.Union([Type.Literal('map'), Type.Literal('drop')], { default: 'map' }),
    histogram: Type.Optional(
      Type.Object({ buckets: Type.Array(Type.Number(), { minItems: 1 }) }, { additionalProperties: false, description: 'expose timers as classic histogram buckets' }),
    ),
    help: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export type Mapping = Static<typeof MappingSchema>;

interface CompiledMapping {
  re: RegExp;
  mapping: Mapping;
}

export interface MappedName {
  /** Prometheus metric name (no suffix yet). */
  name: string;
  /** Labels the rule adds (they win over tags of the same name). */
  labels: Record<string, string>;
  buckets: number[] | undefined;
  help: string | undefined;
}

/** Turns a statsd name into a legal Prometheus metric name. */
export function sanitizeMetricName(name: string): string {
  let out = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  if (out === '' || /^[0-9]/.test(out)) out = `_${out}`;
  return out;
}

/** Turns a tag key into a legal label name (no leading digit, no reserved `__` prefix). */
export function sanitizeLabelName(name: string): string {
  let out = name.replace(/[^a-zA-Z0-9_]/g, '_');
  if (out === '' || /^[0-9]/.test(out)) out = `_${out}`;
  if (out.startsWith('__')) out = `tag${out}`;
  return out;
}

export class Mapper {
  private readonly rules: CompiledMapping[];
  private readonly cache = new Map<string, MappedName | null>();
  private readonly maxCache: number;

  constructor(mappings: Mapping[], maxCache = 100_000) {
    this.rules = mappings.map((m) => ({ re: compileMatch(m), mapping: m }));
    this.maxCache = maxCache;
  }

  /** The Prometheus name and rule labels for a statsd name, or null when a rule drops it. */
  map(statsdName: string): MappedName | null {
    const hit = this.cache.get(statsdName);
    if (hit !== undefined) return hit;
    const result = this.resolve(statsdName);
    if (this.cache.size >= this.maxCache) this.cache.clear();
    this.cache.set(statsdName, result);
    return result;
  }

  private resolve(statsdName: string): MappedName | null {
    for (const { re, mapping } of this.rules) {
      const m = re.exec(statsdName);
      if (!m) continue;
      if (mapping.action === 'drop') return null;
      const expand = (template: string): string => template.replace(/\$\{?(\d+)\}?/g, (_, i: string) => m[Number(i)] ?? '');
      const labels: Record<string, string> = {};
      for (const [k, v] of Object.entries(mapping.labels)) labels[sanitizeLabelName(k)] = expand(v);
      return {
        name: sanitizeMetricName(mapping.name ? expand(mapping.name) : statsdName),
        labels,
        buckets: mapping.histogram ? [...mapping.histogram.buckets].sort((a, b) => a - b) : undefined,
        help: mapping.help,
      };
    }
    return { name: sanitizeMetricName(statsdName), labels: {}, buckets: undefined, help: undefined };
  }
}

function compileMatch(m: Mapping): RegExp {
  if (m.matchType === 'regex') return new RegExp(m.match);
  const body = m.match
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('([^.]*)');
  return new RegExp(`^${body}$`);
}

/** Validates mapping rules beyond the schema (regexes compile, globs are sane); returns error lines. */
export function checkMappings(mappings: Mapping[], path: string): string[] {
  const errors: string[] = [];
  mappings.forEach((m, i) => {
    try {
      compileMatch(m);
    } catch (err) {
      errors.push(`${path}[${i}].match: not a valid regular expression (${(err as Error).message})`);
    }
    if (m.name !== undefined && !/^[a-zA-Z_:$][a-zA-Z0-9_:${}.]*$/.test(m.name)) {
      errors.push(`${path}[${i}].name: "${m.name}" cannot become a Prometheus metric name`);
    }
  });
  return errors;
}
