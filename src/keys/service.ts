/**
 * @module Managed API keys (SPEC §10; docs/keys.md): create (the key is answered once, only its
 * SHA-256 is stored), list, get, revoke, and the check every `/v1` request passes.
 *
 * **Keys in `API_KEYS`** are checked in memory, in constant time, with no storage round trip: they
 * carry `POST /v1/messages`, whose throughput must not depend on Redis latency.
 *
 * **Managed keys** (`sbk_<ULID>_<secret>`) are looked up by the id they embed and kept in a
 * per-process cache. A revocation is published on the store's bus and drops the key from every
 * process's cache at once; as a safety net for a lost message (a subscriber reconnecting), a cached
 * key is read again from the store once it is {@link REVALIDATE_MS} old, before it is trusted. So a
 * revoked key is refused by every process within that time whatever happens to the bus. When the
 * store cannot be read, the check fails closed with the store's 503 (`Retry-After`), never a 401 the
 * client would take for a bad key.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { GatewayError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Bus, Page } from '../core/store.js';
import {
  ALL_SCOPES,
  hashMatches,
  type KeyRecord,
  keyIdOf,
  LAST_USED_RESOLUTION_MS,
  managedPrincipal,
  newToken,
  type Principal,
  type Scope,
} from './model.js';
import type { KeyListQuery, KeyRepo } from './repo.js';

/** How old a cached managed key may be before it is read again: the bound on revocation (SPEC §10). */
export const REVALIDATE_MS = 1_000;
/** The bus topic of revocations; the payload is the key id. */
export const REVOKED_TOPIC = 'keys:revoked';
/** Cached managed keys (and remembered revocations) per process, at most. */
const CACHE_MAX = 10_000;

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

export interface NewKey {
  name: string;
  scopes: Scope[];
  rateLimitPerMin?: number | undefined;
}

export interface KeyServiceOptions {
  repo: KeyRepo;
  bus: Bus;
  /** The keys of `API_KEYS`: every scope, checked in memory. */
  envKeys: readonly string[];
  logger?: Logger;
  /** @default REVALIDATE_MS */
  revalidateMs?: number;
  now?: () => number;
}

interface Cached {
  record: KeyRecord;
  principal: Principal;
  checkedAt: number;
}

/** The principal of each key in `API_KEYS`: its id is the hash prefix the limits always used. */
function envPrincipals(keys: readonly string[]): { digests: Buffer[]; principals: Principal[] } {
  if (keys.length === 0 || keys.some((k) => k.length === 0)) {
    throw new TypeError('Expected `envKeys` to be a non-empty list of non-empty API keys');
  }
  return {
    digests: keys.map((k) => hash('sha256', k, 'buffer')),
    principals: keys.map((k, i) => ({
      keyId: hash('sha256', k, 'base64url').slice(0, 22),
      name: `API_KEYS[${i}]`,
      scopes: ALL_SCOPES,
      source: 'env' as const,
    })),
  };
}

export class KeyService {
  readonly #repo: KeyRepo;
  readonly #bus: Bus;
  readonly #logger: Logger | undefined;
  readonly #revalidateMs: number;
  readonly #now: () => number;
  readonly #digests: Buffer[];
  readonly #envPrincipals: Principal[];
  readonly #cache = new Map<string, Cached>();
  readonly #inflight = new Map<string, Promise<Cached | null>>();
  /** Ids revoked while this process ran: never trusted again, whatever a read in flight brings back. */
  readonly #revoked = new Set<string>();
  /** When this process last wrote `lastUsedAt` of each key. */
  readonly #touched = new Map<string, number>();
  #unsubscribe: (() => Promise<void>) | null = null;

  constructor(options: KeyServiceOptions) {
    this.#repo = options.repo;
    this.#bus = options.bus;
    this.#logger = options.logger;
    this.#revalidateMs = options.revalidateMs ?? REVALIDATE_MS;
    this.#now = options.now ?? Date.now;
    const env = envPrincipals(options.envKeys);
    this.#digests = env.digests;
    this.#envPrincipals = env.principals;
  }

  /** Listens for revocations from every process. */
  async start(): Promise<void> {
    this.#unsubscribe ??= await this.#bus.subscribe(REVOKED_TOPIC, (id) => this.#forget(id));
  }

  async stop(): Promise<void> {
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = null;
    await unsubscribe?.();
  }

  /**
   * The principal a bearer token authenticates as, or undefined when it is no key. For the operator
   * console's sign-in (scope `console`) and anything else that holds a raw key.
   * @throws StoreUnavailableError when a managed key cannot be checked now.
   */
  async authenticate(token: string): Promise<Principal | undefined> {
    return this.verify(token);
  }

