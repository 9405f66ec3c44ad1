/**
 * Bad input through both doors of the metrics path. Whatever arrives, the agent and the
 * collector stay up, say what they refused through their own counters, keep the good data that
 * came with the bad, and `/metrics` stays valid for Prometheus.
 *
 * The agent's interval is ended only by the test (flushInterval is an hour) so the per-interval
 * series limit applies to a known set of lines, and exact counts can be asserted.
 */
import dgram from 'node:dgram';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, startCollector, stopAllInProcess, type AgentUnderTest, type CollectorUnderTest } from '../helpers/processes.ts';
import { PROMTOOL, promtoolCheckMetrics, samplesOf, scrape, scrapeText, valueOf, type Exposition } from '../helpers/prometheus.ts';
import { waitFor } from '../helpers/wait.ts';
import { newSketch, encodeSketch } from '../../shared/sketch.ts';

const MAX_SERIES = 100;

let collector: CollectorUnderTest;
let agent: AgentUnderTest;
let socket: dgram.Socket;
let datagramsSent = 0;

beforeAll(async () => {
  collector = await startCollector(`
collector:
  listen: "127.0.0.1:0"
  maxBodyBytes: 256kb
`);
  agent = await startAgent(`
agent:
  http: { listen: "127.0.0.1:0" }
  statsd: { listen: "127.0.0.1:0", flushInterval: 1h, maxSeries: ${MAX_SERIES} }
  host: { enabled: false }
  forward: { collectors: ["${collector.url}"], retryInitial: 50ms, retryMax: 500ms }
`);
  socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.connect(agent.statsdPort, '127.0.0.1', () => resolve()));
});

afterAll(async () => {
  await new Promise<void>((resolve) => (socket ? socket.close(() => resolve()) : resolve()));
  await stopAllInProcess();
});

/** Sends datagrams one by one and waits until the agent has taken in every one of them. */
async function sendDatagrams(datagrams: Buffer[]): Promise<Exposition> {
  for (const d of datagrams) {
    await new Promise<void>((resolve, reject) => socket.send(d, (err) => (err ? reject(err) : resolve())));
  }
  datagramsSent += datagrams.length;
  return waitFor(
    async () => {
      const a = await scrape(agent.url);
      expect(valueOf(a, 'plumb_statsd_datagrams_total')).toBe(datagramsSent);
      return a;
    },
    { what: `the agent to receive ${datagramsSent} datagrams` },
  );
}

async function collectorShows(check: (e: Exposition) => void, what: string): Promise<Exposition> {
  return waitFor(
    async () => {
      const e = await scrape(collector.url);
      check(e);
      return e;
    },
    { what },
  );
}

