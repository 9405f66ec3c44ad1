/** What host metrics and service checks hand to the agent's aggregator. */

export interface HostSample {
  name: string;
  /** 'g' gauge: the value now. 'c' counter: the increase during the interval. */
  type: 'g' | 'c';
  value: number;
  /** Shared between the samples of one series group: read them, never change them. */
  tags: string[];
}

/**
 * A tag value safe in any statsd path: the separators of the line protocol (',', '|', '#')
 * and whitespace become '_'. Mount points and device names come from the system, not from us.
 */
export function tagValue(v: string): string {
  return /[\s,|#]/.test(v) ? v.replace(/[\s,|#]/g, '_') : v;
}
