/**
 * Who may talk to a role's HTTP port: bearer tokens, TLS and client certificates, and the rule
 * that a collector reachable from other hosts does not start open unless told to. The agent
 * uses the token part for its own port (agent.http.auth: its /api/v1 and console; no loopback
 * rule, since its probes and /metrics must answer on 0.0.0.0 in a pod).
 *
 * Ingest (POST /v1/*) and the API (/api/v1/*) need a token or a verified client certificate
 * when either is configured; /metrics, /healthz and /readyz stay open for scrapers and probes.
 * The console (/ui/) needs the same; a browser gives the token once to its login form and
 * sends it back in a cookie, which counts on /ui/ and /api/ only.
 * The check runs in onRequest, before a body is read or decompressed. Tokens, files' contents
 * and keys never reach a log line, an error message or an API answer: only key names and paths.
 * Certificates and tokens are read once at start; changing them needs a restart.
 */
import { readFileSync } from 'node:fs';
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { createSecureContext } from 'node:tls';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Section } from './config.ts';
import { parseListen } from './address.ts';
import { PlumbError } from './errors.ts';
import type { Logger } from './log.ts';

const CLIENT_AUTH = ['none', 'request', 'require'] as const;
type ClientAuth = (typeof CLIENT_AUTH)[number];

/** Accepted bearer tokens: listed, in a file, or in an environment variable (any combination). */
export function TokenAuthSchema(description: string) {
  return Section(
    {
      // Unknown, checked by securityConfigErrors: a schema error would print the offending value, a token.
      tokens: Type.Unknown({ default: [], description: 'accepted bearer tokens (several while rotating)' }),
      tokenFile: Type.Optional(Type.String({ minLength: 1, description: 'file with one token per line; blank lines and # comments ignored; read at start' })),
      tokensEnv: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$', errorMessage: 'an environment variable name', description: 'environment variable holding comma-separated tokens' })),
    },
    { description },
  );
}

/** Spread into the collector's schema: collector.insecure, collector.auth, collector.tls. */
export const CollectorSecuritySchema = {
  insecure: Type.Boolean({
    default: false,
    description: 'let a collector that listens beyond loopback start without tokens or client certificates (it warns)',
  }),
  auth: TokenAuthSchema('Bearer tokens required on POST /v1/* and /api/v1/*.'),
  tls: Type.Optional(
    Type.Object(
      {
        cert: Type.String({ minLength: 1, description: 'PEM certificate (chain) file' }),
        key: Type.String({ minLength: 1, description: 'PEM private key file' }),
        clientCa: Type.Optional(Type.String({ minLength: 1, description: 'PEM CA bundle that client certificates must chain to' })),
        clientAuth: Type.Union(
          CLIENT_AUTH.map((v) => Type.Literal(v)),
          { default: 'none', errorMessage: 'one of "none", "request", "require"', description: 'require: a verified client certificate is needed (mTLS); request: one is accepted in place of a token' },
        ),
      },
      { additionalProperties: false, description: 'Serve HTTPS; absent: plain HTTP.' },
    ),
  ),
};

/** The keys securityConfigErrors reads, for a config check that runs even when other collector keys are wrong. */
export const SecurityCheckSchema = Type.Object({ listen: Type.String(), ...CollectorSecuritySchema });

/** The part of the collector's config this module reads. */
export interface SecurityConfig {
  listen: string;
  insecure: boolean;
  auth: { tokens: unknown; tokenFile?: string; tokensEnv?: string };
  tls?: { cert: string; key: string; clientCa?: string; clientAuth: ClientAuth };
}

/** 127.0.0.0/8, ::1 and "localhost"; any other name may resolve to a routable address. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

function listedTokens(tokens: unknown): string[] | string {
  if (typeof tokens === 'string') return tokens.length > 0 ? [tokens] : 'a token must not be empty';
  if (!Array.isArray(tokens)) return 'expected a list of tokens (strings)';
  for (const t of tokens) {
    if (typeof t !== 'string') return 'every token must be a string (quote it in YAML)';
    if (t.length === 0) return 'a token must not be empty';
    if (/\s/.test(t)) return 'a token must not contain white space';
  }
  return tokens as string[];
}

function authConfigured(c: SecurityConfig): boolean {
  const listed = listedTokens(c.auth.tokens);
  return (typeof listed !== 'string' && listed.length > 0) || c.auth.tokenFile !== undefined || c.auth.tokensEnv !== undefined;
}

/** Reachable from other hosts, and nothing asks who is calling. */
function openToNetwork(c: SecurityConfig): boolean {
  let host: string;
  try {
    host = parseListen(c.listen).host;
  } catch {
    return false; // the schema reports a malformed listen address
  }
  return !isLoopbackHost(host) && !authConfigured(c) && c.tls?.clientAuth !== 'require';
}

