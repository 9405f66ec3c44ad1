/** `plumb tap <component> [--filter EXPR] [--limit N] [--rate R]`: the live tap's NDJSON on stdout. */
import type { Writable } from 'node:stream';
import { request } from 'undici';
import { headers, type Remote } from './remote.ts';

export interface TapCliOptions {
  remote: Remote;
  component: string;
  filter?: string;
  limit?: string;
  rate?: string;
  out: Writable;
  err: Writable;
}

/** 0 when the stream ended (its limit, or Ctrl-C), 2 when it was refused or nothing answered. */
export async function runTap(o: TapCliOptions): Promise<number> {
  const q = new URLSearchParams({ component: o.component });
  if (o.filter !== undefined) q.set('filter', o.filter);
  if (o.limit !== undefined) q.set('limit', o.limit);
  if (o.rate !== undefined) q.set('rate', o.rate);
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const res = await request(`${o.remote.url}/api/v1/tap?${q.toString()}`, { method: 'GET', headers: headers(o.remote), signal: abort.signal, bodyTimeout: 0 });
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      let message = text;
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? text;
      } catch {
        // not JSON: shown as it came
      }
      o.err.write(`plumb tap: ${res.statusCode === 401 ? `401, give a token with --token-file or PLUMB_TOKEN: ${message}` : message}\n`);
      return 2;
    }
    for await (const chunk of res.body) {
      if (!o.out.write(chunk as Buffer)) await new Promise((resolve) => o.out.once('drain', resolve));
    }
    return 0;
  } catch (err) {
    if (abort.signal.aborted) return 0;
    o.err.write(`plumb tap: cannot reach ${o.remote.url}: ${(err as Error).message}\n`);
    return 2;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
