import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { afterEach, describe, expect, it } from 'vitest';
import { TRACING_OFF } from '../../../../shared/tracing.ts';
import { silentLogger } from '../../../../shared/log.ts';
import { ElasticsearchSinkSchema } from '../../../../collector/logs/config.ts';
import { ElasticsearchSink } from '../../../../collector/logs/elasticsearch.ts';
import { splitEvents } from '../../../../collector/logs/event.ts';
import { freeTcpPort } from '../../../helpers/ports.ts';
import { startEsServer, type EsTestServer, type EsTestServerOptions } from '../../../helpers/es-server.ts';
import { ndjson } from './fake-sink.ts';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function es(options: EsTestServerOptions = {}): Promise<EsTestServer> {
  const s = await startEsServer(options);
  cleanup.push(() => s.stop());
  return s;
}

function sink(config: Record<string, unknown>): ElasticsearchSink {
  const c = Value.Decode(ElasticsearchSinkSchema, Value.Default(ElasticsearchSinkSchema, { retryInitial: '10ms', retryMax: '20ms', timeout: '5s', ...config }));
  const s = new ElasticsearchSink(c, { log: silentLogger() });
  cleanup.push(() => s.close());
  return s;
}

const span = TRACING_OFF.tracer.startSpan('test');
const signal = new AbortController().signal;

function events(text: string) {
  return splitEvents(Buffer.from(text));
}

