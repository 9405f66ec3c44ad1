import { afterEach, describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { silentLogger } from '../../../../shared/log.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { decodeSpanBatch, type SpanBatch, type ZipkinSpan } from '../../../../shared/zipkin.ts';
import { SpanBatcher, SpanBatcherSchema } from '../../../../agent/traces/batcher.ts';
import { waitFor } from '../../../helpers/wait.ts';
import { metricValue } from '../../../helpers/metrics.ts';

function makeSpan(i: number, tagBytes = 0): ZipkinSpan {
  const id = (i + 1).toString(16).padStart(16, '0');
  return { traceId: 'aaaaaaaaaaaaaaaa', id, name: `op-${i}`, duration: 10, ...(tagBytes > 0 ? { tags: { pad: 'x'.repeat(tagBytes) } } : {}) };
}

function spans(from: number, n: number, tagBytes = 0): ZipkinSpan[] {
  return Array.from({ length: n }, (_, k) => makeSpan(from + k, tagBytes));
}

let batcher: SpanBatcher | undefined;
afterEach(() => {
  batcher?.stop();
  batcher = undefined;
});

function make(overrides: Record<string, unknown> = {}, telemetry = new Telemetry()) {
  const config = Value.Decode(SpanBatcherSchema, Value.Default(SpanBatcherSchema, overrides));
  batcher = new SpanBatcher(config, { telemetry, log: silentLogger(), agent: 'host-1', firstSeq: 100 });
  return { b: batcher, telemetry };
}

describe('SpanBatcher', () => {
  it('has the documented defaults', () => {
    expect(Value.Decode(SpanBatcherSchema, Value.Default(SpanBatcherSchema, {}))).toEqual({
      maxBatchSpans: 1000,
      maxBatchBytes: 1024 * 1024,
      flushInterval: 1000,
      maxQueuedBatches: 200,
      maxQueuedBytes: 16 * 1024 * 1024,
    });
  });

  it('seals batches by span count, with deterministic ids and sequence numbers', () => {
    const { b } = make({ maxBatchSpans: 3 });
    expect(b.offer(spans(0, 7))).toBe(true);
    expect(b.queued).toBe(2);
    expect(b.pending).toBe(1);
    const first = b.shift()!;
    const second = b.shift()!;
    expect([first.id, first.agent, first.seq]).toEqual(['host-1:traces:100', 'host-1', 100]);
    expect(second.id).toBe('host-1:traces:101');
    expect(first.spans.map((s) => s.name)).toEqual(['op-0', 'op-1', 'op-2']);
    expect(second.spans.map((s) => s.name)).toEqual(['op-3', 'op-4', 'op-5']);
    expect(b.shift()).toBeUndefined();
  });

  it('seals batches by bytes', () => {
    const { b } = make({ maxBatchBytes: 2500 });
    b.offer(spans(0, 5, 1000));
    // about 1.1 kB per span: two fit in 2.5 kB
    expect(b.queued).toBe(2);
    expect(b.shift()!.spans).toHaveLength(2);
    expect(b.shift()!.spans).toHaveLength(2);
    expect(b.pending).toBe(1);
  });

  it('seals a partly filled batch once flushInterval has passed', async () => {
    const { b } = make({ flushInterval: '20ms' });
    b.start();
    b.offer(spans(0, 2));
    await waitFor(() => b.queued === 1, { what: 'the timed flush' });
    expect(b.shift()!.spans).toHaveLength(2);
  });

  it('produces batches that collectors accept, JSON round trip included', () => {
    const { b } = make({ maxBatchSpans: 2 });
    b.offer(spans(0, 2));
    const r = decodeSpanBatch(JSON.parse(JSON.stringify(b.shift())));
    if ('error' in r) throw new Error(r.error);
    expect(r.batch.spans).toHaveLength(2);
  });

  it('refuses a whole offer when the queue is full, keeping nothing of it, and counts it', async () => {
    const { b, telemetry } = make({ maxBatchSpans: 2, maxQueuedBatches: 2 });
    expect(b.offer(spans(0, 4))).toBe(true);
    expect(b.queued).toBe(2);
    expect(b.offer(spans(4, 1))).toBe(true); // fits in the open batch
    expect(b.offer(spans(5, 3))).toBe(false); // would seal a third batch
    expect(b.pending).toBe(1);
    expect(await metricValue(telemetry.registry, 'plumb_traces_batcher_refused_spans_total')).toBe(3);
    expect(await metricValue(telemetry.registry, 'plumb_traces_batch_queue_depth')).toBe(2);
    b.shift();
    // one slot free: [op-4, op-5] seals into it, op-6 stays open
    expect(b.offer(spans(5, 2))).toBe(true);
    b.stop();
    expect(b.drain().map((x) => x.spans.map((s) => s.name))).toEqual([['op-2', 'op-3'], ['op-4', 'op-5'], ['op-6']]);
  });

  it('refuses by queued bytes as well', () => {
    const { b } = make({ maxBatchSpans: 1, maxQueuedBytes: 3000 });
    expect(b.offer(spans(0, 1, 1000))).toBe(true);
    expect(b.offer(spans(1, 1, 1000))).toBe(true);
    expect(b.offer(spans(2, 1, 1000))).toBe(false);
  });

  it('on stop seals the open batch and refuses further spans', () => {
    const { b } = make();
    b.start();
    b.offer(spans(0, 3));
    b.stop();
    expect(b.offer(spans(3, 1))).toBe(false);
    expect(b.drain().map((x) => x.spans.length)).toEqual([3]);
  });

  it('keeps the batch sealed at stop even when the queue is full', () => {
    const { b } = make({ maxBatchSpans: 2, maxQueuedBatches: 1 });
    b.offer(spans(0, 3));
    b.stop();
    expect(b.drain().map((x) => x.spans.map((s) => s.name))).toEqual([['op-0', 'op-1'], ['op-2']]);
  });

  it('puts a returned batch back first', () => {
    const { b } = make({ maxBatchSpans: 1 });
    b.offer(spans(0, 2));
    const first = b.shift()!;
    b.unshift(first);
    expect(b.shift()).toBe(first);
  });

  it('forwardTo hands batches over in order and offers a refused batch again', async () => {
    const { b } = make({ maxBatchSpans: 1 });
    const delivered: SpanBatch[] = [];
    let refuseNext = 2;
    const abort = new AbortController();
    const loop = b.forwardTo(
      (batch) => {
        if (refuseNext > 0) {
          refuseNext--;
          return false;
        }
        delivered.push(batch);
        return true;
      },
      abort.signal,
      5,
    );
    b.offer(spans(0, 3));
    await waitFor(() => delivered.length === 3, { what: 'three batches forwarded' });
    abort.abort();
    await loop;
    expect(delivered.map((x) => x.seq)).toEqual([100, 101, 102]);
  });
});
