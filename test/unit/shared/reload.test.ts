/** Config diff and reload planning: which keys changed, which component takes them, which wait for a restart. */
import { describe, expect, it } from 'vitest';
import { diffConfig, keepRunning, planReload, type ReloadRule } from '../../../shared/reload.ts';

const rules: ReloadRule[] = [
  { path: 'agent.http', component: null },
  { path: 'agent.statsd', component: null },
  { path: 'agent.statsd.tags', component: 'agent:statsd' },
  { path: 'agent.logs', component: 'agent:logs' },
  { path: 'agent.forward', component: 'agent:forward' },
];

describe('config diff', () => {
  it('names each changed leaf, arrays of objects by index', () => {
    const before = { agent: { logs: [{ path: '/a', pattern: 'x' }], statsd: { tags: ['a'] }, http: { listen: ':1' } } };
    const after = { agent: { logs: [{ path: '/a', pattern: 'y' }, { path: '/b' }], statsd: { tags: ['b'] }, http: { listen: ':1' } } };
    expect(diffConfig(before, after).map((c) => c.path)).toEqual(['agent.logs[0].pattern', 'agent.logs[1]', 'agent.statsd.tags']);
    expect(diffConfig(before, structuredClone(before))).toEqual([]);
  });

  it('plans components by the longest rule; uncovered and fixed keys need a restart', () => {
    const plan = planReload(
      [
        { path: 'agent.logs[0].pattern', before: 'x', after: 'y' },
        { path: 'agent.statsd.tags', before: [], after: ['b'] },
        { path: 'agent.statsd.listen', before: ':1', after: ':2' },
        { path: 'agent.traces.zipkin.listen', before: ':3', after: ':4' },
      ],
      rules,
    );
    expect(plan.components).toEqual(['agent:statsd', 'agent:logs']);
    expect(plan.needsRestart.map((c) => c.path)).toEqual(['agent.statsd.listen', 'agent.traces.zipkin.listen']);
    expect(plan.keptPaths).toEqual(['agent.statsd.listen', 'agent.traces.zipkin.listen']);
  });

  it('keeps the running values of what needs a restart, takes the rest', () => {
    const running = { agent: { statsd: { listen: ':1', tags: ['a'] }, logs: [] as unknown[] } };
    const next = { agent: { statsd: { listen: ':2', tags: ['b'] }, logs: [{ path: '/x' }] } };
    // a rule on the whole section keeps all of it; a leaf path keeps only the leaf
    expect(keepRunning(next, running, ['agent.statsd.listen'])).toEqual({ agent: { statsd: { listen: ':1', tags: ['b'] }, logs: [{ path: '/x' }] } });
    expect(next.agent.statsd.listen).toBe(':2');
  });
});
