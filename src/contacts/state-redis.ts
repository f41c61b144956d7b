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
import type { ReplicaRequirement } from '../store/redis/replication.js';
import { defineScripts, loadScripts, type ScriptRun } from '../store/redis/scripts.js';
import type { Check, ContactState, Op } from './state.js';

const SCRIPTS = loadScripts(new URL('./lua/', import.meta.url), { txn: 1, linkdoc: 2 });

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
  readonly #run: ScriptRun<'txn' | 'linkdoc'>;
  /** The store's replica confirmations (REDIS_WAIT_REPLICAS), when it has them. */
  readonly #wait: ReplicaRequirement | undefined;

  constructor(redis: RedisClient, prefix: string, wait?: ReplicaRequirement) {
    this.#redis = redis;
    this.#base = `${prefix}:{${prefix}:ct}:`;
    this.#run = defineScripts(redis, SCRIPTS, 'switchboard_ct');
    this.#wait = wait;
  }

  /** The full Redis key of a relative name (for tests and the erasure sweep). */
  key(name: string): string {
    return this.#base + name;
  }

  async hget(key: string, fields: readonly string[]): Promise<(string | null)[]> {
    if (fields.length === 0) return [];
    return guard(this.#redis.hmget(this.key(key), ...fields));
  }

  async linkAndContact(
    conversationId: string,
    fallbackId: string | null,
  ): Promise<[string | null, string | null]> {
    const reply = (await guard(
      this.#run('linkdoc', [this.key('conv'), this.key('c')], [conversationId, fallbackId ?? '']),
    )) as [string | null, string | null];
    return [reply[0] ?? null, reply[1] ?? null];
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

  /**
   * Applies one operation. With replica confirmations required (docs/replication.md), the script and
   * a `WAIT` go in one pipeline, as the store's own writes do: a merge or an erasure that the new
   * master lacks after a failover would undo itself. Too few confirmations answer 503; every contact
   * operation is idempotent, so the retry is safe whether or not the write survived.
   */
  async apply(checks: readonly Check[], ops: readonly Op[]): Promise<boolean> {
    const key = this.key('c');
    const payload = JSON.stringify({ checks, ops });
    const needed = this.#wait?.required(key) ?? 0;
    if (needed === 0 || !this.#wait) return (await guard(this.#run('txn', [key], [payload]))) === 0;
    if (this.#wait.short(key))
      throw new StoreUnavailableError(
        new Error(`Fewer than ${needed} Redis replica(s) online to confirm writes`),
      );
    const pipeline = this.#redis.pipeline() as unknown as Record<string, (...a: unknown[]) => unknown> & {
      wait(n: number, ms: number): unknown;
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    pipeline.switchboard_ct_txn!(key, payload);
    pipeline.wait(needed, this.#wait.timeoutMs);
    const [write, confirmed] = (await guard(pipeline.exec())) ?? [];
    if (!write || !confirmed) throw new StoreUnavailableError(new Error('Redis pipeline gave no reply'));
    if (write[0]) throw isUnavailableError(write[0]) ? new StoreUnavailableError(write[0]) : write[0];
    if (confirmed[0]) throw new StoreUnavailableError(confirmed[0]);
    this.#wait.confirmed(key, Number(confirmed[1]), needed);
    if (Number(confirmed[1]) < needed)
      throw new StoreUnavailableError(
        new Error(
          `${confirmed[1]} of ${needed} Redis replicas confirmed the write within ${this.#wait.timeoutMs} ms`,
        ),
      );
    return write[1] === 0;
  }
}
