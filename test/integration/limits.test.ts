/**
 * SPEC §10 idempotency and rate limits (docs/limits.md) over real HTTP: two gateway processes on one
 * real Redis, the embedded backend, and the middleware alone for the 5xx case.
 */
import type { Server } from 'node:http';
import express from 'express';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyValue } from '../../src/core/store.js';
import { errorHandler } from '../../src/http/errors.js';
import { idempotency } from '../../src/http/idempotency.js';
import { MemoryKeyValue } from '../../src/store/memory.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { type SpawnedGateway, spawnGateway, startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

const enabled = redisAvailable();

/** One API key per test, so that one test's requests never count against another's limit. */
const KEYS = {
  replay: 'key-replay-0123456789abcdef',
  concurrent: 'key-concurrent-0123456789ab',
  reused: 'key-reused-0123456789abcdef',
  rateA: 'key-rate-a-0123456789abcdef',
  rateB: 'key-rate-b-0123456789abcdef',
};
const LIMIT = 12;

function call(
  base: string,
  key: string,
  path: string,
  init: { method?: string; json?: unknown; idem?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  if (init.idem !== undefined) headers['idempotency-key'] = init.idem;
  return fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
  });
}

async function conversationCount(base: string, key: string): Promise<number> {
  let n = 0;
  let cursor: string | null = null;
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const res = await call(base, key, `/v1/conversations?take=200${q}`);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { items: unknown[]; cursor: string | null };
    n += page.items.length;
    cursor = page.cursor;
  } while (cursor);
  return n;
}

