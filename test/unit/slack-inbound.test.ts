/** Pure mapping of Slack payloads to decisions: conversation keys, dedupe keys, filters, edits. */
import { describe, expect, it } from 'vitest';
import {
  channelRef,
  classifyEvent,
  classifyInteraction,
  parseChannelRef,
  type SlackDecision,
} from '../../adapters/slack/inbound.js';

const BOT = 'U0BOT';

function envelope(event: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    token: 'XXYYZZ',
    team_id: 'T0001',
    api_app_id: 'A0001',
    type: 'event_callback',
    event_id: 'Ev0001',
    event_time: 1767225599,
    authorizations: [{ enterprise_id: null, team_id: 'T0001', user_id: BOT, is_bot: true }],
    event,
    ...extra,
  };
}

function accepted(d: SlackDecision) {
  if (d.kind !== 'accept') throw new Error(`expected accept, got ${JSON.stringify(d)}`);
  return d;
}

const mention = {
  type: 'app_mention',
  user: 'U0001',
  text: '<@U0BOT> help me',
  ts: '1767225599.000200',
  channel: 'C0001',
  event_ts: '1767225599.000200',
};

describe('classifyEvent', () => {
  it('answers url_verification with its challenge', () => {
    expect(classifyEvent({ type: 'url_verification', challenge: 'abc', token: 't' }, {})).toEqual({
      kind: 'challenge',
      challenge: 'abc',
    });
  });

  it('makes a top-level mention the start of a thread keyed by its own ts, without the mention', () => {
    const d = accepted(classifyEvent(envelope(mention), {}));
    expect(d.inbound.channelRef).toBe('T0001:C0001:1767225599.000200');
    expect(d.inbound.dedupeKey).toBe('T0001:C0001:1767225599.000200');
    expect(d.inbound.message.text).toBe('help me');
    expect(d.inbound.message.externalId).toBe('1767225599.000200');
    expect(d.inbound.from).toMatchObject({ id: 'U0001', role: 'user' });
    expect(d.followUpOnly).toBe(false);
    expect(d.inbound.conversationMeta).toMatchObject({
      slackChannel: 'C0001',
      slackThreadTs: '1767225599.000200',
    });
  });

  it("strips the mention of the bot id it is given, also when the id changes (another install's)", () => {
    const text = '<@U0BOT> and <@U0TWO|two>   help';
    const dm = {
      type: 'message',
      channel_type: 'im',
      channel: 'D0001',
      user: 'U0001',
      ts: '1767225599.000300',
      text,
    };
    const first = accepted(classifyEvent(envelope(dm), { botUserId: 'U0BOT' }));
    expect(first.inbound.message.text).toBe('and <@U0TWO|two> help');
    const second = accepted(classifyEvent(envelope(dm), { botUserId: 'U0TWO' }));
    expect(second.inbound.message.text).toBe('<@U0BOT> and help');
    const again = accepted(classifyEvent(envelope(dm), { botUserId: 'U0BOT' }));
    expect(again.inbound.message.text).toBe('and <@U0TWO|two> help');
    // No mention at all: only the whitespace is tidied, as before.
    const plain = accepted(
      classifyEvent(envelope({ ...dm, text: '  hello   there ' }), { botUserId: 'U0BOT' }),
    );
    expect(plain.inbound.message.text).toBe('hello there');
  });

  it('keeps a mention inside a thread in that thread', () => {
    const d = accepted(classifyEvent(envelope({ ...mention, thread_ts: '1767225500.000100' }), {}));
    expect(d.inbound.channelRef).toBe('T0001:C0001:1767225500.000100');
  });

  it('gives the message + app_mention pair of one mention the same conversation and dedupe key', () => {
    const asMention = accepted(classifyEvent(envelope(mention, { event_id: 'Ev1' }), {}));
    const asMessage = accepted(
      classifyEvent(
        envelope(
          { ...mention, type: 'message', channel_type: 'channel', client_msg_id: 'c-1' },
          { event_id: 'Ev2' },
        ),
        {},
      ),
    );
    expect(asMessage.inbound.channelRef).toBe(asMention.inbound.channelRef);
    expect(asMessage.inbound.dedupeKey).toBe(asMention.inbound.dedupeKey);
    expect(asMessage.inbound.message.text).toBe(asMention.inbound.message.text);
  });

  it('makes a direct message channel one conversation, whatever the thread', () => {
    const dm = {
      type: 'message',
      user: 'U0001',
      text: 'hi',
      ts: '1.000001',
      channel: 'D0001',
      channel_type: 'im',
    };
    const top = accepted(classifyEvent(envelope(dm), {}));
    const inThread = accepted(classifyEvent(envelope({ ...dm, ts: '2.000001', thread_ts: '1.000001' }), {}));
    expect(top.inbound.channelRef).toBe('T0001:D0001');
    expect(inThread.inbound.channelRef).toBe('T0001:D0001');
    expect(top.followUpOnly).toBe(false);
  });

  it('marks a thread reply without a mention as a follow-up that needs a known thread', () => {
    const d = accepted(
      classifyEvent(
        envelope({
          type: 'message',
          user: 'U0001',
          text: 'follow-up in thread',
          ts: '1767226000.000800',
          thread_ts: '1767225500.000100',
          channel: 'C0001',
          channel_type: 'channel',
        }),
        {},
      ),
    );
    expect(d.followUpOnly).toBe(true);
    expect(d.inbound.channelRef).toBe('T0001:C0001:1767225500.000100');
  });

  it('ignores top-level channel chatter that does not mention the bot', () => {
    const d = classifyEvent(
      envelope({
        type: 'message',
        user: 'U0001',
        text: 'lunch?',
        ts: '1.1',
        channel: 'C0001',
        channel_type: 'channel',
      }),
      {},
    );
    expect(d).toEqual({ kind: 'ignore', reason: 'not_addressed', refused: false });
  });

  it("ignores the bot's own posts with or without bot_message, and other bots' posts", () => {
    const own = { type: 'message', text: 'Reply', user: BOT, bot_id: 'B0BOT', ts: '1.2', channel: 'C0001' };
    const ownNoBotId = {
      type: 'message',
      text: 'Reply',
      user: BOT,
      ts: '1.3',
      channel: 'D0001',
      channel_type: 'im',
    };
    const botMessage = {
      type: 'message',
      subtype: 'bot_message',
      text: 'x',
      bot_id: 'B0BOT',
      ts: '1.4',
      channel: 'C0001',
    };
    const otherBot = {
      type: 'message',
      text: 'x',
      user: 'U0OTHER',
      bot_id: 'B0OTHER',
      ts: '1.5',
      channel: 'D0001',
    };
    for (const event of [own, ownNoBotId, botMessage, otherBot]) {
      expect(classifyEvent(envelope(event), {})).toEqual({
        kind: 'ignore',
        reason: 'bot_post',
        refused: false,
      });
    }
    // auth.test's answer wins over the envelope when both are known.
    expect(
      classifyEvent(envelope({ ...ownNoBotId, user: 'U0ME' }, { authorizations: [] }), { botUserId: 'U0ME' })
        .kind,
    ).toBe('ignore');
  });

  it('ignores subtypes that are not user text, and hidden messages', () => {
    const join = {
      type: 'message',
      subtype: 'channel_join',
      user: 'U0002',
      text: 'joined',
      ts: '1.6',
      channel: 'C0001',
    };
    expect(classifyEvent(envelope(join), {})).toMatchObject({
      kind: 'ignore',
      reason: 'subtype_channel_join',
    });
    const hidden = { type: 'message', user: 'U0002', text: 'x', ts: '1.7', channel: 'D0001', hidden: true };
    expect(classifyEvent(envelope(hidden), {})).toMatchObject({ kind: 'ignore', reason: 'hidden' });
  });

  it('accepts file shares with the files as attachments', () => {
    const d = accepted(
      classifyEvent(
        envelope({
          type: 'message',
          subtype: 'file_share',
          user: 'U0001',
          text: 'see this',
          ts: '1.8',
          channel: 'D0001',
          channel_type: 'im',
          files: [
            { url_private: 'https://files.slack.com/x.png', mimetype: 'image/png', name: 'x.png', size: 10 },
          ],
        }),
        {},
      ),
    );
    expect(d.inbound.message.attachments).toEqual([
      { url: 'https://files.slack.com/x.png', contentType: 'image/png', name: 'x.png', size: 10 },
    ]);
  });

  it('turns message_changed into an edit of the original ts, and message_deleted into a delete', () => {
    const changed = {
      type: 'message',
      subtype: 'message_changed',
      hidden: true,
      channel: 'C0001',
      ts: '1767225700.000500',
      message: { type: 'message', user: 'U0001', text: '<@U0BOT> edited text', ts: '1767225599.000200' },
    };
    expect(classifyEvent(envelope(changed), {})).toEqual({
      kind: 'edit',
      ref: { team: 'T0001', channel: 'C0001', ts: '1767225599.000200' },
      text: 'edited text',
    });
    const botEdit = { ...changed, message: { ...changed.message, bot_id: 'B0BOT', user: BOT } };
    expect(classifyEvent(envelope(botEdit), {})).toMatchObject({ kind: 'ignore', reason: 'bot_post' });
    const deleted = {
      type: 'message',
      subtype: 'message_deleted',
      hidden: true,
      channel: 'C0001',
      ts: '1767225800.000600',
      deleted_ts: '1767225599.000200',
    };
    expect(classifyEvent(envelope(deleted), {})).toEqual({
      kind: 'delete',
      ref: { team: 'T0001', channel: 'C0001', ts: '1767225599.000200' },
    });
  });

  it('refuses events of another workspace when SLACK_TEAM_ID is set', () => {
    expect(classifyEvent(envelope(mention), { teamId: 'T0001' }).kind).toBe('accept');
    expect(classifyEvent(envelope(mention, { team_id: 'T9999' }), { teamId: 'T0001' })).toEqual({
      kind: 'ignore',
      reason: 'other_workspace',
      refused: true,
    });
  });

  it('refuses unknown event and envelope types, and flags malformed envelopes', () => {
    expect(classifyEvent(envelope({ type: 'reaction_added', user: 'U0001' }), {})).toEqual({
      kind: 'ignore',
      reason: 'unknown_event',
      refused: true,
    });
    expect(classifyEvent({ type: 'something_new' }, {})).toMatchObject({
      reason: 'unknown_type',
      refused: true,
    });
    expect(classifyEvent({ type: 'app_rate_limited', team_id: 'T0001' }, {})).toMatchObject({
      refused: false,
    });
    expect(classifyEvent([], {})).toEqual({ kind: 'invalid', reason: 'malformed_payload' });
    expect(classifyEvent({ type: 'event_callback', team_id: 'T0001' }, {}).kind).toBe('invalid');
    expect(classifyEvent({ type: 'url_verification' }, {}).kind).toBe('invalid');
  });
});

