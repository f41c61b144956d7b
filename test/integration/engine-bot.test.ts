/**
 * The bot pipeline on the embedded backend: the HTTP bot failing, timing out, answering garbage and
 * recovering; the circuit breaker; the fallback reply; handoff; the Chatbot API's own errors.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/model.js';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

let bot: FakeBot;
let gw: TestGateway;

async function newConversation(g = gw): Promise<string> {
  const res = await g.api('/v1/sessions', { method: 'POST', json: {} });
  expect(res.status).toBe(201);
  return ((await res.json()) as { conversationId: string }).conversationId;
}

async function send(conversationId: string, text: string, extra: Record<string, unknown> = {}, g = gw) {
  const res = await g.api('/v1/messages', { method: 'POST', json: { conversationId, text, ...extra } });
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown> & { message: Message; replies?: Message[] },
  };
}

async function messages(conversationId: string, g = gw): Promise<Message[]> {
  const res = await g.api(`/v1/conversations/${conversationId}/messages?take=200`);
  return ((await res.json()) as { items: Message[] }).items;
}

beforeAll(async () => {
  bot = await FakeBot.start();
  gw = await startGateway({
    BOT_URL: bot.url,
    BOT_SECRET,
    BOT_TIMEOUT_MS: '300',
    BOT_MAX_ATTEMPTS: '3',
    BOT_BREAKER_THRESHOLD: '3',
    BOT_BREAKER_COOLDOWN_MS: '800',
    BOT_FALLBACK_TEXT: 'Fallback: try later',
  });
});

afterAll(async () => {
  await gw.stop();
  await bot.close();
});

afterEach(() => {
  bot.mode = { kind: 'echo' };
  bot.script.length = 0;
});

describe('HTTP bot', () => {
  it('signs requests (verified by standardwebhooks), sends history, and stores the reply', async () => {
    const conv = await newConversation();
    const first = await send(conv, 'hello');
    expect(first.status).toBe(200);
    expect(first.body.replies?.map((r) => r.text)).toEqual(['re: hello']);
    const second = await send(conv, 'again');
    expect(second.body.replies?.map((r) => r.text)).toEqual(['re: again']);
    expect(bot.rejected).toEqual([]);
    const call = bot.callsFor(second.body.message.id)[0];
    // history: hello, re: hello, again
    expect(call?.historySize).toBe(3);
    const reply = second.body.replies?.[0];
    expect(reply?.type).toBe('bot');
    expect(reply?.replyTo).toBe(second.body.message.id);
    expect(reply?.delivery?.status).toBe('sent');
    expect(second.body.message.processing?.state).toBe('done');
  });

  it('retries 5xx with the same webhook-id and answers once', async () => {
    const conv = await newConversation();
    bot.script.push({ kind: 'status', status: 503 }, { kind: 'status', status: 500 });
    const res = await send(conv, 'flaky');
    expect(res.body.replies?.map((r) => r.text)).toEqual(['re: flaky']);
    const calls = bot.callsFor(res.body.message.id);
    expect(calls).toHaveLength(3);
    expect(new Set(calls.map((c) => c.webhookId)).size).toBe(1);
    // The webhook-id is the message id itself: one prefix, not `msg_msg_…`.
    expect(calls[0]!.webhookId).toBe(res.body.message.id);
    expect(calls[0]!.webhookId).toMatch(/^msg_[0-9A-HJKMNP-TV-Z]{26}$/);
  });

  it.each([
    ['failing with 500', { kind: 'status', status: 500 } as const, 'BOT_HTTP_ERROR', 3],
    ['timing out', { kind: 'hang' } as const, 'BOT_TIMEOUT', 3],
    ['answering non-JSON', { kind: 'garbage' } as const, 'BOT_BAD_RESPONSE', 1],
    ['answering the wrong shape', { kind: 'wrong-shape' } as const, 'BOT_BAD_RESPONSE', 1],
    ['answering an oversized body', { kind: 'huge' } as const, 'BOT_RESPONSE_TOO_LARGE', 1],
    ['refusing with 400', { kind: 'status', status: 400 } as const, 'BOT_HTTP_ERROR', 1],
  ])(
    'a bot %s leaves a clear error state and the customer gets the fallback',
    async (_name, mode, code, calls) => {
      const conv = await newConversation();
      // A good message first keeps the breaker closed regardless of test order.
      await send(conv, 'warm up');
      bot.mode = mode;
      const res = await send(conv, 'broken', { wait: 10 });
      expect(res.status).toBe(200);
      expect(res.body.message.processing?.state).toBe('error');
      expect(res.body.message.processing?.error?.code).toBe(code);
      expect(res.body.replies?.map((r) => [r.text, r.meta.fallback])).toEqual([
        ['Fallback: try later', true],
      ]);
      expect(bot.callsFor(res.body.message.id)).toHaveLength(calls);
      // The error is visible through the API too.
      const stored = (await messages(conv)).find((m) => m.id === res.body.message.id);
      expect(stored?.processing?.error?.code).toBe(code);
      bot.mode = { kind: 'echo' };
      bot.releaseHung();
      await send(conv, 'reset breaker');
    },
  );

  it('opens the circuit breaker after repeated failures, fails fast, and recovers after the cooldown', async () => {
    const conv = await newConversation();
    bot.mode = { kind: 'status', status: 400 };
    for (let i = 0; i < 3; i++) {
      const r = await send(conv, `fail ${i}`);
      expect(r.body.message.processing?.error?.code).toBe('BOT_HTTP_ERROR');
    }
    const callsBefore = bot.calls.length;
    const open = await send(conv, 'while open');
    expect(open.body.message.processing?.error?.code).toBe('BOT_CIRCUIT_OPEN');
    expect(open.body.replies?.[0]?.text).toBe('Fallback: try later');
    expect(bot.calls.length).toBe(callsBefore);

    bot.mode = { kind: 'echo' };
    const recovered = await eventually(
      async () => {
        const r = await send(conv, 'after cooldown');
        return r.body.message.processing?.state === 'done' ? r : null;
      },
      5_000,
      200,
    );
    expect(recovered.body.replies?.map((r) => r.text)).toEqual(['re: after cooldown']);
  });
});

describe('handoff', () => {
  it('a bot reply can ask for handoff; later messages are stored and queued but not passed to the bot', async () => {
    const conv = await newConversation();
    bot.script.push({ kind: 'handoff' });
    const first = await send(conv, 'I want a human');
    expect(first.body.replies?.map((r) => r.text)).toEqual(['A human will take over.']);
    const convRes = await gw.api(`/v1/conversations/${conv}`);
    expect(((await convRes.json()) as { status: string }).status).toBe('handoff');

    const callsBefore = bot.calls.length;
    const during = await send(conv, 'are you there?');
    expect(during.status).toBe(200);
    expect(during.body.message.processing?.state).toBe('skipped');
    expect(during.body.replies).toEqual([]);
    expect(bot.calls.length).toBe(callsBefore);

    // An agent answers through the conversation's channel.
    const agent = await gw.api(`/v1/conversations/${conv}/send`, {
      method: 'POST',
      json: { text: 'Hi, this is Ana', name: 'Ana' },
    });
    expect(agent.status).toBe(201);
    const sent = (await agent.json()) as Message;
    expect(sent.delivery?.status).toBe('sent');
    expect(sent.direction).toBe('outbound');

    // Back to the bot.
    await gw.api(`/v1/conversations/${conv}`, { method: 'PATCH', json: { status: 'open' } });
    const after = await send(conv, 'thanks');
    expect(after.body.replies?.map((r) => r.text)).toEqual(['re: thanks']);
  });

  it('a message queued behind the one that asked for handoff is not passed to the bot', async () => {
    const conv = await newConversation();
    bot.script.push({ kind: 'handoff', delayMs: 150 });
    const callsBefore = bot.calls.length;
    const first = await send(conv, 'I want a human', { wait: 0 });
    expect(first.status).toBe(202);
    // Queued while the bot is still answering the first: the engine takes it right after.
    const second = await send(conv, 'hello?', { wait: 5 });
    expect(second.status).toBe(200);
    expect(second.body.message.processing?.state).toBe('skipped');
    expect(second.body.replies).toEqual([]);
    expect(bot.calls.slice(callsBefore).map((c) => c.text)).toEqual(['I want a human']);
    expect((await messages(conv)).map((m) => [m.type, m.text])).toEqual([
      ['user', 'I want a human'],
      ['user', 'hello?'],
      ['bot', 'A human will take over.'],
    ]);
  });
});

describe('Chatbot API', () => {
  it('answers a resent clientMessageId with the original ids and no second bot call', async () => {
    const conv = await newConversation();
    const a = await send(conv, 'once', { clientMessageId: 'c-1' });
    const b = await send(conv, 'once', { clientMessageId: 'c-1' });
    expect(b.status).toBe(200);
    expect(b.body.duplicate).toBe(true);
    expect(b.body.message.id).toBe(a.body.message.id);
    expect(b.body.replies?.map((r) => r.id)).toEqual(a.body.replies?.map((r) => r.id));
    expect(bot.callsFor(a.body.message.id)).toHaveLength(1);
    expect((await messages(conv)).filter((m) => m.type === 'user')).toHaveLength(1);
  });

  it('answers 202 with ids when the bot has not answered within `wait`', async () => {
    const conv = await newConversation();
    bot.script.push({ kind: 'echo', delayMs: 400 });
    const res = await send(conv, 'slow', { wait: 0.1 });
    expect(res.status).toBe(202);
    expect(res.body.message.id).toMatch(/^msg_/);
    const id = res.body.message.id;
    await eventually(async () => (await messages(conv)).some((m) => m.replyTo === id));
  });

  it('answers a queued message 202 in JSON with its length, replayed byte for byte under its Idempotency-Key', async () => {
    const conv = await newConversation();
    const post = () =>
      gw.api('/v1/messages', {
        method: 'POST',
        headers: { 'idempotency-key': `queued-${conv}` },
        json: { conversationId: conv, text: 'once', wait: 0 },
      });
    const first = await post();
    expect(first.status).toBe(202);
    expect(first.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(first.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const text = await first.text();
    expect(first.headers.get('content-length')).toBe(String(Buffer.byteLength(text)));
    const body = JSON.parse(text) as { status: string; duplicate: boolean; message: Message };
    expect(body).toEqual({
      status: 'queued',
      duplicate: false,
      message: { id: expect.stringMatching(/^msg_/), conversationId: conv, seq: 1 },
    });
    const again = await post();
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await again.text()).toBe(text);
  });

  it('acks without waiting for the bot, and a slow conversation does not hold up another (SPEC §4.3, §4.5)', async () => {
    // A gateway whose bot timeout leaves room for a slow but healthy bot.
    const g = await startGateway({ BOT_URL: bot.url, BOT_SECRET, BOT_TIMEOUT_MS: '5000' });
    try {
      const slow = await newConversation(g);
      const fast = await newConversation(g);
      bot.mode = { kind: 'echo', delayMs: (call) => (call.conversationId === slow ? 400 : 0) };
      // Three messages queue in the slow conversation: 1.2 s of bot time, one at a time.
      for (const text of ['s1', 's2', 's3']) {
        const queued = await send(slow, text, { wait: 0 }, g);
        expect(queued.status).toBe(202);
        expect(queued.body.status).toBe('queued');
      }
      await eventually(() => bot.calls.some((c) => c.conversationId === slow));
      const answered = await send(fast, 'f1', { wait: 5 }, g);
      expect(answered.status).toBe(200);
      expect(answered.body.replies?.map((r) => r.text)).toEqual(['re: f1']);
      // Answered while the slow conversation still had work waiting.
      expect((await messages(slow, g)).filter((m) => m.type === 'bot').length).toBeLessThan(3);
      await eventually(async () => (await messages(slow, g)).filter((m) => m.type === 'bot').length === 3);
      expect((await messages(slow, g)).filter((m) => m.type === 'bot').map((m) => m.text)).toEqual([
        're: s1',
        're: s2',
        're: s3',
      ]);
    } finally {
      await g.stop();
    }
  });

  it('refuses bad requests with problem+json and stores nothing', async () => {
    const conv = await newConversation();
    const missingText = await gw.api('/v1/messages', { method: 'POST', json: { conversationId: conv } });
    expect(missingText.status).toBe(400);
    expect(missingText.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const problem = (await missingText.json()) as { code: string; detail: string };
    expect(problem.code).toBe('GW_ERR_VALIDATION');
    expect(problem.detail).toContain('text');

    const unknown = await gw.api('/v1/messages', {
      method: 'POST',
      json: { conversationId: 'conv_01JD0000000000000000000000', text: 'x' },
    });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { code: string }).code).toBe('GW_ERR_NOT_FOUND');

    const unknownSend = await gw.api('/v1/conversations/conv_01JD0000000000000000000000/send', {
      method: 'POST',
      json: { text: 'x' },
    });
    expect(unknownSend.status).toBe(404);
    expect(await messages(conv)).toEqual([]);
  });
});

describe('graceful shutdown', () => {
  it('refuses new work while draining, finishes the message in flight, and stores nothing refused', async () => {
    const draining = await startGateway({ BOT_URL: bot.url, BOT_SECRET, SHUTDOWN_TIMEOUT_MS: '10000' });
    const conv = await newConversation(draining);
    bot.script.push({ kind: 'echo', delayMs: 500 });
    const inFlight = await send(conv, 'in flight', { wait: 0 }, draining);
    expect(inFlight.status).toBe(202);
    await eventually(() => bot.callsFor(inFlight.body.message.id).length === 1);

    const stopped = draining.stop();
    const { ingest, store, lifecycle } = draining.gateway.deps;
    expect(lifecycle.draining).toBe(true);
    const refused = await ingest
      .acceptInto({ id: conv }, 'api', 'client:late', {
        type: 'user',
        direction: 'inbound',
        text: 'too late',
      })
      .then(
        () => null,
        (err: unknown) => err,
      );
    expect(refused).toMatchObject({ code: 'GW_ERR_SHUTTING_DOWN', status: 503 });
    await stopped;

    const stored = (await store.listMessages(conv, { take: 10, order: 'asc' })).items;
    expect(stored.map((m) => [m.type, m.text])).toEqual([
      ['user', 'in flight'],
      ['bot', 're: in flight'],
    ]);
    expect(stored[0]?.processing?.state).toBe('done');
  });
});
