/**
 * The OpenAPI document (`GET /v1/openapi.json`, SPEC §10) against the gateway itself: every `/v1`
 * route the Express app serves is documented and every documented route is served (same method and
 * path template), every schema compiles as JSON Schema 2020-12, every error code a route can give is
 * in the registry, and real answers of the main flows validate against the document.
 */
import type { Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { ERRORS } from '../../src/core/errors.js';
import { OPERATIONS, openApiPath } from '../../src/http/api/openapi.js';
import { SCOPE_RULES, scopeFor } from '../../src/keys/index.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { type DocumentChecker, documentChecker } from '../helpers/openapi.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

type Json = Record<string, unknown>;

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  rawPath?: string | RegExp | unknown[];
  handle?: { stack?: Layer[] };
}

/** Every `METHOD /path` the app routes, mounts included (`/v1` + `/webhooks` + `/:id`). */
function servedRoutes(app: Express): string[] {
  const out: string[] = [];
  const walk = (stack: Layer[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const path of paths)
          for (const [method, on] of Object.entries(layer.route.methods))
            if (on && method !== '_all') out.push(`${method.toUpperCase()} ${join(prefix, path)}`);
      } else if (layer.handle?.stack) {
        const mount = typeof layer.rawPath === 'string' ? layer.rawPath : '';
        walk(layer.handle.stack, join(prefix, mount));
      }
    }
  };
  const router = (app as unknown as { router: { stack: Layer[] } }).router;
  walk(router.stack, '');
  return out;
}

function join(prefix: string, path: string): string {
  const joined = `${prefix}/${path}`.replace(/\/+/g, '/');
  return joined.length > 1 ? joined.replace(/\/$/, '') : joined;
}

let gw: TestGateway;
let receiver: WebhookReceiver;
let doc: DocumentChecker;

beforeAll(async () => {
  receiver = await WebhookReceiver.start();
  gw = await startGateway({
    WEBHOOKS_ALLOW_PRIVATE: 'true',
    // The email channel mounts `GET /v1/attachments/:id`; enabled here so the walk sees it.
    EMAIL_FROM: 'Support <support@help.example.com>',
    SMTP_URL: 'smtp://127.0.0.1:9',
    MAILGUN_SIGNING_KEY: 'key-0123456789abcdef0123456789abcdef',
    EMAIL_BOUNCE_SECRET: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  });
  const res = await fetch(`${gw.url}/v1/openapi.json`);
  expect(res.status).toBe(200);
  doc = documentChecker((await res.json()) as Json);
});
afterAll(async () => {
  await gw?.stop();
  await receiver?.close();
});

