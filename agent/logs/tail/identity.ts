/**
 * Which file is which. An inode number alone is not an identity: filesystems hand a deleted
 * file's inode to the next file created. A file is recognised by its device and inode *and* a
 * fingerprint of its leading bytes; the same inode with different leading bytes is a new file.
 *
 * Two hashes are kept apart on purpose:
 * - the fingerprint (`Fingerprint`) is a hash of the first `min(fingerprintBytes, size)` bytes,
 *   extended as the file grows until it covers `fingerprintBytes`; it is what a file is matched
 *   against after a restart or a rename;
 * - the file id (`fileId`) names a file in event ids, so it must never change during the file's
 *   life and must come out the same when computed again after a crash. It hashes the device,
 *   inode, birth time and the file's first line (capped at `fingerprintBytes`): bytes that exist
 *   by the time the first record is emitted and never change after.
 */
import { createHash } from 'node:crypto';
import type { Source } from './compressed.ts';

export interface Fingerprint {
  /** Bytes hashed; grows until it reaches the configured fingerprint size. */
  len: number;
  hash: string;
}

/** What identifies a file on disk regardless of its name. */
export interface Inode {
  /** Device and inode as decimal strings: overlay filesystems use inode numbers past 2^53. */
  dev: string;
  ino: string;
  birthtimeMs: number;
}

export function hashBytes(buf: Buffer, len: number): string {
  return createHash('sha256').update(buf.subarray(0, len)).digest('hex').slice(0, 32);
}

/** Reads up to `buf.length` leading bytes of the file; returns how many were read. */
export async function readPrefix(handle: Source, buf: Buffer): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await handle.read(buf, got, buf.length - got, got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

export function fingerprintOf(prefix: Buffer, available: number, maxBytes: number): Fingerprint {
  const len = Math.min(available, maxBytes);
  return { len, hash: hashBytes(prefix, len) };
}

/**
 * Compares a known fingerprint with the file's current leading bytes (`available` of them in
 * `prefix`). "shorter": the file now has fewer bytes than were fingerprinted (truncated or
 * replaced); "different": the leading bytes changed (a new file in the same inode, or a
 * truncation followed by new writes).
 */
export function compareFingerprint(known: Fingerprint, prefix: Buffer, available: number): 'same' | 'different' | 'shorter' {
  if (known.len === 0) return 'same';
  if (available < known.len) return 'shorter';
  return hashBytes(prefix, known.len) === known.hash ? 'same' : 'different';
}

/**
 * Bytes that name the file: through its first newline, at most `maxBytes`. Undefined while the
 * file has neither a newline nor `maxBytes` bytes, unless `force` (an unterminated last line is
 * being emitted), in which case all that is there.
 */
export function idPrefixLength(prefix: Buffer, available: number, maxBytes: number, force: boolean): number | undefined {
  const nl = prefix.subarray(0, Math.min(available, maxBytes)).indexOf(0x0a);
  if (nl >= 0) return nl + 1;
  if (available >= maxBytes) return maxBytes;
  return force ? available : undefined;
}

/**
 * The file's id. `generation` counts the truncations seen on this inode (copytruncate): offsets
 * restart at 0 after one, so the id must change even when the new content starts with the same
 * first line, or old event ids would repeat. Generation 0 is a pure function of the file, so it
 * comes out the same even when no checkpoint survived.
 */
export function computeFileId(seed: string, inode: Inode, prefix: Buffer, prefixLen: number, generation = 0): string {
  return createHash('sha256')
    .update(`${seed}\0${inode.dev}\0${inode.ino}\0${Math.trunc(inode.birthtimeMs)}\0${generation > 0 ? `g${generation}\0` : ''}`)
    .update(prefix.subarray(0, prefixLen))
    .digest('hex')
    .slice(0, 32);
}

/**
 * A deterministic, fixed-width id for the event that starts at `offset` in file `fileId`:
 * the same bytes read again after a restart get the same id, so downstream can drop replays.
 */
export function eventId(fileId: string, offset: number): string {
  return fileId + offsetHex(offset);
}

/** The part of an event id after the file id. */
export function offsetHex(offset: number): string {
  return offset.toString(16).padStart(12, '0');
}

export function inodeKey(inode: { dev: string; ino: string }): string {
  return `${inode.dev}:${inode.ino}`;
}
