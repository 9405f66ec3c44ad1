/**
 * UTC offsets of IANA time zones, from the runtime's Intl data.
 *
 * Intl is slow per call, so offsets are cached per zone in 15-minute buckets of UTC time: zone
 * transitions in the tz database fall on quarter hours, so every instant in a bucket shares
 * one offset. The cache is bounded.
 */

const BUCKET_MS = 15 * 60_000;
const MAX_CACHED = 8192;
const validity = new Map<string, boolean>();
const zones = new Map<string, ZoneOffsets>();

/** True when the runtime knows the zone id ("Europe/Berlin", "UTC", "America/New_York"). */
export function isValidTimeZone(id: string): boolean {
  let ok = validity.get(id);
  if (ok === undefined) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: id });
      ok = true;
    } catch {
      ok = false;
    }
    if (validity.size < MAX_CACHED) validity.set(id, ok);
  }
  return ok;
}

/** The zone this process runs in. */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** Offsets for one zone; shared per zone id. The id must be valid (see isValidTimeZone). */
export function zoneOffsets(id: string): ZoneOffsets {
  let z = zones.get(id);
  if (z === undefined) {
    z = new ZoneOffsets(id);
    if (zones.size < MAX_CACHED) zones.set(id, z);
  }
  return z;
}

export class ZoneOffsets {
  readonly id: string;
  private readonly fixed: boolean;
  private readonly format: Intl.DateTimeFormat;
  private readonly cache = new Map<number, number>();

  constructor(id: string) {
    this.id = id;
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone: id,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    const resolved = this.format.resolvedOptions().timeZone;
    this.fixed = resolved === 'UTC' || resolved === 'Etc/UTC' || resolved === 'Etc/GMT' || resolved === 'GMT';
  }

  /** Milliseconds to add to a UTC instant to get the zone's wall-clock time at that instant. */
  offsetAt(utcMs: number): number {
    if (this.fixed) return 0;
    const bucket = Math.floor(utcMs / BUCKET_MS);
    let off = this.cache.get(bucket);
    if (off === undefined) {
      off = this.compute(bucket * BUCKET_MS);
      if (this.cache.size >= MAX_CACHED) this.cache.clear();
      this.cache.set(bucket, off);
    }
    return off;
  }

  /**
   * The UTC instant of a wall-clock time in this zone (wall time given as if it were UTC).
   * A time that occurs twice (clocks set back) resolves to the earlier instant; a time
   * skipped by a transition (clocks set forward) moves forward by the gap, as java.time does.
   */
  toUtc(wallMs: number): number {
    if (this.fixed) return wallMs;
    const guess = wallMs - this.offsetAt(wallMs);
    const before = this.offsetAt(guess - 6 * 3_600_000);
    const after = this.offsetAt(guess + 6 * 3_600_000);
    if (before === after) return wallMs - before;
    const okBefore = this.offsetAt(wallMs - before) === before;
    const okAfter = this.offsetAt(wallMs - after) === after;
    if (okBefore && okAfter) return wallMs - Math.max(before, after);
    if (okBefore) return wallMs - before;
    if (okAfter) return wallMs - after;
    return wallMs - Math.min(before, after);
  }

  private compute(utcMs: number): number {
    let year = 0;
    let month = 1;
    let day = 1;
    let hour = 0;
    let minute = 0;
    let second = 0;
    let bc = false;
    for (const part of this.format.formatToParts(utcMs)) {
      switch (part.type) {
        case 'year':
          year = Number(part.value);
          break;
        case 'month':
          month = Number(part.value);
          break;
        case 'day':
          day = Number(part.value);
          break;
        case 'hour':
          hour = Number(part.value);
          break;
        case 'minute':
          minute = Number(part.value);
          break;
        case 'second':
          second = Number(part.value);
          break;
        case 'era':
          bc = part.value.startsWith('B');
          break;
        default:
          break;
      }
    }
    const wall = utcWall(bc ? 1 - year : year, month, day, hour, minute, second, 0);
    const whole = utcMs - (((utcMs % 1000) + 1000) % 1000);
    return wall - whole;
  }
}

/** Date.UTC without its mapping of years 0–99 to 1900–1999. */
export function utcWall(year: number, month: number, day: number, hour: number, minute: number, second: number, ms: number): number {
  if (year >= 0 && year < 100) {
    // Shift by one 400-year Gregorian cycle, which has a whole number of days.
    return Date.UTC(year + 400, month - 1, day, hour, minute, second, ms) - 12_622_780_800_000;
  }
  return Date.UTC(year, month - 1, day, hour, minute, second, ms);
}
