/** "127.0.0.1:8125", "[::1]:8125", "0.0.0.0:0", ":9102" → host and port. */
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
  family: 4 | 6;
}

const PORT = '([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';
export const LISTEN_PATTERN = `^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]*):${PORT}$`;

export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) throw new Error(`"${text}" is not host:port`);
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`port ${port} is out of range`);
  return { host, port, family: isIP(host) === 6 ? 6 : 4 };
}

export function formatAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
