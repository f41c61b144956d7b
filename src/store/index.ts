/**
 * @module Chooses the storage backend: Redis when REDIS_URL is set (standalone, Sentinel or Cluster;
 * see `redis/connection.ts` for the URL forms), otherwise the embedded in-process store.
 */
import type { Logger } from 'pino';
import { DEFAULTS } from '../../config/defaults.js';
import type { AppConfig } from '../../config/schema.js';
import type { Store } from '../core/store.js';
import { MemoryStore } from './memory.js';
import { RedisStore } from './redis/store.js';

/**
 * Creates the configured store. With Redis it waits until Redis answers and throws
 * StoreUnavailableError when it cannot be reached at start.
 */
export async function createStore(config: AppConfig, logger: Logger): Promise<Store> {
  const common = { maxPending: config.QUEUE_MAX_PENDING, retryAfterS: DEFAULTS.QUEUE_RETRY_AFTER_S, logger };
  if (config.REDIS_URL) {
    return RedisStore.connect(config.REDIS_URL, {
      ...common,
      keyPrefix: config.REDIS_KEY_PREFIX,
      partitions: config.QUEUE_PARTITIONS,
      wait: { replicas: config.REDIS_WAIT_REPLICAS, timeoutMs: config.REDIS_WAIT_TIMEOUT_MS },
    });
  }
  // The gateway's start-up line names the backend; no second line here (SPEC §1: one log line).
  return new MemoryStore(common);
}
