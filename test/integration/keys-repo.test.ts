/**
 * The managed-key store contract (src/keys/repo.ts), run against both implementations (in memory, and
 * Redis on a private redis-server): records by id, pages in id order both ways, removal, and
 * `lastUsedAt` kept beside the record and never for a key that is gone.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/core/ids.js';
import { type KeyRecord, newToken } from '../../src/keys/model.js';
import type { KeyRepo } from '../../src/keys/repo.js';
import { MemoryKeyRepo } from '../../src/keys/repo-memory.js';
import { RedisKeyRepo } from '../../src/keys/repo-redis.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

function record(name: string): KeyRecord {
  const id = newId('key');
  const { hash, hint } = newToken(id);
  return {
    id,
    name,
    scopes: ['messages'],
    rateLimitPerMin: null,
    hash,
    hint,
    createdAt: new Date().toISOString(),
  };
}

function contract(name: string, make: () => KeyRepo) {
  describe(name, () => {
    let repo: KeyRepo;
    beforeAll(() => {
      repo = make();
    });

    it('stores a record and reads it back by id, with no use yet', async () => {
      const r = record('one');
      await repo.insert(r);
      expect(await repo.get(r.id)).toEqual({ ...r, lastUsedAt: null });
      expect(await repo.get(newId('key'))).toBeNull();
    });

    it('lists in id order, asc and desc, page by page', async () => {
      const made = [record('p0'), record('p1'), record('p2'), record('p3'), record('p4')];
      for (const r of [...made].reverse()) await repo.insert(r);
      const walk = async (order: 'asc' | 'desc') => {
        const ids: string[] = [];
        let cursor: string | undefined;
        for (;;) {
          const page = await repo.list({ take: 2, order, ...(cursor ? { cursor } : {}) });
          expect(page.items.length).toBeLessThanOrEqual(2);
          ids.push(...page.items.map((k) => k.id));
          if (page.cursor === null) break;
          cursor = page.cursor;
        }
        return ids;
      };
      const asc = await walk('asc');
      expect(asc).toEqual([...asc].sort());
      for (const r of made) expect(asc).toContain(r.id);
      expect(await walk('desc')).toEqual([...asc].reverse());
    });

    it('removes once, and a removed key stays gone even if a use is noted after', async () => {
      const r = record('gone');
      await repo.insert(r);
      expect(await repo.remove(r.id)).toBe(true);
      expect(await repo.remove(r.id)).toBe(false);
      await repo.touch(r.id, new Date().toISOString());
      expect(await repo.get(r.id)).toBeNull();
      const listed = await repo.list({ take: 200, order: 'asc' });
      expect(listed.items.map((k) => k.id)).not.toContain(r.id);
    });

    it('keeps the last use beside the record, in reads and lists', async () => {
      const r = record('used');
      await repo.insert(r);
      const at = '2026-12-03T14:00:00.000Z';
      await repo.touch(r.id, at);
      expect((await repo.get(r.id))?.lastUsedAt).toBe(at);
      const listed = await repo.list({ take: 200, order: 'desc' });
      expect(listed.items.find((k) => k.id === r.id)?.lastUsedAt).toBe(at);
    });
  });
}

contract('memory', () => new MemoryKeyRepo());

describe.runIf(redisAvailable())('redis', () => {
  let server: RedisServer;
  let client: Redis;
  const prefix = `t${Date.now()}`;
  beforeAll(async () => {
    server = await RedisServer.start();
    client = new Redis(server.url);
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.dispose();
  });
  contract('redis repo', () => new RedisKeyRepo(client, prefix));

  it('keeps every key of a record under one hash tag (one Cluster slot)', async () => {
    const repo = new RedisKeyRepo(client, prefix);
    const r = record('slot');
    await repo.insert(r);
    await repo.touch(r.id, new Date().toISOString());
    const keys = await client.keys(`${prefix}:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) expect(key.startsWith(`${prefix}:{${prefix}:key}:`)).toBe(true);
  });
});
