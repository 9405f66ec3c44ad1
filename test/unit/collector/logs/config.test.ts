import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, Section, ConfigError } from '../../../../shared/config.ts';
import { CollectorLogsSchema, checkLogsConfig } from '../../../../collector/logs/config.ts';

const Schema = Section({ collector: Section({ logs: CollectorLogsSchema }) });
const CHECKS = [{ path: 'collector.logs', schema: CollectorLogsSchema, run: (c: Parameters<typeof checkLogsConfig>[0]) => checkLogsConfig(c, 'collector.logs') }];

function load(text: string, env: Record<string, string> = {}) {
  return loadConfig(Schema, { text, env }, CHECKS).collector.logs;
}

function errors(text: string): string[] {
  try {
    load(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.errors;
    throw err;
  }
  return [];
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'plumb-logs-config-'));
  await writeFile(join(dir, 'key'), 'c2VjcmV0\n');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('collector.logs config', () => {
  it('has no sink configured by default (the router then uses the file sink) and sane queue limits', () => {
    const c = load('');
    expect(c.sinks).toEqual({});
    expect(c.queue.maxBytes).toBe(1024 ** 3);
    expect(c.queue.retryAfter).toBe(5000);
  });

  it('decodes the documented example', () => {
    const c = load(`
collector:
  logs:
    sinks:
      file: { dir: ./data/logs }
      elasticsearch:
        node: "https://es.example:9200"
        auth: { apiKeyFile: ${join(dir, 'key')} }
        tls: { rejectUnauthorized: false }
        index: "plumb-logs-%{+yyyy.MM.dd}"
        flushBytes: 5mb
        flushInterval: 1s
      s3:
        bucket: logs-archive
        prefix: plumb/
        region: us-east-1
        endpoint: "http://127.0.0.1:4569"
        forcePathStyle: true
        rollover: { bytes: 64mb, interval: 5m }
    queue: { maxBytes: 1gb }
`);
    expect(c.sinks.file?.dir).toBe('./data/logs');
    expect(c.sinks.elasticsearch?.flushBytes).toBe(5 * 1024 * 1024);
    expect(c.sinks.elasticsearch?.flushInterval).toBe(1000);
    expect(c.sinks.s3?.rollover).toEqual({ bytes: 64 * 1024 * 1024, interval: 300_000 });
  });

  it('takes overrides from the environment', () => {
    const c = load('collector: { logs: { sinks: { s3: { bucket: logs } } } }', { PLUMB_COLLECTOR__LOGS__SINKS__S3__ROLLOVER__INTERVAL: '1m' });
    expect(c.sinks.s3?.rollover.interval).toBe(60_000);
  });

  it('reports every cross-key problem at once, each with its key', () => {
    const e = errors(`
collector:
  logs:
    sinks:
      elasticsearch:
        auth: { apiKey: abc, username: elastic, passwordFile: /nonexistent/pw }
        index: "Plumb-%{+yyyy}"
        flushBytes: 80mb
      s3: { bucket: Logs_Archive, prefix: /x, partSize: 1mb, credentials: { accessKeyId: AK } }
    queue: { maxBytes: 10mb }
`);
    expect(e).toEqual(
      expect.arrayContaining([
        'collector.logs.sinks.elasticsearch: set node (one URL) or nodes (a list)',
        'collector.logs.sinks.elasticsearch.auth: use an API key or a username and password, not both',
        'collector.logs.sinks.elasticsearch.auth.passwordFile: cannot read "/nonexistent/pw"',
        expect.stringMatching(/^collector\.logs\.sinks\.elasticsearch\.index: an index name must be lowercase/),
        expect.stringMatching(/^collector\.logs\.sinks\.elasticsearch\.flushBytes: at most 50mb/),
        expect.stringMatching(/^collector\.logs\.sinks\.s3\.bucket: expected a bucket name/),
        'collector.logs.sinks.s3.prefix: must not start with "/" (got "/x")',
        'collector.logs.sinks.s3.partSize: at least 5mb (S3\'s smallest multipart part)',
        'collector.logs.sinks.s3.credentials: set secretAccessKey or secretAccessKeyFile (one of them)',
        expect.stringMatching(/^collector\.logs\.queue\.maxBytes: smaller than a sink's batch/),
      ]),
    );
  });

  it('names an unknown key with a suggestion', () => {
    expect(errors('collector: { logs: { sinks: { elasticsearch: { node: "http://es:9200", flushByte: 1mb } } } }')).toEqual([
      'collector.logs.sinks.elasticsearch.flushByte: unknown key (did you mean "flushBytes"?)',
    ]);
  });
});
