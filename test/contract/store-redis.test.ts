/**
 * @module Runs the Store conformance suite against the Redis backend (a private redis-server, or
 * REDIS_URL), plus what only Redis can do: fail fast while Redis is down and heal when it is back.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { freePort, hasRedisServer, RedisServer, redisAvailable } from '../helpers/redis.js';
import { dropPrefix, redisForSuite } from '../helpers/redis-suite.js';
import { acceptInput } from '../helpers/store.js';
import { DEFAULT_MAX_PENDING, storeContract } from './store.contract.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!redisAvailable())('RedisStore', () => {
  const suite = redisForSuite();

  storeContract('redis', async (options) => {
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    const store = await RedisStore.connect(suite.url, {
      keyPrefix,
      // The limit is enforced per partition; one partition makes it exact for the limit test.
      partitions: options?.maxPending === undefined ? 4 : 1,
      maxPending: options?.maxPending ?? DEFAULT_MAX_PENDING,
      retryAfterS: 5,
    });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await dropPrefix(suite.url, keyPrefix);
      },
    };
  });

  it('refuses to run with a partition count other than the one the data was written with', async () => {
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    const options = { keyPrefix, maxPending: 100, retryAfterS: 5 };
    const first = await RedisStore.connect(suite.url, { ...options, partitions: 4 });
    await first.close();
    await expect(RedisStore.connect(suite.url, { ...options, partitions: 8 })).rejects.toThrow(
      /uses 4 queue partitions/,
    );
    const same = await RedisStore.connect(suite.url, { ...options, partitions: 4 });
    await same.close();
    await dropPrefix(suite.url, keyPrefix);
  });

  it('fails to connect quickly with StoreUnavailableError when nothing listens', async () => {
    const t0 = Date.now();
    const err = await RedisStore.connect(`redis://127.0.0.1:${await freePort()}`, {
      keyPrefix: 'sb',
      partitions: 1,
      maxPending: 10,
      retryAfterS: 5,
      connectTimeoutMs: 500,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - t0).toBeLessThan(3_000);
  });
});

describe.skipIf(!hasRedisServer())('RedisStore while Redis goes away', () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await RedisServer.start();
  });

  afterAll(async () => {
    await server.dispose();
  });

  it('fails fast while Redis is down and heals by itself when it is back', async () => {
    const store = await RedisStore.connect(server.url, {
      keyPrefix: 'outage',
      partitions: 4,
      maxPending: 100,
      retryAfterS: 5,
    });
    try {
      const c = await store.createConversation({ channel: 'api' });
      expect((await store.accept(acceptInput(c.id, 'before'))).message.seq).toBe(1);

      await server.stop();
      let t0 = Date.now();
      await expect(store.accept(acceptInput(c.id, 'during'))).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.getConversation(c.id)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(store.claim('w1', 10, 30_000)).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - t0).toBeLessThan(3_000);
      t0 = Date.now();
      expect(await store.ping()).toBe(false);
      expect(Date.now() - t0).toBeLessThan(1_500);
      // A worker waiting for work is not spun: the wait lasts its timeout.
      t0 = Date.now();
      await store.waitForWork(300);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(250);

      await server.restart();
      const deadline = Date.now() + 15_000;
      let after: Awaited<ReturnType<RedisStore['accept']>> | undefined;
      while (!after) {
        try {
          after = await store.accept(acceptInput(c.id, 'after'));
        } catch (err) {
          expect(err).toBeInstanceOf(StoreUnavailableError);
          if (Date.now() > deadline) throw err;
          await sleep(100);
        }
      }
      // The data written before the outage survived (the helper runs Redis with an append-only file).
      // The restarted server has a new replication id, so the seq fence jumps (docs/replication.md):
      // whatever the restart lost, no seq given out before it is given out again.
      expect(after.message.seq).toBe(1 + 1000 + 1);
      expect(await store.ping()).toBe(true);
      expect(await store.pendingCount()).toBe(2);
      const claims = await store.claim('w1', 10, 30_000);
      expect(claims.map((cl) => cl.message.seq)).toEqual([1]);
    } finally {
      await store.close();
    }
  });
});
