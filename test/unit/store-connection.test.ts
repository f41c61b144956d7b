/**
 * @module Store wiring: REDIS_URL parsing, telling an unreachable Redis apart from bugs, and which
 * backend createStore picks.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { AppConfig } from '../../config/schema.js';
import { GatewayError } from '../../src/core/errors.js';
import { createStore } from '../../src/store/index.js';
import { isRedirectError, isUnavailableError, parseRedisUrl } from '../../src/store/redis/connection.js';
import { hasRedisServer, RedisServer } from '../helpers/redis.js';

describe('parseRedisUrl', () => {
  it('passes redis:// and rediss:// through to ioredis', () => {
    expect(parseRedisUrl('redis://:pw@localhost:6380/2')).toEqual({
      mode: 'standalone',
      url: 'redis://:pw@localhost:6380/2',
    });
    expect(parseRedisUrl('rediss://cache.example.com')).toEqual({
      mode: 'standalone',
      url: 'rediss://cache.example.com',
    });
  });

  it('reads sentinels, the master name, the database and credentials', () => {
    expect(parseRedisUrl('redis-sentinel://app:s%40cret@s1:26380,s2,[::1]:26381/mymaster/3')).toEqual({
      mode: 'sentinel',
      sentinels: [
        { host: 's1', port: 26380 },
        { host: 's2', port: 26379 },
        { host: '::1', port: 26381 },
      ],
      name: 'mymaster',
      db: 3,
      username: 'app',
      password: 's@cret',
    });
    expect(parseRedisUrl('redis-sentinel://s1/primary')).toEqual({
      mode: 'sentinel',
      sentinels: [{ host: 's1', port: 26379 }],
      name: 'primary',
    });
  });

  it('reads cluster seed nodes and a password', () => {
    expect(parseRedisUrl('redis-cluster://:pw@n1:7000,n2')).toEqual({
      mode: 'cluster',
      nodes: [
        { host: 'n1', port: 7000 },
        { host: 'n2', port: 6379 },
      ],
      password: 'pw',
    });
  });

  it('rejects what it cannot use, without echoing credentials', () => {
    expect(() => parseRedisUrl('redis-sentinel://:topsecret@s1:26379')).toThrow(/master name/);
    expect(() => parseRedisUrl('redis-sentinel://:topsecret@s1:26379')).not.toThrow(/topsecret/);
    expect(() => parseRedisUrl('redis-cluster://n1:port')).toThrow(/Invalid host/);
    expect(() => parseRedisUrl('http://localhost')).toThrow(/Unsupported/);
  });
});

describe('isUnavailableError', () => {
  const reply = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });

  it('counts connection failures and transient server states', () => {
    expect(
      isUnavailableError(new Error("Stream isn't writeable and enableOfflineQueue options is false")),
    ).toBe(true);
    expect(isUnavailableError(new Error('Command timed out'))).toBe(true);
    expect(
      isUnavailableError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    ).toBe(true);
    expect(isUnavailableError(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' }))).toBe(
      true,
    );
    expect(isUnavailableError(reply('LOADING Redis is loading the dataset in memory'))).toBe(true);
    expect(isUnavailableError(reply('CLUSTERDOWN The cluster is down'))).toBe(true);
  });

  it('counts every "try again" answer of a failover as transient (503), not a bug (500)', () => {
    for (const message of [
      'MOVED 3999 127.0.0.1:6381',
      'ASK 3999 127.0.0.1:6381',
      'TRYAGAIN Multiple keys request during rehashing of slot',
      "READONLY You can't write against a read only replica.",
      'UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)',
      'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
      'NOREPLICAS Not enough good replicas to write.',
      "ERR Error running script (call to f_0123): @user_script:12: @user_script: 12: -READONLY You can't write against a read only replica. ",
    ]) {
      expect(isUnavailableError(reply(message)), message).toBe(true);
    }
    expect(isUnavailableError(new Error('Too many Cluster redirections. Last error: MOVED 1 x:1'))).toBe(
      true,
    );
    expect(isRedirectError(reply('MOVED 3999 127.0.0.1:6381'))).toBe(true);
    expect(isRedirectError(reply('ASK 3999 127.0.0.1:6381'))).toBe(true);
    expect(isRedirectError(reply('LOADING Redis is loading'))).toBe(false);
  });

  it('lets bugs and domain errors through', () => {
    expect(isUnavailableError(reply('ERR Error running script: attempt to index a nil value'))).toBe(false);
    expect(
      isUnavailableError(reply('WRONGTYPE Operation against a key holding the wrong kind of value')),
    ).toBe(false);
    expect(isUnavailableError(new TypeError('x is not a function'))).toBe(false);
    expect(
      isUnavailableError(Object.assign(new TypeError('bad arg'), { code: 'ERR_INVALID_ARG_TYPE' })),
    ).toBe(false);
    expect(isUnavailableError(new GatewayError('GW_ERR_QUEUE_FULL'))).toBe(false);
    expect(isUnavailableError('nope')).toBe(false);
  });
});

describe('createStore', () => {
  const logger = pino({ level: 'silent' });
  const config = {
    QUEUE_MAX_PENDING: 10,
    QUEUE_PARTITIONS: 4,
    REDIS_KEY_PREFIX: 'sb',
  } as AppConfig;

  it('uses the embedded backend without REDIS_URL', async () => {
    const store = await createStore(config, logger);
    expect(store.kind).toBe('embedded');
    expect(await store.ping()).toBe(true);
    await store.close();
  });

  it.skipIf(!hasRedisServer())('uses Redis with REDIS_URL', async () => {
    const server = await RedisServer.start();
    try {
      const store = await createStore(
        { ...config, REDIS_URL: server.url, REDIS_KEY_PREFIX: 'factory' },
        logger,
      );
      expect(store.kind).toBe('redis');
      expect(await store.ping()).toBe(true);
      await store.close();
    } finally {
      await server.dispose();
    }
  });
});
