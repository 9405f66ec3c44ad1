/**
 * HTTP routes of the alert engine, as a fastify plugin the collector registers on its server:
 * GET /api/v1/alerts and GET /api/v1/rules, in the shape of Prometheus' HTTP API.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { AlertEngine } from './engine.ts';

const labelMap = { type: 'object', additionalProperties: { type: 'string' } } as const;

const alertSchema = {
  type: 'object',
  properties: {
    labels: labelMap,
    annotations: labelMap,
    state: { type: 'string' },
    activeAt: { type: 'string' },
    value: { type: 'string' },
    keepFiringSince: { type: 'string' },
  },
} as const;

const alertsResponse = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    data: { type: 'object', properties: { alerts: { type: 'array', items: alertSchema } } },
  },
} as const;

export function alertRoutes(engine: AlertEngine): FastifyPluginAsync {
  return async function routes(app) {
    app.get('/api/v1/alerts', { schema: { response: { 200: alertsResponse } } }, async () => engine.alertsJSON());
    // The rules body nests free-form SLO and reload details; it is serialized as plain JSON.
    app.get('/api/v1/rules', async () => engine.rulesJSON());
    // which collector evaluates which rule, as this one sees it; takeovers and rule traffic
    app.get('/api/v1/fleet/rules', async () => engine.fleetRules());
  };
}
