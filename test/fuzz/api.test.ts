/**
 * Fuzzing the HTTP surface a client reaches without any provider secret: `/v1` paths, query filters,
 * JSON bodies and headers, and the site's other routes. Whatever is sent, the answer is below 500,
 * nothing is logged at error level, and the gateway is healthy afterwards.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';
import {
  describeRequest,
  errorLines,
  expectHealthy,
  fuzzParams,
  type RawRequest,
  rawRequest,
} from './harness.js';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({ BODY_LIMIT_BYTES: '65536' });
});
afterAll(async () => {
  await gw?.stop();
});

const HEX = '0123456789ABCDEFabcdef';

/** Bytes that may stand in a request target as they are (RFC 3986 pchar, plus `%` bare or broken). */
const pathChar = fc.oneof(
  fc.constantFrom(..."abcxyzAZ09-._~!$&'()*+,;=:@".split('')),
  fc.constant('%'),
  fc.tuple(fc.constantFrom(...HEX.split('')), fc.constantFrom(...HEX.split(''))).map(([a, b]) => `%${a}${b}`),
  fc.constantFrom('%E0%A4%A', '%C0', '%FF', '%00', '%2F', '%2e%2e', '%u0041', '%%', '%E2%82'),
);
const segment = fc.oneof(
  fc.constantFrom(
    'v1',
    'conversations',
    'messages',
    'sessions',
    'send',
    'export',
    'webhooks',
    'deliveries',
    'webchat',
    'healthz',
    'readyz',
    'metrics',
    'conv_01J00000000000000000000000',
    'msg_01J00000000000000000000000',
    '..',
    '.',
    '',
    '__proto__',
    'constructor',
  ),
  fc.array(pathChar, { maxLength: 12 }).map((cs) => cs.join('')),
);
const path = fc
  .tuple(fc.boolean(), fc.array(segment, { minLength: 1, maxLength: 5 }))
  .map(([api, parts]) => `/${[...(api ? ['v1'] : []), ...parts].join('/')}`);

