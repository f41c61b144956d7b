import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Contact } from '../../src/contacts/model.js';
import type { Conversation, Message } from '../../src/core/model.js';
import type { SmtpSink } from '../fakes/smtp-sink.js';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  FakeTwilioApi,
  postWebhook,
  smsParams,
  statusParams,
  whatsappParams,
} from '../fakes/twilio-api.js';
import { CustomerRig, PUBLIC_URL, RecordingBot } from '../helpers/customer-rig.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { redisAvailable } from '../helpers/redis.js';
import { ChatClient, visitorToken } from '../helpers/webchat-client.js';

describe.skipIf(!redisAvailable())('contact scope on Redis', () => {
  let rig: CustomerRig;
  let gw: TestGateway;
  let fake: FakeTwilioApi;
  let redis: Redis;
  let prefix: string;
  let bot: RecordingBot;
  let clients: ChatClient[];
  let sink: SmtpSink;

  beforeAll(async () => {
    rig = await CustomerRig.start({ label: 'cs', env: { CONVERSATION_SCOPE: 'contact' } });
    ({ gw, fake, redis, prefix, bot, clients, sink } = rig);
  });

  afterAll(async () => {
    await rig?.stop();
  });

  const json = <T>(path: string, init?: RequestInit & { json?: unknown }) => rig.json<T>(path, init);
  const contactOf = (channel: string, address: string) => rig.contactOf(channel, address);
  const sms = (from: string, text: string) => rig.sms(from, text);
  const whatsapp = (from: string, text: string, over?: Record<string, string>) =>
    rig.whatsapp(from, text, over);
  const chat = async (claims: Record<string, unknown>, text: string) => {
    await rig.chat(claims, text);
  };
  const signedMail = (address: string, text: string, opts?: { key?: string; domain?: string }) =>
    rig.signedMail(address, text, opts);
  const suggestions = () => rig.suggestions();
  const conversationsOf = (contactId: string) => rig.conversationsOf(contactId);
  const messagesOf = (conversationId: string) => rig.messagesOf(conversationId);

  /** Twilio sends (SMS and WhatsApp) whose body is `text`. */
  const twilioSent = (text: string) => fake.created().filter((r) => r.fields.Body === text);

  const phone = '+14155556666';
  const email = 'quinn@signed.example';
  let widget: ChatClient;
  let quinn: Contact;
  let conversation: Conversation;

  it('SMS, WhatsApp, web chat and signed mail are one contact, one conversation, each answered on its channel', async () => {
    await sms(phone, 'one by SMS');
    const first = await eventually(() => contactOf('sms', phone));
    const [smsReply] = await eventually(
      () => twilioSent('You said: one by SMS').at(0) && twilioSent('You said: one by SMS'),
    );
    expect(smsReply!.fields).toMatchObject({ To: phone, From: '+15005550006' });

    await whatsapp(phone, 'two on WhatsApp');
    const [waReply] = await eventually(
      () => twilioSent('You said: two on WhatsApp').at(0) && twilioSent('You said: two on WhatsApp'),
    );
    expect(waReply!.fields).toMatchObject({ To: `whatsapp:${phone}`, From: 'whatsapp:+14155238886' });

    widget = await ChatClient.ready(gw.url, {
      token: visitorToken({
        sub: 'visitor-quinn',
        name: 'Quinn',
        email,
        email_verified: true,
        phone_number: phone,
        phone_number_verified: true,
      }),
    });
    clients.push(widget);
    const ready = widget.frames.find((f) => f.type === 'ready')!;
    await widget.say('three from the site');
    await widget.botSays('You said: three from the site');

    const mailId = await signedMail(email, 'four by mail');
    const mailReply = await sink.waitFor((m) => m.header('in-reply-to') === mailId, 10_000);
    expect(mailReply.parsed.text).toContain('You said: four by mail');
    expect(mailReply.envelope.rcptTo).toEqual([email]);

    quinn = await eventually(async () => {
      const c = await contactOf('email', email);
      return c?.identities.length === 4 ? c : undefined;
    }, 10_000);
    expect(quinn.id).toBe(first.id);
    expect(quinn.identities.map((i) => `${i.channel}:${i.source}`)).toEqual([
      'sms:twilio',
      'whatsapp:twilio_waid',
      'webchat:webchat_jwt',
      'email:webchat_jwt',
    ]);
    const convs = await conversationsOf(quinn.id);
    expect(convs).toHaveLength(1);
    conversation = convs[0]!;
    expect(ready.conversationId).toBe(conversation.id);
    expect(conversation.channel).toBe('sms');
    expect(conversation.routes?.map((r) => r.channel)).toEqual(['sms', 'whatsapp', 'webchat', 'email']);
    expect(conversation.routes?.find((r) => r.channel === 'email')?.meta).toMatchObject({
      email: { subject: 'Hello' },
    });

    // Every message records its channel; every reply answers on the channel of its message.
    const messages = await eventually(async () => {
      const all = await messagesOf(conversation.id);
      return all.filter((m) => m.type === 'bot').length === 4 ? all : undefined;
    });
    const said = messages
      .filter((m) => m.type === 'user' || m.type === 'bot')
      .map((m) => `${m.channel} ${m.text}`);
    expect(said).toEqual([
      'sms one by SMS',
      'sms You said: one by SMS',
      'whatsapp two on WhatsApp',
      'whatsapp You said: two on WhatsApp',
      'webchat three from the site',
      'webchat You said: three from the site',
      'email four by mail',
      'email You said: four by mail',
    ]);
    for (const reply of messages.filter((m) => m.type === 'bot')) {
      const asked = messages.find((m) => m.id === reply.replyTo)!;
      expect(reply.channelRef).toBe(asked.channelRef);
      expect(reply.delivery?.status).not.toBe('failed');
    }
    // The widget was handed only its own channel's reply, and Twilio and SMTP only theirs.
    const widgetTexts = widget
      .find((f) => f.type === 'message' && f.message.direction === 'outbound')
      .map((f) => f.message.text);
    expect(widgetTexts).toEqual(['You said: three from the site']);
    expect(fake.created().map((r) => r.fields.Body)).toEqual([
      'You said: one by SMS',
      'You said: two on WhatsApp',
    ]);
    expect(sink.messages).toHaveLength(1);
    // The bot was asked with the conversation as the message's channel sees it.
    const asked = bot.requests.map((r) => [r.message.text, r.conversation.channel]);
    expect(asked).toEqual([
      ['one by SMS', 'sms'],
      ['two on WhatsApp', 'whatsapp'],
      ['three from the site', 'webchat'],
      ['four by mail', 'email'],
    ]);
  });

  it('a delivery callback for a reply finds it in the contact conversation', async () => {
    const messages = await messagesOf(conversation.id);
    const reply = messages.find((m) => m.text === 'You said: two on WhatsApp')!;
    expect(reply.externalId).toMatch(/^SM/);
    const path = '/webhooks/twilio/status';
    const res = await postWebhook(
      `${gw.url}${path}`,
      statusParams(reply.externalId!, 'delivered', { To: `whatsapp:${phone}` }),
      {
        signedUrl: `${PUBLIC_URL}${path}`,
      },
    );
    expect(res.status).toBe(204);
    await eventually(async () => {
      const m = await json<Message>(`/v1/conversations/${conversation.id}/messages/${reply.id}`);
      return m.delivery?.status === 'delivered';
    });
  });

  it('order holds across channels: interleaved SMS and web chat are answered in accept order', async () => {
    const before = bot.requests.length;
    const texts = Array.from({ length: 8 }, (_, i) => `order ${i}`);
    await Promise.all(texts.map((t, i) => (i % 2 === 0 ? sms(phone, t) : widget.say(t))));
    const messages = await eventually(async () => {
      const all = await messagesOf(conversation.id);
      return all.filter((m) => m.type === 'bot' && m.text.startsWith('You said: order')).length === 8
        ? all
        : undefined;
    }, 10_000);
    const accepted = messages
      .filter((m) => m.type === 'user' && m.text.startsWith('order '))
      .map((m) => m.text);
    expect(accepted.sort()).toEqual([...texts].sort());
    const seqOrder = messages
      .filter((m) => m.type === 'user' && m.text.startsWith('order '))
      .map((m) => m.text);
    // The bot saw them one at a time in seq order, and each reply follows its message.
    expect(bot.requests.slice(before).map((r) => r.message.text)).toEqual(seqOrder);
    for (const m of messages.filter((x) => x.type === 'user' && x.text.startsWith('order '))) {
      const reply = messages.find((x) => x.replyTo === m.id)!;
      expect(reply.channel).toBe(m.channel);
      expect(reply.seq).toBeGreaterThan(m.seq);
    }
    for (const t of texts.filter((_, i) => i % 2 === 0)) {
      await eventually(() => twilioSent(`You said: ${t}`).length === 1);
      expect(widget.find((f) => f.type === 'message' && f.message.text === `You said: ${t}`)).toEqual([]);
    }
    for (const t of texts.filter((_, i) => i % 2 === 1)) {
      await widget.botSays(`You said: ${t}`);
      expect(twilioSent(`You said: ${t}`)).toEqual([]);
    }
    // The widget's history is its own channel's: a resume replays no SMS, WhatsApp or mail.
    const from = widget.frames.length;
    widget.send({ type: 'resume', afterSeq: 0 });
    await widget.botSays('You said: order 7', from);
    const replayed = widget.find((f) => f.type === 'message', from).map((f) => f.message.text);
    expect(replayed).toContain('three from the site');
    expect(replayed.filter((t) => /SMS|WhatsApp|mail|order [0246]/.test(t))).toEqual([]);
  });

  it("an agent's message leaves by the customer's latest channel, or the one named", async () => {
    await signedMail(email, 'five by mail');
    await eventually(async () =>
      (await messagesOf(conversation.id)).some((m) => m.text === 'You said: five by mail'),
    );
    const latest = await json<Message>(`/v1/conversations/${conversation.id}/send`, {
      method: 'POST',
      json: { text: 'An update from us' },
    });
    expect(latest.channel).toBe('email');
    await sink.waitFor((m) => (m.parsed.text ?? '').includes('An update from us'));
    const named = await json<Message>(`/v1/conversations/${conversation.id}/send`, {
      method: 'POST',
      json: { text: 'By WhatsApp too', channel: 'whatsapp' },
    });
    expect(named).toMatchObject({ channel: 'whatsapp', delivery: { status: 'sent' } });
    expect(twilioSent('By WhatsApp too').map((r) => r.fields.To)).toEqual([`whatsapp:${phone}`]);
    const other = await gw.api(`/v1/conversations/${conversation.id}/send`, {
      method: 'POST',
      json: { text: 'nowhere', channel: 'slack' },
    });
    expect(other.status).toBe(400);
    expect(await other.json()).toMatchObject({ code: 'GW_ERR_VALIDATION', field: 'channel' });
  });

  it('an unverified email match gives a suggestion and no merge, and its own conversation', async () => {
    const loose = await ChatClient.ready(gw.url, {
      token: visitorToken({ sub: 'visitor-not-quinn', email }),
    });
    clients.push(loose);
    await loose.say('am I Quinn?');
    await loose.botSays('You said: am I Quinn?');
    const other = await eventually(() => contactOf('webchat', 'visitor-not-quinn'));
    expect(other.id).not.toBe(quinn.id);
    const s = await eventually(async () =>
      (await suggestions()).find((x) => x.contactIds.includes(other.id) && x.contactIds.includes(quinn.id)),
    );
    expect(s.reason).toContain('not verified on both sides');
    expect((await json<Contact>(`/v1/contacts/${quinn.id}`)).identities).toHaveLength(4);
    const own = await conversationsOf(other.id);
    expect(own).toHaveLength(1);
    expect(own[0]!.id).not.toBe(conversation.id);
    expect(await conversationsOf(quinn.id)).toHaveLength(1);
  });

  it('unmerge splits the contact; a new thread of the identity split off opens its own conversation', async () => {
    await sms('+14155556667', 'Ray by SMS');
    const ray = await eventually(() => contactOf('sms', '+14155556667'));
    await signedMail('ray@signed.example', 'Ray by mail');
    const rayMail = await eventually(() => contactOf('email', 'ray@signed.example'), 10_000);
    expect(rayMail.id).not.toBe(ray.id);
    const merged = await json<Contact>(`/v1/contacts/${ray.id}/merge`, {
      method: 'POST',
      json: { from: rayMail.id, by: 'agent:kim' },
    });
    expect(merged.identities.map((i) => i.channel)).toEqual(['sms', 'email']);
    // Both conversations stay as they were; new threads join the survivor's.
    const [smsConv] = (await conversationsOf(ray.id)).filter((c) => c.channel === 'sms');
    expect(await conversationsOf(ray.id)).toHaveLength(2);
    const split = await json<Contact>(`/v1/contacts/${ray.id}/unmerge`, {
      method: 'POST',
      json: { channel: 'email', address: 'ray@signed.example', by: 'agent:kim' },
    });
    expect(split.identities.map((i) => i.channel)).toEqual(['email']);
    expect((await json<Contact>(`/v1/contacts/${ray.id}`)).identities.map((i) => i.channel)).toEqual(['sms']);
    expect((await conversationsOf(ray.id)).map((c) => c.id)).toEqual([smsConv!.id]);
    expect((await conversationsOf(split.id)).map((c) => c.channel)).toEqual(['email']);
    // A new mail thread of the split-off address is theirs, not Ray's SMS conversation.
    await signedMail('ray@signed.example', 'Ray, a new thread');
    await eventually(async () => {
      const convs = await conversationsOf(split.id);
      const all = await Promise.all(convs.map((c) => messagesOf(c.id)));
      return all.flat().some((m) => m.text === 'Ray, a new thread');
    }, 10_000);
    expect((await messagesOf(smsConv!.id)).some((m) => m.text === 'Ray, a new thread')).toBe(false);
  });

  it('a merge racing new messages from both contacts loses none and leaves them on the survivor', async () => {
    await sms('+14155550012', 'Lee one');
    await chat({ sub: 'visitor-lee', name: 'Lee' }, 'Lee two');
    const a = await eventually(() => contactOf('sms', '+14155550012'));
    const b = await eventually(() => contactOf('webchat', 'visitor-lee'));
    const lee = clients.at(-1)!;
    // From both sides at once, while the merge runs.
    const sends = [
      ...Array.from({ length: 4 }, (_, i) => sms('+14155550012', `a ${i}`)),
      ...Array.from({ length: 4 }, (_, i) => lee.say(`b ${i}`)),
    ];
    const merge = json<Contact>(`/v1/contacts/${a.id}/merge`, { method: 'POST', json: { from: b.id } });
    await Promise.all([...sends, merge]);
    const texts = await eventually(async () => {
      const t = await json<{ items: Message[] }>(`/v1/contacts/${a.id}/timeline?take=200`);
      const inbound = t.items.filter((m) => m.direction === 'inbound').map((m) => m.text);
      return inbound.length === 10 ? inbound : undefined;
    }, 10_000);
    expect(texts.sort()).toEqual(
      ['Lee one', 'Lee two', ...[0, 1, 2, 3].flatMap((i) => [`a ${i}`, `b ${i}`])].sort(),
    );
    expect((await gw.api(`/v1/contacts/${b.id}`)).status).toBe(404);
    expect(await contactOf('webchat', 'visitor-lee')).toMatchObject({ id: a.id });
    for (const c of await conversationsOf(a.id))
      for (const p of c.participants.filter((x) => x.role === 'user')) expect(p.contactId).toBe(a.id);
  });

  it('erasure leaves no key or value with their identifiers in Redis', async () => {
    const needles = [phone, phone.slice(1), email, 'Quinn', 'visitor-quinn'];
    const convIds = (await conversationsOf(quinn.id)).map((c) => c.id);
    expect(convIds).toEqual([conversation.id]);
    const before = await holding(needles);
    expect(before.length).toBeGreaterThan(0);
    // The unverified visitor's contact holds the address too: erased with them.
    const other = (await contactOf('webchat', 'visitor-not-quinn'))!;
    for (const id of [quinn.id, other.id]) {
      const res = await gw.api(`/v1/contacts/${id}`, { method: 'DELETE' });
      expect(res.status).toBe(200);
    }
    expect(await holding([...needles, ...convIds])).toEqual([]);
    expect((await gw.api(`/v1/contacts/${quinn.id}`)).status).toBe(404);
    // Every thread it was reached by is free: a new SMS starts afresh.
    await sms(phone, 'after erasure');
    const fresh = await eventually(() => contactOf('sms', phone));
    expect(fresh.id).not.toBe(quinn.id);
    const convs = await conversationsOf(fresh.id);
    expect(convs.map((c) => c.id)).not.toContain(conversation.id);
  });

  /** Every Redis key under the gateway's prefix whose name or value holds one of `needles`. */
  async function holding(needles: readonly string[]): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const type = await redis.type(key);
        let values: string[] = [];
        if (type === 'string') values = [(await redis.get(key)) ?? ''];
        else if (type === 'hash') values = Object.entries(await redis.hgetall(key)).flat();
        else if (type === 'zset') values = await redis.zrange(key, 0, -1);
        else if (type === 'list') values = await redis.lrange(key, 0, -1);
        else if (type === 'set') values = await redis.smembers(key);
        const text = [key, ...values].join('\n');
        if (needles.some((n) => text.includes(n))) found.push(key);
      }
    } while (cursor !== '0');
    return found;
  }
});

