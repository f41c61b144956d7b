/**
 * Outbound webhook order on real Redis with two gateways (engines, ingest and dispatchers alike): a
 * receiver that answers 503 for a while and then 204 gets every event of every conversation, and each
 * conversation's events strictly in `seq` order, through retries, backoff and the breaker opening and
 * closing. Events of one conversation are emitted by both processes (a message accepted by one, its
 * reply recorded by the other), so the order cannot rest on who enqueued first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';
import { type ReceivedDelivery, WebhookReceiver } from '../helpers/webhook-receiver.js';

const enabled = redisAvailable();

/** Runs `tasks` with at most `limit` in flight. */
async function pool<T>(tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}

/**
 * Per conversation, what reached the receiver out of order: each request (failed ones included) must
 * be the event last sent again or one with a higher `seq` than every event accepted before it.
 */
function orderViolations(received: ReceivedDelivery[]): string[] {
  const out: string[] = [];
  const byConversation = new Map<string, ReceivedDelivery[]>();
  for (const d of received) {
    const conv = d.event.conversationId;
    if (!conv) continue;
    const list = byConversation.get(conv) ?? [];
    list.push(d);
    byConversation.set(conv, list);
  }
  for (const [conv, list] of byConversation) {
    let highest = 0;
    let last = '';
    for (const d of list) {
      if (d.webhookId === last) continue;
      if (d.event.seq <= highest) {
        out.push(`${conv}: seq ${d.event.seq} after ${highest} (${list.map((x) => x.event.seq).join(',')})`);
        break;
      }
      highest = d.event.seq;
      last = d.webhookId;
    }
  }
  return out;
}

describe.skipIf(!enabled)('webhook order per conversation (Redis, two gateways)', () => {
  let redis: RedisServer;
  let bot: FakeBot;
  let receiver: WebhookReceiver;
  const gateways: TestGateway[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    bot = await FakeBot.start();
    receiver = await WebhookReceiver.start();
    const env = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'whorder',
      BOT_URL: bot.url,
      BOT_SECRET,
      WORKER_CONCURRENCY: '8',
      WEBHOOKS_ALLOW_PRIVATE: 'true',
    };
    const webhooks = {
      timeoutMs: 2_000,
      // Short, jittered retries: attempts of one conversation's events race each other if they can.
      retryCeilingsMs: [100, 200, 300, 400, 500, 500, 500, 500, 500, 500, 500, 500],
      breakerThreshold: 5,
      breakerCooldownMs: 300,
      pollIntervalMs: 100,
    };
    gateways.push(
      await startGateway(env, { webhooks }),
      await startGateway(env, { webhooks: { ...webhooks, perEndpointConcurrency: 4 } }),
    );
  });

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await receiver?.close();
    await bot?.close();
    await redis?.dispose();
  });

  /** Subscribes `r` to message.created; later subscriptions stay on, their receivers unread. */
  async function subscribe(r: WebhookReceiver): Promise<void> {
    const created = (await (
      await gateways[0]!.api('/v1/webhooks', {
        method: 'POST',
        json: { url: `${r.url}/crm`, events: ['message.created'] },
      })
    ).json()) as { id: string; secret: string };
    r.secrets = [created.secret];
  }

  /** Sessions over both gateways, and PER messages to each, spread over both, sent concurrently. */
  async function traffic(
    CONVERSATIONS: number,
    PER: number,
  ): Promise<{ conversations: string[]; sending: Promise<number[]> }> {
    const [a, b] = gateways as [TestGateway, TestGateway];
    bot.mode = { kind: 'echo', delayMs: () => Math.floor(Math.random() * 3) };
    const conversations = await Promise.all(
      Array.from({ length: CONVERSATIONS }, async (_, i) => {
        const res = await (i % 2 ? a : b).api('/v1/sessions', { method: 'POST', json: {} });
        expect(res.status).toBe(201);
        return ((await res.json()) as { conversationId: string }).conversationId;
      }),
    );
    const sends: Array<() => Promise<number>> = [];
    for (let m = 0; m < PER; m++) {
      conversations.forEach((conversationId, c) => {
        sends.push(async () => {
          const res = await ((c + m) % 2 ? a : b).api('/v1/messages', {
            method: 'POST',
            json: { conversationId, text: `c${c}-m${m}`, clientMessageId: `c${c}-m${m}`, wait: 0 },
          });
          await res.arrayBuffer();
          return res.status;
        });
      });
    }
    return { conversations, sending: pool(sends, 20) };
  }

  it('503 for a while, then 204: every event once accepted, each conversation strictly in seq order', async () => {
    await subscribe(receiver);
    receiver.mode = { kind: 'status', status: 503 };
    const CONVERSATIONS = 30;
    const PER = 6;
    const { conversations, sending } = await traffic(CONVERSATIONS, PER);
    // Unavailable while the traffic comes in and a little after, then healthy.
    await new Promise((r) => setTimeout(r, 2_500));
    receiver.mode = { kind: 'ok' };
    expect((await sending).filter((s) => s !== 202)).toEqual([]);

    // Each message and its reply: two message.created events.
    const total = CONVERSATIONS * PER * 2;
    await eventually(() => new Set(receiver.accepted.map((d) => d.webhookId)).size >= total, 60_000, 100);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.unverified).toEqual([]);
    expect(receiver.received.some((d) => d.answered === 'status')).toBe(true);

    const acceptedIds = new Set(receiver.accepted.map((d) => d.webhookId));
    expect(acceptedIds.size).toBe(total);
    for (const conv of conversations) {
      const seqs = [
        ...new Set(receiver.accepted.filter((d) => d.event.conversationId === conv).map((d) => d.event.seq)),
      ];
      // Nothing lost: the conversation's messages are seq 1..2*PER, all accepted.
      expect(seqs.sort((x, y) => x - y)).toEqual(Array.from({ length: PER * 2 }, (_, i) => i + 1));
    }
    expect(orderViolations(receiver.received)).toEqual([]);
  }, 120_000);

  it('a healthy receiver too: a reply and the next message queued by different processes go in seq order', async () => {
    const healthy = await WebhookReceiver.start();
    try {
      await subscribe(healthy);
      const CONVERSATIONS = 20;
      const PER = 6;
      const { conversations, sending } = await traffic(CONVERSATIONS, PER);
      expect((await sending).filter((s) => s !== 202)).toEqual([]);
      const total = CONVERSATIONS * PER * 2;
      await eventually(() => new Set(healthy.accepted.map((d) => d.webhookId)).size >= total, 60_000, 100);
      expect(healthy.unverified).toEqual([]);
      expect(new Set(healthy.accepted.map((d) => d.webhookId)).size).toBe(total);
      for (const conv of conversations) {
        const seqs = healthy.accepted.filter((d) => d.event.conversationId === conv).map((d) => d.event.seq);
        expect(seqs).toEqual(Array.from({ length: PER * 2 }, (_, i) => i + 1));
      }
      expect(orderViolations(healthy.received)).toEqual([]);
    } finally {
      await healthy.close();
    }
  }, 120_000);
});