function insecureMessage(c: SecurityConfig, at: string): string {
  return (
    `${c.listen} is reachable from other hosts and nothing authenticates its callers; ` +
    `configure bearer tokens (${at}.auth.tokens, ${at}.auth.tokenFile or ${at}.auth.tokensEnv) or client certificates ` +
    `(${at}.tls with clientAuth: require), listen on loopback (${at}.listen: "127.0.0.1:9102"), ` +
    `or set ${at}.insecure: true to accept an open collector`
  );
}

/** Config errors check-config reports too (no files are read: deploy configs name paths on other machines). */
export function securityConfigErrors(c: SecurityConfig, at: string): string[] {
  const errors: string[] = [];
  const listed = listedTokens(c.auth.tokens);
  if (typeof listed === 'string') errors.push(`${at}.auth.tokens: ${listed}`);
  if (c.tls !== undefined && c.tls.clientAuth !== 'none' && c.tls.clientCa === undefined) {
    errors.push(`${at}.tls.clientCa: required when clientAuth is "${c.tls.clientAuth}" (the CA that signs the agents' certificates)`);
  }
  if (!c.insecure && openToNetwork(c)) errors.push(`${at}.listen: PLUMB_ERR_INSECURE: ${insecureMessage(c, at)}`);
  return errors;
}

/**
 * What start-up would find on this machine: token and TLS files that are missing, unreadable,
 * empty or unusable, a tokensEnv variable that is unset or empty, and a collector reachable from
 * other hosts whose every token source turns out empty. check-config runs it (unless --offline),
 * so these fail there and not at 3 am. Messages name keys and paths, never a token.
 */
