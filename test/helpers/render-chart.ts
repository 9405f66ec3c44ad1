/**
 * Renders plumb's Helm chart (deploy/helm/plumb) without the helm binary, for tests: Go
 * template syntax and the part of Helm's function library the chart uses. Anything else
 * (an unknown function, a field of a missing value) is an error, never a silent blank, so a
 * chart change that needs more of Helm fails here first and this file grows with it.
 *
 * Supported: text and actions with `{{-`/`-}}` trimming and comments; pipelines; variables
 * (`$x := …`, `$`); `.Values` and friends; if / else if / else, range (lists and maps, with one
 * or two variables), with, define, template, include, tpl; functions default, quote, printf,
 * print, toYaml, indent, nindent, trunc, trimSuffix, contains, sha256sum, b64enc, list,
 * required, not, and, or, eq, ne, empty; `.Files.Get`; `.Template.BasePath`.
 *
 * Values follow Helm: numbers print as Go prints float64 (small integers as integers), a
 * missing map key prints as nothing, and the output of each file is split into YAML documents.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import YAML from 'yaml';

// ---------------- lexing and parsing ----------------

type Operand =
  | { kind: 'field'; path: string[] }
  | { kind: 'var'; name: string; path: string[] }
  | { kind: 'string'; value: string }
  | { kind: 'number'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'nil' }
  | { kind: 'ident'; name: string }
  | { kind: 'pipe'; pipeline: Pipeline };

interface Command {
  operands: Operand[];
}

interface Pipeline {
  /** Variables declared (`:=`) or assigned (`=`) by this pipeline. */
  decl: string[];
  assign: boolean;
  commands: Command[];
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipeline: Pipeline }
  | { kind: 'if'; branches: { cond: Pipeline; body: Node[] }[]; otherwise: Node[] }
  | { kind: 'range'; pipeline: Pipeline; body: Node[]; otherwise: Node[] }
  | { kind: 'with'; pipeline: Pipeline; body: Node[]; otherwise: Node[] }
  | { kind: 'template'; name: string; pipeline: Pipeline | null };

type Piece = { kind: 'text'; text: string } | { kind: 'action'; src: string; where: string };

/** Splits template text into text and action sources, applying the trim markers. */
function split(src: string, name: string): Piece[] {
  const pieces: Piece[] = [];
  let pos = 0;
  let trimNext = false;
  while (pos <= src.length) {
    const open = src.indexOf('{{', pos);
    let text = open < 0 ? src.slice(pos) : src.slice(pos, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    if (open < 0) {
      if (text !== '') pieces.push({ kind: 'text', text });
      break;
    }
    let start = open + 2;
    if (/^-\s/.test(src.slice(start, start + 2))) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    if (text !== '') pieces.push({ kind: 'text', text });
    const line = src.slice(0, open).split('\n').length;
    const where = `${name}:${line}`;
    const close = findClose(src, start, where);
    let end = close;
    trimNext = false;
    if (/\s-$/.test(src.slice(close - 2, close))) {
      end = close - 1;
      trimNext = true;
    }
    const body = src.slice(start, end).trim();
    if (!(body.startsWith('/*') && body.endsWith('*/'))) pieces.push({ kind: 'action', src: body, where });
    pos = close + 2;
  }
  return pieces;
}

/** The `}}` closing the action that starts at `from`, skipping quoted strings and comments. */
function findClose(src: string, from: number, where: string): number {
  let i = from;
  while (i < src.length) {
    const c = src[i];
    if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) break;
      i = end + 2;
    } else if (c === '"') {
      i++;
      while (i < src.length && src[i] !== '"') i += src[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '`') {
      const end = src.indexOf('`', i + 1);
      if (end < 0) break;
      i = end + 1;
    } else if (src.startsWith('}}', i)) {
      return i;
    } else {
      i++;
    }
  }
  throw new Error(`${where}: unclosed action`);
}

type Token =
  | { t: 'pipe' }
  | { t: 'lparen' }
  | { t: 'rparen' }
  | { t: 'comma' }
  | { t: 'declare' }
  | { t: 'assign' }
  | { t: 'string'; value: string }
  | { t: 'number'; value: number }
  | { t: 'field'; path: string[] }
  | { t: 'var'; name: string; path: string[] }
  | { t: 'ident'; name: string };

