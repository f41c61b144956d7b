/**
 * The console's sessions and protections over real HTTP (SPEC §11): a wrong key is a 401 problem
 * refused like any other; the session cookie's attributes; a write without the CSRF token, or from
 * another origin, is a 403 that changes nothing; sign-out needs the token too; an expired session is
 * a 401; the page's CSP allows no inline script. Across processes on one Redis, a change made through
 * gateway A reaches a console stream connected to gateway B.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/model.js';
import { eventually } from '../helpers/eventually.js';
import {
  API_KEY,
  apiFetch,
  type SpawnedGateway,
  spawnGateway,
  startGateway,
  type TestGateway,
} from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

interface Signed {
  cookie: string;
  csrf: string;
  setCookie: string;
}

async function signIn(base: string, body: unknown = { key: API_KEY, name: 'Ada' }): Promise<Signed> {
  const res = await fetch(`${base}/console/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
  const setCookie = res.headers.get('set-cookie')!;
  const { csrfToken } = (await res.json()) as { csrfToken: string };
  return { cookie: setCookie.split(';')[0]!, csrf: csrfToken, setCookie };
}

function consoleFetch(
  base: string,
  path: string,
  signed: Signed | undefined,
  init: { method?: string; csrf?: string | null; headers?: Record<string, string>; json?: unknown } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  if (signed) headers.cookie = signed.cookie;
  const csrf = init.csrf === undefined ? signed?.csrf : init.csrf;
  if (csrf) headers['x-csrf-token'] = csrf;
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  return fetch(`${base}${path}`, {
    method: init.method ?? 'GET',
    headers,
    ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
  });
}

/** Reads Server-Sent Events from a console stream; `next(match)` resolves with the first that matches. */
async function openStream(base: string, signed: Signed) {
  const abort = new AbortController();
  const res = await fetch(`${base}/console/api/stream`, {
    headers: { cookie: signed.cookie },
    signal: abort.signal,
  });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: Array<{ event: string; data: Record<string, unknown> }> = [];
  let buffer = '';
  const reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
          end = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    events,
    next: (match: (e: { event: string; data: Record<string, unknown> }) => boolean, timeoutMs = 10_000) =>
      eventually(() => events.find(match), timeoutMs, 20),
    async close() {
      abort.abort();
      await reading;
    },
  };
}

