/**
 * Contacts end to end on Redis (SPEC §9): signed Twilio webhooks (signatures made at run time), web
 * chat with tokens signed at run time, real SMTP with DKIM signatures made at run time and keys
 * published through mailauth's resolver hook. One customer writes by SMS, WhatsApp, web chat and
 * DKIM-signed mail and is one contact; unverified claims and forged or foreign signatures never link;
 * merge and unmerge round trips through the API; erasure leaves no trace in Redis (SCAN).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Contact, MergeSuggestion } from '../../src/contacts/model.js';
import type { DomainEvent } from '../../src/core/events.js';
import type { Conversation, Message } from '../../src/core/model.js';
import type { Bot, BotRequest } from '../../src/pipeline/bot/types.js';
import { dkimSigned, FakeDns } from '../fakes/dns.js';
import {
  eventEnvelope,
  FakeSlackApi,
  nextTs,
  SIGNING_SECRET,
  BOT_TOKEN as SLACK_BOT_TOKEN,
  signSlack,
  TEAM_ID,
} from '../fakes/slack-api.js';
import { SmtpSink } from '../fakes/smtp-sink.js';
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
import { freePort, hasRedisServer, RedisServer, redisAvailable } from '../helpers/redis.js';
import { ChatClient, ORIGIN, visitorToken, WEBCHAT_SECRET } from '../helpers/webchat-client.js';

const PUBLIC_URL = 'https://chat.example.com';
const SUPPORT = 'support@help.example.com';

/** A bot that answers like the demo bot and keeps every request it got. */
class RecordingBot implements Bot {
  readonly kind = 'http' as const;
  readonly requests: BotRequest[] = [];
  async reply(request: BotRequest) {
    this.requests.push(request);
    return { replies: [{ text: `You said: ${request.message.text}` }] };
  }
}

