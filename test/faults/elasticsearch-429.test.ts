/**
 * Fault: Elasticsearch pushes back. For 20 s the cluster answers 30% of bulk items with 429
 * (es_rejected_execution_exception, items chosen by a seeded generator) while an agent tails a
 * file of 50 000 numbered lines into a collector whose log sink is Elasticsearch. Then the
 * cluster recovers. Every line must be in the index exactly once, the sink must have retried
 * (the fault was real), and nothing may have been dead-lettered: a 429 is a reason to wait,
 * never to give up on an event.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startEsServer } from '../helpers/es-server.ts';
import { agentRole, awaitDelivery, collectorRole, deadLetters, esEvents, faultRun, holdFault, lineNumbers, report, since, waitFor, writeLog, type FaultRun } from './harness.ts';

const LINES = 50_000;
const RATE = 2500; // lines/s: the file grows for the whole fault window
const FAULT_MS = 20_000;
const THROTTLE_RATIO = 0.3;
const SEED = 20_260_424;

let run: FaultRun;
afterEach(async () => {
  await run?.cleanup();
});

describe('fault: Elasticsearch answers 429 to 30% of bulk items for 20 s', () => {
  it('every line reaches Elasticsearch exactly once, retried, none dead-lettered', async () => {
    run = faultRun('elasticsearch-429');
    const es = await startEsServer();
    run.defer(() => es.stop());
    const collector = await collectorRole(run, {
      logs: { sinks: { elasticsearch: { node: es.url, flushInterval: '200ms', retryInitial: '50ms', retryMax: '1s', timeout: '10s' } } },
    });
    const file = run.path('app.log');
    const writer = writeLog(run, { file, count: LINES, rate: RATE });
    await agentRole(run, { collectors: [collector.url], files: [file] });

    await waitFor(() => es.count() > 0, { what: 'the first lines in Elasticsearch', timeoutMs: 15_000 });
    es.throttleItemRatio(THROTTLE_RATIO, SEED);
    const cleared = await holdFault(FAULT_MS, () => es.throttleItemRatio(0));
    const throttled = es.throttledItems;

    expect((await writer.done()).written).toBe(LINES);
    const delivery = await awaitDelivery(LINES, () => lineNumbers(esEvents(es)), { ready: () => es.count() >= LINES, timeoutMs: 30_000, intervalMs: 100 });
    const recoveryMs = since(cleared, delivery.at);

    const retries = await collector.counter('plumb_sink_retries_total', { sink: 'elasticsearch' });
    const itemRetries = await collector.counter('plumb_sink_retries_total', { sink: 'elasticsearch', reason: 'item_throttled' });
    report({ scenario: 'elasticsearch-429', sent: LINES, delivered: delivery.delivered, lost: delivery.lost, duplicated: delivery.duplicated, recoveryMs, notes: { throttledItems: throttled, retries } });

    expect(delivery, `lines in Elasticsearch; collector output:\n${collector.output().slice(-3000)}`).toMatchObject({ complete: true, delivered: LINES, lost: 0, duplicated: 0, unexpected: 0 });
    const docs = esEvents(es);
    expect(docs).toHaveLength(LINES);
    // the document id is the event's own id: a line written again would have met a 409
    expect(docs.every((d) => d._id === (d.event as { id?: string } | undefined)?.id)).toBe(true);
    expect(throttled).toBeGreaterThan(0);
    expect(itemRetries).toBeGreaterThan(0);
    expect(await collector.counter('plumb_sink_events_total', { sink: 'elasticsearch', outcome: 'dead_letter' })).toBe(0);
    expect(deadLetters(collector, 'elasticsearch')).toEqual([]);
  }, 90_000);
});
