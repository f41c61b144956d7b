/**
 * Slack replies and interactivity end to end: quick-reply buttons and their clicks, `429` with
 * `Retry-After`, per-channel pacing, and Slack refusing a message — all through the real WebClient
 * against the recording fake Slack Web API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/index.js';
import type { Bot, BotResponse } from '../../src/pipeline/bot/types.js';
import {
  BOT_USER_ID,
  eventEnvelope,
  FakeSlackApi,
  nextTs,
  SIGNING_SECRET,
  type SlackPost,
  signSlack,
  TEAM_ID,
} from '../fakes/slack-api.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

/** Answers `menu` with buttons, `two` with two replies, anything else with an echo. */
const scriptedBot: Bot = {
  kind: 'demo',
  async reply({ message }): Promise<BotResponse> {
    if (message.text === 'menu') {
      return {
        replies: [
          {
            text: 'Pick one',
            quickReplies: [{ title: 'Approve', payload: 'ticket-42' }, { title: 'Reject' }],
          },
        ],
      };
    }
    if (message.text === 'two') return { replies: [{ text: 'first' }, { text: 'second' }] };
    return { replies: [{ text: `You said: ${message.text}` }] };
  },
};

let slack: FakeSlackApi;
let gw: TestGateway;

beforeAll(async () => {
  slack = await FakeSlackApi.start();
  gw = await startGateway(
    {
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_BOT_TOKEN: 'xoxb-test-0000-token',
      SLACK_API_URL: slack.url,
    },
    { bot: scriptedBot },
  );
});

afterAll(async () => {
  await gw?.stop();
  await slack?.close();
});

function postSigned(
  path: string,
  body: string,
  contentType: string,
  headers = signSlack(body),
): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': contentType, ...headers },
    body,
  });
}

function postEvent(event: Record<string, unknown>): Promise<Response> {
  return postSigned('/webhooks/slack/events', JSON.stringify(eventEnvelope(event)), 'application/json');
}

function dm(channel: string, text: string) {
  const ts = nextTs();
  return { type: 'message', channel, channel_type: 'im', user: 'U0001', text, ts, event_ts: ts };
}

async function conversationsOf(channel: string): Promise<Conversation[]> {
  const res = await gw.api(`/v1/conversations?channel=slack&meta[slackChannel]=${channel}`);
  return ((await res.json()) as { items: Conversation[] }).items;
}

async function messages(conversationId: string): Promise<Message[]> {
  const res = await gw.api(`/v1/conversations/${conversationId}/messages?take=200`);
  return ((await res.json()) as { items: Message[] }).items;
}

const postsTo = (channel: string) => slack.posts.filter((p) => p.channel === channel);

/** The block_actions payload Slack sends when `button` of the posted message `post` is clicked. */
function click(post: SlackPost, button: number, actionTs = nextTs()) {
  const actions = post.blocks?.find((b) => b.type === 'actions') as {
    elements: Array<Record<string, unknown>>;
  };
  const element = actions.elements[button]!;
  return {
    type: 'block_actions',
    user: { id: 'U0001', username: 'jane', team_id: TEAM_ID },
    api_app_id: 'A0001',
    container: { type: 'message', message_ts: post.ts, channel_id: post.channel, is_ephemeral: false },
    trigger_id: '1111.2222.abcd',
    team: { id: TEAM_ID, domain: 'acme' },
    channel: { id: post.channel, name: 'support' },
    message: {
      type: 'message',
      ts: post.ts,
      thread_ts: post.thread_ts,
      text: post.text,
      blocks: post.blocks,
    },
    response_url: 'https://hooks.slack.com/actions/T0001/1234/abcd',
    actions: [{ ...element, block_id: 'quick_replies', action_ts: actionTs }],
  };
}

const form = (payload: unknown) => `payload=${encodeURIComponent(JSON.stringify(payload))}`;

