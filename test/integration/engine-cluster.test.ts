/**
 * SPEC §4 on real Redis with several gateway processes: no duplicates, per-conversation order across
 * processes, crash safety (SIGKILL mid-message), Redis restarted under load, back-pressure, graceful
 * shutdown. Each assertion is one that a violation would trip.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { eventually } from '../helpers/eventually.js';
import { type SpawnedGateway, spawnGateway } from '../helpers/gateway.js';
import {
  allMessages,
  expectOnceInOrder,
  expectOneReplyEach,
  pool,
  session,
} from '../helpers/order-checks.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

const enabled = redisAvailable();

describe.skipIf(!enabled)('delivery guarantees across processes (Redis)', () => {
  let redis: RedisServer;
  let bot: FakeBot;
  const procs: SpawnedGateway[] = [];
  let prefixN = 0;

  const env = (extra: Record<string, string> = {}) => ({
    REDIS_URL: redis.url,
    BOT_URL: bot.url,
    BOT_SECRET,
    BOT_TIMEOUT_MS: '20000',
    ...extra,
  });

  async function gateways(n: number, extra: Record<string, string>): Promise<SpawnedGateway[]> {
    const started = await Promise.all(Array.from({ length: n }, () => spawnGateway(env(extra))));
    procs.push(...started);
    return started;
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
    bot = await FakeBot.start();
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await bot?.close();
    await redis?.dispose();
  });

  it('1,000 messages over 100 conversations, each sent twice through two processes: once each, in seq order', async () => {
    const prefix = `t${++prefixN}`;
    const [a, b] = await gateways(2, { REDIS_KEY_PREFIX: prefix, WORKER_CONCURRENCY: '16' });
    bot.calls.length = 0;
    bot.mode = { kind: 'echo', delayMs: () => Math.floor(Math.random() * 5) };
    const conversations = await Promise.all(
      Array.from({ length: 100 }, (_, i) => session(i % 2 ? a!.url : b!.url)),
    );
    const sends: Array<() => Promise<{ status: number; id: string }>> = [];
    conversations.forEach((conversationId, c) => {
      for (let m = 0; m < 10; m++) {
        for (const target of [a!, b!]) {
          sends.push(async () => {
            const res = await target.api('/v1/messages', {
              method: 'POST',
              json: { conversationId, text: `c${c}-m${m}`, clientMessageId: `c${c}-m${m}`, wait: 0 },
            });
            const body = (await res.json()) as { message: { id: string } };
            return { status: res.status, id: body.message.id };
          });
        }
      }
    });
    // Shuffle so the two copies of a message race each other and conversations interleave.
    sends.sort(() => Math.random() - 0.5);
    const results = await pool(sends, 50);
    expect(results.filter((r) => r.status !== 202)).toEqual([]);
    expect(new Set(results.map((r) => r.id)).size).toBe(1000);

    await expectOnceInOrder(bot.calls, { messages: 1000, conversations: 100 });
    await expectOneReplyEach(a!.url, conversations, 10);
  }, 180_000);

  it('a process killed with SIGKILL mid-message: the other finishes its conversations, one reply per message', async () => {
    const prefix = `t${++prefixN}`;
    const [victim] = await gateways(1, { REDIS_KEY_PREFIX: prefix, LEASE_MS: '1500' });
    bot.calls.length = 0;
    bot.mode = { kind: 'hang' };
    const conversations = await Promise.all(Array.from({ length: 5 }, () => session(victim!.url)));
    const ids: string[] = [];
    for (const conversationId of conversations) {
      for (let m = 0; m < 2; m++) {
        const res = await victim!.api('/v1/messages', {
          method: 'POST',
          json: { conversationId, text: `k${m}`, wait: 0 },
        });
        ids.push(((await res.json()) as { message: { id: string } }).message.id);
      }
    }
    // The victim is holding the first message of every conversation at the bot.
    await eventually(() => bot.calls.length === 5);
    expect(await victim!.kill('SIGKILL')).toBe(null);
    bot.releaseHung();
    bot.mode = { kind: 'echo' };

    const [survivor] = await gateways(1, { REDIS_KEY_PREFIX: prefix, LEASE_MS: '1500' });
    await eventually(() => new Set(bot.calls.map((c) => c.messageId)).size === 10, 30_000, 100);
    await eventually(
      async () => {
        for (const conversationId of conversations) {
          const msgs = await allMessages(survivor!.url, conversationId);
          if (msgs.filter((m) => m.type === 'bot').length !== 2) return false;
        }
        return true;
      },
      20_000,
      200,
    );

    for (const conversationId of conversations) {
      const msgs = await allMessages(survivor!.url, conversationId);
      const users = msgs.filter((m) => m.type === 'user');
      expect(users.map((u) => u.processing?.state)).toEqual(['done', 'done']);
      // The first message of each conversation was redelivered after the crash...
      expect(users[0]!.processing?.attempts).toBeGreaterThanOrEqual(2);
      for (const u of users) {
        // ...and still has exactly one reply, sent once, in order.
        const replies = msgs.filter((m) => m.replyTo === u.id);
        expect(replies.map((r) => r.delivery?.status)).toEqual(['sent']);
      }
      // Messages were queued before any reply, so replies follow in the order of their messages.
      expect(users.map((u) => u.text)).toEqual(['k0', 'k1']);
      expect(msgs.filter((m) => m.type === 'bot').map((m) => m.text)).toEqual(['re: k0', 're: k1']);
    }
    expect(ids).toHaveLength(10);
  }, 90_000);

  it('Redis restarted under load loses no accepted message, and work resumes by itself', async () => {
    const prefix = `t${++prefixN}`;
    const [gw] = await gateways(1, { REDIS_KEY_PREFIX: prefix });
    bot.calls.length = 0;
    bot.mode = { kind: 'echo', delayMs: 2 };
    const conversations = await Promise.all(Array.from({ length: 10 }, () => session(gw!.url)));
    const accepted = new Map<string, string>();
    const refused: number[] = [];
    let stop = false;
    const senders = conversations.map(async (conversationId, c) => {
      for (let m = 0; !stop; m++) {
        const clientMessageId = `r${c}-${m}`;
        try {
          const res = await gw!.api('/v1/messages', {
            method: 'POST',
            json: { conversationId, text: clientMessageId, clientMessageId, wait: 0 },
          });
          if (res.status === 202 || res.status === 200) {
            accepted.set(clientMessageId, ((await res.json()) as { message: { id: string } }).message.id);
          } else {
            refused.push(res.status);
            await res.body?.cancel();
          }
        } catch {
          refused.push(0);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    });
    await eventually(() => accepted.size >= 100);
    await redis.stop(true);
    await eventually(() => refused.length >= 5, 10_000);
    await redis.restart();
    const before = accepted.size;
    await eventually(() => accepted.size >= before + 100, 20_000);
    stop = true;
    await Promise.all(senders);

    // Refusals during the outage were 503s (the client retries), never a 2xx for something not kept.
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((s) => s === 503)).toBe(true);
    const processed = await eventually(
      async () => {
        const answered = new Set<string>();
        for (const conversationId of conversations) {
          for (const m of await allMessages(gw!.url, conversationId))
            if (m.type === 'bot' && m.replyTo) answered.add(m.replyTo);
        }
        return [...accepted.values()].every((id) => answered.has(id)) ? answered : null;
      },
      60_000,
      500,
    );
    expect(processed.size).toBeGreaterThanOrEqual(accepted.size);
  }, 120_000);

  it('answers 503 with Retry-After at the queue limit instead of dropping', async () => {
    const prefix = `t${++prefixN}`;
    const [gw] = await gateways(1, {
      REDIS_KEY_PREFIX: prefix,
      QUEUE_MAX_PENDING: '4',
      QUEUE_PARTITIONS: '1',
    });
    bot.mode = { kind: 'hang' };
    const conversationId = await session(gw!.url);
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 6; i++) {
      const res = await gw!.api('/v1/messages', {
        method: 'POST',
        json: { conversationId, text: `p${i}`, wait: 0 },
      });
      statuses.push(res.status);
      if (res.status === 503) {
        retryAfter = res.headers.get('retry-after');
        expect(((await res.json()) as { code: string }).code).toBe('GW_ERR_QUEUE_FULL');
      } else await res.body?.cancel();
    }
    expect(statuses).toEqual([202, 202, 202, 202, 503, 503]);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    bot.releaseHung();
    bot.mode = { kind: 'echo' };
    // Everything accepted is still answered; nothing refused was stored.
    await eventually(
      async () => (await allMessages(gw!.url, conversationId)).filter((m) => m.type === 'bot').length === 4,
      30_000,
      200,
    );
    const users = (await allMessages(gw!.url, conversationId)).filter((m) => m.type === 'user');
    expect(users.map((u) => u.text)).toEqual(['p0', 'p1', 'p2', 'p3']);
  }, 60_000);

  it('SIGTERM: the process finishes what it holds and exits 0; the rest is taken by another', async () => {
    const prefix = `t${++prefixN}`;
    const [leaving] = await gateways(1, { REDIS_KEY_PREFIX: prefix, SHUTDOWN_TIMEOUT_MS: '10000' });
    bot.calls.length = 0;
    bot.mode = { kind: 'echo', delayMs: 800 };
    const conversationId = await session(leaving!.url);
    for (let i = 0; i < 3; i++) {
      const res = await leaving!.api('/v1/messages', {
        method: 'POST',
        json: { conversationId, text: `s${i}`, wait: 0 },
      });
      expect(res.status).toBe(202);
    }
    await eventually(() => bot.calls.length === 1);
    const exit = leaving!.kill('SIGTERM');
    expect(await exit).toBe(0);
    // The message in flight was finished before exiting; the others stay queued.
    const [next] = await gateways(1, { REDIS_KEY_PREFIX: prefix });
    await eventually(
      async () => (await allMessages(next!.url, conversationId)).filter((m) => m.type === 'bot').length === 3,
      20_000,
      200,
    );
    const msgs = await allMessages(next!.url, conversationId);
    expect(msgs.map((m) => m.text)).toEqual(['s0', 's1', 's2', 're: s0', 're: s1', 're: s2']);
    // s0 was answered by the leaving process, before it exited: its reply was recorded first.
    const s0 = msgs.find((m) => m.text === 's0')!;
    expect(s0.processing?.attempts).toBe(1);
    expect(new Set(bot.calls.map((c) => c.messageId)).size).toBe(bot.calls.length);
  }, 60_000);
});
