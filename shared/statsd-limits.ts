/**
 * The limits one statsd item must keep, in one place for both roles: the agent refuses a line
 * that breaks one when it parses it (counted in plumb_statsd_parse_errors_total{reason}), and the
 * collector's schema for POST /v1/metrics refuses the one item that breaks one, not its batch.
 * Lengths are in UTF-16 code units (JavaScript string length) of the decoded text, on both sides.
 */
export const STATSD_LIMITS = {
  /** A metric or service check name. */
  maxNameLength: 1024,
  /** One tag, `key:value` together. */
  maxTagLength: 4096,
  /** Tags of one metric, event or service check (after the agent's own tags are added). */
  maxTags: 256,
  /** One set member. */
  maxSetMemberLength: 4096,
  /** An event's title; its text; a service check's message. */
  maxEventTitleLength: 1024,
  maxEventTextLength: 65536,
  /** Every other short string field of an event or service check (hostname, aggregation key…). */
  maxFieldLength: 1024,
} as const;

export type StatsdLimitBreach = 'name_too_long' | 'tag_too_long' | 'too_many_tags';

/** Which limit a name and its tags break, if any. */
export function checkSeriesLimits(name: string, tags: readonly string[]): StatsdLimitBreach | null {
  if (name.length > STATSD_LIMITS.maxNameLength) return 'name_too_long';
  return checkTagLimits(tags);
}

export function checkTagLimits(tags: readonly string[]): StatsdLimitBreach | null {
  if (tags.length > STATSD_LIMITS.maxTags) return 'too_many_tags';
  for (let i = 0; i < tags.length; i++) if (tags[i].length > STATSD_LIMITS.maxTagLength) return 'tag_too_long';
  return null;
}