describe('console sessions and CSRF', () => {
  let gw: TestGateway;
  let base: string;

  beforeAll(async () => {
    gw = await startGateway({});
    base = gw.url;
  });
  afterAll(async () => {
    await gw?.stop();
  });

  async function conversation(): Promise<Conversation> {
    const res = await gw.api('/v1/conversations', {
      method: 'POST',
      json: { channel: 'api', participants: [{ id: 'u1', role: 'user', name: 'Cleo' }] },
    });
    expect(res.status).toBe(201);
    return (await res.json()) as Conversation;
  }

  it('serves the page under a CSP without inline script, never cached', async () => {
    const res = await fetch(`${base}/console`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const html = await res.text();
    // Every script is a file of this origin; none is inline.
    const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/src="\/console\/assets\/app-[A-Z0-9]+\.js"/);
      expect(body).toBe('');
    }
    expect(html).not.toMatch(/\sstyle=/);
    const asset = /src="(\/console\/assets\/[^"]+)"/.exec(html)![1]!;
    const js = await fetch(`${base}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${base}/console/assets/..%2Findex.html`)).status).toBe(404);
  });

  it('refuses a wrong key with a 401 problem, logged like any refused request', async () => {
    const res = await fetch(`${base}/console/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'wrong-key-wrong-key-wrong' }),
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('set-cookie')).toBeNull();
    const problem = (await res.json()) as { code: string; detail: string };
    expect(problem.code).toBe('GW_ERR_UNAUTHORIZED');
    expect(problem.detail).toBe('The API key is not valid');
    await eventually(() =>
      gw.logs.lines.some(
        (l) => l.msg === 'request refused' && l.code === 'GW_ERR_UNAUTHORIZED' && l.status === 401,
      ),
    );
    expect(gw.logs.text()).not.toContain('wrong-key-wrong-key-wrong');
    const missing = await fetch(`${base}/console/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(missing.status).toBe(400);
    expect(JSON.stringify(await missing.json())).toContain('"key"');
  });

  it('counts a wrong key with the API refusals, and takes a managed key only with the console scope', async () => {
    const metric = async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) => l.startsWith('switchboard_api_requests_total{method="POST",status="4xx"}'));
      return line ? Number(line.split(' ')[1]) : 0;
    };
    const before = await metric();
    const wrong = await fetch(`${base}/console/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'another-wrong-key-0123456789' }),
    });
    expect(wrong.status).toBe(401);
    expect(await metric()).toBe(before + 1);

    const create = async (scopes: string[]) => {
      const res = await gw.api('/v1/keys', {
        method: 'POST',
        json: { name: `agents ${scopes.join(' ')}`, scopes },
      });
      expect(res.status).toBe(201);
      return ((await res.json()) as { key: string }).key;
    };
    const reader = await create(['conversations:read']);
    const refused = await fetch(`${base}/console/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: reader }),
    });
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ code: 'GW_ERR_INSUFFICIENT_SCOPE', scope: 'console' });
    expect(refused.headers.get('set-cookie')).toBeNull();
    const agent = await signIn(base, { key: await create(['console']) });
    expect((await consoleFetch(base, '/console/session', agent)).status).toBe(200);
  });

  it('sets an HttpOnly, SameSite=Strict cookie on /console, not Secure over http', async () => {
    const signed = await signIn(base);
    expect(signed.setCookie).toMatch(/^sb_console=[A-Za-z0-9_-]{43}; /);
    expect(signed.setCookie).toContain('HttpOnly');
    expect(signed.setCookie).toContain('SameSite=Strict');
    expect(signed.setCookie).toContain('Path=/console');
    expect(signed.setCookie).not.toContain('Secure');
    const who = await consoleFetch(base, '/console/session', signed);
    expect(who.status).toBe(200);
    expect(await who.json()).toMatchObject({ agent: 'Ada', csrfToken: signed.csrf });
    // The key never comes back, and the key is not a session.
    expect(JSON.stringify(await (await consoleFetch(base, '/console/session', signed)).json())).not.toContain(
      API_KEY,
    );
    const withKey = await fetch(`${base}/console/api/conversations`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    expect(withKey.status).toBe(401);
  });

  it('refuses the page API without a session', async () => {
    const res = await fetch(`${base}/console/api/conversations`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe('GW_ERR_UNAUTHORIZED');
    const forged = await fetch(`${base}/console/api/conversations`, {
      headers: { cookie: 'sb_console=forged' },
    });
    expect(forged.status).toBe(401);
  });

  it('refuses a write without the CSRF token with 403 and changes nothing', async () => {
    const signed = await signIn(base);
    const conv = await conversation();
    const before = await (await gw.api(`/v1/conversations/${conv.id}`)).json();

    const noToken = await consoleFetch(base, `/console/api/conversations/${conv.id}/take`, signed, {
      method: 'POST',
      csrf: null,
    });
    expect(noToken.status).toBe(403);
    expect(((await noToken.json()) as { code: string }).code).toBe('GW_ERR_CSRF_REFUSED');
    const wrongToken = await consoleFetch(base, `/console/api/conversations/${conv.id}/reply`, signed, {
      method: 'POST',
      csrf: 'not-the-token',
      json: { text: 'forged' },
    });
    expect(wrongToken.status).toBe(403);
    const otherSession = await signIn(base, { key: API_KEY, name: 'Eve' });
    const foreignToken = await consoleFetch(base, `/console/api/conversations/${conv.id}/take`, signed, {
      method: 'POST',
      csrf: otherSession.csrf,
    });
    expect(foreignToken.status).toBe(403);
    const crossOrigin = await consoleFetch(base, `/console/api/conversations/${conv.id}/take`, signed, {
      method: 'POST',
      headers: { origin: 'https://evil.example' },
    });
    expect(crossOrigin.status).toBe(403);
    const crossSite = await consoleFetch(base, `/console/api/conversations/${conv.id}/take`, signed, {
      method: 'POST',
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(crossSite.status).toBe(403);

    const after = await (await gw.api(`/v1/conversations/${conv.id}`)).json();
    expect(after).toEqual(before);
    const messages = (await (await gw.api(`/v1/conversations/${conv.id}/messages`)).json()) as {
      items: Message[];
    };
    expect(messages.items).toEqual([]);
  });

  it('takes, replies as the signed-in agent and hands back with the token', async () => {
    const signed = await signIn(base, { key: API_KEY, name: 'Ada Lovelace' });
    const conv = await conversation();
    const taken = await consoleFetch(base, `/console/api/conversations/${conv.id}/take`, signed, {
      method: 'POST',
      headers: { origin: base },
    });
    expect(taken.status).toBe(200);
    const takenConv = (await taken.json()) as Conversation;
    expect(takenConv.status).toBe('handoff');
    const agent = takenConv.participants.find((p) => p.role === 'agent')!;
    expect(agent.name).toBe('Ada Lovelace');
    expect(takenConv.handoff?.assignee).toBe(agent.id);

    const reply = await consoleFetch(base, `/console/api/conversations/${conv.id}/reply`, signed, {
      method: 'POST',
      json: { text: 'Hello from the console' },
    });
    expect(reply.status).toBe(201);
    const message = (await reply.json()) as Message;
    expect(message).toMatchObject({ type: 'agent', name: 'Ada Lovelace', participantId: agent.id });

    const empty = await consoleFetch(base, `/console/api/conversations/${conv.id}/reply`, signed, {
      method: 'POST',
      json: { text: '  ' },
    });
    expect(empty.status).toBe(400);
    expect(JSON.stringify(await empty.json())).toContain('"text"');

    const back = await consoleFetch(base, `/console/api/conversations/${conv.id}/release`, signed, {
      method: 'POST',
    });
    expect(back.status).toBe(200);
    expect(((await back.json()) as Conversation).status).toBe('open');
  });

  it('lets a session read through the /v1 routes but not write through them, except a replay', async () => {
    const signed = await signIn(base);
    const conv = await conversation();
    const read = await consoleFetch(base, `/console/api/conversations/${conv.id}`, signed);
    expect(read.status).toBe(200);
    const remove = await consoleFetch(base, `/console/api/conversations/${conv.id}`, signed, {
      method: 'DELETE',
    });
    expect(remove.status).toBe(404);
    expect(((await remove.json()) as { code: string }).code).toBe('GW_ERR_ROUTE_NOT_FOUND');
    expect((await gw.api(`/v1/conversations/${conv.id}`)).status).toBe(200);
    const subscribe = await consoleFetch(base, '/console/api/webhooks', signed, {
      method: 'POST',
      json: { url: 'https://crm.example.com/hook', events: ['message.created'] },
    });
    expect(subscribe.status).toBe(404);
    const list = (await (await gw.api('/v1/webhooks')).json()) as { items: unknown[] };
    expect(list.items).toEqual([]);
    // The replay route is let through (here to a 404 for a delivery that does not exist).
    const replay = await consoleFetch(
      base,
      '/console/api/webhooks/wh_unknown/deliveries/dlv_unknown/replay',
      signed,
      {
        method: 'POST',
      },
    );
    expect(replay.status).toBe(404);
    expect(((await replay.json()) as { code: string }).code).toBe('GW_ERR_NOT_FOUND');
  });

  it('answers the operations view', async () => {
    const signed = await signIn(base);
    const res = await consoleFetch(base, '/console/api/operations', signed);
    expect(res.status).toBe(200);
    const ops = (await res.json()) as {
      queue: { pending: number; channels: Array<{ channel: string }> };
      bot: { kind: string; healthy: boolean };
      webhooks: unknown[];
    };
    expect(ops.queue.pending).toBe(0);
    expect(ops.queue.channels.map((c) => c.channel)).toContain('api');
    expect(ops.bot).toMatchObject({ kind: 'demo', healthy: true });
    expect(ops.webhooks).toEqual([]);
  });

  it('signs out only with the token, and the session is gone after', async () => {
    const signed = await signIn(base);
    const forged = await consoleFetch(base, '/console/session', signed, { method: 'DELETE', csrf: null });
    expect(forged.status).toBe(403);
    expect((await consoleFetch(base, '/console/session', signed)).status).toBe(200);
    const out = await consoleFetch(base, '/console/session', signed, { method: 'DELETE' });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await consoleFetch(base, '/console/session', signed)).status).toBe(401);
    expect((await consoleFetch(base, '/console/api/conversations', signed)).status).toBe(401);
  });

  it('streams a change as it happens', async () => {
    const signed = await signIn(base);
    const stream = await openStream(base, signed);
    await stream.next((e) => e.event === 'ready');
    const conv = await conversation();
    const created = await stream.next((e) => e.event === 'change' && e.data.conversationId === conv.id);
    expect(created.data.type).toBe('conversation.created');
    // A notice names what changed, never its content.
    expect(Object.keys(created.data).sort()).toEqual(['at', 'conversationId', 'seq', 'type']);
    await stream.close();
  });
});

