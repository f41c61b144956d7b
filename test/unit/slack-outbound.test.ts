/** Slack outbound without the network: rendering, per-channel pacing, retry decisions, settings. */
import { describe, expect, it } from 'vitest';
import { configure } from '../../adapters/slack/config.js';
import {
  ChannelGate,
  type PostMessageArgs,
  renderMessage,
  type SlackApi,
  SlackCallError,
  SlackSender,
} from '../../adapters/slack/outbound.js';
import { type Conversation, type Message, PermanentSendError } from '../../src/core/index.js';

function message(over: Partial<Message> = {}): Message {
  return {
    id: 'msg_1',
    conversationId: 'conv_1',
    seq: 2,
    type: 'bot',
    text: 'hello',
    meta: {},
    entities: [],
    direction: 'outbound',
    attachments: [],
    createdAt: '',
    updatedAt: '',
    ...over,
  };
}

function conversation(channelRef: string): Conversation {
  return { channelRef } as Conversation;
}

/** A virtual clock: `sleep` advances it, so retry and pacing waits are observable without waiting. */
function clock() {
  let now = 1_000_000;
  const sleeps: number[] = [];
  return {
    now: () => now,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      now += ms;
    },
    sleeps,
  };
}

function api(answers: Array<string | SlackCallError>): SlackApi & { posts: PostMessageArgs[] } {
  const posts: PostMessageArgs[] = [];
  return {
    posts,
    async postMessage(args) {
      posts.push(args);
      const next = answers.shift();
      if (next instanceof SlackCallError) throw next;
      return next ?? 'ts';
    },
    authTest: async () => ({ userId: 'U0BOT' }),
    userName: async () => undefined,
  };
}

describe('renderMessage', () => {
  it("posts an agent's message under the agent's name; the bot's without one", () => {
    const target = { channel: 'C1', threadTs: '1.2' };
    expect(renderMessage(target, message({ type: 'agent', name: 'Ana Agent' })).username).toBe('Ana Agent');
    expect(renderMessage(target, message({ type: 'agent', name: 'x'.repeat(100) })).username).toHaveLength(
      80,
    );
    expect(renderMessage(target, message({ name: 'Bot name' })).username).toBeUndefined();
  });

  it('posts into the thread and escapes the characters Slack treats as markup', () => {
    expect(renderMessage({ channel: 'C1', threadTs: '1.2' }, message({ text: 'a < b & c > d' }))).toEqual({
      channel: 'C1',
      thread_ts: '1.2',
      text: 'a &lt; b &amp; c &gt; d',
    });
    expect(renderMessage({ channel: 'D1' }, message())).toEqual({ channel: 'D1', text: 'hello' });
  });

  it('renders quick replies as buttons in an actions block, keeping the text as the fallback', () => {
    const args = renderMessage(
      { channel: 'C1' },
      message({ text: 'Pick', quickReplies: [{ title: 'Yes', payload: 'YES' }, { title: 'No' }] }),
    );
    expect(args.text).toBe('Pick');
    expect(args.blocks).toEqual([
      { type: 'section', text: { type: 'mrkdwn', text: 'Pick' } },
      {
        type: 'actions',
        block_id: 'quick_replies',
        elements: [
          {
            type: 'button',
            action_id: 'quick_reply_0',
            text: { type: 'plain_text', text: 'Yes', emoji: true },
            value: 'YES',
          },
          {
            type: 'button',
            action_id: 'quick_reply_1',
            text: { type: 'plain_text', text: 'No', emoji: true },
            value: 'No',
          },
        ],
      },
    ]);
  });

  it('splits long text over several sections within the 3,000-character limit and links attachments', () => {
    const args = renderMessage(
      { channel: 'C1' },
      message({
        text: 'x'.repeat(6_500),
        quickReplies: [{ title: 'ok' }],
        attachments: [{ url: 'https://e.x/a|b.png', contentType: 'image/png', name: 'a.png' }],
      }),
    );
    const sections = (args.blocks ?? []).filter((b) => b.type === 'section');
    expect(sections).toHaveLength(3);
    for (const s of sections) expect((s.text as { text: string }).text.length).toBeLessThanOrEqual(3_000);
    expect(args.text.endsWith('<https://e.x/a%7Cb.png|a.png>')).toBe(true);
  });
});

describe('ChannelGate', () => {
  it('spaces one channel at the interval and leaves other channels alone', () => {
    let now = 0;
    const gate = new ChannelGate(1_000, () => now);
    expect(gate.reserve('C1')).toBe(0);
    expect(gate.reserve('C1')).toBe(1_000);
    expect(gate.reserve('C2')).toBe(0);
    now = 400;
    expect(gate.reserve('C1')).toBe(1_600);
    now = 5_000;
    expect(gate.reserve('C1')).toBe(0);
    gate.defer('C1', 9_000);
    expect(gate.reserve('C1')).toBe(4_000);
  });
});

