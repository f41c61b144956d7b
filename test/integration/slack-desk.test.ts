/**
 * The Slack agents' desk (SPEC §8) end to end, on two gateway processes sharing one Redis: a customer
 * on SMS (Twilio fake) asks for a human, ONE card appears in SLACK_AGENT_CHANNEL (fake Slack Web API),
 * the customer's next SMS is mirrored into the card's thread, an agent's reply in the thread reaches
 * the customer by SMS as that Slack user, Take and Hand back drive the handoff and update the card,
 * and the bot answers again with `resumed: true`. Slack's requests are signed at run time with
 * Slack's v0 scheme; retries, the bot's own posts and clicks on cards of deleted conversations change
 * nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/index.js';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import {
  BOT_ID,
  BOT_TOKEN,
  BOT_USER_ID,
  eventEnvelope,
  FakeSlackApi,
  nextTs,
  SIGNING_SECRET,
  type SlackPost,
  signSlack,
  TEAM_ID,
} from '../fakes/slack-api.js';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  FakeTwilioApi,
  postWebhook,
  smsParams,
  whatsappParams,
} from '../fakes/twilio-api.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

const DESK = 'C0DESK';
const PUBLIC_URL = 'https://chat.example.com';
const GATEWAY_NUMBER = '+15005550006';

describe.skipIf(!redisAvailable())("Slack as the agents' desk (two gateways, Redis)", () => {
  let redis: RedisServer;
  let bot: FakeBot;
  let twilio: FakeTwilioApi;
  let slack: FakeSlackApi;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    [redis, bot, twilio, slack] = await Promise.all([
      RedisServer.start(),
      FakeBot.start(),
      FakeTwilioApi.start(),
      FakeSlackApi.start(),
    ]);
    const env = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'desk',
      BOT_URL: bot.url,
      BOT_SECRET,
      PUBLIC_URL,
      HANDOFF_KEYWORDS: 'human',
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_URL: twilio.url,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_API_URL: slack.url,
      SLACK_TEAM_ID: TEAM_ID,
      SLACK_AGENT_CHANNEL: DESK,
    };
    [a, b] = await Promise.all([startGateway(env), startGateway(env)]);
  }, 30_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([bot?.close(), twilio?.close(), slack?.close()]);
    await redis?.dispose();
  });

  // --- helpers -------------------------------------------------------------------------------------

  async function sms(g: TestGateway, from: string, text: string): Promise<void> {
    const res = await postWebhook(`${g.url}/webhooks/twilio`, smsParams({ From: from, Body: text }), {
      signedUrl: `${PUBLIC_URL}/webhooks/twilio`,
    });
    expect(res.status).toBe(200);
  }

  /** What the Twilio fake was asked to send to `to`, in order. */
  const textsTo = (to: string) =>
    twilio
      .created()
      .filter((r) => r.fields.To === to)
      .map((r) => r.fields.Body);

  async function conversationOf(g: TestGateway, from: string): Promise<Conversation> {
    return eventually(async () => {
      const res = await g.api(`/v1/conversations?channel=sms&take=200`);
      const items = ((await res.json()) as { items: Conversation[] }).items;
      return items.find((c) => c.channelRef === `${GATEWAY_NUMBER}|${from}`);
    });
  }

  async function get(g: TestGateway, id: string): Promise<Conversation> {
    return (await (await g.api(`/v1/conversations/${id}`)).json()) as Conversation;
  }

  async function messages(g: TestGateway, id: string): Promise<Message[]> {
    const res = await g.api(`/v1/conversations/${id}/messages?take=200`);
    return ((await res.json()) as { items: Message[] }).items;
  }

  /** The top-level posts in the desk channel that are a card of this conversation. */
  const cardsOf = (conversationId: string): SlackPost[] =>
    slack.posts.filter(
      (p) => p.channel === DESK && !p.thread_ts && JSON.stringify(p.blocks ?? []).includes(conversationId),
    );

  const updatesOf = (card: SlackPost) => slack.updates.filter((u) => u.ts === card.ts);

  const actionIds = (blocks: Array<Record<string, unknown>> | undefined) =>
    (blocks ?? [])
      .filter((bl) => bl.type === 'actions')
      .flatMap((bl) => (bl.elements as Array<{ action_id: string }>).map((e) => e.action_id));

  async function slackPost(g: TestGateway, path: string, body: string, contentType: string, extra = {}) {
    return fetch(`${g.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': contentType, ...signSlack(body), ...extra },
      body,
    });
  }

  /**
   * A ts for a person's message, apart from the ones the fake gives the gateway's posts (same
   * seconds, small counters), so a reply is never mistaken for a mirrored copy by accident.
   */
  let replies = 0;
  const replyTs = () => `${Math.floor(Date.now() / 1000)}.${String(500_000 + ++replies)}`;

  /** An Events API `message` in the card's thread, as Slack sends a person's reply. */
  function threadReply(card: SlackPost, text: string, user = 'U0001', extra: Record<string, unknown> = {}) {
    const ts = replyTs();
    return eventEnvelope({
      type: 'message',
      channel: DESK,
      channel_type: 'channel',
      user,
      text,
      ts,
      event_ts: ts,
      thread_ts: card.ts,
      client_msg_id: `c-${ts}`,
      ...extra,
    });
  }

  function postEvent(g: TestGateway, envelope: Record<string, unknown>, headers = {}) {
    return slackPost(g, '/webhooks/slack/events', JSON.stringify(envelope), 'application/json', headers);
  }

  /** A `block_actions` click on a card's button, form-encoded as Slack posts it. */
  function click(g: TestGateway, card: { ts: string }, actionId: string, user = 'U0002') {
    const payload = {
      type: 'block_actions',
      user: { id: user, username: user.toLowerCase(), team_id: TEAM_ID },
      api_app_id: 'A0001',
      team: { id: TEAM_ID, domain: 'acme' },
      container: { type: 'message', message_ts: card.ts, channel_id: DESK, is_ephemeral: false },
      channel: { id: DESK, name: 'desk' },
      message: { type: 'message', ts: card.ts, user: BOT_USER_ID, bot_id: BOT_ID, text: 'card' },
      trigger_id: '1111.2222.abcd',
      response_url: 'https://hooks.slack.com/actions/T0001/1/x',
      actions: [
        {
          action_id: actionId,
          block_id: 'desk',
          type: 'button',
          text: { type: 'plain_text', text: actionId },
          value: 'ignored',
          action_ts: nextTs(),
        },
      ],
    };
    const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
    return slackPost(g, '/webhooks/slack/interactions', body, 'application/x-www-form-urlencoded');
  }

  /** A customer on SMS in handoff (by keyword), and the one card of that handoff. */
  async function handedOff(from: string): Promise<{ conversation: Conversation; card: SlackPost }> {
    await sms(a, from, 'I want a human please');
    const conversation = await conversationOf(a, from);
    await eventually(async () => (await get(b, conversation.id)).status === 'handoff');
    const card = await eventually(() => cardsOf(conversation.id)[0]);
    return { conversation, card };
  }

  // --- the tests -----------------------------------------------------------------------------------

  it('runs the full loop: one card, mirror, agent reply by SMS, Take, Hand back, bot resumed', async () => {
    const from = '+14155550101';
    await sms(a, from, 'hello');
    await eventually(() => textsTo(from).includes('re: hello'));
    const conversation = await conversationOf(a, from);

    // Handoff by keyword on one gateway while the API asks for it on the other; the same event is
    // seen by the second process too, while Slack is slow to answer the card: still one card.
    slack.postDelayMs = 300;
    await Promise.all([
      sms(a, from, 'I want a human please'),
      b.api(`/v1/conversations/${conversation.id}/handoff`, { method: 'POST', json: { reason: 'vip' } }),
    ]);
    const inHandoff = await eventually(async () => {
      const c = await get(b, conversation.id);
      return c.status === 'handoff' && c;
    });
    await b.gateway.deps.events.emit({
      type: 'conversation.handoff_requested',
      conversationId: conversation.id,
      seq: 0,
      conversation: inHandoff,
    });
    const card = await eventually(() => cardsOf(conversation.id)[0]);
    slack.postDelayMs = 0;
    await new Promise((r) => setTimeout(r, 500));
    expect(cardsOf(conversation.id)).toHaveLength(1);
    const shown = JSON.stringify(card.blocks);
    expect(shown).toContain(from);
    expect(shown).toContain('sms');
    expect(shown).toContain(inHandoff.handoff?.reason ?? 'missing');
    expect(shown).toContain('hello');
    expect(actionIds(card.blocks)).toEqual(['desk_take', 'desk_release']);
    expect(JSON.stringify(card.blocks)).toMatch(/"Take".*"Hand back to bot"/);

    // The next customer SMS is mirrored into the thread, and the bot is not asked.
    const botCalls = bot.calls.length;
    await sms(b, from, 'my order is late');
    const mirrored = await eventually(() =>
      slack.threadOf(DESK, card.ts).find((p) => p.text.includes('my order is late')),
    );
    expect(mirrored.text).toContain(from);
    // Only what was said after the handoff began: the message asking for it is on the card.
    expect(slack.threadOf(DESK, card.ts).map((p) => p.text)).toEqual([mirrored.text]);

    // An agent answers in the thread (on the other gateway): the customer gets it by SMS.
    const reply = threadReply(card, 'Hi, Jane here. Let me check.');
    expect((await postEvent(b, reply)).status).toBe(200);
    await eventually(() => textsTo(from).includes('Hi, Jane here. Let me check.'));
    const agentMessage = await eventually(async () =>
      (await messages(a, conversation.id)).find((m) => m.type === 'agent'),
    );
    expect(agentMessage).toMatchObject({
      direction: 'outbound',
      participantId: `slack:${TEAM_ID}:U0001`,
      name: 'Jane D',
      text: 'Hi, Jane here. Let me check.',
    });
    // The reply itself is not mirrored back into the thread, and the bot was never asked.
    expect(slack.threadOf(DESK, card.ts).filter((p) => p.text.includes('Jane here'))).toHaveLength(0);

    // Bob clicks Take: assigned to him, and the card says so.
    expect((await click(a, card, 'desk_take', 'U0002')).status).toBe(200);
    const taken = await eventually(async () => {
      const c = await get(a, conversation.id);
      return c.handoff?.assignee === `slack:${TEAM_ID}:U0002` && c;
    });
    expect(taken.handoff?.state).toBe('assigned');
    expect(taken.participants).toContainEqual(
      expect.objectContaining({ id: `slack:${TEAM_ID}:U0002`, role: 'agent', name: 'Bob Roe' }),
    );
    await eventually(() =>
      updatesOf(card).some((u) => JSON.stringify(u.blocks).includes('Taken by Bob Roe')),
    );

    // Hand back to bot: released, and the card shows it without buttons.
    expect((await click(b, card, 'desk_release', 'U0002')).status).toBe(200);
    await eventually(async () => (await get(a, conversation.id)).status === 'open');
    const released = await eventually(() =>
      updatesOf(card).find((u) => JSON.stringify(u.blocks).includes('Back with the bot')),
    );
    expect(actionIds(released.blocks)).toEqual([]);
    expect(bot.calls.length).toBe(botCalls);

    // The bot answers the next SMS, told it resumes after a handoff.
    await sms(a, from, 'thanks');
    await eventually(() => textsTo(from).includes('re: thanks'));
    const resumedCall = bot.calls.find((c) => c.conversationId === conversation.id && c.text === 'thanks');
    expect(resumedCall?.resumed).toBe(true);
    expect(resumedCall?.history).toContain('my order is late');
  }, 60_000);

  it('never takes the bot’s own posts, other bots or system messages in the thread as agent replies', async () => {
    const from = '+14155550102';
    const { conversation, card } = await handedOff(from);
    await sms(a, from, 'still there?');
    const mirrored = await eventually(() =>
      slack.threadOf(DESK, card.ts).find((p) => p.text.includes('still there?')),
    );
    // Remembered as ours once posted.
    await eventually(() => a.gateway.deps.store.kv.get(`slack:desk:own:${DESK}:${mirrored.ts}`));
    const echoes = [
      // Our mirrored post, as Slack echoes it back: the bot user, with its bot_id.
      threadReply(card, mirrored.text, BOT_USER_ID, { ts: mirrored.ts, bot_id: BOT_ID }),
      // The same post seen without bot_id (an event shape without it): still ours, by its ts.
      threadReply(card, mirrored.text, 'U0001', { ts: mirrored.ts }),
      threadReply(card, 'bot_message subtype', undefined, { subtype: 'bot_message', bot_id: 'B0OTHER' }),
      threadReply(card, 'another app', 'U0OTHER', { bot_id: 'B0OTHER' }),
      threadReply(card, 'joined', 'U0003', { subtype: 'channel_join' }),
    ];
    for (const e of echoes) expect((await postEvent(a, e)).status).toBe(200);
    // A real reply after them, as a fence: it arrives, nothing before it did.
    expect((await postEvent(b, threadReply(card, 'A real answer'))).status).toBe(200);
    await eventually(() => textsTo(from).includes('A real answer'));
    expect(textsTo(from).filter((t) => t !== 're: I want a human please')).toEqual(['A real answer']);
    const agentTexts = (await messages(a, conversation.id))
      .filter((m) => m.type === 'agent')
      .map((m) => m.text);
    expect(agentTexts).toEqual(['A real answer']);
  }, 30_000);

  it('delivers an agent reply once when Slack retries it, to either gateway', async () => {
    const from = '+14155550103';
    const { conversation, card } = await handedOff(from);
    const reply = threadReply(card, 'Only once, please');
    const retry = { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' };
    const statuses = await Promise.all([postEvent(a, reply), postEvent(b, reply, retry)]);
    expect(statuses.map((r) => r.status)).toEqual([200, 200]);
    await eventually(() => textsTo(from).includes('Only once, please'));
    expect(
      (await postEvent(a, reply, { 'x-slack-retry-num': '2', 'x-slack-retry-reason': 'http_error' })).status,
    ).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect(textsTo(from).filter((t) => t === 'Only once, please')).toHaveLength(1);
    const agentMessages = (await messages(b, conversation.id)).filter((m) => m.type === 'agent');
    expect(agentMessages).toHaveLength(1);

    // Closing the conversation ends the handoff; the card says so, without buttons.
    const closed = await a.api(`/v1/conversations/${conversation.id}`, {
      method: 'PATCH',
      json: { status: 'closed' },
    });
    expect(closed.status).toBe(200);
    const final = await eventually(() =>
      updatesOf(card).find((u) => JSON.stringify(u.blocks).includes('*State*\\nClosed')),
    );
    expect(actionIds(final.blocks)).toEqual([]);
  }, 30_000);

  it('works a WhatsApp customer the same way, the handoff asked for through the API', async () => {
    const from = 'whatsapp:+34600000105';
    const params = whatsappParams({
      From: from,
      WaId: '34600000105',
      ProfileName: 'Maria',
      Body: 'My parcel',
    });
    const res = await postWebhook(`${b.url}/webhooks/twilio`, params, {
      signedUrl: `${PUBLIC_URL}/webhooks/twilio`,
    });
    expect(res.status).toBe(200);
    await eventually(() => textsTo(from).includes('re: My parcel'));
    const conversation = await eventually(async () => {
      const list = await a.api('/v1/conversations?channel=whatsapp&take=200');
      return ((await list.json()) as { items: Conversation[] }).items.find((c) =>
        c.channelRef.endsWith(`|${from.replace('whatsapp:', '')}`),
      );
    });
    const asked = await b.api(`/v1/conversations/${conversation.id}/handoff`, {
      method: 'POST',
      json: { reason: 'lost_parcel' },
    });
    expect(asked.status).toBe(200);
    const card = await eventually(() => cardsOf(conversation.id)[0]);
    expect(JSON.stringify(card.blocks)).toMatch(/Maria[\s\S]*whatsapp[\s\S]*lost_parcel/);
    expect((await click(a, card, 'desk_take', 'U0001')).status).toBe(200);
    await eventually(() => updatesOf(card).some((u) => JSON.stringify(u.blocks).includes('Taken by Jane D')));
    expect((await postEvent(a, threadReply(card, "Hi Maria, I'm Jane."))).status).toBe(200);
    await eventually(() => textsTo(from).includes("Hi Maria, I'm Jane."));
    expect((await get(b, conversation.id)).handoff?.assignee).toBe(`slack:${TEAM_ID}:U0001`);
  }, 30_000);

  it('answers 200 to a click on a card whose conversation is deleted or unknown, changing nothing', async () => {
    const from = '+14155550104';
    const { conversation, card } = await handedOff(from);
    expect((await a.api(`/v1/conversations/${conversation.id}`, { method: 'DELETE' })).status).toBe(200);
    const updates = slack.updates.length;
    const posts = slack.posts.length;
    expect((await click(b, card, 'desk_take', 'U0002')).status).toBe(200);
    expect((await click(a, card, 'desk_release', 'U0002')).status).toBe(200);
    expect((await click(a, { ts: '1700000000.999999' }, 'desk_take', 'U0002')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect((await a.api(`/v1/conversations/${conversation.id}`)).status).toBe(404);
    expect(slack.updates.length).toBe(updates);
    expect(slack.posts.length).toBe(posts);
    const logged = [...a.logs.lines, ...b.logs.lines].filter((l) =>
      String(l.msg).includes('click on a card whose conversation is gone'),
    );
    expect(logged.length).toBeGreaterThanOrEqual(3);
  }, 30_000);
});
