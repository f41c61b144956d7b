/**
 * Outbound webhook delivery on a real gateway (embedded backend) to real receivers on loopback that
 * verify every request with the `standardwebhooks` package: every event type from real API flows,
 * dead-lettering and replay, secret rotation, 410 Gone, a hanging receiver beside a healthy one, and
 * redirects not followed. Retry ceilings are compressed to milliseconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../../src/core/events.js';
import type { Message } from '../../src/core/model.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { ChatClient, ORIGIN, WEBCHAT_SECRET } from '../helpers/webchat-client.js';
import { type ReceivedDelivery, WebhookReceiver } from '../helpers/webhook-receiver.js';

type Json = Record<string, unknown>;
interface DeliveryJson {
  id: string;
  eventId: string;
  eventType: string;
  conversationId: string | null;
  status: string;
  attempts: number;
  responseStatus: number | null;
  latencyMs: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  replayOf: string | null;
  replayedBy: string | null;
}

const TIMEOUT_MS = 1_500;
const GRACE_MS = 1_500;

let gw: TestGateway;
const receivers: WebhookReceiver[] = [];

async function receiver(): Promise<WebhookReceiver> {
  const r = await WebhookReceiver.start();
  receivers.push(r);
  return r;
}

async function subscribe(r: WebhookReceiver, events: readonly string[], path = '/hook'): Promise<string> {
  const res = await gw.api('/v1/webhooks', { method: 'POST', json: { url: `${r.url}${path}`, events } });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { id: string; secret: string };
  r.secrets = [body.secret];
  return body.id;
}

async function deliveries(webhookId: string): Promise<DeliveryJson[]> {
  const res = await gw.api(`/v1/webhooks/${webhookId}/deliveries?take=200`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: DeliveryJson[] }).items;
}

/** A conversation without a channel behind it, and a way to add stored messages to it. */
async function conversation(): Promise<string> {
  const res = await gw.api('/v1/conversations', { method: 'POST', json: {} });
  return ((await res.json()) as { id: string }).id;
}
async function note(conversationId: string, text: string): Promise<Message> {
  const res = await gw.api(`/v1/conversations/${conversationId}/messages`, {
    method: 'POST',
    json: { type: 'context', text },
  });
  expect(res.status).toBe(201);
  return (await res.json()) as Message;
}

const of = (list: ReceivedDelivery[], conversationId: string) =>
  list.filter((d) => d.event.conversationId === conversationId);

beforeAll(async () => {
  gw = await startGateway(
    {
      WEBHOOKS_ALLOW_PRIVATE: 'true',
      SESSION_IDLE_S: '1',
      WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
      WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
    },
    {
      webhooks: {
        timeoutMs: TIMEOUT_MS,
        retryCeilingsMs: [20, 40, 60],
        breakerThreshold: 50,
        breakerCooldownMs: 200,
        rotationGraceMs: GRACE_MS,
      },
    },
  );
});

afterAll(async () => {
  await gw.stop();
  await Promise.all(receivers.map((r) => r.close()));
});