function tokenize(src: string, where: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`${where}: ${why} in {{ ${src} }}`);
  };
  const chain = (): string[] => {
    const path: string[] = [];
    while (src[i] === '.' && /[A-Za-z_]/.test(src[i + 1] ?? '')) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i + 1))!;
      path.push(m[0]);
      i += 1 + m[0].length;
    }
    return path;
  };
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
    } else if (c === '|') {
      tokens.push({ t: 'pipe' });
      i++;
    } else if (c === '(') {
      tokens.push({ t: 'lparen' });
      i++;
    } else if (c === ')') {
      tokens.push({ t: 'rparen' });
      i++;
      if (src[i] === '.') fail('a field of a parenthesized value is not supported');
    } else if (c === ',') {
      tokens.push({ t: 'comma' });
      i++;
    } else if (src.startsWith(':=', i)) {
      tokens.push({ t: 'declare' });
      i += 2;
    } else if (c === '=') {
      tokens.push({ t: 'assign' });
      i++;
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      if (j >= src.length) fail('unterminated string');
      tokens.push({ t: 'string', value: JSON.parse(src.slice(i, j + 1)) as string });
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) fail('unterminated raw string');
      tokens.push({ t: 'string', value: src.slice(i + 1, j) });
      i = j + 1;
    } else if (/[-0-9]/.test(c)) {
      const m = /^-?\d+(\.\d+)?/.exec(src.slice(i));
      if (!m) fail(`unexpected "${c}"`);
      tokens.push({ t: 'number', value: Number(m![0]) });
      i += m![0].length;
    } else if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*/.exec(src.slice(i))!;
      i += m[0].length;
      tokens.push({ t: 'var', name: m[0], path: chain() });
    } else if (c === '.') {
      if (/[A-Za-z_]/.test(src[i + 1] ?? '')) {
        tokens.push({ t: 'field', path: chain() });
      } else {
        tokens.push({ t: 'field', path: [] });
        i++;
      }
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      tokens.push({ t: 'ident', name: m[0] });
      i += m[0].length;
    } else {
      fail(`unexpected "${c}"`);
    }
  }
  return tokens;
}

class PipelineParser {
  private pos = 0;
  private readonly tokens: Token[];
  private readonly where: string;

  constructor(tokens: Token[], where: string) {
    this.tokens = tokens;
    this.where = where;
  }

  parse(allowDecl: boolean): Pipeline {
    const p = this.pipeline(allowDecl);
    if (this.pos < this.tokens.length) throw new Error(`${this.where}: unexpected ${this.tokens[this.pos].t}`);
    return p;
  }

  private pipeline(allowDecl: boolean): Pipeline {
    const decl: string[] = [];
    let assign = false;
    if (allowDecl) {
      // `$x :=`, `$x =`, `$i, $v :=`
      let k = this.pos;
      const names: string[] = [];
      while (this.tokens[k]?.t === 'var') {
        const v = this.tokens[k] as { t: 'var'; name: string; path: string[] };
        if (v.path.length > 0) break;
        names.push(v.name);
        k++;
        if (this.tokens[k]?.t === 'comma') k++;
        else break;
      }
      const op = this.tokens[k]?.t;
      if (names.length > 0 && (op === 'declare' || op === 'assign')) {
        decl.push(...names);
        assign = op === 'assign';
        this.pos = k + 1;
      }
    }
    const commands: Command[] = [this.command()];
    while (this.tokens[this.pos]?.t === 'pipe') {
      this.pos++;
      commands.push(this.command());
    }
    return { decl, assign, commands };
  }

