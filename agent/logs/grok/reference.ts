/**
 * The `%{…}` reference syntax of grok: `%{NAME}`, `%{NAME:field}`, `%{NAME:field:int}`, and
 * `%{NAME:field=expression}`, which defines NAME on the spot. Names are letters, digits and
 * underscores; a field may be a path such as `[http][status]`.
 */
export const PATTERN_REFERENCE = /%\{(\w+)(?::([^{}=\s]+))?(?:=((?:[^{}\\]|\\.|\{[^{}]*\})+))?\}/;

/**
 * The expression with every reference replaced by an empty group padded to the same length,
 * so a syntax check of one definition reports offsets that point into the text as written.
 */
export function stubReferences(expression: string): string {
  return expression.replace(new RegExp(PATTERN_REFERENCE.source, 'g'), (ref) => `(?:)${'x'.repeat(ref.length - 4)}`);
}

/** How a captured value is typed: the `:int` / `:float` suffix (anything else stays a string). */
export const VALUE_STRING = 0;
export const VALUE_INT = 1;
export const VALUE_FLOAT = 2;
export type ValueType = typeof VALUE_STRING | typeof VALUE_INT | typeof VALUE_FLOAT;

export interface CaptureName {
  /** Field name as written, without the type suffix. */
  field: string;
  type: ValueType;
}

/**
 * Splits `field:type` the way Logstash does: the first part is the field, the second the type;
 * unknown types and further parts are ignored.
 */
export function parseCaptureName(text: string): CaptureName {
  const parts = text.split(':');
  const type = parts[1] === 'int' ? VALUE_INT : parts[1] === 'float' ? VALUE_FLOAT : VALUE_STRING;
  return { field: parts[0], type };
}

/** `[a][b]` → ["a", "b"]; any other name is one key. */
export function fieldPath(field: string): string[] {
  if (/^(\[[^[\]]+\])+$/.test(field)) return field.slice(1, -1).split('][');
  return [field];
}
