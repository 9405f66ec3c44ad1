/**
 * The fleet's HTTP routes: the internal ones collectors post to each other (forwarded series,
 * handoffs), checked against the fleet's shared secret rather than the agents' tokens, and
 * GET /api/v1/fleet (behind the collector's usual API auth).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import type { MetricBatch } from '../../shared/wire.ts';
import { PLUMB_ERR_JOURNAL_IO } from '../../shared/journal.ts';
import type { Membership } from '../../shared/membership.ts';
import { metricBatchSchema } from '../ingest/schemas.ts';
import type { MetricIntake } from '../ingest/metrics.ts';
import type { FleetConfig } from './config.ts';
import { fleetStatus } from './fleet.ts';
import type { FleetRouter } from './router.ts';
import type { Handoff, HandoffBody } from './handoff.ts';
import { INTERNAL_HANDOFF_PATH, INTERNAL_METRICS_PATH, INTERNAL_PREFIX } from './peers.ts';

export interface FleetRoutesOptions {
  config: FleetConfig;
  membership: Membership;
  router: FleetRouter;
  handoff: Handoff;
  intake: MetricIntake;
  /** "Bearer <token>" the internal routes require; undefined: none (a loopback or insecure fleet). */
  authorization: string | undefined;
  maxMetricsPerBatch: number;
  /** Whether the collector takes requests now (false while it stops). */
  accepting: () => boolean;
  /** More of GET /api/v1/fleet (e.g. which alert rules this collector owns), merged into the answer. */
  moreStatus?: () => Record<string, unknown>;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

const HandoffSchema = Type.Object({ id: Type.String({ minLength: 1, maxLength: 2048 }), from: Type.String({ maxLength: 2048 }), chunks: Type.Array(Type.Object({}, { additionalProperties: true })) });

export function registerFleetRoutes(app: FastifyInstance, o: FleetRoutesOptions): void {
  const expected = o.authorization === undefined ? null : digest(o.authorization);
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith(INTERNAL_PREFIX)) return;
    const offered = request.headers.authorization;
    if (expected !== null && (offered === undefined || !timingSafeEqual(digest(offered), expected))) {
      return reply.code(401).send({ error: 'PLUMB_ERR_UNAUTHORIZED', message: 'internal routes need the fleet\'s shared secret (collector.fleet.token)' });
    }
    if (!o.accepting()) return reply.code(503).header('retry-after', '1').send({ error: 'PLUMB_ERR_FORWARD_RETRYABLE', message: 'this collector is stopping' });
  });

  app.post<{ Body: MetricBatch }>(INTERNAL_METRICS_PATH, { schema: { body: metricBatchSchema(o.maxMetricsPerBatch) } }, async (request, reply) => {
    try {
      const r = await o.router.receive(request.body);
      return { accepted: r.duplicate ? 0 : request.body.metrics.length - r.refused, refused: r.refused, duplicate: r.duplicate };
    } catch {
      return reply.code(503).header('retry-after', '1').send({ error: PLUMB_ERR_JOURNAL_IO, message: 'the collector cannot make the batch durable now; retry later' });
    }
  });

  app.post<{ Body: HandoffBody }>(INTERNAL_HANDOFF_PATH, { schema: { body: HandoffSchema } }, async (request, reply) => {
    try {
      return await o.handoff.take(o.intake, request.body);
    } catch {
      return reply.code(503).header('retry-after', '1').send({ error: PLUMB_ERR_JOURNAL_IO, message: 'the collector cannot make the handoff durable now; retry later' });
    }
  });

  app.get('/api/v1/fleet', async () => fleetAnswer(o));
}

/** Body of GET /api/v1/fleet in a fleet (the console's Fleet page reads it too). */
export function fleetAnswer(o: FleetRoutesOptions): Record<string, unknown> {
  return {
    fleet: true,
    ...fleetStatus(o.membership, o.config),
    series: { held: o.intake.store.size, owned: o.intake.store.countRoutes((r) => o.membership.owns(r)) },
    forwarded: { ...o.router.totals },
    ...(o.moreStatus?.() ?? {}),
  };
}
