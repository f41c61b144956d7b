/**
 * The main Redis connection's commands of one event-loop turn leave in one socket write
 * (src/store/redis/coalesce.ts), on real Redis: every reply still reaches its own command, a
 * reconnect's new socket is coalesced too, and so is each node of a Cluster.
 */
import type { Writable } from 'node:stream';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coalesceWrites } from '../../src/store/redis/coalesce.js';
import { eventually } from '../helpers/eventually.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';
import { ClusterRig, redisCliAvailable } from '../helpers/redis-rigs.js';

const enabled = redisAvailable();

type Counted = Writable & { _write: (...a: unknown[]) => void; _writev?: (...a: unknown[]) => void };

/** Counts the socket's writes from now on: `_write` (one chunk) and `_writev` (several). */
function countWrites(redis: Redis): { writes: number; chunks: number } {
  const stream = (redis as unknown as { stream: Counted }).stream;
  const count = { writes: 0, chunks: 0 };
  const write = stream._write;
  const writev = stream._writev;
  stream._write = function (this: Counted, ...args: unknown[]) {
    count.writes += 1;
    count.chunks += 1;
    return write.apply(this, args);
  };
  stream._writev = function (this: Counted, ...args: unknown[]) {
    count.writes += 1;
    count.chunks += (args[0] as unknown[]).length;
    return writev!.apply(this, args);
  };
  return count;
}

/** `n` SETs and GETs issued in one turn; resolves to each GET's reply. */
function burst(redis: Redis | Cluster, tag: string, n: number): Promise<(string | null)[]> {
  const gets: Promise<string | null>[] = [];
  for (let i = 0; i < n; i++) {
    void redis.set(`${tag}:${i}`, `value-${i}`);
    gets.push(redis.get(`${tag}:${i}`));
  }
  return Promise.all(gets);
}

const expected = (n: number) => Array.from({ length: n }, (_, i) => `value-${i}`);

describe.skipIf(!enabled)('coalesced Redis writes', () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await RedisServer.start();
  });

  afterAll(async () => {
    await server?.dispose();
  });

  it('writes a turn of commands once, where a plain connection writes it several times', async () => {
    const plain = new Redis(server.url);
    const coalesced = new Redis(server.url);
    coalesceWrites(coalesced);
    try {
      await Promise.all([plain.ping(), coalesced.ping()]);
      const plainCount = countWrites(plain);
      const count = countWrites(coalesced);
      expect(await burst(plain, 'plain', 100)).toEqual(expected(100));
      expect(await burst(coalesced, 'coalesced', 100)).toEqual(expected(100));
      // The control: without coalescing, the first command goes out alone and the rest after it.
      expect(plainCount.writes).toBeGreaterThan(1);
      expect(count).toEqual({ writes: 1, chunks: 200 });
    } finally {
      plain.disconnect();
      coalesced.disconnect();
    }
  });

  it('coalesces the new socket after Redis restarts', async () => {
    const redis = new Redis(server.url, { maxRetriesPerRequest: null });
    coalesceWrites(redis);
    try {
      await redis.ping();
      const first = (redis as unknown as { stream: Writable }).stream;
      await server.stop();
      await server.restart();
      await eventually(async () => (await redis.ping().catch(() => null)) === 'PONG', 10_000);
      expect((redis as unknown as { stream: Writable }).stream).not.toBe(first);
      const count = countWrites(redis);
      expect(await burst(redis, 'restarted', 50)).toEqual(expected(50));
      expect(count).toEqual({ writes: 1, chunks: 100 });
    } finally {
      redis.disconnect();
    }
  });
});

describe.skipIf(!enabled || !redisCliAvailable())('coalesced Redis writes on a Cluster', () => {
  let rig: ClusterRig;

  beforeAll(async () => {
    rig = await ClusterRig.start();
  }, 60_000);

  afterAll(async () => {
    await rig?.dispose();
  });

  it('writes each node its share of a turn once, every reply to its own command', async () => {
    const cluster = new Cluster(rig.nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
    coalesceWrites(cluster);
    try {
      // Warms every master's connection up and learns the slot table.
      expect(await burst(cluster, 'warm', 30)).toEqual(expected(30));
      const masters = cluster.nodes('master');
      expect(masters.length).toBe(3);
      const counts = masters.map((node) => countWrites(node));
      expect(await burst(cluster, 'spread', 90)).toEqual(expected(90));
      // Keys of 90 names land on all three masters; each got its commands in one write.
      for (const count of counts) {
        expect(count.chunks).toBeGreaterThan(0);
        expect(count.writes).toBe(1);
      }
      expect(counts.reduce((sum, c) => sum + c.chunks, 0)).toBe(180);
    } finally {
      cluster.disconnect();
    }
  });
});
