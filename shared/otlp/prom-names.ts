/**
 * OTLP metric names and units → Prometheus names, as Prometheus translates OTLP
 * (prometheus/otlptranslator, "UnderscoreEscapingWithSuffixes"): characters outside
 * [a-zA-Z0-9_:] become `_`, runs of `_` collapse, the unit is spelled out and appended
 * (`ms` → `_milliseconds`, `By/s` → `_bytes_per_second`, `{request}` annotations dropped), a
 * gauge of unit `1` gets `_ratio`. `_total` for monotonic sums is added by the metric store, like
 * for statsd counters. A suffix the name already ends with is not repeated.
 */

const UNITS: Record<string, string> = {
  d: 'days',
  h: 'hours',
  min: 'minutes',
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gibibytes',
  TiBy: 'tebibytes',
  KBy: 'kilobytes',
  MBy: 'megabytes',
  GBy: 'gigabytes',
  TBy: 'terabytes',
  m: 'meters',
  V: 'volts',
  A: 'amperes',
  J: 'joules',
  W: 'watts',
  g: 'grams',
  Cel: 'celsius',
  Hz: 'hertz',
  '%': 'percent',
};

const PER: Record<string, string> = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week', mo: 'month', y: 'year' };

export type PromKind = 'counter' | 'gauge' | 'histogram' | 'summary';

function clean(s: string): string {
  return s
    .replace(/[^a-zA-Z0-9_:]/g, '_')
    .replace(/_+/g, '_')
    .replace(/^_+|_+$/g, '');
}

/** The unit's words (`milliseconds`, `bytes_per_second`), '' for none or only an annotation. */
export function unitSuffix(unit: string): string {
  const u = unit.replace(/\{[^}]*\}/g, '').trim();
  if (u === '' || u === '1') return '';
  const slash = u.indexOf('/');
  const main = slash < 0 ? u : u.slice(0, slash);
  const per = slash < 0 ? '' : u.slice(slash + 1);
  const words: string[] = [];
  if (main !== '') words.push(clean(UNITS[main] ?? main));
  if (per !== '') words.push('per', clean(PER[per] ?? UNITS[per] ?? per));
  return words.filter((w) => w !== '').join('_');
}

/** The Prometheus family name for an OTLP metric (without `_total`, which the store adds to counters). */
export function prometheusName(name: string, unit: string, kind: PromKind): string {
  let out = clean(name);
  if (out === '') out = 'unnamed';
  if (/^[0-9]/.test(out)) out = `_${out}`;
  if (kind === 'counter' && out.endsWith('_total')) out = out.slice(0, -'_total'.length);
  const suffix = unitSuffix(unit);
  if (suffix !== '' && !out.endsWith(`_${suffix}`) && out !== suffix) out += `_${suffix}`;
  if (kind === 'gauge' && unit.trim() === '1' && !out.endsWith('_ratio')) out += '_ratio';
  return out;
}

/** A label name from an attribute key: `service.name` → `service_name`, no leading digit, no `__` prefix. */
export function prometheusLabel(key: string): string {
  let out = key.replace(/[^a-zA-Z0-9_]/g, '_');
  if (out === '' || /^[0-9]/.test(out)) out = `key_${out}`;
  if (out.startsWith('__') && !out.startsWith('___')) out = `key${out}`;
  return out;
}
