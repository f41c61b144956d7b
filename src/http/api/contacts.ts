/**
 * @module The contacts API (SPEC §9; docs/contacts.md): contacts with their identities, their
 * conversations and timeline, merge and unmerge, merge suggestions, and erasure. Every request is
 * validated in full before the first write; every change emits its `contact.*` event before the
 * answer goes out.
 */
import { Router } from 'express';
import { z } from 'zod';
import { GatewayError } from '../../core/errors.js';
import { isId } from '../../core/ids.js';
import { CHANNELS } from '../../core/model.js';
import type { GatewayDeps } from '../../deps.js';
import { listQuerySchema, parseListQuery } from './query.js';
import { metaSchema, parseInput } from './schemas.js';

export const contactListQuery = listQuerySchema({
  identity: z
    .string()
    .max(600)
    .regex(/^[a-z]+:.+$/, 'must be <channel>:<address>')
    .optional(),
  q: z.string().min(1).max(200).optional(),
});
export const pageQuery = listQuerySchema({});

export const patchContactSchema = z
  .strictObject({
    name: z.string().min(1).max(500).nullable().optional(),
    meta: metaSchema.optional(),
  })
  // As for every other PATCH: an empty one would move updatedAt and announce a change of nothing.
  .refine((patch) => patch.name !== undefined || patch.meta !== undefined, {
    message: 'must set at least one of: name, meta',
  });
export const mergeSchema = z.strictObject({
  from: z.string().min(1).max(64),
  reason: z.string().max(1000).optional(),
  by: z.string().min(1).max(200).optional(),
});
export const unmergeSchema = z.strictObject({
  channel: z.enum(CHANNELS),
  address: z.string().min(1).max(500),
  reason: z.string().max(1000).optional(),
  by: z.string().min(1).max(200).optional(),
});

const identityResponse = z.object({
  channel: z.enum(CHANNELS),
  address: z.string(),
  verified: z.boolean(),
  source: z.string(),
});

/** A contact (SPEC §9), as every contacts route answers it. */
export const contactResponse = z.object({
  id: z.string(),
  name: z.string().nullable(),
  identities: z.array(identityResponse),
  meta: metaSchema,
  history: z.array(
    z.object({
      op: z.enum(['merged', 'unmerged']),
      contactId: z.string(),
      identities: z.array(z.object({ channel: z.enum(CHANNELS), address: z.string() })),
      by: z.string(),
      reason: z.string().nullable(),
      at: z.iso.datetime({ offset: true }),
    }),
  ),
  createdAt: z.iso.datetime({ offset: true }),
  updatedAt: z.iso.datetime({ offset: true }),
});

/** `GET /v1/contacts/suggestions`: pairs of contacts that share an identifier not verified on both sides. */
export const suggestionsResponse = z.object({
  items: z.array(
    z.object({
      contactIds: z.tuple([z.string(), z.string()]),
      reason: z.string(),
      at: z.iso.datetime({ offset: true }),
    }),
  ),
});

function contactNotFound(id: string): GatewayError {
  return new GatewayError('GW_ERR_NOT_FOUND', `Contact ${id} not found`);
}

/** Mounts the `/contacts` routes of the `/v1` API. */
export function contactRoutes(deps: GatewayDeps, router: Router = Router()): Router {
  const { contacts } = deps;
  const idOr404 = (id: string): string => {
    if (!isId(id, 'ct')) throw contactNotFound(id);
    return id;
  };

  router.get('/contacts', async (req, res) => {
    const query = parseListQuery(contactListQuery, req.query);
    if (query.cursor !== undefined && !isId(query.cursor, 'ct'))
      throw new GatewayError('GW_ERR_INVALID_CURSOR', 'The cursor is not one this list gave out');
    res.json(await contacts.repo.list(query));
  });

  // Before `/contacts/:id`, which would take `suggestions` for an id.
  router.get('/contacts/suggestions', async (_req, res) => {
    res.json({ items: await contacts.repo.suggestions() });
  });

  router.get('/contacts/:id', async (req, res) => {
    res.json(await contacts.get(idOr404(req.params.id)));
  });

  router.patch('/contacts/:id', async (req, res) => {
    const patch = parseInput(patchContactSchema, req.body ?? {});
    res.json(await contacts.patch(idOr404(req.params.id), patch));
  });

  router.delete('/contacts/:id', async (req, res) => {
    const id = idOr404(req.params.id);
    if (!(await contacts.erase(id))) throw contactNotFound(id);
    res.json({ id });
  });

  router.get('/contacts/:id/conversations', async (req, res) => {
    const query = parseListQuery(pageQuery, req.query);
    res.json(await contacts.conversations(idOr404(req.params.id), query));
  });

  router.get('/contacts/:id/timeline', async (req, res) => {
    const query = parseListQuery(pageQuery, req.query);
    res.json(await contacts.timeline(idOr404(req.params.id), query));
  });

  router.post('/contacts/:id/merge', async (req, res) => {
    const body = parseInput(mergeSchema, req.body ?? {});
    const id = idOr404(req.params.id);
    if (body.from === id)
      throw new GatewayError('GW_ERR_MERGE_SELF', 'A contact cannot be merged into itself', {
        field: 'from',
      });
    if (!isId(body.from, 'ct'))
      throw new GatewayError('GW_ERR_NOT_FOUND', `Contact ${body.from} not found`, { field: 'from' });
    const r = await contacts.merge(id, body.from, body.by ?? 'api', body.reason ?? null);
    res.json(r.contact);
  });

  router.post('/contacts/:id/unmerge', async (req, res) => {
    const body = parseInput(unmergeSchema, req.body ?? {});
    const r = await contacts.unmerge(
      idOr404(req.params.id),
      { channel: body.channel, address: body.address },
      body.by ?? 'api',
      body.reason ?? null,
    );
    res.status(r.changed ? 201 : 200).json(r.contact);
  });

  return router;
}