describe('Slack quick replies and button clicks', () => {
  it('sends quick replies as buttons and turns a click into a user message in the same thread, once', async () => {
    const ts = nextTs();
    await postEvent({
      type: 'app_mention',
      channel: 'C3001',
      user: 'U0001',
      text: `<@${BOT_USER_ID}> menu`,
      ts,
      event_ts: ts,
    });
    const menu = await eventually(() => postsTo('C3001')[0]);
    expect(menu).toMatchObject({ text: 'Pick one', thread_ts: ts });
    expect(menu.blocks?.[1]).toMatchObject({
      type: 'actions',
      elements: [
        { type: 'button', text: { text: 'Approve' }, value: 'ticket-42' },
        { type: 'button', text: { text: 'Reject' }, value: 'Reject' },
      ],
    });

    const body = form(click(menu, 0));
    const res = await postSigned('/webhooks/slack/interactions', body, 'application/x-www-form-urlencoded');
    expect(res.status).toBe(200);
    // A second delivery of the same click is acknowledged and changes nothing.
    expect(
      (await postSigned('/webhooks/slack/interactions', body, 'application/x-www-form-urlencoded')).status,
    ).toBe(200);

    await eventually(() => postsTo('C3001').length >= 2);
    expect(postsTo('C3001')[1]).toMatchObject({ text: 'You said: ticket-42', thread_ts: ts });
    const convs = await conversationsOf('C3001');
    expect(convs).toHaveLength(1);
    const users = (await messages(convs[0]!.id)).filter((m) => m.type === 'user');
    expect(users.map((m) => m.text)).toEqual(['menu', 'ticket-42']);
    expect(users[1]?.meta).toMatchObject({ quickReply: { title: 'Approve', payload: 'ticket-42' } });
    await eventually(async () =>
      (await messages(convs[0]!.id)).every((m) => m.type !== 'user' || m.processing?.state === 'done'),
    );
    expect(postsTo('C3001')).toHaveLength(2);
  });

  it('refuses clicks signed over the JSON instead of the form body, unsigned, or without a payload', async () => {
    const payload = click(
      {
        channel: 'C3009',
        text: 'x',
        ts: nextTs(),
        at: 0,
        blocks: [
          {
            type: 'actions',
            elements: [
              { type: 'button', action_id: 'a', value: 'v', text: { type: 'plain_text', text: 'V' } },
            ],
          },
        ],
      },
      0,
    );
    const body = form(payload);
    const overJson = signSlack(JSON.stringify(payload));
    const path = '/webhooks/slack/interactions';
    const type = 'application/x-www-form-urlencoded';
    expect((await postSigned(path, body, type, overJson)).status).toBe(401);
    expect((await postSigned(path, body, type, {} as ReturnType<typeof signSlack>)).status).toBe(401);
    expect((await postSigned(path, 'nothing=here', type)).status).toBe(400);
    expect(await conversationsOf('C3009')).toHaveLength(0);
  });
});

describe('Slack rate limits and pacing', () => {
  it('honours 429 Retry-After for that channel while other channels keep sending', async () => {
    slack.rateLimit('chat.postMessage', 1, 3);
    await postEvent(dm('D3004', 'limited'));
    const limited = await eventually(() => slack.callsOf('chat.postMessage').find((c) => c.status === 429));
    expect(limited.params.channel).toBe('D3004');

    await postEvent(dm('D3005', 'unaffected'));
    const other = await eventually(() => postsTo('D3005')[0]);
    const retried = await eventually(() => postsTo('D3004')[0]);
    expect(retried.text).toBe('You said: limited');
    // Retry-After: 3 was waited for (timer tolerance), and the other channel was not held up by it.
    expect(retried.at - limited.at).toBeGreaterThanOrEqual(2_900);
    expect(other.at - limited.at).toBeLessThan(2_500);
    const [conv] = await conversationsOf('D3004');
    await eventually(async () =>
      (await messages(conv!.id)).find((m) => m.type === 'bot' && m.delivery?.status === 'sent'),
    );
  });

  it('paces one channel at about one message per second without delaying another channel', async () => {
    await Promise.all([postEvent(dm('D3006', 'two')), postEvent(dm('D3007', 'hello'))]);
    await eventually(() => postsTo('D3006').length === 2 && postsTo('D3007').length === 1);
    const [first, second] = postsTo('D3006') as [SlackPost, SlackPost];
    const other = postsTo('D3007')[0]!;
    expect([first.text, second.text]).toEqual(['first', 'second']);
    // The gate spaces the sends' starts by a second; the fake sees arrivals, and a first request that
    // arrives late on a loaded machine shortens the gap it measures. Unpaced, the gap would be ~0 ms.
    expect(second.at - first.at).toBeGreaterThanOrEqual(700);
    expect(Math.abs(other.at - first.at)).toBeLessThan(700);
  });

  it("marks the reply failed with Slack's error string when Slack refuses it", async () => {
    slack.failNext('chat.postMessage', 'not_in_channel');
    await postEvent(dm('D3008', 'doomed'));
    const [conv] = await eventually(() => conversationsOf('D3008'));
    const failed = await eventually(async () =>
      (await messages(conv!.id)).find((m) => m.type === 'bot' && m.delivery?.status === 'failed'),
    );
    expect(failed.delivery?.error).toMatchObject({ code: 'not_in_channel' });
    expect(postsTo('D3008')).toHaveLength(0);
  });
});
