/**
 * @module The `/v1/webhooks` API: subscriptions (the signing secret is shown once, on create and on
 * rotation), a test ping, the delivery log and replay. Mounted inside the `/v1` router, so the API key
 * and the JSON body parser are already applied.
 */
import { Router } from 'express';
import { z } from 'zod';
import { GatewayError } from '../core/errors.js';
import { EVENT_TYPES } from '../core/events.js';
import { isId } from '../core/ids.js';
import type { GatewayDeps } from '../deps.js';
import { listQuerySchema, parseListQuery } from '../http/api/query.js';
import { parseInput, validationError } from '../http/api/schemas.js';
import { DELIVERY_STATUSES } from './repo.js';
import { deliveryView, endpointView, type WebhookService } from './service.js';

/** Longest accepted URL; browsers and proxies commonly cap around 2 KB. */
const MAX_URL_LENGTH = 2_048;

const urlSchema = z
  .string()
  .max(MAX_URL_LENGTH)
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be an absolute http or https URL' });
      return;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({ code: 'custom', message: `must use http or https, not ${url.protocol.slice(0, -1)}` });
    } else if (url.username !== '' || url.password !== '') {
      // Credentials in the URL would be stored and logged with it; receivers verify the signature instead.
      ctx.addIssue({ code: 'custom', message: 'must not contain credentials (user:password@)' });
    } else if (url.hostname === '') {
      ctx.addIssue({ code: 'custom', message: 'must name a host' });
    }
  });

const eventsSchema = z
  .array(z.enum(EVENT_TYPES))
  .min(1)
  .max(EVENT_TYPES.length)
  .refine((list) => new Set(list).size === list.length, { message: 'must not repeat an event type' });

const descriptionSchema = z.string().max(500).nullable();

export const createSchema = z.strictObject({
  url: urlSchema,
  events: eventsSchema,
  description: descriptionSchema.optional(),
});

export const patchSchema = z
  .strictObject({
    url: urlSchema.optional(),
    events: eventsSchema.optional(),
    description: descriptionSchema.optional(),
    enabled: z.boolean().optional(),
    rotateSecret: z.literal(true).optional(),
  })
  .refine((patch) => Object.values(patch).some((v) => v !== undefined), {
    message: 'must set at least one of: url, events, description, enabled, rotateSecret',
  });

export const endpointListQuery = listQuerySchema({});
export const deliveryListQuery = listQuerySchema({ status: z.enum(DELIVERY_STATUSES).optional() });
export const replayQuery = z.strictObject({ since: z.iso.datetime({ offset: true }) });
export const replayOneQuery = z.strictObject({ again: z.enum(['true', 'false']).optional() });

const timestamp = z.iso.datetime({ offset: true });

/** A subscription as the API shows it: never its secret, except once (see {@link endpointWithSecretResponse}). */
export const endpointResponse = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.enum(EVENT_TYPES)),
  description: z.string().nullable(),
  enabled: z.boolean(),
  disabledReason: z.enum(['gone']).nullable(),
  previousSecretExpiresAt: timestamp
    .nullable()
    .meta({ description: 'Until then the secret before the last rotation still signs too.' }),
  createdAt: timestamp,
  updatedAt: timestamp,
});

/** On create and on `rotateSecret`: the subscription with its signing secret, shown this once. */
export const endpointWithSecretResponse = endpointResponse.extend({ secret: z.string() });

/** One delivery of one event to one subscription. */
export const deliveryResponse = z.object({
  id: z.string(),
  webhookId: z.string(),
  eventId: z.string(),
  eventType: z.enum([...EVENT_TYPES, 'ping']),
  conversationId: z.string().nullable(),
  seq: z.number().int(),
  replayOf: z.string().nullable(),
  createdAt: timestamp,
  status: z.enum(DELIVERY_STATUSES),
  attempts: z.number().int(),
  responseStatus: z.number().int().nullable(),
  latencyMs: z.number().nullable(),
  lastError: z.string().nullable(),
  nextAttemptAt: timestamp.nullable(),
  updatedAt: timestamp,
  deliveredAt: timestamp.nullable(),
  deadAt: timestamp.nullable(),
  replayedBy: z.string().nullable(),
});

