/**
 * Gives a large buffer's memory back at once instead of at V8's next major GC.
 *
 * A buffer that outlived a young-generation collection (anything held across a disk sync or an
 * HTTP round trip) is freed only by a major GC, and V8 starts one for external memory only after
 * about 64 MiB of it was allocated since the last. A log batch leaves several such copies behind
 * (about a megabyte each), so without this they sit in RSS by the tens of megabytes.
 *
 * Releasing detaches the buffer: it and every view of its memory read as empty from then on. So
 * only the buffer's sole holder may call it, once done with it. A buffer that shares its memory
 * (a slice of a larger allocation, a small buffer from Node's pool) is left alone.
 */

/** Smaller buffers are left to the GC: they are cheap, and may come from Node's pool. */
export const RELEASE_MIN_BYTES = 64 * 1024;

type Detachable = ArrayBuffer & { readonly detached: boolean; transfer(newLength: number): ArrayBuffer };

/** Frees `buf`'s memory now when it owns all of it; true when it did. */
export function releaseBuffer(buf: Uint8Array): boolean {
  const ab = buf.buffer;
  if (!(ab instanceof ArrayBuffer) || buf.byteOffset !== 0 || buf.byteLength !== ab.byteLength || ab.byteLength < RELEASE_MIN_BYTES) return false;
  const d = ab as Detachable;
  if (d.detached) return false;
  d.transfer(0);
  return true;
}
