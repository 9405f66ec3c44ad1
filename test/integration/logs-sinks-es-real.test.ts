/**
 * The Elasticsearch sink against a real cluster, when ES_URL names one (with ES_API_KEY or
 * ES_USERNAME/ES_PASSWORD if it needs credentials). Skipped otherwise. Writes into a fresh,
 * uniquely named index pattern and deletes it afterwards.
 */
import { randomBytes } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../shared/log.ts';
import { TRACING_OFF } from '../../shared/tracing.ts';
import { ElasticsearchSinkSchema } from '../../collector/logs/config.ts';
import { ElasticsearchSink } from '../../collector/logs/elasticsearch.ts';
import { splitEvents } from '../../collector/logs/event.ts';

const url = process.env.ES_URL;
const suffix = randomBytes(4).toString('hex');

describe.runIf(url)('elasticsearch sink against a real cluster (ES_URL)', () => {
  const auth = process.env.ES_API_KEY ? { apiKey: process.env.ES_API_KEY } : process.env.ES_USERNAME ? { username: process.env.ES_USERNAME, password: process.env.ES_PASSWORD ?? '' } : undefined;
  const config = Value.Decode(
    ElasticsearchSinkSchema,
    Value.Default(ElasticsearchSinkSchema, {
      node: url,
      ...(auth ? { auth } : {}),
      tls: { rejectUnauthorized: process.env.ES_INSECURE !== '1' },
      index: `plumb-test-${suffix}-%{+yyyy.MM.dd}`,
      template: { name: `plumb-test-${suffix}`, overwrite: true },
    }),
  );
  const sink = url ? new ElasticsearchSink(config, { log: silentLogger() }) : undefined;
  const signal = new AbortController().signal;
  const span = TRACING_OFF.tracer.startSpan('test');

  afterAll(async () => {
    if (!sink) return;
    await sink.client.indices.delete({ index: `plumb-test-${suffix}-*` }).catch(() => undefined);
    await sink.client.indices.deleteIndexTemplate({ name: `plumb-test-${suffix}` }).catch(() => undefined);
    await sink.close();
  });

  it('creates documents once, counts a replay as duplicates and refuses a mapping conflict with its reason', async () => {
    await sink!.open(signal);
    const lines = Array.from({ length: 20 }, (_, i) => JSON.stringify({ '@timestamp': '2026-11-24T10:00:00.000Z', message: `m${i}`, event: { id: `${suffix}-${i}` }, host: { name: 'h' }, log: { offset: i } }));
    const bad = JSON.stringify({ '@timestamp': '2026-11-24T10:00:00.000Z', message: 'x', event: { id: `${suffix}-bad` }, log: { offset: 'not a number' } });
    const events = splitEvents(Buffer.from([...lines, bad].join('\n') + '\n'));
    const first = await sink!.write(events, signal, span);
    expect(first.delivered).toBe(20);
    expect(first.rejected.map((r) => [r.event.id, r.status])).toEqual([[`${suffix}-bad`, 400]]);
    expect(first.rejected[0].reason).toMatch(/parsing_exception/);
    const second = await sink!.write(events.slice(0, 20), signal, span);
    expect(second).toMatchObject({ delivered: 0, duplicate: 20 });
    await sink!.client.indices.refresh({ index: `plumb-test-${suffix}-*` });
    const { count } = await sink!.client.count({ index: `plumb-test-${suffix}-*` });
    expect(count).toBe(20);
  });
});
