/**
 * Agents and multi-party conversations (SPEC §8) on real Redis, one gateway with every channel: the
 * participants API (activity messages and `participant.*` events once), agent messages through
 * `POST /v1/conversations/:id/send` with `from` reaching SMS (Twilio fake), Slack (`username`, Slack
 * fake), email (display name and reply-all through a real SMTP sink) and web chat (frame `from`),
 * agent typing relayed to web chat, several Slack users and email From/To/Cc as user participants,
 * and the 404/422 refusals. The HTTP test bot records every call: agent messages never reach it.
 */
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, DomainEvent, Message, Participant } from '../../src/core/index.js';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { FakeDns } from '../fakes/dns.js';
import {
  BOT_TOKEN,
  BOT_USER_ID,
  eventEnvelope,
  FakeSlackApi,
  nextTs,
  SIGNING_SECRET,
  signSlack,
  TEAM_ID,
} from '../fakes/slack-api.js';
import { SmtpSink } from '../fakes/smtp-sink.js';
import { ACCOUNT_SID, AUTH_TOKEN, FakeTwilioApi } from '../fakes/twilio-api.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort, RedisServer } from '../helpers/redis.js';
import { ChatClient, ORIGIN, visitorToken, WEBCHAT_SECRET } from '../helpers/webchat-client.js';

const SUPPORT = 'support@help.example.com';

let redis: RedisServer;
let bot: FakeBot;
let twilio: FakeTwilioApi;
let slack: FakeSlackApi;
let sink: SmtpSink;
let mailer: nodemailer.Transporter;
let gw: TestGateway;
const events: DomainEvent[] = [];

beforeAll(async () => {
  redis = await RedisServer.start();
  [bot, twilio, slack, sink] = await Promise.all([
    FakeBot.start(),
    FakeTwilioApi.start(),
    FakeSlackApi.start(),
    SmtpSink.start(),
  ]);
  const smtpPort = await freePort();
  const dns = new FakeDns().spf('example.org', 'v=spf1 ip4:127.0.0.1 -all').dmarc('example.org');
  gw = await startGateway(
    {
      REDIS_URL: redis.url,
      BOT_URL: bot.url,
      BOT_SECRET,
      PUBLIC_URL: 'https://chat.example.com',
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_URL: twilio.url,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_API_URL: slack.url,
      SLACK_TEAM_ID: TEAM_ID,
      EMAIL_FROM: `Example Support <${SUPPORT}>`,
      SMTP_URL: sink.url,
      EMAIL_SMTP_PORT: String(smtpPort),
      EMAIL_SMTP_HOST: '127.0.0.1',
      EMAIL_BOUNCE_SECRET: 'test-bounce-secret-0123456789abcdef',
      WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
      WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
    },
    {},
    { email: { resolver: dns.resolver } },
  );
  gw.gateway.deps.events.on((e) => {
    events.push(e);
  });
  mailer = nodemailer.createTransport({
    host: '127.0.0.1',
    port: smtpPort,
    ignoreTLS: true,
    name: 'mail.example.org',
  });
}, 30_000);

afterAll(async () => {
  mailer?.close();
  await gw?.stop();
  await Promise.all([bot?.close(), twilio?.close(), slack?.close(), sink?.stop()]);
  await redis?.dispose();
});

async function json<T>(res: Response | Promise<Response>, status = 200): Promise<T> {
  const r = await res;
  const body = (await r.json()) as T;
  expect(r.status, JSON.stringify(body)).toBe(status);
  return body;
}

const conversation = (id: string) => json<Conversation>(gw.api(`/v1/conversations/${id}`));
const messages = async (id: string) =>
  (await json<{ items: Message[] }>(gw.api(`/v1/conversations/${id}/messages?take=200`))).items;

async function addAgent(conversationId: string, name: string, address?: string): Promise<Participant> {
  return json<Participant>(
    gw.api(`/v1/conversations/${conversationId}/participants`, {
      method: 'POST',
      json: { role: 'agent', name, ...(address ? { address } : {}) },
    }),
    201,
  );
}

