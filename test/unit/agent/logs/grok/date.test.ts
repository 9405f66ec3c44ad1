import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileDateParser, DateParser } from '../../../../../agent/logs/grok/index.ts';

const at = (iso: string): number => Date.parse(iso);

function parse(formats: string | string[], text: string, options: { timezone?: string; now?: string } = {}): string | undefined {
  const p = compileDateParser(formats, { timezone: options.timezone ?? 'UTC' });
  const t = p.parse(text, options.now === undefined ? undefined : at(options.now));
  return t === undefined ? undefined : new Date(t).toISOString();
}

describe('Joda-style formats', () => {
  it('reads Apache, ISO-like, syslog-with-year and Tomcat timestamps', () => {
    expect(parse('dd/MMM/yyyy:HH:mm:ss Z', '10/Oct/2000:13:55:36 -0700')).toBe('2000-10-10T20:55:36.000Z');
    expect(parse("yyyy-MM-dd'T'HH:mm:ss.SSSZZ", '2014-01-09T17:32:25.527+01:00')).toBe('2014-01-09T16:32:25.527Z');
    expect(parse('yyyy-MM-dd HH:mm:ss,SSS Z', '2014-01-09 20:03:28,269 -0800')).toBe('2014-01-10T04:03:28.269Z');
    expect(parse('EEE MMM dd HH:mm:ss yyyy', 'Wed Oct 11 14:32:52 2000')).toBe('2000-10-11T14:32:52.000Z');
    expect(parse('EEEE, dd MMMM yyyy', 'Wednesday, 11 October 2000')).toBe('2000-10-11T00:00:00.000Z');
    expect(parse('MMM d, yyyy h:mm:ss a', 'Jan 9, 2014 7:13:13 PM')).toBe('2014-01-09T19:13:13.000Z');
    expect(parse('MMM d, yyyy h:mm:ss a', 'Jan 9, 2014 12:05:00 AM')).toBe('2014-01-09T00:05:00.000Z');
    expect(parse('dd-MMM-yyyy HH:mm:ss.SSS', '17-Feb-2018 23:06:56.326')).toBe('2018-02-17T23:06:56.326Z');
  });

  it('keeps fractions to milliseconds whatever their length', () => {
    expect(parse('HH:mm:ss.SSSSSS yyyy-MM-dd', '14:32:52.123456 2000-10-11')).toBe('2000-10-11T14:32:52.123Z');
    expect(parse('yyyy-MM-dd HH:mm:ss.S', '2000-10-11 14:32:52.5')).toBe('2000-10-11T14:32:52.500Z');
  });

  it('takes fixed widths when numeric fields touch, variable widths otherwise', () => {
    expect(parse('yyyyMMddHHmmss', '20140109171325')).toBe('2014-01-09T17:13:25.000Z');
    expect(parse('d/M/yyyy H:m', '9/1/2014 7:3')).toBe('2014-01-09T07:03:00.000Z');
    // As in Joda, the last field of a run of touching numeric fields may be shorter.
    expect(parse('yyyyMMdd', '2014019')).toBe('2014-01-09T00:00:00.000Z');
    expect(parse('yyyyMMdd', '201401')).toBeUndefined();
  });

  it('reads two-digit years near now and quoted literal text', () => {
    expect(parse('dd-MM-yy', '01-02-99', { now: '2024-06-01T00:00:00Z' })).toBe('1999-02-01T00:00:00.000Z');
    expect(parse('dd-MM-yy', '01-02-24', { now: '2024-06-01T00:00:00Z' })).toBe('2024-02-01T00:00:00.000Z');
    expect(parse("yyyy.MM.dd 'at' HH:mm:ss 'o''clock'", '2001.07.04 at 12:08:56 o\'clock')).toBe('2001-07-04T12:08:56.000Z');
  });

  it('matches literals and names regardless of case, and requires the whole text', () => {
    expect(parse('dd MMM yyyy', '01 JAN 2020')).toBe('2020-01-01T00:00:00.000Z');
    expect(parse("yyyy-MM-dd'T'HH:mm", '2020-01-01t10:00')).toBe('2020-01-01T10:00:00.000Z');
    expect(parse('yyyy-MM-dd', '2020-01-01 trailing')).toBeUndefined();
    expect(parse('yyyy-MM-dd', '2020-02-30')).toBeUndefined();
    expect(parse('yyyy-MM-dd HH:mm', '2020-01-01 25:00')).toBeUndefined();
  });

  it('reads zone ids (ZZZ) with their daylight-saving offsets', () => {
    expect(parse('yyyy-MM-dd HH:mm:ss ZZZ', '2024-07-01 12:00:00 Europe/Berlin')).toBe('2024-07-01T10:00:00.000Z');
    expect(parse('yyyy-MM-dd HH:mm:ss ZZZ', '2024-01-15 12:00:00 Europe/Berlin')).toBe('2024-01-15T11:00:00.000Z');
    expect(parse('yyyy-MM-dd HH:mm:ss ZZZ', '2024-07-01 12:00:00 America/New_York')).toBe('2024-07-01T16:00:00.000Z');
    expect(parse('yyyy-MM-dd HH:mm:ss ZZZ', '2024-07-01 12:00:00 Asia/Kolkata')).toBe('2024-07-01T06:30:00.000Z');
    expect(parse('yyyy-MM-dd HH:mm:ss ZZZ', '2024-07-01 12:00:00 Mars/Olympus')).toBeUndefined();
  });

  it('reads common zone abbreviations (z)', () => {
    expect(parse('dd-MMM-yy HH:mm z', '01-Jan-99 10:00 PST', { now: '2024-01-01T00:00:00Z' })).toBe('1999-01-01T18:00:00.000Z');
    expect(parse('yyyy-MM-dd HH:mm z', '2020-06-01 10:00 CEST')).toBe('2020-06-01T08:00:00.000Z');
  });

  it('reads text without an offset in the configured zone, across DST transitions', () => {
    expect(parse('yyyy-MM-dd HH:mm:ss', '2024-07-01 12:00:00', { timezone: 'Europe/Berlin' })).toBe('2024-07-01T10:00:00.000Z');
    // 02:30 does not exist on 2024-03-31 in Berlin: it moves forward by the gap.
    expect(parse('yyyy-MM-dd HH:mm:ss', '2024-03-31 02:30:00', { timezone: 'Europe/Berlin' })).toBe('2024-03-31T01:30:00.000Z');
    // 02:30 happens twice on 2024-10-27: the earlier one is taken.
    expect(parse('yyyy-MM-dd HH:mm:ss', '2024-10-27 02:30:00', { timezone: 'Europe/Berlin' })).toBe('2024-10-27T00:30:00.000Z');
    expect(parse('yyyy-MM-dd HH:mm:ss Z', '2024-07-01 12:00:00 +0000', { timezone: 'Europe/Berlin' })).toBe('2024-07-01T12:00:00.000Z');
  });

  it('rejects unknown pattern letters, unterminated quotes and unknown zones at compile time', () => {
    expect(() => compileDateParser('yyyy-MM-dd q')).toThrow(/pattern letter "q"/);
    expect(() => compileDateParser("yyyy 'oops")).toThrow(/unterminated quote/);
    expect(() => compileDateParser('yyyy', { timezone: 'Nowhere/Atlantis' })).toThrow(/unknown time zone/);
  });
});

