/** @module Runs the contacts conformance suite against Redis (a private redis-server, or REDIS_URL). */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe } from 'vitest';
import { RedisContactState } from '../../src/contacts/state-redis.js';
import { hasRedisServer, RedisServer, redisAvailable } from '../helpers/redis.js';
import { contactsContract } from './contacts.contract.js';

describe.skipIf(!redisAvailable())('RedisContactState', () => {
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

  contactsContract('redis', async () => {
    const prefix = `t-${randomUUID().slice(0, 8)}`;
    const redis = new Redis(url);
    return {
      state: new RedisContactState(redis, prefix),
      cleanup: async () => {
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length > 0) await redis.unlink(...keys);
        redis.disconnect();
      },
    };
  });
});
