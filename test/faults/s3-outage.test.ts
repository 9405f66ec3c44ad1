/**
 * Fault: the S3 archive goes away. An agent tails a file of numbered lines into a collector
 * whose log sink is S3 (s3rver); once objects are arriving, the S3 server is stopped for 30 s
 * while lines keep streaming, then started again on the same port and directory. Every line
 * must be in the archive exactly once across all objects (gunzipped NDJSON), the sink must
 * have counted retries during the outage, and the collector must have answered /healthz
 * throughout: a dead sink is a reason to queue, not to fall over.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startS3Server } from '../helpers/s3-server.ts';
import { agentRole, awaitDelivery, collectorRole, faultRun, holdFault, lineNumbers, report, s3Events, since, waitFor, watchHealth, writeLog, type FaultRun } from './harness.ts';

const RATE = 1000; // lines/s
const OUTAGE_MS = 30_000;
// The file grows from just before the outage until about its end, so recovery measures the
// backlog being archived, not the writer still writing.
const LINES = (RATE * OUTAGE_MS) / 1000;
const PREFIX = 'faults/';

let run: FaultRun;
afterEach(async () => {
  await run?.cleanup();
});

describe('fault: the S3 server is down for 30 s', () => {
  it('every line is archived exactly once, retries are counted, the collector stays up', async () => {
    run = faultRun('s3-outage');
    const s3 = await startS3Server();
    run.defer(() => s3.destroy());
    const collector = await collectorRole(run, {
      logs: {
        sinks: {
          s3: {
            bucket: s3.bucket,
            prefix: PREFIX,
            endpoint: s3.url,
            forcePathStyle: true,
            credentials: { ...s3.credentials },
            rollover: { bytes: '1mb', interval: '1s' },
            maxAttempts: 1,
            timeout: '5s',
            retryInitial: '100ms',
            retryMax: '2s',
          },
        },
      },
    });
    const file = run.path('app.log');
    const writer = writeLog(run, { file, count: LINES, rate: RATE });
    await agentRole(run, { collectors: [collector.url], files: [file] });

    await waitFor(async () => (await s3.keys(PREFIX)).length > 0, { what: 'the first object in S3', timeoutMs: 15_000 });
    const health = watchHealth(collector.url);
    await s3.stop();
    const retriesBefore = await collector.counter('plumb_sink_retries_total', { sink: 's3' });
    let retriesDuring = 0;
    const cleared = await holdFault(OUTAGE_MS, async () => {
      retriesDuring = (await collector.counter('plumb_sink_retries_total', { sink: 's3' })) - retriesBefore;
      await s3.start();
    });

    expect((await writer.done()).written).toBe(LINES);
    let events: Awaited<ReturnType<typeof s3Events>> = [];
    const delivery = await awaitDelivery(
      LINES,
      async () => lineNumbers((events = await s3Events(s3, PREFIX))),
      {
        // listing and reading every object is the slow part: only once the sink says it is done
        ready: async () => (await collector.counter('plumb_sink_events_total', { sink: 's3', outcome: 'delivered' })) >= LINES,
        timeoutMs: 30_000,
      },
    );
    const recoveryMs = since(cleared, delivery.at);
    const { probes, failures } = await health.stop();

    const objects = new Set(events.map((e) => e._key)).size;
    report({ scenario: 's3-outage', sent: LINES, delivered: delivery.delivered, lost: delivery.lost, duplicated: delivery.duplicated, recoveryMs, notes: { retriesDuringOutage: retriesDuring, objects, healthProbes: probes } });

    expect(delivery, `lines in S3; collector output:\n${collector.output().slice(-3000)}`).toMatchObject({ complete: true, delivered: LINES, lost: 0, duplicated: 0, unexpected: 0 });
    expect(new Set(events.map((e) => (e.event as { id: string }).id)).size).toBe(LINES);
    expect(retriesDuring).toBeGreaterThan(0);
    expect(failures).toEqual([]);
    expect(probes).toBeGreaterThan(OUTAGE_MS / 1000);
    expect(collector.running).toBe(true);
  }, 100_000);
});
