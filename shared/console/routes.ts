/**
 * The web console, one fastify plugin both roles register on their HTTP port: pages under /ui/
 * (server-rendered HTML, one stylesheet, one small script; the read-only pages work without
 * JavaScript) and POST /api/v1/grok. Each page reads the role's state in-process through the
 * sources the role's wiring passes in; a role without a source (the agent has no alerts) has no
 * such page. Credentials are those of the role's API (collector: shared/security.ts, which
 * also accepts the console's login cookie).
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify';
import { PlumbError, errorMessage } from '../errors.ts';
import { esc, frame, type NavItem } from './html.ts';
import { GROK_MAX_BODY_BYTES, GROK_MAX_LINE_CHARS, GROK_MAX_LINES, type GrokAnswer, type GrokRequest, type GrokService } from './grok.ts';
import { alertsPage, type AlertsSource } from './pages/alerts.ts';
import { fleetPage, type FleetSource } from './pages/fleet.ts';
import { grokPage, type GrokForm } from './pages/grok.ts';
import { LOGIN_COOKIE, loginPage } from './pages/login.ts';
import { pipelinePage } from './pages/pipeline.ts';
import { inputsPage } from './pages/inputs.ts';
import { tapPage } from './pages/tap.ts';
import type { StatusReport } from '../status.ts';

export interface ConsoleOptions {
  role: 'agent' | 'collector';
  hostname: string;
  version: string;
  /** The grok debugger; null: this role has none (yet). */
  grok: () => GrokService | null;
  /** The role's status report (GET /api/v1/status), for the Pipeline, Inputs and Tap pages. */
  status?: () => Promise<StatusReport>;
  /** Components that can be tapped (GET /api/v1/tap), for the Live tap page. */
  tapComponents?: () => string[];
  /** Agent: the Inputs page, marking files that lag past this (agent.tail.lagThreshold, ms). */
  inputs?: { lagThresholdMs: number };
  alerts?: AlertsSource;
  fleet?: FleetSource;
  /** Whether the login form is useful: the role checks bearer tokens. */
  login?: boolean;
  /** Whether the port is served over TLS (the login cookie is then marked Secure). */
  secure?: boolean;
}

const STATIC: Record<string, { type: string; body: Buffer }> = {
  'console.css': { type: 'text/css; charset=utf-8', body: readFileSync(new URL('./static/console.css', import.meta.url)) },
  'console.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('./static/console.js', import.meta.url)) },
};

const grokBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    pattern: { anyOf: [{ type: 'string', maxLength: 65_536 }, { type: 'array', maxItems: 32, items: { type: 'string', maxLength: 65_536 } }] },
    definitions: { type: 'object', maxProperties: 256, additionalProperties: { type: 'string', maxLength: 65_536 } },
    input: { type: 'integer', minimum: 0 },
    lines: { type: 'array', maxItems: GROK_MAX_LINES, items: { type: 'string', maxLength: GROK_MAX_LINE_CHARS } },
  },
} as const;

function grokStatus(err: unknown): number {
  if (!(err instanceof PlumbError)) return 500;
  if (err.code === 'PLUMB_ERR_HTTP_BUSY') return 429;
  if (err.code === 'PLUMB_ERR_GROK_PATTERN' || err.code === 'PLUMB_ERR_GROK_INPUT') return 400;
  return 500;
}

function parseForm(body: unknown): Record<string, string> {
  return typeof body === 'object' && body !== null ? (body as Record<string, string>) : {};
}