describe.skipIf(!enabled)('idempotency and rate limits across two processes (Redis)', () => {
  let redis: RedisServer;
  let a: SpawnedGateway;
  let b: SpawnedGateway;

  beforeAll(async () => {
    redis = await RedisServer.start({ fsync: 'everysec' });
    const env = {
      REDIS_URL: redis.url,
      API_KEYS: Object.values(KEYS).join(','),
      RATE_LIMIT_PER_MIN: String(LIMIT),
    };
    [a, b] = await Promise.all([spawnGateway(env), spawnGateway(env)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await redis?.stop();
  });

  it('replays the first answer (status, body, headers) from either process and creates one conversation', async () => {
    const before = await conversationCount(a.url, KEYS.replay);
    const first = await call(a.url, KEYS.replay, '/v1/conversations', {
      method: 'POST',
      json: { meta: { order: 1 } },
      idem: 'replay-1',
    });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const body = await first.text();
    for (const base of [a.url, b.url]) {
      const again = await call(base, KEYS.replay, '/v1/conversations', {
        method: 'POST',
        json: { meta: { order: 1 } },
        idem: 'replay-1',
      });
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'));
      expect(await again.text()).toBe(body);
    }
    expect(await conversationCount(b.url, KEYS.replay)).toBe(before + 1);
  });

  it('gives one effect for concurrent duplicates sent to two processes at once', async () => {
    const before = await conversationCount(a.url, KEYS.concurrent);
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        call(i % 2 ? a.url : b.url, KEYS.concurrent, '/v1/conversations', {
          method: 'POST',
          json: {},
          idem: 'concurrent-1',
        }),
      ),
    );
    const bodies = await Promise.all(answers.map((r) => r.text()));
    expect(answers.map((r) => r.status)).toEqual(Array(8).fill(201));
    expect(new Set(bodies).size).toBe(1);
    expect(answers.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(7);
    expect(await conversationCount(a.url, KEYS.concurrent)).toBe(before + 1);
  });

  it('answers 422 problem+json for the same key with another body or path, and 400 for a malformed key', async () => {
    const first = await call(a.url, KEYS.reused, '/v1/conversations', {
      method: 'POST',
      json: {},
      idem: 'reused-1',
    });
    expect(first.status).toBe(201);
    const otherBody = await call(b.url, KEYS.reused, '/v1/conversations', {
      method: 'POST',
      json: { meta: { x: 1 } },
      idem: 'reused-1',
    });
    expect(otherBody.status).toBe(422);
    expect(otherBody.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(((await otherBody.json()) as { code: string }).code).toBe('GW_ERR_IDEMPOTENCY_KEY_REUSED');
    const otherPath = await call(a.url, KEYS.reused, '/v1/sessions', {
      method: 'POST',
      json: {},
      idem: 'reused-1',
    });
    expect(otherPath.status).toBe(422);
    const bad = await call(a.url, KEYS.reused, '/v1/conversations', {
      method: 'POST',
      json: {},
      idem: 'has spaces',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('GW_ERR_VALIDATION');
  });

  it('shares the limit across processes: request N+1 over both is 429 with Retry-After and the headers', async () => {
    for (let i = 0; i < LIMIT; i++) {
      const res = await call(i % 2 ? a.url : b.url, KEYS.rateA, '/v1/conversations?take=1');
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe(String(LIMIT));
      expect(res.headers.get('ratelimit-remaining')).toBe(String(LIMIT - i - 1));
      expect(Number(res.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    }
    for (const base of [a.url, b.url]) {
      const refused = await call(base, KEYS.rateA, '/v1/conversations?take=1');
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await refused.json()) as { code: string }).code).toBe('GW_ERR_RATE_LIMITED');
      const retryAfter = Number(refused.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(refused.headers.get('ratelimit-limit')).toBe(String(LIMIT));
      expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    }
    // Per key: another key still has its whole minute.
    const other = await call(a.url, KEYS.rateB, '/v1/conversations?take=1');
    expect(other.status).toBe(200);
    expect(other.headers.get('ratelimit-remaining')).toBe(String(LIMIT - 1));
  });
});

describe('the embedded backend', () => {
  let gw: TestGateway;
  const key = 'key-embedded-0123456789abcd';

  beforeAll(async () => {
    gw = await startGateway({ API_KEYS: key, RATE_LIMIT_PER_MIN: '6' });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('replays in memory, refuses another body, then limits the key', async () => {
    const first = await call(gw.url, key, '/v1/conversations', { method: 'POST', json: {}, idem: 'e-1' });
    expect(first.status).toBe(201);
    const again = await call(gw.url, key, '/v1/conversations', { method: 'POST', json: {}, idem: 'e-1' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.text()).toBe(await first.text());
    const reused = await call(gw.url, key, '/v1/conversations', {
      method: 'POST',
      json: { meta: { y: 2 } },
      idem: 'e-1',
    });
    expect(reused.status).toBe(422);
    expect(await conversationCount(gw.url, key)).toBe(1); // the 4th request
    for (let i = 5; i <= 6; i++) {
      const res = await call(gw.url, key, '/v1/conversations?take=1');
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-remaining')).toBe(String(6 - i));
    }
    const refused = await call(gw.url, key, '/v1/conversations?take=1');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});

/** A route that fails with 503 the first time and succeeds after, behind the middleware alone. */
async function flakyApp(
  kv: KeyValue,
): Promise<{ url: string; runs: () => number; close: () => Promise<void> }> {
  let runs = 0;
  const app = express();
  app.use(express.json());
  app.use(idempotency({ kv }));
  app.post('/things', (_req, res) => {
    runs++;
    if (runs === 1) res.status(503).json({ error: 'try again' });
    else res.status(201).json({ run: runs });
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    runs: () => runs,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function expectNoStoredFailure(kv: KeyValue): Promise<void> {
  const app = await flakyApp(kv);
  try {
    const post = () =>
      call(app.url, 'any-key-0123456789abcdef', '/things', {
        method: 'POST',
        json: { a: 1 },
        idem: 'fail-1',
      });
    expect((await post()).status).toBe(503);
    const retried = await post();
    expect(retried.status).toBe(201);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    const replayed = await post();
    expect(replayed.status).toBe(201);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect(await replayed.json()).toEqual({ run: 2 });
    expect(app.runs()).toBe(2);
  } finally {
    await app.close();
  }
}

describe('a 5xx answer is not stored: the retry runs again', () => {
  it('in memory', async () => {
    await expectNoStoredFailure(new MemoryKeyValue());
  });

  it.skipIf(!enabled)('in Redis', async () => {
    const redis = await RedisServer.start({ fsync: 'everysec' });
    const store = await RedisStore.connect(redis.url, {
      keyPrefix: 'sb',
      partitions: 1,
      maxPending: 100,
      retryAfterS: 1,
    });
    try {
      await expectNoStoredFailure(store.kv);
    } finally {
      await store.close();
      await redis.stop();
    }
  });
});

describe('a duplicate of a request still in flight', () => {
  /** A route whose first call never answers (a process that died mid-request), the others 201. */
  async function hangingApp(options: { inFlightTtlS: number; waitMs: number }) {
    let runs = 0;
    const app = express();
    app.use(express.json());
    app.use(idempotency({ kv: new MemoryKeyValue(), ...options }));
    app.post('/things', (_req, res) => {
      runs++;
      if (runs > 1) res.status(201).json({ run: runs });
    });
    app.use(errorHandler(pino({ level: 'silent' })));
    const server: Server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const addr = server.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    const hung = new AbortController();
    const post = (signal?: AbortSignal) =>
      fetch(`${url}/things`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'hang-1' },
        body: '{}',
        ...(signal ? { signal } : {}),
      });
    post(hung.signal).catch(() => {});
    await new Promise((r) => setTimeout(r, 100));
    return {
      post,
      runs: () => runs,
      close: () => {
        hung.abort();
        server.closeAllConnections();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  it('waits, then answers 409 problem+json with Retry-After', async () => {
    const app = await hangingApp({ inFlightTtlS: 60, waitMs: 300 });
    try {
      const started = Date.now();
      const res = await app.post();
      expect(res.status).toBe(409);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await res.json()) as { code: string }).code).toBe('GW_ERR_IDEMPOTENCY_IN_FLIGHT');
      expect(app.runs()).toBe(1);
    } finally {
      await app.close();
    }
  });

  it('runs once the in-flight marker of a request that never finished has expired', async () => {
    const app = await hangingApp({ inFlightTtlS: 0.5, waitMs: 3_000 });
    try {
      const res = await app.post();
      expect(res.status).toBe(201);
      expect(await res.json()).toEqual({ run: 2 });
    } finally {
      await app.close();
    }
  });
});