  private command(): Command {
    const operands: Operand[] = [];
    while (this.pos < this.tokens.length) {
      const tok = this.tokens[this.pos];
      if (tok.t === 'pipe' || tok.t === 'rparen') break;
      this.pos++;
      switch (tok.t) {
        case 'string':
          operands.push({ kind: 'string', value: tok.value });
          break;
        case 'number':
          operands.push({ kind: 'number', value: tok.value });
          break;
        case 'field':
          operands.push({ kind: 'field', path: tok.path });
          break;
        case 'var':
          operands.push({ kind: 'var', name: tok.name, path: tok.path });
          break;
        case 'ident':
          if (tok.name === 'true' || tok.name === 'false') operands.push({ kind: 'bool', value: tok.name === 'true' });
          else if (tok.name === 'nil') operands.push({ kind: 'nil' });
          else operands.push({ kind: 'ident', name: tok.name });
          break;
        case 'lparen': {
          const inner = this.pipeline(false);
          if (this.tokens[this.pos]?.t !== 'rparen') throw new Error(`${this.where}: missing )`);
          this.pos++;
          operands.push({ kind: 'pipe', pipeline: inner });
          break;
        }
        default:
          throw new Error(`${this.where}: unexpected ${tok.t}`);
      }
    }
    if (operands.length === 0) throw new Error(`${this.where}: empty command`);
    return { operands };
  }
}

function parsePipeline(src: string, where: string, allowDecl = true): Pipeline {
  return new PipelineParser(tokenize(src, where), where).parse(allowDecl);
}

interface Parsed {
  nodes: Node[];
  defines: Map<string, Node[]>;
}

/** Parses a whole template file into nodes and the templates it defines. */
function parseTemplate(src: string, name: string): Parsed {
  const pieces = split(src, name);
  const defines = new Map<string, Node[]>();
  let i = 0;

  const block = (stopAt: readonly string[]): { nodes: Node[]; stop: string; rest: string; where: string } => {
    const nodes: Node[] = [];
    while (i < pieces.length) {
      const p = pieces[i++];
      if (p.kind === 'text') {
        nodes.push({ kind: 'text', text: p.text });
        continue;
      }
      const kw = /^(if|else|end|range|with|define|template|block)\b\s*/.exec(p.src);
      const word = kw?.[1];
      const rest = kw ? p.src.slice(kw[0].length) : p.src;
      if (word === 'end' || word === 'else') {
        if (!stopAt.includes(word)) throw new Error(`${p.where}: unexpected {{ ${word} }}`);
        return { nodes, stop: word, rest, where: p.where };
      }
      if (word === 'if') {
        const branches = [{ cond: parsePipeline(rest, p.where), body: [] as Node[] }];
        let otherwise: Node[] = [];
        while (true) {
          const b = block(['else', 'end']);
          branches[branches.length - 1].body = b.nodes;
          if (b.stop === 'end') break;
          const elseIf = /^if\b\s*/.exec(b.rest);
          if (elseIf) {
            branches.push({ cond: parsePipeline(b.rest.slice(elseIf[0].length), b.where), body: [] });
            continue;
          }
          if (b.rest !== '') throw new Error(`${b.where}: only "else" and "else if" are supported`);
          otherwise = block(['end']).nodes;
          break;
        }
        nodes.push({ kind: 'if', branches, otherwise });
      } else if (word === 'range' || word === 'with') {
        const pipeline = parsePipeline(rest, p.where);
        const b = block(['else', 'end']);
        const otherwise = b.stop === 'else' ? block(['end']).nodes : [];
        nodes.push({ kind: word, pipeline, body: b.nodes, otherwise });
      } else if (word === 'define') {
        const m = /^"([^"]+)"$/.exec(rest.trim());
        if (!m) throw new Error(`${p.where}: define needs a quoted name`);
        defines.set(m[1], block(['end']).nodes);
      } else if (word === 'template') {
        const m = /^"([^"]+)"\s*(.*)$/.exec(rest.trim());
        if (!m) throw new Error(`${p.where}: template needs a quoted name`);
        nodes.push({ kind: 'template', name: m[1], pipeline: m[2] === '' ? null : parsePipeline(m[2], p.where, false) });
      } else if (word === 'block') {
        throw new Error(`${p.where}: block is not supported`);
      } else {
        nodes.push({ kind: 'action', pipeline: parsePipeline(p.src, p.where) });
      }
    }
    if (stopAt.length > 0) throw new Error(`${name}: missing {{ end }}`);
    return { nodes, stop: '', rest: '', where: name };
  };

  const { nodes } = block([]);
  return { nodes, defines };
}

// ---------------- evaluation ----------------

type Fn = (...args: unknown[]) => unknown;

