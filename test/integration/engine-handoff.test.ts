/**
 * The engine in handoff (SPEC §8) on a real gateway with the HTTP test bot: entering by the bot's
 * answer (with its reason), by a customer keyword and by a failing bot with its breaker open; no bot
 * call while in handoff; after release the bot's next request is `resumed` with the handoff's messages
 * in its history.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/model.js';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { ChatClient, ORIGIN, WEBCHAT_SECRET } from '../helpers/webchat-client.js';

let bot: FakeBot;
let gw: TestGateway | undefined;

beforeAll(async () => {
  bot = await FakeBot.start();
});
afterAll(async () => {
  await bot.close();
});
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  bot.calls.length = 0;
  bot.script.length = 0;
  bot.mode = { kind: 'echo' };
});

async function start(env: Record<string, string> = {}): Promise<TestGateway> {
  gw = await startGateway({ BOT_URL: bot.url, BOT_SECRET, BOT_TIMEOUT_MS: '2000', ...env });
  return gw;
}

async function session(g: TestGateway): Promise<string> {
  const res = await g.api('/v1/sessions', { method: 'POST', json: {} });
  return ((await res.json()) as { conversationId: string }).conversationId;
}

/** Sends a user message and waits until it is processed; the message as stored, and its replies. */
async function say(
  g: TestGateway,
  conversationId: string,
  text: string,
): Promise<{ message: Message; replies: Message[] }> {
  const res = await g.api('/v1/messages', { method: 'POST', json: { conversationId, text, wait: 10 } });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { message: Message; replies: Message[] };
  const stored = (await (
    await g.api(`/v1/conversations/${conversationId}/messages/${body.message.id}`)
  ).json()) as Message;
  return { message: stored, replies: body.replies };
}

async function get(g: TestGateway, id: string): Promise<Conversation> {
  return (await (await g.api(`/v1/conversations/${id}`)).json()) as Conversation;
}

const muted = { state: 'skipped', error: { code: 'GW_HANDOFF' } };

describe('entering handoff', () => {
  it('on the bot’s handoff answer, with its reason; its reply still goes out, later messages never reach the bot', async () => {
    const g = await start();
    const id = await session(g);
    bot.script.push({ kind: 'handoff', reason: 'billing_dispute' });
    const first = await say(g, id, 'my bill is wrong');
    expect(first.replies.map((r) => r.text)).toEqual(['A human will take over.']);
    expect((await get(g, id)).handoff).toMatchObject({
      state: 'pending',
      reason: 'billing_dispute',
      requestedBy: 'bot',
    });
    const calls = bot.calls.length;
    const second = await say(g, id, 'hello?');
    expect(second.message.processing).toMatchObject(muted);
    expect(second.replies).toEqual([]);
    expect(bot.calls).toHaveLength(calls);
  });

  it('on a customer keyword (whole words, any case), without asking the bot', async () => {
    const g = await start({ HANDOFF_KEYWORDS: 'agent, talk to a person' });
    const id = await session(g);
    await say(g, id, 'my reagents are late');
    expect(bot.calls).toHaveLength(1);
    expect((await get(g, id)).status).toBe('open');
    const asked = await say(g, id, 'Please let me TALK  TO a person!');
    expect(asked.message.processing).toMatchObject(muted);
    expect(bot.calls).toHaveLength(1);
    expect((await get(g, id)).handoff).toMatchObject({
      state: 'pending',
      requestedBy: 'customer',
      reason: 'customer_request',
    });
  });

  it('when the bot fails with its breaker open and HANDOFF_ON_BOT_FAILURE is on: the fallback once, then quiet', async () => {
    const g = await start({
      HANDOFF_ON_BOT_FAILURE: 'true',
      BOT_MAX_ATTEMPTS: '1',
      BOT_BREAKER_THRESHOLD: '1',
    });
    bot.mode = { kind: 'status', status: 500 };
    const id = await session(g);
    const failed = await say(g, id, 'hi');
    expect(failed.replies).toHaveLength(1);
    expect(failed.replies[0]!.meta).toMatchObject({ fallback: true });
    expect((await get(g, id)).handoff).toMatchObject({ requestedBy: 'system', reason: 'bot_unavailable' });
    const next = await say(g, id, 'anyone?');
    expect(next.message.processing).toMatchObject(muted);
    expect(next.replies).toEqual([]);
    expect(bot.calls).toHaveLength(1);
  });

  it('not on a failing bot while HANDOFF_ON_BOT_FAILURE is off', async () => {
    const g = await start({ BOT_MAX_ATTEMPTS: '1', BOT_BREAKER_THRESHOLD: '1' });
    bot.mode = { kind: 'status', status: 500 };
    const id = await session(g);
    await say(g, id, 'hi');
    expect((await get(g, id)).status).toBe('open');
  });
});

describe('leaving handoff', () => {
  it('the bot’s next request after release is resumed, with the handoff’s messages in its history', async () => {
    const g = await start();
    const id = await session(g);
    await say(g, id, 'before');
    await g.api(`/v1/conversations/${id}/handoff`, { method: 'POST', json: {} });
    const calls = bot.calls.length;
    for (const text of ['during one', 'during two']) {
      expect((await say(g, id, text)).message.processing).toMatchObject(muted);
    }
    // Never the bot's, not then and not after.
    expect(bot.calls).toHaveLength(calls);
    expect((await g.api(`/v1/conversations/${id}/handoff`, { method: 'DELETE' })).status).toBe(200);
    const after = await say(g, id, 'after');
    expect(after.replies.map((r) => r.text)).toEqual(['re: after']);
    expect(bot.calls.slice(calls).map((c) => c.text)).toEqual(['after']);
    const resumed = bot.calls.at(-1)!;
    expect(resumed.resumed).toBe(true);
    expect(resumed.history).toEqual(['before', 're: before', 'during one', 'during two', 'after']);
    expect(bot.calls.slice(0, calls).every((c) => !c.resumed)).toBe(true);
    await say(g, id, 'later');
    expect(bot.calls.at(-1)!.resumed).toBe(false);
    expect((await get(g, id)).handoffResume).toBeUndefined();
  });
});

describe('typing in handoff', () => {
  it('shows the web-chat customer no typing indicator for a message no bot will answer', async () => {
    const g = await start({
      HANDOFF_KEYWORDS: 'agent',
      WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
      WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
    });
    const visitor = await ChatClient.ready(g.url);
    try {
      const id = visitor.find((f) => f.type === 'ready')[0]!.conversationId as string;
      const processed = (messageId: string) =>
        eventually(async () => {
          const m = (await (await g.api(`/v1/conversations/${id}/messages/${messageId}`)).json()) as Message;
          return m.processing?.state === 'skipped' ? m : null;
        });
      // The bot's own answer shows it, as before.
      await visitor.say('hi');
      await visitor.botSays('re: hi');
      expect(visitor.find((f) => f.type === 'typing' && f.on === true)).toHaveLength(1);
      const from = visitor.frames.length;
      // A keyword hands over without the bot: no indicator.
      await processed((await visitor.say('an agent please')).id as string);
      // In handoff: no indicator either.
      await processed((await visitor.say('still there?')).id as string);
      await new Promise((r) => setTimeout(r, 200));
      expect(visitor.find((f) => f.type === 'typing' && f.on === true, from)).toEqual([]);
      expect(bot.calls.map((c) => c.text)).toEqual(['hi']);
    } finally {
      await visitor.end();
    }
  });
});
