/**
 * @module Runs the handoff repository conformance suite against Redis (a private redis-server, or
 * REDIS_URL), with two repositories on two connections racing as two processes would.
 */
import { randomUUID } from 'node:crypto';
import { describe } from 'vitest';
import { RedisHandoffRepo } from '../../src/handoff/repo-redis.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { redisAvailable } from '../helpers/redis.js';
import { dropPrefix, redisForSuite } from '../helpers/redis-suite.js';
import { handoffContract } from './handoff.contract.js';

describe.skipIf(!redisAvailable())('RedisHandoffRepo', () => {
  const suite = redisForSuite();

  handoffContract('redis', async () => {
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    const partitions = 4;
    const store = await RedisStore.connect(suite.url, {
      keyPrefix,
      partitions,
      maxPending: 1000,
      retryAfterS: 5,
    });
    const repos: [RedisHandoffRepo, RedisHandoffRepo] = [
      await RedisHandoffRepo.connect(suite.url, keyPrefix, partitions),
      await RedisHandoffRepo.connect(suite.url, keyPrefix, partitions),
    ];
    return {
      store,
      repos,
      cleanup: async () => {
        await Promise.all(repos.map((r) => r.close()));
        await store.close();
        await dropPrefix(suite.url, keyPrefix);
      },
    };
  });
});
