import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Contact } from '../../src/contacts/model.js';
import type { DomainEvent } from '../../src/core/events.js';
import type { Conversation, Message } from '../../src/core/model.js';
import { dkimSigned } from '../fakes/dns.js';
import { directMessage, type FakeSlackApi, nextTs, postEvent, TEAM_ID } from '../fakes/slack-api.js';
import { CustomerRig, mail, type RecordingBot, SUPPORT } from '../helpers/customer-rig.js';
import { eventually } from '../helpers/eventually.js';
import type { TestGateway } from '../helpers/gateway.js';
import { redisAvailable } from '../helpers/redis.js';

describe.skipIf(!redisAvailable())('contacts on Redis', () => {
  let rig: CustomerRig;
  let gw: TestGateway;
  let slack: FakeSlackApi;
  let redis: Redis;
  let prefix: string;
  let signedKey: string;
  let evilKey: string;
  let bot: RecordingBot;
  let events: DomainEvent[];

  beforeAll(async () => {
    rig = await CustomerRig.start({ label: 'ct', slack: true });
    ({ gw, redis, prefix, signedKey, evilKey, bot, events } = rig);
    slack = rig.slack!;
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
  const mid = (label: string) => rig.mid(label);
  const signedMail = (address: string, text: string, opts?: { key?: string; domain?: string }) =>
    rig.signedMail(address, text, opts);
  const suggestions = () => rig.suggestions();

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
      const body = directMessage({ channel: 'D0077', user: 'U0077', text, ts: nextTs() });
      expect((await postEvent(gw.url, body)).status).toBe(200);
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
    await rig.sendRaw({ from: email, to: SUPPORT }, signed.replace('Pay invoice 1', 'Pay invoice 2'));
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
      const body = directMessage({ channel: 'D0078', user: 'U0078', text, ts: nextTs() });
      expect((await postEvent(gw.url, body)).status).toBe(200);
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
