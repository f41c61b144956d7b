/**
 * @module Runs the bot configuration repository conformance suite against Redis (a private
 * redis-server, or REDIS_URL), with two repositories on two connections racing as two processes would.
 */
import { randomUUID } from 'node:crypto';
import { describe } from 'vitest';
import { RedisBotConfigRepo } from '../../src/bot-config/repo-redis.js';
import { redisAvailable } from '../helpers/redis.js';
import { dropPrefix, redisForSuite } from '../helpers/redis-suite.js';
import { botConfigContract } from './bot-config.contract.js';

describe.skipIf(!redisAvailable())('RedisBotConfigRepo', () => {
  const suite = redisForSuite();

  botConfigContract('redis', async () => {
    const prefix = `t-${randomUUID().slice(0, 8)}`;
    const repos: [RedisBotConfigRepo, RedisBotConfigRepo] = [
      await RedisBotConfigRepo.connect(suite.url, prefix),
      await RedisBotConfigRepo.connect(suite.url, prefix),
    ];
    return {
      repos,
      cleanup: async () => {
        await Promise.all(repos.map((r) => r.close()));
        await dropPrefix(suite.url, prefix);
      },
    };
  });
});
