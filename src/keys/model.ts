/**
 * @module API keys and their scopes (SPEC §10; docs/keys.md): the scope list, the key format, the
 * stored record and the principal a request authenticates as.
 *
 * A managed key reads `sbk_<ULID>_<secret>`: the ULID is the public id (the key's id is `key_<ULID>`),
 * so a lookup is one read by id, and the secret is 32 random bytes in base64url. Only the SHA-256 of the
 * whole key is stored.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Every scope, each granting a family of `/v1` routes (src/keys/scopes.ts maps routes to them).
 * Keys in `API_KEYS` have all of them.
 */
export const SCOPES = [
  'messages',
  'conversations:read',
  'conversations:write',
  'contacts',
  'webhooks',
  'admin',
  'console',
] as const;

export type Scope = (typeof SCOPES)[number];

/** Every scope, for keys in `API_KEYS`. */
export const ALL_SCOPES: ReadonlySet<Scope> = new Set(SCOPES);

/** A managed key, as stored. `hash` is the SHA-256 (base64url) of the whole key; the key itself is never kept. */
export interface KeyRecord {
  id: string;
  name: string;
  scopes: Scope[];
  /** Requests per minute for this key; `null`: `RATE_LIMIT_PER_MIN`; `0`: no limit. */
  rateLimitPerMin: number | null;
  hash: string;
  /** What a person may see of the key to recognise it: `sbk_<ULID>_…<last 4>`. */
  hint: string;
  createdAt: string;
  /** When a request last used the key, to within {@link LAST_USED_RESOLUTION_MS}; null: never. Kept apart from the record. */
  lastUsedAt?: string | null;
}

/** `lastUsedAt` is written at most this often per key and process: a write per request would cost. */
export const LAST_USED_RESOLUTION_MS = 60_000;

/** Who a `/v1` request acts as, set on `res.locals.principal` once its key is accepted. */
export interface Principal {
  /** A stable, non-secret id: `key_…` for a managed key, a hash prefix for a key in `API_KEYS`. */
  keyId: string;
  name: string;
  scopes: ReadonlySet<Scope>;
  /** The key's own limit per minute (0 = none); absent: `RATE_LIMIT_PER_MIN`. */
  rateLimitPerMin?: number;
  source: 'env' | 'managed';
}

/** The token prefix of a managed key. */
export const KEY_PREFIX = 'sbk_';
const TOKEN_RE = /^sbk_([0-9A-HJKMNP-TV-Z]{26})_([A-Za-z0-9_-]{43})$/;

/** The SHA-256 of a key, as stored. */
export function keyHash(token: string): string {
  return hash('sha256', token, 'base64url');
}

/** True when the stored hash `expected` is that of `token`, compared in constant time. */
export function hashMatches(token: string, expected: string): boolean {
  const a = Buffer.from(keyHash(token), 'base64url');
  const b = Buffer.from(expected, 'base64url');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The key id a token names (`key_<ULID>`), or undefined when it is not shaped like a managed key. */
export function keyIdOf(token: string): string | undefined {
  const m = TOKEN_RE.exec(token);
  return m ? `key_${m[1]}` : undefined;
}

/** A new key for the id `key_<ULID>`: the token (answered once) and what is stored of it. */
export function newToken(id: string): { token: string; hash: string; hint: string } {
  const token = `${KEY_PREFIX}${id.slice('key_'.length)}_${randomBytes(32).toString('base64url')}`;
  return {
    token,
    hash: keyHash(token),
    hint: `${token.slice(0, KEY_PREFIX.length + 27)}…${token.slice(-4)}`,
  };
}

/** The principal of a managed key. */
export function managedPrincipal(record: KeyRecord): Principal {
  return {
    keyId: record.id,
    name: record.name,
    scopes: new Set(record.scopes),
    ...(record.rateLimitPerMin !== null ? { rateLimitPerMin: record.rateLimitPerMin } : {}),
    source: 'managed',
  };
}
