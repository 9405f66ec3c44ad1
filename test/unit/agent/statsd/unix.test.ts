import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DgramSocket } from 'node-unix-socket';
import { StatsD } from 'hot-shots';
import { Aggregator } from '../../../../agent/statsd/aggregator.ts';
import { StatsdServer } from '../../../../agent/statsd/server.ts';
import { FrameReader, resolveGroup, MAX_UNIX_DATAGRAM } from '../../../../agent/statsd/unix.ts';
import { Telemetry } from '../../../../shared/telemetry.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { parseExposition, valueOf } from '../../../helpers/prometheus.ts';
import { waitFor } from '../../../helpers/wait.ts';

const aggregatorOptions = {
  maxSeries: 1000,
  maxSetMembers: 100,
  relativeAccuracy: 0.01,
  tagStyles: { influx: true, librato: true, signalfx: true },
  maxEvents: 10,
  gaugeTtlMs: 60_000,
  extraTags: [],
};

let dir: string;
const servers: StatsdServer[] = [];
const clients: DgramSocket[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'plumb-uds-'));
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface UnixOverrides {
  path?: string | null;
  streamPath?: string | null;
  mode?: number;
  group?: number | string | null;
}

async function start(unix: UnixOverrides, maxLineBytes = 1024) {
  const telemetry = new Telemetry();
  const agg = new Aggregator(aggregatorOptions, telemetry);
  const server = new StatsdServer(
    {
      listen: '127.0.0.1:0',
      tcp: null,
      receiveBufferBytes: 1 << 20,
      maxLineBytes,
      unix: { path: null, streamPath: null, mode: 0o622, group: null, receiveBufferBytes: 1 << 20, ...unix },
    },
    agg,
    { telemetry, log: silentLogger() },
  );
  await server.start();
  servers.push(server);
  return { agg, server, telemetry };
}

function sendDatagram(path: string, data: string | Buffer): Promise<void> {
  const c = new DgramSocket();
  clients.push(c);
  const buf = typeof data === 'string' ? Buffer.from(data) : data;
  return new Promise((resolve, reject) => c.sendTo(buf, 0, buf.length, path, (err) => (err ? reject(err) : resolve())));
}

function frame(text: string): Buffer {
  const body = Buffer.from(text);
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length);
  return Buffer.concat([head, body]);
}

describe('statsd over a unix datagram socket', () => {
  it('takes datagrams from a raw client through the same parser and counters as UDP', async () => {
    const path = join(dir, 'dsd.socket');
    const { agg, telemetry } = await start({ path });
    await sendDatagram(path, 'uds.a:1|c|#env:prod\nuds.b:2|g\nuds.bad:notanumber|c');
    await sendDatagram(path, 'uds.a:4|c|#env:prod');
    await waitFor(() => agg.stats.lines === 3 && agg.stats.datagrams === 2);
    const metrics = agg.flush().metrics;
    const a = metrics.find((m) => m.name === 'uds.a');
    expect(a).toMatchObject({ type: 'c', tags: ['env:prod'], value: 5 });
    const e = parseExposition(await telemetry.metrics());
    expect(valueOf(e, 'plumb_statsd_received_total', { transport: 'unix' })).toBe(2);
    expect(valueOf(e, 'plumb_statsd_received_total', { transport: 'udp' })).toBe(0);
    expect(valueOf(e, 'plumb_statsd_lines_total')).toBe(3);
    expect(agg.stats.parseErrors.reduce((a, b) => a + b, 0)).toBe(1);
    expect(valueOf(e, 'plumb_statsd_unix_receive_buffer_bytes')).toBeGreaterThan(0);
  });

  it('takes what hot-shots sends with its uds protocol (counters, gauges, timers, sets, tags, events)', async () => {
    const path = join(dir, 'dsd.socket');
    const { agg } = await start({ path });
    const errors: Error[] = [];
    const client = new StatsD({ protocol: 'uds', path, maxBufferSize: 8192, bufferFlushInterval: 60_000, errorHandler: (err) => errors.push(err) });
    try {
      for (let i = 0; i < 10; i++) client.increment('hs.requests', 1, ['route:/a']);
      client.gauge('hs.queue', 7);
      client.timing('hs.latency', 12, ['route:/a']);
      client.timing('hs.latency', 30, ['route:/a']);
      client.set('hs.users', 'alice');
      client.set('hs.users', 'bob');
      client.event('deploy', 'v1.2.3 is out', { alert_type: 'info' });
      client.flush();
      await waitFor(() => agg.stats.lines === 15 && agg.stats.events === 1, { what: '15 lines and an event over the unix socket' });
    } finally {
      await new Promise<void>((resolve) => client.close(() => resolve()));
    }
    expect(errors).toEqual([]);
    const interval = agg.flush();
    const byName = new Map(interval.metrics.map((m) => [m.name, m]));
    expect(byName.get('hs.requests')).toMatchObject({ value: 10, tags: ['route:/a'] });
    expect(byName.get('hs.queue')).toMatchObject({ value: 7 });
    expect(byName.get('hs.users')).toMatchObject({ members: ['alice', 'bob'] });
    expect(byName.get('hs.latency')).toMatchObject({ type: 'ms', tags: ['route:/a'], count: 2 });
    expect(interval.events.map((ev) => ev.title)).toEqual(['deploy']);
  });

  it('creates the socket with the configured mode and group, and removes it on stop', async () => {
    const path = join(dir, 'nested', 'run', 'dsd.socket');
    const gid = process.getgid?.() ?? 0;
    const { server } = await start({ path, mode: 0o660, group: gid });
    const st = statSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(gid);
    await server.stop();
    servers.splice(servers.indexOf(server), 1);
    expect(existsSync(path)).toBe(false);
  });

  it('replaces a stale socket file, and refuses a socket in use or a path that is not a socket', async () => {
    const path = join(dir, 'dsd.socket');
    // a socket file nobody is bound to any more
    const stale = new DgramSocket();
    stale.bind(path);
    stale.close();
    expect(statSync(path).isSocket()).toBe(true);
    const { agg } = await start({ path });
    await sendDatagram(path, 'after.stale:1|c');
    await waitFor(() => agg.stats.lines === 1);

    await expect(start({ path })).rejects.toThrow(/agent\.statsd\.socket\.path: .* is in use/);
    const file = join(dir, 'plain-file');
    writeFileSync(file, 'x');
    await expect(start({ path: file })).rejects.toThrow(/exists and is not a socket/);
  });

  it('keeps only whole lines of a datagram cut at the read limit, and counts it', async () => {
    const path = join(dir, 'dsd.socket');
    const { agg, telemetry } = await start({ path });
    const line = 'big.series:1|c|#k:v\n';
    const n = Math.ceil((MAX_UNIX_DATAGRAM + 5000) / line.length);
    await sendDatagram(path, line.repeat(n));
    await waitFor(() => agg.stats.datagrams === 1);
    const whole = Math.floor(MAX_UNIX_DATAGRAM / line.length);
    expect(agg.stats.lines).toBe(whole);
    expect(agg.flush().metrics).toMatchObject([{ name: 'big.series', value: whole }]);
    const e = parseExposition(await telemetry.metrics());
    expect(valueOf(e, 'plumb_statsd_unix_oversized_total')).toBe(1);
  });
});

