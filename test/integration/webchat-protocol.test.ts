/**
 * The web-chat socket (SPEC §7) with a real `ws` client against a real gateway: the handshake, every
 * frame type, dedupe of a resent clientMessageId, resume after a dropped connection, two tabs, token
 * expiry and in-band refresh, limits, and every bad input: an error frame or a documented close code,
 * logged once, nothing stored, and the gateway keeps serving.
 */
import { generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/model.js';
import type { Bot, BotResponse } from '../../src/pipeline/bot/types.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { ChatClient, ORIGIN, until, visitorToken } from '../helpers/webchat-client.js';

const AUD = 'switchboard-test';
const ISS = 'https://shop.test';

/** Replies like the demo bot; "menu" offers quick replies, "hang" never answers (until shutdown). */
const testBot: Bot = {
  kind: 'http',
  async reply({ message }, signal): Promise<BotResponse> {
    if (message.text === 'menu') {
      return {
        replies: [{ text: 'Pick one', quickReplies: [{ title: 'Yes', payload: 'YES' }, { title: 'No' }] }],
      };
    }
    if (message.text === 'hang') {
      await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    }
    return { replies: [{ text: `You said: ${message.text}` }] };
  },
};

let gw: TestGateway;
let visitors = 0;
/** A fresh visitor per test keeps conversations apart. */
const nextVisitor = () => `visitor-${++visitors}-${Date.now()}`;
const token = (claims: Record<string, unknown> = {}) => visitorToken({ aud: AUD, iss: ISS, ...claims });
const open: ChatClient[] = [];

async function connect(sub: string, extra: Parameters<typeof ChatClient.ready>[1] = {}): Promise<ChatClient> {
  const client = await ChatClient.ready(gw.url, { token: token({ sub }), ...extra });
  open.push(client);
  return client;
}

function raw(opts: ConstructorParameters<typeof ChatClient>[1]): ChatClient {
  const client = new ChatClient(gw.url, opts);
  open.push(client);
  return client;
}

async function messagesOf(conversationId: string): Promise<Message[]> {
  const res = await gw.api(`/v1/conversations/${conversationId}/messages?take=200`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Message[] }).items;
}

async function webchatConversationRefs(): Promise<string[]> {
  const res = await gw.api('/v1/conversations?channel=webchat&take=200');
  return ((await res.json()) as { items: Array<{ channelRef: string }> }).items.map((c) => c.channelRef);
}

/** Log lines of refused web-chat input with this reason. */
function refusals(reason: string): number {
  return gw.logs.lines.filter((l) => l.msg === 'web-chat input refused' && l.reason === reason).length;
}

/** Asserts the gateway still serves a healthy socket after a bad input. */
async function stillServing(): Promise<void> {
  const client = await connect(nextVisitor());
  const ack = await client.say('still there?');
  expect(ack.seq).toBe(1);
}

beforeAll(async () => {
  gw = await startGateway(
    {
      WEBCHAT_JWT_SECRET: 'webchat-test-secret-0123456789-abcdefghij',
      WEBCHAT_JWT_AUDIENCE: AUD,
      WEBCHAT_JWT_ISSUER: ISS,
      WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
      WEBCHAT_MAX_FRAME_BYTES: '2048',
      WEBCHAT_MAX_SOCKETS_PER_VISITOR: '3',
      WEBCHAT_HEARTBEAT_S: '1',
      WEBCHAT_TYPING_TIMEOUT_S: '1',
      SHUTDOWN_TIMEOUT_MS: '100',
    },
    { bot: testBot },
  );
});

afterAll(async () => {
  await Promise.all(open.map((c) => c.end().catch(() => undefined)));
  await gw?.stop();
});

