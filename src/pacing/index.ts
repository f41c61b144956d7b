/**
 * @module Pacing shared by every process (docs/pacing.md): the send rate per provider key (a Slack
 * channel, a WhatsApp phone number id, a Twilio sender), the concurrency limit per webhook endpoint,
 * and the webhook endpoints' circuit breakers. {@link pacingFor} gives the one {@link Pacing} of a
 * store: on Redis beside a Redis store (its connection and key prefix), in memory for the embedded one.
 */
import type { Logger } from 'pino';
import type { Store } from '../core/store.js';
import { RedisStore } from '../store/redis/store.js';
import { MemoryBreakers, MemoryConcurrency, MemoryRateGate } from './memory.js';
import { type ConcurrencyLimit, perSecond, type RateGate, type SharedBreakers } from './model.js';
import { PacingKeys, RedisBreakers, RedisConcurrency, RedisRateGate } from './redis.js';

export { MemoryBreakers, MemoryConcurrency, MemoryRateGate } from './memory.js';
export type {
  Admission,
  BreakerSettings,
  BreakerState,
  ConcurrencyLimit,
  Lease,
  RateGate,
  SharedBreakers,
  Take,
} from './model.js';
export { perSecond } from './model.js';
export { PacingKeys, RedisBreakers, RedisConcurrency, RedisRateGate } from './redis.js';

export interface Pacing {
  readonly kind: 'redis' | 'memory';
  readonly gate: RateGate;
  readonly limits: ConcurrencyLimit;
  readonly breakers: SharedBreakers;
}

const byStore = new WeakMap<Store, Pacing>();

/** The pacing of a store, built once per store so every adapter and the dispatcher share it. */
export function pacingFor(store: Store, logger?: Logger): Pacing {
  let pacing = byStore.get(store);
  if (pacing) return pacing;
  if (store instanceof RedisStore) {
    const { redis, keys } = store.shared;
    const k = new PacingKeys(redis, keys.prefix, logger?.child({ component: 'pacing' }));
    const breakers = new RedisBreakers(k);
    pacing = {
      kind: 'redis',
      gate: new RedisRateGate(k),
      limits: new RedisConcurrency(k, {}, breakers),
      breakers,
    };
  } else {
    const breakers = new MemoryBreakers();
    pacing = {
      kind: 'memory',
      gate: new MemoryRateGate(),
      limits: new MemoryConcurrency(breakers),
      breakers,
    };
  }
  byStore.set(store, pacing);
  return pacing;
}

/**
 * A wait for `key`'s next send slot at `ratePerSec` on `gate` (keys live under `namespace`), or
 * undefined when the rate is 0 (pacing off).
 */
export function pacer(
  gate: RateGate,
  namespace: string,
  ratePerSec: number,
): ((key: string) => Promise<void>) | undefined {
  if (ratePerSec <= 0) return undefined;
  const intervalMs = perSecond(ratePerSec);
  return async (key) => {
    const wait = await gate.reserve(`${namespace}:${key}`, intervalMs);
    if (wait > 0) await new Promise<void>((resolve) => setTimeout(resolve, wait));
  };
}