  /**
   * The check behind every `/v1` request, on the raw `Authorization` header: `missing` (no bearer
   * token), undefined (not a key), or the principal; synchronous for keys in `API_KEYS` and for a
   * managed key cached less than {@link REVALIDATE_MS} ago.
   */
  check(
    authorization: string | undefined,
  ): Principal | undefined | 'missing' | Promise<Principal | undefined> {
    const match = BEARER.exec(authorization ?? '');
    if (!match) return 'missing';
    return this.verify(match[1]!);
  }

  /** {@link authenticate}, synchronous when it can be. */
  verify(token: string): Principal | undefined | Promise<Principal | undefined> {
    // Every key in API_KEYS is compared, without an early exit, over 32-byte digests (no length leak).
    const presented = hash('sha256', token, 'buffer');
    let found = -1;
    for (let i = 0; i < this.#digests.length; i++) {
      if (timingSafeEqual(presented, this.#digests[i]!)) found = i;
    }
    if (found !== -1) return this.#envPrincipals[found];
    const id = keyIdOf(token);
    if (id === undefined || this.#revoked.has(id)) return undefined;
    const cached = this.#cache.get(id);
    if (cached !== undefined && this.#now() - cached.checkedAt < this.#revalidateMs) {
      return hashMatches(token, cached.record.hash) ? this.#used(cached) : undefined;
    }
    return this.#load(id).then((entry) =>
      entry !== null && hashMatches(token, entry.record.hash) ? this.#used(entry) : undefined,
    );
  }

  /** The principal of a key just accepted; notes the use at most once a minute (never waited for). */
  #used(entry: Cached): Principal {
    const id = entry.record.id;
    const now = this.#now();
    const last = this.#touched.get(id);
    if (last === undefined || now - last >= LAST_USED_RESOLUTION_MS) {
      if (last === undefined && this.#touched.size >= CACHE_MAX) this.#touched.clear();
      this.#touched.set(id, now);
      this.#repo.touch(id, new Date(now).toISOString()).catch((err: unknown) => {
        this.#logger?.debug({ err, keyId: id }, 'api key last use not recorded');
      });
    }
    return entry.principal;
  }

  /** Reads a key from the store into the cache; one read per id at a time. */
  #load(id: string): Promise<Cached | null> {
    let pending = this.#inflight.get(id);
    if (pending === undefined) {
      pending = this.#repo
        .get(id)
        .then((record) => {
          if (record === null || this.#revoked.has(id)) {
            this.#cache.delete(id);
            return null;
          }
          const entry: Cached = { record, principal: managedPrincipal(record), checkedAt: this.#now() };
          if (!this.#cache.has(id) && this.#cache.size >= CACHE_MAX) this.#cache.clear();
          this.#cache.set(id, entry);
          return entry;
        })
        .finally(() => this.#inflight.delete(id));
      this.#inflight.set(id, pending);
    }
    return pending;
  }

  #forget(id: string): void {
    this.#cache.delete(id);
    if (this.#revoked.size >= CACHE_MAX) this.#revoked.clear();
    this.#revoked.add(id);
  }

  /** A new key: the record and the key itself, which is never available again. */
  async create(input: NewKey): Promise<{ record: KeyRecord; token: string }> {
    const id = newId('key');
    const { token, hash: digest, hint } = newToken(id);
    const record: KeyRecord = {
      id,
      name: input.name,
      scopes: [...new Set(input.scopes)],
      rateLimitPerMin: input.rateLimitPerMin ?? null,
      hash: digest,
      hint,
      createdAt: new Date(this.#now()).toISOString(),
    };
    await this.#repo.insert(record);
    this.#logger?.info({ keyId: id, name: record.name, scopes: record.scopes }, 'api key created');
    return { record, token };
  }

  list(query: KeyListQuery): Promise<Page<KeyRecord>> {
    return this.#repo.list(query);
  }

  async get(id: string): Promise<KeyRecord> {
    const record = await this.#repo.get(id);
    if (record === null) throw new GatewayError('GW_ERR_NOT_FOUND', `API key ${id} not found`);
    return record;
  }

  /**
   * Revokes a key: gone from the store, then announced to every process. A lost announcement is
   * covered by the revalidation (see the module comment).
   */
  async revoke(id: string): Promise<void> {
    const removed = await this.#repo.remove(id);
    if (!removed) throw new GatewayError('GW_ERR_NOT_FOUND', `API key ${id} not found`);
    this.#forget(id);
    await this.#bus.publish(REVOKED_TOPIC, id).catch((err: unknown) => {
      this.#logger?.warn(
        { err, keyId: id },
        'api key revocation not announced; other processes refuse it within 1 s',
      );
    });
    this.#logger?.info({ keyId: id }, 'api key revoked');
  }
}