function sendAs(conversationId: string, agentId: string, text: string): Promise<Response> {
  return gw.api(`/v1/conversations/${conversationId}/send`, {
    method: 'POST',
    json: { text, from: { id: agentId } },
  });
}

const eventsOf = (conversationId: string, type: string) =>
  events.filter((e) => e.conversationId === conversationId && e.type === type);

async function problem(res: Response, status: number, code: string): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(await res.json()).toMatchObject({ status, code });
}

describe('the participants API', () => {
  it('adds and removes participants, each change an activity message and one event', async () => {
    const c = await json<Conversation>(gw.api('/v1/conversations', { method: 'POST', json: {} }), 201);
    const ana = await addAgent(c.id, 'Ana', 'ana@example.com');
    expect(ana).toMatchObject({ role: 'agent', name: 'Ana', address: 'ana@example.com' });
    expect(ana.id).toMatch(/^part_/);
    // A retry (same role and address, or the same id) adds nobody.
    const again = await json<Participant>(
      gw.api(`/v1/conversations/${c.id}/participants`, {
        method: 'POST',
        json: { role: 'agent', name: 'Ana', address: 'ana@example.com' },
      }),
    );
    expect(again.id).toBe(ana.id);
    const guest = await json<Participant>(
      gw.api(`/v1/conversations/${c.id}/participants`, {
        method: 'POST',
        json: { id: 'guest-1', role: 'user', name: 'Guest' },
      }),
      201,
    );
    // A user participant gets a contact like any other (unverified: the caller's word).
    expect(typeof guest.contactId).toBe('string');
    const listed = await json<{ items: Participant[] }>(gw.api(`/v1/conversations/${c.id}/participants`));
    expect(listed.items.map((p) => p.id)).toEqual([ana.id, 'guest-1']);

    expect(
      await json(gw.api(`/v1/conversations/${c.id}/participants/${guest.id}`, { method: 'DELETE' })),
    ).toEqual({ id: 'guest-1' });
    await problem(
      await gw.api(`/v1/conversations/${c.id}/participants/${guest.id}`, { method: 'DELETE' }),
      404,
      'GW_ERR_NOT_FOUND',
    );
    expect((await conversation(c.id)).participants.map((p) => p.id)).toEqual([ana.id]);

    const activity = (await messages(c.id)).filter((m) => m.type === 'activity');
    expect(activity.map((m) => [m.text, m.participantId, m.direction])).toEqual([
      ['Ana joined', ana.id, 'internal'],
      ['Guest joined', 'guest-1', 'internal'],
      ['Guest left', 'guest-1', 'internal'],
    ]);
    expect(eventsOf(c.id, 'participant.added').map((e) => e.participant?.id)).toEqual([ana.id, 'guest-1']);
    expect(eventsOf(c.id, 'participant.removed').map((e) => e.participant?.id)).toEqual(['guest-1']);
  });

  it('records an agent added by assigning the handoff like any other join', async () => {
    const c = await json<Conversation>(gw.api('/v1/conversations', { method: 'POST', json: {} }), 201);
    const assigned = await json<Conversation>(
      gw.api(`/v1/conversations/${c.id}/handoff/assign`, {
        method: 'POST',
        json: { agent: { name: 'Bea', address: 'bea@example.com' } },
      }),
    );
    const bea = assigned.participants.find((p) => p.role === 'agent')!;
    expect(assigned.handoff?.assignee).toBe(bea.id);
    expect((await messages(c.id)).map((m) => [m.type, m.text, m.participantId])).toEqual([
      ['activity', 'Bea joined', bea.id],
    ]);
    expect(eventsOf(c.id, 'participant.added')).toHaveLength(1);
  });

  it('adds a participant once when the same add races', async () => {
    const c = await json<Conversation>(gw.api('/v1/conversations', { method: 'POST', json: {} }), 201);
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        gw.api(`/v1/conversations/${c.id}/participants`, {
          method: 'POST',
          json: { id: 'agent-x', role: 'agent', name: 'Xi' },
        }),
      ),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    expect(eventsOf(c.id, 'participant.added')).toHaveLength(1);
    expect((await messages(c.id)).filter((m) => m.type === 'activity')).toHaveLength(1);
  });

  it('refuses from a participant who is not an agent (422) and an unknown one (404)', async () => {
    const c = await json<Conversation>(
      gw.api('/v1/conversations', {
        method: 'POST',
        json: { participants: [{ id: 'cust-1', role: 'user', name: 'Cus' }] },
      }),
      201,
    );
    await problem(await sendAs(c.id, 'cust-1', 'hi'), 422, 'GW_ERR_NOT_AN_AGENT');
    await problem(await sendAs(c.id, 'nobody', 'hi'), 404, 'GW_ERR_NOT_FOUND');
    const typing = (id: string) =>
      gw.api(`/v1/conversations/${c.id}/typing`, { method: 'POST', json: { from: { id } } });
    await problem(await typing('cust-1'), 422, 'GW_ERR_NOT_AN_AGENT');
    await problem(await typing('nobody'), 404, 'GW_ERR_NOT_FOUND');
    await problem(
      await gw.api(`/v1/conversations/${c.id}/participants`, { method: 'POST', json: { role: 'boss' } }),
      400,
      'GW_ERR_VALIDATION',
    );
    // Nothing was sent or stored, and the conversation is still the bot's.
    expect((await messages(c.id)).filter((m) => m.direction === 'outbound')).toEqual([]);
    expect((await conversation(c.id)).status).toBe('open');
  });
});

