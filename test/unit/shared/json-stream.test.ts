import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeJson, jsonSlices, JsonWriter } from '../../../shared/json-stream.ts';

const interval = (n: number) => ({
  id: 'agent-1:7:0',
  agent: 'agent-1',
  seq: 7,
  start: 1000,
  end: 11_000,
  events: [{ title: 'deploy "v2"', text: 'line\nbreak ✓', tags: ['env:prod'] }],
  serviceChecks: [],
  metrics: Array.from({ length: n }, (_, i) =>
    i % 3 === 0
      ? { type: 'ms', name: `api.t${i}`, tags: [`h:${i % 16}`], sketch: 'AQ==', count: 2, sum: 1.5, min: 0.5, max: 1, samples: [0.5, 1], weights: undefined }
      : { type: 'c', name: `api.c${i}`, tags: [], value: i / 7 },
  ),
});

describe('JSON written in slices', () => {
  it('is byte for byte JSON.stringify, gzipped or not', async () => {
    for (const body of [interval(0), interval(1), interval(20_000), { a: undefined, b: () => 1, c: [undefined, () => 1, 2], d: null, e: 'x' }, [1, 2], 'text', 3, null]) {
      const want = JSON.stringify(body);
      expect(gunzipSync(await encodeJson(body, true)).toString()).toBe(want);
      expect((await encodeJson(body, false)).toString()).toBe(want);
    }
  });

  it('never holds a large interval as one piece', () => {
    const slices = [...jsonSlices(interval(20_000))];
    expect(slices.length).toBeGreaterThan(10);
    expect(Math.max(...slices.map((s) => s.length))).toBeLessThan(70 * 1024);
  });
});

describe('JSON written piece by piece', () => {
  it('gives the bytes of the pieces in order, gzipped or not, whatever their sizes and characters', async () => {
    const pieces: string[] = [];
    for (let i = 0; i < 5000; i++) pieces.push(i % 97 === 0 ? `"${'ü✓𝄞"'.repeat(9000)}",` : `{"n":${i},"s":"é${'x'.repeat(i % 300)}"},`);
    const want = pieces.join('');
    for (const gzip of [true, false]) {
      const w = new JsonWriter(gzip);
      let waits = 0;
      for (const p of pieces) {
        if (!w.write(p)) {
          waits++;
          await w.drain();
        }
      }
      const body = await w.end();
      expect((gzip ? gunzipSync(body) : body).toString('utf8')).toBe(want);
      // gzip is given a slice at a time and the writer waits for it
      if (gzip) expect(waits).toBeGreaterThan(10);
    }
  });
});
