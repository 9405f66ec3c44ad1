/**
 * Reading a gzip rotation as if it were the file it was made from. logrotate's `compress`
 * without `delaycompress` replaces a rotated file by its `.gz` right away; when the agent was
 * down or behind, the lines it had not read yet are only there. The tailer reads such a file
 * only when its decompressed leading bytes match the fingerprint of a file it knows (see
 * tailer.ts), from that file's offset, so every line keeps its event id.
 *
 * Offsets are in decompressed bytes. The stream is decompressed once, front to back; a read
 * before the current position (the fingerprint check reads offset 0) starts it again.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createGunzip, type Gunzip } from 'node:zlib';

/** What the tailer reads a file through: a descriptor, or a decompressing stream. */
export interface Source {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  stat(): Promise<{ size: number; nlink: number; mtimeMs: number }>;
  close(): Promise<void>;
}

const EMPTY = Buffer.alloc(0);

export class GzipSource implements Source {
  private readonly fh: FileHandle;
  /** Device and inode of the compressed file, as decimal strings. */
  readonly dev: string;
  readonly ino: string;
  private gunzip: Gunzip | undefined;
  private chunks: AsyncIterator<Buffer> | undefined;
  private chunk: Buffer = EMPTY;
  private chunkPos = 0;
  /** Decompressed offset of `chunk[chunkPos]`. */
  private pos = 0;
  private ended = false;

  private constructor(fh: FileHandle, dev: string, ino: string) {
    this.fh = fh;
    this.dev = dev;
    this.ino = ino;
  }

  static async open(file: string): Promise<GzipSource> {
    const fh = await open(file, 'r');
    try {
      const st = await fh.stat({ bigint: true });
      return new GzipSource(fh, st.dev.toString(), st.ino.toString());
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (position < this.pos || this.chunks === undefined) this.rewind();
    let got = 0;
    while (got < length) {
      if (this.chunkPos >= this.chunk.length) {
        if (!(await this.pull())) break;
        continue;
      }
      const avail = this.chunk.length - this.chunkPos;
      if (this.pos < position) {
        const skip = Math.min(avail, position - this.pos);
        this.chunkPos += skip;
        this.pos += skip;
        continue;
      }
      const n = Math.min(avail, length - got);
      this.chunk.copy(buffer, offset + got, this.chunkPos, this.chunkPos + n);
      this.chunkPos += n;
      this.pos += n;
      got += n;
    }
    return { bytesRead: got };
  }

  /** `size` is what was decompressed so far: a compressed rotation is never judged truncated. */
  async stat(): Promise<{ size: number; nlink: number; mtimeMs: number }> {
    const st = await this.fh.stat();
    return { size: this.pos, nlink: st.nlink, mtimeMs: st.mtimeMs };
  }

  async close(): Promise<void> {
    this.gunzip?.destroy();
    this.gunzip = undefined;
    await this.fh.close().catch(() => undefined);
  }

  private rewind(): void {
    this.gunzip?.destroy();
    const gunzip = createGunzip();
    this.fh.createReadStream({ start: 0, autoClose: false, emitClose: false }).pipe(gunzip);
    this.gunzip = gunzip;
    this.chunks = gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    this.chunk = EMPTY;
    this.chunkPos = 0;
    this.pos = 0;
    this.ended = false;
  }

  private async pull(): Promise<boolean> {
    if (this.ended || this.chunks === undefined) return false;
    const r = await this.chunks.next();
    if (r.done === true) {
      this.ended = true;
      return false;
    }
    this.chunk = r.value;
    this.chunkPos = 0;
    return true;
  }
}

/**
 * The decompressed size a gzip file states in its trailer (modulo 4 GiB, of its last member),
 * or undefined when the file is too short to be gzip. Enough to skip a rotation whose lines
 * were all read without decompressing it.
 */
export async function gzipStatedSize(file: string): Promise<number | undefined> {
  let fh;
  try {
    fh = await open(file, 'r');
    const size = (await fh.stat()).size;
    if (size < 18) return undefined;
    const tail = Buffer.alloc(4);
    await fh.read(tail, 0, 4, size - 4);
    return tail.readUInt32LE(0);
  } catch {
    return undefined;
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
