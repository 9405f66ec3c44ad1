/**
 * Object keys of the S3 archive: `<prefix>yyyy/MM/dd/HH/<host>/<first id>-<last id>-<digest>.ndjson.gz`,
 * by the UTC hour of the events' @timestamp and the host that sent them. The name is derived
 * from the object's content (the ids of its first and last events and a digest of all its
 * lines), so uploading the same events again overwrites the same object instead of adding a
 * copy, and different events never share a key.
 */
import { createHash } from 'node:crypto';
import type { LogEvent } from './event.ts';

export const OBJECT_SUFFIX = '.ndjson.gz';

/** A host name made safe for a key segment. */
export function hostSegment(host: string): string {
  if (host === '') return '_unknown';
  const safe = host.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100);
  return safe === '.' || safe === '..' ? safe.replace(/\./g, '_') : safe;
}

/** The key of an object holding `events` (all of one UTC hour and one host). */
export function objectKey(prefix: string, events: readonly LogEvent[]): string {
  const first = events[0];
  const last = events[events.length - 1];
  const ts = first.timestamp;
  const hash = createHash('sha256');
  for (const e of events) {
    hash.update(e.line);
    hash.update('\n');
  }
  const digest = hash.digest('hex').slice(0, 16);
  return `${prefix}${ts.slice(0, 4)}/${ts.slice(5, 7)}/${ts.slice(8, 10)}/${ts.slice(11, 13)}/${hostSegment(first.host)}/${idSegment(first.id)}-${idSegment(last.id)}-${digest}${OBJECT_SUFFIX}`;
}

function idSegment(id: string): string {
  return id === '' ? 'noid' : id.replace(/[^A-Za-z0-9_.]/g, '_').slice(0, 64);
}

const KEY_TAIL = /(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})\/[^/]+\/[^/]+\.ndjson\.gz$/;

/**
 * The UTC hour an archive key belongs to (start of the hour, Unix ms), read from its
 * `yyyy/MM/dd/HH/<host>/<name>.ndjson.gz` tail; undefined for a key that is not an archive object.
 */
export function keyHour(key: string): number | undefined {
  const m = KEY_TAIL.exec(key);
  if (!m) return undefined;
  const [y, mo, d, h] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23) return undefined;
  return Date.UTC(y, mo - 1, d, h);
}

/** Groups events by UTC hour and host, keeping their order within each group. */
export function groupByHourAndHost(events: readonly LogEvent[]): LogEvent[][] {
  const groups = new Map<string, LogEvent[]>();
  for (const e of events) {
    const k = `${e.timestamp.slice(0, 13)}\u0000${e.host}`;
    let g = groups.get(k);
    if (g === undefined) groups.set(k, (g = []));
    g.push(e);
  }
  return [...groups.values()];
}