describe('authors', () => {
  it('records the participant who wrote each message: the API session’s user, the web-chat visitor', async () => {
    const session = await json<{ conversationId: string }>(
      gw.api('/v1/sessions', { method: 'POST', json: { user: { id: 'user-api-1', name: 'Uma' } } }),
      201,
    );
    const said = await json<{ message: Message; replies: Message[] }>(
      gw.api('/v1/messages', {
        method: 'POST',
        json: { conversationId: session.conversationId, text: 'who am I', wait: 10 },
      }),
    );
    expect(said.message.participantId).toBe('user-api-1');

    const visitor = `authors-${Date.now()}`;
    const chat = await ChatClient.ready(gw.url, { token: visitorToken({ sub: visitor }) });
    try {
      chat.send({ type: 'message', clientMessageId: 'c-1', text: 'hello there' });
      const ack = await chat.next('ack');
      const id = chat.frames.find((f) => f.type === 'ready')!.conversationId as string;
      const stored = await json<Message>(gw.api(`/v1/conversations/${id}/messages/${ack.id}`));
      const conv = await conversation(id);
      expect(stored.participantId).toBe(conv.participants[0]?.id);
      expect(conv.participants[0]).toMatchObject({ role: 'user' });
    } finally {
      chat.ws.close();
    }
  });
});

