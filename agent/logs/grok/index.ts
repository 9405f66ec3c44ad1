/** The grok engine, its pattern library and date parsing: what the rest of the agent uses. */
export { Grok, compileGrok, type GrokChunkResult, type GrokFields, type GrokOptions, type GrokScalar, type GrokValue } from './grok.ts';
export { PatternLibrary, builtinPatternsDir, parsePatternText, type PatternDefinition } from './library.ts';
export { GrokPatternError } from './pattern-error.ts';
export { DateParser, compileDateParser, type DateParserOptions } from './date.ts';
export { runGrokCli, flattenFields, type GrokCliOptions } from './cli.ts';