/** `POST /v1/webhooks/:id/replay`: the dead deliveries replayed. */
export const replayResponse = z.object({ replayed: z.number().int(), items: z.array(deliveryResponse) });

function parseList<T extends { cursor?: string }>(
  schema: z.ZodType<T>,
  query: Record<string, unknown>,
  prefix: 'wh' | 'dlv',
): T {
  const { meta, ...parsed } = parseListQuery(
    schema as z.ZodType<T & { take: number; order: 'asc' | 'desc' }>,
    query,
  );
  if (meta) throw validationError([{ field: 'meta', message: 'is not a filter of this list' }]);
  if (parsed.cursor !== undefined && !isId(parsed.cursor, prefix)) {
    throw new GatewayError('GW_ERR_INVALID_CURSOR', 'The cursor is not one this list handed out');
  }
  return parsed as T;
}

/**
 * Builds the `/webhooks` routes. The service is read from `deps.webhooks` on each request, so the
 * router can be built before the gateway wires it.
 */
export function webhooksRouter(deps: Pick<GatewayDeps, 'webhooks'>): Router {
  const router = Router();
  const service = (): WebhookService => deps.webhooks;
  // Ids have a fixed shape; anything else cannot exist.
  const webhookId = (id: string): string => {
    if (!isId(id, 'wh')) throw new GatewayError('GW_ERR_NOT_FOUND', `Webhook ${id} not found`);
    return id;
  };

  router.post('/', async (req, res) => {
    const body = parseInput(createSchema, req.body ?? {});
    const { endpoint, secret } = await service().create(body);
    res
      .status(201)
      .location(`/v1/webhooks/${endpoint.id}`)
      .json({ ...endpointView(endpoint), secret });
  });

  router.get('/', async (req, res) => {
    const query = parseList(endpointListQuery, req.query, 'wh');
    const page = await service().list(query);
    res.json({ items: page.items.map((e) => endpointView(e)), cursor: page.cursor });
  });

  router.get('/:id', async (req, res) => {
    res.json(endpointView(await service().get(webhookId(req.params.id))));
  });

  router.patch('/:id', async (req, res) => {
    const patch = parseInput(patchSchema, req.body ?? {});
    const { endpoint, secret } = await service().update(webhookId(req.params.id), patch);
    res.json(secret === undefined ? endpointView(endpoint) : { ...endpointView(endpoint), secret });
  });

  router.delete('/:id', async (req, res) => {
    const id = webhookId(req.params.id);
    await service().remove(id);
    res.json({ id });
  });

  router.post('/:id/test', async (req, res) => {
    const delivery = await service().ping(webhookId(req.params.id));
    res.status(202).json(deliveryView(delivery));
  });

  router.get('/:id/deliveries', async (req, res) => {
    const id = webhookId(req.params.id);
    const query = parseList(deliveryListQuery, req.query, 'dlv');
    const page = await service().deliveries(id, query);
    res.json({ items: page.items.map(deliveryView), cursor: page.cursor });
  });

  router.get('/:id/deliveries/:did', async (req, res) => {
    const { id, did } = req.params;
    if (!isId(did, 'dlv')) throw new GatewayError('GW_ERR_NOT_FOUND', `Delivery ${did} not found`);
    res.json(deliveryView(await service().delivery(webhookId(id), did)));
  });

  router.post('/:id/deliveries/:did/replay', async (req, res) => {
    const { id, did } = req.params;
    if (!isId(did, 'dlv')) throw new GatewayError('GW_ERR_NOT_FOUND', `Delivery ${did} not found`);
    const { again } = parseInput(replayOneQuery, req.query);
    const copy = await service().replay(webhookId(id), did, again === 'true');
    res.status(202).json(deliveryView(copy));
  });

  router.post('/:id/replay', async (req, res) => {
    const id = webhookId(req.params.id);
    const { since } = parseInput(replayQuery, req.query);
    const replayed = await service().replayDeadSince(id, new Date(since));
    res.status(202).json({ replayed: replayed.length, items: replayed.map(deliveryView) });
  });

  return router;
}