describe('agent messages through the channels', () => {
  it('SMS: reaches Twilio, stored as type agent with the agent as author; the open conversation is taken', async () => {
    const c = await json<Conversation>(
      gw.api('/v1/conversations', {
        method: 'POST',
        json: {
          channel: 'sms',
          participants: [
            { role: 'bot', address: '+15005550006' },
            { id: 'cust-sms', role: 'user', address: '+14155551234' },
          ],
        },
      }),
      201,
    );
    const ana = await addAgent(c.id, 'Ana');
    const sent = await json<Message>(sendAs(c.id, ana.id, 'Hi, Ana here.'), 201);
    expect(sent).toMatchObject({
      type: 'agent',
      direction: 'outbound',
      participantId: ana.id,
      name: 'Ana',
      text: 'Hi, Ana here.',
    });
    expect(['sent', 'delivered']).toContain(sent.delivery?.status);
    const req = await eventually(() => twilio.requests.find((r) => r.fields.Body === 'Hi, Ana here.'));
    expect(req.fields).toMatchObject({ From: '+15005550006', To: '+14155551234' });
    expect(await conversation(c.id)).toMatchObject({
      status: 'handoff',
      handoff: { state: 'assigned', requestedBy: 'agent', assignee: ana.id },
    });
    expect(eventsOf(c.id, 'conversation.handoff_assigned')).toHaveLength(1);
    expect(bot.calls.filter((call) => call.conversationId === c.id)).toEqual([]);
  });

  it('Slack: posted under the agent’s name; several people in one thread are each a user participant', async () => {
    const ts = nextTs();
    const channel = 'C7001';
    const post = (event: Record<string, unknown>) => {
      const body = JSON.stringify(eventEnvelope(event));
      return fetch(`${gw.url}/webhooks/slack/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signSlack(body) },
        body,
      });
    };
    const mention = {
      type: 'app_mention',
      channel,
      user: 'U0101',
      text: `<@${BOT_USER_ID}> help us`,
      ts,
      event_ts: ts,
    };
    expect((await post(mention)).status).toBe(200);
    await eventually(() => slack.posts.find((p) => p.channel === channel));
    const second = {
      type: 'message',
      channel,
      channel_type: 'channel',
      user: 'U0102',
      text: 'me too',
      ts: nextTs(),
      thread_ts: ts,
    };
    expect((await post(second)).status).toBe(200);
    const c = await eventually(async () => {
      const list = await json<{ items: Conversation[] }>(gw.api(`/v1/conversations?channel=slack&take=200`));
      return list.items.find(
        (x) => x.channelRef === `${TEAM_ID}:${channel}:${ts}` && x.participants.length === 2,
      );
    });
    expect(c.participants.map((p) => [p.id, p.role])).toEqual([
      ['U0101', 'user'],
      ['U0102', 'user'],
    ]);
    const stored = await eventually(async () => {
      const all = await messages(c.id);
      return all.some((m) => m.text === 'me too') ? all : null;
    });
    expect(stored.find((m) => m.text === 'help us')?.participantId).toBe('U0101');
    expect(stored.find((m) => m.text === 'me too')?.participantId).toBe('U0102');
    // The second person's join is recorded; the first one started the conversation.
    expect(stored.filter((m) => m.type === 'activity').map((m) => m.participantId)).toEqual(['U0102']);
    expect(eventsOf(c.id, 'participant.added').map((e) => e.participant?.id)).toEqual(['U0102']);

    const ana = await addAgent(c.id, 'Ana Agent');
    await json<Message>(sendAs(c.id, ana.id, 'Ana has it from here'), 201);
    const agentPost = await eventually(() => slack.posts.find((p) => p.text === 'Ana has it from here'));
    expect(agentPost).toMatchObject({ channel, thread_ts: ts, username: 'Ana Agent' });
    // The bot's own posts carry no custom name.
    expect(
      slack.posts.find((p) => p.channel === channel && p.text !== agentPost.text)?.username,
    ).toBeUndefined();
  });

  it('email: From display name, reply-all to every user participant, never to the gateway', async () => {
    const messageId = `<agents-${Date.now()}@mail.example.org>`;
    await mailer.sendMail({
      from: { name: 'Carla Customer', address: 'carla@example.org' },
      to: [SUPPORT, 'dan@example.org'],
      cc: ['erin@example.org', 'support+sales@help.example.com'],
      subject: 'Broken invoice',
      text: 'Invoice 7 is wrong.',
      messageId,
    });
    // The bot's answer already goes to all of them.
    const botAnswer = await sink.waitFor((m) => m.header('in-reply-to') === messageId, 10_000);
    expect(botAnswer.envelope.rcptTo.sort()).toEqual([
      'carla@example.org',
      'dan@example.org',
      'erin@example.org',
    ]);
    const c = await eventually(async () => {
      const list = await json<{ items: Conversation[] }>(gw.api('/v1/conversations?channel=email&take=200'));
      return list.items.find((x) => x.participants.some((p) => p.address === 'carla@example.org'));
    });
    expect(c.participants.map((p) => [p.id, p.role])).toEqual([
      ['email:carla@example.org', 'user'],
      ['email:dan@example.org', 'user'],
      ['email:erin@example.org', 'user'],
    ]);
    const stored = await messages(c.id);
    expect(stored.filter((m) => m.type === 'activity').map((m) => m.text)).toEqual([
      'dan@example.org joined',
      'erin@example.org joined',
    ]);
    expect(stored.find((m) => m.type === 'user')?.participantId).toBe('email:carla@example.org');

    const ana = await addAgent(c.id, 'Ana Agent', 'ana@help.example.com');
    const sent = await json<Message>(sendAs(c.id, ana.id, 'I fixed invoice 7.'), 201);
    const mail = await sink.waitFor((m) => m.header('message-id') === sent.externalId, 10_000);
    expect(mail.parsed.from?.value[0]).toEqual({ name: 'Ana Agent via Example Support', address: SUPPORT });
    const addresses = (field: typeof mail.parsed.to) =>
      [field ?? []].flat().flatMap((a) => a.value.map((v) => v.address));
    expect(addresses(mail.parsed.to)).toEqual(['carla@example.org']);
    const cc = addresses(mail.parsed.cc);
    expect(cc).toEqual(['dan@example.org', 'erin@example.org']);
    expect(mail.envelope.rcptTo.sort()).toEqual(['carla@example.org', 'dan@example.org', 'erin@example.org']);
    expect(mail.header('in-reply-to')).toBe(messageId);

    // Dan answers all, through the thread's reply address: his mail joins the same conversation.
    const replyTo = mail.parsed.replyTo?.value[0]?.address ?? '';
    expect(replyTo).toMatch(/^support\+[a-z2-7]{16}@help\.example\.com$/);
    const danId = `<dan-${Date.now()}@mail.example.org>`;
    await mailer.sendMail({
      from: 'dan@example.org',
      to: replyTo,
      cc: ['carla@example.org', 'erin@example.org'],
      subject: 'Re: Broken invoice',
      text: 'Thanks Ana!',
      messageId: danId,
      inReplyTo: sent.externalId,
      references: [messageId, sent.externalId!],
    });
    const danMessage = await eventually(async () =>
      (await messages(c.id)).find((m) => m.text === 'Thanks Ana!'),
    );
    expect(danMessage.participantId).toBe('email:dan@example.org');
    // Nobody new joined: the same three users, and Ana.
    expect((await conversation(c.id)).participants).toHaveLength(4);
  });

  it('web chat: the message frame and the typing frame carry the agent', async () => {
    const chat = await ChatClient.ready(gw.url, { token: visitorToken({ sub: `agents-${Date.now()}` }) });
    try {
      const ready = chat.frames.find((f) => f.type === 'ready')!;
      const id = ready.conversationId as string;
      const ana = await addAgent(id, 'Ana Agent');
      const from = chat.frames.length;
      expect(
        (await gw.api(`/v1/conversations/${id}/typing`, { method: 'POST', json: { from: { id: ana.id } } }))
          .status,
      ).toBe(204);
      const typing = await chat.next('typing', (f) => f.on === true, from);
      expect(typing.from).toEqual({ id: ana.id, role: 'agent', name: 'Ana Agent' });
      const sent = await json<Message>(sendAs(id, ana.id, 'Hello from Ana'), 201);
      const frame = await chat.next('message', (f) => f.message.id === sent.id, from);
      expect(frame.message).toMatchObject({
        type: 'agent',
        direction: 'outbound',
        text: 'Hello from Ana',
        from: { id: ana.id, role: 'agent', name: 'Ana Agent' },
      });
      expect(bot.calls.filter((call) => call.conversationId === id)).toEqual([]);
    } finally {
      chat.ws.close();
    }
  });

  it('typing on a channel without typing is accepted and ignored', async () => {
    const c = await json<Conversation>(gw.api('/v1/conversations', { method: 'POST', json: {} }), 201);
    const ana = await addAgent(c.id, 'Ana');
    const res = await gw.api(`/v1/conversations/${c.id}/typing`, {
      method: 'POST',
      json: { from: { id: ana.id } },
    });
    expect(res.status).toBe(204);
  });
});
