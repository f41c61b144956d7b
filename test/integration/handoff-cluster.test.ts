/**
 * Handoffs across gateway processes sharing one Redis (SPEC §8): a handoff requested at once through
 * two gateways is one transition with one event; a customer message racing the handoff is answered
 * by the bot or muted, never both and never lost; the idle release fires once, after both gateways
 * were restarted.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/model.js';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const HANDOFF_EVENTS = [
  'conversation.handoff_requested',
  'conversation.handoff_assigned',
  'conversation.handoff_released',
];

describe.skipIf(!redisAvailable())('handoff across gateways (Redis)', () => {
  let redis: RedisServer | undefined;
  let redisUrl = process.env.REDIS_URL ?? '';
  let bot: FakeBot;
  let receiver: WebhookReceiver;
  let gateways: TestGateway[] = [];

  beforeAll(async () => {
    if (!process.env.REDIS_URL) {
      redis = await RedisServer.start();
      redisUrl = redis.url;
    }
    bot = await FakeBot.start();
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await receiver.close();
    await bot.close();
    await redis?.dispose();
  });
  afterEach(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    gateways = [];
    bot.calls.length = 0;
    receiver.received.length = 0;
  });

  /** Two gateways on one Redis and key prefix, as two processes of one deployment. */
  async function pair(prefix: string, env: Record<string, string> = {}): Promise<[TestGateway, TestGateway]> {
    const settings = {
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      BOT_URL: bot.url,
      BOT_SECRET,
      WEBHOOKS_ALLOW_PRIVATE: 'true',
      ...env,
    };
    const started = await Promise.all([startGateway(settings), startGateway(settings)]);
    gateways.push(...started);
    return started as [TestGateway, TestGateway];
  }

  async function subscribe(g: TestGateway): Promise<void> {
    const res = await g.api('/v1/webhooks', {
      method: 'POST',
      json: { url: `${receiver.url}/hook`, events: HANDOFF_EVENTS },
    });
    expect(res.status).toBe(201);
    receiver.secrets = [((await res.json()) as { secret: string }).secret];
  }

  async function session(g: TestGateway): Promise<string> {
    const res = await g.api('/v1/sessions', { method: 'POST', json: {} });
    return ((await res.json()) as { conversationId: string }).conversationId;
  }

  const eventsOf = (conversationId: string, type: string) =>
    receiver.received.filter((d) => d.event.conversationId === conversationId && d.event.type === type);

  it('gives one transition and one event for a handoff requested at once through both gateways', async () => {
    const [a, b] = await pair(`hc-${randomUUID().slice(0, 8)}`);
    await subscribe(a);
    const id = await session(a);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).api(`/v1/conversations/${id}/handoff`, { method: 'POST', json: { reason: `r${i}` } }),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(10).fill(200));
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as Conversation[];
    // Every caller sees the one handoff that was made.
    expect(new Set(bodies.map((c) => c.handoff?.requestedAt)).size).toBe(1);
    expect(new Set(bodies.map((c) => c.handoff?.reason)).size).toBe(1);
    await receiver.waitFor(() => eventsOf(id, 'conversation.handoff_requested').length >= 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(eventsOf(id, 'conversation.handoff_requested')).toHaveLength(1);
  });

  it('answers a customer message racing the handoff by the bot or not at all, never both, never lost', async () => {
    const [a, b] = await pair(`hr-${randomUUID().slice(0, 8)}`);
    const rounds = 16;
    const ids = await Promise.all(Array.from({ length: rounds }, () => session(a)));
    const sent = await Promise.all(
      ids.map(async (id, i) => {
        const [writer, agent] = i % 2 ? [a, b] : [b, a];
        const [message] = await Promise.all([
          writer.api('/v1/messages', {
            method: 'POST',
            json: { conversationId: id, text: `race ${i}`, wait: 0 },
          }),
          agent.api(`/v1/conversations/${id}/handoff`, { method: 'POST', json: {} }),
        ]);
        expect(message.status).toBe(202);
        return ((await message.json()) as { message: { id: string } }).message.id;
      }),
    );
    let answered = 0;
    for (const [i, id] of ids.entries()) {
      const stored = await eventually(async () => {
        const m = (await (await a.api(`/v1/conversations/${id}/messages/${sent[i]}`)).json()) as Message;
        return m.processing && !['queued', 'processing'].includes(m.processing.state) ? m : null;
      });
      const calls = bot.callsFor(stored.id);
      const replies = stored.processing?.replyIds ?? [];
      if (stored.processing?.state === 'done') {
        answered += 1;
        expect(calls).toHaveLength(1);
        expect(replies).toHaveLength(1);
      } else {
        expect(stored.processing).toMatchObject({ state: 'skipped', error: { code: 'GW_HANDOFF' } });
        expect(calls).toHaveLength(0);
        expect(replies).toHaveLength(0);
      }
      const conversation = (await (await b.api(`/v1/conversations/${id}`)).json()) as Conversation;
      expect(conversation.status).toBe('handoff');
    }
    // Both outcomes are legitimate; which one a round gets is the race's.
    expect(answered).toBeLessThanOrEqual(rounds);
  });

  it('never calls the bot in handoff, on either gateway, then resumes it after release', async () => {
    const [a, b] = await pair(`hm-${randomUUID().slice(0, 8)}`);
    const id = await session(a);
    await b.api(`/v1/conversations/${id}/handoff`, { method: 'POST', json: {} });
    const ids: string[] = [];
    for (const [i, g] of [a, b, a, b].entries()) {
      const res = await g.api('/v1/messages', {
        method: 'POST',
        json: { conversationId: id, text: `m${i}`, wait: 5 },
      });
      ids.push(((await res.json()) as { message: { id: string } }).message.id);
    }
    for (const mid of ids) {
      const m = (await (await a.api(`/v1/conversations/${id}/messages/${mid}`)).json()) as Message;
      expect(m.processing).toMatchObject({ state: 'skipped', error: { code: 'GW_HANDOFF' } });
    }
    expect(bot.calls).toEqual([]);
    expect((await a.api(`/v1/conversations/${id}/handoff`, { method: 'DELETE' })).status).toBe(200);
    const res = await b.api('/v1/messages', {
      method: 'POST',
      json: { conversationId: id, text: 'back', wait: 5 },
    });
    expect(((await res.json()) as { replies: Message[] }).replies.map((r) => r.text)).toEqual(['re: back']);
    expect(bot.calls).toHaveLength(1);
    expect(bot.calls[0]).toMatchObject({
      text: 'back',
      resumed: true,
      history: ['m0', 'm1', 'm2', 'm3', 'back'],
    });
  });

  it('fires the idle release once, after both gateways were restarted', async () => {
    const prefix = `hi-${randomUUID().slice(0, 8)}`;
    const env = { HANDOFF_IDLE_RELEASE_S: '2' };
    const [a] = await pair(prefix, env);
    await subscribe(a);
    const id = await session(a);
    const entered = (await (
      await a.api(`/v1/conversations/${id}/handoff`, { method: 'POST', json: {} })
    ).json()) as Conversation;
    expect(entered.handoff?.releaseAt).toBeDefined();
    // Both processes go away before the release is due; two new ones take over.
    await Promise.all(gateways.map((g) => g.stop()));
    gateways = [];
    await new Promise((r) => setTimeout(r, 2_200));
    const [c, d] = await pair(prefix, env);
    await eventually(async () => {
      const now = (await (await c.api(`/v1/conversations/${id}`)).json()) as Conversation;
      return now.status === 'open' && now.handoff === null;
    }, 10_000);
    await receiver.waitFor(() => eventsOf(id, 'conversation.handoff_released').length >= 1);
    // Several polls of both processes later, still the one release.
    await new Promise((r) => setTimeout(r, 2_500));
    expect(eventsOf(id, 'conversation.handoff_released')).toHaveLength(1);
    expect(((await (await d.api(`/v1/conversations/${id}`)).json()) as Conversation).status).toBe('open');
  });
  it('waits again from each message people send while in handoff before the idle release', async () => {
    const [a, b] = await pair(`ht-${randomUUID().slice(0, 8)}`, { HANDOFF_IDLE_RELEASE_S: '3' });
    const id = await session(a);
    await a.api(`/v1/conversations/${id}/handoff`, { method: 'POST', json: {} });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(
      (await b.api(`/v1/conversations/${id}/send`, { method: 'POST', json: { text: 'On it!' } })).status,
    ).toBe(201);
    // Past the first due time and a whole poll interval after it, not yet at the one the message set.
    await new Promise((r) => setTimeout(r, 2_700));
    expect(((await (await a.api(`/v1/conversations/${id}`)).json()) as Conversation).status).toBe('handoff');
    await eventually(async () => {
      const now = (await (await b.api(`/v1/conversations/${id}`)).json()) as Conversation;
      return now.status === 'open';
    }, 5_000);
  });
});
