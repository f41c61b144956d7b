/**
 * @module The `/v1/keys` API (SPEC §10; docs/keys.md), scope `admin`: create (the key is in this one
 * answer and nowhere else, ever), list, get and revoke. Added to the `/v1` router, so the key, its
 * scope and the JSON body parser are already checked.
 */
import type { Router } from 'express';
import { z } from 'zod';
import { MAX_RATE_LIMIT_PER_MIN } from '../../config/schema.js';
import { GatewayError } from '../core/errors.js';
import { isId } from '../core/ids.js';
import type { GatewayDeps } from '../deps.js';
import { listQuerySchema, parseListQuery } from '../http/api/query.js';
import { parseInput, validationError } from '../http/api/schemas.js';
import { type KeyRecord, SCOPES } from './model.js';

/** Printable text without control characters, so a name is safe in a log line and a table. */
const NAME_RE = /^[^\p{Cc}]*$/u;

export const createKeySchema = z.strictObject({
  name: z.string().trim().min(1).max(200).regex(NAME_RE, 'must not contain control characters'),
  // Unique, so at most one of each: no `.max()`, which zod also reports for a string of that length.
  scopes: z
    .array(z.enum(SCOPES))
    .min(1)
    .refine((list) => new Set(list).size === list.length, { message: 'must not repeat a scope' }),
  rateLimitPerMin: z
    .number()
    .int()
    .min(0)
    .max(MAX_RATE_LIMIT_PER_MIN)
    .optional()
    .meta({ description: 'Requests per minute for this key (0 = no limit); absent: `RATE_LIMIT_PER_MIN`.' }),
});

export const keyListQuery = listQuerySchema({});

/** A key as the API shows it: never the key itself, nor its hash. */
export const keyResponse = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(z.enum(SCOPES)),
  rateLimitPerMin: z
    .number()
    .int()
    .nullable()
    .meta({ description: 'The key’s own limit per minute; `null`: `RATE_LIMIT_PER_MIN`.' }),
  hint: z.string().meta({ description: 'The start and last four characters of the key, to recognise it.' }),
  createdAt: z.iso.datetime({ offset: true }),
  lastUsedAt: z.iso
    .datetime({ offset: true })
    .nullable()
    .meta({ description: 'When a request last used the key, to within a minute; `null`: not yet.' }),
});

/** On create only: the key with its secret, shown this once. */
export const keyWithSecretResponse = keyResponse.extend({
  key: z.string().nullable().meta({
    description:
      'The API key. Shown in this answer only; store it now. `null` in an `Idempotency-Key` replay: the key is never kept.',
  }),
});

export function keyView(record: KeyRecord): z.infer<typeof keyResponse> {
  return {
    id: record.id,
    name: record.name,
    scopes: record.scopes,
    rateLimitPerMin: record.rateLimitPerMin,
    hint: record.hint,
    createdAt: record.createdAt,
    lastUsedAt: record.lastUsedAt ?? null,
  };
}

/** Adds the `/keys` routes to the `/v1` router; the service is read from `deps.keys` on each request. */
export function keyRoutes(deps: Pick<GatewayDeps, 'keys'>, router: Router): void {
  const keyId = (id: string): string => {
    if (!isId(id, 'key')) throw new GatewayError('GW_ERR_NOT_FOUND', `API key ${id} not found`);
    return id;
  };

  router.post('/keys', async (req, res) => {
    const body = parseInput(createKeySchema, req.body ?? {});
    const { record, token } = await deps.keys.create(body);
    // The key is answered this once: an Idempotency-Key replay carries `key: null` (docs/keys.md).
    res.locals.secretFields = ['key'];
    res
      .status(201)
      .location(`/v1/keys/${record.id}`)
      .json({ ...keyView(record), key: token });
  });

  router.get('/keys', async (req, res) => {
    const { meta, ...query } = parseListQuery(keyListQuery, req.query);
    if (meta) throw validationError([{ field: 'meta', message: 'is not a filter of this list' }]);
    if (query.cursor !== undefined && !isId(query.cursor, 'key')) {
      throw new GatewayError('GW_ERR_INVALID_CURSOR', 'The cursor is not one this list handed out');
    }
    const page = await deps.keys.list(query);
    res.json({ items: page.items.map(keyView), cursor: page.cursor });
  });

  router.get('/keys/:id', async (req, res) => {
    res.json(keyView(await deps.keys.get(keyId(req.params.id))));
  });

  router.delete('/keys/:id', async (req, res) => {
    const id = keyId(req.params.id);
    await deps.keys.revoke(id);
    res.json({ id });
  });
}