/** The embedded backend in both scopes: the same accept path over the in-memory store and contacts. */
describe('conversation scope on the embedded backend', () => {
  const gateways: TestGateway[] = [];
  let fake: FakeTwilioApi;

  beforeAll(async () => {
    fake = await FakeTwilioApi.start();
  });

  afterAll(async () => {
    for (const g of gateways) await g.stop();
    await fake?.close();
  });

  async function gatewayIn(scope: 'channel' | 'contact'): Promise<TestGateway> {
    const g = await startGateway(
      {
        PUBLIC_URL,
        CONVERSATION_SCOPE: scope,
        TWILIO_ACCOUNT_SID: ACCOUNT_SID,
        TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        TWILIO_API_URL: fake.url,
      },
      { bot: new RecordingBot() },
    );
    gateways.push(g);
    return g;
  }

  async function writeBoth(g: TestGateway, number: string): Promise<Conversation[]> {
    const path = '/webhooks/twilio';
    for (const params of [
      smsParams({ From: number, Body: `${number} by SMS` }),
      whatsappParams({ From: `whatsapp:${number}`, WaId: number.slice(1), Body: `${number} on WhatsApp` }),
    ]) {
      const res = await postWebhook(`${g.url}${path}`, params, { signedUrl: `${PUBLIC_URL}${path}` });
      expect(res.status).toBe(200);
    }
    await eventually(() =>
      ['SMS', 'WhatsApp'].every((via) =>
        fake
          .created()
          .some((r) => r.fields.Body === `You said: ${number} ${via === 'SMS' ? 'by SMS' : 'on WhatsApp'}`),
      ),
    );
    const res = await g.api(`/v1/contacts?identity=${encodeURIComponent(`sms:${number}`)}`);
    const [contact] = ((await res.json()) as { items: Contact[] }).items;
    const convs = await g.api(`/v1/contacts/${contact!.id}/conversations`);
    return ((await convs.json()) as { items: Conversation[] }).items;
  }

  it('channel scope keeps a conversation per thread; contact scope one for both', async () => {
    const perThread = await writeBoth(await gatewayIn('channel'), '+14155551001');
    expect(perThread.map((c) => c.channel).sort()).toEqual(['sms', 'whatsapp']);
    expect(perThread.every((c) => c.routes === undefined)).toBe(true);

    const perContact = await writeBoth(await gatewayIn('contact'), '+14155551002');
    expect(perContact).toHaveLength(1);
    expect(perContact[0]!.routes?.map((r) => r.channel)).toEqual(['sms', 'whatsapp']);
    const replies = fake.created().filter((r) => r.fields.Body?.includes('+14155551002'));
    expect(replies.map((r) => r.fields.To)).toEqual(['+14155551002', 'whatsapp:+14155551002']);
  });

  it('a deleted contact conversation frees its threads: the next messages start and join a new one', async () => {
    const g = await gatewayIn('contact');
    const [first] = await writeBoth(g, '+14155551003');
    expect((await g.api(`/v1/conversations/${first!.id}`, { method: 'DELETE' })).status).toBeLessThan(300);
    fake.reset();
    const again = await writeBoth(g, '+14155551003');
    expect(again).toHaveLength(1);
    expect(again[0]!.id).not.toBe(first!.id);
    expect(again[0]!.routes?.map((r) => r.channel)).toEqual(['sms', 'whatsapp']);
  });
});