describe('elasticsearch sink', () => {
  it('checks the cluster, installs the index template with ECS-style mappings, and keeps an existing one', async () => {
    const server = await es();
    const s = sink({ node: server.url });
    await s.open(signal);
    expect(s.version).toBe('9.1.0');
    const t = server.store.templates.get('plumb-logs') as { index_patterns: string[]; priority: number; template: { mappings: { properties: Record<string, { type?: string; properties?: Record<string, { type: string }> }> } } };
    expect(t.index_patterns).toEqual(['plumb-logs-*']);
    expect(t.priority).toBe(200);
    expect(t.template.mappings.properties['@timestamp'].type).toBe('date');
    expect(t.template.mappings.properties.event.properties?.id.type).toBe('keyword');

    server.store.templates.set('plumb-logs', { index_patterns: ['plumb-logs-*'], priority: 5, _meta: { mine: true } });
    await sink({ node: server.url }).open(signal);
    expect(server.store.templates.get('plumb-logs')).toMatchObject({ priority: 5 });
    await sink({ node: server.url, template: { overwrite: true } }).open(signal);
    expect(server.store.templates.get('plumb-logs')).toMatchObject({ priority: 200 });
  });

  it('writes each event with create and _id = event.id into the index of its day; a second write is a duplicate', async () => {
    const server = await es();
    const s = sink({ node: server.url });
    const batch = events(
      '{"@timestamp":"2026-11-24T23:59:59.999Z","message":"a","event":{"id":"id-a"}}\n' + '{"@timestamp":"2026-11-25T00:00:00.000Z","message":"b","event":{"id":"id-b"},"http":{"status":200}}\n',
    );
    expect(await s.write(batch, signal, span)).toEqual({ delivered: 2, duplicate: 0, rejected: [], retry: [] });
    expect(server.docs().map((d) => [d.index, d.id, d.source.message])).toEqual([
      ['plumb-logs-2026.11.24', 'id-a', 'a'],
      ['plumb-logs-2026.11.25', 'id-b', 'b'],
    ]);
    expect(server.docs('plumb-logs-2026.11.25')[0].source).toEqual({ '@timestamp': '2026-11-25T00:00:00.000Z', message: 'b', event: { id: 'id-b' }, http: { status: 200 } });
    expect(await s.write(batch, signal, span)).toEqual({ delivered: 0, duplicate: 2, rejected: [], retry: [] });
    expect(server.count()).toBe(2);
  });

  it('reads every item: refused ones with their reason, throttled ones to retry, the rest delivered', async () => {
    const server = await es({ numericField: 'status' });
    const s = sink({ node: server.url });
    const batch = events(
      ndjson('ok', 0, 3).toString() + '{"@timestamp":"2026-11-24T10:00:00Z","status":"oops","event":{"id":"bad"}}\n' + '{"@timestamp":"2026-11-24T10:00:00Z","message":"no id"}\n',
    );
    server.throttleNextItems(2);
    const r = await s.write(batch, signal, span);
    expect(r.delivered).toBe(1);
    expect(r.retry.map((e) => e.id)).toEqual(['ok0', 'ok1']);
    expect(r.retryReason).toBe('item_throttled');
    expect(r.retryMessage).toMatch(/^es_rejected_execution_exception/);
    expect(r.rejected.map((x) => [x.event.id, x.status, x.target])).toEqual([
      ['', undefined, undefined],
      ['bad', 400, 'plumb-logs-2026.11.24'],
    ]);
    expect(r.rejected[0].reason).toMatch(/no event\.id/);
    expect(r.rejected[1].reason).toBe(
      "mapper_parsing_exception: failed to parse field [status] of type [long] in document with id 'bad'. Preview of field's value: 'oops' (caused by illegal_argument_exception: For input string: \"oops\")",
    );
    expect(await s.write(r.retry, signal, span)).toMatchObject({ delivered: 2, duplicate: 0, retry: [] });
    expect(server.count()).toBe(3);
  });

  it('splits the events into requests of at most flushBytes', async () => {
    const server = await es();
    const s = sink({ node: server.url, flushBytes: '2kb' });
    const r = await s.write(events(ndjson('c', 0, 40).toString()), signal, span);
    expect(r.delivered).toBe(40);
    expect(server.bulkRequests).toBeGreaterThan(1);
    expect(server.count()).toBe(40);
  });

  it('throws a retryable error, with the cluster\'s reason, when a whole request fails', async () => {
    const server = await es();
    const s = sink({ node: server.url });
    server.failNextBulk(1, 429);
    await expect(s.write(events(ndjson('d', 0, 2).toString()), signal, span)).rejects.toMatchObject({ name: 'RetryableError', status: 429, message: expect.stringContaining('es_rejected_execution_exception') });
    server.failNextBulk(1, 503);
    await expect(s.write(events(ndjson('d', 0, 2).toString()), signal, span)).rejects.toMatchObject({ name: 'RetryableError', status: 503 });
    expect(server.count()).toBe(0);
  });

  it('sends the API key and says clearly when credentials are refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'plumb-es-auth-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'key'), 'the-right-key\n');
    const server = await es({ auth: { apiKey: 'the-right-key', username: 'plumb', password: 'pw-123456' } });
    await sink({ node: server.url, auth: { apiKeyFile: join(dir, 'key') } }).open(signal);
    await sink({ node: server.url, auth: { username: 'plumb', password: 'pw-123456' } }).open(signal);
    expect(server.bulkHeaders).toHaveLength(0);
    const wrong = sink({ node: server.url, auth: { apiKey: 'a-wrong-key' } });
    expect(wrong.secrets).toEqual(['a-wrong-key']);
    const err = await wrong.open(signal).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'RetryableError', status: 401 });
    expect((err as Error).message).toMatch(/answered GET \/ with 401 \(security_exception: unable to authenticate/);
    expect((err as Error).message).toMatch(/check collector\.logs\.sinks\.elasticsearch\.auth/);
    const none = await sink({ node: server.url }).open(signal).catch((e: unknown) => e);
    expect((none as Error).message).toMatch(/missing authentication credentials for REST request \[\/\]/);
  });

  it('says clearly when the cluster cannot be reached', async () => {
    const port = await freeTcpPort();
    const err = await sink({ node: `http://127.0.0.1:${port}` }).open(signal).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'RetryableError' });
    expect((err as Error).message).toMatch(new RegExp(`cannot reach elasticsearch http://127\\.0\\.0\\.1:${port} \\(GET /\\)`));
  });

  it('writes to a data stream through a template that declares it', async () => {
    const server = await es();
    const s = sink({ node: server.url, dataStream: 'logs-plumb-default' });
    await s.open(signal);
    expect(server.store.templates.get('plumb-logs')).toMatchObject({ index_patterns: ['logs-plumb-default'], data_stream: {} });
    const r = await s.write(events(ndjson('ds', 0, 3).toString()), signal, span);
    expect(r.delivered).toBe(3);
    expect(server.store.dataStreams.get('logs-plumb-default')).toMatch(/^\.ds-logs-plumb-default-/);
    expect(server.count('logs-plumb-default')).toBe(3);
    expect((await s.write(events(ndjson('ds', 0, 3).toString()), signal, span)).duplicate).toBe(3);
  });
});