describe('console sessions that expire, and Secure cookies behind https', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startGateway({ PUBLIC_URL: 'https://console.example.test' }, { console: { sessionIdleS: 1 } });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('marks the cookie Secure when PUBLIC_URL is https', async () => {
    const signed = await signIn(gw.url);
    expect(signed.setCookie).toContain('; Secure');
  });

  it('accepts writes from the PUBLIC_URL origin', async () => {
    const signed = await signIn(gw.url);
    const res = await consoleFetch(gw.url, '/console/api/conversations/conv_unknown/take', signed, {
      method: 'POST',
      headers: { origin: 'https://console.example.test' },
    });
    // Past the origin and token checks: the conversation does not exist.
    expect(res.status).toBe(404);
  });

  it('answers 401 once the session has expired', async () => {
    const signed = await signIn(gw.url);
    expect((await consoleFetch(gw.url, '/console/api/conversations', signed)).status).toBe(200);
    await eventually(
      async () => (await consoleFetch(gw.url, '/console/api/conversations', signed)).status === 401,
      5_000,
      100,
    );
    expect((await consoleFetch(gw.url, '/console/session', signed)).status).toBe(401);
  });
});

describe.skipIf(!redisAvailable())('console live updates across processes (Redis)', () => {
  let redis: RedisServer;
  const procs: SpawnedGateway[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    procs.push(
      ...(await Promise.all([
        spawnGateway({ REDIS_URL: redis.url }),
        spawnGateway({ REDIS_URL: redis.url }),
      ])),
    );
  });
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await redis?.dispose();
  });

  it('shows a change made through gateway A on a console connected to gateway B', async () => {
    const [a, b] = procs as [SpawnedGateway, SpawnedGateway];
    // Signed in on A, the session works on B too: sessions live in Redis.
    const signed = await signIn(a.url);
    const stream = await openStream(b.url, signed);
    await stream.next((e) => e.event === 'ready');
    const res = await apiFetch(a.url, '/v1/sessions', { method: 'POST', json: {} });
    const { conversationId } = (await res.json()) as { conversationId: string };
    const sent = await apiFetch(a.url, '/v1/messages', {
      method: 'POST',
      json: { conversationId, text: 'through A', wait: 5 },
    });
    expect(sent.status).toBe(200);
    await stream.next(
      (e) => e.data.conversationId === conversationId && e.data.type === 'conversation.created',
    );
    const message = await stream.next(
      (e) => e.data.conversationId === conversationId && e.data.type === 'message.created',
    );
    expect(message.data.messageId).toMatch(/^msg_/);
    // And the write side: taking it through B's console shows on a stream connected to A.
    const onA = await openStream(a.url, signed);
    await onA.next((e) => e.event === 'ready');
    const taken = await consoleFetch(b.url, `/console/api/conversations/${conversationId}/take`, signed, {
      method: 'POST',
    });
    expect(taken.status).toBe(200);
    await onA.next(
      (e) => e.data.conversationId === conversationId && e.data.type === 'conversation.handoff_assigned',
    );
    await stream.close();
    await onA.close();
  });
});