describe('GET /v1/openapi.json', () => {
  it('is OpenAPI 3.1, needs no key, and answers with a request id', async () => {
    const res = await fetch(`${gw.url}/v1/openapi.json`);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const body = (await res.json()) as Json;
    expect(body.openapi).toMatch(/^3\.1\./);
    expect(body).toEqual(doc.document);
  });

  it('documents every /v1 route served, and serves every route documented', () => {
    const app = createApp(gw.gateway.deps);
    const served = new Set(servedRoutes(app).filter((r) => r.split(' ')[1]?.startsWith('/v1/')));
    const documented = new Set<string>();
    for (const [path, item] of Object.entries(doc.document.paths as Json))
      for (const method of Object.keys(item as Json)) documented.add(`${method.toUpperCase()} ${path}`);
    const servedAsTemplates = new Set([...served].map((r) => openApiPath(r)));
    expect(
      [...servedAsTemplates].filter((r) => !documented.has(r)),
      'served but not documented',
    ).toEqual([]);
    expect(
      [...documented].filter((r) => !servedAsTemplates.has(r)),
      'documented but not served',
    ).toEqual([]);
    // The path table and the document say the same.
    expect(OPERATIONS.map((op) => `${op.method.toUpperCase()} ${openApiPath(op.path)}`).sort()).toEqual(
      [...documented].sort(),
    );
  });

  it('gives every /v1 route served a scope, the one its operation shows (src/keys/scopes.ts)', () => {
    const app = createApp(gw.gateway.deps);
    const served = servedRoutes(app).filter((r) => r.split(' ')[1]?.startsWith('/v1/'));
    const paths = doc.document.paths as Record<string, Record<string, Json>>;
    const unscoped: string[] = [];
    for (const route of served) {
      const [method, path] = route.split(' ') as [string, string];
      const op = paths[openApiPath(path)]?.[method.toLowerCase()];
      if (path === '/v1/openapi.json') {
        expect(op?.security).toEqual([]);
        continue;
      }
      const scope = scopeFor(method, path);
      if (scope === undefined) {
        unscoped.push(route);
        continue;
      }
      expect(op?.security, route).toEqual([{ bearer: [scope] }]);
      expect(op?.['x-scope'], route).toBe(scope);
    }
    expect(unscoped, 'served without a scope rule').toEqual([]);
    // Every rule covers a route served: none is left over from a route that is gone.
    const idle = SCOPE_RULES.filter(
      (rule) =>
        !served.some((r) => {
          const [method, path] = r.split(' ') as [string, string];
          return (
            (rule.method === '*' || rule.method === method) &&
            (path === rule.path || path.startsWith(`${rule.path}/`))
          );
        }),
    ).map((rule) => `${rule.method} ${rule.path}`);
    expect(idle).toEqual([]);
  });

  it('names only registry codes, and every code a /v1 answer can carry', () => {
    const text = JSON.stringify(doc.document);
    const named = new Set([...text.matchAll(/GW_ERR_[A-Z_]+/g)].map((m) => m[0]));
    for (const code of named) expect(Object.keys(ERRORS)).toContain(code);
    // Answered outside /v1 only: provider webhook signatures, the app's fallback 404, console writes.
    const outside = new Set(['GW_ERR_SIGNATURE_INVALID', 'GW_ERR_ROUTE_NOT_FOUND', 'GW_ERR_CSRF_REFUSED']);
    const undocumented = Object.keys(ERRORS).filter((c) => !outside.has(c) && !named.has(c));
    expect(undocumented).toEqual([]);
  });

  it('resolves every $ref, and each schema compiles as JSON Schema 2020-12', () => {
    const refs: string[] = [];
    const collect = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(collect);
      else if (node && typeof node === 'object')
        for (const [key, value] of Object.entries(node)) {
          if (key === '$ref' && typeof value === 'string') refs.push(value);
          else collect(value);
        }
    };
    collect(doc.document);
    expect(refs.length).toBeGreaterThan(100);
    for (const ref of new Set(refs)) {
      expect(ref).toMatch(/^#\/components\//);
      let node: unknown = doc.document;
      for (const part of ref.slice(2).split('/')) node = (node as Json | undefined)?.[part];
      expect(node, ref).toBeDefined();
    }
    for (const name of Object.keys((doc.document.components as { schemas: Json }).schemas))
      expect(() => doc.schema(`/components/schemas/${name}`), name).not.toThrow();
  });

  it('documents pagination and the headers of every answer', () => {
    const list = ((doc.document.paths as Json)['/v1/conversations'] as Json).get as {
      parameters: Array<{ name: string; in: string }>;
      responses: Record<string, Json>;
    };
    expect(list.parameters.map((p) => p.name)).toEqual(
      expect.arrayContaining(['cursor', 'take', 'order', 'meta', 'X-Request-Id']),
    );
    expect(Object.keys(list.responses['200']?.headers as Json)).toContain('X-Request-Id');
    const create = ((doc.document.paths as Json)['/v1/conversations'] as Json).post as {
      responses: Record<string, Json>;
    };
    expect(Object.keys(create.responses['201']?.headers as Json)).toContain('Location');
    const responses = (doc.document.components as { responses: Record<string, Json> }).responses;
    expect(Object.keys(responses.Error503?.headers as Json)).toContain('Retry-After');
    expect(Object.keys(responses.Error429?.headers as Json)).toContain('Retry-After');
  });
});