describe('handshake and authentication', () => {
  it('answers switchboard.v1 and never echoes the bearer subprotocol', async () => {
    const sub = nextVisitor();
    const client = await connect(sub);
    expect(client.ws.protocol).toBe('switchboard.v1');
    const ready = client.frames[0]!;
    expect(ready).toMatchObject({ type: 'ready', visitorId: sub });
    expect(ready.conversationId).toMatch(/^conv_/);
    expect(gw.logs.text()).not.toContain(token({ sub }).split('.')[2]!);
  });

  it('authenticates with a first auth frame instead of the subprotocol', async () => {
    const sub = nextVisitor();
    const client = raw({});
    await client.opened;
    client.send({ type: 'auth', token: token({ sub, name: 'Jane', email: 'jane@example.com' }) });
    const ready = await client.next('ready');
    expect(ready.visitorId).toBe(sub);
    const conv = (await (await gw.api(`/v1/conversations/${ready.conversationId}`)).json()) as Conversation;
    expect(conv).toMatchObject({ channel: 'webchat', channelRef: sub });
    expect(conv.participants).toContainEqual(
      expect.objectContaining({ id: sub, name: 'Jane', address: 'jane@example.com' }),
    );
  });

  it('closes 4000 when another frame comes before auth', async () => {
    const before = refusals('auth_required');
    const client = raw({});
    await client.opened;
    client.send({ type: 'message', clientMessageId: 'x1', text: 'sneaky' });
    expect((await client.closed).code).toBe(4000);
    expect(refusals('auth_required')).toBe(before + 1);
  });

  it('closes 4000 when no auth frame arrives in time', async () => {
    const client = raw({});
    await client.opened;
    expect((await client.closed).code).toBe(4000);
  }, 10_000);

  it.each([
    [
      'wrong secret',
      () => visitorToken({ aud: AUD, iss: ISS, sub: 'x' }, 'another-secret-0123456789-abcdefghijklmn'),
    ],
    ['alg none', () => unsecured({ sub: 'x', aud: AUD, iss: ISS, exp: Math.floor(Date.now() / 1000) + 60 })],
    [
      'RS256 when HS256 is configured',
      () => {
        const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
        return jwt.sign(
          { sub: 'x', aud: AUD, iss: ISS, exp: Math.floor(Date.now() / 1000) + 60 },
          privateKey,
          {
            algorithm: 'RS256',
          },
        );
      },
    ],
    ['wrong audience', () => token({ sub: 'x', aud: 'someone-else' })],
    ['wrong issuer', () => token({ sub: 'x', iss: 'https://evil.test' })],
    ['no exp', () => jwt.sign({ sub: 'x', aud: AUD, iss: ISS }, 'webchat-test-secret-0123456789-abcdefghij')],
    ['no sub', () => token({ sub: undefined })],
    ['garbage', () => 'not-a-jwt'],
  ])('closes 4003 for a bad token (%s), logged once, nothing stored', async (_name, make) => {
    const before = refusals('token_invalid');
    const refsBefore = await webchatConversationRefs();
    const client = raw({ token: make() });
    expect((await client.closed).code).toBe(4003);
    expect(client.find((f) => f.type === 'ready')).toHaveLength(0);
    expect(refusals('token_invalid')).toBe(before + 1);
    expect(await webchatConversationRefs()).toEqual(refsBefore);
  });

  it('closes 4001 for an expired token', async () => {
    const before = refusals('token_expired');
    const client = raw({ token: token({ sub: nextVisitor(), exp: Math.floor(Date.now() / 1000) - 5 }) });
    expect((await client.closed).code).toBe(4001);
    expect(refusals('token_expired')).toBe(before + 1);
  });

  it('refuses a wrong Origin with 403 before upgrading, logged once', async () => {
    const before = refusals('origin');
    const client = raw({ token: token({ sub: nextVisitor() }), origin: 'https://evil.test' });
    await until(() => client.refusedStatus, 5_000, 'refusal');
    expect(client.refusedStatus).toBe(403);
    expect(refusals('origin')).toBe(before + 1);
    await stillServing();
  });

  it('closes an open socket with 4001 when its token expires, unless refreshed in-band', async () => {
    const sub = nextVisitor();
    const expSoon = () => Math.floor(Date.now() / 1000) + 2;
    const refreshed = await connect(sub, { token: token({ sub, exp: expSoon() }) });
    const expiring = await connect(sub, { token: token({ sub, exp: expSoon() }) });
    const oldExpiry = Date.parse(refreshed.frames[0]!.expiresAt);

    const from = refreshed.frames.length;
    refreshed.send({ type: 'auth', token: token({ sub }) });
    const again = await refreshed.next('ready', () => true, from);
    expect(Date.parse(again.expiresAt)).toBeGreaterThan(oldExpiry + 60_000);

    expect((await expiring.closed).code).toBe(4001);
    await until(() => Date.now() > oldExpiry + 500, 5_000, 'old expiry');
    expect(refreshed.close).toBeNull();
    expect((await refreshed.say('after refresh')).seq).toBeGreaterThan(0);
  });

  it('closes 4003 when a refresh token is for another visitor', async () => {
    const client = await connect(nextVisitor());
    client.send({ type: 'auth', token: token({ sub: nextVisitor() }) });
    expect((await client.closed).code).toBe(4003);
  });
});

