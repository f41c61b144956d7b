/**
 * Typing while queued (src/typing/), end to end on real Redis with the real twilio and Slack clients
 * pointed at the recording fakes: the indicator starts for a slow bot once TYPING_AFTER_MS have passed
 * since the message was accepted, never for a bot that answers sooner, never after the reply (each
 * fake records its requests in arrival order), ends on a bot failure and on a handoff, never starts
 * for a handed-off conversation, and is never sent on a channel without one (SMS). Web chat's frames
 * likewise.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/model.js';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { eventEnvelope, FakeSlackApi, nextTs, SIGNING_SECRET, signSlack } from '../fakes/slack-api.js';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  FakeTwilioApi,
  newSid,
  postWebhook,
  smsParams,
  whatsappParams,
} from '../fakes/twilio-api.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { dropPrefix, redisForSuite } from '../helpers/redis-suite.js';
import { ChatClient, ORIGIN, visitorToken, WEBCHAT_SECRET } from '../helpers/webchat-client.js';

const PUBLIC_URL = 'https://chat.example.com';
const AFTER_MS = 300;
/** Well past TYPING_AFTER_MS, well within the bot timeout. */
const SLOW_MS = 900;
const PREFIX = `typing${process.pid}`;

const redis = redisForSuite();
let bot: FakeBot;
let twilioApi: FakeTwilioApi;
let slack: FakeSlackApi;
let gw: TestGateway;

beforeAll(async () => {
  [bot, twilioApi, slack] = await Promise.all([FakeBot.start(), FakeTwilioApi.start(), FakeSlackApi.start()]);
  gw = await startGateway({
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: PREFIX,
    PUBLIC_URL,
    BOT_URL: bot.url,
    BOT_SECRET,
    BOT_MAX_ATTEMPTS: '1',
    BOT_TIMEOUT_MS: '1500',
    TYPING_AFTER_MS: String(AFTER_MS),
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_URL: twilioApi.url,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: 'xoxb-test-0000-token',
    SLACK_API_URL: slack.url,
    SLACK_ASSISTANT: 'true',
    WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
    WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
  });
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all([bot?.close(), twilioApi?.close(), slack?.close()]);
  if (redis.url) await dropPrefix(redis.url, PREFIX);
});

beforeEach(() => {
  // Slow for texts that say so, at once otherwise.
  bot.mode = { kind: 'echo', delayMs: (call) => (call.text.startsWith('slow') ? SLOW_MS : 0) };
});

function sendWhatsApp(params: Record<string, string>) {
  return postWebhook(`${gw.url}/webhooks/twilio`, params, { signedUrl: `${PUBLIC_URL}/webhooks/twilio` });
}

/** A WhatsApp message from a customer of their own (one conversation each). */
function whatsapp(customer: string, text: string) {
  return whatsappParams({
    MessageSid: newSid(),
    Body: text,
    From: `whatsapp:${customer}`,
    WaId: customer.slice(1),
  });
}

async function storedInbound(sid: string): Promise<Message> {
  return eventually(async () => {
    const res = await gw.api('/v1/conversations?channel=whatsapp&take=200');
    for (const c of ((await res.json()) as { items: Conversation[] }).items) {
      const items = (
        (await (await gw.api(`/v1/conversations/${c.id}/messages?take=200`)).json()) as { items: Message[] }
      ).items;
      const found = items.find((m) => m.externalId === sid);
      if (found) return found;
    }
    return undefined;
  });
}

/** Index, in the fake's arrival order, of the reply create with this Body. */
function replyIndex(body: string): Promise<number> {
  return eventually(() => {
    const i = twilioApi.requests.findIndex((r) => r.status === 201 && r.fields.Body === body);
    return i >= 0 ? i + 1 : undefined;
  }).then((i) => i - 1);
}