function lines(...parts: (string | Buffer)[]): Buffer {
  const out: Buffer[] = [];
  parts.forEach((p, i) => {
    if (i > 0) out.push(Buffer.from('\n'));
    out.push(typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
  });
  return Buffer.concat(out);
}

async function expectValidExposition(text: string): Promise<void> {
  if (PROMTOOL === null) {
    console.warn('promtool not installed (Debian package "prometheus"); skipping the lint of /metrics');
    return;
  }
  const r = await promtoolCheckMetrics(text);
  expect(r.output).toBe('');
  expect(r.code).toBe(0);
}

describe('bad input through the statsd UDP door', () => {
  it('rejects malformed lines by reason, keeps the good lines of the same datagrams, survives a 60 KB datagram', async () => {
    const invalidUtf8Name = Buffer.concat([Buffer.from('bad'), Buffer.from([0xff, 0xfe]), Buffer.from('.name:1|c')]);
    const invalidUtf8Tag = Buffer.concat([Buffer.from('bad.tag:1|c|#env:'), Buffer.from([0xc3, 0x28])]);
    const invalidUtf8Member = Buffer.concat([Buffer.from('bad.member:'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('|s')]);
    const hugeCount = 4000;
    const huge = Buffer.from('huge.lines:1|c\n'.repeat(hugeCount) + 'good.mixed:1|c|#env:prod');
    expect(huge.length).toBeGreaterThan(60_000);

    const a = await sendDatagrams([
      lines(
        'good.mixed:1|c|#env:prod',
        'nocolon',
        'empty.value:|c',
        'no.type:1',
        'bad.type:1|zz',
        'bad.value:abc|c',
        'bad.rate:1|c|@2',
        ':1|c',
        'bad.tags:1|c|#:novalue',
        'bad.ts:1|c|T-5',
        '_e{5,3}:ab',
        '_sc|svc|9',
        'good.mixed:2|c|#env:prod\r',
      ),
      lines(invalidUtf8Name, 'good.utf8:1|c|#city:Zürich', invalidUtf8Tag, invalidUtf8Member, 'good.members:ünïcødé|s'),
      Buffer.from('\n\n\r\n'),
      huge,
    ]);
    const errors = Object.fromEntries(samplesOf(a, 'plumb_statsd_parse_errors_total').map((s) => [s.labels.reason, s.value]));
    expect(errors).toEqual({
      no_value: 1,
      bad_value: 2,
      no_type: 1,
      bad_type: 1,
      bad_sample_rate: 1,
      empty_name: 1,
      bad_tags: 1,
      bad_timestamp: 1,
      bad_event: 1,
      bad_service_check: 1,
      invalid_utf8: 3,
      too_long: 0,
      name_too_long: 0,
      tag_too_long: 0,
      too_many_tags: 0,
      member_too_long: 0,
      field_too_long: 0,
      negative_counter: 0,
      non_finite: 0,
      timestamp_out_of_range: 0,
    });
    expect(valueOf(a, 'plumb_statsd_lines_total')).toBe(2 + 2 + hugeCount + 1);

    await agent.agent.flush();
    await collectorShows((e) => {
      expect(valueOf(e, 'good_mixed_total', { env: 'prod' })).toBe(4);
      expect(valueOf(e, 'good_utf8_total', { city: 'Zürich' })).toBe(1);
      expect(valueOf(e, 'good_members')).toBe(1);
      expect(valueOf(e, 'huge_lines_total')).toBe(hugeCount);
    }, 'the good lines at the collector');
    const res = await fetch(`${agent.url}/healthz`);
    expect(res.status).toBe(200);
  });

  it(`drops series past maxSeries (${MAX_SERIES}) and counts them, while series already known keep counting`, async () => {
    const before = await scrape(agent.url);
    const droppedBefore = valueOf(before, 'plumb_statsd_dropped_total', { reason: 'max_series' }) ?? 0;
    const flood = 300;
    const floodLines = Array.from({ length: flood }, (_, i) => `flood.series:1|c|#id:${i}`);
    // keep.alive opens the interval, so it holds one of the MAX_SERIES places
    const datagrams: Buffer[] = [Buffer.from('keep.alive:1|c')];
    for (let i = 0; i < flood; i += 50) datagrams.push(lines(...floodLines.slice(i, i + 50)));
    datagrams.push(lines('keep.alive:1|c', 'keep.alive:1|c'));
    const a = await sendDatagrams(datagrams);
    expect(valueOf(a, 'plumb_statsd_dropped_total', { reason: 'max_series' })).toBe(droppedBefore + flood - (MAX_SERIES - 1));

    await agent.agent.flush();
    const e = await collectorShows((e) => expect(valueOf(e, 'keep_alive_total')).toBe(3), 'the series that was there first');
    const flooded = samplesOf(e, 'flood_series_total');
    expect(flooded).toHaveLength(MAX_SERIES - 1);
    expect(new Set(flooded.map((s) => s.labels.id)).size).toBe(MAX_SERIES - 1);
    expect(flooded.every((s) => s.value === 1)).toBe(true);
    expect((await fetch(`${agent.url}/healthz`)).status).toBe(200);
  });
});

describe('bad input through the collector HTTP door', () => {
  const url = (): string => `${collector.url}/v1/metrics`;
  const json = { 'content-type': 'application/json' };
  const gzipJson = { ...json, 'content-encoding': 'gzip' };

  async function post(body: string | Buffer<ArrayBuffer>, headers: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(url(), { method: 'POST', body, headers });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  function batch(id: string, metrics: unknown[]): string {
    return JSON.stringify({ id, agent: 'test-agent', seq: 1, start: 0, end: 1, metrics, events: [], serviceChecks: [] });
  }

  it('answers malformed bodies with 4xx and an error code, and keeps serving', async () => {
    const notJson = await post('{"id": ', json);
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toBe('PLUMB_ERR_INGEST_BODY');

    const wrongSchema = await post(JSON.stringify({ id: 'x' }), json);
    expect(wrongSchema.status).toBe(400);
    expect(String(wrongSchema.body.message)).toMatch(/agent/);
    // a bad item is refused alone, by its path; the batch around it applies
    const wrongValue = await post(batch('wrong-value', [{ type: 'c', name: 'x', tags: [], value: 'many' }]), json);
    expect(wrongValue.status).toBe(200);
    expect(wrongValue.body).toMatchObject({ accepted: 0, refused: 1, errors: [{ path: '/metrics/0/value', reason: 'wrong_type' }] });

    const notGzip = await post(batch('not-gzip', []), gzipJson);
    expect(notGzip.status).toBe(400);
    expect(notGzip.body.error).toBe('PLUMB_ERR_INGEST_BODY');

    const oversized = await post(batch('big', [{ type: 'c', name: 'x'.repeat(1000), tags: [], value: 1 }]).padEnd(300 * 1024, ' '), json);
    expect(oversized.status).toBe(413);
    expect(oversized.body.error).toBe('PLUMB_ERR_INGEST_TOO_LARGE');

    // ~20 KB on the wire, 32 MB once inflated: refused once it passes the limit, not inflated whole
    const bomb = gzipSync(Buffer.concat([Buffer.from('{"id":"'), Buffer.alloc(32 * 1024 * 1024, 0x61), Buffer.from('"}')]));
    expect(bomb.length).toBeLessThan(256 * 1024);
    const exploded = await post(bomb, gzipJson);
    expect([400, 413]).toContain(exploded.status);

    expect((await fetch(`${collector.url}/healthz`)).status).toBe(200);
    // and a good batch still goes in
    const ok = await post(gzipSync(batch('good-after-bad', [{ type: 'c', name: 'after.bad', tags: [], value: 1 }])), gzipJson);
    expect(ok).toEqual({ status: 200, body: { accepted: 1, refused: 0, duplicate: false } });
    const e = await scrape(collector.url);
    expect(valueOf(e, 'after_bad_total')).toBe(1);
  });

  it('refuses type, name and label clashes, counts them by reason, and /metrics stays valid', async () => {
    const before = await scrape(collector.url);
    const refusedBefore = (reason: string): number => valueOf(before, 'plumb_metrics_refused_total', { reason }) ?? 0;
    const timer = (name: string, tags: string[], v: number) => ({ type: 'ms', name, tags, ...oneSampleSketch(v) });
    const first = await post(
      batch('clash-1', [
        { type: 'c', name: 'dup', tags: ['env:prod'], value: 5 },
        timer('lat', [], 12),
        { type: 'g', name: 'mixed', tags: [], value: 7 },
        // a counter and a gauge both called "jobs" expose jobs_total and jobs: no clash
        { type: 'c', name: 'jobs', tags: [], value: 1 },
        { type: 'g', name: 'jobs', tags: [], value: 9 },
      ]),
      json,
    );
    expect(first).toEqual({ status: 200, body: { accepted: 5, refused: 0, duplicate: false } });
    const second = await post(
      batch('clash-2', [
        { type: 'g', name: 'dup_total', tags: ['env:prod'], value: 1 }, // counter family dup_total exists
        { type: 'g', name: 'lat_count', tags: [], value: 1 }, // a sample of the lat summary
        { type: 'g', name: 'lat_sum', tags: [], value: 1 },
        { type: 's', name: 'mixed', tags: [], members: ['a'] }, // a set where a gauge lives
        { type: 'c', name: 'clash.labels', tags: ['env:a', 'env:b'], value: 1 },
        { type: 'c', name: 'clash.sanitized', tags: ['k.a:1', 'k_a:2'], value: 1 },
        timer('reserved', ['quantile:0.5'], 1),
        { type: 'c', name: 'dup', tags: ['env:prod'], value: 2 }, // the first one keeps working
      ]),
      json,
    );
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ accepted: 1, refused: 7, duplicate: false, reasons: { type_conflict: 2, name_collision: 2, label_clash: 2, reserved_label: 1 } });
    expect((second.body.errors as { path: string }[]).map((e) => e.path)).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `/metrics/${i}`));

    const text = await scrapeText(collector.url);
    await expectValidExposition(text);
    const e = await scrape(collector.url);
    const refused = (reason: string): number => (valueOf(e, 'plumb_metrics_refused_total', { reason }) ?? 0) - refusedBefore(reason);
    expect({
      type_conflict: refused('type_conflict'),
      name_collision: refused('name_collision'),
      label_clash: refused('label_clash'),
      reserved_label: refused('reserved_label'),
    }).toEqual({ type_conflict: 2, name_collision: 2, label_clash: 2, reserved_label: 1 });
    expect(valueOf(e, 'dup_total', { env: 'prod' })).toBe(7);
    expect(e.types.get('dup_total')).toBe('counter');
    expect(valueOf(e, 'mixed')).toBe(7);
    expect(valueOf(e, 'lat_count')).toBe(1);
    expect(valueOf(e, 'lat_sum')).toBe(12);
    expect(valueOf(e, 'jobs_total')).toBe(1);
    expect(valueOf(e, 'jobs')).toBe(9);
    expect(samplesOf(e, 'clash_labels_total')).toEqual([]);
    expect(samplesOf(e, 'reserved_count')).toEqual([]);
  });
});

