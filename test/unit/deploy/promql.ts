/**
 * Reading the queries deploy/ ships: the metric names a PromQL expression (or a Grafana
 * variable query) selects, and the expressions of a Grafana dashboard. Names built from a
 * Grafana variable (`{__name__="$counter"}`, `${timer}_count`) cannot be known statically and
 * are reported apart.
 */

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'and',
  'or',
  'unless',
  'atan2',
  'inf',
  'nan',
  'start',
  'end',
]);
/** Aggregation operators: `sum by (x) (…)` puts the label list between the name and its argument. */
const AGGREGATIONS = new Set(['sum', 'avg', 'min', 'max', 'count', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values', 'group', 'limitk', 'limit_ratio']);
/** Keywords followed by a parenthesised list of label names. */
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

export interface SelectedNames {
  /** Metric names written literally. */
  names: Set<string>;
  /** Names that contain a Grafana variable, as written. */
  templated: Set<string>;
}

/**
 * Grafana's variable query functions wrap PromQL: `label_values(selector, label)` selects
 * `selector`; `query_result(expr)` runs `expr`; `metrics(regex)` and `label_values(label)` name
 * no metric.
 */
function unwrapGrafanaQuery(q: string): string {
  const lv = /^\s*label_values\(\s*(.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$/s.exec(q);
  if (lv) return lv[1];
  if (/^\s*(label_values|label_names|metrics)\(/.test(q)) return '';
  const qr = /^\s*query_result\((.*)\)\s*$/s.exec(q);
  if (qr) return qr[1];
  return q;
}

/** The metric names `expr` selects. */
export function selectedNames(expr: string): SelectedNames {
  const src = unwrapGrafanaQuery(expr);
  const names = new Set<string>();
  const templated = new Set<string>();
  let i = 0;
  let braces = 0;
  let brackets = 0;
  let expectLabelList = false;
  let labelListDepth = -1;
  let parens = 0;
  const word = /[A-Za-z_:$]/;
  while (i < src.length) {
    const c = src[i];
    if (c === '"' || c === "'" || c === '`') {
      const close = c === '`' ? src.indexOf('`', i + 1) : findQuote(src, i);
      i = close < 0 ? src.length : close + 1;
      continue;
    }
    if (c === '{') {
      braces++;
      i++;
      continue;
    }
    if (c === '}') {
      braces--;
      i++;
      continue;
    }
    if (c === '[') {
      brackets++;
      i++;
      continue;
    }
    if (c === ']') {
      brackets--;
      i++;
      continue;
    }
    if (c === '(') {
      parens++;
      if (expectLabelList) {
        labelListDepth = parens;
        expectLabelList = false;
      }
      i++;
      continue;
    }
    if (c === ')') {
      if (parens === labelListDepth) labelListDepth = -1;
      parens--;
      i++;
      continue;
    }
    if (/[0-9.]/.test(c) && !word.test(src[i - 1] ?? '')) {
      // a number (or a duration after it): 0.99, 1e3, 5m
      const m = /^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[a-zA-Z]*/.exec(src.slice(i));
      i += m ? m[0].length : 1;
      continue;
    }
    if (word.test(c)) {
      const m = /^(?:[A-Za-z0-9_:]|\$\{[A-Za-z0-9_:]+\}|\$[A-Za-z0-9_]+)+/.exec(src.slice(i));
      const token = m ? m[0] : c;
      i += token.length;
      if (braces > 0) {
        // inside a selector: a label name; `__name__="x"` names the metric
        if (token === '__name__') {
          const eq = /^\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"/.exec(src.slice(i));
          if (eq && eq[1] === '=') (eq[2].includes('$') ? templated : names).add(eq[2]);
          if (eq) i += eq[0].length;
        }
        continue;
      }
      if (brackets > 0 || labelListDepth > 0) continue;
      if (KEYWORDS.has(token)) {
        if (LABEL_LISTS.has(token)) expectLabelList = true;
        continue;
      }
      if (AGGREGATIONS.has(token)) continue;
      if (/^\s*\(/.test(src.slice(i))) continue; // a function
      if (token.startsWith('$')) continue; // a Grafana variable standing for a value ($__rate_interval)
      (token.includes('$') ? templated : names).add(token);
      continue;
    }
    i++;
  }
  return { names, templated };
}

function findQuote(src: string, start: number): number {
  const q = src[start];
  for (let i = start + 1; i < src.length; i++) {
    if (src[i] === '\\') i++;
    else if (src[i] === q) return i;
  }
  return -1;
}

export interface DashboardQuery {
  /** Where the query sits, e.g. `panel "Retries" target A` or `variable host`. */
  where: string;
  expr: string;
}

interface Panel {
  title?: string;
  targets?: { expr?: string; refId?: string }[];
  panels?: Panel[];
}

/** Every PromQL expression of a Grafana dashboard: panel targets (rows included) and query variables. */
export function dashboardQueries(dashboard: { panels?: Panel[]; templating?: { list?: { name: string; type: string; query?: unknown }[] } }): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  const visit = (panels: Panel[] | undefined): void => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (typeof t.expr === 'string') out.push({ where: `panel "${p.title}" target ${t.refId}`, expr: t.expr });
      visit(p.panels);
    }
  };
  visit(dashboard.panels);
  for (const v of dashboard.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
    if (typeof q === 'string') out.push({ where: `variable ${v.name}`, expr: q });
  }
  return out;
}

/**
 * Replaces Grafana's variables by values Prometheus accepts, so an expression can be checked
 * or run: `$__rate_interval` and friends by durations, the others from `values`.
 */
export function substituteVariables(expr: string, values: Record<string, string>): string {
  const builtins: Record<string, string> = { __rate_interval: '1m', __interval: '15s', __range: '1h' };
  return unwrapGrafanaQuery(expr).replace(/\$\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|\$([A-Za-z0-9_]+)/g, (_m, braced: string | undefined, bare: string | undefined) => {
    const name = (braced ?? bare)!;
    const v = builtins[name] ?? values[name];
    if (v === undefined) throw new Error(`no value for the Grafana variable $${name} in ${expr}`);
    return v;
  });
}
