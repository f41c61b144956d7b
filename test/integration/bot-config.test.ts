/**
 * The bot configuration over the API (SPEC §10) on the embedded backend: the environment's values,
 * validation naming each field, refused writes that change nothing (a bot call still goes to the old
 * bot), ETag / If-Match, PUT and merge-patch semantics, changes applied without a restart (URL,
 * secret, fallback, history, breaker, handoff keywords), the write-only secret (in no answer and no
 * log line), health and the test request.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/model.js';
import { generateSecret } from '../../src/webhooks/signing.js';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

let botA: FakeBot;
let botB: FakeBot;
/** A bot that verifies with another secret than BOT_SECRET. */
let botC: FakeBot;
const secretC = generateSecret();
let gw: TestGateway;

interface Problem {
  status: number;
  code: string;
  errors?: Array<{ field: string; message: string }>;
  etag?: string;
}

/** Every body the gateway answered in this file, to check that no secret ever appears in one. */
const answered: string[] = [];

async function call(path: string, init: RequestInit & { json?: unknown } = {}) {
  const res = await gw.api(path, init);
  const text = await res.text();
  answered.push(text);
  return {
    status: res.status,
    etag: res.headers.get('etag'),
    body: JSON.parse(text) as Record<string, unknown>,
  };
}

const getConfig = () => call('/v1/bot');
const patch = (json: unknown, headers: Record<string, string> = {}) =>
  call('/v1/bot', { method: 'PATCH', json, headers });
const put = (json: unknown, headers: Record<string, string> = {}) =>
  call('/v1/bot', { method: 'PUT', json, headers });

async function converse(
  text: string,
): Promise<{ message: Message; replies: Message[]; conversationId: string }> {
  const session = await gw.api('/v1/sessions', { method: 'POST', json: {} });
  const { conversationId } = (await session.json()) as { conversationId: string };
  const res = await gw.api('/v1/messages', { method: 'POST', json: { conversationId, text, wait: 5 } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { message: Message; replies: Message[] };
  return { ...body, conversationId };
}

/** Fields named by a 400's `errors`. */
function fields(body: Record<string, unknown>): string[] {
  return ((body as unknown as Problem).errors ?? []).map((e) => e.field).sort();
}

beforeAll(async () => {
  [botA, botB, botC] = await Promise.all([FakeBot.start(), FakeBot.start(), FakeBot.start(secretC)]);
  gw = await startGateway({
    BOT_URL: botA.url,
    BOT_SECRET,
    BOT_TIMEOUT_MS: '2000',
    BOT_MAX_ATTEMPTS: '1',
    BOT_BREAKER_THRESHOLD: '50',
    BOT_BREAKER_COOLDOWN_MS: '60000',
    BOT_FALLBACK_TEXT: 'Env fallback',
    HANDOFF_KEYWORDS: 'agent',
  });
});

afterAll(async () => {
  await gw.stop();
  await Promise.all([botA.close(), botB.close(), botC.close()]);
});

afterEach(async () => {
  // Back to the environment's settings; each test starts from there.
  const res = await put({});
  expect(res.status).toBe(200);
  for (const bot of [botA, botB, botC]) bot.mode = { kind: 'echo' };
});

describe('GET /v1/bot', () => {
  it('answers the environment values with an ETag and no secret', async () => {
    const res = await getConfig();
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      bot: 'http',
      url: botA.url,
      secretSet: true,
      timeoutMs: 2000,
      maxAttempts: 1,
      fallbackText: 'Env fallback',
      breaker: { threshold: 50, cooldownMs: 60000 },
      historyLimit: 20,
      greeting: null,
      handoff: { keywords: ['agent'], onBotFailure: false, idleReleaseS: 0 },
      stored: [],
    });
    expect(res.etag).toBe(`"${res.body.version}"`);
    expect(res.body).not.toHaveProperty('secret');
  });
});

