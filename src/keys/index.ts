/**
 * @module API keys and scopes (SPEC §10; docs/keys.md). The gateway builds one {@link KeyService} with
 * {@link createKeys}, on the same backend as the store: in memory for the embedded backend, beside the
 * store's keys in Redis otherwise. Every `/v1` request's principal is on `res.locals.principal`
 * ({@link principalOf}).
 */
import type { Response } from 'express';
import type { Logger } from 'pino';
import type { Store } from '../core/store.js';
import { RedisStore } from '../store/redis/store.js';
import type { Principal } from './model.js';
import type { KeyRepo } from './repo.js';
import { MemoryKeyRepo } from './repo-memory.js';
import { RedisKeyRepo } from './repo-redis.js';
import { KeyService, type KeyServiceOptions } from './service.js';

export type { KeyRecord, Principal, Scope } from './model.js';
export { ALL_SCOPES, SCOPES } from './model.js';
export { keyRoutes } from './routes.js';
export { SCOPE_RULES, scopeFor } from './scopes.js';
export { KeyService, REVALIDATE_MS } from './service.js';

/** The key repo for a store: Redis beside a Redis store (its connection and prefix), else memory. */
export function keyRepoFor(store: Store): KeyRepo {
  if (store instanceof RedisStore) {
    const { redis, keys } = store.shared;
    return new RedisKeyRepo(redis, keys.prefix);
  }
  return new MemoryKeyRepo();
}

/** The key service of a gateway, listening for revocations from every process. */
export async function createKeys(deps: {
  store: Store;
  config: { apiKeys: readonly string[] };
  logger?: Logger;
  options?: Pick<KeyServiceOptions, 'revalidateMs' | 'now'>;
}): Promise<KeyService> {
  const service = new KeyService({
    repo: keyRepoFor(deps.store),
    bus: deps.store.bus,
    envKeys: deps.config.apiKeys,
    ...(deps.logger ? { logger: deps.logger } : {}),
    ...deps.options,
  });
  await service.start();
  return service;
}

/** The principal of an accepted `/v1` request (undefined before the key check). */
export function principalOf(res: Response): Principal | undefined {
  return res.locals.principal as Principal | undefined;
}
