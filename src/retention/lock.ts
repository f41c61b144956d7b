/**
 * @module The lock that lets one process at a time run the retention job (SPEC §12). In Redis a key
 * set with `NX PX` holding a random token; it is renewed while the job runs and released at its end,
 * both only by the holder (compare-and-set in Lua), so a process that stalled past its lease can
 * neither extend nor delete the lock another process now holds. A holder that dies lets the lease
 * run out. On the embedded backend there is one process: the lock only keeps two runs apart.
 */
import { randomBytes } from 'node:crypto';
import type { Store } from '../core/store.js';
import type { RedisClient } from '../store/redis/connection.js';
import { RedisStore } from '../store/redis/store.js';

export interface JobLock {
  /** Takes the lock for `ttlMs` when nobody holds it. */
  acquire(ttlMs: number): Promise<boolean>;
  /** Extends the lease when this process still holds it; false when it was lost. */
  renew(ttlMs: number): Promise<boolean>;
  release(): Promise<void>;
}

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

class RedisJobLock implements JobLock {
  readonly #redis: RedisClient;
  readonly #key: string;
  #token = '';

  constructor(redis: RedisClient, key: string) {
    this.#redis = redis;
    this.#key = key;
  }

  async acquire(ttlMs: number): Promise<boolean> {
    const token = randomBytes(16).toString('base64url');
    const ok = (await this.#redis.set(this.#key, token, 'PX', ttlMs, 'NX')) === 'OK';
    if (ok) this.#token = token;
    return ok;
  }

  async renew(ttlMs: number): Promise<boolean> {
    if (!this.#token) return false;
    return (await this.#redis.eval(RENEW, 1, this.#key, this.#token, String(ttlMs))) === 1;
  }

  async release(): Promise<void> {
    if (!this.#token) return;
    const token = this.#token;
    this.#token = '';
    await this.#redis.eval(RELEASE, 1, this.#key, token);
  }
}

class LocalJobLock implements JobLock {
  #held = false;
  async acquire(): Promise<boolean> {
    if (this.#held) return false;
    this.#held = true;
    return true;
  }
  async renew(): Promise<boolean> {
    return this.#held;
  }
  async release(): Promise<void> {
    this.#held = false;
  }
}

/** The lock named `name` for a store: in Redis beside a Redis store, in this process otherwise. */
export function jobLockFor(store: Store, name: string): JobLock {
  if (store instanceof RedisStore) {
    const { redis, keys } = store.shared;
    return new RedisJobLock(redis, `${keys.prefix}:lock:${name}`);
  }
  return new LocalJobLock();
}
