/**
 * Fault: the collector is killed with SIGKILL in the middle of a stream and started again on the
 * same data directory and port. A writer process appends 200 000 numbered lines to a file the
 * agent tails; statsd counter increments arrive at the agent over UDP the whole time. The
 * collector is down for two seconds, then comes back.
 *
 * What is covered:
 * - Logs: every line exactly once in the collector's sink. The agent keeps every batch the dead
 *   collector never acknowledged (the tailed file is its buffer) and sends it again; events the
 *   collector had taken and journaled the ids of are recognised by event id
 *   (`plumb_ingest_log_events_total{outcome="duplicate"}` of the restarted collector). Run with
 *   the file sink (the default) and with the Elasticsearch test server.
 * - Counters: the restarted collector restores its store from its journal, the agent re-sends
 *   the metric batches that were not acknowledged (they wait in its spool), and replays are
 *   dropped by batch id: the counter total on /metrics equals exactly what was sent.
 *
 * Replays at the sinks: a kill between a sink queue's fsync and the id journal's lets the agent's
 * resend reach the queue a second time, and a kill between a sink's write and its queue's
 * acknowledgement makes the restarted runner write that batch again. Elasticsearch absorbs both
 * (the `_id` is the event id: a second `create` meets a 409); the file sink recognises the ids it
 * wrote recently from its write records (collector/logs/write-intents.ts) and undoes a write the
 * kill cut short. Both count such events as `plumb_sink_events_total{outcome="duplicate"}` (the
 * summary line's `sinkDuplicates=`), and the scenario asserts every line exactly once in either.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startEsServer } from '../helpers/es-server.ts';
import {
  agentRole,
  awaitDelivery,
  collectorRole,
  counterTally,
  esEvents,
  faultRun,
  fileSinkEvents,
  freeUdpPort,
  holdFault,
  lineNumbers,
  report,
  sendCounter,
  since,
  waitFor,
  waitReady,
  writeLog,
  type FaultRun,
} from './harness.ts';

const LINES = 200_000;
const RATE = 20_000; // lines/s: about 10 s of stream, the kill comes a few seconds in
/** statsd increments are sent in chunks of this many from before the kill until AFTER_CHUNKS chunks after the restart. */
const CHUNK = 2000;
const AFTER_CHUNKS = 10;
const DOWN_MS = 2000;
const COUNTER = 'faults.collector_kill.count';

let run: FaultRun;
afterEach(async () => {
  await run?.cleanup();
});

