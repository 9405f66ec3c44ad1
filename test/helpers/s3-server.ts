/**
 * An S3-protocol server for tests: s3rver, in this process, on an ephemeral port, storing into a
 * temporary directory. It records every request (method and path with query), can answer the
 * next requests with an error (to play an S3 that is failing), and can be stopped and started
 * again on the same port with the same objects (an S3 that went away and came back).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { createRequire } from 'node:module';

/** The part of s3rver used here (it ships no type declarations). */
interface S3rverInstance {
  configureBuckets(): Promise<void>;
  getMiddleware(): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
}
const S3rver = createRequire(import.meta.url)('s3rver') as new (options: Record<string, unknown>) => S3rverInstance;

export interface S3TestServer {
  /** Endpoint URL, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  bucket: string;
  /** Credentials s3rver accepts. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** "METHOD /bucket/key?query" of every request, in order. */
  requests: string[];
  /** Answers the next `n` requests with `status` (an S3 XML error) without handling them. */
  failNext(n: number, status?: number): void;
  /** A client for the test's own checks. */
  client: S3Client;
  /** Keys under `prefix`, sorted. */
  keys(prefix?: string): Promise<string[]>;
  /** The object's bytes, gunzipped when gzip. */
  text(key: string): Promise<string>;
  /** Closes the listener (keeps the objects); start() opens it again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops and removes the objects. */
  destroy(): Promise<void>;
}

export async function startS3Server(options: { bucket?: string } = {}): Promise<S3TestServer> {
  const bucket = options.bucket ?? 'logs-archive';
  const directory = await mkdtemp(join(tmpdir(), 'plumb-s3rver-'));
  const s3rver = new S3rver({ silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
  await s3rver.configureBuckets();
  const handler = s3rver.getMiddleware();
  const requests: string[] = [];
  let failures = { left: 0, status: 503 };
  let server: Server | undefined;
  let port = 0;

  const listen = async (): Promise<void> => {
    const s = createServer((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      if (failures.left > 0) {
        failures.left--;
        const code = failures.status === 503 ? 'SlowDown' : 'InternalError';
        const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>simulated failure</Message><RequestId>test</RequestId></Error>`;
        req.resume();
        res.writeHead(failures.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      handler(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    server = s;
    port = (s.address() as AddressInfo).port;
  };
  await listen();

  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const url = `http://127.0.0.1:${port}`;
  // the SDK marks the credentials object it is given, so it gets its own copy
  const client = new S3Client({ region: 'us-east-1', endpoint: url, forcePathStyle: true, credentials: { ...credentials }, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });

  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  };

  return {
    url,
    port,
    bucket,
    credentials,
    requests,
    client,
    failNext(n, status = 503) {
      failures = { left: n, status };
    },
    async keys(prefix = '') {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of page.Contents ?? []) if (o.Key !== undefined) out.push(o.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
      return out.sort();
    },
    async text(key) {
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const bytes = Buffer.from(await got.Body!.transformToByteArray());
      return (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString('utf8');
    },
    stop,
    start: listen,
    async destroy() {
      await stop();
      client.destroy();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
