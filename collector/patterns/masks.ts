/**
 * Variables the miner masks before it compares messages: each match becomes `<*>`. Order
 * matters (a date before the numbers inside it). They are the generic ones (times, addresses,
 * hex, numbers); more can be added per deployment in collector.patterns.masks.
 */
export const DEFAULT_MASKS: readonly RegExp[] = [
  // "Fri Jun 17 07:07:00 2005", as syslog and many daemons print it
  /\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}(?:\s+\d{4})?\b/g,
  // ISO 8601 / RFC 3339
  /\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?\b/g,
  /\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b/g,
  // UUIDs
  /\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b/g,
  // IPv4, with a port
  /(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?(?![\w.])/g,
  /\b0x[0-9a-fA-F]+\b/g,
  // file paths of two or more parts
  /(?<![\w/.])(?:\/[\w.+@%-]+){2,}\/?/g,
  // identifiers around a long number: blk_-1727475099218615100, job_200811092030_0001
  /(?<![\w-])[\w-]*\d{5,}[\w-]*/g,
  // numbers standing alone (not inside words such as "ssh2" or "blk_123")
  /(?<![\w])-?\d+(?:\.\d+)?(?![\w])/g,
];
