/**
 * Hostile and unusual `/v1` inputs answered as the client's mistakes they are: broken percent-encoding
 * in a path, bodies nested past the depth limit, a `null` body, filter keys that name the prototype.
 * Each is a 4xx problem logged below error level, and none widens a list or changes anything.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/http/json-depth.js';
import { API_KEY, type ApiApp, startApiApp } from '../helpers/api-app.js';

let app: ApiApp;

beforeEach(async () => {
  app = await startApiApp();
});
afterEach(async () => {
  await app.close();
});

interface Problem {
  status: number;
  code: string;
  detail: string;
  errors?: Array<{ field: string; message: string }>;
}

async function problem(res: Response, status: number, code: string): Promise<Problem> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const body = (await res.json()) as Problem;
  expect(body).toMatchObject({ status, code });
  return body;
}

/** No line at error level or above (a client's mistake is not our failure). */
function expectNoErrorLogs(): void {
  expect(app.logs.lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
}

function postRaw(path: string, body: string): Promise<Response> {
  return fetch(`${app.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
    body,
  });
}

describe('paths with broken percent-encoding', () => {
  it.each([
    '/v1/conversations/%E0%A4%A',
    '/v1/conversations/%E0%A4%A/messages',
    '/v1/conversations/%',
    '/v1/conversations/conv_x/messages/%C0',
  ])('answers 400 GW_ERR_BAD_REQUEST for %s', async (path) => {
    const body = await problem(await app.api(path), 400, 'GW_ERR_BAD_REQUEST');
    expect(body.detail).toBe('The request path has invalid percent-encoding');
    expectNoErrorLogs();
  });

  it('answers 404 for a broken path outside any route, and stays healthy', async () => {
    for (const path of ['/%', '/v1/%', '/%E0%A4%A']) {
      expect((await fetch(`${app.url}${path}`)).status).toBeLessThan(500);
    }
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
    expectNoErrorLogs();
  });
});

describe('deeply nested bodies', () => {
  it('refuses objects nested 8,000 levels deep with a validation problem, before parsing', async () => {
    const deep = `${'{"meta":'.repeat(8000)}1${'}'.repeat(8000)}`;
    const body = await problem(await postRaw('/v1/conversations', deep), 400, 'GW_ERR_VALIDATION');
    expect(body.errors).toEqual([
      {
        field: '(body)',
        message: `must not nest objects and arrays more than ${MAX_JSON_DEPTH} levels deep`,
      },
    ]);
    expectNoErrorLogs();
  });

  it('refuses arrays nested past the limit, and accepts exactly the limit', async () => {
    const nested = (depth: number) => `{"meta":{"x":${'['.repeat(depth - 2)}${']'.repeat(depth - 2)}}}`;
    await problem(await postRaw('/v1/conversations', nested(MAX_JSON_DEPTH + 1)), 400, 'GW_ERR_VALIDATION');
    expect((await postRaw('/v1/conversations', nested(MAX_JSON_DEPTH))).status).toBe(201);
  });

  it('checks bodies in UTF-16 too, and refuses a UTF charset it cannot read with 415', async () => {
    const post = (charset: string, text: string) =>
      fetch(`${app.url}/v1/conversations`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${API_KEY}`,
          'content-type': `application/json; charset=${charset}`,
        },
        body: Buffer.from(text, 'utf16le'),
      });
    expect((await post('utf-16le', '{"meta":{"a":"é"}}')).status).toBe(201);
    const deep = `{"meta":${'['.repeat(100)}${']'.repeat(100)}}`;
    await problem(await post('utf-16le', deep), 400, 'GW_ERR_VALIDATION');
    await problem(await post('utf-32', '{}'), 415, 'GW_ERR_UNSUPPORTED_MEDIA_TYPE');
    expectNoErrorLogs();
  });

  it('does not count brackets inside strings', async () => {
    const text = `${'{['.repeat(500)}\\"${'['.repeat(500)}`;
    const res = await postRaw('/v1/conversations', JSON.stringify({ meta: { text } }));
    expect(res.status).toBe(201);
  });
});

describe('bodies that are JSON but not an object', () => {
  it.each(['null', '5', '"text"', 'true', ' null '])('answers %s with GW_ERR_VALIDATION', async (json) => {
    const before = (await (await app.api('/v1/conversations')).json()) as { items: unknown[] };
    const body = await problem(await postRaw('/v1/conversations', json), 400, 'GW_ERR_VALIDATION');
    expect(body.errors).toEqual([{ field: '(body)', message: 'must be an object' }]);
    const after = (await (await app.api('/v1/conversations')).json()) as { items: unknown[] };
    expect(after.items).toHaveLength(before.items.length);
  });

  it('still answers GW_ERR_INVALID_JSON for text that is not JSON', async () => {
    await problem(await postRaw('/v1/conversations', 'nul'), 400, 'GW_ERR_INVALID_JSON');
  });
});

describe('validation messages', () => {
  it('reads like a person wrote it: no "at least 1 characters"', async () => {
    const res = await app.api('/v1/conversations', {
      method: 'POST',
      json: { participants: [{ role: 'user', id: '' }] },
    });
    const body = await problem(res, 400, 'GW_ERR_VALIDATION');
    expect(body.errors).toEqual([{ field: 'participants.0.id', message: 'must not be empty' }]);
    expect(body.detail).not.toMatch(/\b1 characters\b/);
  });
});

describe('filters that name the prototype', () => {
  it.each([
    'meta[__proto__]=x',
    'meta[constructor]=x',
    'meta[prototype]=x',
    '__proto__=x',
    'constructor=x',
    'meta[tier]=gold&meta[__proto__]=x',
    '__proto__[tier]=gold',
  ])('refuses %s with 400 instead of listing everything', async (query) => {
    await app.api('/v1/conversations', { method: 'POST', json: { meta: { tier: 'gold' } } });
    const conv = (await (await app.api('/v1/conversations', { method: 'POST', json: {} })).json()) as {
      id: string;
    };
    for (const path of ['/v1/conversations', `/v1/conversations/${conv.id}/messages`]) {
      const body = await problem(await app.api(`${path}?${query}`), 400, 'GW_ERR_VALIDATION');
      expect(body.errors?.[0]?.message).toMatch(/reserved key/);
    }
  });

  it('keeps filtering by an ordinary key', async () => {
    await app.api('/v1/conversations', { method: 'POST', json: { meta: { tier: 'gold' } } });
    await app.api('/v1/conversations', { method: 'POST', json: { meta: { tier: 'silver' } } });
    const res = await app.api('/v1/conversations?meta[tier]=gold');
    const { items } = (await res.json()) as { items: Array<{ meta: { tier: string } }> };
    expect(items.map((c) => c.meta.tier)).toEqual(['gold']);
  });
});
