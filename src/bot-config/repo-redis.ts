/**
 * @module The Redis {@link BotConfigRepo}, on its own connection (the store exposes no raw client).
 *
 * ```
 * <p>:bot:config   hash  doc (the stored document, JSON, secret included), v (version), at (written at)
 * ```
 *
 * One key, so the conditional write (`lua/put-1.lua`) touches a single Cluster slot.
 */
import { createRedisClient, type RedisClient, waitReady } from '../store/redis/connection.js';
import { defineScripts, loadScripts, type ScriptRun } from '../store/redis/scripts.js';
import { type BotConfigRepo, EMPTY, type StoredBotConfig, type WriteResult } from './repo.js';

const SCRIPTS = loadScripts(new URL('./lua/', import.meta.url), { put: 1 });

export class RedisBotConfigRepo implements BotConfigRepo {
  readonly kind = 'redis' as const;
  readonly #redis: RedisClient;
  readonly #key: string;
  readonly #run: ScriptRun<'put'>;

  private constructor(redis: RedisClient, prefix: string) {
    this.#redis = redis;
    this.#key = `${prefix}:bot:config`;
    this.#run = defineScripts(redis, SCRIPTS, 'switchboard_bot');
  }

  /** Connects to `url` and waits until Redis answers (at most `readyTimeoutMs`). */
  static async connect(url: string, prefix: string, readyTimeoutMs = 10_000): Promise<RedisBotConfigRepo> {
    const redis = createRedisClient(url, { commandTimeoutMs: 5_000, connectTimeoutMs: 5_000 });
    // Connection errors surface on the commands that fail; the event itself needs no handler output.
    redis.on('error', () => undefined);
    try {
      await waitReady(redis, readyTimeoutMs);
    } catch (err) {
      redis.disconnect();
      throw err;
    }
    return new RedisBotConfigRepo(redis, prefix);
  }

  async read(): Promise<StoredBotConfig> {
    const [doc, v, at] = await this.#redis.hmget(this.#key, 'doc', 'v', 'at');
    if (doc == null || v == null) return EMPTY;
    return { doc, version: Number(v), updatedAt: at ?? null };
  }

  async write(doc: string, expected: number | null, updatedAt: string): Promise<WriteResult> {
    const [ok, version] = (await this.#run('put', [this.#key], [expected ?? '', doc, updatedAt])) as [
      number,
      number,
    ];
    return { ok: ok === 1, version: Number(version) } as WriteResult;
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