describe('refused writes', () => {
  it('names every bad field, and the running configuration is unchanged', async () => {
    const before = await getConfig();
    const cases: Array<[unknown, string[]]> = [
      [{ url: botB.url, colour: 'blue' }, ['colour']],
      [{ timeoutMs: 120_001 }, ['timeoutMs']],
      [{ timeoutMs: 99 }, ['timeoutMs']],
      [{ maxAttempts: '3' }, ['maxAttempts']],
      [{ maxAttempts: 2.5 }, ['maxAttempts']],
      [{ url: 'ftp://bot.example.com/x' }, ['url']],
      [{ url: 'not a url' }, ['url']],
      [{ url: 'https://user:pw@bot.example.com/' }, ['url']],
      [{ secret: 'hunter2' }, ['secret']],
      [{ secret: 'whsec_c2hvcnQ=' }, ['secret']],
      [{ breaker: { threshold: 0, cooldownMs: 50 } }, ['breaker.cooldownMs', 'breaker.threshold']],
      [{ breaker: { size: 3 } }, ['breaker.size']],
      [
        { handoff: { keywords: ['ok', 5], onBotFailure: 'yes' } },
        ['handoff.keywords.1', 'handoff.onBotFailure'],
      ],
      [{ handoff: { idleReleaseS: -1 } }, ['handoff.idleReleaseS']],
      [{ historyLimit: 0 }, ['historyLimit']],
      [{ fallbackText: '' }, ['fallbackText']],
      [{ url: botB.url, greeting: 42 }, ['greeting']],
    ];
    for (const [body, named] of cases) {
      for (const write of [put, patch]) {
        const res = await write(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body.code).toBe('GW_ERR_VALIDATION');
        expect(fields(res.body), JSON.stringify(body)).toEqual(named);
      }
    }
    // Not an object at all.
    const array = await patch([1, 2]);
    expect(array.status).toBe(400);

    const after = await getConfig();
    expect(after.etag).toBe(before.etag);
    expect(after.body).toEqual(before.body);
    // The bot in force is still the old one.
    const { replies } = await converse('still A?');
    expect(replies.map((r) => r.text)).toEqual(['re: still A?']);
    expect(botA.calls.at(-1)?.text).toBe('still A?');
    expect(botB.calls.some((c) => c.text === 'still A?')).toBe(false);
  });

  it('refuses a url with no secret anywhere, naming secret', async () => {
    // The environment has a secret; removing every secret needs a gateway without one.
    const bare = await startGateway({});
    try {
      const res = await bare.api('/v1/bot', { method: 'PATCH', json: { url: botB.url } });
      expect(res.status).toBe(400);
      const body = (await res.json()) as Record<string, unknown>;
      expect(fields(body)).toEqual(['secret']);
      const now = (await (await bare.api('/v1/bot')).json()) as Record<string, unknown>;
      expect(now).toMatchObject({ bot: 'demo', url: null, secretSet: false, version: 0 });
    } finally {
      await bare.stop();
    }
  });
});

describe('ETag and If-Match', () => {
  it('applies a write with the current ETag and refuses a stale one with 412, changing nothing', async () => {
    const first = await getConfig();
    const moved = await patch({ url: botB.url }, { 'if-match': first.etag! });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ url: botB.url, stored: ['url'] });
    expect(moved.etag).not.toBe(first.etag);
    expect(moved.etag).toBe(`"${moved.body.version}"`);

    const stale = await patch({ url: botC.url, secret: secretC }, { 'if-match': first.etag! });
    expect(stale.status).toBe(412);
    expect(stale.body.code).toBe('GW_ERR_PRECONDITION_FAILED');
    expect(stale.body.etag).toBe(moved.etag);
    const staleAnswer = await put({ url: botC.url, secret: secretC }, { 'if-match': first.etag! });
    expect(staleAnswer.status).toBe(412);
    // A weak tag never matches (If-Match compares strongly).
    expect((await patch({ timeoutMs: 500 }, { 'if-match': `W/${moved.etag}` })).status).toBe(412);

    expect((await getConfig()).etag).toBe(moved.etag);
    const { replies } = await converse('after the stale write');
    expect(replies.map((r) => r.text)).toEqual(['re: after the stale write']);
    expect(botB.calls.at(-1)?.text).toBe('after the stale write');
    expect(botC.calls.some((c) => c.text === 'after the stale write')).toBe(false);

    // `*` and a list holding the current tag both match.
    expect((await patch({ timeoutMs: 1500 }, { 'if-match': '*' })).status).toBe(200);
    const current = (await getConfig()).etag!;
    expect((await patch({ timeoutMs: 1600 }, { 'if-match': `"999", ${current}` })).status).toBe(200);
  });
});

