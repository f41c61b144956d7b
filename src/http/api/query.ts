/**
 * @module List query parameters (SPEC §5): `cursor`, `take` (default 50, 1–200), `order` (`asc` |
 * `desc`), `meta[<key>]=<value>` filters and per-list filters. Express 5 parses queries with the
 * "simple" parser, so `meta[key]` arrives as a literal parameter name and is picked out here.
 * Unknown parameters are refused rather than ignored: a mistyped filter must not silently widen a list.
 */
import { z } from 'zod';
import type { PageQuery } from '../../core/store.js';
import { type FieldError, parseInput, validationError } from './schemas.js';

/** Page size when `take` is absent. */
export const DEFAULT_TAKE = 50;
/** Largest page a client may ask for. */
export const MAX_TAKE = 200;

const META_PARAM = /^meta\[([^[\]]{1,128})\]$/;

/**
 * Names that are properties of every object rather than data: as a filter key they would reach the
 * prototype instead of the item (`meta[__proto__]=x` was once dropped, listing everything).
 */
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** True when any part of a parameter name (split at brackets and dots) is a {@link RESERVED_KEYS} name. */
function hasReservedPart(name: string): boolean {
  return name.split(/[[\].]/).some((part) => RESERVED_KEYS.has(part));
}

const TAKE_RANGE = `must be an integer from 1 to ${MAX_TAKE}`;

const pageShape = {
  cursor: z.string().min(1).max(1024).optional(),
  take: z
    .string()
    .regex(/^\d{1,4}$/, TAKE_RANGE)
    .transform(Number)
    .pipe(z.number().min(1, TAKE_RANGE).max(MAX_TAKE, TAKE_RANGE))
    .default(DEFAULT_TAKE),
  order: z.enum(['asc', 'desc']).default('asc'),
};

/** The schema of a list query: the page parameters plus the list's own filters (optional strings). */
export function listQuerySchema<F extends z.ZodRawShape>(filters: F) {
  return z.strictObject({ ...pageShape, ...filters });
}

/**
 * Parses a list query against a {@link listQuerySchema}, after picking out the `meta[...]` filters.
 * @throws GatewayError `GW_ERR_VALIDATION` naming the parameter.
 */
export function parseListQuery<T extends Omit<PageQuery, 'meta'>>(
  schema: z.ZodType<T>,
  query: Record<string, unknown>,
): T & Pick<PageQuery, 'meta'> {
  const errors: FieldError[] = [];
  // No prototype: whatever a key is called, it is an own entry, never a property of Object.prototype.
  const meta: Record<string, string> = Object.create(null);
  const rest: Record<string, unknown> = Object.create(null);
  for (const [name, value] of Object.entries(query)) {
    if (hasReservedPart(name)) {
      errors.push({ field: name, message: 'names a reserved key (__proto__, constructor, prototype)' });
      continue;
    }
    if (typeof value !== 'string') {
      errors.push({ field: name, message: 'must be given once' });
      continue;
    }
    const key = META_PARAM.exec(name)?.[1];
    if (key !== undefined) meta[key] = value;
    else if (name.startsWith('meta')) errors.push({ field: name, message: 'use meta[<key>]=<value>' });
    else rest[name] = value;
  }
  if (errors.length > 0) throw validationError(errors);
  const parsed = parseInput(schema, rest);
  return Object.keys(meta).length > 0 ? { ...parsed, meta: { ...meta } } : parsed;
}
