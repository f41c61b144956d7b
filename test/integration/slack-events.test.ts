/**
 * The Slack Events API end to end: signed requests over real HTTP into a real gateway (embedded
 * backend, demo bot), replies recorded by a fake Slack Web API reached by the real WebClient.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, DomainEvent, Message } from '../../src/core/index.js';
import {
  BOT_ID,
  BOT_TOKEN,
  BOT_USER_ID,
  eventEnvelope,
  FakeSlackApi,
  nextTs,
  SIGNING_SECRET,
  signSlack,
  TEAM_ID,
} from '../fakes/slack-api.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

let slack: FakeSlackApi;
let gw: TestGateway;
let events: DomainEvent[] = [];

/** The adapter keeps indexes and caches in the store's kv: run everything on both backends. */
const BACKENDS: Array<'embedded' | 'redis'> = redisAvailable() ? ['embedded', 'redis'] : ['embedded'];

async function post(
  body: string,
  headers: Record<string, string> = signSlack(body),
  path = '/webhooks/slack/events',
): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
}

/** Posts an event envelope signed now; resolves with the response. */
function postEvent(
  event: Record<string, unknown>,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  const body = JSON.stringify(eventEnvelope(event, extra));
  return post(body, { ...signSlack(body), ...headers });
}

async function conversationsOf(channel: string): Promise<Conversation[]> {
  const res = await gw.api(`/v1/conversations?channel=slack&meta[slackChannel]=${channel}&take=200`);
  return ((await res.json()) as { items: Conversation[] }).items;
}

async function messages(conversationId: string): Promise<Message[]> {
  const res = await gw.api(`/v1/conversations/${conversationId}/messages?take=200`);
  return ((await res.json()) as { items: Message[] }).items;
}

const postsTo = (channel: string) => slack.posts.filter((p) => p.channel === channel);

function dm(channel: string, text: string, ts = nextTs(), user = 'U0001') {
  return {
    type: 'message',
    channel,
    channel_type: 'im',
    user,
    text,
    ts,
    event_ts: ts,
    client_msg_id: `c-${ts}`,
  };
}

function warned(reason: string): boolean {
  return gw.logs.lines.some((l) => l.level === 40 && l.reason === reason);
}