describe('events', () => {
  it('delivers every event type from real flows, signed, versioned and in order', async () => {
    const r = await receiver();
    const id = await subscribe(r, EVENT_TYPES);

    const session = (await (await gw.api('/v1/sessions', { method: 'POST', json: {} })).json()) as {
      conversationId: string;
    };
    const conv = session.conversationId;
    const first = (await (
      await gw.api('/v1/messages', { method: 'POST', json: { conversationId: conv, text: 'hello' } })
    ).json()) as { message: Message; replies: Message[] };
    expect(first.replies.map((m) => m.text)).toEqual(['You said: hello']);
    // The API channel has no transport: its replies are delivered by being stored.
    expect(first.replies[0]!.delivery?.status).toBe('sent');
    await gw.api(`/v1/conversations/${conv}/messages/${first.message.id}`, {
      method: 'PATCH',
      json: { meta: { tagged: true } },
    });
    // Handed to an agent and back: the three handoff events.
    await gw.api(`/v1/conversations/${conv}/handoff`, { method: 'POST', json: { reason: 'test' } });
    const assigned = (await (
      await gw.api(`/v1/conversations/${conv}/handoff/assign`, {
        method: 'POST',
        json: { agent: { name: 'Ana' } },
      })
    ).json()) as { handoff: { assignee: string } };
    await gw.api(`/v1/conversations/${conv}/handoff`, { method: 'DELETE' });
    // The agent joined when assigned (participant.added) and leaves now (participant.removed).
    await gw.api(`/v1/conversations/${conv}/participants/${assigned.handoff.assignee}`, { method: 'DELETE' });
    await gw.api(`/v1/conversations/${conv}`, { method: 'PATCH', json: { status: 'closed' } });
    // SESSION_IDLE_S=1: after a second of silence the next message ends the session and starts another.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    await gw.api('/v1/messages', { method: 'POST', json: { conversationId: conv, text: 'again' } });
    await gw.api(`/v1/conversations/${conv}/messages/${first.message.id}`, { method: 'DELETE' });
    await gw.api(`/v1/conversations/${conv}`, { method: 'DELETE' });

    // A channel with a transport reports the hand-over as a delivery status change.
    const visitor = await ChatClient.ready(gw.url);
    const ack = await visitor.say('hi there');
    await visitor.botSays('You said: hi there');
    await visitor.end();
    const chat = await eventually(async () => {
      const found = r.received.find(
        (d) => d.event.type === 'message.delivery' && d.event.conversationId !== conv,
      );
      expect(found).toBeDefined();
      return found!;
    });
    expect(chat.event.data.message).toMatchObject({ replyTo: ack.id });
    expect(['sent', 'delivered']).toContain(chat.event.data.message?.delivery?.status);

    // A customer record's life: two contacts from API conversations, renamed, merged, split, erased.
    const contactOf = async (address: string) => {
      const res = await gw.api('/v1/conversations', {
        method: 'POST',
        json: { participants: [{ role: 'user', address }] },
      });
      const made = (await res.json()) as { participants: Array<{ contactId?: string }> };
      return made.participants[0]!.contactId!;
    };
    const ann = await contactOf('ann@example.com');
    const ann2 = await contactOf('ann.other@example.com');
    expect((await gw.api(`/v1/contacts/${ann}`, { method: 'PATCH', json: { name: 'Ann' } })).status).toBe(
      200,
    );
    expect((await gw.api(`/v1/contacts/${ann}/merge`, { method: 'POST', json: { from: ann2 } })).status).toBe(
      200,
    );
    const merged = (await (await gw.api(`/v1/contacts/${ann}`)).json()) as {
      identities: Array<{ channel: string; address: string }>;
    };
    const moved = merged.identities.find((i) => i.address === 'ann.other@example.com')!;
    const unmerged = await gw.api(`/v1/contacts/${ann}/unmerge`, {
      method: 'POST',
      json: { channel: moved.channel, address: moved.address },
    });
    expect(unmerged.status).toBeLessThan(300);
    expect((await gw.api(`/v1/contacts/${ann}`, { method: 'DELETE' })).status).toBe(200);
    await r.waitFor((list) => list.some((d) => d.event.type === 'contact.deleted'));

    await r.waitFor((list) => list.some((d) => d.event.type === 'conversation.deleted'));
    const got = of(r.received, conv);
    // Everything about a conversation, except contact events (about a person, not one conversation).
    expect(new Set(got.map((d) => d.event.type))).toEqual(
      new Set(EVENT_TYPES.filter((t) => t !== 'message.delivery' && !t.startsWith('contact.'))),
    );
    expect(r.unverified).toEqual([]);
    for (const d of got) {
      expect(d.verifiedWith).toEqual([0]);
      expect(d.webhookId).toBe(d.event.id);
      // One prefix: `evt_<ulid>`, never a prefixed id prefixed again.
      expect(d.webhookId).toMatch(/^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
      expect(d.event.data.message?.id ?? 'msg_00000000000000000000000000').toMatch(
        /^msg_[0-9A-HJKMNP-TV-Z]{26}$/,
      );
      expect(d.event).toMatchObject({ version: 1, conversationId: conv });
      expect(typeof d.event.seq).toBe('number');
      expect(Math.abs(d.timestamp * 1000 - d.at)).toBeLessThan(5_000);
    }
    const created = got.filter((d) => d.event.type === 'message.created').map((d) => d.event.data.message!);
    expect(created.map((m) => [m.direction, m.text])).toEqual([
      ['inbound', 'hello'],
      ['outbound', 'You said: hello'],
      ['internal', 'Ana joined'],
      ['internal', 'Ana left'],
      ['inbound', 'again'],
      ['outbound', 'You said: again'],
    ]);
    expect(got.find((d) => d.event.type === 'message.updated')?.event.data).toMatchObject({
      message: { id: first.message.id, meta: { tagged: true } },
      changes: ['meta'],
    });
    const ended = got.find((d) => d.event.type === 'session.ended')!;
    const started = got.filter((d) => d.event.type === 'session.started');
    expect(started).toHaveLength(2);
    expect(ended.event.data.sessionId).toBe(started[0]!.event.data.sessionId);
    expect(started[1]!.event.data.sessionId).not.toBe(ended.event.data.sessionId);
    // Exactly once each, in the order the gateway recorded them.
    const log = (await deliveries(id)).filter((d) => d.conversationId === conv);
    expect(got.map((d) => d.event.id)).toEqual(log.map((d) => d.eventId));
    expect(log.every((d) => d.status === 'succeeded' && d.attempts === 1 && d.responseStatus === 204)).toBe(
      true,
    );
    expect(got.map((d) => d.event.type).slice(-1)).toEqual(['conversation.deleted']);
    expect(new Set(r.received.map((d) => d.event.type))).toEqual(new Set(EVENT_TYPES));
    for (const d of r.received) expect(d.verifiedWith).toEqual([0]);
  });
});

describe('failures', () => {
  it('dead-letters after the last retry, keeping the order, and replays what died since a time', async () => {
    const r = await receiver();
    r.mode = { kind: 'status', status: 500 };
    const id = await subscribe(r, ['message.created']);
    const since = new Date().toISOString();
    const conv = await conversation();
    const m1 = await note(conv, 'one');
    const m2 = await note(conv, 'two');

    const dead = await eventually(async () => {
      const list = (await deliveries(id)).filter((d) => d.conversationId === conv);
      return list.length === 2 && list.every((d) => d.status === 'dead') && list;
    });
    expect(dead.map((d) => [d.attempts, d.responseStatus, d.lastError])).toEqual([
      [4, 500, 'HTTP 500'],
      [4, 500, 'HTTP 500'],
    ]);
    // Four attempts of the first event (same webhook-id), and only then the second.
    const attempts = of(r.received, conv).map((d) => d.event.data.message!.id);
    expect(attempts).toEqual([m1.id, m1.id, m1.id, m1.id, m2.id, m2.id, m2.id, m2.id]);
    expect(
      new Set(
        of(r.received, conv)
          .slice(0, 4)
          .map((d) => d.webhookId),
      ).size,
    ).toBe(1);
    expect(r.unverified).toEqual([]);

    r.mode = { kind: 'ok' };
    const replay = await gw.api(`/v1/webhooks/${id}/replay?since=${encodeURIComponent(since)}`, {
      method: 'POST',
    });
    expect(replay.status).toBe(202);
    const replayed = (await replay.json()) as { replayed: number; items: DeliveryJson[] };
    expect(replayed.replayed).toBe(2);
    expect(replayed.items.map((d) => d.replayOf)).toEqual(dead.map((d) => d.id));
    const accepted = await eventually(() => {
      const ok = of(r.accepted, conv);
      return ok.length === 2 && ok;
    });
    expect(accepted.map((d) => d.webhookId)).toEqual(dead.map((d) => d.eventId));
    expect(accepted.map((d) => d.event.data.message!.text)).toEqual(['one', 'two']);

    const after = await deliveries(id);
    expect(after.find((d) => d.id === dead[0]!.id)?.replayedBy).toBe(replayed.items[0]!.id);
    await eventually(async () => (await deliveries(id)).filter((d) => d.status === 'succeeded').length === 2);
    // Nothing left in the dead-letter store: a second replay sends nothing twice.
    const again = await gw.api(`/v1/webhooks/${id}/replay?since=${encodeURIComponent(since)}`, {
      method: 'POST',
    });
    expect(((await again.json()) as { replayed: number }).replayed).toBe(0);

    // One delivery can be replayed on its own, with its webhook-id.
    const one = await gw.api(`/v1/webhooks/${id}/deliveries/${replayed.items[1]!.id}/replay`, {
      method: 'POST',
    });
    expect(one.status).toBe(202);
    await eventually(() => of(r.accepted, conv).length === 3);
    expect(of(r.accepted, conv)[2]!.webhookId).toBe(dead[1]!.eventId);
    await gw.api(`/v1/webhooks/${id}`, { method: 'DELETE' });
  });

  it('replays one delivery once however often asked, and again only when asked to explicitly', async () => {
    const r = await receiver();
    r.mode = { kind: 'status', status: 500 };
    const id = await subscribe(r, ['message.created']);
    const conv = await conversation();
    await note(conv, 'once');
    const [dead] = await eventually(async () => {
      const list = await deliveries(id);
      return list.length === 1 && list[0]!.status === 'dead' && list;
    });
    r.mode = { kind: 'ok' };
    const replay = async (query = '') => {
      const res = await gw.api(`/v1/webhooks/${id}/deliveries/${dead!.id}/replay${query}`, {
        method: 'POST',
      });
      expect(res.status).toBe(202);
      return (await res.json()) as DeliveryJson;
    };
    // Two requests racing, then a third after them: one replay between them.
    const racing = await Promise.all([replay(), replay()]);
    const third = await replay();
    expect(racing[0]!.id).toBe(racing[1]!.id);
    expect(third.id).toBe(racing[0]!.id);
    expect(third.replayOf).toBe(dead!.id);
    const sentOnce = () => of(r.accepted, conv).filter((d) => d.webhookId === dead!.eventId);
    await eventually(() => sentOnce().length === 1);
    await eventually(
      async () => (await deliveries(id)).find((d) => d.id === third.id)?.status === 'succeeded',
    );
    // Once delivered, a plain request still answers with that replay and sends nothing.
    expect((await replay()).id).toBe(third.id);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(sentOnce()).toHaveLength(1);
    expect(await deliveries(id)).toHaveLength(2);

    // Asked explicitly, it is sent again (and that request, repeated, once more only).
    const again = await Promise.all([replay('?again=true'), replay('?again=true')]);
    expect(again[0]!.id).toBe(again[1]!.id);
    expect(again[0]!.id).not.toBe(third.id);
    await eventually(() => sentOnce().length === 2);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(sentOnce()).toHaveLength(2);
    expect(await deliveries(id)).toHaveLength(3);
    const bad = await gw.api(`/v1/webhooks/${id}/deliveries/${dead!.id}/replay?again=yes`, {
      method: 'POST',
    });
    expect(bad.status).toBe(400);
    await gw.api(`/v1/webhooks/${id}`, { method: 'DELETE' });
  });

  it('disables the endpoint on 410 Gone, queues nothing more, and resumes once re-enabled', async () => {
    const r = await receiver();
    r.mode = { kind: 'status', status: 410 };
    const id = await subscribe(r, ['message.created']);
    const conv = await conversation();
    await note(conv, 'first');
    const endpoint = await eventually(async () => {
      const e = (await (await gw.api(`/v1/webhooks/${id}`)).json()) as Json;
      return e.enabled === false && e;
    });
    expect(endpoint.disabledReason).toBe('gone');
    const [gone] = await deliveries(id);
    expect(gone).toMatchObject({ status: 'dead', attempts: 1, responseStatus: 410 });
    expect(of(r.received, conv)).toHaveLength(1);

    // Events while disabled are not queued for it (the listener runs before the API answers).
    await note(conv, 'while disabled');
    expect(await deliveries(id)).toHaveLength(1);

    r.mode = { kind: 'ok' };
    const enabled = (await (
      await gw.api(`/v1/webhooks/${id}`, { method: 'PATCH', json: { enabled: true } })
    ).json()) as Json;
    expect(enabled).toMatchObject({ enabled: true, disabledReason: null });
    await gw.api(`/v1/webhooks/${id}/deliveries/${gone!.id}/replay`, { method: 'POST' });
    await note(conv, 'after');
    await eventually(() => of(r.accepted, conv).length === 2);
    expect(of(r.accepted, conv).map((d) => d.event.data.message!.text)).toEqual(['first', 'after']);
    await gw.api(`/v1/webhooks/${id}`, { method: 'DELETE' });
  });

  it('does not let a hanging receiver delay another endpoint', async () => {
    const slow = await receiver();
    slow.mode = { kind: 'hang' };
    const fast = await receiver();
    const slowId = await subscribe(slow, ['message.created']);
    const fastId = await subscribe(fast, ['message.created']);
    const convs = [await conversation(), await conversation()];
    for (const conv of convs) for (const text of ['a', 'b', 'c']) await note(conv, text);

    await fast.waitFor((list) => convs.every((c) => of(list, c).length === 3));
    const hungSince = Math.min(...slow.received.map((d) => d.at));
    // All six reached the healthy endpoint while the slow one still held its first requests.
    expect(Math.max(...convs.flatMap((c) => of(fast.received, c).map((d) => d.at)))).toBeLessThan(
      hungSince + TIMEOUT_MS,
    );
    // The slow endpoint got only the head of each conversation: later events wait behind it.
    expect(convs.map((c) => of(slow.received, c).length)).toEqual([1, 1]);
    const timedOut = await eventually(async () =>
      (await deliveries(slowId)).find((d) => d.lastError === `timed out after ${TIMEOUT_MS} ms`),
    );
    expect(timedOut).toMatchObject({ status: 'retrying', responseStatus: null });
    await gw.api(`/v1/webhooks/${slowId}`, { method: 'DELETE' });
    await gw.api(`/v1/webhooks/${fastId}`, { method: 'DELETE' });
  });

  it('does not follow redirects: a 3xx is a failed attempt', async () => {
    const target = await receiver();
    const r = await receiver();
    r.mode = { kind: 'redirect', location: `${target.url}/elsewhere`, status: 307 };
    const id = await subscribe(r, ['message.created']);
    const conv = await conversation();
    await note(conv, 'moved?');
    const failed = await eventually(async () => (await deliveries(id)).find((d) => d.attempts >= 2));
    expect(failed.responseStatus).toBe(307);
    expect(failed.lastError).toBe('HTTP 307: redirects are not followed');
    expect(target.received).toHaveLength(0);
    await gw.api(`/v1/webhooks/${id}`, { method: 'DELETE' });
  });
});

describe('secret rotation', () => {
  it('signs with both secrets during the grace period, then with the new one only', async () => {
    const r = await receiver();
    const id = await subscribe(r, ['message.created']);
    const [oldSecret] = r.secrets;
    const rotated = (await (
      await gw.api(`/v1/webhooks/${id}`, { method: 'PATCH', json: { rotateSecret: true } })
    ).json()) as { secret: string; previousSecretExpiresAt: string };
    expect(rotated.secret).not.toBe(oldSecret);
    r.secrets = [oldSecret!, rotated.secret];

    const conv = await conversation();
    await note(conv, 'during grace');
    const [during] = await r.waitFor((list) => of(list, conv).length === 1).then((l) => of(l, conv));
    expect(during!.signature.split(' ')).toHaveLength(2);
    expect(during!.verifiedWith).toEqual([0, 1]);

    await eventually(async () => {
      const e = (await (await gw.api(`/v1/webhooks/${id}`)).json()) as Json;
      return e.previousSecretExpiresAt === null;
    }, GRACE_MS + 5_000);
    await note(conv, 'after grace');
    await r.waitFor((list) => of(list, conv).length === 2);
    const after = of(r.received, conv)[1]!;
    expect(after.signature.split(' ')).toHaveLength(1);
    expect(after.verifiedWith).toEqual([1]);
    await gw.api(`/v1/webhooks/${id}`, { method: 'DELETE' });
  });
});