describe('real answers match the document', () => {
  const call = async (method: string, path: string, json?: unknown): Promise<Json> => {
    const res = await gw.api(path, { method, ...(json !== undefined ? { json } : {}) });
    return (await doc.check(method, path, res)) as Json;
  };

  it('conversations, messages, participants, handoff and send', async () => {
    const conv = await call('POST', '/v1/conversations', {
      participants: [{ role: 'user', name: 'Ann', address: 'ann@example.com' }],
      meta: { plan: 'gold' },
    });
    const id = conv.id as string;
    await call('GET', '/v1/conversations?take=2&order=desc&meta[plan]=gold');
    await call('GET', `/v1/conversations/${id}`);
    await call('PATCH', `/v1/conversations/${id}`, { meta: { tier: 1 } });
    const msg = await call('POST', `/v1/conversations/${id}/messages`, {
      type: 'user',
      text: 'mail me at ann@example.com',
    });
    await call('GET', `/v1/conversations/${id}/messages?type=user`);
    await call('GET', `/v1/conversations/${id}/messages/${msg.id}`);
    await call('PATCH', `/v1/conversations/${id}/messages/${msg.id}`, { text: 'call +14155550100' });
    await call('GET', `/v1/conversations/${id}/participants`);
    const agent = await call('POST', `/v1/conversations/${id}/participants`, { role: 'agent', name: 'Bo' });
    await call('POST', `/v1/conversations/${id}/handoff`, { reason: 'vip' });
    await call('POST', `/v1/conversations/${id}/handoff/assign`, { agent: { id: agent.id, name: 'Bo' } });
    await call('POST', `/v1/conversations/${id}/typing`, { from: { id: agent.id } });
    await call('POST', `/v1/conversations/${id}/send`, { text: 'Hello from Bo', from: { id: agent.id } });
    await call('DELETE', `/v1/conversations/${id}/handoff`);
    await call('DELETE', `/v1/conversations/${id}/handoff`); // 409: not in handoff
    await call('POST', `/v1/conversations/${id}/send`, { text: 'Back to the bot' });
    const exported = await gw.api(`/v1/conversations/${id}/export?format=text`);
    expect(await doc.check('GET', `/v1/conversations/${id}/export`, exported)).toContain('Hello from Bo');
    await call('DELETE', `/v1/conversations/${id}/participants/${agent.id}`);
    await call('DELETE', `/v1/conversations/${id}/messages/${msg.id}`);
    await call('DELETE', `/v1/conversations/${id}`);
    await call('GET', `/v1/conversations/${id}`); // 404
  });

  it('sessions and the chatbot message, waited for and queued', async () => {
    const session = await call('POST', '/v1/sessions', { user: { name: 'Cy' } });
    const done = await call('POST', '/v1/messages', {
      conversationId: session.conversationId,
      text: 'hello',
      clientMessageId: 'c-1',
      wait: 5,
    });
    expect(done.message).toBeDefined();
    await call('POST', '/v1/messages', { conversationId: session.conversationId, text: 'later', wait: 0 });
  });

  it('contacts', async () => {
    const a = await call('POST', '/v1/conversations', {
      participants: [{ role: 'user', address: '+14155550111' }],
      channel: 'sms',
    });
    const b = await call('POST', '/v1/conversations', {
      participants: [{ role: 'user', address: 'dee@example.com' }],
      channel: 'email',
    });
    const contactA = (a.participants as Json[])[0]?.contactId as string;
    const contactB = (b.participants as Json[])[0]?.contactId as string;
    await call('GET', '/v1/contacts?take=5');
    await call('GET', '/v1/contacts/suggestions');
    await call('GET', `/v1/contacts/${contactA}`);
    await call('PATCH', `/v1/contacts/${contactA}`, { name: 'Dee' });
    await call('GET', `/v1/contacts/${contactA}/conversations`);
    await call('GET', `/v1/contacts/${contactA}/timeline`);
    await call('POST', `/v1/contacts/${contactA}/merge`, { from: contactB, reason: 'same person' });
    await call('POST', `/v1/contacts/${contactA}/merge`, { from: contactA }); // 422
    await call('POST', `/v1/contacts/${contactA}/unmerge`, { channel: 'email', address: 'dee@example.com' });
    await call('DELETE', `/v1/contacts/${contactA}`);
  });

  it('webhooks, their deliveries and replays', async () => {
    const hook = await call('POST', '/v1/webhooks', {
      url: `${receiver.url}/hook`,
      events: ['message.created'],
    });
    const id = hook.id as string;
    await call('GET', '/v1/webhooks');
    await call('GET', `/v1/webhooks/${id}`);
    await call('PATCH', `/v1/webhooks/${id}`, { description: 'crm' });
    await call('PATCH', `/v1/webhooks/${id}`, { rotateSecret: true });
    const ping = await call('POST', `/v1/webhooks/${id}/test`);
    await call('GET', `/v1/webhooks/${id}/deliveries?status=pending`);
    await call('GET', `/v1/webhooks/${id}/deliveries/${ping.id}`);
    await call('POST', `/v1/webhooks/${id}/deliveries/${ping.id}/replay?again=true`);
    await call('POST', `/v1/webhooks/${id}/replay?since=2020-01-01T00:00:00Z`);
    await call('DELETE', `/v1/webhooks/${id}`);
  });

  it('API keys, and a managed key refused a scope (403)', async () => {
    const made = await call('POST', '/v1/keys', {
      name: 'documented',
      scopes: ['messages'],
      rateLimitPerMin: 60,
    });
    const id = made.id as string;
    await call('GET', '/v1/keys?take=1');
    await call('GET', `/v1/keys/${id}`);
    await call('POST', '/v1/keys', { name: 'x', scopes: ['everything'] }); // 400
    const refused = await fetch(`${gw.url}/v1/contacts`, {
      headers: { authorization: `Bearer ${made.key}` },
    });
    expect((await doc.check('GET', '/v1/contacts', refused)) as Json).toMatchObject({
      code: 'GW_ERR_INSUFFICIENT_SCOPE',
      scope: 'contacts',
    });
    await call('DELETE', `/v1/keys/${id}`);
    await call('DELETE', `/v1/keys/${id}`); // 404
  });

  it('the bot configuration, its health and the test request', async () => {
    const first = await call('GET', '/v1/bot');
    await call('PATCH', '/v1/bot', { greeting: 'Hi', breaker: { threshold: 3 } });
    const stale = await gw.api('/v1/bot', {
      method: 'PATCH',
      json: { greeting: 'lost' },
      headers: { 'if-match': `"${first.version}"` },
    });
    expect(((await doc.check('PATCH', '/v1/bot', stale)) as Json).code).toBe('GW_ERR_PRECONDITION_FAILED');
    await call('PUT', '/v1/bot', { timeoutMs: 999_999 }); // 400
    await call('GET', '/v1/bot/health');
    await call('POST', '/v1/bot/test', { text: 'ping' });
    await call('PUT', '/v1/bot', {});
  });

  it('problems: 400 validation, 401, 404, 409, 415', async () => {
    const bad = await call('POST', '/v1/conversations', { channel: 'fax', extra: 1 });
    expect(bad.code).toBe('GW_ERR_VALIDATION');
    expect(bad.errors).toBeDefined();
    await call('GET', '/v1/conversations?take=0');
    await call('GET', '/v1/conversations/conv_nope/messages/msg_nope');
    await call('GET', '/v1/attachments/att_missing');
    const noKey = await fetch(`${gw.url}/v1/conversations`);
    expect((await doc.check('GET', '/v1/conversations', noKey)) as Json).toMatchObject({
      code: 'GW_ERR_UNAUTHORIZED',
    });
    const form = await gw.api('/v1/conversations', {
      method: 'POST',
      body: 'a=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    await doc.check('POST', '/v1/conversations', form);
    const session = await call('POST', '/v1/sessions', {});
    const email = await call('POST', '/v1/conversations', { channel: 'email' });
    expect(session.conversationId).toBeDefined();
    await call('POST', '/v1/messages', { conversationId: email.id, text: 'x' }); // 409
  });

  it('refuses an answer that strays from its schema', async () => {
    const conv = (await (await gw.api('/v1/conversations', { method: 'POST', json: {} })).json()) as Json;
    const answer = (body: unknown, status = 200) =>
      new Response(JSON.stringify(body), {
        status,
        headers: { 'content-type': 'application/json', 'x-request-id': 'r1' },
      });
    const path = `/v1/conversations/${conv.id}`;
    await expect(doc.check('GET', path, answer({ ...conv, secret: 'x' }))).rejects.toThrow(/additional/);
    const { channel: _c, ...noChannel } = conv;
    await expect(doc.check('GET', path, answer(noChannel))).rejects.toThrow(/channel/);
    await expect(doc.check('GET', path, answer(conv, 201))).rejects.toThrow(/status 201/);
    const problem = (code: string) =>
      new Response(
        JSON.stringify({ type: 't', title: 't', status: 404, detail: 'd', code, requestId: 'r' }),
        {
          status: 404,
          headers: { 'content-type': 'application/problem+json', 'x-request-id': 'r1' },
        },
      );
    await doc.check('GET', path, problem('GW_ERR_NOT_FOUND'));
    await expect(doc.check('GET', path, problem('GW_ERR_MERGE_SELF'))).rejects.toThrow(/code/);
  });

  it('covered a representative set of answers', () => {
    for (const answer of [
      'POST /v1/conversations 201',
      'GET /v1/conversations 200',
      'POST /v1/messages 200',
      'POST /v1/messages 202',
      'POST /v1/messages 409',
      'POST /v1/conversations/{id}/send 201',
      'DELETE /v1/conversations/{id}/handoff 409',
      'POST /v1/contacts/{id}/merge 422',
      'POST /v1/webhooks 201',
      'POST /v1/keys 201',
      'GET /v1/contacts 403',
      'POST /v1/conversations 400',
      'GET /v1/conversations/{id} 404',
    ])
      expect(doc.checked).toContain(answer);
  });
});