function typingFor(sid: string) {
  return twilioApi.requests
    .map((r, index) => ({ ...r, index }))
    .filter((r) => r.path === '/v2/Indicators/Typing.json' && r.fields.messageId === sid);
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('WhatsApp through Twilio', () => {
  it('a slow bot: the indicator for the message after TYPING_AFTER_MS, before the reply', async () => {
    const params = whatsapp('+14155550201', 'slow one');
    expect((await sendWhatsApp(params)).status).toBe(200);
    const reply = await replyIndex('re: slow one');
    const stored = await storedInbound(params.MessageSid ?? '');
    const typing = typingFor(params.MessageSid ?? '');
    expect(typing.length).toBeGreaterThanOrEqual(1);
    expect(typing[0]).toMatchObject({
      method: 'POST',
      user: ACCOUNT_SID,
      fields: { channel: 'whatsapp', messageId: params.MessageSid },
      status: 200,
    });
    // Not before TYPING_AFTER_MS from the acceptance (the fake stamps arrival with Date.now()).
    expect(typing[0]!.at).toBeGreaterThanOrEqual(Date.parse(stored.createdAt) + AFTER_MS - 1);
    for (const t of typing) expect(t.index).toBeLessThan(reply);
  });

  it('a fast bot: no indicator at all', async () => {
    const params = whatsapp('+14155550202', 'quick one');
    expect((await sendWhatsApp(params)).status).toBe(200);
    await replyIndex('re: quick one');
    // Past the moment the indicator would have been due.
    await pause(AFTER_MS * 2);
    expect(typingFor(params.MessageSid ?? '')).toEqual([]);
  });

  it('a message queued behind a slow one gets its own indicator after the first reply, before its own', async () => {
    const first = whatsapp('+14155550203', 'slow first');
    const second = whatsapp('+14155550203', 'slow second');
    expect((await sendWhatsApp(first)).status).toBe(200);
    expect((await sendWhatsApp(second)).status).toBe(200);
    const firstReply = await replyIndex('re: slow first');
    const secondReply = await replyIndex('re: slow second');
    expect(firstReply).toBeLessThan(secondReply);
    const firstTyping = typingFor(first.MessageSid ?? '');
    const secondTyping = typingFor(second.MessageSid ?? '');
    expect(firstTyping.length).toBeGreaterThanOrEqual(1);
    expect(secondTyping.length).toBeGreaterThanOrEqual(1);
    for (const t of firstTyping) expect(t.index).toBeLessThan(firstReply);
    // It had waited longer than TYPING_AFTER_MS when its turn came: shown then, never after its reply.
    for (const t of secondTyping) {
      expect(t.index).toBeGreaterThan(firstReply);
      expect(t.index).toBeLessThan(secondReply);
    }
  });

  it('a bot that fails: the indicator went out before the fallback reply, none after', async () => {
    bot.script.push({ kind: 'hang' });
    const params = whatsapp('+14155550204', 'this one hangs');
    expect((await sendWhatsApp(params)).status).toBe(200);
    const fallback = await eventually(() => {
      const i = twilioApi.requests.findIndex(
        (r) => r.status === 201 && r.fields.To === 'whatsapp:+14155550204',
      );
      return i >= 0 ? { i } : undefined;
    });
    await pause(AFTER_MS);
    const typing = typingFor(params.MessageSid ?? '');
    expect(typing.length).toBeGreaterThanOrEqual(1);
    for (const t of typing) expect(t.index).toBeLessThan(fallback.i);
  });

  it('SMS has no indicator: nothing is sent for a slow bot', async () => {
    const params = smsParams({ MessageSid: newSid(), From: '+14155550205', Body: 'slow sms' });
    expect((await sendWhatsApp(params)).status).toBe(200);
    await replyIndex('re: slow sms');
    expect(typingFor(params.MessageSid ?? '')).toEqual([]);
    expect(twilioApi.typing().filter((r) => r.fields.messageId === params.MessageSid)).toEqual([]);
  });
});

describe('Slack assistant threads', () => {
  function postEvent(event: Record<string, unknown>) {
    const body = JSON.stringify(eventEnvelope(event));
    return fetch(`${gw.url}/webhooks/slack/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signSlack(body) },
      body,
    });
  }

  /** A message in the app's assistant thread of direct message channel `channel`. */
  function threadMessage(channel: string, threadTs: string, text: string) {
    const ts = nextTs();
    return { type: 'message', channel, channel_type: 'im', user: 'U0001', text, ts, thread_ts: threadTs };
  }

  type Entry = { kind: 'status'; status?: string; thread?: string } | { kind: 'post'; text?: string };

  /** The fake's calls for `channel`, in arrival order: statuses set and messages posted. */
  function timeline(channel: string): Entry[] {
    return slack.calls.flatMap((c): Entry[] => {
      if (c.method === 'assistant.threads.setStatus' && c.params.channel_id === channel)
        return [{ kind: 'status', status: c.params.status, thread: c.params.thread_ts }];
      if (c.method === 'chat.postMessage' && c.params.channel === channel)
        return [{ kind: 'post', text: c.params.text }];
      return [];
    });
  }

  function lastPostIndex(channel: string, text: string) {
    return eventually(() => {
      const i = timeline(channel).findLastIndex((e) => e.kind === 'post' && e.text === text);
      return i >= 0 ? { i } : undefined;
    }).then((r) => r.i);
  }

  it('a slow bot: "is typing…" on the thread before the reply, cleared after it; a fast bot: none', async () => {
    const thread = nextTs();
    expect((await postEvent(threadMessage('D0TYP1', thread, 'slow slack'))).status).toBe(200);
    const reply = await lastPostIndex('D0TYP1', 're: slow slack');
    const clear = await eventually(() => {
      const i = timeline('D0TYP1').findIndex((e) => e.kind === 'status' && e.status === '');
      return i >= 0 ? { i } : undefined;
    });
    const events = timeline('D0TYP1');
    const shown = events.flatMap((e, i) => (e.kind === 'status' && e.status !== '' ? [i] : []));
    expect(shown.length).toBeGreaterThanOrEqual(1);
    expect(events[shown[0]!]).toEqual({ kind: 'status', status: 'is typing…', thread });
    for (const i of shown) expect(i).toBeLessThan(reply);
    expect(clear.i).toBeGreaterThan(reply);

    expect((await postEvent(threadMessage('D0TYP2', nextTs(), 'quick slack'))).status).toBe(200);
    await lastPostIndex('D0TYP2', 're: quick slack');
    await pause(AFTER_MS * 2);
    expect(timeline('D0TYP2').filter((e) => e.kind === 'status')).toEqual([]);
  });

  it('a bot that fails: shown, then cleared, never shown after the fallback reply', async () => {
    bot.script.push({ kind: 'hang' });
    expect((await postEvent(threadMessage('D0TYP3', nextTs(), 'slack hangs'))).status).toBe(200);
    await eventually(() => timeline('D0TYP3').some((e) => e.kind === 'post'));
    await eventually(() => timeline('D0TYP3').some((e) => e.kind === 'status' && e.status === ''));
    const events = timeline('D0TYP3');
    const post = events.findIndex((e) => e.kind === 'post');
    expect(events.slice(0, post).some((e) => e.kind === 'status' && e.status === 'is typing…')).toBe(true);
    expect(events.slice(post).filter((e) => e.kind === 'status' && e.status !== '')).toEqual([]);
  });

  it('a handoff: ended with the handoff reply, and never started for the muted messages after it', async () => {
    bot.script.push({ kind: 'handoff', delayMs: SLOW_MS });
    const thread = nextTs();
    expect((await postEvent(threadMessage('D0TYP4', thread, 'I need help'))).status).toBe(200);
    const reply = await lastPostIndex('D0TYP4', 'A human will take over.');
    await eventually(() => timeline('D0TYP4').some((e) => e.kind === 'status' && e.status === ''));
    const before = timeline('D0TYP4');
    expect(before.slice(0, reply).some((e) => e.kind === 'status' && e.status === 'is typing…')).toBe(true);
    expect(before.slice(reply).filter((e) => e.kind === 'status' && e.status !== '')).toEqual([]);

    // Humans have the conversation now: the bot is not asked, and no indicator promises a reply.
    const calls = bot.calls.length;
    expect((await postEvent(threadMessage('D0TYP4', thread, 'slow are you there?'))).status).toBe(200);
    await eventually(async () => {
      const res = await gw.api('/v1/conversations?channel=slack&take=200');
      const conv = ((await res.json()) as { items: Conversation[] }).items.find(
        (c) => c.channelRef === 'T0001:D0TYP4',
      );
      const items = (
        (await (await gw.api(`/v1/conversations/${conv?.id}/messages?take=200`)).json()) as {
          items: Message[];
        }
      ).items;
      return items.find((m) => m.text === 'slow are you there?')?.processing?.state === 'skipped';
    });
    await pause(AFTER_MS * 2);
    expect(bot.calls.length).toBe(calls);
    expect(timeline('D0TYP4')).toEqual(before);
  });
});

describe('web chat', () => {
  it('a slow bot: typing on after TYPING_AFTER_MS, before the reply, off after it; a fast bot: no frames', async () => {
    const tab = await ChatClient.ready(gw.url, { token: visitorToken({ sub: `typing-${Date.now()}` }) });
    try {
      const ack = await tab.say('slow web');
      const reply = await tab.botSays('re: slow web');
      const on = tab.frames.findIndex((f) => f.type === 'typing' && f.on === true);
      expect(on).toBeGreaterThan(tab.frames.indexOf(ack));
      expect(on).toBeLessThan(tab.frames.indexOf(reply));
      await tab.next('typing', (f) => f.on === false, tab.frames.indexOf(reply));

      const from = tab.frames.length;
      await tab.say('quick web');
      await tab.botSays('re: quick web', from);
      await pause(AFTER_MS * 2);
      expect(tab.find((f) => f.type === 'typing', from)).toEqual([]);
    } finally {
      tab.ws.close();
    }
  });
});