/** Go's notion of truth: false, 0, nil, and empty strings, lists and maps are false. */
function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Go's %v for the values a chart prints; lists and maps have no place in a manifest. */
function show(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) < 1e21 ? v.toFixed(0) : String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  throw new Error(`render-chart: cannot print ${Array.isArray(v) ? 'a list' : 'a map'} (use toYaml)`);
}

function goQuote(s: string): string {
  return JSON.stringify(s);
}

function goSprintf(format: string, args: unknown[]): string {
  let n = 0;
  return format.replace(/%([%sdvq])/g, (_m, verb: string) => {
    if (verb === '%') return '%';
    const a = args[n++];
    if (verb === 'q') return goQuote(show(a));
    if (verb === 'd' && typeof a !== 'number') throw new Error(`render-chart: printf %d of ${typeof a}`);
    return show(a);
  });
}

class Scope {
  private readonly vars = new Map<string, unknown>();
  private readonly parent: Scope | null;

  constructor(parent: Scope | null) {
    this.parent = parent;
  }

  get(name: string): unknown {
    if (this.vars.has(name)) return this.vars.get(name);
    if (this.parent) return this.parent.get(name);
    throw new Error(`render-chart: undefined variable ${name}`);
  }

  declare(name: string, value: unknown): void {
    this.vars.set(name, value);
  }

  assign(name: string, value: unknown): void {
    if (this.vars.has(name)) this.vars.set(name, value);
    else if (this.parent) this.parent.assign(name, value);
    else throw new Error(`render-chart: assignment to undeclared ${name}`);
  }
}

class Engine {
  readonly templates = new Map<string, Node[]>();
  private readonly functions: Record<string, Fn>;
  private depth = 0;

  constructor() {
    const includeFn = (name: unknown, ctx: unknown): string => this.include(String(name), ctx);
    const tplFn = (text: unknown, ctx: unknown): string => {
      const parsed = parseTemplate(String(text), 'tpl');
      for (const [k, v] of parsed.defines) this.templates.set(k, v);
      return this.run(parsed.nodes, ctx);
    };
    this.functions = {
      include: includeFn,
      tpl: tplFn,
      toYaml: (v) => (v === undefined || v === null ? 'null' : YAML.stringify(v, { sortMapEntries: true, lineWidth: 0 }).replace(/\n$/, '')),
      indent: (n, s) => {
        const pad = ' '.repeat(Number(n));
        return pad + show(s).replaceAll('\n', `\n${pad}`);
      },
      nindent: (n, s) => {
        const pad = ' '.repeat(Number(n));
        return `\n${pad}${show(s).replaceAll('\n', `\n${pad}`)}`;
      },
      default: (d, v) => (truthy(v) ? v : d),
      quote: (...args) => args.filter((a) => a !== undefined && a !== null).map((a) => goQuote(show(a))).join(' '),
      printf: (format, ...args) => goSprintf(String(format), args),
      print: (...args) => {
        let out = '';
        args.forEach((a, i) => {
          if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
          out += show(a);
        });
        return out;
      },
      trunc: (n, s) => show(s).slice(0, Number(n)),
      trimSuffix: (suffix, s) => {
        const str = show(s);
        const suf = String(suffix);
        return suf !== '' && str.endsWith(suf) ? str.slice(0, -suf.length) : str;
      },
      contains: (sub, s) => show(s).includes(String(sub)),
      sha256sum: (s) => createHash('sha256').update(show(s)).digest('hex'),
      b64enc: (s) => Buffer.from(show(s)).toString('base64'),
      list: (...args) => args,
      required: (message, v) => {
        if (v === undefined || v === null || v === '') throw new Error(`render-chart: ${String(message)}`);
        return v;
      },
      not: (v) => !truthy(v),
      and: (...args) => {
        for (const a of args) if (!truthy(a)) return a;
        return args[args.length - 1];
      },
      or: (...args) => {
        for (const a of args) if (truthy(a)) return a;
        return args[args.length - 1];
      },
      eq: (a, ...rest) => rest.some((b) => a === b),
      ne: (a, b) => a !== b,
      empty: (v) => !truthy(v),
    };
  }

