/**
 * @module The Redis {@link ContactState}, on the store's own connection. Every contact key carries
 * the hash tag `{<prefix>:ct}`, so the one write script touches a single Cluster slot:
 *
 * ```
 * <p>:{<p>:ct}:<name>     the keys of `state.ts`, e.g. <p>:{<p>:ct}:c, <p>:{<p>:ct}:cc:ct_01…
 * ```
 *
 * One slot for every contact is the price of atomic merges across any two contacts: contacts are
 * written once per new sender and on merges, not per message, so the slot stays cool.
 */
import { StoreUnavailableError } from '../core/errors.js';
import { isUnavailableError, type RedisClient } from '../store/redis/connection.js';
import { defineScripts, loadScripts, type ScriptRun } from '../store/redis/scripts.js';
import type { Check, ContactState, Op } from './state.js';

const SCRIPTS = loadScripts(new URL('./lua/', import.meta.url), { txn: 1 });

/** Maps connection trouble to StoreUnavailableError (503, nothing written), as the store does. */
async function guard<T>(op: Promise<T>): Promise<T> {
  try {
    return await op;
  } catch (err) {
    throw isUnavailableError(err) ? new StoreUnavailableError(err) : err;
  }
}

export class RedisContactState implements ContactState {
  readonly kind = 'redis' as const;
  readonly #redis: RedisClient;
  readonly #base: string;
  readonly #run: ScriptRun<'txn'>;

  constructor(redis: RedisClient, prefix: string) {
    this.#redis = redis;
    this.#base = `${prefix}:{${prefix}:ct}:`;
    this.#run = defineScripts(redis, SCRIPTS, 'switchboard_ct');
  }

  /** The full Redis key of a relative name (for tests and the erasure sweep). */
  key(name: string): string {
    return this.#base + name;
  }

  async hget(key: string, fields: readonly string[]): Promise<(string | null)[]> {
    if (fields.length === 0) return [];
    return guard(this.#redis.hmget(this.key(key), ...fields));
  }

  hgetall(key: string): Promise<Record<string, string>> {
    return guard(this.#redis.hgetall(this.key(key)));
  }

  zrange(key: string, start: number, stop: number, rev = false): Promise<string[]> {
    return guard(
      rev
        ? this.#redis.zrevrange(this.key(key), start, stop)
        : this.#redis.zrange(this.key(key), start, stop),
    );
  }

  zrangeAfter(key: string, after: string | null, count: number, rev = false): Promise<string[]> {
    const k = this.key(key);
    return guard(
      rev
        ? this.#redis.zrevrangebylex(k, after === null ? '+' : `(${after}`, '-', 'LIMIT', 0, count)
        : this.#redis.zrangebylex(k, after === null ? '-' : `(${after}`, '+', 'LIMIT', 0, count),
    );
  }

  zcard(key: string): Promise<number> {
    return guard(this.#redis.zcard(this.key(key)));
  }

  async apply(checks: readonly Check[], ops: readonly Op[]): Promise<boolean> {
    const failed = await guard(this.#run('txn', [this.key('c')], [JSON.stringify({ checks, ops })]));
    return failed === 0;
  }
}
