import { describe, expect, it } from 'vitest';
import { defaultGrokPool, poolSize } from '../../../../agent/logs/config.ts';

describe('poolSize', () => {
  const auto = defaultGrokPool();

  it('starts one parser thread per core by default', () => {
    expect(auto.workers).toBe(0);
    expect(poolSize(auto, false, 2)).toBe(2);
    expect(poolSize(auto, false, 8)).toBe(8);
  });

  it('leaves the main thread a core when the collector runs in the same process (plumb all), keeping at least one', () => {
    expect(poolSize(auto, true, 8)).toBe(7);
    expect(poolSize(auto, true, 2)).toBe(1);
    expect(poolSize(auto, true, 1)).toBe(1);
  });

  it('starts exactly the configured number when agent.grok.workers is set', () => {
    const three = { ...auto, workers: 3 };
    expect(poolSize(three, false, 2)).toBe(3);
    expect(poolSize(three, true, 2)).toBe(3);
  });
});
