/**
 * @module Erasure's sweep of what the store keeps beside conversations (SPEC §9): dedupe keys, which
 * outlive a deleted conversation until their TTL, and the adapters' key/value entries (thread
 * indexes, reply tokens, attachments, name caches, delivery ids) that mention the erased person. An
 * adapter's entries are its own business and carry no owner, so the sweep goes by content: an entry
 * whose key or value holds one of the erased conversation ids, channel refs, addresses or names goes.
 * Erasure is rare; reading the key/value space once per erasure is its price.
 */
import type { Store } from '../core/store.js';
import { MemoryStore } from '../store/memory.js';
import type { RedisClient } from '../store/redis/connection.js';
import type { KeyLayout } from '../store/redis/keys.js';
import { RedisStore } from '../store/redis/store.js';

export interface Sweeper {
  /**
   * Removes the dedupe keys of `conversationIds`, and every key/value entry whose key or value holds
   * one of `needles` or whose value is one of `exact` (names: too short and common to look for inside).
   */
  sweep(
    conversationIds: readonly string[],
    needles: readonly string[],
    exact: ReadonlySet<string>,
  ): Promise<number>;
}

const SCAN_COUNT = 500;

function mentions(
  needles: readonly string[],
  exact: ReadonlySet<string>,
  key: string,
  value: string,
): boolean {
  return exact.has(value) || [key, value].some((t) => needles.some((n) => t.includes(n)));
}

class MemorySweeper implements Sweeper {
  readonly #store: MemoryStore;
  constructor(store: MemoryStore) {
    this.#store = store;
  }
  async sweep(
    _conversationIds: readonly string[],
    needles: readonly string[],
    exact: ReadonlySet<string>,
  ): Promise<number> {
    // Dedupe entries of the embedded backend live and die with their conversation.
    return this.#store.kv.forget((key, value) => mentions(needles, exact, key, value));
  }
}

class RedisSweeper implements Sweeper {
  readonly #redis: RedisClient;
  readonly #keys: KeyLayout;
  constructor(shared: { redis: RedisClient; keys: KeyLayout }) {
    this.#redis = shared.redis;
    this.#keys = shared.keys;
  }

  /** Every node to scan: the masters of a Cluster, or the one server. */
  #nodes() {
    return 'nodes' in this.#redis && typeof this.#redis.nodes === 'function'
      ? this.#redis.nodes('master')
      : [this.#redis];
  }

  async #scan(pattern: string, each: (keys: string[]) => Promise<void>): Promise<void> {
    for (const node of this.#nodes()) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
        if (keys.length > 0) await each(keys);
        cursor = next;
      } while (cursor !== '0');
    }
  }

  async sweep(
    conversationIds: readonly string[],
    needles: readonly string[],
    exact: ReadonlySet<string>,
  ): Promise<number> {
    let n = 0;
    for (const id of conversationIds) {
      // Glob characters in an id would widen the match; ours never have any.
      if (/[*?[\]\\]/.test(id)) continue;
      await this.#scan(this.#keys.dedupe(id, '*'), async (keys) => {
        for (const k of keys) n += await this.#redis.unlink(k);
      });
    }
    if (needles.length === 0 && exact.size === 0) return n;
    await this.#scan(this.#keys.kv('*'), async (keys) => {
      const values = await Promise.all(keys.map((k) => this.#redis.get(k)));
      for (const [i, k] of keys.entries()) {
        const v = values[i];
        if (v !== null && v !== undefined && mentions(needles, exact, k, v)) n += await this.#redis.unlink(k);
      }
    });
    return n;
  }
}

export function createSweeper(store: Store): Sweeper | null {
  if (store instanceof RedisStore) return new RedisSweeper(store.shared);
  if (store instanceof MemoryStore) return new MemorySweeper(store);
  return null;
}