describe('syslog dates without a year', () => {
  const SYSLOG = ['MMM dd HH:mm:ss', 'MMM  d HH:mm:ss'];

  it('take the current year normally', () => {
    expect(parse(SYSLOG, 'Jun 15 10:00:00', { now: '2024-06-20T00:00:00Z' })).toBe('2024-06-15T10:00:00.000Z');
    expect(parse(SYSLOG, 'Jun  5 10:00:00', { now: '2024-06-20T00:00:00Z' })).toBe('2024-06-05T10:00:00.000Z');
  });

  it('read on New Year\'s day, a December line is last year\'s', () => {
    expect(parse(SYSLOG, 'Dec 31 23:59:59', { now: '2024-01-01T00:00:05Z' })).toBe('2023-12-31T23:59:59.000Z');
  });

  it('read just before New Year, a January line from a clock slightly ahead is next year\'s', () => {
    expect(parse(SYSLOG, 'Jan  1 00:00:03', { now: '2023-12-31T23:59:58Z' })).toBe('2024-01-01T00:00:03.000Z');
  });

  it('a date well in the future this year is last year\'s', () => {
    expect(parse(SYSLOG, 'Nov  3 08:00:00', { now: '2024-03-05T00:00:00Z' })).toBe('2023-11-03T08:00:00.000Z');
  });

  it('judges "now" in the configured zone', () => {
    // 2024-01-01T00:30 in Berlin is still 2023-12-31 in UTC.
    expect(parse(SYSLOG, 'Jan  1 00:10:00', { now: '2023-12-31T23:30:00Z', timezone: 'Europe/Berlin' })).toBe('2023-12-31T23:10:00.000Z');
  });

  it('Feb 29 goes to the last leap year', () => {
    expect(parse(SYSLOG, 'Feb 29 12:00:00', { now: '2025-03-01T00:00:00Z' })).toBe('2024-02-29T12:00:00.000Z');
  });
});