describe('SlackSender', () => {
  it('returns the posted ts as the external id', async () => {
    const c = clock();
    const sender = new SlackSender(api(['1.000100']), { now: c.now, sleep: c.sleep });
    await expect(sender.send(conversation('T1:C1:1.0'), message())).resolves.toEqual({
      externalId: '1.000100',
      status: 'sent',
    });
  });

  it('waits Retry-After after a 429 and then sends', async () => {
    const c = clock();
    const fake = api([new SlackCallError('rate_limited', 'ratelimited', 7_000), '2.000100']);
    const sender = new SlackSender(fake, { now: c.now, sleep: c.sleep });
    await expect(sender.send(conversation('T1:D1'), message())).resolves.toMatchObject({
      externalId: '2.000100',
    });
    expect(fake.posts).toHaveLength(2);
    expect(c.sleeps).toEqual([7_000]);
  });

  it("fails for good with Slack's error string when Slack refuses", async () => {
    const sender = new SlackSender(api([new SlackCallError('permanent', 'channel_not_found')]), clock());
    const err = await sender.send(conversation('T1:C9'), message()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentSendError);
    expect((err as PermanentSendError).code).toBe('channel_not_found');
    expect((err as Error).message).toContain('channel_not_found');
  });

  it('retries transient failures a bounded number of times, then fails for good', async () => {
    const c = clock();
    const failures = Array.from({ length: 5 }, () => new SlackCallError('transient', 'http_503'));
    const fake = api(failures);
    const sender = new SlackSender(fake, { now: c.now, sleep: c.sleep, maxAttempts: 3 });
    const err = await sender.send(conversation('T1:C1'), message()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentSendError);
    expect((err as PermanentSendError).code).toBe('http_503');
    expect(fake.posts).toHaveLength(3);
  });

  it('gives up when Retry-After exceeds the cap instead of holding the conversation', async () => {
    const fake = api([new SlackCallError('rate_limited', 'ratelimited', 3_600_000)]);
    const sender = new SlackSender(fake, { ...clock(), maxRetryAfterMs: 60_000 });
    await expect(sender.send(conversation('T1:C1'), message())).rejects.toMatchObject({
      code: 'ratelimited',
    });
  });

  it('refuses a conversation key it did not make', async () => {
    const sender = new SlackSender(api([]), clock());
    await expect(sender.send(conversation('not-a-slack-key'), message())).rejects.toMatchObject({
      code: 'invalid_channel_ref',
    });
  });
});

describe('configure', () => {
  const full = { SLACK_SIGNING_SECRET: 'test_signing_secret_0123456789abcdef', SLACK_BOT_TOKEN: 'xoxb-1-2' };

  it('is off without any Slack setting and on with the secret and the token', () => {
    expect(configure({})).toEqual({ enabled: false });
    expect(configure(full)).toEqual({
      enabled: true,
      config: {
        signingSecret: full.SLACK_SIGNING_SECRET,
        botToken: 'xoxb-1-2',
        apiUrl: 'https://slack.com/api/',
        verify: 'enforce',
        assistant: false,
      },
    });
    expect(configure({ ...full, SLACK_ASSISTANT: 'true' })).toMatchObject({ config: { assistant: true } });
  });

  it('fails closed on a partial configuration', () => {
    const onlySecret = configure({ SLACK_SIGNING_SECRET: full.SLACK_SIGNING_SECRET });
    expect(onlySecret).toMatchObject({
      enabled: false,
      errors: [expect.stringContaining('SLACK_BOT_TOKEN')],
    });
    const onlyToken = configure({ SLACK_BOT_TOKEN: 'xoxb-1' });
    expect(onlyToken).toMatchObject({
      enabled: false,
      errors: [expect.stringContaining('SLACK_SIGNING_SECRET')],
    });
    expect(configure({ SLACK_TEAM_ID: 'T0001' })).toMatchObject({
      enabled: false,
      errors: expect.any(Array),
    });
  });

  it('validates every value and normalizes the API URL', () => {
    const bad = configure({
      ...full,
      SLACK_BOT_TOKEN: 'xoxp-user',
      SLACK_API_URL: 'ftp://x',
      SLACK_TEAM_ID: 'acme',
    });
    expect('errors' in bad && bad.errors).toHaveLength(3);
    const ok = configure({ ...full, SLACK_API_URL: 'http://127.0.0.1:9/api', SLACK_TEAM_ID: 'T0001' });
    expect(ok).toMatchObject({
      enabled: true,
      config: { apiUrl: 'http://127.0.0.1:9/api/', teamId: 'T0001' },
    });
  });

  it('takes SLACK_AGENT_CHANNEL as a channel id only, and needs the channel on for it', () => {
    expect(configure({ ...full, SLACK_AGENT_CHANNEL: 'C0DESK' })).toMatchObject({
      enabled: true,
      config: { agentChannel: 'C0DESK' },
    });
    expect(configure({ ...full, SLACK_AGENT_CHANNEL: 'G0PRIV' })).toMatchObject({
      config: { agentChannel: 'G0PRIV' },
    });
    const named = configure({ ...full, SLACK_AGENT_CHANNEL: '#support-desk' });
    expect(named).toMatchObject({ enabled: false, errors: [expect.stringContaining('SLACK_AGENT_CHANNEL')] });
    const alone = configure({ SLACK_AGENT_CHANNEL: 'C0DESK' });
    expect(alone).toMatchObject({ enabled: false, errors: expect.any(Array) });
    expect(configure(full)).not.toMatchObject({ config: { agentChannel: expect.anything() } });
  });
});