describe.each(BACKENDS)('Slack Events API (%s backend)', (backend) => {
  let redis: RedisServer | undefined;

  beforeAll(async () => {
    events = [];
    redis = backend === 'redis' ? await RedisServer.start() : undefined;
    slack = await FakeSlackApi.start();
    gw = await startGateway({
      ...(redis ? { REDIS_URL: redis.url } : {}),
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_API_URL: slack.url,
      SLACK_TEAM_ID: TEAM_ID,
    });
    gw.gateway.deps.events.on((e) => {
      events.push(e);
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await slack?.close();
    await redis?.dispose();
  });

  describe('events', () => {
    it('answers a signed url_verification with the challenge, and refuses an unsigned one', async () => {
      const body = JSON.stringify({ token: 'Jhj5', challenge: 'challenge-xyz', type: 'url_verification' });
      const res = await post(body);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ challenge: 'challenge-xyz' });
      expect((await post(body, {})).status).toBe(401);
    });

    it('verifies the token at start with auth.test against SLACK_API_URL', async () => {
      await eventually(() => slack.callsOf('auth.test').length > 0);
      expect(slack.callsOf('auth.test')[0]?.authorization).toBe('Bearer xoxb-test-0000-token');
    });

    it('runs a DM round trip: one conversation per DM channel, the name from users.info, the reply in the DM', async () => {
      const ts = nextTs();
      const res = await postEvent(dm('D1001', 'hello there', ts));
      expect(res.status).toBe(200);
      // Accepted means kept: stored before the 200.
      const [conv] = await conversationsOf('D1001');
      expect(conv?.channelRef).toBe(`${TEAM_ID}:D1001`);
      expect(conv?.participants).toContainEqual(
        expect.objectContaining({ id: 'U0001', name: 'Jane D', role: 'user' }),
      );
      const reply = await eventually(() => postsTo('D1001')[0]);
      expect(reply.text).toBe('You said: hello there');
      expect(reply.thread_ts).toBeUndefined();
      const stored = await eventually(async () => {
        const ms = await messages(conv!.id);
        return ms.find((m) => m.type === 'bot' && m.delivery?.status === 'sent') && ms;
      });
      expect(stored.find((m) => m.type === 'user')).toMatchObject({
        text: 'hello there',
        externalId: ts,
        name: 'Jane D',
      });
      expect(stored.find((m) => m.type === 'bot')?.externalId).toBe(reply.ts);

      // A second message joins the same conversation; the name is not looked up again (cached).
      const lookups = slack.callsOf('users.info').length;
      await postEvent(dm('D1001', 'again'));
      await eventually(() => postsTo('D1001').length === 2);
      expect(await conversationsOf('D1001')).toHaveLength(1);
      expect(slack.callsOf('users.info').length).toBe(lookups);
    });

    it("ignores the bot's own reply echoed back as an event: nothing stored, no second reply (no loop)", async () => {
      await postEvent(dm('D1002', 'ping'));
      const reply = await eventually(() => postsTo('D1002')[0]);
      const [conv] = await conversationsOf('D1002');
      const before = await messages(conv!.id);
      const echo = { ...dm('D1002', reply.text, reply.ts, BOT_USER_ID), bot_id: BOT_ID, app_id: 'A0001' };
      const { client_msg_id: _c, ...echoNoClientId } = echo;
      expect((await postEvent(echoNoClientId)).status).toBe(200);
      expect((await postEvent({ ...echoNoClientId, subtype: 'bot_message', user: undefined })).status).toBe(
        200,
      );
      expect(await messages(conv!.id)).toHaveLength(before.length);
      // The next real message is answered once, proving the queue held nothing from the echo.
      await postEvent(dm('D1002', 'after echo'));
      await eventually(() => postsTo('D1002').length === 2);
      expect(postsTo('D1002').map((p) => p.text)).toEqual(['You said: ping', 'You said: after echo']);
    });

    it('starts a thread on a top-level mention and answers the follow-up in that thread', async () => {
      const ts = nextTs();
      const mention = {
        type: 'app_mention',
        channel: 'C2001',
        user: 'U0002',
        text: `<@${BOT_USER_ID}> help me`,
        ts,
        event_ts: ts,
      };
      expect((await postEvent(mention)).status).toBe(200);
      const first = await eventually(() => postsTo('C2001')[0]);
      expect(first).toMatchObject({ text: 'You said: help me', thread_ts: ts });

      const follow = {
        type: 'message',
        channel: 'C2001',
        channel_type: 'channel',
        user: 'U0002',
        text: 'more details',
        ts: nextTs(),
        thread_ts: ts,
      };
      expect((await postEvent(follow)).status).toBe(200);
      await eventually(() => postsTo('C2001').length === 2);
      expect(postsTo('C2001')[1]).toMatchObject({ text: 'You said: more details', thread_ts: ts });
      const convs = await conversationsOf('C2001');
      expect(convs).toHaveLength(1);
      expect(convs[0]?.channelRef).toBe(`${TEAM_ID}:C2001:${ts}`);
      expect(convs[0]?.participants).toContainEqual(
        expect.objectContaining({ id: 'U0002', name: 'Bob Roe' }),
      );

      // Chatter in another thread the bot was never mentioned in is not the bot's business.
      const other = { ...follow, ts: nextTs(), thread_ts: nextTs(), text: 'between humans' };
      expect((await postEvent(other)).status).toBe(200);
      expect(await conversationsOf('C2001')).toHaveLength(1);
    });

    it('answers once for the message + app_mention pair and for retries of both', async () => {
      const ts = nextTs();
      const text = `<@${BOT_USER_ID}> once please`;
      const asMessage = {
        type: 'message',
        channel: 'C2002',
        channel_type: 'channel',
        user: 'U0001',
        text,
        ts,
        client_msg_id: `c-${ts}`,
      };
      const asMention = { type: 'app_mention', channel: 'C2002', user: 'U0001', text, ts, event_ts: ts };
      const messageEnvelope = JSON.stringify(eventEnvelope(asMessage));
      const mentionEnvelope = JSON.stringify(eventEnvelope(asMention));
      const retry = { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' };
      // Concurrent, as Slack sends them; each retry has a fresh timestamp and signature.
      const statuses = await Promise.all([
        post(messageEnvelope),
        post(mentionEnvelope),
        post(messageEnvelope, { ...signSlack(messageEnvelope), ...retry }),
        post(mentionEnvelope, { ...signSlack(mentionEnvelope), ...retry }),
      ]).then((rs) => rs.map((r) => r.status));
      expect(statuses).toEqual([200, 200, 200, 200]);
      const [conv] = await conversationsOf('C2002');
      await eventually(async () => (await messages(conv!.id)).find((m) => m.processing?.state === 'done'));
      const all = await messages(conv!.id);
      expect(all.filter((m) => m.type === 'user')).toHaveLength(1);
      expect(all.filter((m) => m.type === 'bot')).toHaveLength(1);
      expect(postsTo('C2002')).toHaveLength(1);
      expect(postsTo('C2002')[0]).toMatchObject({ text: 'You said: once please', thread_ts: ts });
    });

    it('applies edits and deletes to the stored message and emits message.updated / message.deleted', async () => {
      const ts = nextTs();
      await postEvent(dm('D1003', 'my card is 4111', ts));
      const [conv] = await conversationsOf('D1003');
      const original = (await messages(conv!.id)).find((m) => m.externalId === ts)!;

      const changed = {
        type: 'message',
        subtype: 'message_changed',
        hidden: true,
        channel: 'D1003',
        channel_type: 'im',
        ts: nextTs(),
        message: {
          type: 'message',
          user: 'U0001',
          text: 'mail me at jane@example.com',
          ts,
          edited: { user: 'U0001', ts: nextTs() },
        },
        previous_message: { type: 'message', user: 'U0001', text: 'my card is 4111', ts },
      };
      expect((await postEvent(changed)).status).toBe(200);
      const edited = (await (
        await gw.api(`/v1/conversations/${conv!.id}/messages/${original.id}`)
      ).json()) as Message;
      expect(edited).toMatchObject({ text: 'mail me at jane@example.com', seq: original.seq });
      expect(edited.entities).toEqual([{ type: 'email', start: 11, end: 27 }]);
      expect(events).toContainEqual(
        expect.objectContaining({
          type: 'message.updated',
          conversationId: conv!.id,
          changes: ['text', 'entities'],
        }),
      );
      // The same edit delivered again changes nothing and emits nothing.
      const updates = events.filter(
        (e) => e.type === 'message.updated' && e.message?.id === original.id,
      ).length;
      await postEvent(changed);
      expect(
        events.filter((e) => e.type === 'message.updated' && e.message?.id === original.id),
      ).toHaveLength(updates);

      const deleted = {
        type: 'message',
        subtype: 'message_deleted',
        hidden: true,
        channel: 'D1003',
        channel_type: 'im',
        ts: nextTs(),
        deleted_ts: ts,
      };
      expect((await postEvent(deleted)).status).toBe(200);
      expect((await gw.api(`/v1/conversations/${conv!.id}/messages/${original.id}`)).status).toBe(404);
      expect(events).toContainEqual(
        expect.objectContaining({
          type: 'message.deleted',
          conversationId: conv!.id,
          message: expect.objectContaining({ id: original.id }),
        }),
      );
      expect((await postEvent(deleted)).status).toBe(200);
    });
  });

  describe('bad input', () => {
    const rejectedCount = async (reason: string): Promise<number> => {
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      const line = text
        .split('\n')
        .find((l) => l.includes('switchboard_requests_rejected_total') && l.includes(`reason="${reason}"`));
      return line ? Number(line.split(' ').pop()) : 0;
    };

    it.each([
      ['bad_signature', (b: string) => signSlack(b, { secret: 'not_the_signing_secret_000000000' })],
      [
        'missing_signature',
        (b: string) => ({ 'x-slack-request-timestamp': signSlack(b)['x-slack-request-timestamp'] }),
      ],
      ['missing_timestamp', (b: string) => ({ 'x-slack-signature': signSlack(b)['x-slack-signature'] })],
      ['stale_timestamp', (b: string) => signSlack(b, { timestampS: Math.floor(Date.now() / 1000) - 301 })],
      ['future_timestamp', (b: string) => signSlack(b, { timestampS: Math.floor(Date.now() / 1000) + 301 })],
    ])('refuses %s with 401, stores nothing, logs and counts the reason', async (reason, headersFor) => {
      const channel = `D9${reason.length}${Date.now() % 1000}`;
      const body = JSON.stringify(eventEnvelope(dm(channel, 'should not be stored')));
      const before = await rejectedCount(reason);
      const res = await post(body, headersFor(body));
      expect(res.status).toBe(401);
      expect(await conversationsOf(channel)).toHaveLength(0);
      expect(warned(reason)).toBe(true);
      expect(await rejectedCount(reason)).toBe(before + 1);
      expect(gw.logs.text()).not.toContain(SIGNING_SECRET);
    });

    it('refuses a signed request whose body is not JSON with 400 and no retry', async () => {
      const body = '{"type":"event_callback",';
      const res = await post(body);
      expect(res.status).toBe(400);
      expect(res.headers.get('x-slack-no-retry')).toBe('1');
      expect(warned('malformed_json')).toBe(true);
    });

    it('answers unknown event types 200 (so Slack stops retrying), stores nothing, logs the reason', async () => {
      const res = await postEvent({
        type: 'reaction_added',
        user: 'U0001',
        reaction: 'thumbsup',
        item: { channel: 'D9100' },
      });
      expect(res.status).toBe(200);
      expect(warned('unknown_event')).toBe(true);
      expect(await conversationsOf('D9100')).toHaveLength(0);
    });

    it('answers events from another workspace 200, stores nothing, logs the reason', async () => {
      const res = await postEvent(dm('D9101', 'from elsewhere'), { team_id: 'T0OTHER' });
      expect(res.status).toBe(200);
      expect(warned('other_workspace')).toBe(true);
      expect(await conversationsOf('D9101')).toHaveLength(0);
    });

    it('answers 503 with Retry-After when the message cannot be accepted, so Slack retries', async () => {
      const { lifecycle } = gw.gateway.deps;
      const event = dm('D9102', 'while draining');
      lifecycle.draining = true;
      try {
        const res = await postEvent(event);
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('1');
      } finally {
        lifecycle.draining = false;
      }
      expect(await conversationsOf('D9102')).toHaveLength(0);
      // Slack's retry of the same message is then accepted.
      expect(
        (await postEvent(event, {}, { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_error' }))
          .status,
      ).toBe(200);
      expect(await conversationsOf('D9102')).toHaveLength(1);
    });

    it('refuses a body over the size limit', async () => {
      const body = JSON.stringify({ pad: 'x'.repeat(1_100_000) });
      const res = await post(body);
      expect(res.status).toBe(413);
      expect(warned('body_too_large')).toBe(true);
    });
  });
});
