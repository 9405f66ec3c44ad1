/** GET /api/v1/patterns: the templates the collector learned, with counts, times and an example line. */
import type { FastifyPluginAsync } from 'fastify';
import type { PatternMiner } from './miner.ts';

const querySchema = {
  type: 'object',
  properties: {
    source: { type: 'string' },
    limit: { type: 'integer', minimum: 1, maximum: 100_000, default: 1000 },
    sort: { type: 'string', enum: ['count', 'last_seen'], default: 'count' },
  },
  additionalProperties: false,
} as const;

const responseSchema = {
  type: 'object',
  properties: {
    enabled: { type: 'boolean' },
    total: { type: 'integer' },
    patterns: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          source: { type: 'string' },
          template: { type: 'string' },
          count: { type: 'integer' },
          first_seen: { type: 'string' },
          last_seen: { type: 'string' },
          example: { type: 'string' },
        },
      },
    },
  },
} as const;

export function patternRoutes(miner: PatternMiner | null): FastifyPluginAsync {
  return async function routes(app) {
    app.get<{ Querystring: { source?: string; limit: number; sort: 'count' | 'last_seen' } }>(
      '/api/v1/patterns',
      { schema: { querystring: querySchema, response: { 200: responseSchema } } },
      async (request) => {
        if (miner === null) return { enabled: false, total: 0, patterns: [] };
        const q = request.query;
        return { enabled: true, ...miner.list({ source: q.source, limit: q.limit, sort: q.sort }) };
      },
    );
  };
}