describe('PUT and PATCH', () => {
  it('PATCH merges and null falls back to the environment; PUT replaces the whole document', async () => {
    await patch({
      fallbackText: 'Stored fallback',
      breaker: { threshold: 7 },
      handoff: { onBotFailure: true },
    });
    let now = await patch({ breaker: { cooldownMs: 1000 }, handoff: { keywords: ['human'] } });
    expect(now.body).toMatchObject({
      fallbackText: 'Stored fallback',
      breaker: { threshold: 7, cooldownMs: 1000 },
      handoff: { keywords: ['human'], onBotFailure: true, idleReleaseS: 0 },
      stored: [
        'breaker.cooldownMs',
        'breaker.threshold',
        'fallbackText',
        'handoff.keywords',
        'handoff.onBotFailure',
      ],
    });
    now = await patch({ breaker: null, handoff: { keywords: null }, fallbackText: null });
    expect(now.body).toMatchObject({
      fallbackText: 'Env fallback',
      breaker: { threshold: 50, cooldownMs: 60000 },
      handoff: { keywords: ['agent'], onBotFailure: true },
      stored: ['handoff.onBotFailure'],
    });
    now = await put({ greeting: 'Hi! How can I help?', historyLimit: 5 });
    expect(now.body).toMatchObject({
      greeting: 'Hi! How can I help?',
      historyLimit: 5,
      handoff: { onBotFailure: false },
      stored: ['greeting', 'historyLimit'],
    });
  });

  it('applies the fallback text, history size and handoff keywords from the next message on', async () => {
    await patch({ fallbackText: 'Stored fallback', historyLimit: 2, handoff: { keywords: ['a person'] } });
    botA.mode = { kind: 'status', status: 500 };
    const failed = await converse('hello');
    expect(failed.replies.map((r) => r.text)).toEqual(['Stored fallback']);
    botA.mode = { kind: 'echo' };

    const session = await gw.api('/v1/sessions', { method: 'POST', json: {} });
    const { conversationId } = (await session.json()) as { conversationId: string };
    for (const text of ['one', 'two', 'three']) {
      await gw.api('/v1/messages', { method: 'POST', json: { conversationId, text, wait: 5 } });
    }
    expect(botA.calls.at(-1)).toMatchObject({ text: 'three', historySize: 2, history: ['re: two', 'three'] });

    const asks = await converse('I want a person please');
    expect(asks.replies).toEqual([]);
    const conv = (await (await gw.api(`/v1/conversations/${asks.conversationId}`)).json()) as Conversation;
    expect(conv.status).toBe('handoff');
    expect(botA.calls.some((c) => c.text === 'I want a person please')).toBe(false);
    // The environment's keyword no longer applies.
    const agent = await converse('agent');
    expect(agent.replies.map((r) => r.text)).toEqual(['re: agent']);
  });

  it('turns the idle release on without a restart (the environment has it off)', async () => {
    await patch({ handoff: { idleReleaseS: 1 } });
    const { conversationId } = await converse('hello');
    const requested = await gw.api(`/v1/conversations/${conversationId}/handoff`, {
      method: 'POST',
      json: {},
    });
    const handoff = ((await requested.json()) as Conversation).handoff;
    expect(handoff?.releaseAt).toBeDefined();
    await eventually(async () => {
      const res = await gw.api(`/v1/conversations/${conversationId}`);
      return ((await res.json()) as Conversation).status === 'open';
    }, 5_000);
  });

  it('moves to a new bot with a new secret, signed so that the new bot verifies it', async () => {
    const res = await patch({ url: botC.url, secret: secretC });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ url: botC.url, secretSet: true, stored: ['secret', 'url'] });
    const { replies } = await converse('to C');
    expect(replies.map((r) => r.text)).toEqual(['re: to C']);
    expect(botC.rejected).toEqual([]);
    expect(botC.calls.at(-1)?.text).toBe('to C');
  });
});