describe('keyword formats', () => {
  it('ISO8601 with and without offset, fraction and seconds', () => {
    expect(parse('ISO8601', '2011-04-19T03:44:01.103Z')).toBe('2011-04-19T03:44:01.103Z');
    expect(parse('ISO8601', '2011-04-19 03:44:01,103+02:00')).toBe('2011-04-19T01:44:01.103Z');
    expect(parse('ISO8601', '2011-04-19T03:44-0530')).toBe('2011-04-19T09:14:00.000Z');
    expect(parse('ISO8601', '2011-04-19T03:44:01', { timezone: 'Europe/Berlin' })).toBe('2011-04-19T01:44:01.000Z');
    expect(parse('ISO8601', '2011-04-19')).toBe('2011-04-19T00:00:00.000Z');
    expect(parse('ISO8601', '2011-13-19')).toBeUndefined();
  });

  it('UNIX seconds (with a fraction), UNIX_MS and TAI64N', () => {
    expect(parse('UNIX', '1326149001.132')).toBe('2012-01-09T22:43:21.132Z');
    expect(parse('UNIX', '1326149001')).toBe('2012-01-09T22:43:21.000Z');
    expect(parse('UNIX_MS', '1366125117000')).toBe('2013-04-16T15:11:57.000Z');
    expect(parse('TAI64N', '@4000000052f88ea32489532c')).toBe('2014-02-10T08:32:25.612Z');
    expect(parse('UNIX', 'soon')).toBeUndefined();
  });

  it('several formats are tried in order', () => {
    const p = new DateParser(['ISO8601', 'UNIX', 'dd/MMM/yyyy:HH:mm:ss Z'], { timezone: 'UTC' });
    expect(p.parse('1326149001')).toBe(at('2012-01-09T22:43:21Z'));
    expect(p.parse('10/Oct/2000:13:55:36 +0000')).toBe(at('2000-10-10T13:55:36Z'));
    expect(p.parse('nonsense')).toBeUndefined();
  });

  it('never throws, whatever the text', () => {
    const p = new DateParser(['ISO8601', 'UNIX', 'UNIX_MS', 'TAI64N', 'MMM  d HH:mm:ss', 'yyyy-MM-dd HH:mm:ss.SSS ZZZ', 'dd-MMM-yy h:mm a z'], { timezone: 'Europe/Berlin' });
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), fc.integer({ min: -8.64e15, max: 8.64e15 }), (text, now) => {
        const r = p.parse(text, now);
        expect(r === undefined || Number.isFinite(r)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
