/**
 * A batch object as JSON bytes (gzipped or not), written in slices of about 64 KiB instead of one
 * JSON.stringify of the whole: a 100k-series interval is ~13 MB of JSON, which as one string and
 * then one Buffer costs twice that at the moment of a flush, while the compressed form is a
 * quarter of it. The large arrays of the object's top level (an interval's metrics) are written
 * element by element; the bytes are the same as JSON.stringify(body).
 */
import { once } from 'node:events';
import { createGzip, type Gzip } from 'node:zlib';

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

/** Bytes of one slice a JsonWriter hands to gzip (or keeps) at a time. */
const SLICE_BYTES = 64 * 1024;

/**
 * JSON text written piece by piece into bytes, gzipped at `level` when asked: what a caller that
 * builds a body's text itself (an interval straight from its series) uses instead of holding the
 * whole text or an object graph of it. Each piece is copied at once into a byte slice, so the
 * pieces die young: strings gathered into a long text would outlive a scavenge or two and be
 * promoted to the old generation, where they stay until the next full collection.
 */
export class JsonWriter {
  private slice: Buffer = Buffer.allocUnsafe(SLICE_BYTES);
  private used = 0;
  /** A slice gzip has finished with. */
  private spare: Buffer | null = null;
  private readonly z: Gzip | null;
  private readonly out: Buffer[] = [];
  private readonly ended: Promise<unknown> | null;
  /** While gzip has a slice: resolves when it gives it back. */
  private compressing: Promise<void> | null = null;

  constructor(gzip: boolean, level = 1) {
    if (!gzip) {
      this.z = null;
      this.ended = null;
      return;
    }
    const z = (this.z = createGzip({ level }));
    z.on('data', (chunk: Buffer) => this.out.push(chunk));
    this.ended = once(z, 'end');
  }

  /** Appends JSON text. False when gzip has not finished the last slice: await drain() before writing more. */
  write(piece: string): boolean {
    // at most 3 bytes of UTF-8 per UTF-16 code unit
    if (piece.length * 3 <= this.slice.length - this.used) {
      this.used += this.slice.write(piece, this.used);
      return true;
    }
    this.pass();
    if (piece.length * 3 <= this.slice.length) this.used = this.slice.write(piece, 0);
    else if (this.z === null) this.out.push(Buffer.from(piece));
    else this.z.write(piece);
    return this.compressing === null;
  }

  /** Resolves once gzip has compressed what it was given. */
  async drain(): Promise<void> {
    while (this.compressing !== null) await this.compressing;
  }

  /** The bytes of everything written. */
  async end(): Promise<Buffer> {
    this.pass();
    if (this.z !== null) {
      this.z.end();
      await this.ended;
    }
    return this.out.length === 1 ? this.out[0] : Buffer.concat(this.out);
  }

  /**
   * Hands the filled part of the slice on and starts a new one. gzip gives a slice back once it
   * has compressed it, and it is filled again: a dead slice's memory is outside the heap, and
   * with so little garbage made on the heap no collection would come soon to free it.
   */
  private pass(): void {
    if (this.used === 0) return;
    const slice = this.slice;
    const filled = slice.subarray(0, this.used);
    this.used = 0;
    if (this.z === null) {
      this.out.push(filled);
      this.slice = Buffer.allocUnsafe(SLICE_BYTES);
      return;
    }
    this.slice = this.spare ?? Buffer.allocUnsafe(SLICE_BYTES);
    this.spare = null;
    const compressing: Promise<void> = new Promise<void>((resolve) =>
      (this.z as Gzip).write(filled, () => {
        this.spare = slice;
        if (this.compressing === compressing) this.compressing = null;
        resolve();
      }),
    );
    this.compressing = compressing;
  }
}

/** JSON.stringify(body) as bytes, gzipped at `level` when asked, built slice by slice. */
export async function encodeJson(body: unknown, gzip: boolean, level = 1): Promise<Buffer> {
  const w = new JsonWriter(gzip, level);
  for (const s of jsonSlices(body)) {
    if (!w.write(s)) await w.drain();
  }
  return w.end();
}
