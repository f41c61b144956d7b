/** @module Runs the contacts conformance suite against Redis (a private redis-server, or REDIS_URL). */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { contactStateFor } from '../../src/contacts/index.js';
import { ContactRepo } from '../../src/contacts/repo.js';
import { RedisContactState } from '../../src/contacts/state-redis.js';
import { StoreUnavailableError } from '../../src/core/errors.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { redisAvailable } from '../helpers/redis.js';
import { redisForSuite } from '../helpers/redis-suite.js';
import { contactsContract } from './contacts.contract.js';

describe.skipIf(!redisAvailable())('RedisContactState', () => {
  const suite = redisForSuite();

  contactsContract('redis', async () => {
    const prefix = `t-${randomUUID().slice(0, 8)}`;
    const redis = new Redis(suite.url);
    return {
      state: new RedisContactState(redis, prefix),
      cleanup: async () => {
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length > 0) await redis.unlink(...keys);
        redis.disconnect();
      },
    };
  });

  it('asks for the replica confirmations the store requires, and answers 503 without them', async () => {
    const keyPrefix = `t-${randomUUID().slice(0, 8)}`;
    const store = await RedisStore.connect(suite.url, {
      keyPrefix,
      partitions: 1,
      maxPending: 100,
      retryAfterS: 1,
      wait: { replicas: 1, timeoutMs: 50 },
    });
    try {
      const repo = new ContactRepo(contactStateFor(store));
      const sms = { channel: 'sms' as const, address: '+15550009999', verified: true, source: 'twilio' };
      // This server has no replica: the write is not even sent.
      await expect(repo.identify(sms, [])).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await store.shared.redis.exists(`${keyPrefix}:{${keyPrefix}:ct}:c`)).toBe(0);
      // Sent with its WAIT, which no replica answers in time: written, reported unconfirmed (503).
      const stub = { required: () => 1, short: () => false, confirmed: () => undefined, timeoutMs: 50 };
      const state = new RedisContactState(store.shared.redis, keyPrefix, stub as never);
      await expect(new ContactRepo(state).identify(sms, [])).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(await store.shared.redis.hlen(`${keyPrefix}:{${keyPrefix}:ct}:c`)).toBe(1);
    } finally {
      await store.close();
      const admin = new Redis(suite.url);
      const keys = await admin.keys(`${keyPrefix}:*`);
      if (keys.length > 0) await admin.unlink(...keys);
      admin.disconnect();
    }
  });
});
