/** fast-check generators of statsd lines, good and bad, for the one-bad-line properties. */
import fc from 'fast-check';
import { STATSD_LIMITS } from '../../shared/statsd-limits.ts';

const name = fc.constantFrom('a', 'b.c', 'req', 'lat', 'users');
const tag = fc.constantFrom('env:prod', 'env:dev', 'az:1', 'flag');
export const goodLine = fc.oneof(
  fc.record({ n: name, v: fc.integer({ min: 0, max: 1000 }), t: fc.subarray(['env:prod', 'az:1']) }).map(({ n, v, t }) => `${n}:${v}|c${t.length ? `|#${t.join(',')}` : ''}`),
  fc.record({ n: name, v: fc.double({ min: -1e6, max: 1e6, noNaN: true }) }).map(({ n, v }) => `${n}:${v}|g`),
  fc.record({ n: name, v: fc.integer({ min: 0, max: 5000 }), r: fc.constantFrom('', '|@0.5', '|@0.1') }).map(({ n, v, r }) => `${n}:${v}|ms${r}`),
  fc.record({ n: name, m: fc.constantFrom('alice', 'bob', 'carol'), t: tag }).map(({ n, m, t }) => `${n}:${m}|s|#${t}`),
  fc.record({ n: name, v: fc.integer({ min: 0, max: 100 }) }).map(({ n, v }) => `${n}:${v}|c|T${Math.floor(Date.now() / 1000)}`),
);

const longTags = Array.from({ length: STATSD_LIMITS.maxTags + 1 }, (_, i) => `k${i}:v`).join(',');
export const badLine = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc.stringMatching(/^[a-z.]{0,4}[:|#@,]{0,3}[a-z0-9.e+-]{0,6}[|:]{0,2}[a-zT@#0-9.:-]{0,8}$/),
  fc.constantFrom(
    `${'n'.repeat(STATSD_LIMITS.maxNameLength + 1)}:1|c`,
    `a:1|c|#k:${'v'.repeat(STATSD_LIMITS.maxTagLength)}`,
    `a:1|c|#${longTags}`,
    `users:${'m'.repeat(STATSD_LIMITS.maxSetMemberLength + 1)}|s|#env:prod`,
    'a:-1|c',
    'a:1|c|@1e-320',
    'a:Infinity|c',
    'lat:NaN|ms',
    'a:1e309|g',
    'a:1|c|T1',
    `a:1|c|T${Math.floor(Date.now() / 1000) + 7200}`,
    `_e{1,1}:a|b|#${longTags}`,
    '_sc|x|7',
  ),
);

