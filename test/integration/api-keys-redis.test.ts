/**
 * Managed API keys on Redis (SPEC §10; docs/keys.md): two gateway processes on one Redis, where a key
 * created on one works on the other and a revocation on one is a 401 on the other within a second,
 * by pub/sub and, when the message never comes, by revalidation; a key's own rate limit counted
 * across both; the key nowhere at rest (every Redis value, the append-only file) nor in either
 * process's output; and a managed key answered 503, not 401, while Redis is away.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  API_KEY,
  type SpawnedGateway,
  spawnGateway,
  startGateway,
  type TestGateway,
} from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

const enabled = redisAvailable();
const PREFIX = 'sbkeys';

type Json = Record<string, unknown>;

function call(
  base: string,
  key: string,
  path: string,
  init: { method?: string; json?: unknown; idem?: string } = {},
) {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  if (init.idem !== undefined) headers['idempotency-key'] = init.idem;
  return fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
  });
}

async function createKey(base: string, body: Json, idem?: string): Promise<{ id: string; key: string }> {
  const res = await call(base, API_KEY, '/v1/keys', {
    method: 'POST',
    json: body,
    ...(idem ? { idem } : {}),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as { id: string; key: string };
}

/** Polls until `base` answers 401 to `key`; the milliseconds it took from `since`. */
async function msUntilRefused(base: string, key: string, since: number, limitMs = 5_000): Promise<number> {
  for (;;) {
    const res = await call(base, key, '/v1/conversations');
    await res.arrayBuffer();
    if (res.status === 401) return Date.now() - since;
    expect(res.status).toBe(200);
    if (Date.now() - since > limitMs) throw new Error(`still accepted after ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every string stored in Redis: keys, and the values of every type. */
async function everythingIn(redis: Redis): Promise<string> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      out.push(key);
      const type = await redis.type(key);
      if (type === 'string') out.push((await redis.get(key)) ?? '');
      else if (type === 'hash') out.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'zset') out.push(JSON.stringify(await redis.zrange(key, 0, -1, 'WITHSCORES')));
      else if (type === 'set') out.push(JSON.stringify(await redis.smembers(key)));
      else if (type === 'list') out.push(JSON.stringify(await redis.lrange(key, 0, -1)));
      else if (type === 'stream') out.push(JSON.stringify(await redis.xrange(key, '-', '+')));
    }
  } while (cursor !== '0');
  return out.join('\n');
}

/** The append-only file(s) Redis wrote: every write it ever took. */
function appendOnlyFiles(dir: string): string {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(d, entry.name));
      else files.push(readFileSync(join(d, entry.name), 'latin1'));
    }
  };
  walk(dir);
  return files.join('\n');
}

describe.skipIf(!enabled)('managed keys across two processes (Redis)', () => {
  let redis: RedisServer;
  let client: Redis;
  let a: SpawnedGateway;
  let b: SpawnedGateway;

  beforeAll(async () => {
    redis = await RedisServer.start({ fsync: 'always' });
    client = new Redis(redis.url, { lazyConnect: false });
    const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: PREFIX };
    [a, b] = await Promise.all([spawnGateway(env), spawnGateway(env)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    client?.disconnect();
    await redis?.stop();
  });

  it('a key created on A works on B, and revoked on A is refused by B within a second', async () => {
    const { id, key } = await createKey(a.url, { name: 'two processes', scopes: ['conversations:read'] });
    expect((await call(b.url, key, '/v1/conversations')).status).toBe(200);
    // B has it cached now; the revocation has to reach it.
    expect((await call(b.url, key, '/v1/conversations')).status).toBe(200);
    const revoke = await call(a.url, API_KEY, `/v1/keys/${id}`, { method: 'DELETE' });
    expect(revoke.status).toBe(200);
    const took = await msUntilRefused(b.url, key, Date.now());
    // Well under the 1 s revalidation, which alone would take about a second here: the announcement did it.
    expect(took).toBeLessThan(500);
    expect((await call(a.url, key, '/v1/conversations')).status).toBe(401);
    // Listed by neither.
    const list = (await (await call(b.url, API_KEY, '/v1/keys?take=200')).json()) as { items: Json[] };
    expect(list.items.map((k) => k.id)).not.toContain(id);
  });

  it('without the announcement (the record deleted behind the gateway) B refuses within a second too', async () => {
    const { id, key } = await createKey(a.url, { name: 'silent revoke', scopes: ['conversations:read'] });
    expect((await call(b.url, key, '/v1/conversations')).status).toBe(200);
    expect((await call(a.url, key, '/v1/conversations')).status).toBe(200);
    // What a revocation whose pub/sub message was lost leaves: the record gone, no one told.
    const removed = await client.del(`${PREFIX}:{${PREFIX}:key}:k:${id}`);
    expect(removed).toBe(1);
    const since = Date.now();
    const [tookA, tookB] = await Promise.all([
      msUntilRefused(a.url, key, since),
      msUntilRefused(b.url, key, since),
    ]);
    // The revalidation bound (1 s), with room for a loaded machine's request latency.
    expect(tookA).toBeLessThan(1_300);
    expect(tookB).toBeLessThan(1_300);
  });

  it("a key's own limit is counted across both processes", async () => {
    const { key } = await createKey(a.url, {
      name: 'limited',
      scopes: ['conversations:read'],
      rateLimitPerMin: 5,
    });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await call(i % 2 === 0 ? a.url : b.url, key, '/v1/conversations');
      await res.arrayBuffer();
      statuses.push(res.status);
      expect(res.headers.get('ratelimit-limit')).toBe('5');
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
  });

  it('the key is nowhere at rest (no Redis value, not the append-only file) nor in any log', async () => {
    const { id, key } = await createKey(a.url, { name: 'at rest', scopes: ['messages'] }, 'at-rest-idem-1');
    // Use it on both, and replay its creation: every path that could keep a copy.
    await call(a.url, key, '/v1/sessions', { method: 'POST', json: {} });
    await call(b.url, key, '/v1/sessions', { method: 'POST', json: {} });
    const replay = await call(a.url, API_KEY, '/v1/keys', {
      method: 'POST',
      json: { name: 'at rest', scopes: ['messages'] },
      idem: 'at-rest-idem-1',
    });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(((await replay.json()) as Json).key).toBeNull();
    const secret = key.slice(31);
    const stored = await everythingIn(client);
    expect(stored).toContain(id);
    expect(stored).not.toContain(secret);
    expect(stored).not.toContain(key);
    const aof = appendOnlyFiles(redis.dir);
    expect(aof).toContain(id);
    expect(aof).not.toContain(secret);
    // Its use was noted, beside the record.
    const seen = (await (await call(b.url, API_KEY, `/v1/keys/${id}`)).json()) as Json;
    expect(seen.lastUsedAt).toEqual(expect.any(String));
    const logs = [...a.output, ...b.output].join('');
    expect(logs).toContain(id);
    expect(logs).not.toContain(secret);
  });
});

describe.skipIf(!enabled)('managed keys while Redis is away', () => {
  let redis: RedisServer;
  let gw: TestGateway;

  beforeAll(async () => {
    redis = await RedisServer.start();
    gw = await startGateway({ REDIS_URL: redis.url });
  }, 30_000);

  afterAll(async () => {
    await gw?.stop();
    await redis?.stop();
  });

  it('answers 503 with Retry-After (never 401) for a key it cannot check, and accepts it again after', async () => {
    const { key } = await createKey(gw.url, { name: 'outage', scopes: ['conversations:read'] });
    expect((await call(gw.url, key, '/v1/conversations')).status).toBe(200);
    await redis.stop();
    // Past the revalidation: the cached key must be read again, and cannot be.
    await new Promise((r) => setTimeout(r, 1_100));
    const res = await call(gw.url, key, '/v1/conversations');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect(((await res.json()) as Json).code).toBe('GW_ERR_STORE_UNAVAILABLE');
    // A key that is no key at all is still a 401: nothing to look up.
    expect((await call(gw.url, 'not-a-key-0123456789', '/v1/conversations')).status).toBe(401);
    await redis.restart();
    const deadline = Date.now() + 15_000;
    let status = 0;
    while (Date.now() < deadline) {
      const again = await call(gw.url, key, '/v1/conversations');
      await again.arrayBuffer();
      status = again.status;
      if (status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
  }, 30_000);
});
