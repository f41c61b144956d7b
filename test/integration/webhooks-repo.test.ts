/**
 * The webhook delivery store contract, run against both implementations (in memory, and Redis on a
 * private redis-server): lanes in order, only the head claimable, leases fenced, retry keeping the
 * head, dead letters indexed and replayable, the log paginated both ways, endpoint deletion.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newId } from '../../src/core/ids.js';
import type { DeliveryData, DeliveryState, EndpointRecord, WebhookRepo } from '../../src/webhooks/repo.js';
import { MemoryWebhookRepo } from '../../src/webhooks/repo-memory.js';
import { RedisWebhookRepo } from '../../src/webhooks/repo-redis.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

function endpoint(): EndpointRecord {
  const at = new Date().toISOString();
  return {
    id: newId('wh'),
    url: 'https://crm.example/hook',
    events: ['message.created'],
    description: null,
    enabled: true,
    disabledReason: null,
    secret: 'whsec_x',
    previousSecret: null,
    previousSecretExpiresAt: null,
    createdAt: at,
    updatedAt: at,
  };
}

const state = (status: DeliveryState['status'] = 'pending', attempts = 0): DeliveryState => ({
  status,
  attempts,
  responseStatus: null,
  latencyMs: null,
  lastError: null,
  nextAttemptAt: null,
  updatedAt: new Date().toISOString(),
  deliveredAt: null,
  deadAt: null,
  replayedBy: null,
});

function delivery(endpointId: string, lane: string, seq: number): DeliveryData {
  return {
    id: newId('dlv'),
    endpointId,
    eventId: newId('evt'),
    eventType: 'message.created',
    conversationId: lane,
    lane,
    seq,
    body: JSON.stringify({ seq }),
    replayOf: null,
    createdAt: new Date().toISOString(),
  };
}

function contract(name: string, make: () => Promise<WebhookRepo>) {
  describe(name, () => {
    let repo: WebhookRepo;
    beforeAll(async () => {
      repo = await make();
    });
    afterAll(async () => {
      await repo.close();
    });

    it('stores, lists and deletes endpoints', async () => {
      const a = endpoint();
      const b = endpoint();
      await repo.putEndpoint(b);
      await repo.putEndpoint(a);
      expect(await repo.getEndpoint(a.id)).toEqual(a);
      const ids = (await repo.listEndpoints()).map((e) => e.id);
      expect(ids.indexOf(a.id)).toBeLessThan(ids.indexOf(b.id));
      await repo.putEndpoint({ ...a, enabled: false });
      expect((await repo.getEndpoint(a.id))?.enabled).toBe(false);
      expect(await repo.deleteEndpoint(a.id)).toBe(true);
      expect(await repo.deleteEndpoint(a.id)).toBe(false);
      expect(await repo.getEndpoint(a.id)).toBeNull();
    });

    it('claims only lane heads, in order, one lease per lane', async () => {
      const e = endpoint();
      const now = Date.now();
      const a1 = delivery(e.id, 'conv_a', 1);
      const a2 = delivery(e.id, 'conv_a', 2);
      const b1 = delivery(e.id, 'conv_b', 1);
      for (const d of [a1, a2, b1]) await repo.enqueue(d, state(), now);
      const first = await repo.claim(e.id, 10, now, now + 60_000);
      expect(first.claims.map((c) => c.delivery.id).sort()).toEqual([a1.id, b1.id].sort());
      // Leased lanes are not claimable again, and the next due time is the lease expiry.
      const again = await repo.claim(e.id, 10, now, now + 60_000);
      expect(again.claims).toEqual([]);
      expect(again.nextDueAt).toBe(now + 60_000);

      const a = first.claims.find((c) => c.lane === 'conv_a')!;
      const done = { ...state('succeeded', 1), deliveredAt: new Date().toISOString() };
      expect(await repo.finish(a, 'done', done, now)).toBe(true);
      // A stale token (the same claim again) is fenced off.
      expect(await repo.finish(a, 'done', done, now)).toBe(false);
      // The next head is due as soon as its predecessor finished.
      const next = await repo.claim(e.id, 10, Date.now(), Date.now() + 60_000);
      expect(next.claims.map((c) => c.delivery.id)).toEqual([a2.id]);
      expect((await repo.getDelivery(e.id, a1.id))?.state.status).toBe('succeeded');
    });

    it('keeps a retrying head at the front until it is due, then dead-letters it', async () => {
      const e = endpoint();
      const now = Date.now();
      const h = delivery(e.id, 'conv_r', 1);
      const t = delivery(e.id, 'conv_r', 2);
      await repo.enqueue(h, state(), now);
      await repo.enqueue(t, state(), now);
      const [claim] = (await repo.claim(e.id, 5, now, now + 60_000)).claims;
      expect(
        await repo.finish(claim!, 'retry', { ...state('retrying', 1), lastError: 'HTTP 500' }, now + 5_000),
      ).toBe(true);
      const early = await repo.claim(e.id, 5, now + 1_000, now + 60_000);
      expect(early.claims).toEqual([]);
      expect(early.nextDueAt).toBe(now + 5_000);
      const later = (await repo.claim(e.id, 5, now + 5_000, now + 60_000)).claims;
      expect(later.map((c) => c.delivery.id)).toEqual([h.id]);
      expect(later[0]!.delivery.state).toMatchObject({
        status: 'retrying',
        attempts: 1,
        lastError: 'HTTP 500',
      });

      const deadAt = Date.now();
      expect(await repo.finish(later[0]!, 'dead', state('dead', 2), deadAt)).toBe(true);
      expect(
        (await repo.claim(e.id, 5, Date.now(), Date.now() + 60_000)).claims.map((c) => c.delivery.id),
      ).toEqual([t.id]);
      const dead = await repo.deadSince(e.id, deadAt - 1_000, 10);
      expect(dead.map((d) => d.id)).toEqual([h.id]);
      expect(await repo.deadSince(e.id, Date.now() + 60_000, 10)).toEqual([]);
      await repo.markReplayed(e.id, h.id, { ...state('dead', 2), replayedBy: 'dlv_x' });
      expect(await repo.deadSince(e.id, 0, 10)).toEqual([]);
      expect((await repo.getDelivery(e.id, h.id))?.state.replayedBy).toBe('dlv_x');
    });

    it('releases a claim untouched', async () => {
      const e = endpoint();
      const now = Date.now();
      const d = delivery(e.id, 'conv_s', 1);
      await repo.enqueue(d, state(), now);
      const [claim] = (await repo.claim(e.id, 1, now, now + 60_000)).claims;
      expect(await repo.finish(claim!, 'release', null, now)).toBe(true);
      const [again] = (await repo.claim(e.id, 1, now, now + 60_000)).claims;
      expect(again?.delivery.id).toBe(d.id);
      expect(again?.delivery.state).toMatchObject({ status: 'pending', attempts: 0 });
    });

    it('pages the delivery log both ways and filters by status', async () => {
      const e = endpoint();
      const now = Date.now();
      const all: DeliveryData[] = [];
      for (let i = 0; i < 7; i++) {
        const d = delivery(e.id, `conv_${i % 2}`, i);
        all.push(d);
        await repo.enqueue(d, state(), now);
      }
      const seen: string[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await repo.listDeliveries(e.id, {
          take: 3,
          order: 'asc',
          ...(cursor ? { cursor } : {}),
        });
        seen.push(...page.items.map((d) => d.id));
        if (page.cursor === null) break;
        cursor = page.cursor;
      }
      expect(seen).toEqual(all.map((d) => d.id));
      const desc = await repo.listDeliveries(e.id, { take: 100, order: 'desc' });
      expect(desc.items.map((d) => d.id)).toEqual(all.map((d) => d.id).reverse());
      expect(desc.cursor).toBeNull();

      const [claim] = (await repo.claim(e.id, 1, now, now + 60_000)).claims;
      await repo.finish(claim!, 'done', state('succeeded', 1), now);
      const succeeded = await repo.listDeliveries(e.id, { take: 10, order: 'asc', status: 'succeeded' });
      expect(succeeded.items.map((d) => d.id)).toEqual([claim!.delivery.id]);
    });

    it('keeps each lane in seq order whatever order its events were queued in', async () => {
      const e = endpoint();
      const now = Date.now();
      const [d1, d2, d3, d4] = [1, 2, 3, 4].map((seq) => delivery(e.id, 'conv_o', seq)) as [
        DeliveryData,
        DeliveryData,
        DeliveryData,
        DeliveryData,
      ];
      for (const d of [d1, d3, d4, d2]) await repo.enqueue(d, state(), now, 5_000);
      const order: string[] = [];
      for (let i = 0; i < 4; i++) {
        const [claim] = (await repo.claim(e.id, 5, Date.now(), Date.now() + 60_000)).claims;
        order.push(claim!.delivery.id);
        await repo.finish(claim!, 'done', state('succeeded', 1), Date.now());
      }
      expect(order).toEqual([d1.id, d2.id, d3.id, d4.id]);
    });

    it('holds back a head that leaves a gap for the reorder window, not one that continues its lane', async () => {
      const e = endpoint();
      const now = Date.now();
      const d1 = delivery(e.id, 'conv_g', 1);
      const d3 = delivery(e.id, 'conv_g', 3);
      await repo.enqueue(d1, state(), now, 60_000);
      const [c1] = (await repo.claim(e.id, 5, now, now + 60_000)).claims;
      expect(c1!.delivery.id).toBe(d1.id);
      await repo.finish(c1!, 'done', state('succeeded', 1), now);
      // seq 2 has not been queued (yet): seq 3 waits for the window, in case 2 is on its way.
      await repo.enqueue(d3, state(), now, 60_000);
      const held = await repo.claim(e.id, 5, Date.now(), Date.now() + 60_000);
      expect(held.claims).toEqual([]);
      expect(held.nextDueAt).toBe(now + 60_000);
      // It comes: it goes first, at once, and 3 follows it at once.
      const d2 = delivery(e.id, 'conv_g', 2);
      await repo.enqueue(d2, state(), Date.now(), 60_000);
      const [c2] = (await repo.claim(e.id, 5, Date.now(), Date.now() + 60_000)).claims;
      expect(c2!.delivery.id).toBe(d2.id);
      await repo.finish(c2!, 'done', state('succeeded', 1), Date.now());
      const [c3] = (await repo.claim(e.id, 5, Date.now(), Date.now() + 60_000)).claims;
      expect(c3!.delivery.id).toBe(d3.id);
      await repo.finish(c3!, 'done', state('succeeded', 1), Date.now());
      // A gap that stays open delays the head by the window only.
      const d9 = delivery(e.id, 'conv_g', 9);
      const queuedAt = Date.now();
      await repo.enqueue(d9, state(), queuedAt, 150);
      expect((await repo.claim(e.id, 5, Date.now(), Date.now() + 60_000)).claims).toEqual([]);
      await new Promise((r) => setTimeout(r, 200));
      const [c9] = (await repo.claim(e.id, 5, Date.now(), Date.now() + 60_000)).claims;
      expect(c9!.delivery.id).toBe(d9.id);
    });

    it('never puts a later-queued event in front of a head that was attempted or is leased', async () => {
      const e = endpoint();
      const now = Date.now();
      const d2 = delivery(e.id, 'conv_p', 2);
      const d3 = delivery(e.id, 'conv_p', 3);
      await repo.enqueue(d2, state(), now);
      const [leased] = (await repo.claim(e.id, 5, now, now + 60_000)).claims;
      // Leased: seq 1 arriving now goes behind it.
      const d1 = delivery(e.id, 'conv_p', 1);
      await repo.enqueue(d1, state(), now);
      await repo.finish(leased!, 'retry', state('retrying', 1), now);
      // Attempted and waiting for its retry: still not overtaken.
      await repo.enqueue(d3, state(), now);
      const order: string[] = [];
      for (let i = 0; i < 3; i++) {
        const [claim] = (await repo.claim(e.id, 5, Date.now(), Date.now() + 60_000)).claims;
        order.push(claim!.delivery.id);
        await repo.finish(claim!, 'done', state('succeeded', 1), Date.now());
      }
      expect(order).toEqual([d2.id, d1.id, d3.id]);
    });

    it('places a change to an earlier message, and a replay, after what was queued before them', async () => {
      const e = endpoint();
      const now = Date.now();
      const c1 = delivery(e.id, 'conv_u', 1);
      const c2 = delivery(e.id, 'conv_u', 2);
      const replay = { ...delivery(e.id, 'conv_u', 1), replayOf: 'dlv_earlier' };
      const updated = { ...delivery(e.id, 'conv_u', 1), eventType: 'message.updated' as const };
      const c3 = delivery(e.id, 'conv_u', 3);
      for (const d of [c1, c2, replay, updated, c3]) await repo.enqueue(d, state(), now);
      const order: string[] = [];
      for (let i = 0; i < 5; i++) {
        const [claim] = (await repo.claim(e.id, 5, Date.now(), Date.now() + 60_000)).claims;
        order.push(claim!.delivery.id);
        await repo.finish(claim!, 'done', state('succeeded', 1), Date.now());
      }
      expect(order).toEqual([c1.id, c2.id, replay.id, updated.id, c3.id]);
    });

    it('replays a finished delivery once, however often asked, and again only when asked to once that replay finished', async () => {
      const e = endpoint();
      const now = Date.now();
      const original = delivery(e.id, 'conv_rp', 1);
      await repo.enqueue(original, state(), now);
      const copy = () => ({ ...delivery(e.id, 'conv_rp', 1), replayOf: original.id });
      // Still pending: not replayable.
      expect(await repo.replay(original.id, copy(), state(), now)).toEqual({ conflict: 'pending' });
      const [claim] = (await repo.claim(e.id, 5, now, now + 60_000)).claims;
      await repo.finish(claim!, 'dead', state('dead', 3), now);

      // Requests racing: one replay queued between them.
      const racing = await Promise.all(
        Array.from({ length: 5 }, () => repo.replay(original.id, copy(), state(), Date.now())),
      );
      const created = racing.filter((r) => r && 'created' in r && r.created);
      expect(created).toHaveLength(1);
      const first = (created[0] as { id: string }).id;
      expect(racing.map((r) => (r as { id: string }).id)).toEqual(Array(5).fill(first));
      expect((await repo.getDelivery(e.id, original.id))?.state.replayedBy).toBe(first);
      expect(await repo.deadSince(e.id, 0, 10)).toEqual([]);
      const log = await repo.listDeliveries(e.id, { take: 10, order: 'asc' });
      expect(log.items.map((d) => d.id)).toEqual([original.id, first]);

      // Asking for it again while it is pending, even explicitly, still queues nothing.
      expect(await repo.replay(original.id, copy(), state(), Date.now(), true)).toEqual({
        id: first,
        created: false,
      });
      // Once the replay has been delivered: a plain request still answers with it; an explicit one
      // queues a new replay.
      const [sent] = (await repo.claim(e.id, 5, Date.now(), Date.now() + 60_000)).claims;
      expect(sent!.delivery.id).toBe(first);
      await repo.finish(sent!, 'done', state('succeeded', 1), Date.now());
      expect(await repo.replay(original.id, copy(), state(), Date.now())).toEqual({
        id: first,
        created: false,
      });
      const again = await repo.replay(original.id, copy(), state(), Date.now(), true);
      expect(again).toMatchObject({ created: true });
      expect((again as { id: string }).id).not.toBe(first);
      expect(await repo.replay('dlv_unknown', copy(), state(), Date.now())).toBeNull();
    });

    it('removes an endpoint with its queue and log', async () => {
      const e = endpoint();
      await repo.putEndpoint(e);
      const d = delivery(e.id, 'conv_z', 1);
      await repo.enqueue(d, state(), Date.now());
      expect(await repo.deleteEndpoint(e.id)).toBe(true);
      expect(await repo.getDelivery(e.id, d.id)).toBeNull();
      expect((await repo.claim(e.id, 10, Date.now(), Date.now() + 1_000)).claims).toEqual([]);
      expect((await repo.listDeliveries(e.id, { take: 10, order: 'asc' })).items).toEqual([]);
    });
  });
}

contract('memory', async () => new MemoryWebhookRepo());

describe.runIf(redisAvailable())('redis', () => {
  let server: RedisServer;
  beforeAll(async () => {
    server = await RedisServer.start();
  });
  afterAll(async () => {
    await server?.dispose();
  });
  contract('redis repo', () => RedisWebhookRepo.connect(server.url, `t${Date.now()}`));
});

describe('memory retention', () => {
  it('expires finished deliveries after their retention, and keeps pending ones', async () => {
    let now = Date.now();
    const repo = new MemoryWebhookRepo({ now: () => now });
    const e = endpoint();
    const done = delivery(e.id, 'conv_t', 1);
    const waiting = delivery(e.id, 'conv_u', 1);
    await repo.enqueue(done, state(), now);
    await repo.enqueue(waiting, state(), now + 3_600_000);
    const [claim] = (await repo.claim(e.id, 1, now, now + 1_000)).claims;
    expect(claim!.delivery.id).toBe(done.id);
    await repo.finish(claim!, 'done', state('succeeded', 1), now);
    now += 6 * 86_400_000;
    expect(await repo.getDelivery(e.id, done.id)).not.toBeNull();
    now += 2 * 86_400_000;
    expect(await repo.getDelivery(e.id, done.id)).toBeNull();
    expect((await repo.listDeliveries(e.id, { take: 10, order: 'asc' })).items.map((d) => d.id)).toEqual([
      waiting.id,
    ]);
  });
});
