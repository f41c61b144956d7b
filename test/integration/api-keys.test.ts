/**
 * Scoped API keys (SPEC §10; docs/keys.md) over real HTTP on the embedded backend: `/v1/keys` create,
 * list, get and revoke, input validation naming the field, `403 GW_ERR_INSUFFICIENT_SCOPE` for each
 * scope family, full access for keys in `API_KEYS`, a key's own rate limit, and the key never in an
 * answer after creation nor in a log line. Redis and two processes: api-keys-redis.test.ts.
 */
import { hash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPES } from '../../src/keys/index.js';
import { API_KEY, type ApiApp, startApiApp } from '../helpers/api-app.js';

type Json = Record<string, unknown>;

let app: ApiApp;

/** A request with `key` instead of the test key. */
function as(key: string, path: string, init: { method?: string; json?: unknown; idem?: string } = {}) {
  return app.api(path, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${key}`,
      ...(init.idem !== undefined ? { 'idempotency-key': init.idem } : {}),
    },
    ...(init.json !== undefined ? { json: init.json } : {}),
  });
}

async function createKey(body: Json): Promise<Json & { key: string; id: string }> {
  const res = await app.api('/v1/keys', { method: 'POST', json: body });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as Json & { key: string; id: string };
}

/** Problem+json with `errors` naming each field. */
async function fieldsOf(res: Response): Promise<string[]> {
  expect(res.status).toBe(400);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as { code: string; errors: { field: string }[] };
  expect(body.code).toBe('GW_ERR_VALIDATION');
  return body.errors.map((e) => e.field);
}

beforeAll(async () => {
  app = await startApiApp();
});
afterAll(async () => {
  await app?.close();
});

describe('POST /v1/keys', () => {
  it('answers the key once, with Location, and it then works for its scope', async () => {
    const res = await app.api('/v1/keys', {
      method: 'POST',
      json: { name: '  crm sync  ', scopes: ['conversations:read'] },
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Json & { key: string; id: string };
    expect(body.id).toMatch(/^key_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(res.headers.get('location')).toBe(`/v1/keys/${body.id}`);
    expect(body.key).toMatch(/^sbk_[0-9A-HJKMNP-TV-Z]{26}_[A-Za-z0-9_-]{43}$/);
    expect(body.key.slice(4, 30)).toBe(body.id.slice(4));
    expect(body).toMatchObject({
      name: 'crm sync',
      scopes: ['conversations:read'],
      rateLimitPerMin: null,
      lastUsedAt: null,
    });
    expect(body.hint).toBe(`${body.key.slice(0, 31)}…${body.key.slice(-4)}`);
    expect(body).not.toHaveProperty('hash');

    const before = Date.now();
    expect((await as(body.key, '/v1/conversations')).status).toBe(200);
    const used = (await (await app.api(`/v1/keys/${body.id}`)).json()) as Json;
    expect(Date.parse(String(used.lastUsedAt))).toBeGreaterThanOrEqual(before - 1);
    // Only its scope.
    expect((await as(body.key, '/v1/conversations', { method: 'POST', json: {} })).status).toBe(403);
  });

  it('makes a new key each time: two keys never share an id or a secret', async () => {
    const [a, b] = await Promise.all([
      createKey({ name: 'a', scopes: ['messages'] }),
      createKey({ name: 'b', scopes: ['messages'] }),
    ]);
    expect(a.id).not.toBe(b.id);
    expect(a.key.slice(31)).not.toBe(b.key.slice(31));
  });

  it('refuses bad input with 400 problem+json naming each field', async () => {
    const post = (json: unknown) => app.api('/v1/keys', { method: 'POST', json });
    expect(await fieldsOf(await post({ scopes: ['messages'] }))).toEqual(['name']);
    expect(await fieldsOf(await post({ name: 'x' }))).toEqual(['scopes']);
    expect(await fieldsOf(await post({ name: '   ', scopes: ['messages'] }))).toEqual(['name']);
    expect(await fieldsOf(await post({ name: 'x'.repeat(201), scopes: ['messages'] }))).toEqual(['name']);
    expect(await fieldsOf(await post({ name: 'a\u0007b', scopes: ['messages'] }))).toEqual(['name']);
    expect(await fieldsOf(await post({ name: 7, scopes: ['messages'] }))).toEqual(['name']);
    expect(await fieldsOf(await post({ name: 'x', scopes: [] }))).toEqual(['scopes']);
    expect(await fieldsOf(await post({ name: 'x', scopes: 'messages' }))).toEqual(['scopes']);
    expect(await fieldsOf(await post({ name: 'x', scopes: ['messages', 'root'] }))).toEqual(['scopes.1']);
    expect(await fieldsOf(await post({ name: 'x', scopes: ['messages', 'messages'] }))).toEqual(['scopes']);
    expect(await fieldsOf(await post({ name: 'x', scopes: ['admin'], label: 'y' }))).toEqual(['label']);
    for (const bad of [-1, 1.5, 100_000_001, '60', null, true]) {
      expect(await fieldsOf(await post({ name: 'x', scopes: ['admin'], rateLimitPerMin: bad }))).toEqual([
        'rateLimitPerMin',
      ]);
    }
    expect(await fieldsOf(await post([{ name: 'x', scopes: ['admin'] }]))).toEqual(['(body)']);
    // Not JSON at all.
    const raw = await app.api('/v1/keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"name":',
    });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as Json).code).toBe('GW_ERR_INVALID_JSON');
    // Nothing was created by any of them.
    const list = (await (await app.api('/v1/keys?take=200')).json()) as { items: Json[] };
    expect(list.items.some((k) => k.name === 'x')).toBe(false);
  });

  it('an Idempotency-Key replay creates no second key and never carries the key again', async () => {
    const idem = 'keys-replay-1';
    const body = { name: 'replayed', scopes: ['contacts'] };
    const first = await app.api('/v1/keys', {
      method: 'POST',
      json: body,
      headers: { 'idempotency-key': idem },
    });
    expect(first.status).toBe(201);
    const created = (await first.json()) as Json & { key: string };
    const again = await app.api('/v1/keys', {
      method: 'POST',
      json: body,
      headers: { 'idempotency-key': idem },
    });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const replayed = (await again.json()) as Json;
    expect(replayed).toEqual({ ...created, key: null });
    const list = (await (await app.api('/v1/keys?take=200')).json()) as { items: Json[] };
    expect(list.items.filter((k) => k.name === 'replayed')).toHaveLength(1);
    // Nor is it in what the gateway keeps for replays (the entry of the env key's id, docs/limits.md).
    const stored = await app.store.kv.get(
      `idem:${hash('sha256', API_KEY, 'base64url').slice(0, 22)}:${idem}`,
    );
    const entry = JSON.parse(stored ?? 'null') as { body: string };
    expect(Buffer.from(entry.body, 'base64').toString()).toContain(String(created.id));
    expect(Buffer.from(entry.body, 'base64').toString()).not.toContain(created.key.slice(31));
  });
});

describe('GET /v1/keys, GET /v1/keys/:id', () => {
  it('lists keys in pages, oldest first or newest first, never with a secret or hash', async () => {
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await createKey({ name: `page ${i}`, scopes: ['webhooks'] }));
    const seen: Json[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : '';
      const res = await app.api(`/v1/keys?take=2${q}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { items: Json[]; cursor: string | null };
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items);
      cursor = page.cursor;
    } while (cursor);
    const ids = seen.map((k) => k.id as string);
    expect(ids).toEqual([...ids].sort());
    for (const key of made) expect(ids).toContain(key.id);
    const text = JSON.stringify(seen);
    for (const key of made) expect(text).not.toContain(key.key.slice(31));
    for (const item of seen) {
      expect(Object.keys(item).sort()).toEqual([
        'createdAt',
        'hint',
        'id',
        'lastUsedAt',
        'name',
        'rateLimitPerMin',
        'scopes',
      ]);
    }
    const desc = (await (await app.api('/v1/keys?order=desc&take=200')).json()) as { items: Json[] };
    expect(desc.items.map((k) => k.id)).toEqual([...ids].reverse());

    const one = await app.api(`/v1/keys/${made[0]!.id}`);
    expect(one.status).toBe(200);
    const { key: _secret, ...view } = made[0]!;
    expect(await one.json()).toEqual(view);
  });

  it('refuses unknown parameters, bad cursors and unknown ids', async () => {
    expect(await fieldsOf(await app.api('/v1/keys?limit=5'))).toEqual(['limit']);
    expect(await fieldsOf(await app.api('/v1/keys?take=0'))).toEqual(['take']);
    expect(await fieldsOf(await app.api('/v1/keys?meta[a]=b'))).toEqual(['meta']);
    const cursor = await app.api('/v1/keys?cursor=conv_01JH5W4Q6Y3M8K2N7R9T0V1X2Z');
    expect(cursor.status).toBe(400);
    expect(((await cursor.json()) as Json).code).toBe('GW_ERR_INVALID_CURSOR');
    for (const id of ['key_01JH5W4Q6Y3M8K2N7R9T0V1X2Z', 'nope']) {
      const res = await app.api(`/v1/keys/${id}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as Json).code).toBe('GW_ERR_NOT_FOUND');
      expect((await app.api(`/v1/keys/${id}`, { method: 'DELETE' })).status).toBe(404);
    }
  });
});

describe('DELETE /v1/keys/:id', () => {
  it('revokes at once: the next request with the key is 401, and it is gone from the list', async () => {
    const key = await createKey({ name: 'short-lived', scopes: ['contacts'] });
    expect((await as(key.key, '/v1/contacts')).status).toBe(200);
    const res = await app.api(`/v1/keys/${key.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: key.id });
    const after = await as(key.key, '/v1/contacts');
    expect(after.status).toBe(401);
    expect(after.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect((await app.api(`/v1/keys/${key.id}`)).status).toBe(404);
    const list = (await (await app.api('/v1/keys?take=200')).json()) as { items: Json[] };
    expect(list.items.map((k) => k.id)).not.toContain(key.id);
  });

  it('a key with admin may manage keys, even revoke itself', async () => {
    const admin = await createKey({ name: 'admin', scopes: ['admin'] });
    const made = await as(admin.key, '/v1/keys', {
      method: 'POST',
      json: { name: 'by admin', scopes: ['messages'] },
    });
    expect(made.status).toBe(201);
    expect((await as(admin.key, '/v1/keys')).status).toBe(200);
    expect((await as(admin.key, `/v1/keys/${admin.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await as(admin.key, '/v1/keys')).status).toBe(401);
  });
});

describe('scopes', () => {
  /** One call per scope family, each needing exactly that scope. */
  const CALLS: ReadonlyArray<{
    scope: (typeof SCOPES)[number];
    method: string;
    path: string;
    json?: unknown;
  }> = [
    { scope: 'messages', method: 'POST', path: '/v1/sessions', json: {} },
    { scope: 'conversations:read', method: 'GET', path: '/v1/conversations' },
    { scope: 'conversations:write', method: 'POST', path: '/v1/conversations', json: {} },
    { scope: 'contacts', method: 'GET', path: '/v1/contacts' },
    { scope: 'webhooks', method: 'GET', path: '/v1/webhooks' },
    { scope: 'admin', method: 'GET', path: '/v1/keys' },
  ];

  it('each call needs its scope: 403 GW_ERR_INSUFFICIENT_SCOPE naming it', async () => {
    for (const held of SCOPES) {
      const key = await createKey({ name: `only ${held}`, scopes: [held] });
      for (const call of CALLS) {
        if (call.scope === held) continue;
        const res = await as(key.key, call.path, { method: call.method, json: call.json });
        expect(res.status, `${held} → ${call.method} ${call.path}`).toBe(403);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(res.headers.get('www-authenticate')).toBe(
          `Bearer realm="switchboard", error="insufficient_scope", scope="${call.scope}"`,
        );
        const body = (await res.json()) as Json;
        expect(body).toMatchObject({ status: 403, code: 'GW_ERR_INSUFFICIENT_SCOPE', scope: call.scope });
        expect(body.detail).toContain(call.scope);
      }
    }
  });

  it('a key with a scope reaches its routes (the webhooks service here is not wired: 500 means reached)', async () => {
    const key = await createKey({
      name: 'many',
      scopes: ['messages', 'conversations:read', 'conversations:write', 'contacts', 'admin'],
    });
    for (const call of CALLS.filter((c) => c.scope !== 'webhooks')) {
      const res = await as(key.key, call.path, { method: call.method, json: call.json });
      expect(res.status, `${call.method} ${call.path}`).toBeLessThan(300);
    }
  });

  it('messages cannot list contacts; conversations:read cannot send; the scope holds under any case or trailing slash', async () => {
    const chat = await createKey({ name: 'chat ui', scopes: ['messages'] });
    expect((await as(chat.key, '/v1/contacts')).status).toBe(403);
    // Refused before the body is read: a broken body is not even looked at.
    const unread = await app.api('/v1/conversations', {
      method: 'POST',
      headers: { authorization: `Bearer ${chat.key}`, 'content-type': 'application/json' },
      body: '{"broken":',
    });
    expect(unread.status).toBe(403);
    expect((await as(chat.key, '/V1/CONTACTS/')).status).toBe(403);
    const reader = await createKey({ name: 'reader', scopes: ['conversations:read'] });
    const conv = (await (await app.api('/v1/conversations', { method: 'POST', json: {} })).json()) as Json;
    expect((await as(reader.key, `/v1/conversations/${conv.id}`)).status).toBe(200);
    expect((await as(reader.key, `/v1/Conversations/${conv.id}/`)).status).toBe(200);
    for (const [method, path] of [
      ['POST', `/v1/conversations/${conv.id}/send`],
      ['PATCH', `/v1/conversations/${conv.id}`],
      ['DELETE', `/v1/conversations/${conv.id}`],
      ['POST', `/v1/conversations/${conv.id}/handoff`],
      ['DELETE', `/V1/Conversations/${conv.id}`],
    ] as const) {
      const res = await as(reader.key, path, {
        method,
        json: method === 'DELETE' ? undefined : { text: 'hi' },
      });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(((await res.json()) as Json).scope).toBe('conversations:write');
    }
    // Still there.
    expect((await app.api(`/v1/conversations/${conv.id}`)).status).toBe(200);
  });

  it('a path no scope covers is 404 to a managed key; the bot configuration needs admin', async () => {
    const key = await createKey({ name: 'all but admin', scopes: SCOPES.filter((s) => s !== 'admin') });
    const res = await as(key.key, '/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(((await res.json()) as Json).code).toBe('GW_ERR_ROUTE_NOT_FOUND');
    const bot = await as(key.key, '/v1/bot');
    expect(bot.status).toBe(403);
    expect(((await bot.json()) as Json).scope).toBe('admin');
    const admin = await createKey({ name: 'bot admin', scopes: ['admin'] });
    expect((await as(admin.key, '/v1/bot')).status).toBe(200);
    expect((await as(admin.key, '/v1/bot/health')).status).toBe(200);
  });

  it('keys in API_KEYS keep every scope', async () => {
    for (const path of ['/v1/conversations', '/v1/contacts', '/v1/keys']) {
      expect((await app.api(path)).status, path).toBe(200);
    }
    expect((await app.api('/v1/sessions', { method: 'POST', json: {} })).status).toBe(201);
  });

  it('the key service authenticates raw keys for the console: principal with scopes, source', async () => {
    const key = await createKey({
      name: 'agent desk',
      scopes: ['console', 'conversations:read'],
      rateLimitPerMin: 30,
    });
    const principal = await app.deps.keys.authenticate(key.key);
    expect(principal).toMatchObject({
      keyId: key.id,
      name: 'agent desk',
      rateLimitPerMin: 30,
      source: 'managed',
    });
    expect([...(principal?.scopes ?? [])].sort()).toEqual(['console', 'conversations:read']);
    const env = await app.deps.keys.authenticate(API_KEY);
    expect(env?.source).toBe('env');
    expect(env?.scopes.has('console')).toBe(true);
    const tampered = `${key.key.slice(0, -1)}${key.key.endsWith('A') ? 'B' : 'A'}`;
    expect(await app.deps.keys.authenticate(tampered)).toBeUndefined();
    expect(await app.deps.keys.authenticate('sbk_nope')).toBeUndefined();
  });
});

describe("a key's own rate limit", () => {
  it('applies with RATE_LIMIT_PER_MIN=0: headers on every answer, 429 with Retry-After past it', async () => {
    const key = await createKey({ name: 'limited', scopes: ['conversations:read'], rateLimitPerMin: 3 });
    for (let i = 0; i < 3; i++) {
      const res = await as(key.key, '/v1/conversations');
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe('3');
      expect(res.headers.get('ratelimit-remaining')).toBe(String(2 - i));
    }
    const over = await as(key.key, '/v1/conversations');
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(over.headers.get('ratelimit-remaining')).toBe('0');
    expect(((await over.json()) as Json).code).toBe('GW_ERR_RATE_LIMITED');
    // Another key is counted apart; the env key has no limit here (RATE_LIMIT_PER_MIN=0).
    const other = await createKey({
      name: 'limited too',
      scopes: ['conversations:read'],
      rateLimitPerMin: 3,
    });
    expect((await as(other.key, '/v1/conversations')).status).toBe(200);
    const env = await app.api('/v1/conversations');
    expect(env.status).toBe(200);
    expect(env.headers.get('ratelimit-limit')).toBeNull();
  });

  it('0 is no limit for that key, even where RATE_LIMIT_PER_MIN is set', async () => {
    const limited = await startApiApp({ RATE_LIMIT_PER_MIN: '2' });
    try {
      const create = await limited.api('/v1/keys', {
        method: 'POST',
        json: { name: 'unlimited', scopes: ['conversations:read'], rateLimitPerMin: 0 },
      });
      const { key } = (await create.json()) as { key: string };
      for (let i = 0; i < 5; i++) {
        const res = await limited.api('/v1/conversations', { headers: { authorization: `Bearer ${key}` } });
        expect(res.status).toBe(200);
      }
      // The env key has RATE_LIMIT_PER_MIN: its create was one, this is two, then it is over.
      expect((await limited.api('/v1/keys')).status).toBe(200);
      expect((await limited.api('/v1/keys')).status).toBe(429);
    } finally {
      await limited.close();
    }
  });
});

describe('secrets', () => {
  it('no log line ever carries a key, created or presented', async () => {
    const key = await createKey({ name: 'logged?', scopes: ['messages'] });
    await as(key.key, '/v1/contacts');
    await as(key.key, '/v1/sessions', { method: 'POST', json: {} });
    await app.api(`/v1/keys/${key.id}`, { method: 'DELETE' });
    await as(key.key, '/v1/sessions', { method: 'POST', json: {} });
    const text = app.logs.text();
    expect(text).toContain(key.id);
    expect(text).not.toContain(key.key.slice(31));
    expect(text).not.toContain(API_KEY);
  });
});
