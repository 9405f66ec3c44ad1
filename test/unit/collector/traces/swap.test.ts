import { describe, expect, it } from 'vitest';
import { SwappableSpanSinks, type SpanSinkSet } from '../../../../collector/traces/swap.ts';
import type { ZipkinSpan } from '../../../../shared/zipkin.ts';

/** A sink recording what it took; its durable write resolves when `release` is called (or at once). */
function fakeSinks(name: string, log: string[], hold = false): { set: SpanSinkSet; release: () => void } {
  let release = (): void => undefined;
  const gate = hold ? new Promise<void>((r) => (release = r)) : Promise.resolve();
  const write = (kind: string) => (spans: readonly ZipkinSpan[]) => {
    log.push(`${name}:${kind}:${spans[0].id}`);
    return true;
  };
  const index = {
    write: async (spans: readonly ZipkinSpan[]) => {
      await gate;
      return write('index')(spans);
    },
  };
  return { set: { zipkin: { write: write('zipkin') }, index, export: null } as unknown as SpanSinkSet, release };
}

const span = (id: string): ZipkinSpan[] => [{ traceId: '1'.padStart(32, '0'), id }] as ZipkinSpan[];

describe('SwappableSpanSinks', () => {
  it('finishes writes under way on the old sinks, holds new ones during the swap and hands them to the new sinks', async () => {
    const log: string[] = [];
    const old = fakeSinks('old', log, true);
    const next = fakeSinks('new', log);
    const s = new SwappableSpanSinks();
    s.sinks = old.set;
    const inFlight = s.durable.write(span('a'));
    let swapped = false;
    const replaced = s.replace(async (was) => {
      log.push('stop old');
      expect(was).toBe(old.set);
      swapped = true;
      return next.set;
    });
    const held = [s.durable.write(span('b')), s.zipkin.write(span('c'))];
    await new Promise((r) => setTimeout(r, 10));
    expect(swapped).toBe(false);
    old.release();
    await replaced;
    expect(await inFlight).toBe(true);
    expect(await Promise.all(held)).toEqual([true, true]);
    expect(log.slice(0, 2)).toEqual(['old:index:a', 'stop old']);
    expect(log.slice(2).sort()).toEqual(['new:index:b', 'new:zipkin:c']);
    expect(s.sinks).toBe(next.set);
  });

  it('a swap that fails keeps the sinks it had, and writers go on', async () => {
    const log: string[] = [];
    const old = fakeSinks('old', log);
    const s = new SwappableSpanSinks();
    s.sinks = old.set;
    await expect(s.replace(() => Promise.reject(new Error('cannot open')))).rejects.toThrow('cannot open');
    expect(await s.zipkin.write(span('d'))).toBe(true);
    expect(log).toEqual(['old:zipkin:d']);
  });

  it('no sinks: spans are taken and sent nowhere', async () => {
    const s = new SwappableSpanSinks();
    expect(await s.durable.write(span('e'))).toBe(true);
    expect(await s.zipkin.write(span('e'))).toBe(true);
  });
});