describe('the breaker and health', () => {
  it('reports the breaker, the last error and latency; a new threshold applies at once; a new URL resets it', async () => {
    await patch({ breaker: { threshold: 2, cooldownMs: 60_000 } });
    botA.mode = { kind: 'status', status: 503 };
    await converse('fail 1');
    let health = (await call('/v1/bot/health')).body;
    expect(health).toMatchObject({
      bot: 'http',
      url: botA.url,
      scope: 'process',
      breaker: { state: 'closed', consecutiveFailures: 1, threshold: 2 },
      lastError: { code: 'BOT_HTTP_ERROR', message: 'The bot answered HTTP 503' },
    });
    expect((health.latency as { samples: number }).samples).toBeGreaterThan(0);

    // Lowered to the count already reached: the next failure opens it.
    await patch({ breaker: { threshold: 1 } });
    await converse('fail 2');
    health = (await call('/v1/bot/health')).body;
    expect(health.breaker).toMatchObject({ state: 'open', threshold: 1 });
    expect(typeof (health.breaker as { openedAt: unknown }).openedAt).toBe('string');
    const calls = botA.calls.length;
    const fast = await converse('fails fast');
    expect(fast.message.processing?.error?.code).toBe('BOT_CIRCUIT_OPEN');
    expect(botA.calls.length).toBe(calls);

    // The test request is not stopped by the open breaker, and does not count.
    botA.mode = { kind: 'echo' };
    const test = await call('/v1/bot/test', { method: 'POST', json: {} });
    expect(test.body).toMatchObject({ ok: true, status: 200 });
    expect((await call('/v1/bot/health')).body.breaker).toMatchObject({ state: 'open' });

    // Another bot: a fresh breaker and fresh figures.
    await patch({ url: botB.url });
    health = (await call('/v1/bot/health')).body;
    expect(health).toMatchObject({
      url: botB.url,
      breaker: { state: 'closed', consecutiveFailures: 0 },
      lastError: null,
      latency: null,
    });
    const { replies } = await converse('to B');
    expect(replies.map((r) => r.text)).toEqual(['re: to B']);
  });
});

describe('POST /v1/bot/test', () => {
  it("reports the bot's answer to one signed request the bot verifies", async () => {
    const before = botA.calls.length;
    const res = await call('/v1/bot/test', { method: 'POST', json: { text: 'ping' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      ok: true,
      bot: 'http',
      url: botA.url,
      status: 200,
      response: { replies: [{ text: 're: ping' }] },
    });
    expect(typeof res.body.latencyMs).toBe('number');
    expect(botA.calls.length).toBe(before + 1);
    expect(botA.calls.at(-1)).toMatchObject({ text: 'ping', test: true, conversationId: 'conv_test' });
    expect(botA.rejected).toEqual([]);
  });

  it('reports a failing bot once, without retrying', async () => {
    await patch({ maxAttempts: 3 });
    botA.mode = { kind: 'status', status: 502 };
    const before = botA.calls.length;
    const res = await call('/v1/bot/test', { method: 'POST', json: {} });
    expect(res.body).toMatchObject({ ok: false, status: 502, error: { code: 'BOT_HTTP_ERROR' } });
    expect(botA.calls.length).toBe(before + 1);
    // A bot signed with another secret refuses the request: that is what the test shows.
    await patch({ url: botC.url });
    const wrongSecret = await call('/v1/bot/test', { method: 'POST', json: {} });
    expect(wrongSecret.body).toMatchObject({ ok: false, status: 401, url: botC.url });
    const bad = await call('/v1/bot/test', { method: 'POST', json: { text: 5 } });
    expect(bad.status).toBe(400);
    expect(fields(bad.body)).toEqual(['text']);
  });
});

describe('the secret', () => {
  it('is in no answer and no log line', async () => {
    // Good and bad secrets alike, through every write.
    const secrets = [secretC, generateSecret()];
    await patch({ secret: secrets[0] });
    await put({ secret: secrets[1], url: botA.url });
    const refused = 'whsec_dG9vIHNob3J0';
    await patch({ secret: refused });
    await patch({ secret: `${secrets[0]}!` });
    await getConfig();
    await call('/v1/bot/test', { method: 'POST', json: {} });
    const everything = [BOT_SECRET, ...secrets, refused].flatMap((s) => [s, s.slice('whsec_'.length)]);
    const logs = gw.logs.text();
    for (const value of everything) {
      for (const text of answered) expect(text).not.toContain(value);
      expect(logs).not.toContain(value);
    }
    expect(gw.logs.lines.some((l) => l.msg === 'bot configuration changed')).toBe(true);
  });
});