  include(name: string, ctx: unknown): string {
    const nodes = this.templates.get(name);
    if (!nodes) throw new Error(`render-chart: no template named "${name}"`);
    if (++this.depth > 100) throw new Error(`render-chart: include of "${name}" recurses too deep`);
    try {
      return this.run(nodes, ctx);
    } finally {
      this.depth--;
    }
  }

  run(nodes: Node[], dot: unknown): string {
    const root = new Scope(null);
    root.declare('$', dot);
    return this.exec(nodes, dot, root);
  }

  private exec(nodes: Node[], dot: unknown, scope: Scope): string {
    let out = '';
    for (const node of nodes) {
      switch (node.kind) {
        case 'text':
          out += node.text;
          break;
        case 'action': {
          const v = this.pipeline(node.pipeline, dot, scope);
          if (node.pipeline.decl.length === 0) out += show(v);
          break;
        }
        case 'if': {
          const inner = new Scope(scope);
          const hit = node.branches.find((b) => truthy(this.pipeline(b.cond, dot, inner)));
          out += this.exec(hit ? hit.body : node.otherwise, dot, inner);
          break;
        }
        case 'with': {
          const inner = new Scope(scope);
          const v = this.pipeline(node.pipeline, dot, inner);
          out += truthy(v) ? this.exec(node.body, v, inner) : this.exec(node.otherwise, dot, inner);
          break;
        }
        case 'range': {
          const decl = node.pipeline.decl;
          const v = this.pipeline({ decl: [], assign: false, commands: node.pipeline.commands }, dot, scope);
          const entries: [unknown, unknown][] = Array.isArray(v)
            ? v.map((e, i) => [i, e])
            : isMap(v)
              ? Object.keys(v)
                  .sort()
                  .map((k) => [k, v[k]])
              : v === undefined || v === null
                ? []
                : (() => {
                    throw new Error(`render-chart: cannot range over ${typeof v}`);
                  })();
          if (entries.length === 0) {
            out += this.exec(node.otherwise, dot, new Scope(scope));
            break;
          }
          for (const [key, elem] of entries) {
            const inner = new Scope(scope);
            if (decl.length === 1) inner.declare(decl[0], elem);
            if (decl.length === 2) {
              inner.declare(decl[0], key);
              inner.declare(decl[1], elem);
            }
            out += this.exec(node.body, elem, inner);
          }
          break;
        }
        case 'template':
          out += this.include(node.name, node.pipeline ? this.pipeline(node.pipeline, dot, scope) : undefined);
          break;
      }
    }
    return out;
  }

  private pipeline(p: Pipeline, dot: unknown, scope: Scope): unknown {
    let value: unknown = undefined;
    p.commands.forEach((cmd, i) => {
      value = this.command(cmd, dot, scope, i === 0 ? [] : [value]);
    });
    if (p.decl.length === 1) {
      if (p.assign) scope.assign(p.decl[0], value);
      else scope.declare(p.decl[0], value);
    } else if (p.decl.length > 1) {
      throw new Error('render-chart: two variables are only allowed in range');
    }
    return value;
  }

  private command(cmd: Command, dot: unknown, scope: Scope, piped: unknown[]): unknown {
    const [head, ...rest] = cmd.operands;
    const args = (): unknown[] => [...rest.map((o) => this.operand(o, dot, scope)), ...piped];
    if (head.kind === 'ident') {
      const fn = this.functions[head.name];
      if (!fn) throw new Error(`render-chart: function "${head.name}" is not supported`);
      return fn(...args());
    }
    const v = this.operand(head, dot, scope);
    if (typeof v === 'function') return (v as Fn)(...args());
    if (rest.length > 0 || piped.length > 0) throw new Error('render-chart: a value cannot take arguments');
    return v;
  }

  private operand(o: Operand, dot: unknown, scope: Scope): unknown {
    switch (o.kind) {
      case 'string':
      case 'number':
      case 'bool':
        return o.value;
      case 'nil':
        return null;
      case 'field':
        return walk(dot, o.path, '.');
      case 'var':
        return walk(scope.get(o.name), o.path, o.name);
      case 'pipe':
        return this.pipeline(o.pipeline, dot, scope);
      case 'ident': {
        const fn = this.functions[o.name];
        if (!fn) throw new Error(`render-chart: function "${o.name}" is not supported`);
        return fn();
      }
    }
  }
}

