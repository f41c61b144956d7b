/**
 * The `/v1` API's failure paths over real HTTP: every error is problem+json with its stable code, is
 * logged once, leaks no key, and leaves the data as it was.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GatewayError, QueueFullError, StoreUnavailableError } from '../../src/core/errors.js';
import { API_KEY, type ApiApp, startApiApp } from '../helpers/api-app.js';

let app: ApiApp;

beforeEach(async () => {
  app = await startApiApp({ BODY_LIMIT_BYTES: '2048' });
});
afterEach(async () => {
  await app.close();
});

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  errors?: Array<{ field: string; message: string }>;
  [key: string]: unknown;
}

/** Asserts a problem+json answer with `status` and `code`, and returns its body. */
async function problem(res: Response, status: number, code: string): Promise<Problem> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as Problem;
  expect(body).toMatchObject({ status, code, type: `https://switchboard.dev/errors/${code}` });
  expect(body.title).toEqual(expect.any(String));
  expect(body.detail).toEqual(expect.any(String));
  expect(body.requestId).toBe(res.headers.get('x-request-id'));
  return body;
}

async function createConversation(): Promise<string> {
  const res = await app.api('/v1/conversations', { method: 'POST', json: { meta: { tier: 'gold' } } });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

function raw(path: string, init: RequestInit): Promise<Response> {
  return fetch(`${app.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${API_KEY}`, ...(init.headers as Record<string, string>) },
  });
}

describe('authentication', () => {
  it('refuses a request without a key with 401 and WWW-Authenticate', async () => {
    const res = await fetch(`${app.url}/v1/conversations`);
    await problem(res, 401, 'GW_ERR_UNAUTHORIZED');
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="switchboard"');
  });

  it('refuses a wrong key, another scheme and an empty bearer', async () => {
    for (const authorization of [
      'Bearer wrong-key-0123456789abcdef',
      `Basic ${API_KEY}`,
      'Bearer ',
      API_KEY,
    ]) {
      const res = await fetch(`${app.url}/v1/conversations`, { headers: { authorization } });
      await problem(res, 401, 'GW_ERR_UNAUTHORIZED');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="switchboard"/);
    }
  });

  it('checks the key before reading the body', async () => {
    const res = await fetch(`${app.url}/v1/conversations`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'x'.repeat(10_000),
    });
    await problem(res, 401, 'GW_ERR_UNAUTHORIZED');
  });

  it('accepts the scheme in any case', async () => {
    const res = await fetch(`${app.url}/v1/conversations`, {
      headers: { authorization: `bearer ${API_KEY}` },
    });
    expect(res.status).toBe(200);
  });

  it('never writes a key, right or wrong, into the logs', async () => {
    const wrong = 'sk_wrong_but_secret_value_42';
    await fetch(`${app.url}/v1/conversations?api_key=${wrong}`, {
      headers: { authorization: `Bearer ${wrong}` },
    });
    await app.api(`/v1/conversations?token=${API_KEY}`);
    await app.api('/v1/conversations', { method: 'POST', json: { meta: 'not an object' } });
    const text = app.logs.text();
    expect(text).not.toContain(wrong);
    expect(text).not.toContain(API_KEY);
    const refused = app.logs.lines.filter((l) => l.code === 'GW_ERR_UNAUTHORIZED');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: 40, reason: 'The API key is not valid' });
  });
});