describe.skipIf(!redisAvailable())('contacts on Redis', () => {
  let server: RedisServer | undefined;
  let url = process.env.REDIS_URL ?? '';
  let prefix: string;
  let redis: Redis;
  let fake: FakeTwilioApi;
  let slack: FakeSlackApi;
  let sink: SmtpSink;
  let dns: FakeDns;
  let signedKey: string;
  let evilKey: string;
  let mailer: nodemailer.Transporter;
  let gw: TestGateway;
  const bot = new RecordingBot();
  const events: DomainEvent[] = [];
  const clients: ChatClient[] = [];
  let seq = 0;

  beforeAll(async () => {
    if (hasRedisServer()) {
      server = await RedisServer.start();
      url = server.url;
    }
    prefix = `ct-${randomUUID().slice(0, 8)}`;
    redis = new Redis(url);
    fake = await FakeTwilioApi.start();
    slack = await FakeSlackApi.start();
    sink = await SmtpSink.start();
    const smtpPort = await freePort();
    // signed.example permits no address by SPF: its mail can only pass by its DKIM signature.
    // evil.test is another domain whose own signatures and SPF pass, but it is never the From domain.
    dns = new FakeDns()
      .spf('signed.example', 'v=spf1 -all')
      .dmarc('signed.example')
      .spf('evil.test', 'v=spf1 ip4:127.0.0.1 -all');
    signedKey = dns.dkimKey('signed.example');
    evilKey = dns.dkimKey('evil.test');
    gw = await startGateway(
      {
        REDIS_URL: url,
        REDIS_KEY_PREFIX: prefix,
        PUBLIC_URL,
        TWILIO_ACCOUNT_SID: ACCOUNT_SID,
        TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        TWILIO_API_URL: fake.url,
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_BOT_TOKEN,
        SLACK_API_URL: slack.url,
        SLACK_TEAM_ID: TEAM_ID,
        WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
        WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
        EMAIL_FROM: `Example Support <${SUPPORT}>`,
        SMTP_URL: sink.url,
        EMAIL_SMTP_PORT: String(smtpPort),
        EMAIL_SMTP_HOST: '127.0.0.1',
        EMAIL_BOUNCE_SECRET: 'test-bounce-secret-0123456789abcdef',
      },
      { bot },
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
  });

  afterAll(async () => {
    for (const c of clients) c.ws.terminate();
    mailer?.close();
    await gw?.stop();
    await sink?.stop();
    await fake?.close();
    await slack?.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.unlink(...keys);
      redis.disconnect();
    }
    await server?.dispose();
  });

  async function json<T>(path: string, init?: RequestInit & { json?: unknown }): Promise<T> {
    const res = await gw.api(path, init);
    expect(res.status, `${init?.method ?? 'GET'} ${path}`).toBeLessThan(300);
    return (await res.json()) as T;
  }

  async function contactOf(channel: string, address: string): Promise<Contact | undefined> {
    const page = await json<{ items: Contact[] }>(
      `/v1/contacts?identity=${encodeURIComponent(`${channel}:${address}`)}`,
    );
    return page.items[0];
  }

  async function sms(from: string, text: string): Promise<void> {
    const path = '/webhooks/twilio';
    const res = await postWebhook(`${gw.url}${path}`, smsParams({ From: from, Body: text }), {
      signedUrl: `${PUBLIC_URL}${path}`,
    });
    expect(res.status).toBe(200);
  }

  async function whatsapp(from: string, text: string, over: Record<string, string> = {}): Promise<void> {
    const path = '/webhooks/twilio';
    const params = whatsappParams({ From: `whatsapp:${from}`, WaId: from.slice(1), Body: text, ...over });
    const res = await postWebhook(`${gw.url}${path}`, params, { signedUrl: `${PUBLIC_URL}${path}` });
    expect(res.status).toBe(200);
  }

  async function chat(claims: Record<string, unknown>, text: string): Promise<void> {
    const client = await ChatClient.ready(gw.url, { token: visitorToken(claims) });
    clients.push(client);
    await client.say(text);
  }

  function mail(from: string, id: string, text: string): string {
    return [
      `From: ${from}`,
      `To: ${SUPPORT}`,
      'Subject: Hello',
      `Message-ID: ${id}`,
      `Date: ${new Date().toUTCString()}`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      '',
      text,
      '',
    ].join('\r\n');
  }

  function mid(label: string): string {
    seq += 1;
    return `<${label}-${seq}-${Date.now()}@signed.example>`;
  }

  async function signedMail(address: string, text: string, opts: { key?: string; domain?: string } = {}) {
    const id = mid('m');
    const raw = await dkimSigned(
      mail(address, id, text),
      opts.domain ?? 'signed.example',
      opts.key ?? signedKey,
    );
    const envelopeFrom = opts.domain === 'evil.test' ? 'bounce@evil.test' : address;
    await mailer.sendMail({ envelope: { from: envelopeFrom, to: SUPPORT }, raw });
    return id;
  }

  const suggestions = async () =>
    (await json<{ items: MergeSuggestion[] }>('/v1/contacts/suggestions')).items;

  it('SMS, WhatsApp, web chat and DKIM-signed mail from one customer are one contact', async () => {
    const phone = '+14155557777';
    const email = 'pat@signed.example';
    await sms(phone, 'hello by SMS');
    const first = await eventually(() => contactOf('sms', phone));
    expect(first.identities).toEqual([{ channel: 'sms', address: phone, verified: true, source: 'twilio' }]);

    await whatsapp(phone, 'hello on WhatsApp', { ProfileName: 'Pat Contact' });
    const linked = await eventually(async () => {
      const c = await contactOf('whatsapp', phone);
      return c?.identities.length === 2 ? c : undefined;
    });
    expect(linked.id).toBe(first.id);
    expect(linked.identities[1]).toEqual({
      channel: 'whatsapp',
      address: phone,
      verified: true,
      source: 'twilio_waid',
    });

    // The site vouches for the number and the address (OpenID *_verified claims).
    await chat(
      {
        sub: 'visitor-pat',
        name: 'Pat Contact',
        email,
        email_verified: true,
        phone_number: phone,
        phone_number_verified: true,
      },
      'hello from the site',
    );
    await signedMail(email, 'hello by mail');
    const one = await eventually(async () => {
      const c = await contactOf('email', email);
      const convs = c && (await json<{ items: Conversation[] }>(`/v1/contacts/${c.id}/conversations`));
      return convs?.items.length === 4 ? c : undefined;
    }, 10_000);
    expect(one.id).toBe(first.id);
    expect(one.identities.map((i) => `${i.channel}:${i.source}`)).toEqual([
      'sms:twilio',
      'whatsapp:twilio_waid',
      'webchat:webchat_jwt',
      'email:webchat_jwt',
    ]);
    // Every user participant carries the contact; the bot's request carries the contact.
    const convs = await json<{ items: Conversation[] }>(`/v1/contacts/${one.id}/conversations`);
    expect(new Set(convs.items.map((c) => c.channel))).toEqual(
      new Set(['sms', 'whatsapp', 'webchat', 'email']),
    );
    for (const c of convs.items)
      expect(c.participants.filter((p) => p.role === 'user').map((p) => p.contactId)).toEqual([one.id]);
    const asked = await eventually(() => bot.requests.find((r) => r.message.text === 'hello by mail'));
    expect(asked.contact).toMatchObject({ id: one.id, identities: expect.any(Array), meta: {} });
    // The timeline has every message of theirs in time order.
    const timeline = await json<{ items: Message[] }>(`/v1/contacts/${one.id}/timeline?take=200`);
    const inbound = timeline.items.filter((m) => m.direction === 'inbound').map((m) => m.text);
    expect(inbound).toEqual(['hello by SMS', 'hello on WhatsApp', 'hello from the site', 'hello by mail']);
    expect(events.filter((e) => e.type === 'contact.created' && e.contact?.id === one.id)).toHaveLength(1);
  });

  it('a verified web-chat email links to the contact that proved it; an unverified one only suggests', async () => {
    const email = 'robin@signed.example';
    await signedMail(email, 'signed, from Robin');
    const owner = await eventually(() => contactOf('email', email), 10_000);
    expect(owner.identities).toEqual([
      { channel: 'email', address: email, verified: true, source: 'smtp_dkim' },
    ]);

    await chat({ sub: 'visitor-robin', email, email_verified: true }, 'verified claim');
    const linked = await eventually(async () => {
      const c = await contactOf('webchat', 'visitor-robin');
      return c;
    });
    expect(linked.id).toBe(owner.id);

    // No `email_verified`: a claim the site did not vouch for.
    await chat({ sub: 'visitor-claims-robin', email }, 'unverified claim');
    const loose = await eventually(() => contactOf('webchat', 'visitor-claims-robin'));
    expect(loose.id).not.toBe(owner.id);
    expect((await json<Contact>(`/v1/contacts/${owner.id}`)).identities).toHaveLength(2);
    const s = await eventually(async () =>
      (await suggestions()).find((x) => x.contactIds.includes(loose.id) && x.contactIds.includes(owner.id)),
    );
    expect(s.reason).toContain('not verified on both sides');
  });

  it("a Slack user's profile email from users.info links, looked up once", async () => {
    const email = 'robin@signed.example';
    const owner = (await contactOf('email', email))!;
    slack.users.set('U0077', { name: 'robin', real_name: 'Robin R', email });
    const say = async (text: string) => {
      const ts = nextTs();
      const body = JSON.stringify(
        eventEnvelope({
          type: 'message',
          channel: 'D0077',
          channel_type: 'im',
          user: 'U0077',
          text,
          ts,
          event_ts: ts,
        }),
      );
      const res = await fetch(`${gw.url}/webhooks/slack/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signSlack(body) },
        body,
      });
      expect(res.status).toBe(200);
    };
    await say('hi from Slack');
    const linked = await eventually(() => contactOf('slack', `${TEAM_ID}:U0077`));
    expect(linked.id).toBe(owner.id);
    expect(linked.identities.find((i) => i.channel === 'slack')).toEqual({
      channel: 'slack',
      address: `${TEAM_ID}:U0077`,
      verified: true,
      source: 'slack',
    });
    await say('again from Slack');
    await eventually(async () => {
      const t = await json<{ items: Message[] }>(`/v1/contacts/${owner.id}/timeline?take=200`);
      return t.items.some((m) => m.text === 'again from Slack');
    });
    expect(slack.calls.filter((c) => c.method === 'users.info' && c.params.user === 'U0077')).toHaveLength(1);
  });

  it('a forged signature or a DKIM pass for another domain than From never links', async () => {
    const email = 'robin@signed.example';
    const owner = (await contactOf('email', email))!;
    // Altered after signing: the signature no longer verifies.
    const id = mid('forged');
    const signed = await dkimSigned(mail(email, id, 'Pay invoice 1'), 'signed.example', signedKey);
    await mailer.sendMail({
      envelope: { from: email, to: SUPPORT },
      raw: signed.replace('Pay invoice 1', 'Pay invoice 2'),
    });
    // Signed, validly, by evil.test: a pass, but not for the From domain.
    await signedMail(email, 'signed by someone else', { key: evilKey, domain: 'evil.test' });
    const owners = await eventually(async () => {
      const page = await json<{ items: Contact[] }>(
        `/v1/contacts?identity=${encodeURIComponent(`email:${email}`)}`,
      );
      // The one that proved it, the visitor who claimed it unverified, and the unverified mail.
      return page.items.length === 3 ? page.items : undefined;
    }, 10_000);
    const other = owners.find((c) => c.identities.every((i) => i.channel === 'email') && c.id !== owner.id)!;
    expect(other.identities).toEqual([{ channel: 'email', address: email, verified: false, source: 'none' }]);
    expect(
      (await suggestions()).some((x) => x.contactIds.includes(other.id) && x.contactIds.includes(owner.id)),
    ).toBe(true);
    const convs = await json<{ items: Conversation[] }>(`/v1/contacts/${other.id}/conversations`);
    expect(convs.items).toHaveLength(2);
    // The owner kept only its own: the signed mail, the verified web chat and Slack.
    const own = (await json<{ items: Conversation[] }>(`/v1/contacts/${owner.id}/conversations`)).items;
    expect(own.map((c) => c.channel).sort()).toEqual(['email', 'slack', 'webchat']);
  });

  it('merges and unmerges through the API: idempotent, recorded, each event once', async () => {
    await sms('+14155550001', 'I am Sam');
    await chat({ sub: 'visitor-sam', name: 'Sam' }, 'Sam on the site');
    const a = await eventually(() => contactOf('sms', '+14155550001'));
    const b = await eventually(() => contactOf('webchat', 'visitor-sam'));
    const self = await gw.api(`/v1/contacts/${a.id}/merge`, { method: 'POST', json: { from: a.id } });
    expect(self.status).toBe(422);
    expect(self.headers.get('content-type')).toContain('application/problem+json');
    expect(((await self.json()) as { code: string }).code).toBe('GW_ERR_MERGE_SELF');

    const merge = { method: 'POST', json: { from: b.id, by: 'agent:kim', reason: 'same person' } };
    const merged = await json<Contact>(`/v1/contacts/${a.id}/merge`, merge);
    expect(merged.identities.map((i) => i.channel)).toEqual(['sms', 'webchat']);
    expect(merged.history.at(-1)).toMatchObject({
      op: 'merged',
      contactId: b.id,
      by: 'agent:kim',
      reason: 'same person',
    });
    expect((await json<Contact>(`/v1/contacts/${a.id}/merge`, merge)).id).toBe(a.id);
    expect((await gw.api(`/v1/contacts/${b.id}`)).status).toBe(404);
    const convs = await json<{ items: Conversation[] }>(`/v1/contacts/${a.id}/conversations`);
    expect(convs.items).toHaveLength(2);
    for (const c of convs.items) expect(c.participants.find((p) => p.role === 'user')?.contactId).toBe(a.id);
    // A message after the merge, from the merged identity, lands on the survivor.
    await chat({ sub: 'visitor-sam', name: 'Sam' }, 'Sam again');
    await eventually(async () => {
      const t = await json<{ items: Message[] }>(`/v1/contacts/${a.id}/timeline?take=200`);
      return t.items.some((m) => m.text === 'Sam again');
    });

    const missing = await gw.api(`/v1/contacts/${a.id}/unmerge`, {
      method: 'POST',
      json: { channel: 'email', address: 'nobody@example.com' },
    });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { code: string }).code).toBe('GW_ERR_IDENTITY_NOT_FOUND');
    const unmerge = { method: 'POST', json: { channel: 'webchat', address: 'visitor-sam', by: 'agent:kim' } };
    const split = await json<Contact>(`/v1/contacts/${a.id}/unmerge`, unmerge);
    expect(split.id).not.toBe(a.id);
    expect(split.identities).toEqual([
      { channel: 'webchat', address: 'visitor-sam', verified: true, source: 'webchat_jwt' },
    ]);
    const again = await gw.api(`/v1/contacts/${a.id}/unmerge`, unmerge);
    expect(again.status).toBe(200);
    expect(((await again.json()) as Contact).id).toBe(split.id);
    const back = await json<{ items: Conversation[] }>(`/v1/contacts/${split.id}/conversations`);
    expect(back.items.map((c) => c.channel)).toEqual(['webchat']);
    expect(back.items[0]?.participants.find((p) => p.role === 'user')?.contactId).toBe(split.id);
    expect(
      (await json<{ items: Conversation[] }>(`/v1/contacts/${a.id}/conversations`)).items.map(
        (c) => c.channel,
      ),
    ).toEqual(['sms']);
    expect(events.filter((e) => e.type === 'contact.merged' && e.otherContactId === b.id)).toHaveLength(1);
    expect(events.filter((e) => e.type === 'contact.unmerged' && e.contact?.id === split.id)).toHaveLength(1);
  });

  it('a merge racing new messages from both contacts loses none and leaves them on the survivor', async () => {
    await sms('+14155550002', 'Lee one');
    await sms('+14155550003', 'Lee two');
    const a = await eventually(() => contactOf('sms', '+14155550002'));
    const b = await eventually(() => contactOf('sms', '+14155550003'));
    const sends = [
      ...Array.from({ length: 5 }, (_, i) => sms('+14155550002', `a ${i}`)),
      ...Array.from({ length: 5 }, (_, i) => whatsapp('+14155550003', `b ${i}`)),
    ];
    const merge = json<Contact>(`/v1/contacts/${a.id}/merge`, { method: 'POST', json: { from: b.id } });
    await Promise.all([...sends, merge]);
    const texts = await eventually(async () => {
      const t = await json<{ items: Message[] }>(`/v1/contacts/${a.id}/timeline?take=200`);
      const inbound = t.items.filter((m) => m.direction === 'inbound').map((m) => m.text);
      return inbound.length === 12 ? inbound : undefined;
    }, 10_000);
    expect(texts.sort()).toEqual(
      ['Lee one', 'Lee two', ...[0, 1, 2, 3, 4].flatMap((i) => [`a ${i}`, `b ${i}`])].sort(),
    );
    expect(await contactOf('whatsapp', '+14155550003')).toMatchObject({ id: a.id });
  });

  it('erasure leaves no key or value with their identifiers in Redis', async () => {
    const phone = '+14155557777';
    const needles = [phone, phone.slice(1), 'pat@signed.example', 'Pat Contact', 'visitor-pat'];
    const pat = (await contactOf('sms', phone))!;
    const convIds = (await json<{ items: Conversation[] }>(`/v1/contacts/${pat.id}/conversations`)).items.map(
      (c) => c.id,
    );
    // Every reply has gone out, so nothing of theirs is still in flight.
    await eventually(() => bot.requests.filter((r) => r.contact?.id === pat.id).length >= 4);
    const before = await holding(needles);
    expect(before.length).toBeGreaterThan(0);

    const res = await gw.api(`/v1/contacts/${pat.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: pat.id });
    expect(await holding([...needles, ...convIds])).toEqual([]);
    expect((await gw.api(`/v1/contacts/${pat.id}`)).status).toBe(404);
    const deleted = events.filter((e) => e.type === 'contact.deleted');
    expect(deleted).toHaveLength(1);
    const body = JSON.stringify(deleted[0]);
    for (const n of needles) expect(body).not.toContain(n);
  });

  it("an erased Slack user's profile is forgotten in memory too: their next message asks users.info again", async () => {
    slack.users.set('U0078', { name: 'sam', real_name: 'Sam S' });
    const lookups = () => slack.calls.filter((c) => c.method === 'users.info' && c.params.user === 'U0078');
    const say = async (text: string) => {
      const ts = nextTs();
      const body = JSON.stringify(
        eventEnvelope({
          type: 'message',
          channel: 'D0078',
          channel_type: 'im',
          user: 'U0078',
          text,
          ts,
          event_ts: ts,
        }),
      );
      const res = await fetch(`${gw.url}/webhooks/slack/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signSlack(body) },
        body,
      });
      expect(res.status).toBe(200);
    };
    await say('first');
    await say('second');
    expect(lookups()).toHaveLength(1);
    const sam = await eventually(() => contactOf('slack', `${TEAM_ID}:U0078`));
    expect((await gw.api(`/v1/contacts/${sam.id}`, { method: 'DELETE' })).status).toBe(200);
    await say('after erasure');
    expect(lookups()).toHaveLength(2);
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