export function securityFileErrors(c: SecurityConfig, env: Record<string, string | undefined>, at: string): string[] {
  const errors: string[] = [];
  const read = (path: string, key: string): Buffer | undefined => {
    try {
      return readFileSync(path);
    } catch (err) {
      errors.push(`${key}: PLUMB_ERR_SECRET_READ: cannot read ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
      return undefined;
    }
  };
  const listed = listedTokens(c.auth.tokens);
  let tokens = typeof listed === 'string' ? 0 : listed.length;
  if (c.auth.tokenFile !== undefined) {
    const text = read(c.auth.tokenFile, `${at}.auth.tokenFile`);
    if (text !== undefined) {
      const n = tokenLines(text.toString('utf8')).length;
      if (n === 0) errors.push(`${at}.auth.tokenFile: ${JSON.stringify(c.auth.tokenFile)} holds no token (one per line; # starts a comment)`);
      tokens += n;
    }
  }
  if (c.auth.tokensEnv !== undefined) {
    const n = (env[c.auth.tokensEnv] ?? '').split(',').filter((t) => t.trim() !== '').length;
    if (n === 0) errors.push(`${at}.auth.tokensEnv: the environment variable ${c.auth.tokensEnv} is ${env[c.auth.tokensEnv] === undefined ? 'not set' : 'empty'} (it must hold comma-separated tokens)`);
    tokens += n;
  }
  const tls = c.tls;
  if (tls !== undefined) {
    const cert = read(tls.cert, `${at}.tls.cert`);
    const key = read(tls.key, `${at}.tls.key`);
    const ca = tls.clientCa !== undefined ? read(tls.clientCa, `${at}.tls.clientCa`) : undefined;
    if (cert !== undefined && key !== undefined && (tls.clientCa === undefined || ca !== undefined)) {
      try {
        createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
      } catch (err) {
        const reason = (err as { reason?: string }).reason ?? (err as Error).message;
        errors.push(`${at}.tls: PLUMB_ERR_SECRET_READ: the certificate ${JSON.stringify(tls.cert)} and key ${JSON.stringify(tls.key)} cannot be used: ${reason}`);
      }
    }
  }
  // configured, but empty: the loopback rule's check above saw a token source and let it pass
  if (!c.insecure && authConfigured(c) && tokens === 0 && c.tls?.clientAuth !== 'require') {
    let host = '';
    try {
      host = parseListen(c.listen).host;
    } catch {
      // the schema reports a malformed listen address
    }
    if (host !== '' && !isLoopbackHost(host)) {
      errors.push(`${at}.listen: PLUMB_ERR_INSECURE: every token source is empty, so ${c.listen} would be reachable from other hosts with nothing authenticating its callers; put a token in one, listen on loopback, or set ${at}.insecure: true`);
    }
  }
  return errors;
}

/** Files the agent reads at start: its bearer token and TLS files for the collectors. */
export function agentFileErrors(forward: { auth: { tokenFile?: string }; tls: { ca?: string; cert?: string; key?: string } }, at: string): string[] {
  const errors: string[] = [];
  const check = (path: string | undefined, key: string, needsText: boolean): void => {
    if (path === undefined) return;
    try {
      const text = readFileSync(path, 'utf8');
      if (needsText && text.trim() === '') errors.push(`${key}: ${JSON.stringify(path)} is empty (it must hold the bearer token)`);
    } catch (err) {
      errors.push(`${key}: PLUMB_ERR_SECRET_READ: cannot read ${JSON.stringify(path)} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
    }
  };
  check(forward.auth.tokenFile, `${at}.auth.tokenFile`, true);
  check(forward.tls.ca, `${at}.tls.ca`, false);
  check(forward.tls.cert, `${at}.tls.cert`, false);
  check(forward.tls.key, `${at}.tls.key`, false);
  return errors;
}

/** What the listener and the request hook need, resolved from files and the environment. */
export interface Security {
  /** SHA-256 of every accepted token; empty: no token needed. */
  tokenDigests: Buffer[];
  clientAuth: ClientAuth;
  /** Options for fastify's `https`; null: plain HTTP. */
  https: { cert: Buffer; key: Buffer; ca?: Buffer; requestCert: boolean; rejectUnauthorized: boolean } | null;
}

function readAt(path: string, key: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new PlumbError('PLUMB_ERR_SECRET_READ', `${key}: cannot read ${JSON.stringify(path)} (${reason})`);
  }
}

function tokenLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function digest(token: string | Buffer): Buffer {
  return createHash('sha256').update(token).digest();
}

/**
 * Reads the token file, the token variable and the TLS files, and applies the loopback rule
 * (for embedders that skip check-config). Throws a PlumbError naming the key; never a secret.
 */
export function resolveSecurity(c: SecurityConfig, env: Record<string, string | undefined>, log: Logger, at = 'collector', options: { loopbackRule?: boolean } = {}): Security {
  const errors = securityConfigErrors({ ...c, insecure: true }, at);
  if (errors.length > 0) throw new PlumbError('PLUMB_ERR_CONFIG_INVALID', errors.join('\n'));
  if ((options.loopbackRule ?? true) && openToNetwork(c)) {
    if (!c.insecure) throw new PlumbError('PLUMB_ERR_INSECURE', `${at}.listen: ${insecureMessage(c, at)}`);
    log.warn({ listen: c.listen }, `${at}.insecure is true: anyone who reaches ${c.listen} can post data and read the API`);
  }
  const tokens = [...(listedTokens(c.auth.tokens) as string[])];
  if (c.auth.tokenFile !== undefined) {
    const fromFile = tokenLines(readAt(c.auth.tokenFile, `${at}.auth.tokenFile`).toString('utf8'));
    if (fromFile.length === 0) throw new PlumbError('PLUMB_ERR_SECRET_READ', `${at}.auth.tokenFile: ${JSON.stringify(c.auth.tokenFile)} holds no token (one per line; # starts a comment)`);
    tokens.push(...fromFile);
  }
  if (c.auth.tokensEnv !== undefined) {
    const fromEnv = (env[c.auth.tokensEnv] ?? '').split(',').map((t) => t.trim()).filter((t) => t !== '');
    if (fromEnv.length === 0) throw new PlumbError('PLUMB_ERR_SECRET_READ', `${at}.auth.tokensEnv: the environment variable ${c.auth.tokensEnv} is not set or holds no token (comma-separated)`);
    tokens.push(...fromEnv);
  }
  const tls = c.tls;
  let https: Security['https'] = null;
  if (tls !== undefined) {
    const cert = readAt(tls.cert, `${at}.tls.cert`);
    const key = readAt(tls.key, `${at}.tls.key`);
    const ca = tls.clientCa !== undefined ? readAt(tls.clientCa, `${at}.tls.clientCa`) : undefined;
    try {
      createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
    } catch (err) {
      // OpenSSL's reason ("key values mismatch", "no start line") names no key material.
      const reason = (err as { reason?: string }).reason ?? (err as Error).message;
      throw new PlumbError('PLUMB_ERR_SECRET_READ', `${at}.tls: the certificate ${JSON.stringify(tls.cert)}, key ${JSON.stringify(tls.key)}${ca ? ` or client CA ${JSON.stringify(tls.clientCa)}` : ''} cannot be used: ${reason}`);
    }
    // The handshake only asks for a certificate; onRequest decides, so probes and scrapes without one still reach /healthz and /metrics.
    https = { cert, key, ...(ca ? { ca } : {}), requestCert: tls.clientAuth !== 'none', rejectUnauthorized: false };
  }
  return { tokenDigests: [...new Set(tokens)].map(digest), clientAuth: tls?.clientAuth ?? 'none', https };
}

/** Routes collectors of a fleet post to each other, authenticated by the fleet's own secret. */
const INTERNAL_PREFIX = '/internal/';

/** Routes that need no credentials: Prometheus scrapes and orchestrator probes; the console's login form and its stylesheet and script. */
const OPEN_PATHS = new Set(['/metrics', '/healthz', '/readyz', '/ui/login', '/ui/static/console.css', '/ui/static/console.js']);

/** The console's login cookie (shared/console/pages/login.ts): a browser cannot send the header on a page load. */
const LOGIN_COOKIE = 'plumb_token';

/** The token of the console's login cookie, honoured on the console and the API only (never on ingest). */
function cookieToken(path: string, cookie: string | undefined): string | undefined {
  if (cookie === undefined || !(path.startsWith('/ui/') || path === '/ui' || path.startsWith('/api/'))) return undefined;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === LOGIN_COOKIE) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

function tokenAccepted(header: string | undefined, digests: readonly Buffer[]): boolean {
  if (header === undefined) return false;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (m === null) return false;
  const offered = digest(m[1]);
  let ok = false;
  // Every digest is compared, so the time taken does not say which one (or whether any) matched.
  for (const d of digests) ok = timingSafeEqual(offered, d) || ok;
  return ok;
}

function verifiedClient(request: FastifyRequest): boolean {
  return (request.raw.socket as TLSSocket).authorized === true;
}

/**
 * Installs the credential check on every route except the open ones. Nothing is installed when
 * neither tokens nor client certificates are configured.
 */
export function installAuth(app: FastifyInstance, security: Security, options: { internal?: boolean; at?: string } = {}): void {
  const at = options.at ?? 'collector';
  const digests = security.tokenDigests;
  const mode = security.clientAuth;
  if (digests.length === 0 && mode !== 'require') return;
  const refuse = (reply: FastifyReply, message: string): FastifyReply => {
    if (digests.length > 0) void reply.header('www-authenticate', 'Bearer realm="plumb"');
    return reply.code(401).send({ error: 'PLUMB_ERR_UNAUTHORIZED', message });
  };
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?', 1)[0];
    if (OPEN_PATHS.has(path) && (request.method === 'GET' || request.method === 'HEAD')) return;
    if (path === '/ui/login' && request.method === 'POST') return;
    // collectors of a fleet: checked against the fleet's shared secret by collector/fleet/routes.ts
    if (path.startsWith(INTERNAL_PREFIX) && options.internal) return;
    const certified = mode !== 'none' && verifiedClient(request);
    if (mode === 'require' && !certified) {
      return refuse(reply, `a client certificate signed by ${at}.tls.clientCa is required (${at}.tls.clientAuth: require)`);
    }
    if (digests.length === 0 || (mode === 'request' && certified)) return;
    const fromCookie = request.headers.authorization === undefined ? cookieToken(path, request.headers.cookie) : undefined;
    if (fromCookie !== undefined ? !tokenAccepted(`Bearer ${fromCookie}`, digests) : !tokenAccepted(request.headers.authorization, digests)) {
      // a person at a browser is sent to the login form rather than shown a JSON refusal
      if ((path === '/ui' || path.startsWith('/ui/')) && request.method === 'GET') {
        return reply.redirect(`/ui/login?next=${encodeURIComponent(request.url)}${fromCookie !== undefined ? '&failed=1' : ''}`);
      }
      return refuse(reply, request.headers.authorization === undefined ? `this ${at.split('.')[0]} needs "Authorization: Bearer <token>" (${at}.auth)` : `the bearer token is not one of ${at}.auth's tokens`);
    }
  });
}

/**
 * The same check for callers that are not fastify routes (the OTLP/gRPC door): null when the
 * request may pass, else the refusal message. Absent when no credentials are configured.
 */
export function credentialCheck(security: Security): ((authorization: string | undefined, certified: boolean) => string | null) | undefined {
  const digests = security.tokenDigests;
  const mode = security.clientAuth;
  if (digests.length === 0 && mode !== 'require') return undefined;
  return (authorization, certified) => {
    const viaCert = mode !== 'none' && certified;
    if (mode === 'require' && !viaCert) return 'a client certificate signed by collector.tls.clientCa is required (collector.tls.clientAuth: require)';
    if (digests.length === 0 || (mode === 'request' && viaCert)) return null;
    if (!tokenAccepted(authorization, digests)) return authorization === undefined ? 'this collector needs "authorization: Bearer <token>" metadata (collector.auth)' : "the bearer token is not one of collector.auth's tokens";
    return null;
  };
}
