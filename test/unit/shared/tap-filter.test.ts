import { describe, expect, it } from 'vitest';
import { compileFilter } from '../../../shared/tap-filter.ts';

const event = { message: 'GET /api 500', status: 500, level: 'error', tags: ['env:prod', 'team:a'], http: { verb: 'GET', bytes: '1024' }, spans: [{ name: 'db' }, { name: 'http' }] };

describe('tap filter expressions', () => {
  it.each([
    ['level == "error"', true],
    ["level == 'warn'", false],
    ['level != "warn"', true],
    ['status == 500', true],
    ['status == "500"', true],
    ['status >= 500 and status < 600', true],
    ['http.bytes > 1000', true],
    ['http.verb == "GET" and not level == "info"', true],
    ['message =~ /^get /i', true],
    ['message !~ /POST/', true],
    ['tags == "env:prod"', true],
    ['tags =~ /^team:/', true],
    ['tags == "env:dev"', false],
    ['spans.name == "http"', true],
    ['spans[0].name == "db"', true],
    ['missing == "x"', false],
    ['missing != "x"', true],
    ['http', true],
    ['missing', false],
    ['level == "info" or (status == 500 and http.verb == "GET")', true],
    ['"http".verb == "GET"', true],
  ])('%s → %s', (expr, want) => {
    expect(compileFilter(expr)(event)).toBe(want);
  });

  it.each([
    ['', /empty expression/],
    ['level ==', /a value is missing after ==/],
    ['level == error', /quote text/],
    ['level == "x" status == 1', /at character 14: unexpected "status"; join conditions with "and" or "or"/],
    ['(level == "x"', /a "\)" is missing/],
    ['message =~ "x"', /=~ takes a regular expression/],
    ['message =~ /(a+)+$/', /repeats a group that itself repeats/],
    ['message =~ /[/', /not closed|not a valid regular expression/],
    ['message =~ /a/g', /flags may be i, m, s/],
    ['level == "x', /the string is not closed/],
    ['level # 1', /unexpected "#"/],
  ])('refuses %j with a clear error', (expr, message) => {
    let err: unknown;
    try {
      compileFilter(expr);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'PLUMB_ERR_TAP_FILTER' });
    expect((err as Error).message).toMatch(message);
  });

  it('accepts safe repetition next to groups', () => {
    expect(compileFilter('message =~ /^(GET|POST) \\/a+/')({ message: 'GET /aaa' })).toBe(true);
  });
});