describe('request bodies', () => {
  it('answers 400 GW_ERR_INVALID_JSON without echoing the body', async () => {
    const res = await app.api('/v1/conversations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"meta": {"secret-ish": tru',
    });
    const body = await problem(res, 400, 'GW_ERR_INVALID_JSON');
    expect(body.detail).not.toContain('secret-ish');
    expect(app.logs.text()).not.toContain('secret-ish');
  });

  it('answers 413 above BODY_LIMIT_BYTES', async () => {
    const res = await app.api('/v1/conversations', {
      method: 'POST',
      json: { meta: { blob: 'x'.repeat(3000) } },
    });
    const body = await problem(res, 413, 'GW_ERR_PAYLOAD_TOO_LARGE');
    expect(body.limit).toBe(2048);
  });

  it('answers 415 for a body that is not application/json', async () => {
    const cases: Array<Record<string, string>> = [
      { 'content-type': 'text/plain' },
      { 'content-type': 'application/x-www-form-urlencoded' },
      { 'content-type': 'application/merge-patch+json' },
    ];
    for (const headers of cases) {
      const res = await raw('/v1/conversations', { method: 'POST', headers, body: '{"channel":"api"}' });
      await problem(res, 415, 'GW_ERR_UNSUPPORTED_MEDIA_TYPE');
    }
    const id = await createConversation();
    const res = await raw(`/v1/conversations/${id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'text/plain' },
      body: 'status=closed',
    });
    await problem(res, 415, 'GW_ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers 415 for an unsupported charset', async () => {
    const res = await raw('/v1/conversations', {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=koi8-r' },
      body: '{}',
    });
    await problem(res, 415, 'GW_ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  it('treats a POST without a body as an empty object', async () => {
    const res = await raw('/v1/conversations', { method: 'POST' });
    expect(res.status).toBe(201);
  });
});

describe('validation', () => {
  it('names the field with the wrong type', async () => {
    const res = await app.api('/v1/conversations', { method: 'POST', json: { channel: 5, meta: [] } });
    const body = await problem(res, 400, 'GW_ERR_VALIDATION');
    expect(body.errors).toEqual([
      {
        field: 'channel',
        message: 'must be one of: whatsapp, sms, slack, email, webchat, api, whatsapp_cloud',
      },
      { field: 'meta', message: 'must be an object' },
    ]);
    expect(body.detail).toContain('channel');
    expect(body.detail).toContain('meta');
  });

  it('names nested and unknown fields', async () => {
    const res = await app.api('/v1/conversations', {
      method: 'POST',
      json: { participants: [{ role: 'robot' }], colour: 'blue', meta: { '': 1 } },
    });
    const body = await problem(res, 400, 'GW_ERR_VALIDATION');
    expect(body.errors).toEqual(
      expect.arrayContaining([
        { field: 'participants.0.role', message: 'must be one of: user, bot, agent' },
        { field: 'colour', message: 'is not a known field' },
        { field: 'meta', message: 'has a key that is empty or longer than 128 characters' },
      ]),
    );
    expect(body.errors).toHaveLength(3);
  });

  it('refuses a body that is not an object', async () => {
    const res = await app.api('/v1/conversations', { method: 'POST', json: [1, 2] });
    const body = await problem(res, 400, 'GW_ERR_VALIDATION');
    expect(body.errors).toEqual([{ field: '(body)', message: 'must be an object' }]);
  });

  it('refuses an unknown message type and a missing text', async () => {
    const id = await createConversation();
    let res = await app.api(`/v1/conversations/${id}/messages`, {
      method: 'POST',
      json: { type: 'robot', text: 'hi' },
    });
    let body = await problem(res, 400, 'GW_ERR_VALIDATION');
    expect(body.errors).toEqual([
      { field: 'type', message: 'must be one of: user, bot, context, activity, agent' },
    ]);
    res = await app.api(`/v1/conversations/${id}/messages`, { method: 'POST', json: { type: 'user' } });
    body = await problem(res, 400, 'GW_ERR_VALIDATION');
    expect(body.errors).toEqual([{ field: 'text', message: 'is required' }]);
    expect(body.detail).toBe('text: is required');
  });

  it('refuses an empty PATCH', async () => {
    const id = await createConversation();
    const res = await app.api(`/v1/conversations/${id}`, { method: 'PATCH', json: {} });
    const body = await problem(res, 400, 'GW_ERR_VALIDATION');
    expect(body.errors?.[0]?.message).toBe('must set at least one of: status, meta');
  });

  it.each([
    ['take=0', 'take'],
    ['take=201', 'take'],
    ['take=abc', 'take'],
    ['take=1.5', 'take'],
    ['take=1&take=2', 'take'],
    ['order=sideways', 'order'],
    ['status=pending', 'status'],
    ['channel=fax', 'channel'],
    ['limit=10', 'limit'],
    ['meta=gold', 'meta'],
    ['meta.tier=gold', 'meta.tier'],
  ])('refuses the list query %s naming %s', async (query, field) => {
    const res = await app.api(`/v1/conversations?${query}`);
    const body = await problem(res, 400, 'GW_ERR_VALIDATION');
    expect(body.errors?.map((e) => e.field)).toEqual([field]);
  });

  it('refuses a malformed cursor with GW_ERR_INVALID_CURSOR', async () => {
    const id = await createConversation();
    for (const cursor of ['not!base64', 'bm90IGpzb24', Buffer.from('{"s":-1}').toString('base64url')]) {
      await problem(
        await app.api(`/v1/conversations/${id}/messages?cursor=${encodeURIComponent(cursor)}`),
        400,
        'GW_ERR_INVALID_CURSOR',
      );
    }
    await problem(await app.api('/v1/conversations?cursor=%7B%7D'), 400, 'GW_ERR_INVALID_CURSOR');
  });

  it('refuses an unknown export format', async () => {
    const id = await createConversation();
    const body = await problem(
      await app.api(`/v1/conversations/${id}/export?format=csv`),
      400,
      'GW_ERR_VALIDATION',
    );
    expect(body.errors?.[0]?.field).toBe('format');
  });
});

describe('not found', () => {
  it('answers 404 GW_ERR_NOT_FOUND for unknown conversations and messages', async () => {
    const id = await createConversation();
    const ghost = 'conv_01J00000000000000000000000';
    const ghostMessage = 'msg_01J00000000000000000000000';
    const requests: Array<[string, RequestInit & { json?: unknown }]> = [
      [`/v1/conversations/${ghost}`, {}],
      [`/v1/conversations/${ghost}`, { method: 'PATCH', json: { status: 'closed' } }],
      [`/v1/conversations/${ghost}`, { method: 'DELETE' }],
      [`/v1/conversations/${ghost}/messages`, {}],
      [`/v1/conversations/${ghost}/messages`, { method: 'POST', json: { type: 'user', text: 'hi' } }],
      [`/v1/conversations/${ghost}/export`, {}],
      [`/v1/conversations/not-an-id`, {}],
      [`/v1/conversations/${id}/messages/${ghostMessage}`, {}],
      [`/v1/conversations/${id}/messages/${ghostMessage}`, { method: 'PATCH', json: { text: 'x' } }],
      [`/v1/conversations/${id}/messages/${ghostMessage}`, { method: 'DELETE' }],
      [`/v1/conversations/${id}/messages/garbage`, {}],
    ];
    for (const [path, init] of requests) await problem(await app.api(path, init), 404, 'GW_ERR_NOT_FOUND');
  });

  it('answers 404 GW_ERR_ROUTE_NOT_FOUND for unknown routes, without the query', async () => {
    const body = await problem(await app.api('/v1/nothing-here?x=1'), 404, 'GW_ERR_ROUTE_NOT_FOUND');
    expect(body.detail).toBe('No route for GET /v1/nothing-here');
    await problem(await fetch(`${app.url}/nope`), 404, 'GW_ERR_ROUTE_NOT_FOUND');
  });
});

describe('failed requests change nothing', () => {
  it('leaves conversations, messages and events as they were', async () => {
    const id = await createConversation();
    const posted = await app.api(`/v1/conversations/${id}/messages`, {
      method: 'POST',
      json: { type: 'user', text: 'hello', meta: { a: 1 } },
    });
    const { id: mid } = (await posted.json()) as { id: string };
    const snapshot = async () => ({
      conversations: await (await app.api('/v1/conversations')).json(),
      messages: await (await app.api(`/v1/conversations/${id}/messages`)).json(),
    });
    const before = await snapshot();
    const eventCount = app.events.length;

    const failing: Array<[string, RequestInit & { json?: unknown }]> = [
      [`/v1/conversations/${id}`, { method: 'PATCH', json: { status: 'closed', meta: { b: 2 }, extra: 1 } }],
      [`/v1/conversations/${id}`, { method: 'PATCH', json: { status: 'archived', meta: { b: 2 } } }],
      [`/v1/conversations/${id}/messages`, { method: 'POST', json: { type: 'user', text: 42 } }],
      [`/v1/conversations/${id}/messages/${mid}`, { method: 'PATCH', json: { text: 'new', meta: 'x' } }],
      [
        `/v1/conversations`,
        { method: 'POST', json: { channel: 'api', participants: [{ role: 'user', id: 7 }] } },
      ],
      [`/v1/conversations/${id}`, { method: 'DELETE', headers: { authorization: 'Bearer nope' } }],
    ];
    for (const [path, init] of failing) {
      const res = await app.api(path, init);
      expect(res.status).toBeGreaterThanOrEqual(400);
    }
    expect(await snapshot()).toEqual(before);
    expect(app.events).toHaveLength(eventCount);
  });
});

describe('server-side failures', () => {
  it('answers 503 GW_ERR_STORE_UNAVAILABLE when the store is down', async () => {
    vi.spyOn(app.store, 'listConversations').mockRejectedValueOnce(
      new StoreUnavailableError(new Error('ECONNREFUSED')),
    );
    const res = await app.api('/v1/conversations');
    const body = await problem(res, 503, 'GW_ERR_STORE_UNAVAILABLE');
    expect(res.headers.get('retry-after')).toBe('1');
    expect(body.retryAfter).toBe(1);
    const logged = app.logs.lines.filter((l) => l.code === 'GW_ERR_STORE_UNAVAILABLE');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 50, status: 503 });
  });

  it('sets Retry-After from the error', async () => {
    vi.spyOn(app.store, 'createConversation').mockRejectedValueOnce(new QueueFullError(7));
    const res = await app.api('/v1/conversations', { method: 'POST', json: {} });
    const body = await problem(res, 503, 'GW_ERR_QUEUE_FULL');
    expect(res.headers.get('retry-after')).toBe('7');
    expect(body.retryAfter).toBe(7);
  });

  it('says Retry-After on a 503 whose cause named no time', async () => {
    vi.spyOn(app.store, 'getConversation').mockRejectedValueOnce(
      new GatewayError('GW_ERR_STORE_UNAVAILABLE', 'The storage backend is failing over'),
    );
    const res = await app.api('/v1/conversations/conv_01J00000000000000000000000');
    const body = await problem(res, 503, 'GW_ERR_STORE_UNAVAILABLE');
    expect(res.headers.get('retry-after')).toBe('1');
    expect(body.retryAfter).toBe(1);
  });

  it('answers a bare 500 for anything unexpected and logs it once with its stack', async () => {
    vi.spyOn(app.store, 'getConversation').mockRejectedValueOnce(new TypeError('boom: internal detail'));
    const res = await app.api('/v1/conversations/conv_01J00000000000000000000000');
    const body = await problem(res, 500, 'GW_ERR_INTERNAL');
    expect(body.detail).toBe('An unexpected error occurred');
    expect(JSON.stringify(body)).not.toContain('boom');
    const logged = app.logs.lines.filter((l) => l.code === 'GW_ERR_INTERNAL');
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 50, reqId: body.requestId });
    expect((logged[0]!.err as { stack: string }).stack).toContain('boom: internal detail');
  });
});

describe('request ids and the access log', () => {
  it('echoes a safe X-Request-Id and uses it in problems and logs', async () => {
    const res = await app.api('/v1/conversations/not-an-id', {
      headers: { 'x-request-id': 'abc.DEF_123-x' },
    });
    expect(res.headers.get('x-request-id')).toBe('abc.DEF_123-x');
    expect(((await res.json()) as Problem).requestId).toBe('abc.DEF_123-x');
    await vi.waitFor(() => {
      const lines = app.logs.lines.filter((l) => l.reqId === 'abc.DEF_123-x');
      expect(lines.map((l) => l.msg)).toEqual(['request rejected', 'request']);
    });
  });

  it('replaces an unsafe or long X-Request-Id with a generated one', async () => {
    for (const unsafe of ['has space', 'a'.repeat(65), 'x"}{', 'semi;colon', encodeURI('é')]) {
      const res = await app.api('/v1/conversations', { headers: { 'x-request-id': unsafe } });
      const id = res.headers.get('x-request-id');
      expect(id).not.toBe(unsafe);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
    }
    const generated = (await fetch(`${app.url}/healthz`)).headers.get('x-request-id');
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('logs one line per request: method, path without query, status, duration', async () => {
    const res = await app.api('/v1/conversations?take=5&meta[secret]=shh', {
      headers: { 'x-request-id': 'log-1' },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    await vi.waitFor(() =>
      expect(app.logs.lines.some((l) => l.reqId === 'log-1' && l.msg === 'request')).toBe(true),
    );
    const lines = app.logs.lines.filter((l) => l.reqId === 'log-1');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      method: 'GET',
      path: '/v1/conversations',
      status: 200,
      ms: expect.any(Number),
    });
    expect(app.logs.text()).not.toContain('shh');
    expect(app.logs.text()).not.toMatch(/authorization/i);
  });
});
