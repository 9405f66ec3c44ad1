/**
 * A forwarded batch as it is kept in a lane's spool: everything needed to send it again after a
 * restart, its original id included (so the collector recognises the replay).
 *
 *   header length u32 LE · header JSON {v, kind, path, id, contentType, gzip} · body bytes
 */

export interface OutgoingBatch {
  kind: string;
  /** Request path on the collector, e.g. /v1/metrics. */
  path: string;
  id: string;
  contentType: string;
  /** Whether `body` is gzip-compressed (sent with content-encoding: gzip). */
  gzip: boolean;
  body: Buffer;
}

const VERSION = 1;
/** A header longer than this is not one of ours. */
const MAX_HEADER_BYTES = 64 * 1024;

export function encodeBatch(b: OutgoingBatch): Buffer {
  const header = Buffer.from(JSON.stringify({ v: VERSION, kind: b.kind, path: b.path, id: b.id, contentType: b.contentType, gzip: b.gzip }));
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32LE(header.length, 0);
  return Buffer.concat([len, header, b.body]);
}

/** The batch in a spooled record, or a reason why it is not one. */
export function decodeBatch(data: Buffer): OutgoingBatch | { error: string } {
  if (data.length < 4) return { error: 'record shorter than its header length' };
  const len = data.readUInt32LE(0);
  if (len > MAX_HEADER_BYTES || 4 + len > data.length) return { error: `header length ${len} does not fit the record` };
  let h: unknown;
  try {
    h = JSON.parse(data.subarray(4, 4 + len).toString('utf8'));
  } catch {
    return { error: 'header is not JSON' };
  }
  const o = h as Partial<Record<keyof OutgoingBatch | 'v', unknown>>;
  if (o.v !== VERSION) return { error: `unknown record version ${String(o.v)}` };
  if (typeof o.kind !== 'string' || typeof o.path !== 'string' || !o.path.startsWith('/') || typeof o.id !== 'string' || typeof o.contentType !== 'string' || typeof o.gzip !== 'boolean') {
    return { error: 'header fields missing or of the wrong type' };
  }
  return { kind: o.kind, path: o.path, id: o.id, contentType: o.contentType, gzip: o.gzip, body: data.subarray(4 + len) };
}
