/**
 * @module Runs the handoff repository conformance suite against Redis (a private redis-server, or
 * REDIS_URL), with two repositories on two connections racing as two processes would.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe } from 'vitest';
import { RedisHandoffRepo } from '../../src/handoff/repo-redis.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { hasRedisServer, RedisServer, redisAvailable } from '../helpers/redis.js';
import { handoffContract } from './handoff.contract.js';

async function dropPrefix(url: string, prefix: string): Promise<void> {
  const admin = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      if (keys.length > 0) await admin.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    admin.disconnect();
  }
}

describe.skipIf(!redisAvailable())('RedisHandoffRepo', () => {
  let server: RedisServer | undefined;
  let url = process.env.REDIS_URL ?? '';

  beforeAll(async () => {
    if (hasRedisServer()) {
      server = await RedisServer.start();
      url = server.url;
    }
  });
  afterAll(async () => {
    await server?.dispose();
  });

  handoffContract('redis', async () => {
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    const partitions = 4;
    const store = await RedisStore.connect(url, { keyPrefix, partitions, maxPending: 1000, retryAfterS: 5 });
    const repos: [RedisHandoffRepo, RedisHandoffRepo] = [
      await RedisHandoffRepo.connect(url, keyPrefix, partitions),
      await RedisHandoffRepo.connect(url, keyPrefix, partitions),
    ];
    return {
      store,
      repos,
      cleanup: async () => {
        await Promise.all(repos.map((r) => r.close()));
        await store.close();
        await dropPrefix(url, keyPrefix);
      },
    };
  });
});
