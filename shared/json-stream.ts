/**
 * A batch object as JSON bytes (gzipped or not), written in slices of about 64 KiB instead of one
 * JSON.stringify of the whole: a 100k-series interval is ~13 MB of JSON, which as one string and
 * then one Buffer costs twice that at the moment of a flush, while the compressed form is a
 * quarter of it. The large arrays of the object's top level (an interval's metrics) are written
 * element by element; the bytes are the same as JSON.stringify(body).
 */
import { once } from 'node:events';
import { createGzip } from 'node:zlib';

const SLICE_CHARS = 64 * 1024;

/** Pieces of JSON.stringify(body), in order, each about SLICE_CHARS long (more for a large single element). */
export function* jsonSlices(body: unknown): Generator<string> {
  const top = typeof body === 'object' && body !== null && !Array.isArray(body) && typeof (body as { toJSON?: unknown }).toJSON !== 'function';
  if (!top) {
    yield JSON.stringify(body) ?? 'null';
    return;
  }
  let text = '{';
  let first = true;
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    if (value === undefined || typeof value === 'function' || typeof value === 'symbol') continue;
    text += `${first ? '' : ','}${JSON.stringify(key)}:`;
    first = false;
    if (!Array.isArray(value) || typeof (value as { toJSON?: unknown }).toJSON === 'function') {
      text += JSON.stringify(value) ?? 'null';
    } else {
      text += '[';
      for (let i = 0; i < value.length; i++) {
        // as JSON.stringify does inside an array: what has no JSON form is null
        text += (i === 0 ? '' : ',') + (JSON.stringify(value[i]) ?? 'null');
        if (text.length >= SLICE_CHARS) {
          yield text;
          text = '';
        }
      }
      text += ']';
    }
    if (text.length >= SLICE_CHARS) {
      yield text;
      text = '';
    }
  }
  yield `${text}}`;
}

/** JSON.stringify(body) as bytes, gzipped at `level` when asked, built slice by slice. */
export async function encodeJson(body: unknown, gzip: boolean, level = 1): Promise<Buffer> {
  if (!gzip) {
    const parts: Buffer[] = [];
    for (const s of jsonSlices(body)) parts.push(Buffer.from(s));
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }
  const z = createGzip({ level });
  const out: Buffer[] = [];
  z.on('data', (chunk: Buffer) => out.push(chunk));
  const ended = once(z, 'end');
  for (const s of jsonSlices(body)) {
    if (!z.write(s)) await once(z, 'drain');
  }
  z.end();
  await ended;
  return out.length === 1 ? out[0] : Buffer.concat(out);
}
