import { PlumbError } from '../../../shared/errors.ts';

/**
 * A grok pattern that cannot be used: unknown reference, cycle, bad regular expression, bad
 * pattern-file line. Raised while loading or compiling, never while matching. Patterns are
 * configuration, so the code is the configuration one; `pattern` names the offender.
 */
export class GrokPatternError extends PlumbError {
  /** The pattern name (or the expression itself, for an anonymous top-level expression). */
  readonly pattern: string;
  constructor(pattern: string, message: string, options?: { cause?: unknown }) {
    super('PLUMB_ERR_GROK_PATTERN', message, options);
    this.name = 'GrokPatternError';
    this.pattern = pattern;
  }
}
