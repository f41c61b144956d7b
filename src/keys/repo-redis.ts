/**
 * @module The Redis {@link KeyRepo}, on the store's own connection and under its key prefix:
 *
 * ```
 * <p>:{<p>:key}:k:<id>   the record (JSON): name, scopes, limit, the key's SHA-256, hint, createdAt
 * <p>:{<p>:key}:ids      every id, a sorted set at score 0 (listed in lexical = creation order)
 * <p>:{<p>:key}:used     id → when a request last used it (a hash; written at most once a minute)
 * ```
 *
 * One hash tag for both, so each write is one MULTI on one Cluster slot. Keys are written when an
 * operator creates one, not per request, so the slot stays cool.
 */
import { StoreUnavailableError } from '../core/errors.js';
import type { Page } from '../core/store.js';
import { isUnavailableError, type RedisClient } from '../store/redis/connection.js';
import { defineScripts, loadScripts, type ScriptRun } from '../store/redis/scripts.js';
import type { KeyRecord } from './model.js';
import { type KeyListQuery, type KeyRepo, pageOf } from './repo.js';

const SCRIPTS = loadScripts(new URL('./lua/', import.meta.url), { touch: 2 });

/** Maps connection trouble to StoreUnavailableError (503 with Retry-After), as the store does. */
async function guard<T>(op: Promise<T>): Promise<T> {
  try {
    return await op;
  } catch (err) {
    throw isUnavailableError(err) ? new StoreUnavailableError(err) : err;
  }
}

export class RedisKeyRepo implements KeyRepo {
  readonly kind = 'redis' as const;
  readonly #redis: RedisClient;
  readonly #base: string;
  readonly #run: ScriptRun<'touch'>;

  constructor(redis: RedisClient, prefix: string) {
    this.#redis = redis;
    this.#base = `${prefix}:{${prefix}:key}:`;
    this.#run = defineScripts(redis, SCRIPTS, 'switchboard_key');
  }

  /** The full Redis key of a record (for tests). */
  recordKey(id: string): string {
    return `${this.#base}k:${id}`;
  }

  async insert(record: KeyRecord): Promise<void> {
    await guard(
      this.#redis
        .multi()
        .set(this.recordKey(record.id), JSON.stringify(record))
        .zadd(`${this.#base}ids`, 0, record.id)
        .exec(),
    );
  }

  async get(id: string): Promise<KeyRecord | null> {
    const [raw, used] = await guard(
      Promise.all([this.#redis.get(this.recordKey(id)), this.#redis.hget(`${this.#base}used`, id)]),
    );
    return raw === null ? null : { ...(JSON.parse(raw) as KeyRecord), lastUsedAt: used };
  }

  async list(query: KeyListQuery): Promise<Page<KeyRecord>> {
    const index = `${this.#base}ids`;
    const after = query.cursor;
    const count = query.take + 1;
    const ids = await guard(
      query.order === 'asc'
        ? this.#redis.zrangebylex(index, after === undefined ? '-' : `(${after}`, '+', 'LIMIT', 0, count)
        : this.#redis.zrevrangebylex(index, after === undefined ? '+' : `(${after}`, '-', 'LIMIT', 0, count),
    );
    if (ids.length === 0) return { items: [], cursor: null };
    const [raws, used] = await guard(
      Promise.all([
        this.#redis.mget(...ids.map((id) => this.recordKey(id))),
        this.#redis.hmget(`${this.#base}used`, ...ids),
      ]),
    );
    const items: KeyRecord[] = [];
    raws.forEach((raw, i) => {
      if (raw !== null) items.push({ ...(JSON.parse(raw) as KeyRecord), lastUsedAt: used[i] ?? null });
    });
    return pageOf(items, query.take);
  }

  async remove(id: string): Promise<boolean> {
    const result = await guard(
      this.#redis
        .multi()
        .del(this.recordKey(id))
        .zrem(`${this.#base}ids`, id)
        .hdel(`${this.#base}used`, id)
        .exec(),
    );
    return result?.[0]?.[1] === 1;
  }

  async touch(id: string, at: string): Promise<void> {
    // Only while the record exists, in one step: a use racing a revocation leaves nothing behind.
    await guard(this.#run('touch', [this.recordKey(id), `${this.#base}used`], [id, at]));
  }
}
