import { describe, expect, it } from 'vitest';
import { parseIndexPattern, renderIndex } from '../../../../collector/logs/index-name.ts';

describe('index names', () => {
  it('puts the UTC date of the event into the name', () => {
    const { pattern } = parseIndexPattern('plumb-logs-%{+yyyy.MM.dd}');
    expect(pattern!.wildcard).toBe('plumb-logs-*');
    expect(renderIndex(pattern!, '2026-11-24T10:00:00.123Z')).toBe('plumb-logs-2026.11.24');
    const hourly = parseIndexPattern('logs-%{+yy_MM_dd-HH}-x').pattern!;
    expect(renderIndex(hourly, '2026-11-24T09:00:00Z')).toBe('logs-26_11_24-09-x');
    expect(hourly.wildcard).toBe('logs-*-x');
  });

  it('takes a name without a date as it is', () => {
    const { pattern } = parseIndexPattern('plumb-logs');
    expect(renderIndex(pattern!, '2026-11-24T10:00:00Z')).toBe('plumb-logs');
  });

  it('explains what is wrong with a pattern', () => {
    expect(parseIndexPattern('Logs-%{+yyyy}').error).toMatch(/lowercase/);
    expect(parseIndexPattern('logs-%{host}').error).toMatch(/only dates/);
    expect(parseIndexPattern('logs-%{+yyyy.ww}').error).toMatch(/unsupported date format/);
    expect(parseIndexPattern('logs-%{+yyyy').error).toMatch(/unclosed/);
    expect(parseIndexPattern('_logs').error).toMatch(/must not start/);
  });
});
