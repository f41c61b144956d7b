/**
 * The Redis of one test file: its own redis-server on a free port when the binary is there, else the
 * `REDIS_URL` given (the suites skip when neither is), and a way to leave nothing behind under a key
 * prefix on a shared one.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { hasRedisServer, RedisServer } from './redis.js';

/** Starts the file's Redis before its tests and stops it after; read `url` inside tests and hooks. */
export function redisForSuite(): { readonly url: string } {
  const state = { url: process.env.REDIS_URL ?? '' };
  let server: RedisServer | undefined;
  beforeAll(async () => {
    if (hasRedisServer()) {
      server = await RedisServer.start();
      state.url = server.url;
    }
  });
  afterAll(async () => {
    await server?.dispose();
  });
  return state;
}

/** Deletes every key under a prefix, so runs against a shared REDIS_URL leave nothing behind. */
export async function dropPrefix(url: string, prefix: string): Promise<void> {
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
