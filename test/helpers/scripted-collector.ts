/**
 * A collector stand-in for agent-side tests: a real HTTP server on a free port whose answer to
 * each request the test scripts (status and headers, or no answer at all), keeping the bodies
 * of the requests it acknowledged, gunzipped.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export type ScriptedAnswer = { status: number; headers?: Record<string, string> } | 'hang';

export interface AcknowledgedRequest {
  batchId: string;
  contentType: string;
  text: string;
}

export interface ScriptedCollector {
  url: string;
  /** Requests answered 2xx, in order. */
  acknowledged: AcknowledgedRequest[];
  requests(): number;
  close(): Promise<void>;
}

const open = new Set<http.Server>();

/** `answer(n)` decides the reply to the n-th request (from 0). */
export async function startScriptedCollector(answer: (n: number) => ScriptedAnswer = () => ({ status: 200 })): Promise<ScriptedCollector> {
  const acknowledged: AcknowledgedRequest[] = [];
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const a = answer(requests++);
      if (a === 'hang') return;
      if (a.status < 300) {
        const raw = Buffer.concat(chunks);
        const text = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
        acknowledged.push({ batchId: String(req.headers['x-plumb-batch-id']), contentType: String(req.headers['content-type']), text });
      }
      res.writeHead(a.status, a.headers).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  open.add(server);
  const close = async (): Promise<void> => {
    if (!open.delete(server)) return;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, acknowledged, requests: () => requests, close };
}

/** Closes every scripted collector still open (afterEach). */
export async function stopScriptedCollectors(): Promise<void> {
  await Promise.all(
    [...open].map(async (server) => {
      open.delete(server);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }),
  );
}