describe.each(['file', 'elasticsearch'] as const)('fault: kill -9 of the collector mid-stream, then a restart (%s sink)', (sink) => {
  it('every line once in the sink; the counter total exact across the restart', async () => {
    run = faultRun(`collector-kill-${sink}`);
    let logs: Record<string, unknown> = { sinks: { file: { flushInterval: '100ms' } } };
    let read: () => Promise<number[]> | number[];
    let es: Awaited<ReturnType<typeof startEsServer>> | undefined;
    if (sink === 'elasticsearch') {
      const server = await startEsServer();
      es = server;
      run.defer(() => server.stop());
      logs = { sinks: { elasticsearch: { node: server.url, flushInterval: '100ms', retryInitial: '50ms', retryMax: '1s', timeout: '10s' } } };
      read = () => lineNumbers(esEvents(server));
    }
    const collector = await collectorRole(run, { logs });
    if (sink === 'file') read = async () => lineNumbers(await fileSinkEvents(collector.dataDir));
    const statsdPort = await freeUdpPort();
    const file = run.path('app.log');
    const agent = await agentRole(run, {
      collectors: [collector.url],
      files: [file],
      statsdPort,
      config: { forward: { timeout: '5s', healthCheckInterval: '200ms', spool: { segmentBytes: '1mb' } } },
    });
    await waitReady(agent);
    const writer = writeLog(run, { file, count: LINES, rate: RATE });
    const delivered = (): Promise<number> => collector.counter('plumb_sink_events_total', { sink, outcome: 'delivered' });
    const counted = (): Promise<number> => collector.counter('faults_collector_kill_count_total');

    // Statsd runs across the fault; the kill comes once lines and counters are arriving.
    let restarted = false;
    let chunksAfterRestart = 0;
    run.defer(() => {
      // a scenario that failed before the restart must not leave the sender looping
      restarted = true;
      chunksAfterRestart = AFTER_CHUNKS;
    });
    const statsd = (async () => {
      const total = { total: 0, lines: 0 };
      while (!restarted || chunksAfterRestart < AFTER_CHUNKS) {
        const wasRestarted = restarted;
        const chunk = await sendCounter(statsdPort, COUNTER, { increments: CHUNK, perTick: 100, tickMs: 10 });
        total.total += chunk.total;
        total.lines += chunk.lines;
        if (wasRestarted) chunksAfterRestart++;
      }
      return total;
    })();
    await waitFor(async () => (await delivered()) >= 20_000 && (await counted()) > 0, { what: 'lines and counters at the collector before the kill', timeoutMs: 20_000 });
    const linesBeforeKill = await delivered();
    const counterBeforeKill = await counted();
    const writerRunning = writer.process.exit === null;
    await collector.kill();
    const cleared = await holdFault(DOWN_MS, () => collector.start());
    restarted = true;
    const journalReplayed = await collector.counter('plumb_journal_replayed_records', { journal: 'metrics' });
    const restoredCounter = await counted();

    const sent = await statsd;
    expect((await writer.done()).written).toBe(LINES);
    // Settled: the agent read every line and holds no unacknowledged batch, the sink's queue is empty.
    const settled = async (): Promise<boolean> =>
      (await agent.counter('plumb_tail_lines_total')) >= LINES && (await agent.counter('plumb_tail_unacked_batches')) === 0 && (await collector.counter('plumb_sink_queue_events', { sink })) === 0;
    const lines = await awaitDelivery(LINES, read!, { ready: settled, timeoutMs: 60_000, intervalMs: 250 });
    const metrics = await waitFor(async () => ((await counted()) >= sent.total && (await agent.counter('plumb_forward_queue_batches')) === 0 ? performance.now() : false), {
      what: 'the counter total at the restarted collector',
      timeoutMs: 30_000,
    }).catch(() => performance.now());
    const counters = counterTally(sent.total, await counted());
    // What the sink's queue held unacknowledged when the restarted collector opened it.
    const backlog = /"events":(\d+)[^\n]*sink queue holds items from before the restart/.exec(collector.output());
    const notes = {
      linesBeforeKill,
      sinkBacklogAtRestart: backlog ? Number(backlog[1]) : 0,
      logReplays: await collector.counter('plumb_ingest_log_events_total', { outcome: 'duplicate' }),
      counterSent: sent.total,
      counterDelivered: counters.delivered,
      counterLost: counters.lost,
      counterDuplicated: counters.duplicated,
      counterBeforeKill,
      counterRestored: restoredCounter,
      journalReplayed,
      metricReplays: await collector.counter('plumb_ingest_batches_total', { kind: 'metrics', outcome: 'duplicate' }),
      agentRetries: await agent.counter('plumb_forward_retries_total'),
      sinkDuplicates: await collector.counter('plumb_sink_events_total', { sink, outcome: 'duplicate' }),
    };
    report({ scenario: `collector-kill-${sink}`, sent: LINES, delivered: lines.delivered, lost: lines.lost, duplicated: lines.duplicated, recoveryMs: since(cleared, Math.max(lines.at, metrics)), notes });

    const output = `collector output:\n${collector.output().slice(-3000)}\nagent output:\n${agent.output().slice(-2000)}`;
    // The fault came mid-stream, for both signals.
    expect(writerRunning).toBe(true);
    expect(linesBeforeKill).toBeLessThan(LINES);
    expect(counterBeforeKill).toBeLessThan(sent.total);
    expect(chunksAfterRestart).toBe(AFTER_CHUNKS);
    // The agent received every increment (a UDP loss here would not be the collector's doing).
    expect(await agent.counter('plumb_statsd_lines_total')).toBe(sent.lines);
    expect(await agent.counter('plumb_statsd_socket_drops_total')).toBe(0);
    // What the restarted collector restored from its journal is at least what it showed before.
    expect(restoredCounter).toBeGreaterThanOrEqual(counterBeforeKill);

    const where = `lines in the ${sink} sink, duplicates ${JSON.stringify(lines.examples.duplicated)}; ${output}`;
    expect(lines, where).toMatchObject({ complete: true, delivered: LINES, lost: 0, unexpected: 0 });
    expect(lines.duplicated, where).toBe(0);
    if (es) expect(es.count()).toBe(LINES);
    expect(counters, output).toMatchObject({ sent: sent.total, delivered: sent.total, lost: 0, duplicated: 0 });
    expect(agent.running).toBe(true);
  }, 150_000);
});