describe('statsd over a unix stream socket', () => {
  it('reads length-prefixed frames split across writes and skips oversized ones', async () => {
    const streamPath = join(dir, 'dsd-stream.socket');
    const { agg, telemetry } = await start({ streamPath }, 64);
    const conn = net.connect(streamPath);
    await new Promise((r) => conn.once('connect', r));
    const all = Buffer.concat([frame('s.a:1|c\ns.b:2|c'), frame(`s.x:${'9'.repeat(100)}|c`), frame('s.c:3|c')]);
    // byte by byte for the first frames, then the rest at once
    for (let i = 0; i < 20; i++) conn.write(all.subarray(i, i + 1));
    conn.end(all.subarray(20));
    await waitFor(() => agg.stats.lines === 3);
    expect(agg.flush().metrics.map((m) => m.name).sort()).toEqual(['s.a', 's.b', 's.c']);
    const e = parseExposition(await telemetry.metrics());
    expect(valueOf(e, 'plumb_statsd_unix_oversized_total')).toBe(1);
    expect(valueOf(e, 'plumb_statsd_received_total', { transport: 'unixstream' })).toBe(2);
    expect(statSync(streamPath).mode & 0o777).toBe(0o622);
  });
});

describe('unix stream limits', () => {
  it('closes an idle stream connection, as TCP does', async () => {
    const streamPath = join(dir, 'idle.socket');
    const telemetry = new Telemetry();
    const agg = new Aggregator(aggregatorOptions, telemetry);
    const server = new StatsdServer(
      { listen: '127.0.0.1:0', tcp: null, receiveBufferBytes: 1 << 20, maxLineBytes: 1024, tcpIdleTimeoutMs: 100, unix: { path: null, streamPath, mode: 0o622, group: null, receiveBufferBytes: 1 << 20 } },
      agg,
      { telemetry, log: silentLogger() },
    );
    await server.start();
    servers.push(server);
    const conn = net.connect(streamPath);
    const closed = new Promise((r) => conn.once('close', r));
    await closed;
    expect(valueOf(parseExposition(await telemetry.metrics()), 'plumb_statsd_unix_stream_closed_total')).toBe(1);
  });
});

describe('FrameReader', () => {
  it('splits frames at any chunk boundary', () => {
    const frames: string[] = [];
    let oversized = 0;
    const r = new FrameReader(10, (b, s, e) => frames.push(b.toString('utf8', s, e)), () => oversized++);
    const bytes = Buffer.concat([frame('abc'), frame(''), frame('0123456789A'), frame('xyz')]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      frames.length = 0;
      oversized = 0;
      const reader = new FrameReader(10, (b, s, e) => frames.push(b.toString('utf8', s, e)), () => oversized++);
      reader.push(bytes.subarray(0, cut));
      reader.push(bytes.subarray(cut));
      expect(frames).toEqual(['abc', '', 'xyz']);
      expect(oversized).toBe(1);
    }
    r.push(frame('ok'));
    expect(frames.at(-1)).toBe('ok');
  });
});

describe('resolveGroup', () => {
  it('takes a gid or looks a name up in the group file', () => {
    const file = join(dir, 'group');
    writeFileSync(file, 'root:x:0:\nstatsd:x:4242:app\n');
    expect(resolveGroup(7)).toBe(7);
    expect(resolveGroup('12')).toBe(12);
    expect(resolveGroup('statsd', file)).toBe(4242);
    expect(() => resolveGroup('nobody-here', file)).toThrow(/agent\.statsd\.socket\.group: no group named "nobody-here"/);
  });
});