describe('frames', () => {
  it('message: ack, the message to every tab, typing on, the reply, typing off; stored once', async () => {
    const sub = nextVisitor();
    const tab = await connect(sub);
    const ack = await tab.say('hello', 'cm-hello');
    expect(ack).toMatchObject({ type: 'ack', clientMessageId: 'cm-hello', seq: 1 });
    expect(ack.id).toMatch(/^msg_/);
    const reply = await tab.botSays('You said: hello');
    expect(reply.message).toMatchObject({ seq: 2, replyTo: ack.id, direction: 'outbound' });
    const own = await tab.next('message', (f) => f.message.id === ack.id);
    expect(own.message).toMatchObject({ type: 'user', text: 'hello', clientMessageId: 'cm-hello' });
    await tab.next('typing', (f) => f.on === false, tab.frames.indexOf(reply));
    const types = tab.frames.map((f) => f.type);
    expect(types.indexOf('typing')).toBeLessThan(types.lastIndexOf('message'));

    const stored = await messagesOf(tab.frames[0]!.conversationId);
    expect(stored.map((m) => [m.seq, m.type, m.text])).toEqual([
      [1, 'user', 'hello'],
      [2, 'bot', 'You said: hello'],
    ]);
    expect(stored[0]!.clientMessageId).toBe('cm-hello');
    // The process holding the socket handed the reply over: delivered.
    await until(
      async () => (await messagesOf(tab.frames[0]!.conversationId))[1]!.delivery?.status === 'delivered',
    );
  });

  it('sends exactly one typing on and one typing off per message answered by the bot', async () => {
    const tab = await connect(nextVisitor());
    for (const text of ['first', 'second']) {
      await tab.say(text);
      const reply = await tab.botSays(`You said: ${text}`);
      await tab.next('typing', (f) => f.on === false, tab.frames.indexOf(reply));
    }
    // The bus keeps order: a stray indicator of the first message would have arrived before the second
    // message's reply.
    const typing = tab.find((f) => f.type === 'typing').map((f) => f.on);
    expect(typing).toEqual([true, false, true, false]);
  });

  it('dedupes a resent clientMessageId: the same ack with duplicate:true, no second message or reply', async () => {
    const tab = await connect(nextVisitor());
    const first = await tab.say('only once', 'cm-dup');
    await tab.botSays('You said: only once');
    const from = tab.frames.length;
    tab.send({ type: 'message', clientMessageId: 'cm-dup', text: 'only once' });
    const second = await tab.next('ack', () => true, from);
    expect(second).toEqual({ ...first, duplicate: true });
    const stored = await messagesOf(tab.frames[0]!.conversationId);
    expect(stored).toHaveLength(2);
    expect(tab.find((f) => f.type === 'message' && f.message.type === 'bot')).toHaveLength(1);
  });

  it('typing from the visitor is accepted and stores nothing', async () => {
    const tab = await connect(nextVisitor());
    tab.send({ type: 'typing', on: true });
    tab.send({ type: 'typing', on: false });
    // Frames of a socket are handled in order, so once this ack is here both typing frames were handled.
    await tab.say('done typing');
    await tab.botSays('You said: done typing');
    expect(tab.find((f) => f.type === 'error')).toHaveLength(0);
    expect(await messagesOf(tab.frames[0]!.conversationId)).toHaveLength(2);
  });

  it('read: moves bot messages up to seq to read and pushes a receipt to every tab', async () => {
    const sub = nextVisitor();
    const a = await connect(sub);
    const b = await connect(sub);
    await a.say('one');
    const r1 = await a.botSays('You said: one');
    await a.say('two');
    const r2 = await a.botSays('You said: two');
    a.send({ type: 'read', seq: r1.message.seq });
    const receipt = await b.next('receipt');
    expect(receipt).toEqual({ type: 'receipt', id: r1.message.id, seq: r1.message.seq, status: 'read' });
    await a.next('receipt');
    const stored = await messagesOf(a.frames[0]!.conversationId);
    expect(stored.find((m) => m.id === r1.message.id)?.delivery?.status).toBe('read');
    expect(stored.find((m) => m.id === r2.message.id)?.delivery?.status).not.toBe('read');
  });

  it('read of a seq not assigned yet does not mark later replies as read', async () => {
    const tab = await connect(nextVisitor());
    tab.send({ type: 'read', seq: 50 });
    await tab.say('later');
    const reply = await tab.botSays('You said: later');
    const stored = await messagesOf(tab.frames[0]!.conversationId);
    expect(stored.find((m) => m.id === reply.message.id)?.delivery?.status).not.toBe('read');
  });

  it('quick replies reach the widget with the bot message', async () => {
    const tab = await connect(nextVisitor());
    await tab.say('menu');
    const reply = await tab.botSays('Pick one');
    expect(reply.message.quickReplies).toEqual([{ title: 'Yes', payload: 'YES' }, { title: 'No' }]);
  });

  it('two tabs of one visitor share the conversation and see each other’s messages and replies', async () => {
    const sub = nextVisitor();
    const a = await connect(sub);
    const b = await connect(sub);
    expect(b.frames[0]!.conversationId).toBe(a.frames[0]!.conversationId);
    const ack = await a.say('from tab a');
    const seen = await b.next('message', (f) => f.message.id === ack.id);
    expect(seen.message.text).toBe('from tab a');
    await b.botSays('You said: from tab a');
    const ackB = await b.say('from tab b');
    await a.next('message', (f) => f.message.id === ackB.id);
    await a.botSays('You said: from tab b');
  });

  it('resume after a dropped connection replays everything after afterSeq, including replies sent meanwhile', async () => {
    const sub = nextVisitor();
    const first = await connect(sub);
    const conversationId = first.frames[0]!.conversationId;
    await first.say('before the drop');
    const seen = await first.botSays('You said: before the drop');
    first.ws.terminate();
    await first.closed;

    // While the visitor is away: an agent message through the API goes out through the channel.
    const sent = await gw.api(`/v1/conversations/${conversationId}/send`, {
      method: 'POST',
      json: { text: 'agent: still there?' },
    });
    expect(sent.status).toBe(201);

    const back = await connect(sub);
    back.send({ type: 'resume', afterSeq: seen.message.seq });
    const replayed = await back.next('message', (f) => f.message.text === 'agent: still there?');
    expect(replayed.message.seq).toBe(seen.message.seq + 1);
    expect(back.find((f) => f.type === 'message' && f.message.seq <= seen.message.seq)).toHaveLength(0);

    // And from 0: the whole visible history in seq order.
    const from = back.frames.length;
    back.send({ type: 'resume', afterSeq: 0 });
    await until(() => back.find((f) => f.type === 'message', from).length === 3, 5_000, 'full replay');
    expect(back.find((f) => f.type === 'message', from).map((f) => f.message.seq)).toEqual([1, 2, 3]);
  });

  it('the typing indicator clears after the timeout when the bot never answers', async () => {
    const tab = await connect(nextVisitor());
    await tab.say('hang');
    const on = await tab.next('typing', (f) => f.on === true);
    await tab.next('typing', (f) => f.on === false, tab.frames.indexOf(on), 4_000);
    expect(tab.find((f) => f.type === 'message' && f.message.type === 'bot')).toHaveLength(0);
  });
});

