/**
 * Where `plumb status|top|tap` send their requests, and with which token.
 *
 *   --url URL          the agent's or collector's HTTP address (default: the agent, http://127.0.0.1:8126;
 *                      with --config, that file's agent.http.listen)
 *   --token-file F     a file holding the bearer token (first non-comment line)
 *   PLUMB_TOKEN        the token itself, when no file is given
 *   --config F         also supplies the token the agent sends its collectors (agent.forward.auth)
 */
import { readFileSync } from 'node:fs';
import { request } from 'undici';
import { PlumbError } from '../shared/errors.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8126';

export interface Remote {
  url: string;
  token: string | undefined;
}

export interface RemoteFlags {
  url?: string;
  tokenFile?: string;
  env: Record<string, string | undefined>;
  /** From --config: the agent's listen address and its collector token. */
  config?: { listen: string; token?: string; tokenFile?: string };
}

function readToken(file: string, key: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PlumbError('PLUMB_ERR_SECRET_READ', `${key}: cannot read ${JSON.stringify(file)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  const line = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l !== '' && !l.startsWith('#'));
  if (line === undefined) throw new PlumbError('PLUMB_ERR_SECRET_READ', `${key}: ${JSON.stringify(file)} holds no token`);
  return line;
}

export function resolveRemote(f: RemoteFlags): Remote {
  const base = f.url ?? (f.config !== undefined ? `http://${f.config.listen}` : DEFAULT_URL);
  const url = /^https?:\/\//.test(base) ? base.replace(/\/+$/, '') : `http://${base.replace(/\/+$/, '')}`;
  let token: string | undefined;
  if (f.tokenFile !== undefined) token = readToken(f.tokenFile, '--token-file');
  else if (f.env.PLUMB_TOKEN !== undefined && f.env.PLUMB_TOKEN !== '') token = f.env.PLUMB_TOKEN.trim();
  else if (f.config?.tokenFile !== undefined) token = readToken(f.config.tokenFile, 'agent.forward.auth.tokenFile');
  else token = f.config?.token;
  return { url, token };
}

export function headers(remote: Remote): Record<string, string> {
  return remote.token !== undefined ? { authorization: `Bearer ${remote.token}` } : {};
}

/** GETs `path` as JSON; a refusal or an unreachable address is a PlumbError that says which. */
export async function getJson<T>(remote: Remote, path: string, timeoutMs = 5000): Promise<T> {
  let res;
  try {
    res = await request(remote.url + path, { method: 'GET', headers: headers(remote), headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  } catch (err) {
    throw new PlumbError('PLUMB_ERR_REMOTE', `cannot reach ${remote.url}: ${(err as Error).message}`);
  }
  const text = await res.body.text();
  if (res.statusCode === 401) throw new PlumbError('PLUMB_ERR_UNAUTHORIZED', `${remote.url}${path}: 401, give a token with --token-file or PLUMB_TOKEN`);
  if (res.statusCode !== 200) throw new PlumbError('PLUMB_ERR_REMOTE', `${remote.url}${path}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}