const queryKey = fc.oneof(
  fc.constantFrom('take', 'cursor', 'order', 'channel', 'status', 'type', 'format', 'since', 'wait', 'meta'),
  fc
    .tuple(fc.constantFrom('meta', '__proto__', 'x'), fc.array(pathChar, { maxLength: 8 }))
    .map(([head, key]) => `${head}[${key.join('')}]`),
  fc.constantFrom(
    'meta[__proto__]',
    'meta[constructor]',
    'meta[prototype]',
    '__proto__',
    'meta[]',
    'meta[a][b]',
  ),
  fc.array(pathChar, { maxLength: 8 }).map((cs) => cs.join('')),
);
const queryValue = fc.oneof(
  fc.constantFrom('0', '1', '50', '201', '-1', '1e3', 'asc', 'desc', 'sms', 'open', 'jsonl', 'text', ''),
  fc.array(pathChar, { maxLength: 16 }).map((cs) => cs.join('')),
);
const query = fc
  .array(fc.tuple(queryKey, queryValue), { maxLength: 5 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`));

/** JSON bodies: values of every shape, deep nesting, prototype keys, and text that is not JSON. */
const jsonBody = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        channel: fc.oneof(fc.constantFrom('api', 'sms', 'webchat'), fc.jsonValue({ maxDepth: 1 })),
        participants: fc.array(
          fc.record({
            role: fc.constantFrom('user', 'bot', 'agent', 'robot'),
            id: fc.string(),
            name: fc.string(),
          }),
          { maxLength: 3 },
        ),
        meta: fc.dictionary(
          fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor')),
          fc.jsonValue({ maxDepth: 2 }),
        ),
        status: fc.constantFrom('open', 'closed', 'handoff', 'archived'),
        type: fc.constantFrom('user', 'bot', 'context', 'activity', 'x'),
        text: fc.string({ unit: 'grapheme', maxLength: 200 }),
        conversationId: fc.constantFrom('conv_01J00000000000000000000000', 'x'),
        url: fc.constantFrom('http://127.0.0.1/hook', 'https://example.com/x', 'ftp://x', 'http://[::1]/'),
        events: fc.array(fc.constantFrom('message.created', 'session.started', '*', 'nope'), {
          maxLength: 3,
        }),
        wait: fc.integer({ min: -5, max: 5 }),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
  fc.integer({ min: 1, max: 200 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
  fc.integer({ min: 1, max: 3000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
  fc.constantFrom(
    'null',
    'true',
    '5',
    '"x"',
    '{"__proto__":{"x":1}}',
    '{"constructor":{"prototype":{}}}',
    '',
  ),
  fc.string({ unit: 'binary', maxLength: 200 }),
);

const headerValue = fc
  .array(fc.integer({ min: 0x20, max: 0x7e }), { maxLength: 40 })
  .map((cs) => String.fromCharCode(...cs).trim());
const headers = fc.record(
  {
    authorization: fc.oneof(
      fc.constant(`Bearer ${API_KEY}`),
      fc.constant(`bearer   ${API_KEY}  `),
      fc.constantFrom('Bearer', 'Bearer ', 'Basic abc', `Bearer ${API_KEY}x`),
      headerValue,
    ),
    'content-type': fc.oneof(
      fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'application/json; charset=utf-16',
        'application/json; charset=koi8-r',
        'application/json; charset=nope',
        'application/merge-patch+json',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
      ),
      headerValue,
    ),
    'content-encoding': fc.constantFrom('identity', 'gzip', 'deflate', 'br', 'x'),
    'x-request-id': headerValue,
    accept: fc.oneof(fc.constantFrom('application/json', 'text/html', '*/*'), headerValue),
    'x-forwarded-for': headerValue,
    expect: fc.constantFrom('100-continue', '100-Continue', 'nonsense'),
    origin: headerValue,
  },
  { requiredKeys: [] },
);

const apiRequest: fc.Arbitrary<RawRequest> = fc
  .record({
    method: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE', 'PUT', 'OPTIONS', 'HEAD'),
    path: fc.tuple(path, query).map(([p, q]) => p + q),
    headers,
    body: fc.option(jsonBody, { nil: undefined }),
  })
  .map((r) => ({ ...r, headers: { ...r.headers } }));

/** Answers seen per status: the fuzzing must reach the routes, not only the key check. */
const statuses = new Map<number, number>();

async function expectNo5xx(req: RawRequest): Promise<void> {
  const res = await rawRequest(gw.url, req);
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  if (res.status >= 500)
    throw new Error(`${res.status} for ${describeRequest(req)}: ${res.body.slice(0, 300)}`);
}

describe('fuzz: HTTP API', () => {
  it('answers any path, query, body and header below 500', async () => {
    statuses.clear();
    await fc.assert(fc.asyncProperty(apiRequest, expectNo5xx), fuzzParams(0x5b0a7d));
    expect(errorLines(gw.logs)).toEqual([]);
    expect([...statuses.keys()]).toEqual(expect.arrayContaining([200, 400, 401, 404]));
  });

  it('answers authenticated JSON requests to the real routes below 500', async () => {
    // A conversation and a message to aim at, so the routes' own logic runs past the 404s.
    const conv = (await (await gw.api('/v1/conversations', { method: 'POST', json: {} })).json()) as {
      id: string;
    };
    const msg = (await (
      await gw.api(`/v1/conversations/${conv.id}/messages`, {
        method: 'POST',
        json: { type: 'user', text: 'hi' },
      })
    ).json()) as { id: string };
    const target = fc.constantFrom(
      '/v1/conversations',
      `/v1/conversations/${conv.id}`,
      `/v1/conversations/${conv.id}/messages`,
      `/v1/conversations/${conv.id}/messages/${msg.id}`,
      `/v1/conversations/${conv.id}/export`,
      `/v1/conversations/${conv.id}/send`,
      '/v1/sessions',
      '/v1/messages',
      '/v1/webhooks',
      '/v1/webhooks/deliveries',
    );
    const arb = fc
      .record({
        method: fc.constantFrom('GET', 'POST', 'PATCH', 'DELETE'),
        path: fc.tuple(target, query).map(([p, q]) => p + q),
        body: fc.option(jsonBody, { nil: undefined }),
      })
      .map(
        (r): RawRequest => ({
          ...r,
          headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
        }),
      );
    statuses.clear();
    await fc.assert(fc.asyncProperty(arb, expectNo5xx), fuzzParams(0x1d3a));
    expect(errorLines(gw.logs)).toEqual([]);
    expect([...statuses.keys()]).toEqual(expect.arrayContaining([200, 201, 400, 404]));
  });

  it('is healthy afterwards', async () => {
    await expectHealthy(gw.url, API_KEY);
  });
});
