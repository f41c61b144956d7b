/**
 * A receiver that is down for a while (connection refused, then resets, then 503) and comes back:
 * every event arrives, each accepted exactly once, in order per conversation, with retries keeping
 * their `webhook-id` — on the embedded backend and on Redis (a private redis-server).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/model.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const CONVERSATIONS = 3;
const MESSAGES = 4;

function recoveryScenario(kind: 'embedded' | 'redis', env: () => Record<string, string>) {
  let gw: TestGateway;
  let r: WebhookReceiver;

  beforeAll(async () => {
    r = await WebhookReceiver.start();
    gw = await startGateway(
      { WEBHOOKS_ALLOW_PRIVATE: 'true', ...env() },
      {
        webhooks: {
          timeoutMs: 1_000,
          retryCeilingsMs: Array(10).fill(100),
          breakerThreshold: 3,
          breakerCooldownMs: 150,
        },
      },
    );
  });
  afterAll(async () => {
    await gw?.stop();
    await r?.close();
  });

  it('delivers everything in order per conversation once the receiver is back', async () => {
    expect(gw.gateway.deps.webhooks.repo.kind).toBe(kind);
    const created = (await (
      await gw.api('/v1/webhooks', {
        method: 'POST',
        json: { url: `${r.url}/crm`, events: ['message.created'] },
      })
    ).json()) as { id: string; secret: string };
    r.secrets = [created.secret];
    await r.close();

    const convs: string[] = [];
    for (let i = 0; i < CONVERSATIONS; i++) {
      const res = await gw.api('/v1/conversations', { method: 'POST', json: {} });
      convs.push(((await res.json()) as { id: string }).id);
    }
    // Conversations write concurrently; each one's messages go in order.
    const sent = await Promise.all(
      convs.map(async (conv) => {
        const ids: string[] = [];
        for (let i = 0; i < MESSAGES; i++) {
          const res = await gw.api(`/v1/conversations/${conv}/messages`, {
            method: 'POST',
            json: { type: 'context', text: `${conv} #${i}` },
          });
          ids.push(((await res.json()) as Message).id);
        }
        return ids;
      }),
    );

    // Down: refused connections until some attempts have failed, as the delivery log shows.
    const log = async () =>
      (
        (await (await gw.api(`/v1/webhooks/${created.id}/deliveries?take=200`)).json()) as {
          items: Array<{
            eventId: string;
            conversationId: string;
            status: string;
            attempts: number;
            lastError: string;
          }>;
        }
      ).items;
    await eventually(
      async () => (await log()).filter((d) => d.lastError?.startsWith('connection failed')).length >= 3,
    );
    // Back, but flaky for a few requests: resets and 503s, then healthy.
    r.plan.push(
      { kind: 'reset' },
      { kind: 'status', status: 503 },
      { kind: 'reset' },
      { kind: 'status', status: 503 },
    );
    await r.reopen();

    const total = CONVERSATIONS * MESSAGES;
    await r.waitFor(() => r.accepted.length >= total, 20_000);
    const final = await log();
    expect(final).toHaveLength(total);
    expect(final.every((d) => d.status === 'succeeded')).toBe(true);
    expect(final.some((d) => d.attempts > 1)).toBe(true);
    expect(r.unverified).toEqual([]);

    // Each event accepted exactly once.
    const acceptedIds = r.accepted.map((d) => d.webhookId);
    expect(new Set(acceptedIds).size).toBe(total);
    const expectedIds = new Set(final.map((d) => d.eventId));
    for (const d of r.received) expect(expectedIds.has(d.webhookId)).toBe(true);

    for (const [i, conv] of convs.entries()) {
      const accepted = r.accepted.filter((d) => d.event.conversationId === conv);
      expect(accepted.map((d) => d.event.data.message!.id)).toEqual(sent[i]);
      const seqs = accepted.map((d) => d.event.seq);
      expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
      // Every request, failed ones included: repeats only of the same webhook-id, back to back, and
      // never a later event before an earlier one was accepted.
      const all = r.received.filter((d) => d.event.conversationId === conv).map((d) => d.webhookId);
      const collapsed = all.filter((id, j) => id !== all[j - 1]);
      expect(collapsed).toEqual(accepted.map((d) => d.webhookId));
    }
  });
}

describe('embedded backend', () => {
  recoveryScenario('embedded', () => ({}));
});

describe.runIf(redisAvailable())('Redis backend', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(async () => {
    await redis?.dispose();
  });
  recoveryScenario('redis', () => ({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'whrec' }));
});