/** Follows a field chain as Go does on maps: a missing key is no value, a field of no value an error. */
function walk(start: unknown, path: string[], what: string): unknown {
  let v = start;
  let at = what;
  for (const key of path) {
    if (v === undefined || v === null) throw new Error(`render-chart: nil pointer evaluating ${at}.${key}`);
    if (!isMap(v)) throw new Error(`render-chart: ${at} is not a map, cannot read .${key}`);
    v = v[key];
    at += `.${key}`;
  }
  return v;
}

// ---------------- the chart ----------------

/** Helm's value merge: maps merge key by key, anything else replaces, null deletes. */
export function mergeValues(base: unknown, override: unknown): unknown {
  if (!isMap(base) || !isMap(override)) return override;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) {
    if (v === null) delete out[k];
    else out[k] = mergeValues(base[k], v);
  }
  return out;
}

export interface RenderOptions {
  releaseName: string;
  namespace: string;
  /** Merged over the chart's values.yaml, like `helm --set`/`-f`. */
  values?: Record<string, unknown>;
}

export interface RenderedDocument {
  /** Template file, e.g. "templates/agent-daemonset.yaml". */
  file: string;
  object: Record<string, unknown>;
}

export interface RenderedChart {
  /** Rendered text of every template (not the `_` partials), by path inside the chart. */
  files: Map<string, string>;
  /** Every non-empty YAML document of the manifests (NOTES.txt excluded). */
  documents: RenderedDocument[];
  values: Record<string, unknown>;
}

/** Renders the chart in `chartDir` as `helm template <releaseName> <chartDir> -n <namespace>` would. */
export function renderChart(chartDir: string, options: RenderOptions): RenderedChart {
  const chart = YAML.parse(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) as Record<string, unknown>;
  const chartName = String(chart.name);
  const defaults = (YAML.parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) ?? {}) as Record<string, unknown>;
  const values = mergeValues(defaults, options.values ?? {}) as Record<string, unknown>;

  const engine = new Engine();
  const templateDir = join(chartDir, 'templates');
  const files = readdirSync(templateDir)
    .filter((f) => /\.(ya?ml|tpl|txt)$/.test(f))
    .sort();
  const bodies = new Map<string, Node[]>();
  for (const f of files) {
    const name = `${chartName}/templates/${f}`;
    const parsed = parseTemplate(readFileSync(join(templateDir, f), 'utf8'), name);
    for (const [k, v] of parsed.defines) engine.templates.set(k, v);
    engine.templates.set(name, parsed.nodes);
    if (!f.startsWith('_')) bodies.set(f, parsed.nodes);
  }

  const upper = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k[0].toUpperCase() + k.slice(1), v]));
  const context: Record<string, unknown> = {
    Values: values,
    Chart: upper(chart),
    Release: { Name: options.releaseName, Namespace: options.namespace, Service: 'Helm', IsInstall: true, IsUpgrade: false, Revision: 1 },
    Template: { BasePath: `${chartName}/templates`, Name: '' },
    Files: {
      Get: (path: unknown): string => {
        const p = join(chartDir, String(path));
        return existsSync(p) ? readFileSync(p, 'utf8') : '';
      },
    },
  };

  const rendered = new Map<string, string>();
  const documents: RenderedDocument[] = [];
  for (const [f, nodes] of bodies) {
    const file = `templates/${f}`;
    (context.Template as Record<string, unknown>).Name = `${chartName}/${file}`;
    const text = engine.run(nodes, context);
    rendered.set(file, text);
    if (!/\.ya?ml$/.test(f)) continue;
    for (const doc of YAML.parseAllDocuments(text)) {
      if (doc.errors.length > 0) throw new Error(`${file}: rendered YAML does not parse: ${doc.errors[0].message}\n${text}`);
      const object: unknown = doc.toJS();
      if (object === null || object === undefined) continue;
      if (!isMap(object)) throw new Error(`${file}: a rendered document is not a map`);
      documents.push({ file, object });
    }
  }
  return { files: rendered, documents, values };
}
