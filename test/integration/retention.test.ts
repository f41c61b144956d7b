/**
 * Retention (SPEC §12) on a real Redis: a customer whose conversations (SMS and WhatsApp, one contact)
 * went quiet before the period's cutoff is erased without trace (checked by scanning every key and
 * value under the gateway's prefix), a customer active after the cutoff keeps everything, and two
 * processes running the job at once erase once between them (the lock).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, DomainEvent, Message } from '../../src/core/index.js';
import { createRetention } from '../../src/retention/index.js';
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

const PUBLIC_URL = 'https://chat.example.com';
const DAY_MS = 86_400_000;
const OLD = '+14155550181';
const RECENT = '+14155550182';

describe.skipIf(!redisAvailable())('retention (Redis)', () => {
  let server: RedisServer;
  let redis: Redis;
  let fake: FakeTwilioApi;
  let gw: TestGateway;
  let prefix: string;
  const events: DomainEvent[] = [];

  beforeAll(async () => {
    server = await RedisServer.start();
    prefix = `rt-${randomUUID().slice(0, 8)}`;
    redis = new Redis(server.url);
    fake = await FakeTwilioApi.start();
    gw = await startGateway({
      REDIS_URL: server.url,
      REDIS_KEY_PREFIX: prefix,
      PUBLIC_URL,
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_URL: fake.url,
      RETENTION_DAYS: '1',
    });
    gw.gateway.deps.events.on((e) => {
      events.push(e);
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await fake?.close();
    redis?.disconnect();
    await server?.dispose();
  });

  const post = (params: Record<string, string>) =>
    postWebhook(`${gw.url}/webhooks/twilio`, params, { signedUrl: `${PUBLIC_URL}/webhooks/twilio` });

  async function conversationsOf(address: string): Promise<Conversation[]> {
    const all = (await (await gw.api('/v1/conversations?take=200')).json()) as { items: Conversation[] };
    return all.items.filter((c) => c.participants.some((p) => p.address === address));
  }

  async function answered(text: string): Promise<void> {
    await eventually(() => fake.created().find((r) => r.fields.Body === `You said: ${text}`));
  }

  /** Every key under the gateway's prefix whose name or value holds one of `needles`. */
  async function holding(needles: readonly string[]): Promise<string[]> {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      for (const key of keys) {
        const type = await redis.type(key);
        let values: string[] = [];
        if (type === 'string') values = [(await redis.get(key)) ?? ''];
        else if (type === 'hash') values = Object.entries(await redis.hgetall(key)).flat();
        else if (type === 'zset') values = await redis.zrange(key, 0, -1);
        else if (type === 'list') values = await redis.lrange(key, 0, -1);
        else if (type === 'set') values = await redis.smembers(key);
        else if (type === 'stream')
          values = (await redis.xrange(key, '-', '+')).flatMap(([id, fields]) => [id, ...fields]);
        const text = [key, ...values].join('\n');
        if (needles.some((n) => text.includes(n))) found.push(key);
      }
    } while (cursor !== '0');
    return found;
  }

  function job() {
    const { store, contacts, events: hub, metrics, logger } = gw.gateway.deps;
    return createRetention({ days: 1, store, contacts, events: hub, metrics, logger })!;
  }

  it('erases what went quiet before the cutoff without trace, and keeps what did not', async () => {
    // The old customer writes by SMS and by WhatsApp (one contact, linked by WaId), then the recent one.
    const oldTexts = ['retention-old-sms-7f3a', 'retention-old-wa-9c1d'];
    expect((await post(smsParams({ From: OLD, Body: oldTexts[0]! }))).status).toBe(200);
    expect(
      (await post(whatsappParams({ From: `whatsapp:${OLD}`, WaId: OLD.slice(1), Body: oldTexts[1]! })))
        .status,
    ).toBe(200);
    await Promise.all(oldTexts.map(answered));
    await new Promise((r) => setTimeout(r, 50));
    const recentText = 'retention-recent-sms-42aa';
    expect((await post(smsParams({ From: RECENT, Body: recentText }))).status).toBe(200);
    await answered(recentText);

    const old = await conversationsOf(OLD);
    expect(old).toHaveLength(2);
    const contact = (await (
      await gw.api(`/v1/contacts?identity=${encodeURIComponent(`sms:${OLD}`)}`)
    ).json()) as {
      items: Array<{ id: string; identities: unknown[] }>;
    };
    expect(contact.items).toHaveLength(1);
    expect(contact.items[0]!.identities).toHaveLength(2);
    const [recent] = await conversationsOf(RECENT);
    expect(recent).toBeDefined();

    // Everything the old customer left is in Redis now (so the scan below can find it).
    const needles = [OLD.slice(1), ...oldTexts, ...old.map((c) => c.id), contact.items[0]!.id];
    expect((await holding(needles)).length).toBeGreaterThan(0);

    // A clock one day after the older customer's last message, and before the recent one's.
    const oldLast = Math.max(...old.map((c) => Date.parse(c.lastMessageAt!)));
    const recentLast = Date.parse(recent!.lastMessageAt!);
    expect(recentLast).toBeGreaterThan(oldLast);
    const now = DAY_MS + (oldLast + recentLast) / 2;

    const run = await job().run(now);
    expect(run).toEqual({ ran: true, conversations: 2, contacts: 1 });

    expect(await holding(needles)).toEqual([]);
    expect(await conversationsOf(OLD)).toEqual([]);
    const gone = (await (
      await gw.api(`/v1/contacts?identity=${encodeURIComponent(`sms:${OLD}`)}`)
    ).json()) as {
      items: unknown[];
    };
    expect(gone.items).toEqual([]);

    // The recent customer keeps everything.
    const kept = await conversationsOf(RECENT);
    expect(kept.map((c) => c.id)).toEqual([recent!.id]);
    const messages = (await (await gw.api(`/v1/conversations/${recent!.id}/messages`)).json()) as {
      items: Message[];
    };
    expect(messages.items.map((m) => m.text)).toContain(recentText);
    expect((await holding([RECENT.slice(1)])).length).toBeGreaterThan(0);

    // Announced without the erased content.
    const deleted = events.filter((e) => e.type === 'conversation.deleted');
    expect(deleted.map((e) => e.conversationId).sort()).toEqual(old.map((c) => c.id).sort());
    for (const e of deleted) expect(e.conversation).toBeUndefined();
    expect(
      events.some((e) => e.type === 'contact.deleted' && e.conversationId === contact.items[0]!.id),
    ).toBe(true);

    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/switchboard_retention_erased_total\{kind="conversation"\} 2/);
    expect(metrics).toMatch(/switchboard_retention_erased_total\{kind="contact"\} 1/);

    // The message the next day is the recent customer's own again: a run now erases nothing more.
    expect(await job().run(now)).toEqual({ ran: true, conversations: 0, contacts: 0 });
  });

  it('runs in one process at a time: of two jobs started together, one runs and one skips', async () => {
    const a = job();
    const b = job();
    const runs = await Promise.all([a.run(), b.run()]);
    expect(runs.filter((r) => r.ran)).toHaveLength(1);
    expect(runs.filter((r) => !r.ran)).toHaveLength(1);
    // The lock is released at the end of a run: the next one runs.
    expect((await b.run()).ran).toBe(true);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/switchboard_retention_runs_total\{outcome="skipped"\} 1/);
  });
});