describe('classifyInteraction', () => {
  const click = {
    type: 'block_actions',
    user: { id: 'U0001', username: 'jane', team_id: 'T0001' },
    container: { type: 'message', message_ts: '1767225590.000300', channel_id: 'C0001', is_ephemeral: false },
    trigger_id: '1111.2222.abcd',
    team: { id: 'T0001', domain: 'acme' },
    channel: { id: 'C0001', name: 'support' },
    message: { ts: '1767225590.000300', thread_ts: '1767225500.000100', text: 'Pick one' },
    actions: [
      {
        action_id: 'quick_reply_0',
        block_id: 'quick_replies',
        text: { type: 'plain_text', text: 'Approve', emoji: true },
        value: 'ticket-42',
        type: 'button',
        action_ts: '1767225599.123456',
      },
    ],
  };

  it("turns a button click into a user message in the button message's thread", () => {
    const d = accepted(classifyInteraction(click, {}));
    expect(d.inbound.channelRef).toBe('T0001:C0001:1767225500.000100');
    expect(d.inbound.message.text).toBe('ticket-42');
    expect(d.inbound.dedupeKey).toBe('T0001:action:quick_reply_0:1767225599.123456');
    expect(d.inbound.message.meta).toMatchObject({ quickReply: { title: 'Approve', payload: 'ticket-42' } });
  });

  it('keys a click in a direct message by the DM channel, and uses the label when there is no value', () => {
    const { value: _v, ...noValue } = click.actions[0]!;
    const d = accepted(
      classifyInteraction(
        {
          ...click,
          channel: { id: 'D0001', name: 'directmessage' },
          container: { ...click.container, channel_id: 'D0001' },
          actions: [noValue],
        },
        {},
      ),
    );
    expect(d.inbound.channelRef).toBe('T0001:D0001');
    expect(d.inbound.message.text).toBe('Approve');
  });

  it('refuses other workspaces, other interaction kinds and non-button actions', () => {
    expect(classifyInteraction({ ...click, team: { id: 'T9' } }, { teamId: 'T0001' })).toMatchObject({
      reason: 'other_workspace',
      refused: true,
    });
    expect(classifyInteraction({ type: 'view_submission' }, {})).toMatchObject({
      reason: 'unsupported_interaction',
    });
    expect(
      classifyInteraction({ ...click, actions: [{ ...click.actions[0], type: 'static_select' }] }, {}),
    ).toMatchObject({ reason: 'unsupported_action' });
    expect(classifyInteraction({ ...click, actions: [] }, {}).kind).toBe('invalid');
  });
});

describe('channelRef', () => {
  it('round-trips DM and thread keys and rejects foreign ones', () => {
    expect(parseChannelRef(channelRef('T1', 'D2'))).toEqual({ team: 'T1', channel: 'D2' });
    expect(parseChannelRef(channelRef('T1', 'C2', '17.000100'))).toEqual({
      team: 'T1',
      channel: 'C2',
      threadTs: '17.000100',
    });
    expect(parseChannelRef('conv_01JD0000000000000000000000')).toBeUndefined();
  });
});