describe('a statsd metric named like one of the collector\'s own', () => {
  // Runs last: until the collision is refused, it leaves /metrics invalid for the tests after it.
  it('is refused as a name collision; the self-metric keeps its value and /metrics stays valid', async () => {
    const before = await scrape(collector.url);
    const collisions = valueOf(before, 'plumb_metrics_refused_total', { reason: 'name_collision' }) ?? 0;
    await sendDatagrams([lines('plumb.metrics.series:5|g', 'plumb.ingest.metrics:1000|c', 'marker.selfname:1|c')]);
    await agent.agent.flush();
    // the marker travels in the same batch: once it is there, the batch has been applied
    await collectorShows((e) => expect(valueOf(e, 'marker_selfname_total')).toBe(1), 'the batch at the collector');
    const text = await scrapeText(collector.url);
    const e = await scrape(collector.url);
    await expectValidExposition(text);
    expect(valueOf(e, 'plumb_metrics_refused_total', { reason: 'name_collision' })).toBe(collisions + 2);
    for (const name of ['plumb_metrics_series', 'plumb_ingest_metrics_total']) {
      expect(text.split('\n').filter((l) => l.startsWith(`# TYPE ${name} `)), name).toHaveLength(1);
      expect(samplesOf(e, name), name).toHaveLength(1);
    }
    expect(valueOf(e, 'plumb_metrics_series')).toBe(collector.collector.store.size);
  });
});

/** The wire form of a sketch holding one value, as an agent would send it. */
function oneSampleSketch(v: number): { sketch: string; count: number; sum: number; min: number; max: number } {
  const s = newSketch();
  s.accept(v);
  return { sketch: encodeSketch(s), count: 1, sum: v, min: v, max: v };
}