export function consoleRoutes(o: ConsoleOptions): FastifyPluginAsync {
  const nav: NavItem[] = [];
  if (o.status !== undefined) nav.push({ path: '/ui/pipeline', title: 'Pipeline' });
  if (o.status !== undefined && o.inputs !== undefined) nav.push({ path: '/ui/inputs', title: 'Inputs' });
  if (o.alerts !== undefined) nav.push({ path: '/ui/alerts', title: 'Alerts' });
  if (o.fleet !== undefined) nav.push({ path: '/ui/fleet', title: 'Fleet' });
  nav.push({ path: '/ui/grok', title: 'Grok debugger' });
  if (o.status !== undefined) nav.push({ path: '/ui/tap', title: 'Live tap' });
  const who = `${o.role} · ${o.hostname} · v${o.version}`;
  const send = (reply: FastifyReply, current: string, title: string, refresh: number, body: string): FastifyReply =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")
      .send(frame({ title, current, nav, who, refresh, body }));

  return async function routes(app: FastifyInstance) {
    // the no-script grok form posts urlencoded; nothing else in this scope takes it
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: GROK_MAX_BODY_BYTES }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, request, reply) => {
      const status = err.validation !== undefined ? 400 : (err.statusCode ?? 500);
      if (request.url.startsWith('/api/')) return reply.code(status).send({ error: 'PLUMB_ERR_INGEST_BODY', message: err.message });
      return reply.code(status).type('text/html; charset=utf-8').send(`<!doctype html><title>error</title><p>${esc(err.message)}</p>`);
    });

    app.get('/ui', async (_req, reply) => reply.redirect('/ui/'));
    app.get('/ui/', async (_req, reply) => reply.redirect(nav[0].path));
    app.get<{ Params: { file: string } }>('/ui/static/:file', async (req, reply) => {
      const f = STATIC[req.params.file];
      if (f === undefined) return reply.code(404).send('not found');
      return reply.type(f.type).header('cache-control', 'public, max-age=300').send(f.body);
    });

    app.get<{ Querystring: { next?: string; failed?: string } }>('/ui/login', async (req, reply) => {
      const next = typeof req.query.next === 'string' && req.query.next.startsWith('/ui/') ? req.query.next : nav[0].path;
      return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(loginPage(next, req.query.failed !== undefined, o.login === true));
    });
    app.post('/ui/login', async (req, reply) => {
      const form = parseForm(req.body);
      const next = typeof form.next === 'string' && form.next.startsWith('/ui/') && !form.next.startsWith('/ui/login') ? form.next : nav[0].path;
      const token = (form.token ?? '').trim();
      if (token === '' || /[\s;,]/.test(token)) return reply.redirect(`/ui/login?failed=1&next=${encodeURIComponent(next)}`);
      // HttpOnly: scripts never see it; SameSite=Strict: another site's page cannot send it
      const cookie = `${LOGIN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${o.secure ? '; Secure' : ''}`;
      return reply.header('set-cookie', cookie).redirect(next, 303);
    });

    if (o.status !== undefined) {
      const status = o.status;
      app.get('/ui/pipeline', async (_req, reply) => send(reply, '/ui/pipeline', 'Pipeline', 2, pipelinePage(await status())));
      if (o.inputs !== undefined) {
        const lag = o.inputs.lagThresholdMs;
        app.get('/ui/inputs', async (_req, reply) => send(reply, '/ui/inputs', 'Inputs', 2, inputsPage(await status(), lag)));
      }
      app.get<{ Querystring: Record<string, string | undefined> }>('/ui/tap', async (req, reply) => {
        const q = req.query;
        return send(reply, '/ui/tap', 'Live tap', 0, tapPage(await status(), o.tapComponents?.() ?? [], { component: q.component ?? '', filter: q.filter ?? '', rate: q.rate ?? '20', limit: q.limit ?? '1000' }));
      });
    }
    if (o.alerts !== undefined) {
      const alerts = o.alerts;
      app.get('/ui/alerts', async (_req, reply) => send(reply, '/ui/alerts', 'Alerts', 5, alertsPage(alerts)));
    }
    if (o.fleet !== undefined) {
      const fleet = o.fleet;
      app.get('/ui/fleet', async (_req, reply) => send(reply, '/ui/fleet', 'Fleet', 5, fleetPage(fleet)));
    }

    const grokPageFor = async (reply: FastifyReply, form: GrokForm, answer: GrokAnswer | null, error: string | null, status = 200): Promise<FastifyReply> => {
      const grok = o.grok();
      return send(reply.code(status), '/ui/grok', 'Grok debugger', 0, grokPage(grok?.inputs() ?? null, form, answer, error));
    };
    app.get('/ui/grok', async (_req, reply) => grokPageFor(reply, { pattern: '', lines: '', input: '' }, null, null));
    app.post('/ui/grok', { bodyLimit: GROK_MAX_BODY_BYTES }, async (req, reply) => {
      const f = parseForm(req.body);
      const form: GrokForm = { pattern: f.pattern ?? '', lines: f.lines ?? '', input: f.input ?? '' };
      const request: GrokRequest = { lines: form.lines === '' ? [] : form.lines.replace(/\r\n/g, '\n').replace(/\n$/, '').split('\n').slice(0, GROK_MAX_LINES) };
      if (form.pattern.trim() !== '') request.pattern = form.pattern;
      if (/^\d+$/.test(form.input)) request.input = Number(form.input);
      const grok = o.grok();
      if (grok === null) return grokPageFor(reply, form, null, 'This role has no grok engine.', 404);
      try {
        return await grokPageFor(reply, form, await grok.run(request), null);
      } catch (err) {
        return grokPageFor(reply, form, null, errorMessage(err), grokStatus(err));
      }
    });

    app.post<{ Body: GrokRequest }>('/api/v1/grok', { bodyLimit: GROK_MAX_BODY_BYTES, schema: { body: grokBodySchema } }, async (req, reply) => {
      const grok = o.grok();
      if (grok === null) return reply.code(404).send({ error: 'PLUMB_ERR_GROK_INPUT', message: 'this role has no grok engine' });
      try {
        return await grok.run(req.body);
      } catch (err) {
        const status = grokStatus(err);
        if (status === 429) void reply.header('retry-after', '1');
        return reply.code(status).send({ error: err instanceof PlumbError ? err.code : 'PLUMB_ERR_INTERNAL', message: status === 500 ? 'internal error' : errorMessage(err) });
      }
    });
    app.get('/api/v1/grok/inputs', async () => ({ inputs: o.grok()?.inputs() ?? [] }));
  };
}
