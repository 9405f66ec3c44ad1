/**
 * A library of named grok patterns: `NAME expression` definitions, loaded from pattern files
 * (Logstash's format: one definition per line, `#` comments, blank lines ignored; a later
 * definition of a name replaces an earlier one) or given inline.
 *
 * Each definition's own syntax is checked when it is added, so a bad expression is reported
 * with its name and file line; references between patterns are resolved later, when a grok
 * expression is compiled (a patterns directory may refer to names defined elsewhere).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { translateOniguruma } from './oniguruma.ts';
import { GrokPatternError } from './pattern-error.ts';
import { stubReferences } from './reference.ts';

export interface PatternDefinition {
  name: string;
  expression: string;
  /** Where it came from, for messages: `file:line` or `<inline>`. */
  source: string;
}

const NAME = /^[A-Za-z0-9_]+$/;

export class PatternLibrary {
  private readonly definitions: Map<string, PatternDefinition>;

  constructor(definitions?: Iterable<PatternDefinition>) {
    this.definitions = new Map();
    if (definitions) for (const d of definitions) this.definitions.set(d.name, d);
  }

  /** A new library holding plumb's built-in patterns (config/patterns), read once per process. */
  static builtin(): PatternLibrary {
    builtinDefinitions ??= loadBuiltin();
    return new PatternLibrary(builtinDefinitions);
  }

  clone(): PatternLibrary {
    return new PatternLibrary(this.definitions.values());
  }

  get(name: string): PatternDefinition | undefined {
    return this.definitions.get(name);
  }

  has(name: string): boolean {
    return this.definitions.has(name);
  }

  names(): string[] {
    return [...this.definitions.keys()];
  }

  get size(): number {
    return this.definitions.size;
  }

  /** Adds or replaces one definition after checking its syntax. */
  define(name: string, expression: string, source = '<inline>'): this {
    if (!NAME.test(name)) {
      throw new GrokPatternError(name, `grok pattern name "${name}" (${source}) must be letters, digits and underscores`);
    }
    checkSyntax(name, expression, source);
    this.definitions.set(name, { name, expression, source });
    return this;
  }

  /** Adds every definition in pattern-file text. */
  loadText(text: string, source = '<inline>'): this {
    for (const d of parsePatternText(text, source)) this.define(d.name, d.expression, d.source);
    return this;
  }

  loadFile(path: string): this {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new GrokPatternError(path, `grok pattern file ${path} cannot be read (${(err as Error).message})`, { cause: err });
    }
    return this.loadText(text, path);
  }

  /**
   * Loads a pattern file, or every file in a directory (not recursing, skipping dot-files), in
   * name order so that overrides between files are predictable.
   */
  loadPath(path: string): this {
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (err) {
      throw new GrokPatternError(path, `grok patterns path ${path} cannot be read (${(err as Error).message})`, { cause: err });
    }
    if (!isDir) return this.loadFile(path);
    const files = readdirSync(path, { withFileTypes: true })
      .filter((e) => !e.name.startsWith('.') && (e.isFile() || e.isSymbolicLink()))
      .map((e) => e.name)
      .sort();
    for (const f of files) this.loadFile(join(path, f));
    return this;
  }
}

/** Splits pattern-file text into definitions. Trailing spaces belong to the expression. */
export function parsePatternText(text: string, source: string): PatternDefinition[] {
  const out: PatternDefinition[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i];
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (/^\s*(#|$)/.test(line)) continue;
    const m = /^\s*(\S+)(?:[ \t]+(.*))?$/.exec(line);
    const where = `${source}:${i + 1}`;
    if (m === null || m[2] === undefined || m[2] === '') {
      throw new GrokPatternError(m?.[1] ?? line, `grok pattern file ${where}: expected "NAME expression", got ${JSON.stringify(line)}`);
    }
    if (!NAME.test(m[1])) {
      throw new GrokPatternError(m[1], `grok pattern file ${where}: pattern name "${m[1]}" must be letters, digits and underscores`);
    }
    out.push({ name: m[1], expression: m[2], source: where });
  }
  return out;
}

/** Checks one definition's regular-expression syntax with its references stubbed out. */
function checkSyntax(name: string, expression: string, source: string): void {
  const problem = syntaxProblem(expression);
  if (problem !== undefined) {
    throw new GrokPatternError(name, `grok pattern ${name} (${source}) is not a valid regular expression: ${problem}`);
  }
}

/** Why an expression (its references aside) is not a valid regular expression, or undefined. */
export function syntaxProblem(expression: string): string | undefined {
  try {
    new RegExp(translateOniguruma(stubReferences(expression)).source, 'u');
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

let builtinDefinitions: PatternDefinition[] | undefined;

/** config/patterns sits at the package root, three levels up from here (four from dist/). */
export function builtinPatternsDir(): string {
  for (const rel of ['../../../config/patterns/', '../../../../config/patterns/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  throw new GrokPatternError('<builtin>', 'the built-in grok patterns (config/patterns) are missing from this installation; reinstall plumb');
}

function loadBuiltin(): PatternDefinition[] {
  const lib = new PatternLibrary().loadPath(builtinPatternsDir());
  return lib.names().map((n) => lib.get(n)!);
}