describe('bad input on an open socket', () => {
  async function badFrame(data: string, code: string): Promise<void> {
    const tab = await connect(nextVisitor());
    const before = refusals(code);
    tab.send(data);
    const error = await tab.next('error');
    expect(error.code).toBe(code);
    expect(error.message).toEqual(expect.any(String));
    expect(refusals(code)).toBe(before + 1);
    expect(await messagesOf(tab.frames[0]!.conversationId)).toHaveLength(0);
    // The socket stays usable.
    expect((await tab.say('fine now')).seq).toBe(1);
  }

  it('malformed JSON → error invalid_json', () => badFrame('{"type":"message",', 'invalid_json'));
  it('unknown frame type → error unknown_type', () => badFrame('{"type":"subscribe"}', 'unknown_type'));
  it('missing fields → error invalid_frame', () =>
    badFrame('{"type":"message","text":"no id"}', 'invalid_frame'));
  it('blank text → error invalid_frame', () =>
    badFrame('{"type":"message","clientMessageId":"b1","text":" "}', 'invalid_frame'));

  it('an oversized frame closes 1009, logged once, nothing stored', async () => {
    const tab = await connect(nextVisitor());
    const before = refusals('frame_too_large');
    tab.send({ type: 'message', clientMessageId: 'big', text: 'x'.repeat(4_000) });
    expect((await tab.closed).code).toBe(1009);
    await until(() => refusals('frame_too_large') === before + 1);
    expect(await messagesOf(tab.frames[0]!.conversationId)).toHaveLength(0);
    await stillServing();
  });

  it('frames over the rate limit get error rate_limited and are dropped, logged once per socket', async () => {
    const tab = await connect(nextVisitor());
    const logged = () =>
      gw.logs.lines.filter((l) => l.msg === 'web-chat frames over the rate limit dropped').length;
    const before = logged();
    for (let i = 0; i < 30; i++) tab.send({ type: 'message', clientMessageId: `burst-${i}`, text: `n${i}` });
    await tab.next('error', (f) => f.code === 'rate_limited');
    const acks = await until(
      async () => {
        const got = tab.find((f) => f.type === 'ack');
        const errors = tab.find((f) => f.type === 'error');
        return got.length + errors.length === 30 ? got : null;
      },
      10_000,
      'all answers',
    );
    expect(acks.length).toBeLessThanOrEqual(12);
    expect(acks.length).toBeGreaterThanOrEqual(5);
    expect(logged()).toBe(before + 1);
    const userMessages = (await messagesOf(tab.frames[0]!.conversationId)).filter((m) => m.type === 'user');
    expect(userMessages).toHaveLength(acks.length);
  });

  it('more sockets than allowed for one visitor: the extra one closes 4008', async () => {
    const sub = nextVisitor();
    await connect(sub);
    await connect(sub);
    await connect(sub);
    const extra = raw({ token: token({ sub }) });
    expect((await extra.closed).code).toBe(4008);
  });

  it('a half-open socket (no pongs) is terminated by the heartbeat', async () => {
    const tab = await connect(nextVisitor(), { autoPong: false });
    const closed = await tab.closed;
    expect(closed.code).toBe(1006);
  });

  it('never crashed: every socket refusal above left the gateway serving', async () => {
    await stillServing();
    const res = await fetch(`${gw.url}/healthz`);
    expect(res.status).toBe(200);
  });
});

function unsecured(payload: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
}
